// 60: the CUDA kernels (native/src/cuda) against the CPU kernels, bit for bit, through the addon.
// Where the addon reports no CUDA (no GPU, no driver, built without nvcc) every GPU test is
// skipped with the reason in its title; nothing here may fail on a machine without a GPU.
// The GPU path is chosen with `setDevice('cuda' | 'cpu' | 'auto')` once the addon exposes it.
import * as assert from 'assert';
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { native } from '../lib/native';
import type { InputDType, NativeBinding, OutputDType, Sparsify } from '../lib/binding';

type Device = 'cpu' | 'cuda' | 'auto';
interface DeviceSwitch {
  setDevice(device: Device): void;
}

const SIZES = [0, 1, 7, 4097, 37 * 129];

function skipWith(ctx: Mocha.Context, reason: string): never {
  const t = ctx.currentTest ?? ctx.test;
  if (t && !t.title.includes('skipped:')) t.title += ` (skipped: ${reason})`;
  ctx.skip();
  throw new Error('unreachable');
}

let rngState = 0x9e3779b9;
function nextU32(): number {
  // xorshift32: deterministic test data
  rngState ^= rngState << 13;
  rngState >>>= 0;
  rngState ^= rngState >>> 17;
  rngState ^= rngState << 5;
  rngState >>>= 0;
  return rngState;
}

function randomBytes(n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; ++i) b[i] = nextU32() & 255;
  return b;
}

/** BF16 values with many exact ties (multiples of 2^-10). */
function tiedBF16(n: number): Uint8Array {
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  const out = new Uint16Array(n);
  for (let i = 0; i < n; ++i) {
    f[0] = ((nextU32() % 97) - 48) / 1024;
    out[i] = u[0] >>> 16;
  }
  return new Uint8Array(out.buffer);
}

/**
 * tiedBF16 with every fifth element (from `offset`) a special: NaNs of several payloads and both
 * signs, a signaling NaN, ±Inf, ±0. x86 propagates a NaN operand's bits and gives 0xFFC0... for
 * Inf - Inf; CUDA's own arithmetic gives 0x7FFF... for both, so these catch a GPU path that does
 * not reproduce the CPU's NaN bits.
 */
function withSpecialsBF16(n: number, offset: number): Uint8Array {
  const specials = [0x7fc0, 0x7fc5, 0xffc1, 0x7f81, 0x7f80, 0xff80, 0x8000, 0x0000];
  const out = new Uint16Array(tiedBF16(n).buffer);
  for (let i = offset % 5, k = offset; i < n; i += 5, k += 3) out[i] = specials[k % specials.length];
  return new Uint8Array(out.buffer);
}

const DTYPE_SIZE: Record<InputDType, number> = { F32: 4, F16: 2, BF16: 2, F64: 8, F8_E4M3: 1, F8_E5M2: 1 };

function sameBytes(a: ArrayBufferView, b: ArrayBufferView, label: string): void {
  const x = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  const y = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  assert.strictEqual(x.length, y.length, `${label}: length`);
  for (let i = 0; i < x.length; ++i) if (x[i] !== y[i]) assert.fail(`${label}: byte ${i} differs (${x[i]} vs ${y[i]})`);
}

describe('60 cuda', function () {
  let n: NativeBinding | undefined;
  let loadError = '';
  before(function () {
    try {
      n = native();
    } catch (e) {
      loadError = (e as Error).message.split('\n')[0];
    }
  });

  it('the device element functions, compiled for this CPU, match the reference (dppa_cuda_hostcheck; no GPU needed)', function () {
    // device_math.cuh (decode, encode, Philox, and the x86 NaN bits of addCpu & co.) built as
    // host code, so its bit-level logic is checked on every machine, not only where a GPU is lent.
    const src = path.join(__dirname, '..', '..', 'native', 'src', 'cuda');
    const exe = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'dppa-hostcheck-')), 'hostcheck');
    try {
      try {
        execFileSync('c++', ['--version'], { stdio: 'ignore' });
      } catch {
        skipWith(this, 'no C++ compiler (c++) on PATH');
      }
      execFileSync('c++', ['-std=c++17', '-O2', '-ffp-contract=off', `-I${src}`, path.join(src, 'hostcheck.cpp'), path.join(src, 'reference.cpp'), '-o', exe], { stdio: 'pipe' });
      const report = execFileSync(exe, { encoding: 'utf8' });
      assert.match(report, /NaN bits of add\/sub\/mul\/div: 0 mismatches/, report);
      assert.match(report, /^PASSED$/m, report);
    } finally {
      fs.rmSync(path.dirname(exe), { recursive: true, force: true });
    }
  });

  it('reports availability as { available, description }', function () {
    if (!n) skipWith(this, `addon not loadable: ${loadError}`);
    if (!n.cuda) skipWith(this, 'the addon does not export `cuda` yet');
    assert.strictEqual(typeof n.cuda.available, 'boolean');
    assert.strictEqual(typeof n.cuda.description, 'string');
    if (!n.cuda.available) assert.match(n.cuda.description, /^unavailable: .+/);
    else assert.ok(n.cuda.description.length > 0);
  });

  describe('GPU results equal CPU results', function () {
    let dev: DeviceSwitch;
    beforeEach(function () {
      if (!n) skipWith(this, `addon not loadable: ${loadError}`);
      if (!n.cuda) skipWith(this, 'the addon does not export `cuda` yet');
      if (!n.cuda.available) skipWith(this, `cuda ${n.cuda.description}`);
      const maybe = n as unknown as Partial<DeviceSwitch>;
      if (typeof maybe.setDevice !== 'function') skipWith(this, 'the addon has no setDevice() yet');
      dev = maybe as DeviceSwitch;
    });
    afterEach(function () {
      if (dev) dev.setDevice('cpu'); // the default: later suites must not run on the GPU by accident
    });

    /** Runs fn on the CPU, then on the GPU, and returns both results. */
    async function both<T>(fn: () => Promise<T>): Promise<[T, T]> {
      dev.setDevice('cpu');
      const cpu = await fn();
      dev.setDevice('cuda');
      const gpu = await fn();
      return [cpu, gpu];
    }

    it('decode, every dtype and bit pattern', async function () {
      for (const size of SIZES) {
        for (const dtype of Object.keys(DTYPE_SIZE) as InputDType[]) {
          const data = randomBytes(size * DTYPE_SIZE[dtype]);
          const outs = [new Float32Array(size), new Float32Array(size)];
          let k = 0;
          await both(() => n!.decode({ data, dtype }, outs[k++]));
          sameBytes(outs[1], outs[0], `decode ${dtype} n=${size}`);
        }
      }
    });

    it('encode F32/F16/BF16', async function () {
      for (const size of SIZES) {
        const src = new Float32Array(randomBytes(size * 4).buffer);
        for (const dtype of ['F32', 'F16', 'BF16'] as OutputDType[]) {
          const es = dtype === 'F32' ? 4 : 2;
          const outs = [new Uint8Array(size * es), new Uint8Array(size * es)];
          let k = 0;
          await both(() => n!.encode(src, dtype, outs[k++]));
          sameBytes(outs[1], outs[0], `encode ${dtype} n=${size}`);
        }
      }
    });

    it('absStats, selectThresholds (whole and per row, both tie rules), sparsifyStats', async function () {
      for (const size of SIZES) {
        const input = { base: { data: tiedBF16(size), dtype: 'BF16' as const }, ft: { data: tiedBF16(size), dtype: 'BF16' as const } };
        const [sc, sg] = await both(() => n!.absStats(input, new Float64Array([0, 0.01, 0.03])));
        assert.deepStrictEqual(sg, sc, `absStats n=${size}`);
        const ks = new Float64Array([0, Math.min(1, size), Math.floor(size / 10), Math.floor(size / 2), size]);
        for (const rule of ['index', 'drop'] as const) {
          const [rc, rg] = await both(() => n!.selectThresholds(input, ks, { rule }));
          assert.deepStrictEqual(Array.from(rg.bits), Array.from(rc.bits), `select bits ${rule} n=${size}`);
          assert.deepStrictEqual(Array.from(rg.cutoff), Array.from(rc.cutoff), `select cutoff ${rule} n=${size}`);
        }
        if (size === 37 * 129) {
          const rks = new Float64Array([0, 1, 43, 129]);
          const [rc, rg] = await both(() => n!.selectThresholds(input, rks, { rows: 37 }));
          assert.deepStrictEqual(Array.from(rg.bits), Array.from(rc.bits), 'row select bits');
          assert.deepStrictEqual(Array.from(rg.cutoff), Array.from(rc.cutoff), 'row select cutoff');
        }
        const dare: Sparsify = { kind: 'random', stream: { seedLo: 1, seedHi: 2, streamLo: 3, streamHi: 4 }, density: 0.3, rescale: 1 / 0.3 };
        const [pc, pg] = await both(() => n!.sparsifyStats(input, dare));
        assert.deepStrictEqual(pg, pc, `sparsifyStats DARE n=${size}`);
      }
    });

    it('NaN and Inf: delta and merges give the CPU NaN bits (propagated payloads, default NaN)', async function () {
      for (const size of SIZES) {
        const base = { data: withSpecialsBF16(size, 0), dtype: 'BF16' as const };
        const fts = [1, 2, 3].map((k) => withSpecialsBF16(size, k));
        const deltas = [new Float32Array(size), new Float32Array(size)];
        let j = 0;
        await both(() => n!.delta({ base, ft: { data: fts[0], dtype: 'BF16' } }, deltas[j++]));
        sameBytes(deltas[1], deltas[0], `delta with specials n=${size}`);
        const rules = await n!.selectThresholds({ base, ft: { data: fts[0], dtype: 'BF16' } }, new Float64Array([Math.floor(size / 10), Math.floor(size / 2)]));
        const sparsify: Sparsify[] = [
          { kind: 'bands', rules, factor: new Float64Array([1.8, 1.0]) },
          { kind: 'random', stream: { seedLo: 5, seedHi: 6, streamLo: 7, streamHi: 8 }, density: 0.4, rescale: 2.5 },
          { kind: 'dense', factor: 0.7 },
        ];
        for (const outDtype of ['F32', 'BF16', 'F16'] as OutputDType[]) {
          for (const consensus of ['none', 'sum'] as const) {
            const es = outDtype === 'F32' ? 4 : 2;
            const outs = [new Uint8Array(size * es), new Uint8Array(size * es)];
            let k = 0;
            const [rc, rg] = await both(() =>
              n!.mergeTensor({
                base,
                models: fts.map((data, t) => ({ data, dtype: 'BF16' as const, weight: [1, -0.5, 0.8][t], sparsify: sparsify[t] })),
                consensus,
                normalize: true,
                lambda: 0.9,
                out: outs[k++],
                outDtype,
              }),
            );
            sameBytes(outs[1], outs[0], `merge with specials ${consensus} -> ${outDtype} n=${size}`);
            assert.deepStrictEqual(Array.from(rg.nonFinite), Array.from(rc.nonFinite));
          }
        }
      }
    });

    it('randomUniform (Philox4x32-10) is the same stream', async function () {
      const outs = [new Float32Array(4099), new Float32Array(4099)];
      let k = 0;
      await both(() => n!.randomUniform({ seedLo: 7, seedHi: 0, streamLo: 0xdeadbeef, streamHi: 1 }, 3, outs[k++]));
      sameBytes(outs[1], outs[0], 'randomUniform');
    });

    it('mergeTensor: bands, DARE and dense under every consensus', async function () {
      for (const size of SIZES) {
        const base = { data: tiedBF16(size), dtype: 'BF16' as const };
        const fts = [tiedBF16(size), tiedBF16(size), tiedBF16(size)];
        const rules = await n!.selectThresholds({ base, ft: { data: fts[0], dtype: 'BF16' } }, new Float64Array([Math.floor(size / 10), Math.floor(size / 2)]));
        const sparsify: Sparsify[] = [
          { kind: 'bands', rules, factor: new Float64Array([1.8, 1.0]) },
          { kind: 'random', stream: { seedLo: 5, seedHi: 6, streamLo: 7, streamHi: 8 }, density: 0.4, rescale: 2.5 },
          { kind: 'dense', factor: 0.7 },
        ];
        const weights = [1, -0.5, 0.8];
        for (const consensus of ['none', 'sum', 'count'] as const) {
          for (const normalize of [false, true]) {
            const outs = [new Uint8Array(size * 2), new Uint8Array(size * 2)];
            let k = 0;
            const [rc, rg] = await both(() =>
              n!.mergeTensor({
                base,
                models: fts.map((data, t) => ({ data, dtype: 'BF16' as const, weight: weights[t], sparsify: sparsify[t] })),
                consensus,
                normalize,
                lambda: 0.9,
                out: outs[k++],
                outDtype: 'BF16',
              }),
            );
            sameBytes(outs[1], outs[0], `merge ${consensus}${normalize ? ' normalize' : ''} n=${size}`);
            assert.deepStrictEqual(Array.from(rg.nonFinite), Array.from(rc.nonFinite));
          }
        }
      }
    });
  });
});
