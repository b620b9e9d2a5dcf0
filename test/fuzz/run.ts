/**
 * Fuzzing of the safetensors reader and model folders: valid files are mutated (header
 * bytes, structured header edits, the length field, data bytes, truncation, appended bytes,
 * the shard index) and opened. Every outcome must be a successful open whose reads return
 * exactly the described bytes, or a DppaError E_FORMAT/E_IO. Anything else — another
 * exception, a wrong-length read, a crash or a hang — is a bug.
 *
 *   node dist/test/fuzz/run.js [--seconds 60] [--seed 1]
 *
 * The mocha suite (23.fuzz) runs it for DPPA_FUZZ_SECONDS (default 5).
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { DppaError } from '../../lib/errors';
import { ModelSource } from '../../lib/io/model';
import { SafetensorsFile } from '../../lib/io/safetensors';
import { encodeShardHeader } from '../../lib/io/shard-plan';
import { ModelWriter } from '../../lib/io/writer';
import { Xoshiro128 } from '../../lib/synth/random';

export interface FuzzOptions {
  seconds: number;
  seed: number;
  /** Scratch folder (created; removed at the end). Default: a new folder in the OS temp dir. */
  dir?: string;
  log?: (line: string) => void;
}

export interface FuzzReport {
  cases: number;
  opened: number;
  rejected: Record<string, number>;
  seconds: number;
  /** Descriptions of failing cases (empty when all is well). */
  failures: string[];
}

type Mutation = (bytes: Uint8Array, rng: Xoshiro128) => Uint8Array;

const INTERESTING = Array.from('{}[]":,0123456789-.eE \\u"ntf', (c) => c.charCodeAt(0));

function headerEnd(bytes: Uint8Array): number {
  if (bytes.byteLength < 8) return bytes.byteLength;
  const length = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  return Math.min(bytes.byteLength, 8 + length);
}

function withLength(json: Uint8Array, data: Uint8Array, length = json.byteLength): Uint8Array {
  const out = new Uint8Array(8 + json.byteLength + data.byteLength);
  new DataView(out.buffer).setBigUint64(0, BigInt(length), true);
  out.set(json, 8);
  out.set(data, 8 + json.byteLength);
  return out;
}

function splitFile(bytes: Uint8Array): { json: Uint8Array; data: Uint8Array } {
  const end = headerEnd(bytes);
  return { json: bytes.slice(8, end), data: bytes.slice(end) };
}

/** Structured edits of the header JSON: they get past JSON.parse and hit the validator. */
function editHeader(bytes: Uint8Array, rng: Xoshiro128): Uint8Array {
  const { json, data } = splitFile(bytes);
  let header: Record<string, any>;
  try {
    header = JSON.parse(new TextDecoder().decode(json));
  } catch {
    return bytes;
  }
  const names = Object.keys(header).filter((k) => k !== '__metadata__');
  if (names.length === 0) return bytes;
  const name = names[rng.nextInt(names.length)];
  const entry = header[name];
  // A header already mangled by an earlier mutation may not have the fields edited below.
  if (typeof entry !== 'object' || entry === null || !Array.isArray(entry.shape) || !Array.isArray(entry.data_offsets)) return bytes;
  const pick = <T>(items: T[]): T => items[rng.nextInt(items.length)];
  const smallInt = () => pick([0, 1, -1, 2, 7, 8, 2 ** 31, 2 ** 53, 1e300, 0.5, -0, 3]);
  switch (rng.nextInt(12)) {
    case 0: entry.data_offsets[rng.nextInt(2)] += pick([-1, 1, -8, 8, 1000]); break;
    case 1: entry.shape = entry.shape.map((d: number) => (rng.nextFloat() < 0.5 ? d : smallInt())); break;
    case 2: entry.dtype = pick(['F32', 'F16', 'BF16', 'U8', 'BOOL', 'F8_E4M3', 'X', 'f32', '', 7, null]); break;
    case 3: entry.shape = pick([[], [0], null, 'x', [[2]], [1, 2, 3, 4, 5], {}]); break;
    case 4: entry.data_offsets = pick([[0], [0, 0, 0], null, 'x', [2, 1], [0, -0], [0, 1e400]]); break;
    case 5: header[name] = pick([null, 1, 'x', [], {}]); break;
    case 6: header.__metadata__ = pick([null, 1, [], { a: 1 }, { a: 'b' }, { a: { b: 'c' } }]); break;
    case 7: delete header[name]; break;
    case 8: { const other = names[rng.nextInt(names.length)]; header[other] = { ...entry }; break; }
    case 9: { // the same name twice, in the text
      const text = new TextDecoder().decode(json).trimEnd();
      const dup = `${text.slice(0, -1)},${JSON.stringify(name)}:${JSON.stringify(entry)}}`;
      return withLength(new TextEncoder().encode(dup), data);
    }
    case 10: delete entry[pick(['dtype', 'shape', 'data_offsets'])]; break;
    default: { // shift every offset, as if a byte were inserted before the data
      for (const n of names) if (Array.isArray(header[n]?.data_offsets)) header[n].data_offsets = header[n].data_offsets.map((o: number) => o + 1);
    }
  }
  return withLength(new TextEncoder().encode(JSON.stringify(header)), data);
}

const mutations: Record<string, Mutation> = {
  flipHeaderBits(bytes, rng) {
    const out = bytes.slice();
    const end = headerEnd(out);
    for (let k = 1 + rng.nextInt(4); k > 0 && end > 8; k--) out[8 + rng.nextInt(end - 8)] ^= 1 << rng.nextInt(8);
    return out;
  },
  interestingHeaderBytes(bytes, rng) {
    const out = bytes.slice();
    const end = headerEnd(out);
    for (let k = 1 + rng.nextInt(3); k > 0 && end > 8; k--) out[8 + rng.nextInt(end - 8)] = INTERESTING[rng.nextInt(INTERESTING.length)];
    return out;
  },
  editHeader,
  insertOrDeleteHeaderBytes(bytes, rng) {
    const { json, data } = splitFile(bytes);
    const at = rng.nextInt(json.byteLength + 1);
    const edited = rng.nextFloat() < 0.5
      ? new Uint8Array([...json.subarray(0, at), INTERESTING[rng.nextInt(INTERESTING.length)], ...json.subarray(at)])
      : new Uint8Array([...json.subarray(0, at), ...json.subarray(at + 1)]);
    // Half the time the length field follows the edit, half the time it is stale.
    return withLength(edited, data, rng.nextFloat() < 0.5 ? edited.byteLength : json.byteLength);
  },
  lengthField(bytes, rng) {
    const out = bytes.slice();
    if (out.byteLength < 8) return out;
    const view = new DataView(out.buffer);
    const length = view.getBigUint64(0, true);
    switch (rng.nextInt(4)) {
      case 0: view.setBigUint64(0, length + BigInt(rng.nextInt(17) - 8), true); break;
      case 1: out[rng.nextInt(8)] = rng.nextInt(256); break;
      case 2: view.setBigUint64(0, BigInt(rng.nextUint32()) * 2n ** 32n + BigInt(rng.nextUint32()), true); break;
      default: view.setBigUint64(0, BigInt(rng.nextInt(out.byteLength + 16)), true);
    }
    return out;
  },
  dataBytes(bytes, rng) {
    const out = bytes.slice();
    const end = headerEnd(out);
    for (let k = 1 + rng.nextInt(16); k > 0 && out.byteLength > end; k--) out[end + rng.nextInt(out.byteLength - end)] = rng.nextInt(256);
    return out;
  },
  truncate(bytes, rng) {
    return bytes.slice(0, rng.nextInt(bytes.byteLength));
  },
  append(bytes, rng) {
    const extra = new Uint8Array(1 + rng.nextInt(16)).map(() => rng.nextInt(256));
    return new Uint8Array([...bytes, ...extra]);
  },
};
const mutationNames = Object.keys(mutations);

/** Seed files: a few dtypes, a scalar, an empty tensor, metadata, odd names. */
function seedFiles(): Uint8Array[] {
  const build = (tensors: { name: string; dtype: string; shape: number[] }[], metadata?: Record<string, string>) => {
    const sizes: Record<string, number> = { F32: 4, BF16: 2, F16: 2, U8: 1, I64: 8, F8_E4M3: 1, BOOL: 1, F64: 8 };
    let cursor = 0;
    const offsets = tensors.map((t) => {
      const length = t.shape.reduce((a, b) => a * b, 1) * sizes[t.dtype];
      const range: [number, number] = [cursor, cursor + length];
      cursor += length;
      return range;
    });
    const header = encodeShardHeader(tensors, offsets, metadata);
    const out = new Uint8Array(header.byteLength + cursor);
    out.set(header);
    for (let i = header.byteLength; i < out.byteLength; i++) out[i] = (i * 31) & 0xff;
    return out;
  };
  return [
    build([{ name: 'a', dtype: 'F32', shape: [2, 3] }, { name: 'b', dtype: 'BF16', shape: [4] }], { format: 'pt' }),
    build([
      { name: 'model.embed_tokens.weight', dtype: 'BF16', shape: [8, 4] },
      { name: 'scalar', dtype: 'I64', shape: [] },
      { name: 'empty', dtype: 'F16', shape: [0, 2] },
      { name: 'q', dtype: 'F8_E4M3', shape: [5] },
      { name: 'mask', dtype: 'BOOL', shape: [3] },
      { name: 'd', dtype: 'F64', shape: [1] },
    ]),
    build([{ name: '__proto__', dtype: 'U8', shape: [3] }, { name: 'é\u00e9"\\', dtype: 'U8', shape: [1] }], { 'k"ey': 'v\\al' }),
    build([]),
  ];
}

function allowed(e: unknown): e is DppaError {
  return e instanceof DppaError && (e.code === 'E_FORMAT' || e.code === 'E_IO');
}

/** Checks an opened file as an independent judge: tensors tile the data exactly. */
async function checkOpened(st: SafetensorsFile, fileSize: number): Promise<string | undefined> {
  let cursor = 8 + st.headerLength;
  for (const info of st.tensors.values()) {
    if (info.byteOffset !== cursor) return `tensor "${info.name}" at ${info.byteOffset}, expected ${cursor}`;
    cursor += info.byteLength;
    const bytes = await st.read(info.name);
    if (bytes.byteLength !== info.byteLength) return `read of "${info.name}" gave ${bytes.byteLength} bytes, expected ${info.byteLength}`;
  }
  if (cursor !== fileSize) return `tensors end at ${cursor}, file is ${fileSize} bytes`;
  return undefined;
}

export async function runFuzz(options: FuzzOptions): Promise<FuzzReport> {
  const log = options.log ?? (() => undefined);
  const dir = options.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'dppa-fuzz-'));
  fs.mkdirSync(dir, { recursive: true });
  const rng = new Xoshiro128(options.seed, 'fuzz');
  const seeds = seedFiles();
  const report: FuzzReport = { cases: 0, opened: 0, rejected: {}, seconds: 0, failures: [] };
  const file = path.join(dir, 'case.safetensors');
  const started = Date.now();
  const deadline = started + options.seconds * 1000;

  // A sharded model whose index gets mutated, for ModelSource.
  const modelDir = path.join(dir, 'model');
  const writer = await ModelWriter.create(modelDir, {
    tensors: [{ name: 'a', dtype: 'F32', shape: [4] }, { name: 'b', dtype: 'F32', shape: [4] }, { name: 'c', dtype: 'U8', shape: [3] }],
    maxShardBytes: 16,
    overwrite: true,
  });
  await writer.writeTensor('a', new Uint8Array(16));
  await writer.writeTensor('b', new Uint8Array(16));
  await writer.writeTensor('c', new Uint8Array(3));
  await writer.finish();
  const indexFile = path.join(modelDir, 'model.safetensors.index.json');
  const index = fs.readFileSync(indexFile);

  try {
    while (Date.now() < deadline) {
      const caseNumber = report.cases++;
      const indexCase = rng.nextFloat() < 0.1;
      let description: string;
      let outcome: string | undefined;
      try {
        if (indexCase) {
          // Byte-level mutation of the shard index.
          const mutated = index.slice();
          for (let k = 1 + rng.nextInt(3); k > 0; k--) mutated[rng.nextInt(mutated.byteLength)] = INTERESTING[rng.nextInt(INTERESTING.length)];
          description = `index mutation: ${JSON.stringify(mutated.toString('utf8'))}`;
          fs.writeFileSync(indexFile, mutated);
          const model = await ModelSource.open(modelDir);
          for (const name of model.tensors.keys()) {
            const bytes = await model.read(name);
            if (bytes.byteLength !== model.info(name).byteLength) outcome = `read of "${name}" has the wrong length`;
          }
          await model.close();
        } else {
          let bytes = seeds[rng.nextInt(seeds.length)];
          const applied: string[] = [];
          for (let k = 1 + (rng.nextFloat() < 0.3 ? 1 : 0); k > 0; k--) {
            const name = mutationNames[rng.nextInt(mutationNames.length)];
            applied.push(name);
            bytes = mutations[name](bytes, rng);
          }
          description = `${applied.join('+')}: ${Buffer.from(bytes.subarray(0, 400)).toString('hex')}`;
          fs.writeFileSync(file, bytes);
          const st = await SafetensorsFile.open(file);
          try {
            outcome = await checkOpened(st, bytes.byteLength);
          } finally {
            await st.close();
          }
        }
        if (outcome === undefined) report.opened++;
      } catch (e) {
        if (allowed(e)) {
          report.rejected[e.code] = (report.rejected[e.code] ?? 0) + 1;
        } else {
          outcome = `unexpected ${(e as Error)?.stack ?? String(e)}`;
        }
        description ??= 'setup';
      }
      if (outcome !== undefined) {
        report.failures.push(`case ${caseNumber} (seed ${options.seed}): ${outcome}\n  ${description!}`);
        log(report.failures[report.failures.length - 1]);
        if (report.failures.length >= 20) break;
      }
    }
  } finally {
    if (options.dir === undefined) fs.rmSync(dir, { recursive: true, force: true });
  }
  report.seconds = (Date.now() - started) / 1000;
  return report;
}

function parseArgs(argv: string[]): { seconds: number; seed: number } {
  const args = { seconds: 60, seed: Date.now() % 1_000_000 };
  for (let i = 0; i < argv.length; i++) {
    const value = Number(argv[i + 1]);
    if (argv[i] === '--seconds' && Number.isFinite(value)) { args.seconds = value; i++; }
    else if (argv[i] === '--seed' && Number.isFinite(value)) { args.seed = value; i++; }
    else throw new Error(`usage: node dist/test/fuzz/run.js [--seconds N] [--seed S] (bad argument "${argv[i]}")`);
  }
  return args;
}

if (require.main === module) {
  const { seconds, seed } = parseArgs(process.argv.slice(2));
  console.log(`fuzzing the safetensors reader for ${seconds} s, seed ${seed}`);
  runFuzz({ seconds, seed, log: (line) => console.error(line) }).then((report) => {
    console.log(`fuzz: ${report.cases} cases in ${report.seconds.toFixed(1)} s: ${report.opened} opened, rejected ${JSON.stringify(report.rejected)}, ${report.failures.length} failures`);
    process.exitCode = report.failures.length > 0 ? 1 : 0;
  }, (e) => {
    console.error(e);
    process.exitCode = 2;
  });
}
