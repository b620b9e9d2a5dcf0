/**
 * 84: denormals and ±0 through every kernel, at sizes where the SIMD bodies (not only the
 * scalar tails) see them, on every path and at 1 and 2 threads, bit for bit against the
 * float64 references: decode, delta, absStats, selectThresholds + the fused merge (dense,
 * bands, DARE), linearCombine, encode. A path that flushed denormals to zero (FTZ/DAZ) or
 * lost the sign of a zero fails here.
 */
import * as assert from 'assert';
import type { DeltaInput, InputDType, MergeJob, OutputDType } from '../lib/binding';
import { native } from '../lib/native';
import * as ref from './ref/kernels-ref';
import { assertSameBytes, everyPathAndThreads } from './10.convert.test';

const N = 4099; // one full 4096 tile and a tail

/** Bit patterns of the special values of each dtype: zeros, subnormals, the smallest normals. */
const SPECIAL_BITS: Record<string, number[]> = {
  F32: [0x00000000, 0x80000000, 0x00000001, 0x80000001, 0x007fffff, 0x807fffff, 0x00400000, 0x00800000, 0x80800000, 0x00000100],
  BF16: [0x0000, 0x8000, 0x0001, 0x8001, 0x007f, 0x807f, 0x0040, 0x0080, 0x8080],
  F16: [0x0000, 0x8000, 0x0001, 0x8001, 0x03ff, 0x83ff, 0x0200, 0x0400, 0x8400],
};

/**
 * A tensor of `dtype` whose elements are mostly special values (denormals, ±0, smallest
 * normals), the rest tiny normal values, placed by a seeded generator.
 */
function specialTensor(dtype: 'F32' | 'BF16' | 'F16', seed: number): ref.RefTensor {
  const r = ref.rng(seed);
  const specials = SPECIAL_BITS[dtype];
  if (dtype === 'F32') {
    const bits = new Uint32Array(N);
    for (let i = 0; i < N; i++) {
      bits[i] = r() < 0.7 ? specials[Math.floor(r() * specials.length)] : ((r() < 0.5 ? 0x80000000 : 0) | (0x00800000 + Math.floor(r() * 0x03000000))) >>> 0;
    }
    return { data: new Uint8Array(bits.buffer), dtype };
  }
  const bits = new Uint16Array(N);
  const normalSpan = dtype === 'BF16' ? 0x0300 : 0x0c00;
  for (let i = 0; i < N; i++) {
    bits[i] = r() < 0.7 ? specials[Math.floor(r() * specials.length)] : (r() < 0.5 ? 0x8000 : 0) | (0x0080 * (dtype === 'F16' ? 8 : 1) + Math.floor(r() * normalSpan));
  }
  return { data: new Uint8Array(bits.buffer), dtype };
}

function countSubnormal(values: Float32Array): number {
  return values.reduce((c, x) => c + (x !== 0 && Math.abs(x) < 1.1754943508222875e-38 ? 1 : 0), 0);
}

describe('84 numbers: denormals and ±0 bit-correct through every kernel and path', function () {
  this.timeout(120000);
  for (const dtype of ['F32', 'BF16', 'F16'] as const) {
    const base = specialTensor(dtype, 1);
    const ft = specialTensor(dtype, 2);
    const ft2 = specialTensor(dtype, 3);
    const input = { base, ft } as unknown as DeltaInput;

    it(`${dtype}: decode, delta, absStats keep denormals and signed zeros`, async () => {
      const d = ref.deltaRef(ft, base);
      if (dtype === 'F32') assert.ok(countSubnormal(d) > 100, `the δ has denormals (${countSubnormal(d)})`);
      assert.ok(d.some((x) => Object.is(x, -0)) && d.some((x) => Object.is(x, 0)), 'the δ has both zeros');
      const expectedDecoded = ref.decodeRef(ft.data, dtype);
      const stats = ref.absStatsRef(d, [0, 1e-45, 1e-40, 1e-38]);
      await everyPathAndThreads(async (label) => {
        const out = new Float32Array(N);
        await native().decode(ft as never, out);
        assertSameBytes(new Uint8Array(out.buffer), new Uint8Array(expectedDecoded.buffer), `decode ${dtype} ${label}`);
        const delta = new Float32Array(N);
        await native().delta(input, delta);
        assertSameBytes(new Uint8Array(delta.buffer), new Uint8Array(d.buffer), `delta ${dtype} ${label}`);
        const s = await native().absStats(input, Float64Array.of(0, 1e-45, 1e-40, 1e-38));
        assert.ok(Object.is(s.sumAbs, stats.sumAbs), `absStats ${dtype} ${label}: ${s.sumAbs} vs ${stats.sumAbs}`);
        assert.deepStrictEqual(Array.from(s.countsAbove), stats.countsAbove, `absStats counts ${dtype} ${label}`);
      });
    });

    for (const outDtype of ['F32', 'BF16', 'F16'] as OutputDType[]) {
      it(`${dtype} → ${outDtype}: the fused merge (dense, bands, DARE) and linearCombine, bit for bit`, async () => {
        const rules = await native().selectThresholds(input, Float64Array.of(500, 2000));
        const stream = { seedLo: 7, seedHi: 0, streamLo: 1, streamHi: 2 };
        const job: MergeJob = {
          base: base as never,
          models: [
            { data: ft.data, dtype: dtype as InputDType, weight: 1, sparsify: { kind: 'bands', rules, factor: Float64Array.of(1.5, 1) } },
            { data: ft2.data, dtype: dtype as InputDType, weight: 0.5, sparsify: { kind: 'random', stream, density: 0.5, rescale: 2 } },
            { data: ft.data, dtype: dtype as InputDType, weight: 0.25, sparsify: { kind: 'dense', factor: 1 } },
          ],
          consensus: 'sum', normalize: false, lambda: 1,
          out: new Uint8Array(N * ref.dtypeSize(outDtype)), outDtype,
        };
        const expected = ref.mergeRef(job as never);
        const coeffs = [0.5, -0.25, 1];
        const expectedLinear = ref.linearRef([base, ft, ft2], coeffs, outDtype);
        await everyPathAndThreads(async (label) => {
          job.out.fill(0xcd);
          const r = await native().mergeTensor(job);
          assertSameBytes(job.out, expected.out, `merge ${dtype}→${outDtype} ${label}`);
          assert.deepStrictEqual(Array.from(r.nonFinite), [0, 0, 0, 0]);
          const lin = new Uint8Array(N * ref.dtypeSize(outDtype)).fill(0xcd);
          await native().linearCombine([base, ft, ft2] as never, Float64Array.from(coeffs), lin, outDtype);
          assertSameBytes(lin, expectedLinear.out, `linear ${dtype}→${outDtype} ${label}`);
        });
        // The comparison can fail: flushing the denormals of the expected output changes it.
        if (outDtype === 'F32' && dtype !== 'F16') { // (F16's subnormals are normal float32s)
          const flushed = new Float32Array(expected.out.slice().buffer).map((x) => (Math.abs(x) < 1.1754943508222875e-38 ? 0 * Math.sign(x) : x));
          assert.notDeepStrictEqual(new Uint8Array(flushed.buffer), expected.out, 'the expected output holds denormals');
        }
      });
    }

    it(`${dtype}: encode of denormal and signed-zero float32 to every output dtype`, async () => {
      const values = ref.decodeRef(specialTensor('F32', 5).data, 'F32');
      for (const outDtype of ['F32', 'BF16', 'F16'] as OutputDType[]) {
        const expected = ref.encodeRef(values, outDtype);
        await everyPathAndThreads(async (label) => {
          const out = new Uint8Array(N * ref.dtypeSize(outDtype));
          await native().encode(values, outDtype, out);
          assertSameBytes(out, expected, `encode ${outDtype} ${label}`);
        });
      }
    });
  }
});
