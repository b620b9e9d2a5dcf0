/**
 * In-memory tensors for the kernel benchmarks: a bf16 base ~ N(0, 0.02²) and K fine-tunes
 * base + δ, δ ~ N(0, 0.002²) with a few heavy outliers — the magnitudes of real fine-tune
 * deltas, so |δ| has realistic distinct values (selection cost depends on that, not only n).
 */
import type { NativeBinding } from '../lib/binding';
import { NORMAL_TABLE, Xoshiro128 } from '../lib/synth/random';

export interface Family {
  n: number;
  base: Uint8Array;
  fts: Uint8Array[];
}

/** Fill `out` with scale·N(0,1), plus `offsets` when given; one outlier (×20) per 4096. */
export function fillNormal(out: Float32Array, scale: number, seed: number, label: string, offsets?: Float32Array): void {
  const rng = new Xoshiro128(seed, label);
  for (let i = 0; i < out.length; i++) {
    const r = rng.nextUint32();
    let v = scale * NORMAL_TABLE[r & 0xffff];
    if ((r >>> 20) === 0) v *= 20;
    out[i] = offsets ? offsets[i] + v : v;
  }
}

export async function makeFamily(native: NativeBinding, n: number, k: number, seed = 1): Promise<Family> {
  const baseF = new Float32Array(n);
  fillNormal(baseF, 0.02, seed, 'base');
  const base = new Uint8Array(n * 2);
  await native.encode(baseF, 'BF16', base);
  const tmp = new Float32Array(n);
  const fts: Uint8Array[] = [];
  for (let t = 0; t < k; t++) {
    fillNormal(tmp, 0.002, seed, `ft${t}`, baseF);
    const ft = new Uint8Array(n * 2);
    await native.encode(tmp, 'BF16', ft);
    fts.push(ft);
  }
  return { n, base, fts };
}

/** |δ|-like float32 data for the plain selection kernel. */
export function makeFloat32(n: number, seed = 2): Float32Array {
  const out = new Float32Array(n);
  fillNormal(out, 0.002, seed, 'select');
  return out;
}
