// 16: the fused loop of mergeTensor (every model dense or random, consensus none, one input dtype):
// bit-identical to the float64 reference and on every SIMD path and thread count, including
// normalize with a vanishing divisor, special values, and unaligned F32 buffers (generic path).
import type { InputDType, MergeJob, OutputDType, Sparsify } from '../lib/binding';
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
