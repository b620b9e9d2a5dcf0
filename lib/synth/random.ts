/**
 * Small, fast, deterministic randomness for generated checkpoints: xoshiro128** seeded
 * through splitmix32 from a hash of (seed, labels), and normal deviates from a lookup table.
 * Streams are keyed by what they generate (model, tensor, slab), so a value never depends on
 * the order or the size of the pieces a generator works in.
 */

/** FNV-1a, 32 bits, over the UTF-16 code units of a string. */
export function hashString(text: string, seed = 0x811c9dc5): number {
  let h = seed >>> 0;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** splitmix32: spreads one 32-bit state into well-mixed words. */
function splitmix32(state: { s: number }): number {
  state.s = (state.s + 0x9e3779b9) | 0;
  let z = state.s;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

export class Xoshiro128 {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  /** A stream keyed by a numeric seed and any labels (model, tensor, slab index...). */
  constructor(seed: number, ...labels: (string | number)[]) {
    let h = hashString(String(seed >>> 0) + ':' + String(Math.floor(seed / 2 ** 32)));
    for (const label of labels) h = hashString(`\u0000${label}`, h);
    const state = { s: h | 0 };
    this.a = splitmix32(state);
    this.b = splitmix32(state);
    this.c = splitmix32(state);
    this.d = splitmix32(state);
    if ((this.a | this.b | this.c | this.d) === 0) this.d = 1; // the all-zero state is a fixed point
  }

  /** The next uniform 32-bit unsigned integer. */
  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.b, 5), 7), 9);
    const t = this.b << 9;
    this.c ^= this.a;
    this.d ^= this.b;
    this.b ^= this.c;
    this.a ^= this.d;
    this.c ^= t;
    this.d = rotl(this.d, 11);
    return result >>> 0;
  }

  /** Uniform in [0, 1), 32 bits of resolution. */
  nextFloat(): number {
    return this.nextUint32() * 2.3283064365386963e-10;
  }

  /** Uniform integer in [0, n), n ≤ 2^32 (the slight modulo bias is irrelevant here). */
  nextInt(n: number): number {
    return Math.floor(this.nextFloat() * n);
  }

  /** A standard normal deviate (table-based: tails are cut near ±4.3σ). */
  nextNormal(): number {
    return NORMAL_TABLE[this.nextUint32() >>> 16];
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/**
 * NORMAL_TABLE[i] = Φ⁻¹((i + 0.5) / 65536): indexing it with 16 random bits gives a normal
 * deviate for the price of one lookup. Φ is integrated numerically (Simpson's rule) once.
 */
export const NORMAL_TABLE: Float32Array = buildNormalTable(65536);

function buildNormalTable(size: number): Float32Array {
  const lo = -6;
  const hi = 6;
  const steps = 240_000; // even, for Simpson's rule on pairs of intervals
  const h = (hi - lo) / steps;
  const pdf = (x: number) => Math.exp(-0.5 * x * x) / Math.sqrt(2 * Math.PI);
  const table = new Float32Array(size);
  // Walk the grid once, accumulating the CDF, and emit each quantile as its probability is passed.
  let cdf = 0; // Φ(lo) ≈ 1e-9, negligible against 0.5/65536
  let x = lo;
  let index = 0;
  for (let s = 0; s < steps && index < size; s += 2) {
    const increment = (h / 3) * (pdf(x) + 4 * pdf(x + h) + pdf(x + 2 * h));
    const next = cdf + increment;
    while (index < size && (index + 0.5) / size <= next) {
      const target = (index + 0.5) / size;
      // Linear interpolation inside the 2h step: ample for a 16-bit table.
      table[index] = x + (2 * h * (target - cdf)) / increment;
      index++;
    }
    cdf = next;
    x += 2 * h;
  }
  for (; index < size; index++) table[index] = hi;
  // Exact symmetry, so generated deltas have no bias from numerical error in the tails.
  for (let i = 0; i < size / 2; i++) {
    const v = (table[i] - table[size - 1 - i]) / 2;
    table[i] = v;
    table[size - 1 - i] = -v;
  }
  return table;
}
