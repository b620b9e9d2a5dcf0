// 16: the fused loop of mergeTensor (every model dense, random or bands, one input dtype):
// bit-identical to the float64 reference and on every SIMD path and thread count, including
// normalize with a vanishing divisor, special values, and unaligned F32 buffers (generic path).
// The second part drives the loop's cases: model counts 1..4 and more, 0..3 bands per model
// mixed in one job, band limits whose ties end inside a tile (several in one tile, per-row
// rules), every consensus with each divisor rule, and NaN/Inf counts in the rare tiles that
// are recounted.
import { native } from '../lib/native';
import type { DeltaInput, InputDType, MergeJob, MergeModel, OutputDType, Sparsify } from '../lib/binding';
import * as ref from './ref/kernels-ref';
import { SIZES, checkMerge } from './10.convert.test';

/** A copy of bytes starting `shift` bytes into a fresh buffer (unaligned views for shift % 4 != 0). */
function shifted(bytes: Uint8Array, shift: number): Uint8Array {
  const buffer = new Uint8Array(bytes.length + shift);
  buffer.set(bytes, shift);
  return buffer.subarray(shift);
}

describe('16 fused dense merge', () => {
  for (const dtype of ['BF16', 'F16', 'F32'] as InputDType[]) {
    it(`task arithmetic shapes, ${dtype} → every out dtype, 1–4 models, normalize on/off`, async () => {
      for (const n of SIZES) {
        const base = ref.randomTensor(n, dtype, n + 7);
        const b = ref.decodeRef(base.data, dtype);
        const fts = [0, 1, 2, 3].map((t) => ref.randomTensor(n, dtype, n + 20 + t, 0.02, b));
        for (const count of [1, 3, 4]) {
          for (const outDtype of ['BF16', 'F16', 'F32'] as OutputDType[]) {
            for (const normalize of [false, true]) {
              const weights = [0.5, -0.25, 1.5, 0.3];
              const job: MergeJob = {
                base: base as never,
                // Model 2 is DARE ('random'): fused too.
                models: fts.slice(0, count).map((ft, t) => ({
                  data: ft.data, dtype, weight: weights[t],
                  sparsify: t === 2
                    ? ({ kind: 'random', stream: { seedLo: 3, seedHi: 1, streamLo: 8, streamHi: 9 }, density: 0.35, rescale: 1 / 0.35 } as Sparsify)
                    : ({ kind: 'dense', factor: [1, 0.7, 1.3, 2][t] } as Sparsify),
                })),
                consensus: 'none', normalize, lambda: 0.85,
                out: new Uint8Array(n * ref.dtypeSize(outDtype)), outDtype,
              };
              await checkMerge(job, `${dtype}→${outDtype} n=${n} models=${count} norm=${normalize}`);
            }
          }
        }
      }
    });
  }

  it('weights summing to ~0 (divisor → 1), special values, zero models', async () => {
    const special = new Float32Array(new Uint32Array([0x00000001, 0x80000000, 0x807fffff, 0x7fc00000, 0x7f800000, 0, 0x00400000, 0xff800000, 0x3f800000, 0x7f7fffff, 0xff7fffff, 0x33d6bf95, 0xc0490fdb, 0x3e800000, 0x42f6e979, 0x00000002, 0x80000003]).buffer);
    const base = ref.tensorOf(special.map((x, i) => (i % 3 ? x : 1.5)), 'F32');
    const ft1 = ref.tensorOf(special, 'F32');
    // No NaN meets a NaN of the other sign (which one propagates is not specified).
    const ft2 = ref.tensorOf(special.map((x, i) => (i % 2 && !Number.isNaN(x) ? -x : 0.25)), 'F32');
    for (const weights of [[1, -1], [1e-9, 0], [0.5, 0.5]]) {
      for (const outDtype of ['F32', 'BF16', 'F16'] as OutputDType[]) {
        const job: MergeJob = {
          base: base as never,
          models: [ft1, ft2].map((t, k) => ({ data: t.data, dtype: 'F32' as InputDType, weight: weights[k], sparsify: { kind: 'dense' as const, factor: 1 } })),
          consensus: 'none', normalize: true, lambda: 1,
          out: new Uint8Array(special.length * ref.dtypeSize(outDtype)), outDtype,
        };
        await checkMerge(job, `special w=${weights} → ${outDtype}`);
      }
    }
    const job: MergeJob = { base: base as never, models: [], consensus: 'none', normalize: true, lambda: 1, out: new Uint8Array(special.length * 4), outDtype: 'F32' };
    await checkMerge(job, 'no models');
  });

  it('unaligned F32 inputs and output give the same bytes as aligned ones', async () => {
    const n = 4097 + 64;
    const base = ref.randomTensor(n, 'F32', 1);
    const ft = ref.randomTensor(n, 'F32', 2, 0.02, ref.decodeRef(base.data, 'F32'));
    for (const shift of [0, 1, 2, 4]) {
      const job: MergeJob = {
        base: { data: shifted(base.data, shift), dtype: 'F32' },
        models: [{ data: shifted(ft.data, (shift * 3) % 8), dtype: 'F32', weight: 0.6, sparsify: { kind: 'dense', factor: 1.1 } }],
        consensus: 'none', normalize: false, lambda: 1,
        out: shifted(new Uint8Array(n * 4), shift), outDtype: 'F32',
      };
      await checkMerge(job, `shift ${shift}`);
    }
  });
});

/** A base and fine-tunes whose δ take a few exact values: many ties at every band limit. */
function tiedFamily(n: number, dtype: InputDType, count: number, seed: number) {
  const r = ref.rng(seed);
  const baseValues = Float32Array.from({ length: n }, () => (Math.floor(r() * 33) - 16) / 8);
  const levels = [0, 0.25, -0.25, 0.5, -1, 0.125, -0.125];
  const fts = Array.from({ length: count }, () =>
    ref.tensorOf(baseValues.map((b) => b + levels[Math.floor(r() * levels.length)]), dtype),
  );
  return { base: ref.tensorOf(baseValues, dtype), fts };
}

/** Band rules keeping fractions `fractions` of δ (per row when rows > 0). */
async function bandsOf(base: ref.RefTensor, ft: ref.RefTensor, fractions: number[], factors: number[], rows = 0): Promise<Sparsify> {
  const n = ft.data.length / ref.dtypeSize(ft.dtype);
  const perRow = rows > 0 ? n / rows : n;
  const ks = Float64Array.from(fractions, (f) => Math.floor(f * perRow));
  const rules = await native().selectThresholds({ base, ft } as unknown as DeltaInput, ks, rows > 0 ? { rows } : undefined);
  return { kind: 'bands', rules, factor: Float64Array.from(factors) };
}

const RANDOM: Sparsify = { kind: 'random', stream: { seedLo: 7, seedHi: 2, streamLo: 5, streamHi: 1 }, density: 0.45, rescale: 1 / 0.45 };

interface Scenario {
  name: string;
  models: number;
  sparsify: (base: ref.RefTensor, ft: ref.RefTensor, t: number, n: number) => Promise<Sparsify>;
  weights: number[];
  consensus: MergeJob['consensus'];
  normalize: boolean;
  lambda: number;
}

const SCENARIOS: Scenario[] = [
  // TIES: one band each, unit weights (the divisor floor), λ = 1.
  { name: 'ties', models: 3, sparsify: (b, f, t) => bandsOf(b, f, [0.2 + 0.05 * t], [1]), weights: [1, 1, 1], consensus: 'sum', normalize: true, lambda: 1 },
  // DPPA: two bands each, no consensus.
  { name: 'dppa', models: 3, sparsify: (b, f, t) => bandsOf(b, f, [0.1 + 0.01 * t, 0.2], [1.8, 1]), weights: [1, 1, 1], consensus: 'none', normalize: false, lambda: 1 },
  // 1..3 bands, dense and random in one job, per-row rules, a weight below 1e-8 (the clamp).
  {
    name: 'mixed', models: 6,
    sparsify: (b, f, t, n) =>
      [
        () => bandsOf(b, f, [0.3], [1.5]),
        () => bandsOf(b, f, [0.05, 0.15, 0.4], [3, 2, 0.5]),
        async () => ({ kind: 'dense', factor: 1.25 }) as Sparsify,
        async () => RANDOM,
        () => bandsOf(b, f, [0.1, 0.25], [2, 1], n % 3 === 0 && n > 0 ? 3 : 0),
        () => bandsOf(b, f, [0], [4]),
      ][t](),
    weights: [0.5, -0.25, 1.5, 0.3, 0.9, 1e-9], consensus: 'count', normalize: true, lambda: 0.9,
  },
  // Two models (one band, two bands), positive weights that are not 1.
  { name: 'two', models: 2, sparsify: (b, f, t) => bandsOf(b, f, t ? [0.15, 0.5] : [0.35], t ? [2, 1] : [1]), weights: [0.7, 2], consensus: 'sum', normalize: true, lambda: 0.9 },
  // Four models; the divisor 4 · 0.25 is 1; one model keeps everything, ties included.
  { name: 'four', models: 4, sparsify: (b, f, t) => bandsOf(b, f, [t === 3 ? 1 : 0.3], [1.1]), weights: [0.25, 0.25, 0.25, 0.25], consensus: 'none', normalize: true, lambda: 1 },
  // Five models with a consensus: the loop without a fixed model count.
  { name: 'five', models: 5, sparsify: (b, f, t) => (t === 2 ? Promise.resolve(RANDOM) : bandsOf(b, f, [0.2, 0.3], [1.4, 1])), weights: [1, 2, 0.5, 1, 3], consensus: 'sum', normalize: true, lambda: 1 },
  // More models than the band/consensus loop takes: dense only.
  { name: 'ten dense', models: 10, sparsify: async (_b, _f, t) => ({ kind: 'dense', factor: 1 + t / 10 }), weights: [0.1, 0.2, 0.1, 0.05, 0.15, 0.1, 0.1, 0.05, 0.1, 0.05], consensus: 'none', normalize: true, lambda: 0.8 },
];

describe('16 fused merge with bands and a consensus', () => {
  const sizes = [0, 1, 7, 1023, 1025, 4097];
  for (const dtype of ['BF16', 'F16', 'F32'] as InputDType[]) {
    for (const scenario of SCENARIOS) {
      it(`${scenario.name}, ${dtype}: ${scenario.models} models, consensus ${scenario.consensus}`, async () => {
        for (const [s, n] of sizes.entries()) {
          // Tied δ for most models, smooth random δ for every third one.
          const { base, fts } = tiedFamily(n, dtype, scenario.models, n + 31);
          const b = ref.decodeRef(base.data, dtype);
          fts.forEach((_, t) => {
            if (t % 3 === 2) fts[t] = ref.randomTensor(n, dtype, n + 50 + t, 0.05, b);
          });
          const models: MergeModel[] = [];
          for (const [t, ft] of fts.entries())
            models.push({ data: ft.data, dtype, weight: scenario.weights[t], sparsify: await scenario.sparsify(base, ft, t, n) });
          const outDtypes: OutputDType[] = scenario.name === 'ties' || scenario.name === 'mixed' ? ['BF16', 'F16', 'F32'] : [(['BF16', 'F16', 'F32'] as OutputDType[])[s % 3]];
          for (const outDtype of outDtypes) {
            const job: MergeJob = {
              base: base as never, models, consensus: scenario.consensus, normalize: scenario.normalize, lambda: scenario.lambda,
              out: new Uint8Array(n * ref.dtypeSize(outDtype)), outDtype,
            };
            await checkMerge(job, `${scenario.name} ${dtype}→${outDtype} n=${n}`);
          }
        }
      });
    }
  }

  it('NaN/Inf anywhere in a tile, and |δ| overflowing to Inf from finite inputs (counted as 0)', async () => {
    const n = 3 * 1024 + 11;
    const r = ref.rng(5);
    const baseValues = Float32Array.from({ length: n }, () => r() - 0.5);
    const fts = [0, 1, 2].map(() => Float32Array.from(baseValues, (x) => x + 0.1 * (r() - 0.5)));
    // Tile 0: NaN and Inf in the base and the models; tile 1: δ = 3e38 - (-3e38) = Inf with
    // finite inputs; tile 2: nothing; the tail: -Inf in one model only.
    baseValues.set([NaN, Infinity], 5);
    fts[0][100] = -Infinity;
    fts[1][1023] = NaN;
    baseValues[1500] = -3e38;
    fts[2][1500] = 3e38;
    fts[0][n - 1] = -Infinity;
    for (const dtype of ['F32', 'BF16', 'F16'] as InputDType[]) {
      const base = ref.tensorOf(baseValues, dtype);
      const tensors = fts.map((v) => ref.tensorOf(v, dtype));
      const models: MergeModel[] = [];
      for (const [t, ft] of tensors.entries())
        models.push({ data: ft.data, dtype, weight: 1, sparsify: t === 1 ? { kind: 'dense', factor: 1 } : await bandsOf(base, ft, [0.3, 0.6], [2, 1]) });
      for (const consensus of ['none', 'sum'] as const) {
        const job: MergeJob = { base: base as never, models, consensus, normalize: true, lambda: 1, out: new Uint8Array(n * 4), outDtype: 'F32' };
        await checkMerge(job, `non-finite ${dtype} ${consensus}`);
      }
    }
  });
});
