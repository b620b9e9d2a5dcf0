// 11: statistics, selection, the fused merge, linear combination and the generator, against
// the float64 references, and bit-identical across SIMD paths and thread counts.
import * as assert from 'assert';
import { native } from '../lib/native';
import type { DeltaInput, InputDType, MergeJob, OutputDType, Sparsify } from '../lib/binding';
import * as ref from './ref/kernels-ref';
import { SIZES, assertSameBytes, everyPathAndThreads } from './10.convert.test';

const DTYPES: InputDType[] = ['BF16', 'F16', 'F32'];

function pair(n: number, dtype: string, seed: number, spread = 0.01) {
  const base = ref.randomTensor(n, dtype, seed);
  const ft = ref.randomTensor(n, dtype, seed + 1, spread, ref.decodeRef(base.data, dtype));
  return { base, ft, input: { base, ft } as unknown as DeltaInput, d: ref.deltaRef(ft, base) };
}

/** δ with many exact ties: values drawn from a set of 5 (quantized-like). */
function tiedDelta(n: number, seed: number) {
  const r = ref.rng(seed);
  const levels = [0, 0.25, -0.25, 0.5, -1];
  const values = Float32Array.from({ length: n }, () => levels[Math.floor(r() * 5)]);
  const ft = ref.tensorOf(values, 'F32');
  return { input: { ft } as unknown as DeltaInput, d: values };
}

describe('11 kernels: statistics', () => {
  for (const dtype of DTYPES) {
    it(`absStats (${dtype}): Σ|δ| in the documented order, counts, non-finite; same bits everywhere`, async () => {
      for (const n of SIZES) {
        const { input, d } = pair(n, dtype, n);
        const thresholds = [0, 0.001, 0.005, 1e9];
        const expected = ref.absStatsRef(d, thresholds);
        await everyPathAndThreads(async (label) => {
          const s = await native().absStats(input, Float64Array.from(thresholds));
          assert.strictEqual(s.n, n);
          assert.ok(Object.is(s.sumAbs, expected.sumAbs), `${dtype} n=${n} ${label}: ${s.sumAbs} vs ${expected.sumAbs}`);
          assert.deepStrictEqual(Array.from(s.countsAbove), expected.countsAbove, `${label} counts`);
          assert.strictEqual(s.nonFinite, expected.nonFinite);
        });
        const naive = d.reduce((a, x) => a + Math.abs(x), 0);
        assert.ok(Math.abs(expected.sumAbs - naive) <= 1e-9 * Math.max(1, naive));
      }
    });
  }

  it('absStats when δ cannot be computed in registers (mixed dtypes, unaligned F32): the same sums', async () => {
    const n = 4097 * 3;
    const base = ref.randomTensor(n, 'F32', 41);
    const ft = ref.randomTensor(n, 'BF16', 42, 1, ref.decodeRef(base.data, 'F32'));
    const d = ref.deltaRef(ft, base);
    // The same F32 bytes one byte into a buffer: not 4-byte aligned.
    const shifted = new Uint8Array(base.data.length + 1).subarray(1);
    shifted.set(base.data);
    const thresholds = [0, 0.5, 2];
    const expected = ref.absStatsRef(d, thresholds);
    for (const input of [{ base, ft }, { base: { data: shifted, dtype: 'F32' }, ft: ref.tensorOf(ref.decodeRef(ft.data, 'BF16'), 'F32') }]) {
      await everyPathAndThreads(async (label) => {
        const s = await native().absStats(input as never, Float64Array.from(thresholds));
        assert.ok(Object.is(s.sumAbs, expected.sumAbs), `${label}: ${s.sumAbs} vs ${expected.sumAbs}`);
        assert.deepStrictEqual(Array.from(s.countsAbove), expected.countsAbove, `${label} counts`);
      });
    }
  });

  it('absStats counts NaN and Inf', async () => {
    const values = Float32Array.from([1, NaN, -Infinity, 2, Infinity, -3]);
    const s = await native().absStats({ ft: ref.tensorOf(values, 'F32') as never }, new Float64Array([1.5]));
    assert.strictEqual(s.nonFinite, 3);
    assert.deepStrictEqual(Array.from(s.countsAbove), [4]);
    assert.ok(Number.isNaN(s.sumAbs), 'a NaN makes the sum NaN');
  });

  it('absHistogram matches the reference for full and prefixed histograms', async () => {
    const { input, d } = pair(37 * 129, 'BF16', 9);
    await everyPathAndThreads(async (label) => {
      const h = await native().absHistogram(input, 16, 65536, 0, 0);
      assert.deepStrictEqual(Array.from(h), ref.histogramRef(d, 16, 65536, 0, 0), label);
      const top = ref.absBits(d[0]) >>> 16;
      const h2 = await native().absHistogram(input, 0, 65536, 0xffff0000, (top << 16) >>> 0);
      assert.deepStrictEqual(Array.from(h2), ref.histogramRef(d, 0, 65536, 0xffff0000, (top << 16) >>> 0), label);
      const h3 = await native().absHistogram(input, 23, 256, 0, 0);
      assert.deepStrictEqual(Array.from(h3), ref.histogramRef(d, 23, 256, 0, 0), label);
    });
  });

  it('gram: exact products summed in the documented order', async () => {
    const n = 37 * 129;
    const inputs = [pair(n, 'BF16', 1), pair(n, 'F16', 3), pair(n, 'F32', 5)];
    const expected: number[] = [];
    for (const a of inputs) for (const b of inputs) expected.push(ref.orderedSum(n, (i) => a.d[i] * b.d[i]));
    await everyPathAndThreads(async (label) => {
      const g = await native().gram(inputs.map((p) => p.input));
      assert.deepStrictEqual(Array.from(g), expected, label);
    });
  });

  it('sparsifyStats for dense, bands and random', async () => {
    const { input, d } = pair(4097, 'BF16', 11);
    const rules = await native().selectThresholds(input, new Float64Array([100, 1000]));
    const stream = { seedLo: 7, seedHi: 0, streamLo: 1, streamHi: 2 };
    const cases: Array<[Sparsify, (i: number) => boolean]> = [
      [{ kind: 'dense', factor: 2 }, () => true],
      [{ kind: 'bands', rules, factor: new Float64Array([1, 1]) }, (i) => ref.bandOf(ref.absBits(d[i]), i, rules.bits, rules.cutoff, 0, 2) >= 0],
      [{ kind: 'random', stream, density: 0.3, rescale: 1 / 0.3 }, (i) => ref.uniformRef(stream, i) < 0.3],
    ];
    for (const [sp, keep] of cases) {
      const expected = {
        sumAbs: ref.orderedSum(d.length, (i) => Math.abs(d[i])),
        sumAbsKept: ref.orderedSum(d.length, (i) => (keep(i) ? Math.abs(d[i]) : 0)),
        kept: d.reduce((c, _, i) => c + (keep(i) ? 1 : 0), 0),
      };
      await everyPathAndThreads(async (label) => {
        assert.deepStrictEqual(await native().sparsifyStats(input, sp), expected, `${sp.kind} ${label}`);
      });
    }
  });
});

describe('11 kernels: selectThresholds', () => {
  async function checkSelect(input: DeltaInput, d: Float32Array, ks: number[], rule: 'index' | 'drop', what: string) {
    const expected = ks.map((k) => ref.selectRef(d, k, rule));
    await everyPathAndThreads(async (label) => {
      const r = await native().selectThresholds(input, Float64Array.from(ks), { rule });
      assert.deepStrictEqual(Array.from(r.bits), expected.map((e) => e.bits), `${what} ${label} bits`);
      assert.deepStrictEqual(Array.from(r.cutoff), expected.map((e) => e.cutoff), `${what} ${label} cutoff`);
    });
    // The rule keeps exactly k (index) or everything strictly above τ (drop).
    const r = await native().selectThresholds(input, Float64Array.from(ks), { rule });
    ks.forEach((k, b) => {
      const kept = d.reduce((c, x, i) => c + (ref.bandOf(ref.absBits(x), i, r.bits, r.cutoff, b, 1) >= 0 ? 1 : 0), 0);
      if (rule === 'index') assert.strictEqual(kept, k, `${what}: k=${k} keeps exactly k`);
      else assert.ok(kept <= k, `${what}: drop keeps at most k`);
    });
  }

  for (const dtype of DTYPES) {
    it(`exact thresholds for several ks at once (${dtype}, awkward sizes)`, async () => {
      for (const n of SIZES) {
        const { input, d } = pair(n, dtype, 100 + n);
        const ks = [0, Math.floor(n * 0.1), Math.floor(n / 2), n].filter((k, i, a) => a.indexOf(k) === i);
        await checkSelect(input, d, ks, 'index', `${dtype} n=${n}`);
        await checkSelect(input, d, ks, 'drop', `${dtype} n=${n} drop`);
      }
    });
  }

  it('many exact ties: exactly k kept, lower indices first', async () => {
    for (const n of [7, 4097, 131075]) {
      const { input, d } = tiedDelta(n, n);
      await checkSelect(input, d, [1, Math.floor(n / 5), Math.floor(n / 3), n - 1, n], 'index', `ties n=${n}`);
      await checkSelect(input, d, [Math.floor(n / 3)], 'drop', `ties drop n=${n}`);
    }
  });

  it("'drop' reproduces τ = sorted(|δ|)[floor(n·s)] and drops every |δ| <= τ", async () => {
    const { input, d } = tiedDelta(1000, 3);
    const s = 0.37;
    const n = d.length;
    const r = await native().selectThresholds(input, new Float64Array([n - Math.floor(n * s)]), { rule: 'drop' });
    const sorted = Array.from(d, (x) => ref.absBits(x)).sort((a, b) => a - b);
    assert.strictEqual(r.bits[0], sorted[Math.floor(n * s)]);
    assert.strictEqual(r.cutoff[0], -1);
  });

  it('per-row selection (37 × 129, with ties)', async () => {
    const rows = 37, cols = 129;
    for (const { input, d } of [pair(rows * cols, 'BF16', 77), tiedDelta(rows * cols, 78)]) {
      const ks = [0, 1, 13, 64, 129];
      for (const rule of ['index', 'drop'] as const) {
        await everyPathAndThreads(async (label) => {
          const r = await native().selectThresholds(input, Float64Array.from(ks), { rule, rows });
          assert.strictEqual(r.rows, rows);
          for (let row = 0; row < rows; ++row) {
            const slice = d.subarray(row * cols, (row + 1) * cols);
            ks.forEach((k, b) => {
              const e = ref.selectRef(slice, k, rule, k === 0 ? 0 : row * cols);
              assert.strictEqual(r.bits[row * ks.length + b], e.bits, `${label} row ${row} k ${k}`);
              assert.strictEqual(r.cutoff[row * ks.length + b], e.cutoff, `${label} row ${row} k ${k} cutoff`);
            });
          }
        });
      }
    }
  });
});

describe('11 kernels: mergeTensor', () => {
  async function checkMerge(job: MergeJob, what: string) {
    const expected = ref.mergeRef(job as never);
    let first: Uint8Array | undefined;
    await everyPathAndThreads(async (label) => {
      job.out.fill(0xcd);
      const r = await native().mergeTensor(job);
      assertSameBytes(job.out, expected.out, `${what} ${label}`);
      assert.deepStrictEqual(Array.from(r.nonFinite), expected.nonFinite, `${what} ${label} nonFinite`);
      if (!first) first = job.out.slice();
      else assertSameBytes(job.out, first, `${what} ${label} vs first path`);
    });
  }

  function models(n: number, dtype: string, count: number, seed: number) {
    const base = ref.randomTensor(n, dtype, seed);
    const b = ref.decodeRef(base.data, dtype);
    const fts = Array.from({ length: count }, (_, t) => ref.randomTensor(n, dtype, seed + 10 + t, 0.02, b));
    return { base, fts };
  }

  for (const dtype of DTYPES) {
    for (const consensus of ['none', 'sum', 'count'] as const) {
      it(`dense/bands/random models, consensus ${consensus}, ${dtype} → every out dtype`, async () => {
        for (const n of SIZES) {
          const { base, fts } = models(n, dtype, 3, n + 1);
          const bandInput = { base, ft: fts[1] } as unknown as DeltaInput;
          const rules = await native().selectThresholds(bandInput, Float64Array.from([Math.floor(n * 0.1), Math.floor(n * 0.2)]));
          const sparsify: Sparsify[] = [
            { kind: 'dense', factor: 1.25 },
            { kind: 'bands', rules, factor: new Float64Array([1.8, 1.0]) },
            { kind: 'random', stream: { seedLo: 42, seedHi: 1, streamLo: 3, streamHi: 4 }, density: 0.4, rescale: 1 / 0.4 },
          ];
          for (const outDtype of ['BF16', 'F16', 'F32'] as OutputDType[]) {
            for (const normalize of [false, true]) {
              const job: MergeJob = {
                base: base as never,
                models: fts.map((ft, t) => ({ data: ft.data, dtype: ft.dtype as InputDType, weight: [1, 0.7, -0.3][t], sparsify: sparsify[t] })),
                consensus,
                normalize,
                lambda: 0.9,
                out: new Uint8Array(n * ref.dtypeSize(outDtype)),
                outDtype,
              };
              await checkMerge(job, `${dtype}→${outDtype} n=${n} ${consensus} norm=${normalize}`);
            }
          }
        }
      });
    }
  }

  it('zeros never match the elected sign; a zero divisor becomes 1', async () => {
    const base = ref.tensorOf(Float32Array.from([1, 1, 1, 1]), 'F32');
    const a = ref.tensorOf(Float32Array.from([1, 1, 2, 1]), 'F32'); // δ: 0, 0, 1, 0
    const b = ref.tensorOf(Float32Array.from([1, 0, 0, 3]), 'F32'); // δ: 0, -1, -1, 2
    const out = new Uint8Array(16);
    const job: MergeJob = {
      base: base as never,
      models: [a, b].map((t) => ({ data: t.data, dtype: t.dtype as InputDType, weight: 1, sparsify: { kind: 'dense', factor: 1 } as Sparsify })),
      consensus: 'sum', normalize: true, lambda: 1, out, outDtype: 'F32',
    };
    await native().mergeTensor(job);
    // [0]: all zero → divisor 0 → 1, out = base. [1]: γ = -1, only b matches → -1/1.
    // [2]: sum 0 → γ = +1, only a matches → 1. [3]: γ=+1, only b → 2.
    assert.deepStrictEqual(Array.from(new Float32Array(out.buffer)), [1, 0, 2, 3]);
    await checkMerge(job, 'zeros');
  });

  it('denormals, ±0, NaN and Inf go through the merge bit-correctly; non-finite inputs are counted', async () => {
    const special = new Float32Array(new Uint32Array([0x00000001, 0x80000000, 0x807fffff, 0x7fc00000, 0x7f800000, 0, 0x00400000, 0xff800000, 0x3f800000]).buffer);
    const base = ref.tensorOf(special, 'F32');
    const ft = ref.tensorOf(special.map((x, i) => (i % 2 ? x : 0)), 'F32');
    for (const outDtype of ['F32', 'BF16', 'F16'] as OutputDType[]) {
      const job: MergeJob = {
        base: base as never,
        models: [{ data: ft.data, dtype: ft.dtype as InputDType, weight: 0.5, sparsify: { kind: 'dense', factor: 1 } }],
        consensus: 'none', normalize: false, lambda: 1, out: new Uint8Array(special.length * ref.dtypeSize(outDtype)), outDtype,
      };
      await checkMerge(job, `special → ${outDtype}`);
    }
  });

  it('DARE: kept fraction within 3σ of density, kept values = rescale·δ, mask independent of threads', async () => {
    const n = 131075, density = 0.3, rescale = 1 / density;
    const base = ref.tensorOf(new Float32Array(n), 'F32');
    const ftValues = Float32Array.from({ length: n }, (_, i) => 1 + (i % 7));
    const ft = ref.tensorOf(ftValues, 'F32');
    const stream = { seedLo: 123, seedHi: 0, streamLo: 0xdeadbeef, streamHi: 5 };
    const outs: Float32Array[] = [];
    await everyPathAndThreads(async () => {
      const out = new Float32Array(n);
      await native().mergeTensor({
        base: base as never,
        models: [{ data: ft.data, dtype: ft.dtype as InputDType, weight: 1, sparsify: { kind: 'random', stream, density, rescale } }],
        consensus: 'none', normalize: false, lambda: 1, out: new Uint8Array(out.buffer), outDtype: 'F32',
      });
      outs.push(out);
    });
    const out = outs[0];
    let kept = 0;
    for (let i = 0; i < n; ++i) {
      if (out[i] !== 0) {
        kept++;
        assert.strictEqual(out[i], Math.fround(Math.fround(rescale) * ftValues[i]));
      }
    }
    const sigma = Math.sqrt(n * density * (1 - density));
    assert.ok(Math.abs(kept - n * density) < 3 * sigma, `kept ${kept} of ${n}`);
    for (const o of outs) assert.deepStrictEqual(o, out);
  });
});

describe('11 kernels: linearCombine, randomUniform, copy', () => {
  it('linearCombine against the reference, every path', async () => {
    for (const n of SIZES) {
      const inputs = [ref.randomTensor(n, 'BF16', 1), ref.randomTensor(n, 'F16', 2), ref.randomTensor(n, 'F32', 3)];
      const coeffs = [0.5, 0.3, 0.2];
      for (const outDtype of ['BF16', 'F16', 'F32'] as OutputDType[]) {
        const expected = ref.linearRef(inputs, coeffs, outDtype);
        await everyPathAndThreads(async (label) => {
          const out = new Uint8Array(n * ref.dtypeSize(outDtype));
          const r = await native().linearCombine(inputs as never, Float64Array.from(coeffs), out, outDtype);
          assertSameBytes(out, expected.out, `linear n=${n} ${outDtype} ${label}`);
          assert.deepStrictEqual(Array.from(r.nonFinite), expected.nonFinite);
        });
      }
    }
  });

  it('randomUniform is Philox4x32-10 (known answer) and matches the JS generator at any start', async () => {
    // Random123's known-answer test: counter 0, key 0.
    assert.deepStrictEqual(ref.philox([0, 0, 0, 0], [0, 0]), [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]);
    const stream = { seedLo: 0xffffffff, seedHi: 3, streamLo: 17, streamHi: 0x80000000 };
    for (const start of [0, 1, 3, 2 ** 32 * 4 + 5]) {
      await everyPathAndThreads(async (label) => {
        const out = new Float32Array(4099);
        await native().randomUniform(stream, start, out);
        for (let i = 0; i < out.length; i += 97) assert.strictEqual(out[i], ref.uniformRef(stream, start + i), `${label} start ${start} i ${i}`);
      });
    }
  });

  it('copy copies', async () => {
    const src = new Uint8Array(3 * 1024 * 1024 + 5).map((_, i) => i * 31);
    const dst = new Uint8Array(src.length);
    await native().copy(src, dst);
    assert.ok(Buffer.from(src).equals(Buffer.from(dst)));
  });
});
