/**
 * 24: the TypeScript codecs, the references for the native kernels: exact decoding of every
 * dtype's special values, and single rounding to nearest even when encoding.
 */
import * as assert from 'assert';
import { decodeToFloat64, decodeToFloat32, encodeFromFloat64, encodeFloat32Into, roundToBf16, roundToF16 } from '../lib/io/codec';
import { Xoshiro128 } from '../lib/synth/random';
import { throwsWith } from './20.helpers';

const u16le = (...codes: number[]) => new Uint8Array(new Uint16Array(codes).buffer);
const bitsOf = (bytes: Uint8Array) => [...new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 2)];
const same = (actual: ArrayLike<number>, expected: number[]) => {
  assert.strictEqual(actual.length, expected.length);
  for (let i = 0; i < expected.length; i++) assert.ok(Object.is(actual[i], expected[i]), `[${i}]: ${actual[i]} !== ${expected[i]}`);
};

describe('24 codec: decoding', function () {
  it('decodes F16 including subnormals, infinities, NaN and -0', () => {
    same(decodeToFloat64(u16le(0x3c00, 0xc000, 0x7bff, 0x0001, 0x0400, 0x7c00, 0xfc00, 0x8000, 0x3555), 'F16'),
      [1, -2, 65504, 2 ** -24, 2 ** -14, Infinity, -Infinity, -0, 0.333251953125]);
    assert.ok(Number.isNaN(decodeToFloat64(u16le(0x7e00), 'F16')[0]));
  });

  it('decodes BF16 as the upper half of float32', () => {
    same(decodeToFloat64(u16le(0x3f80, 0xc040, 0x7f80, 0x0001, 0x7f7f, 0x8000), 'BF16'),
      [1, -3, Infinity, 2 ** -133, 3.3895313892515355e38, -0]);
    assert.ok(Number.isNaN(decodeToFloat64(u16le(0x7fc0), 'BF16')[0]));
  });

  it('decodes F8_E4M3 (e4m3fn: bias 7, no infinities, only S.1111.111 is NaN)', () => {
    const values = decodeToFloat64(new Uint8Array([0x00, 0x38, 0x7e, 0xfe, 0x01, 0x08, 0x78, 0x80, 0x3c]), 'F8_E4M3');
    same(values, [0, 1, 448, -448, 2 ** -9, 2 ** -6, 256, -0, 1.5]);
    const nan = decodeToFloat64(new Uint8Array([0x7f, 0xff]), 'F8_E4M3');
    assert.ok(Number.isNaN(nan[0]) && Number.isNaN(nan[1]));
  });

  it('decodes F8_E5M2 (bias 15, IEEE-like)', () => {
    same(decodeToFloat64(new Uint8Array([0x3c, 0x7b, 0x7c, 0xfc, 0x01, 0x04, 0xbe]), 'F8_E5M2'),
      [1, 57344, Infinity, -Infinity, 2 ** -16, 2 ** -14, -1.5]);
    assert.ok(Number.isNaN(decodeToFloat64(new Uint8Array([0x7d]), 'F8_E5M2')[0]));
  });

  it('decodes F32, F64 and the integer types, little-endian, from unaligned views', () => {
    const f32 = new Uint8Array(9);
    new DataView(f32.buffer).setFloat32(1, -1.25, true);
    new DataView(f32.buffer).setFloat32(5, 3.5, true);
    same(decodeToFloat64(f32.subarray(1), 'F32'), [-1.25, 3.5]);
    same(decodeToFloat32(f32.subarray(1), 'F32'), [-1.25, 3.5]);
    const f64 = new Uint8Array(new Float64Array([Math.PI, -0]).buffer);
    same(decodeToFloat64(f64, 'F64'), [Math.PI, -0]);
    same(decodeToFloat64(new Uint8Array([0xff, 0x7f, 0x80]), 'I8'), [-1, 127, -128]);
    same(decodeToFloat64(new Uint8Array([0xff, 0x00, 0x05]), 'U8'), [255, 0, 5]);
    same(decodeToFloat64(new Uint8Array([0, 1, 2, 255]), 'BOOL'), [0, 1, 1, 1]);
    same(decodeToFloat64(u16le(0xffff, 0x8000), 'I16'), [-1, -32768]);
    same(decodeToFloat64(u16le(0xffff), 'U16'), [65535]);
    same(decodeToFloat64(new Uint8Array(new Int32Array([-7, 2 ** 31 - 1]).buffer), 'I32'), [-7, 2 ** 31 - 1]);
    same(decodeToFloat64(new Uint8Array(new Uint32Array([2 ** 32 - 1]).buffer), 'U32'), [2 ** 32 - 1]);
    same(decodeToFloat64(new Uint8Array(new BigInt64Array([-5n, 2n ** 40n]).buffer), 'I64'), [-5, 2 ** 40]);
    same(decodeToFloat64(new Uint8Array(new BigUint64Array([2n ** 63n]).buffer), 'U64'), [2 ** 63]);
  });

  it('refuses a byte count that is not whole elements, and unknown dtypes', () => {
    throwsWith(() => decodeToFloat64(new Uint8Array(3), 'F16'), 'E_ARGUMENT', 'F16');
    throwsWith(() => decodeToFloat64(new Uint8Array(4), 'F12' as never), 'E_ARGUMENT', 'F12');
    throwsWith(() => encodeFromFloat64([1], 'I8' as never), 'E_ARGUMENT');
  });
});

describe('24 codec: encoding rounds once, to nearest even', function () {
  it('rounds BF16 ties to even and does not round twice through float32', () => {
    same(bitsOf(encodeFromFloat64([1 + 2 ** -8, 1 + 3 * 2 ** -8, 1 + 2 ** -8 + 2 ** -30, -(1 + 2 ** -8 + 2 ** -30)], 'BF16')),
      [0x3f80, 0x3f82, 0x3f81, 0xbf81]);
    // Via float32 the third value would become 1 + 2^-8 exactly, then tie to 1.0 (0x3f80).
    assert.strictEqual(roundToBf16(1 + 2 ** -8 + 2 ** -30), 1 + 2 ** -7);
  });

  it('handles BF16 overflow, subnormals, zeros and NaN', () => {
    const max = 3.3895313892515355e38;
    const halfUlp = 2 ** (127 - 8);
    same(bitsOf(encodeFromFloat64([max, max + halfUlp * 0.99, max + halfUlp, -1e39, 2 ** -133, 2 ** -134, 2 ** -133 * 1.5, -0, 0], 'BF16')),
      [0x7f7f, 0x7f7f, 0x7f80, 0xff80, 0x0001, 0x0000, 0x0002, 0x8000, 0x0000]);
    assert.strictEqual(bitsOf(encodeFromFloat64([NaN], 'BF16'))[0] & 0x7fc0, 0x7fc0);
  });

  it('handles F16 overflow, subnormals, ties, zeros and NaN', () => {
    same(bitsOf(encodeFromFloat64([65504, 65519.99, 65520, -70000, 2 ** -24, 2 ** -25, 2 ** -25 * 1.0001, 1.5 * 2 ** -24, 2.5 * 2 ** -24, -0, 1 + 2 ** -11, 1 + 3 * 2 ** -11], 'F16')),
      [0x7bff, 0x7bff, 0x7c00, 0xfc00, 0x0001, 0x0000, 0x0001, 0x0002, 0x0002, 0x8000, 0x3c00, 0x3c02]);
    assert.strictEqual(bitsOf(encodeFromFloat64([NaN], 'F16'))[0], 0x7e00);
    assert.strictEqual(roundToF16(2 ** -14 - 2 ** -26), 2 ** -14, 'the largest subnormal rounds up into the normals');
  });

  it('encodes F32 and F64 exactly as JavaScript rounds', () => {
    const f32 = encodeFromFloat64([Math.PI, 1e-46, 3.5e38], 'F32');
    same(new Float32Array(f32.buffer), [Math.fround(Math.PI), 0, Infinity]);
    same(new Float64Array(encodeFromFloat64([Math.PI], 'F64').buffer), [Math.PI]);
  });

  it('round-trips every non-NaN BF16 and F16 bit pattern', () => {
    for (const dtype of ['BF16', 'F16'] as const) {
      const codes = new Uint16Array(65536).map((_, i) => i);
      const values = decodeToFloat64(new Uint8Array(codes.buffer), dtype);
      const again = new Uint16Array(encodeFromFloat64(values, dtype).buffer);
      for (let i = 0; i < 65536; i++) {
        if (Number.isNaN(values[i])) continue;
        assert.strictEqual(again[i], i, `${dtype} 0x${i.toString(16)}`);
      }
    }
  });

  it('the fast float32 encoder agrees bit for bit with the float64 reference', () => {
    const rng = new Xoshiro128(7, 'codec');
    const bits = new Uint32Array(200_000);
    for (let i = 0; i < bits.length; i++) bits[i] = rng.nextUint32();
    // Bias towards the edges: subnormal f16 range, overflow range, exact ties, specials.
    for (let i = 0; i < 40_000; i++) bits[i] = (bits[i] & 0x80ffffff) | ((97 + (i % 50)) << 23);
    const specials = [0, 0x80000000, 0x7f800000, 0xff800000, 0x477ff000, 0x477fefff, 0x33000000, 0x33000001, 0x387fc000, 0x3f808000, 0x3f818000, 0x00000001];
    bits.set(specials, 40_000);
    const values = new Float32Array(bits.buffer);
    const finite = Array.from(values).filter((v) => !Number.isNaN(v));
    const input = Float32Array.from(finite);
    for (const dtype of ['BF16', 'F16', 'F32'] as const) {
      const fast = encodeFloat32Into(input, dtype, new Uint8Array(input.length * 4));
      const reference = encodeFromFloat64(input, dtype);
      assert.ok(Buffer.from(fast).equals(Buffer.from(reference)), dtype);
    }
    // NaN stays NaN, and a NaN never becomes an infinity.
    const nan = new Float32Array(new Uint32Array([0x7f800001, 0xffc00000]).buffer);
    for (const dtype of ['BF16', 'F16'] as const) {
      const out = decodeToFloat64(encodeFloat32Into(nan, dtype, new Uint8Array(4)), dtype);
      assert.ok(Number.isNaN(out[0]) && Number.isNaN(out[1]), dtype);
    }
  });
});
