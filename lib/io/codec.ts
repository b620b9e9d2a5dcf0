/**
 * Plain TypeScript decoding and encoding of tensor bytes. These are the references the
 * native kernels are tested against and what `inspect` uses, so they favour obvious
 * correctness: every rounding is done from the float64 value directly (no float32 detour,
 * which would round twice).
 */
import { DppaError } from '../errors';
import { DTYPE_SIZE, type SafetensorsDType } from './dtypes';

export type EncodableDType = 'F32' | 'F16' | 'BF16' | 'F64';

// Lookup tables for the 8- and 16-bit float formats, built on first use.
let bf16Table: Float64Array | undefined;
let f16Table: Float64Array | undefined;
let e4m3Table: Float64Array | undefined;
let e5m2Table: Float64Array | undefined;

function buildBf16Table(): Float64Array {
  const table = new Float64Array(65536);
  const bits = new Uint32Array(1);
  const asFloat = new Float32Array(bits.buffer);
  for (let i = 0; i < 65536; i++) {
    bits[0] = i << 16; // bf16 is the upper half of a float32
    table[i] = asFloat[0];
  }
  return table;
}

/** A small IEEE-like float: sign, `expBits` exponent bits, `mantBits` mantissa bits. */
function decodeMinifloat(code: number, expBits: number, mantBits: number, bias: number): number {
  const sign = (code >> (expBits + mantBits)) & 1 ? -1 : 1;
  const exponent = (code >> mantBits) & ((1 << expBits) - 1);
  const mantissa = code & ((1 << mantBits) - 1);
  if (exponent === 0) return sign * mantissa * Math.pow(2, 1 - bias - mantBits);
  return sign * (1 + mantissa / (1 << mantBits)) * Math.pow(2, exponent - bias);
}

function buildF16Table(): Float64Array {
  const table = new Float64Array(65536);
  for (let i = 0; i < 65536; i++) {
    const exponent = (i >> 10) & 0x1f;
    if (exponent === 0x1f) {
      const sign = i & 0x8000 ? -1 : 1;
      table[i] = (i & 0x3ff) === 0 ? sign * Infinity : NaN;
    } else {
      table[i] = decodeMinifloat(i, 5, 10, 15);
    }
  }
  return table;
}

/** float8 e4m3fn: bias 7, no infinities; only S.1111.111 is NaN, so the max is 448. */
function buildE4m3Table(): Float64Array {
  const table = new Float64Array(256);
  for (let i = 0; i < 256; i++) {
    table[i] = (i & 0x7f) === 0x7f ? NaN : decodeMinifloat(i, 4, 3, 7);
  }
  return table;
}

/** float8 e5m2: bias 15, IEEE-like (exponent 31 is Inf/NaN). */
function buildE5m2Table(): Float64Array {
  const table = new Float64Array(256);
  for (let i = 0; i < 256; i++) {
    const exponent = (i >> 2) & 0x1f;
    if (exponent === 0x1f) table[i] = (i & 3) === 0 ? (i & 0x80 ? -Infinity : Infinity) : NaN;
    else table[i] = decodeMinifloat(i, 5, 2, 15);
  }
  return table;
}

function elementCount(bytes: Uint8Array, dtype: SafetensorsDType): number {
  const size = DTYPE_SIZE[dtype];
  if (size === undefined) throw new DppaError('E_ARGUMENT', `unknown dtype "${String(dtype)}"`);
  if (bytes.byteLength % size !== 0) {
    throw new DppaError('E_ARGUMENT', `${bytes.byteLength} bytes is not a whole number of ${dtype} elements (${size} bytes each)`);
  }
  return bytes.byteLength / size;
}

/** Decode little-endian tensor bytes of any safetensors dtype to float64 (BOOL → 0/1). */
export function decodeToFloat64(bytes: Uint8Array, dtype: SafetensorsDType): Float64Array {
  const n = elementCount(bytes, dtype);
  const out = new Float64Array(n);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  switch (dtype) {
    case 'F64': for (let i = 0; i < n; i++) out[i] = view.getFloat64(i * 8, true); break;
    case 'F32': for (let i = 0; i < n; i++) out[i] = view.getFloat32(i * 4, true); break;
    case 'BF16': {
      const table = (bf16Table ??= buildBf16Table());
      for (let i = 0; i < n; i++) out[i] = table[view.getUint16(i * 2, true)];
      break;
    }
    case 'F16': {
      const table = (f16Table ??= buildF16Table());
      for (let i = 0; i < n; i++) out[i] = table[view.getUint16(i * 2, true)];
      break;
    }
    case 'F8_E4M3': {
      const table = (e4m3Table ??= buildE4m3Table());
      for (let i = 0; i < n; i++) out[i] = table[bytes[i]];
      break;
    }
    case 'F8_E5M2': {
      const table = (e5m2Table ??= buildE5m2Table());
      for (let i = 0; i < n; i++) out[i] = table[bytes[i]];
      break;
    }
    case 'I64': for (let i = 0; i < n; i++) out[i] = Number(view.getBigInt64(i * 8, true)); break;
    case 'U64': for (let i = 0; i < n; i++) out[i] = Number(view.getBigUint64(i * 8, true)); break;
    case 'I32': for (let i = 0; i < n; i++) out[i] = view.getInt32(i * 4, true); break;
    case 'U32': for (let i = 0; i < n; i++) out[i] = view.getUint32(i * 4, true); break;
    case 'I16': for (let i = 0; i < n; i++) out[i] = view.getInt16(i * 2, true); break;
    case 'U16': for (let i = 0; i < n; i++) out[i] = view.getUint16(i * 2, true); break;
    case 'I8': for (let i = 0; i < n; i++) out[i] = view.getInt8(i); break;
    case 'U8': for (let i = 0; i < n; i++) out[i] = bytes[i]; break;
    case 'BOOL': for (let i = 0; i < n; i++) out[i] = bytes[i] !== 0 ? 1 : 0; break;
    default: throw new DppaError('E_ARGUMENT', `unknown dtype "${String(dtype)}"`);
  }
  return out;
}

/** Decode to float32 (each float64 value rounded once, to nearest even). */
export function decodeToFloat32(bytes: Uint8Array, dtype: SafetensorsDType): Float32Array {
  return Float32Array.from(decodeToFloat64(bytes, dtype));
}

const scratch = new DataView(new ArrayBuffer(8));

/** floor(log2(|x|)) for a finite non-zero double, exact (read from its bits). */
function exponentOf(x: number): number {
  scratch.setFloat64(0, x);
  const biased = (scratch.getUint16(0) >> 4) & 0x7ff;
  if (biased === 0) return -1023; // subnormal double: far below every target format
  return biased - 1023;
}

/** Round half to even to an integer; r is exact (a double scaled by a power of two). */
function roundHalfEven(r: number): number {
  const floor = Math.floor(r);
  const diff = r - floor;
  if (diff > 0.5) return floor + 1;
  if (diff < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}

/**
 * Round x to a binary format with `precision` significand bits (implicit bit included) and
 * normal exponents in [minExp, maxExp], to nearest even, with gradual underflow and overflow
 * to ±Infinity. Returns the rounded value as a double (exactly representable in the format).
 */
export function roundToFormat(x: number, precision: number, minExp: number, maxExp: number): number {
  if (!Number.isFinite(x) || x === 0) return x;
  const exponent = Math.max(exponentOf(x), minExp);
  const quantum = Math.pow(2, exponent - (precision - 1));
  const rounded = roundHalfEven(x / quantum) * quantum;
  const maxFinite = (2 - Math.pow(2, 1 - precision)) * Math.pow(2, maxExp);
  if (Math.abs(rounded) > maxFinite) return x > 0 ? Infinity : -Infinity;
  return rounded === 0 ? (x < 0 ? -0 : 0) : rounded;
}

/** The nearest bf16 (ties to even) of x, as a double. */
export function roundToBf16(x: number): number { return roundToFormat(x, 8, -126, 127); }
/** The nearest f16 (ties to even) of x, as a double. */
export function roundToF16(x: number): number { return roundToFormat(x, 11, -14, 15); }

function f16Bits(x: number): number {
  if (Number.isNaN(x)) return 0x7e00;
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  const v = Math.abs(roundToF16(x));
  if (v === Infinity) return sign | 0x7c00;
  if (v === 0) return sign;
  const exponent = exponentOf(v);
  if (exponent < -14) return sign | (v / Math.pow(2, -24)); // subnormal: multiples of 2^-24
  const mantissa = (v / Math.pow(2, exponent) - 1) * 1024;
  return sign | ((exponent + 15) << 10) | mantissa;
}

function bf16Bits(x: number, f32: Float32Array, u32: Uint32Array): number {
  if (Number.isNaN(x)) return 0x7fc0;
  f32[0] = roundToBf16(x); // exactly representable in float32, so this does not round again
  return u32[0] >>> 16;
}

/**
 * Encode float64 values to little-endian bytes of F64/F32/F16/BF16, rounding each value once
 * to nearest even.
 */
export function encodeFromFloat64(values: ArrayLike<number>, dtype: EncodableDType): Uint8Array {
  const n = values.length;
  const out = new Uint8Array(n * DTYPE_SIZE[dtype]);
  const view = new DataView(out.buffer);
  switch (dtype) {
    case 'F64': for (let i = 0; i < n; i++) view.setFloat64(i * 8, values[i], true); break;
    // Float32 conversion in JavaScript is round-to-nearest-even by specification.
    case 'F32': for (let i = 0; i < n; i++) view.setFloat32(i * 4, values[i], true); break;
    case 'F16': for (let i = 0; i < n; i++) view.setUint16(i * 2, f16Bits(values[i]), true); break;
    case 'BF16': {
      const f32 = new Float32Array(1);
      const u32 = new Uint32Array(f32.buffer);
      for (let i = 0; i < n; i++) view.setUint16(i * 2, bf16Bits(values[i], f32, u32), true);
      break;
    }
    default: throw new DppaError('E_ARGUMENT', `cannot encode to dtype "${String(dtype)}" (F64, F32, F16 or BF16)`);
  }
  return out;
}

/** f16 bits of one float32, from its bits, rounding to nearest even. */
function f16BitsFromF32Bits(bits: number, scratchF32: Float32Array, scratchU32: Uint32Array): number {
  const sign = (bits >>> 16) & 0x8000;
  const abs = bits & 0x7fffffff;
  if (abs >= 0x7f800000) return sign | (abs > 0x7f800000 ? 0x7e00 : 0x7c00);
  if (abs >= 0x477ff000) return sign | 0x7c00; // ≥ 65520 rounds up to infinity
  if (abs >= 0x38800000) {
    // Normal in f16: round the 13 dropped mantissa bits, then rebias the exponent (127 → 15).
    const rounded = abs + 0xfff + ((abs >>> 13) & 1);
    return sign | ((rounded - 0x38000000) >>> 13);
  }
  // Subnormal in f16: multiples of 2^-24, rounded half to even (a carry to 0x400 is right).
  scratchU32[0] = abs;
  return sign | roundHalfEven(scratchF32[0] * 16777216);
}

/**
 * Fast encoding of float32 values into `out` (F32, F16 or BF16 little-endian), rounding to
 * nearest even. Unlike encodeFromFloat64 the input is already float32, so one rounding.
 */
export function encodeFloat32Into(values: Float32Array, dtype: 'F32' | 'F16' | 'BF16', out: Uint8Array): Uint8Array {
  const n = values.length;
  const size = DTYPE_SIZE[dtype];
  if (out.byteLength < n * size) throw new DppaError('E_ARGUMENT', `output of ${out.byteLength} bytes is too small for ${n} ${dtype} values`);
  const bits = new Uint32Array(values.buffer, values.byteOffset, n);
  if (dtype === 'F32') {
    out.set(new Uint8Array(values.buffer, values.byteOffset, n * 4));
    return out.subarray(0, n * 4);
  }
  const aligned = out.byteOffset % 2 === 0;
  const halves = aligned ? new Uint16Array(out.buffer, out.byteOffset, n) : new Uint16Array(n);
  if (dtype === 'BF16') {
    for (let i = 0; i < n; i++) {
      const u = bits[i];
      halves[i] = (u & 0x7fffffff) > 0x7f800000 ? ((u >>> 16) | 0x40) : (u + 0x7fff + ((u >>> 16) & 1)) >>> 16;
    }
  } else if (dtype === 'F16') {
    const scratchF32 = new Float32Array(1);
    const scratchU32 = new Uint32Array(scratchF32.buffer);
    for (let i = 0; i < n; i++) halves[i] = f16BitsFromF32Bits(bits[i], scratchF32, scratchU32);
  } else {
    throw new DppaError('E_ARGUMENT', `cannot encode to dtype "${String(dtype)}" (F32, F16 or BF16)`);
  }
  if (!aligned) out.set(new Uint8Array(halves.buffer, 0, n * 2));
  return out.subarray(0, n * 2);
}
