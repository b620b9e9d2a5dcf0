// 10: decode / encode / δ against the float64 references, on every SIMD path and thread count.
import * as assert from 'assert';
import { native } from '../lib/native';
import type { InputDType, MergeJob, OutputDType, SimdPath } from '../lib/binding';
import * as ref from './ref/kernels-ref';

export const SIZES = [0, 1, 7, 4097, 37 * 129, 131075];

/** Runs fn under every SIMD path this CPU has, at 1 and 2 threads; restores the defaults. */
export async function everyPathAndThreads(fn: (label: string) => Promise<void>): Promise<void> {
  const n = native();
  const initialPath = n.simd.active;
  const initialThreads = n.getThreads();
  try {
    for (const path of n.simd.available as SimdPath[]) {
      for (const threads of [1, 2]) {
        n.setSimd(path);
        n.setThreads(threads);
        await fn(`${path}/${threads}t`);
      }
    }
  } finally {
    n.setSimd(initialPath);
    n.setThreads(initialThreads);
  }
}

export function bytesOf(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** Bitwise equality of float32 arrays; NaN must be NaN with the expected bits. */
export function assertSameFloat32(actual: Float32Array, expected: Float32Array, label: string): void {
  assert.strictEqual(actual.length, expected.length, `${label}: length`);
  const a = new Uint32Array(actual.buffer, actual.byteOffset, actual.length);
  const e = new Uint32Array(expected.buffer, expected.byteOffset, expected.length);
  for (let i = 0; i < a.length; ++i) {
    if (a[i] !== e[i]) {
      assert.fail(`${label}: element ${i}: got ${actual[i]} (0x${a[i].toString(16)}), expected ${expected[i]} (0x${e[i].toString(16)})`);
    }
  }
}

export function assertSameBytes(actual: Uint8Array, expected: Uint8Array, label: string): void {
  assert.strictEqual(actual.length, expected.length, `${label}: length`);
  for (let i = 0; i < actual.length; ++i) {
    if (actual[i] !== expected[i]) assert.fail(`${label}: byte ${i}: got ${actual[i]}, expected ${expected[i]}`);
  }
}

/** Random float32 bit patterns: every class (zeros, subnormals, normals, Inf, NaN). */
/** The fused merge on every path and thread count, bit for bit against the float64 reference. */
export async function checkMerge(job: MergeJob, what: string) {
  const expected = ref.mergeRef(job as never);
  await everyPathAndThreads(async (label) => {
    job.out.fill(0xcd);
    const r = await native().mergeTensor(job);
    assertSameBytes(job.out, expected.out, `${what} ${label}`);
    assert.deepStrictEqual(Array.from(r.nonFinite), expected.nonFinite, `${what} ${label} nonFinite`);
  });
}

export function randomFloatBits(n: number, seed: number): Float32Array {
  const r = ref.rng(seed);
  const u = new Uint32Array(n);
  for (let i = 0; i < n; ++i) {
    const kind = Math.floor(r() * 8);
    const sign = r() < 0.5 ? 0x80000000 : 0;
    const mantissa = Math.floor(r() * 0x800000);
    let exponent = Math.floor(r() * 256);
    if (kind === 0) exponent = 0; // subnormal or zero
    if (kind === 1) exponent = 255; // Inf or NaN
    if (kind === 2) exponent = 103 + Math.floor(r() * 40); // around the f16 range, incl. its subnormals
    u[i] = (sign | (exponent << 23) | (kind === 3 ? 0 : mantissa)) >>> 0;
  }
  return new Float32Array(u.buffer);
}

describe('10 convert: decode', () => {
  for (const dtype of ['BF16', 'F16'] as InputDType[]) {
    it(`decodes all 65536 ${dtype} bit patterns exactly, on every path`, async () => {
      const all = new Uint16Array(65536).map((_, i) => i);
      const expected = new Float32Array(65536);
      const toBits = dtype === 'BF16' ? ref.bf16ToF32Bits : ref.f16ToF32Bits;
      new Uint32Array(expected.buffer).set(Array.from(all, (h) => toBits(h)));
      await everyPathAndThreads(async (label) => {
        const out = new Float32Array(65536);
        await native().decode({ data: bytesOf(all), dtype }, out);
        assertSameFloat32(out, expected, `${dtype} ${label}`);
      });
    });
  }

  for (const dtype of ['F8_E4M3', 'F8_E5M2'] as InputDType[]) {
    it(`decodes all 256 ${dtype} patterns`, async () => {
      const all = new Uint8Array(256).map((_, i) => i);
      const out = new Float32Array(256);
      await native().decode({ data: all, dtype }, out);
      const decodeOne = dtype === 'F8_E4M3' ? ref.f8e4m3ToF32 : ref.f8e5m2ToF32;
      for (let b = 0; b < 256; ++b) {
        const e = decodeOne(b);
        if (Number.isNaN(e)) assert.ok(Number.isNaN(out[b]), `${dtype} 0x${b.toString(16)} should be NaN`);
        else assert.ok(Object.is(out[b], e), `${dtype} 0x${b.toString(16)}: got ${out[b]}, expected ${e}`);
      }
    });
  }

  it('decodes F64 with round to nearest even, at awkward sizes, on every path', async () => {
    for (const n of SIZES) {
      const r = ref.rng(n + 1);
      const values = new Float64Array(n).map(() => (r() - 0.5) * 10 ** Math.floor(r() * 80 - 40));
      if (n > 6) values.set([0, -0, 1e-300, -1e39, 3.4028235677973366e38, NaN, Infinity].slice(0, n));
      const expected = Float32Array.from(values, (x) => Math.fround(x));
      await everyPathAndThreads(async (label) => {
        const out = new Float32Array(n);
        await native().decode({ data: bytesOf(values), dtype: 'F64' }, out);
        for (let i = 0; i < n; ++i) {
          if (Number.isNaN(expected[i])) assert.ok(Number.isNaN(out[i]));
          else assert.ok(Object.is(out[i], expected[i]), `F64 n=${n} ${label} [${i}]: ${out[i]} vs ${expected[i]}`);
        }
      });
    }
  });

  it('passes F32 through bit for bit (denormals, ±0, NaN payloads)', async () => {
    const values = randomFloatBits(4097, 5);
    const out = new Float32Array(values.length);
    await native().decode({ data: bytesOf(values), dtype: 'F32' }, out);
    assertSameFloat32(out, values, 'F32');
  });

  it('reads tensors at odd byte offsets', async () => {
    const backing = new Uint8Array(2 * 1001 + 1);
    const view = backing.subarray(1);
    const values = new Uint16Array(1000).map((_, i) => (i * 977) & 0xffff);
    view.set(bytesOf(values));
    const out = new Float32Array(1000);
    await native().decode({ data: view.subarray(0, 2000), dtype: 'BF16' }, out);
    // Compare bits through an integer view: reading a NaN into a JS number may quiet it.
    const bits = new Uint32Array(out.buffer);
    for (let i = 0; i < 1000; ++i) assert.strictEqual(bits[i], ref.bf16ToF32Bits(values[i]));
  });
});

describe('10 convert: encode', () => {
  for (const dtype of ['BF16', 'F16'] as OutputDType[]) {
    it(`encodes random float32 patterns to ${dtype} with RNE, on every path`, async () => {
      for (const n of SIZES) {
        const values = randomFloatBits(n, 17 + n);
        const expected = ref.encodeRef(values, dtype);
        await everyPathAndThreads(async (label) => {
          const out = new Uint8Array(n * 2);
          await native().encode(values, dtype, out);
          assertSameBytes(out, expected, `${dtype} n=${n} ${label}`);
        });
      }
    });
  }

  it('rounds exact halfway cases to even (BF16)', async () => {
    // (h << 16) | 0x8000 lies exactly halfway between h and h + 1.
    const hs = [0x0000, 0x0001, 0x3f80, 0x3f81, 0x7f7e, 0x7f7f, 0x8001, 0xbf80, 0x0040, 0x007f];
    const values = new Float32Array(new Uint32Array(hs.map((h) => ((h << 16) | 0x8000) >>> 0)).buffer);
    const out = new Uint16Array(hs.length);
    await native().encode(values, 'BF16', bytesOf(out));
    hs.forEach((h, i) => {
      const even = (h & 1) === 0 ? h : h + 1;
      assert.strictEqual(out[i], even, `halfway above 0x${h.toString(16)}`);
    });
    assert.strictEqual(out[5], 0x7f80, 'max bf16 + half an ulp overflows to Inf');
  });

  it('rounds exact halfway cases to even (F16), normals and subnormals', async () => {
    const cases: Array<[number, number]> = [
      [1 + 2 ** -11, 0x3c00], // halfway between 1 and 1+2^-10: to even 1
      [1 + 3 * 2 ** -11, 0x3c02], // halfway between odd and even: up
      [2 ** -25, 0x0000], // half the smallest subnormal: to 0
      [3 * 2 ** -25, 0x0002], // 1.5 subnormal units: to 2
      [5 * 2 ** -25, 0x0002], // 2.5 units: to 2
      [2 ** -14 - 2 ** -25, 0x0400], // halfway between largest subnormal and smallest normal: up (even)
      [65520, 0x7c00], // halfway between 65504 and 65536: overflow to Inf
      [65519.99, 0x7bff],
      [-(1 + 2 ** -11), 0xbc00],
    ];
    const values = Float32Array.from(cases.map((c) => c[0]));
    const out = new Uint16Array(cases.length);
    await everyPathAndThreads(async (label) => {
      await native().encode(values, 'F16', bytesOf(out));
      cases.forEach(([x, h], i) => assert.strictEqual(out[i], h, `${label}: ${x} -> 0x${out[i].toString(16)}, expected 0x${h.toString(16)}`));
      cases.forEach(([x], i) => assert.strictEqual(ref.f32ToF16(Math.fround(x)), cases[i][1], `reference for ${x}`));
    });
  });

  it('keeps NaN as NaN, ±0 and denormals bit-correct', async () => {
    const values = new Float32Array(new Uint32Array([0x7fc00000, 0xff800001, 0x7f800001, 0x80000000, 0x00000001, 0x807fffff, 0x38000000, 0x33800000]).buffer);
    for (const dtype of ['BF16', 'F16'] as OutputDType[]) {
      const out = new Uint16Array(values.length);
      await native().encode(values, dtype, bytesOf(out));
      const decoded = new Float32Array(values.length);
      await native().decode({ data: bytesOf(out), dtype }, decoded);
      assert.ok(Number.isNaN(decoded[0]) && Number.isNaN(decoded[1]) && Number.isNaN(decoded[2]), `${dtype} NaN`);
      assert.ok(Object.is(decoded[3], -0), `${dtype} -0`);
      assertSameBytes(bytesOf(out), ref.encodeRef(values, dtype), dtype);
    }
    const out32 = new Float32Array(values.length);
    await native().encode(values, 'F32', bytesOf(out32));
    assertSameFloat32(out32, values, 'F32');
  });
});

describe('10 convert: delta', () => {
  for (const dtype of ['BF16', 'F16', 'F32'] as InputDType[]) {
    it(`δ = decode(ft) - decode(base) for ${dtype}, every size and path`, async () => {
      for (const n of SIZES) {
        const base = ref.randomTensor(n, dtype, n + 3);
        const ft = ref.randomTensor(n, dtype, n + 4, 0.01, ref.decodeRef(base.data, dtype));
        const expected = ref.deltaRef(ft, base);
        await everyPathAndThreads(async (label) => {
          const out = new Float32Array(n);
          await native().delta({ base: base as never, ft: ft as never }, out);
          assertSameFloat32(out, expected, `${dtype} n=${n} ${label}`);
        });
      }
    });
  }

  it('mixes dtypes (F32 base, BF16 fine-tune) and works without a base', async () => {
    const base = ref.randomTensor(1000, 'F32', 1);
    const ft = ref.randomTensor(1000, 'BF16', 2);
    const out = new Float32Array(1000);
    await native().delta({ base: base as never, ft: ft as never }, out);
    assertSameFloat32(out, ref.deltaRef(ft, base), 'mixed');
    await native().delta({ ft: ft as never }, out);
    assertSameFloat32(out, ref.decodeRef(ft.data, 'BF16'), 'no base');
  });
});
