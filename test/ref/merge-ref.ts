/**
 * A plain float64 reference of whole merges (task arithmetic, TIES, DPPA), written from
 * algorithms.md without sharing code with lib/methods: selection by sorting, DP statistics
 * in float64, the combiner in float64. Slow and obvious on purpose.
 */
import { decodeToFloat64 } from '../../lib/io/codec';
import { ModelSource } from '../../lib/io/model';

export interface RefTensor {
  shape: number[];
  values: Float64Array;
}
export type RefModel = Map<string, RefTensor>;

export async function loadModel(dir: string): Promise<RefModel> {
  const source = await ModelSource.open(dir);
  const model: RefModel = new Map();
  for (const [name, info] of source.tensors) {
    model.set(name, { shape: info.shape, values: decodeToFloat64(await source.read(name), info.dtype) });
  }
  await source.close();
  return model;
}

/** δ in float32, as the spec says: the difference of two float32 values, rounded once. */
export function delta(base: Float64Array, ft: Float64Array): Float64Array {
  const out = new Float64Array(base.length);
  for (let i = 0; i < base.length; i++) out[i] = Math.fround(ft[i] - base[i]);
  return out;
}

/** Indices of the top-k by |x|, ties to lower index: by sorting. */
export function topK(x: Float64Array, k: number): Uint8Array {
  const order = Array.from(x.keys()).sort((a, b) => Math.abs(x[b]) - Math.abs(x[a]) || a - b);
  const keep = new Uint8Array(x.length);
  for (let i = 0; i < k; i++) keep[order[i]] = 1;
  return keep;
}

const LAYER = /(?:^|\.)(?:layers|h|blocks|layer)\.(\d+)\./;
export function isPrunable(name: string, shape: number[]): boolean {
  return LAYER.test(name) && shape.length === 2 && name.endsWith('.weight');
}

export interface RefCombiner {
  weights: number[];
  consensus: 'none' | 'sum' | 'count';
  normalize: boolean;
  lambda: number;
}

/** algorithms.md §1, in float64, from already sparsified-and-amplified deltas. */
export function combine(base: Float64Array, sparse: Float64Array[], c: RefCombiner): Float64Array {
  const out = new Float64Array(base.length);
  for (let i = 0; i < base.length; i++) {
    const W = sparse.map((d, t) => c.weights[t] * d[i]);
    let gamma = 1;
    if (c.consensus !== 'none') {
      const s = c.consensus === 'sum' ? W.reduce((a, v) => a + v, 0) : W.reduce((a, v) => a + Math.sign(v), 0);
      gamma = s < 0 ? -1 : 1;
    }
    let mixed = 0;
    let divisor = 0;
    W.forEach((v, t) => {
      const match = c.consensus === 'none' ? true : v !== 0 && Math.sign(v) === gamma;
      if (match) {
        mixed += v;
        divisor += c.weights[t];
      }
    });
    if (c.normalize) mixed /= Math.abs(divisor) < 1e-8 ? 1 : divisor;
    out[i] = base[i] + c.lambda * mixed;
  }
  return out;
}

export function taskArithmetic(base: RefModel, fts: RefModel[], c: RefCombiner): RefModel {
  const out: RefModel = new Map();
  for (const [name, b] of base) {
    const deltas = fts.map((ft) => delta(b.values, ft.get(name)!.values));
    out.set(name, { shape: b.shape, values: combine(b.values, deltas, c) });
  }
  return out;
}

export function ties(base: RefModel, fts: RefModel[], densities: number[], c: RefCombiner): RefModel {
  const out: RefModel = new Map();
  for (const [name, b] of base) {
    const deltas = fts.map((ft, t) => {
      const d = delta(b.values, ft.get(name)!.values);
      const keep = topK(d, Math.floor(densities[t] * d.length));
      return d.map((v, i) => (keep[i] ? v : 0));
    });
    out.set(name, { shape: b.shape, values: combine(b.values, deltas, c) });
  }
  return out;
}

/** DP's module offsets ℓ + m for one model (algorithms.md §2), unclamped; ℓ only for OWL. */
export function dpOffsets(base: RefModel, ft: RefModel, lambda = 0.08, M = 5, L0 = 3, moduleOffsets = true): Map<string, number> {
  const modules: { name: string; layer: number; d: Float64Array }[] = [];
  for (const [name, b] of base) {
    if (!isPrunable(name, b.shape)) continue;
    modules.push({ name, layer: Number(LAYER.exec(name)![1]), d: delta(b.values, ft.get(name)!.values) });
  }
  const meanAbs = (xs: Float64Array[]) => {
    let s = 0, n = 0;
    for (const x of xs) for (const v of x) { s += Math.abs(v); n++; }
    return s / n;
  };
  const layers = [...new Set(modules.map((m) => m.layer))].sort((a, b) => a - b);
  const D = layers.map((l) => {
    const xs = modules.filter((m) => m.layer === l).map((m) => m.d);
    const t = L0 * meanAbs(xs);
    let above = 0, n = 0;
    for (const x of xs) for (const v of x) { if (Math.abs(v) > t) above++; n++; }
    return (100 * above) / n;
  });
  const scaled = (v: number[], centre: number) => {
    const largest = Math.max(...v.map((x) => Math.abs(x - centre)));
    return v.map((x) => (largest === 0 ? 0 : (lambda * (x - centre)) / largest));
  };
  const meanD = D.reduce((a, v) => a + v, 0) / D.length;
  const ell = scaled(D, meanD);
  const O = modules.map((m) => {
    const t = M * meanAbs([m.d]);
    return (100 * m.d.filter((v) => Math.abs(v) > t).length) / m.d.length;
  });
  const total = modules.reduce((a, m) => a + m.d.length, 0);
  const meanO = modules.reduce((a, m, j) => a + m.d.length * O[j], 0) / total;
  const mOff = moduleOffsets ? scaled(O, meanO) : O.map(() => 0);
  const result = new Map<string, number>();
  modules.forEach((m, j) => {
    result.set(m.name, ell[layers.indexOf(m.layer)] + mOff[j]);
  });
  return result;
}

export function clampDensity(d: number): number {
  return Math.min(1, Math.max(0, d));
}

export interface RefDppa extends RefCombiner {
  partitions: number[];
  amplify: number[];
}

export function dppa(base: RefModel, fts: RefModel[], o: RefDppa): RefModel {
  const out: RefModel = new Map();
  const offsets = fts.map((ft) => dpOffsets(base, ft));
  for (const [name, b] of base) {
    const deltas = fts.map((ft, t) => {
      const d = delta(b.values, ft.get(name)!.values);
      if (!isPrunable(name, b.shape)) return d.map((v) => v * Math.max(...o.amplify));
      // The value of an element kept first at partition k is max(α_k..α_K)·δ.
      const order = Array.from(d.keys()).sort((x, y) => Math.abs(d[y]) - Math.abs(d[x]) || x - y);
      const rank = new Float64Array(d.length);
      order.forEach((idx, r) => (rank[idx] = r));
      const ks = o.partitions.map((p) => Math.floor(clampDensity(p + offsets[t].get(name)!) * d.length));
      return d.map((v, i) => {
        for (let k = 0; k < ks.length; k++) {
          if (rank[i] < ks[k]) return v * Math.max(...o.amplify.slice(k));
        }
        return 0;
      });
    });
    out.set(name, { shape: b.shape, values: combine(b.values, deltas, o) });
  }
  return out;
}

/** One unit in the last place of bf16 at x's magnitude. */
export function bf16Ulp(x: number): number {
  const a = Math.abs(x);
  if (a < 2 ** -126) return 2 ** -133;
  return 2 ** (Math.floor(Math.log2(a)) - 7);
}

/** Elements of `actual` further than one bf16 ulp from `expected`. */
export function countBeyondUlp(actual: Float64Array, expected: Float64Array): number {
  let bad = 0;
  for (let i = 0; i < actual.length; i++) {
    if (Math.abs(actual[i] - expected[i]) > bf16Ulp(expected[i]) * 1.0000001) bad++;
  }
  return bad;
}

export { roundToBf16 as roundBf16 } from '../../lib/io/codec';
