// 13: DELLA's MAGPRUNE sparsifier ('della'): the fused merge and sparsifyStats against the
// float64 reference (sort-based ranks), bit-identical on every SIMD path and thread count;
// kept fractions; argument checks.
import * as assert from 'assert';
import { native } from '../lib/native';
import type { DeltaInput, InputDType, MergeJob, OutputDType, Sparsify } from '../lib/binding';
import * as ref from './ref/kernels-ref';
import { checkMerge, everyPathAndThreads } from './10.convert.test';

const stream = { seedLo: 0x1234, seedHi: 9, streamLo: 0xfeedface, streamHi: 17 };

function della(density: number, epsilon: number, rows: number, rescale = 1, factor?: number): Sparsify {
  return { kind: 'della', stream, density, epsilon, rows, rescale, ...(factor === undefined ? {} : { factor }) };
}

/** δ with many exact ties: values from a set of 7 levels. */
function tiedValues(n: number, seed: number): Float32Array {
  const r = ref.rng(seed);
  const levels = [0, 0.25, -0.25, 0.5, -1, 1e-3, -0];
  return Float32Array.from({ length: n }, () => levels[Math.floor(r() * levels.length)]);
}

// [n, rows]: m = 1, short rows (std::sort), long rows and whole tensors (radix sort), ragged tails.
const SHAPES: Array<[number, number]> = [
  [0, 0], [1, 0], [7, 7], [7, 1], [4097, 0], [4097, 17], [37 * 129, 37], [37 * 129, 129], [131075, 0], [131075, 5],
];

describe('13 della: the fused merge', () => {
  for (const dtype of ['BF16', 'F32'] as InputDType[]) {
    it(`della vs the float64 reference, ${dtype}, every shape, rescale 1, 0 and 0 with factor (l1)`, async () => {
      for (const [n, rows] of SHAPES) {
        const base = ref.randomTensor(n, dtype, n + 3);
        const b = ref.decodeRef(base.data, dtype);
        const ft = ref.randomTensor(n, dtype, n + 4, 0.02, b);
        for (const [rescale, factor] of [[1, undefined], [0, undefined], [0, 1.7371]]) {
          const job: MergeJob = {
            base: base as never,
            models: [{ data: ft.data, dtype, weight: 0.8, sparsify: della(0.4, 0.15, rows, rescale!, factor) }],
            consensus: 'none', normalize: false, lambda: 1.1,
            out: new Uint8Array(n * 4), outDtype: 'F32',
          };
          await checkMerge(job, `${dtype} n=${n} rows=${rows} rescale=${rescale} factor=${factor}`);
        }
      }
    });
  }

  it('ties: equal magnitudes rank by index (whole tensor and per row, short and long rows)', async () => {
    for (const [n, rows] of [[4096 * 3, 0], [4096 * 3, 3], [4096 * 3, 48], [999, 0], [1000, 8]] as Array<[number, number]>) {
      const base = ref.tensorOf(new Float32Array(n), 'F32');
      const ft = ref.tensorOf(tiedValues(n, n), 'F32');
      for (const outDtype of ['F32', 'BF16'] as OutputDType[]) {
        const job: MergeJob = {
          base: base as never,
          models: [{ data: ft.data, dtype: 'F32', weight: 1, sparsify: della(0.5, 0.4, rows) }],
          consensus: 'none', normalize: false, lambda: 1,
          out: new Uint8Array(n * ref.dtypeSize(outDtype)), outDtype,
        };
        await checkMerge(job, `tied n=${n} rows=${rows} → ${outDtype}`);
      }
    }
  });

  it('with other models, consensus and normalize (della_ties-like)', async () => {
    const n = 37 * 129;
    const base = ref.randomTensor(n, 'BF16', 77);
    const b = ref.decodeRef(base.data, 'BF16');
    const fts = [0, 1, 2].map((t) => ref.randomTensor(n, 'BF16', 80 + t, 0.02, b));
    const sparsify: Sparsify[] = [della(0.3, 0.1, 37), { kind: 'dense', factor: 1 }, della(0.6, 0.3, 0, 0)];
    for (const consensus of ['none', 'sum', 'count'] as const) {
      const job: MergeJob = {
        base: base as never,
        models: fts.map((ft, t) => ({ data: ft.data, dtype: 'BF16' as InputDType, weight: [1, 0.5, -0.7][t], sparsify: sparsify[t] })),
        consensus, normalize: consensus !== 'none', lambda: 0.9,
        out: new Uint8Array(n * 2), outDtype: 'BF16',
      };
      await checkMerge(job, `3 models ${consensus}`);
    }
  });

  it('tensors above 4M elements: probabilities computed a group of rows at a time, same bytes', async () => {
    const rows = 1030, m = 4099, n = rows * m; // 1023 rows per group: two groups
    const r = ref.rng(11);
    const base = ref.tensorOf(Float32Array.from({ length: n }, () => r() - 0.5), 'F32');
    const b = ref.decodeRef(base.data, 'F32');
    const ft = ref.tensorOf(Float32Array.from({ length: n }, (_, i) => b[i] + (r() - 0.5) * 0.01), 'F32');
    const job: MergeJob = {
      base: base as never,
      models: [
        { data: ft.data, dtype: 'F32', weight: 0.9, sparsify: della(0.35, 0.2, rows) },
        { data: ft.data, dtype: 'F32', weight: 0.4, sparsify: { ...della(0.6, 0.1, rows, 0), stream: { ...stream, streamLo: 99 } } as Sparsify },
      ],
      consensus: 'sum', normalize: true, lambda: 1,
      out: new Uint8Array(n * 2), outDtype: 'BF16',
    };
    await checkMerge(job, `n=${n} rows=${rows}`);
  });

  it('kept fraction per row averages d within 3σ; larger |δ| is kept more often', async () => {
    const rows = 64, m = 4099, n = rows * m, density = 0.3, epsilon = 0.2;
    const r = ref.rng(5);
    const values = Float32Array.from({ length: n }, () => (r() - 0.5) * 2);
    const base = ref.tensorOf(new Float32Array(n), 'F32');
    const ft = ref.tensorOf(values, 'F32');
    const out = new Float32Array(n);
    await native().mergeTensor({
      base: base as never,
      models: [{ data: ft.data, dtype: 'F32', weight: 1, sparsify: della(density, epsilon, rows) }],
      consensus: 'none', normalize: false, lambda: 1, out: new Uint8Array(out.buffer), outDtype: 'F32',
    });
    const p = ref.dellaProbRef(values, density, epsilon, rows);
    let fractionSum = 0, variance = 0, keptLow = 0, keptHigh = 0;
    for (let row = 0; row < rows; ++row) {
      let kept = 0;
      for (let j = 0; j < m; ++j) {
        const i = row * m + j;
        variance += p[i] * (1 - p[i]) / (m * m * rows * rows);
        if (out[i] !== 0) {
          kept++;
          assert.strictEqual(out[i], Math.fround(values[i] / p[i]), `kept value at ${i}`);
          if (Math.abs(values[i]) < 0.5) keptLow++;
          else keptHigh++;
        }
      }
      fractionSum += kept / m;
    }
    const mean = fractionSum / rows;
    assert.ok(Math.abs(mean - density) < 3 * Math.sqrt(variance), `mean kept fraction ${mean}`);
    assert.ok(keptHigh > keptLow * 1.5, `high ${keptHigh} vs low ${keptLow}`);
  });
});

describe('13 della: sparsifyStats', () => {
  it('kept count and Σ|δ| of kept before the 1/p rescale, every path and thread count', async () => {
    for (const [n, rows] of SHAPES) {
      for (const dtype of ['BF16', 'F32'] as InputDType[]) {
        const base = ref.randomTensor(n, dtype, n + 30);
        const ft = ref.randomTensor(n, dtype, n + 31, 0.02, ref.decodeRef(base.data, dtype));
        const input = { base, ft } as unknown as DeltaInput;
        const d = ref.deltaRef(ft, base);
        for (const rescale of [1, 0]) {
          const sp = della(0.5, 0.2, rows, rescale);
          const p = ref.dellaProbRef(d, 0.5, 0.2, rows);
          const keep = (i: number) => ref.keptRef(sp as never, i, p);
          const expected = {
            sumAbs: ref.orderedSum(n, (i) => Math.abs(d[i])),
            sumAbsKept: ref.orderedSum(n, (i) => (keep(i) ? Math.abs(d[i]) : 0)),
            kept: d.reduce((c, _, i) => c + (keep(i) ? 1 : 0), 0),
          };
          await everyPathAndThreads(async (label) => {
            assert.deepStrictEqual(await native().sparsifyStats(input, sp), expected, `${dtype} n=${n} rows=${rows} ${label}`);
          });
        }
      }
    }
  });
});

describe('13 della: argument checks', () => {
  function throwsTypeError(fn: () => unknown, pattern: RegExp, what: string) {
    assert.throws(fn, (e: Error) => e instanceof TypeError && pattern.test(e.message), what);
  }
  it('rejects d ± ε outside (0, 1), negative ε, rescale not 0/1, a bad factor, rows not dividing n, missing fields', () => {
    const n = native();
    const t = { data: new Uint8Array(40), dtype: 'F32' as const };
    const job = (sp: unknown): MergeJob => ({
      base: t, models: [{ ...t, weight: 1, sparsify: sp as Sparsify }],
      consensus: 'none', normalize: false, lambda: 1, out: new Uint8Array(40), outDtype: 'F32',
    });
    const cases: Array<[unknown, RegExp, string]> = [
      [della(0.5, 0.5, 0), /epsilon/, 'd - ε = 0'],
      [della(0.8, 0.2, 0), /epsilon/, 'd + ε = 1'],
      [della(0.5, -0.1, 0), /epsilon/, 'negative ε'],
      [della(0.5, 0.1, 0, 2), /rescale/, 'rescale 2'],
      [della(0.5, 0.1, 0, 1, 2), /factor applies only with rescale 0/, 'a factor with the 1/p rescale'],
      [della(0.5, 0.1, 0, 0, NaN), /factor must not be NaN/, 'NaN factor'],
      [della(0.5, 0.1, 0, 0, Infinity), /factor must be finite/, 'infinite factor'],
      [della(0.5, 0.1, 3), /rows/, 'rows 3 of 10'],
      [della(0.5, 0.1, -1), /rows/, 'negative rows'],
      [{ kind: 'della', stream, density: 0.5, rows: 0, rescale: 1 }, /epsilon/, 'no epsilon'],
      [{ kind: 'della', density: 0.5, epsilon: 0.1, rows: 0, rescale: 1 }, /stream/, 'no stream'],
    ];
    for (const [sp, pattern, what] of cases) {
      throwsTypeError(() => n.mergeTensor(job(sp)), pattern, `mergeTensor: ${what}`);
      throwsTypeError(() => n.sparsifyStats({ ft: t }, sp as Sparsify), pattern, `sparsifyStats: ${what}`);
    }
    throwsTypeError(() => n.mergeTensor(job({ kind: 'magprune' })), /della/, 'unknown kind lists della');
  });
});
