/**
 * Plain float64 JavaScript references for the native kernels (test/10–12). Written from the
 * definitions (IEEE rounding, Philox paper, lib/binding.ts), not from the C++: every float32
 * step is an explicit Math.fround, rounding is done on real values, selection sorts.
 */

const scratch = new DataView(new ArrayBuffer(8));

export function f32Bits(x: number): number {
  scratch.setFloat32(0, x, true);
  return scratch.getUint32(0, true);
}
export function f32FromBits(bits: number): number {
  scratch.setUint32(0, bits >>> 0, true);
  return scratch.getFloat32(0, true);
}
export function absBits(x: number): number {
  return f32Bits(x) & 0x7fffffff;
}

/** Round half to even of a non-negative double. */
function roundHalfEven(q: number): number {
  const f = Math.floor(q);
  const r = q - f;
  if (r > 0.5 || (r === 0.5 && f % 2 === 1)) return f + 1;
  return f;
}

// ---- decode ----------------------------------------------------------------------------------

export function bf16ToF32Bits(h: number): number {
  return (h << 16) >>> 0;
}

/** f16 → float32 bits. NaNs become quiet NaNs with the payload kept (as F16C does). */
export function f16ToF32Bits(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exponent = (h >> 10) & 0x1f;
  const mantissa = h & 0x3ff;
  if (exponent === 0x1f) return (mantissa === 0 ? sign | 0x7f800000 : sign | 0x7fc00000 | (mantissa << 13)) >>> 0;
  const magnitude = exponent === 0 ? mantissa * 2 ** -24 : (1 + mantissa / 1024) * 2 ** (exponent - 15);
  return (f32Bits(magnitude) | sign) >>> 0;
}

export function f8e4m3ToF32(b: number): number {
  const sign = b & 0x80 ? -1 : 1;
  const exponent = (b >> 3) & 0xf;
  const mantissa = b & 7;
  if (exponent === 15 && mantissa === 7) return NaN;
  if (exponent === 0) return sign * mantissa * 2 ** -9;
  return sign * (1 + mantissa / 8) * 2 ** (exponent - 7);
}

export function f8e5m2ToF32(b: number): number {
  return f32FromBits(f16ToF32Bits(b << 8));
}

// ---- encode ----------------------------------------------------------------------------------

/** float32 → bf16 bits, round to nearest even on the real values; overflow → Inf. */
export function f32ToBF16(x: number): number {
  const bits = f32Bits(x);
  const sign = (bits >>> 16) & 0x8000;
  if (Number.isNaN(x)) return ((bits >>> 16) | 0x40) & 0xffff;
  const a = Math.abs(x);
  if (a === Infinity) return sign | 0x7f80;
  const lowBits = (bits & 0x7fff0000) >>> 0;
  const low = f32FromBits(lowBits);
  // The next bf16 up; past the largest finite one, IEEE rounds as if 2^128 were representable.
  const highBits = lowBits + 0x10000;
  const high = highBits >= 0x7f800000 ? 2 ** 128 : f32FromBits(highBits);
  const dl = a - low;
  const dh = high - a;
  let result = lowBits >>> 16;
  if (dh < dl || (dh === dl && (result & 1) === 1)) result += 1;
  return sign | result;
}

/** float32 → f16 bits, round to nearest even on the real values; overflow → Inf. */
export function f32ToF16(x: number): number {
  const bits = f32Bits(x);
  const sign = (bits >>> 16) & 0x8000;
  if (Number.isNaN(x)) return sign | 0x7e00 | ((bits & 0x7fffff) >>> 13);
  const a = Math.abs(x);
  if (a >= 65520) return sign | 0x7c00; // 65504 + half an ulp (32): ties go to the even Inf
  if (a < 2 ** -14) return sign | roundHalfEven(a / 2 ** -24); // subnormal (may round up to 0x400)
  const e = Math.floor(Math.log2(a));
  const exponent = 2 ** e > a ? e - 1 : 2 ** (e + 1) <= a ? e + 1 : e; // guard log2 rounding
  const q = roundHalfEven(a / 2 ** (exponent - 10)); // 1024 .. 2048
  return sign | (((exponent + 15) << 10) + (q - 1024));
}

export function decodeRef(bytes: Uint8Array, dtype: string): Float32Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const size = dtypeSize(dtype);
  const n = bytes.byteLength / size;
  const out = new Float32Array(n);
  for (let i = 0; i < n; ++i) {
    switch (dtype) {
      case 'F32': out[i] = view.getFloat32(4 * i, true); break;
      case 'F64': out[i] = Math.fround(view.getFloat64(8 * i, true)); break;
      case 'BF16': out[i] = f32FromBits(bf16ToF32Bits(view.getUint16(2 * i, true))); break;
      case 'F16': out[i] = f32FromBits(f16ToF32Bits(view.getUint16(2 * i, true))); break;
      case 'F8_E4M3': out[i] = f8e4m3ToF32(bytes[i]); break;
      case 'F8_E5M2': out[i] = f8e5m2ToF32(bytes[i]); break;
      default: throw new Error(dtype);
    }
  }
  return out;
}

export function encodeRef(values: Float32Array, dtype: string): Uint8Array {
  if (dtype === 'F32') return new Uint8Array(values.slice().buffer);
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; ++i) out[i] = dtype === 'BF16' ? f32ToBF16(values[i]) : f32ToF16(values[i]);
  return new Uint8Array(out.buffer);
}

export function dtypeSize(dtype: string): number {
  return { F32: 4, F16: 2, BF16: 2, F64: 8, F8_E4M3: 1, F8_E5M2: 1 }[dtype] as number;
}

// ---- δ and statistics ---------------------------------------------------------------------

export interface RefTensor {
  data: Uint8Array;
  dtype: string;
}

export function deltaRef(ft: RefTensor, base?: RefTensor): Float32Array {
  const f = decodeRef(ft.data, ft.dtype);
  if (!base) return f;
  const b = decodeRef(base.data, base.dtype);
  return f.map((x, i) => Math.fround(x - b[i]));
}

/** Σ in the documented order: tiles of 4096, 256 lanes, a pairwise tree, tiles in order. */
export function orderedSum(n: number, term: (i: number) => number): number {
  let total = 0;
  for (let tile = 0; tile * 4096 < n; ++tile) {
    const lanes = new Float64Array(256);
    for (let j = 0; j < 4096 && tile * 4096 + j < n; ++j) lanes[j % 256] += term(tile * 4096 + j);
    for (let s = 128; s >= 1; s /= 2) for (let l = 0; l < s; ++l) lanes[l] += lanes[l + s];
    total += lanes[0];
  }
  return total;
}

export function absStatsRef(d: Float32Array, thresholds: number[]) {
  return {
    n: d.length,
    sumAbs: orderedSum(d.length, (i) => Math.abs(d[i])),
    countsAbove: thresholds.map((t) => d.reduce((c, x) => c + (Math.abs(x) > t ? 1 : 0), 0)),
    nonFinite: d.reduce((c, x) => c + (Number.isFinite(x) ? 0 : 1), 0),
  };
}

export function histogramRef(d: Float32Array, shift: number, bins: number, mask: number, value: number): number[] {
  const h = new Array(bins).fill(0);
  for (const x of d) {
    const a = absBits(x);
    if (((a & mask) >>> 0) === value >>> 0) h[(a >>> shift) & (bins - 1)]++;
  }
  return h;
}

/** Keep-rule of "top k by |δ|" by sorting (ties to lower index). */
export function selectRef(d: Float32Array, k: number, rule: 'index' | 'drop' = 'index', offset = 0) {
  if (k === 0) return { bits: 0xffffffff, cutoff: -1 };
  const order = Array.from(d.keys()).sort((i, j) => absBits(d[j]) - absBits(d[i]) || i - j);
  const bits = absBits(d[order[k - 1]]);
  if (rule === 'drop') return { bits, cutoff: -1 };
  let cutoff = -1;
  for (let r = 0; r < k; ++r) if (absBits(d[order[r]]) === bits) cutoff = Math.max(cutoff, order[r]);
  return { bits, cutoff: cutoff + offset };
}

/** The keep-rule applied: which elements a set of bands keeps, and by which band. */
export function bandOf(a: number, i: number, bits: ArrayLike<number>, cutoff: ArrayLike<number>, entry: number, nbands: number): number {
  for (let b = 0; b < nbands; ++b) {
    const t = bits[entry + b] >>> 0;
    if (a > t || (a === t && i <= cutoff[entry + b])) return b;
  }
  return -1;
}

// ---- Philox4x32-10 ---------------------------------------------------------------------------

function mulHiLo(a: number, b: number): [number, number] {
  const lo = Math.imul(a, b) >>> 0;
  const ah = a >>> 16, al = a & 0xffff, bh = b >>> 16, bl = b & 0xffff;
  const low = al * bl;
  const cross1 = ah * bl;
  const cross2 = al * bh;
  const middle = Math.floor(low / 65536) + (cross1 % 65536) + (cross2 % 65536);
  const hi = ah * bh + Math.floor(cross1 / 65536) + Math.floor(cross2 / 65536) + Math.floor(middle / 65536);
  return [hi >>> 0, lo];
}

export function philox(c: [number, number, number, number], k: [number, number]): number[] {
  let [c0, c1, c2, c3] = c;
  let [k0, k1] = k;
  for (let round = 0; round < 10; ++round) {
    const [hi0, lo0] = mulHiLo(0xd2511f53, c0);
    const [hi1, lo1] = mulHiLo(0xcd9e8d57, c2);
    [c0, c1, c2, c3] = [(hi1 ^ c1 ^ k0) >>> 0, lo1, (hi0 ^ c3 ^ k1) >>> 0, lo0];
    k0 = (k0 + 0x9e3779b9) >>> 0;
    k1 = (k1 + 0xbb67ae85) >>> 0;
  }
  return [c0, c1, c2, c3];
}

export interface Stream {
  seedLo: number;
  seedHi: number;
  streamLo: number;
  streamHi: number;
}

export function uniformRef(s: Stream, i: number): number {
  const block = Math.floor(i / 4);
  const words = philox([block >>> 0, Math.floor(block / 2 ** 32) >>> 0, s.streamLo, s.streamHi], [s.seedLo, s.seedHi]);
  return (words[i % 4] >>> 8) * 2 ** -24;
}

// ---- the combiner ------------------------------------------------------------------------

export type RefSparsify =
  | { kind: 'dense'; factor: number }
  | { kind: 'bands'; rules: { bits: Uint32Array; cutoff: Float64Array; rows?: number }; factor: Float64Array }
  | { kind: 'random'; stream: Stream; density: number; rescale: number }
  | { kind: 'della'; stream: Stream; density: number; epsilon: number; rows: number; rescale: number; factor?: number };

/**
 * DELLA's keep probabilities (lib/binding.ts 'della'): per row, ranks from a sort by abs bits
 * ascending then index, r̂ = rank / (m − 1) (0.5 when m = 1), p = fround((d − ε) + (2ε)·r̂).
 */
export function dellaProbRef(d: Float32Array, density: number, epsilon: number, rows: number): Float32Array {
  const n = d.length;
  const p = new Float32Array(n);
  if (n === 0) return p;
  const r = rows > 0 ? rows : 1;
  const m = n / r;
  for (let row = 0; row < r; ++row) {
    const start = row * m;
    const keys = Array.from({ length: m }, (_, j) => ({ a: absBits(d[start + j]), j }));
    keys.sort((x, y) => x.a - y.a || x.j - y.j);
    keys.forEach((k, rank) => {
      const rhat = m === 1 ? 0.5 : rank / (m - 1);
      p[start + k.j] = Math.fround(density - epsilon + 2 * epsilon * rhat);
    });
  }
  return p;
}

/** Whether element i is kept by 'random' / 'della' (p: dellaProbRef), for sparsifyStats. */
export function keptRef(sp: RefSparsify, i: number, p?: Float32Array): boolean {
  if (sp.kind === 'random') return uniformRef(sp.stream, i) < sp.density;
  if (sp.kind === 'della') return uniformRef(sp.stream, i) < p![i];
  throw new Error('keptRef: random or della only');
}

export interface RefModel extends RefTensor {
  weight: number;
  sparsify: RefSparsify;
}

/** W_t = f(w)·v per algorithms.md §1 and kernels.h, one float32 rounding per operation. */
export function sparsifiedRef(d: Float32Array, sp: RefSparsify): Float32Array {
  const f = Math.fround;
  const n = d.length;
  const out = new Float32Array(n);
  const p = sp.kind === 'della' ? dellaProbRef(d, sp.density, sp.epsilon, sp.rows) : undefined;
  for (let i = 0; i < n; ++i) {
    if (sp.kind === 'dense') out[i] = f(f(sp.factor) * d[i]);
    else if (sp.kind === 'della') out[i] = keptRef(sp, i, p) ? (sp.rescale ? f(d[i] / p![i]) : f(f(sp.factor ?? 1) * d[i])) : 0;
    else if (sp.kind === 'random') out[i] = uniformRef(sp.stream, i) < sp.density ? f(f(sp.rescale) * d[i]) : 0;
    else {
      const rows = sp.rules.rows ?? 0;
      const nbands = rows > 0 ? sp.rules.bits.length / rows : sp.rules.bits.length;
      const entry = rows > 0 ? Math.floor(i / (n / rows)) * nbands : 0;
      const b = bandOf(absBits(d[i]), i, sp.rules.bits, sp.rules.cutoff, entry, nbands);
      out[i] = b < 0 ? 0 : f(f(sp.factor[b]) * d[i]);
    }
  }
  return out;
}

export function mergeRef(job: {
  base: RefTensor;
  models: RefModel[];
  consensus: 'none' | 'sum' | 'count';
  normalize: boolean;
  lambda: number;
  outDtype: string;
}): { out: Uint8Array; nonFinite: number[] } {
  const f = Math.fround;
  const base = decodeRef(job.base.data, job.base.dtype);
  const n = base.length;
  const weighted = job.models.map((m) => {
    const d = deltaRef(m, job.base);
    const v = sparsifiedRef(d, m.sparsify);
    return v.map((x) => f(f(m.weight) * x));
  });
  const result = new Float32Array(n);
  for (let i = 0; i < n; ++i) {
    let gammaPositive = true;
    if (job.consensus === 'sum') {
      let s = 0;
      for (const w of weighted) s = f(s + w[i]);
      gammaPositive = !(s < 0);
    } else if (job.consensus === 'count') {
      let c = 0;
      for (const w of weighted) c += w[i] > 0 ? 1 : w[i] < 0 ? -1 : 0;
      gammaPositive = !(c < 0);
    }
    let mixed = 0;
    let divisor = 0;
    job.models.forEach((m, t) => {
      const w = weighted[t][i];
      const match = job.consensus === 'none' || (gammaPositive ? w > 0 : w < 0);
      if (match) {
        mixed = f(mixed + w);
        divisor = f(divisor + f(m.weight));
      }
    });
    if (job.normalize) {
      if (Math.abs(divisor) < 1e-8) divisor = 1;
      mixed = f(mixed / divisor);
    }
    result[i] = f(base[i] + f(f(job.lambda) * mixed));
  }
  const count = (x: Float32Array) => x.reduce((c, v) => c + (Number.isFinite(v) ? 0 : 1), 0);
  return {
    out: encodeRef(result, job.outDtype),
    nonFinite: [count(base), ...job.models.map((m) => count(decodeRef(m.data, m.dtype)))],
  };
}

export function linearRef(inputs: RefTensor[], coeffs: number[], outDtype: string) {
  const f = Math.fround;
  const xs = inputs.map((t) => decodeRef(t.data, t.dtype));
  const n = xs[0].length;
  const acc = new Float32Array(n);
  for (let i = 0; i < n; ++i) {
    let s = 0;
    xs.forEach((x, k) => (s = f(s + f(f(coeffs[k]) * x[i]))));
    acc[i] = s;
  }
  return { out: encodeRef(acc, outDtype), nonFinite: xs.map((x) => x.reduce((c, v) => c + (Number.isFinite(v) ? 0 : 1), 0)) };
}

// ---- data ------------------------------------------------------------------------------------

/** A small seeded generator for reproducible test data (mulberry32). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** n normal-ish values around `center` with spread `scale`, stored as `dtype`. */
export function randomTensor(n: number, dtype: string, seed: number, scale = 1, center?: Float32Array): RefTensor {
  const r = rng(seed);
  const values = new Float32Array(n);
  for (let i = 0; i < n; ++i) values[i] = (center ? center[i] : 0) + scale * (r() + r() + r() - 1.5);
  return tensorOf(values, dtype);
}

export function tensorOf(values: Float32Array, dtype: string): RefTensor {
  if (dtype === 'F64') return { data: new Uint8Array(Float64Array.from(values).buffer), dtype };
  return { data: encodeRef(values, dtype), dtype };
}
