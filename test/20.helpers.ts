/**
 * Helpers for the I/O tests (20-29): crafting safetensors files byte by byte, good and bad,
 * and asserting the errors they must produce.
 */
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { DppaError, type ErrorCode } from '../lib/errors';

export const repoRoot = path.resolve(__dirname, '..', '..');
export const goldenDir = path.join(repoRoot, 'test', 'fixtures', 'golden');

export interface CraftOptions {
  /** Override the 8-byte header length field. */
  length?: bigint | number;
  /** Pad the JSON with spaces to a multiple of 8, like the reference writer. Default true. */
  pad?: boolean;
}

/** A safetensors file from header JSON (object or raw text/bytes) and data (bytes or a length). */
export function craftSafetensors(header: object | string | Uint8Array, data: Uint8Array | number = 0, options: CraftOptions = {}): Uint8Array {
  let json: Uint8Array =
    header instanceof Uint8Array ? header : new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  if (options.pad !== false) {
    const padded = new Uint8Array(Math.ceil(json.byteLength / 8) * 8).fill(0x20);
    padded.set(json);
    json = padded;
  }
  const dataBytes = typeof data === 'number' ? patternBytes(data) : data;
  const out = new Uint8Array(8 + json.byteLength + dataBytes.byteLength);
  new DataView(out.buffer).setBigUint64(0, BigInt(options.length ?? json.byteLength), true);
  out.set(json, 8);
  out.set(dataBytes, 8 + json.byteLength);
  return out;
}

/** Distinguishable bytes: byte i is (i * 7 + 3) mod 256. */
export function patternBytes(length: number, salt = 0): Uint8Array {
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i++) bytes[i] = (i * 7 + 3 + salt) & 0xff;
  return bytes;
}

export function writeBytes(dir: string, name: string, bytes: Uint8Array): string {
  const file = path.join(dir, name);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, bytes);
  return file;
}

/** Require `e` to be a DppaError of `code` whose message contains every fragment. */
function expectDppaError(e: unknown, code: ErrorCode, fragments: string[]): DppaError {
  assert.ok(e instanceof DppaError, `expected a DppaError, got ${(e as Error)?.stack ?? String(e)}`);
  assert.strictEqual(e.code, code, `expected ${code}, got ${e.code}: ${e.message}`);
  for (const fragment of fragments) {
    assert.ok(e.message.includes(fragment), `message should contain "${fragment}": ${e.message}`);
  }
  return e;
}

/** Await `promise`, require a DppaError of `code` whose message contains every fragment. */
export async function rejectsWith(promise: Promise<unknown>, code: ErrorCode, ...fragments: string[]): Promise<DppaError> {
  try {
    await promise;
  } catch (e) {
    return expectDppaError(e, code, fragments);
  }
  assert.fail(`expected a DppaError ${code}, but it resolved`);
}

export function throwsWith(fn: () => unknown, code: ErrorCode, ...fragments: string[]): DppaError {
  try {
    fn();
  } catch (e) {
    return expectDppaError(e, code, fragments);
  }
  assert.fail(`expected a DppaError ${code}, but it returned`);
}

/** The tensor names of a Llama model with `layers` layers, sorted. */
export function llamaNames(layers: number, tied = false): string[] {
  const names = ['model.embed_tokens.weight', 'model.norm.weight'];
  if (!tied) names.push('lm_head.weight');
  for (let i = 0; i < layers; i++) {
    for (const m of ['q_proj', 'k_proj', 'v_proj', 'o_proj']) names.push(`model.layers.${i}.self_attn.${m}.weight`);
    for (const m of ['gate_proj', 'up_proj', 'down_proj']) names.push(`model.layers.${i}.mlp.${m}.weight`);
    names.push(`model.layers.${i}.input_layernorm.weight`, `model.layers.${i}.post_attention_layernorm.weight`);
  }
  return names.sort();
}
