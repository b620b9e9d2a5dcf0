/**
 * Checkpoints as model folders the merge library reads: `model.safetensors` (float32) and
 * a `config.json`. The format is small enough to write here directly: an 8-byte
 * little-endian header length, a JSON header {name: {dtype, shape, data_offsets}}, then
 * the raw little-endian data. Reading also decodes BF16/F16, in case a merge stores them.
 */
import * as fs from 'fs';
import * as path from 'path';
import { Arch, Weights } from './model';

export const MODEL_FILE = 'model.safetensors';

export function encodeSafetensors(w: Weights, metadata: Record<string, string> = {}): Buffer {
  const header: Record<string, unknown> = { __metadata__: { format: 'pt', ...metadata } };
  let offset = 0;
  for (const [name, t] of w) {
    const bytes = t.data.length * 4;
    header[name] = { dtype: 'F32', shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8); // keeps the data 8-byte aligned
  const headerBytes = Buffer.from(json, 'utf8');
  const out = Buffer.alloc(8 + headerBytes.length + offset);
  out.writeBigUInt64LE(BigInt(headerBytes.length), 0);
  headerBytes.copy(out, 8);
  let pos = 8 + headerBytes.length;
  for (const t of w.values()) {
    Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength).copy(out, pos);
    pos += t.data.byteLength;
  }
  return out;
}

function decodeHalf(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exp = (bits >> 10) & 0x1f;
  const frac = bits & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

export function decodeSafetensors(buf: Buffer): Weights {
  const headerLen = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + headerLen).toString('utf8'));
  const base = 8 + headerLen;
  const out: Weights = new Map();
  for (const [name, info] of Object.entries<any>(header)) {
    if (name === '__metadata__') continue;
    const [b, e] = info.data_offsets as [number, number];
    const raw = buf.subarray(base + b, base + e);
    const n = (info.shape as number[]).reduce((x, y) => x * y, 1);
    const data = new Float32Array(n);
    if (info.dtype === 'F32') {
      for (let i = 0; i < n; i++) data[i] = raw.readFloatLE(4 * i);
    } else if (info.dtype === 'BF16') {
      const u = new Uint32Array(data.buffer);
      for (let i = 0; i < n; i++) u[i] = raw.readUInt16LE(2 * i) << 16;
    } else if (info.dtype === 'F16') {
      for (let i = 0; i < n; i++) data[i] = decodeHalf(raw.readUInt16LE(2 * i));
    } else {
      throw new Error(`tensor ${name}: dtype ${info.dtype} not supported by the benchmark reader`);
    }
    out.set(name, { shape: info.shape, data });
  }
  return out;
}

export function saveWeights(file: string, w: Weights): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp`;
  fs.writeFileSync(tmp, encodeSafetensors(w));
  fs.renameSync(tmp, file); // a killed run never leaves a truncated checkpoint in the cache
}

export function loadWeights(file: string): Weights {
  return decodeSafetensors(fs.readFileSync(file));
}

/** Writes a model folder (config.json first, so the folder is complete once the weights land). */
export function saveModelDir(dir: string, a: Arch, backbone: Weights): void {
  fs.mkdirSync(dir, { recursive: true });
  const config = {
    architectures: ['ResidualMLPForClassification'],
    model_type: 'dppa_bench_residual_mlp',
    hidden_size: a.hidden,
    intermediate_size: a.ffn,
    num_hidden_layers: a.layers,
    input_dim: a.inputDim,
    torch_dtype: 'float32',
  };
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config, null, 2) + '\n');
  saveWeights(path.join(dir, MODEL_FILE), backbone);
}

export function loadModelDir(dir: string): Weights {
  const single = path.join(dir, MODEL_FILE);
  if (fs.existsSync(single)) return loadWeights(single);
  // A sharded output: read every shard the index names.
  const index = JSON.parse(fs.readFileSync(path.join(dir, 'model.safetensors.index.json'), 'utf8'));
  const out: Weights = new Map();
  for (const shard of new Set<string>(Object.values(index.weight_map))) {
    for (const [k, v] of loadWeights(path.join(dir, shard))) out.set(k, v);
  }
  return out;
}
