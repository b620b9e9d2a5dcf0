/**
 * `dp` (Dynamic Pruning) and its DPA bands (algorithms.md §2–3).
 *
 * Each partition k has a base density p_k (tight → loose); a prunable module j keeps its
 * top floor(d_jk · n) elements by |δ| with d_jk = clamp(p_k + ℓ + m_j, 0, 1), the offsets
 * coming from the statistics pass (dp-densities.ts). The masks are nested, so an element
 * belongs to the tightest partition that keeps it, and DPA multiplies it by
 * max(α_k, …, α_K): the authors combine candidates by keeping the larger magnitude.
 * Tensors outside DP's scope (embeddings, head, norms, biases) keep their dense δ, times
 * max(α) as in the authors' code (`amplify_dense: false` leaves them at 1), or are pruned
 * at the uniform rates with `prune_dense: true`.
 */
import type { Sparsify } from '../../binding';
import { dpDensity } from '../dp-densities';
import type { ModelTensor, TensorWork } from '../recipe';
import { keepCount, selectThresholds, tieRule } from './common';

export interface Partitions {
  /** Densities 1 − s_k of the nested masks, tight → loose. */
  densities: number[];
  /** α_k per partition; 0 disables a band. */
  amplify: number[];
}

/** Band k's factor is max(α_k, …, α_K). */
export function bandFactors(amplify: number[]): Float64Array {
  const factors = new Float64Array(amplify.length);
  let runningMax = 0;
  for (let k = amplify.length - 1; k >= 0; k--) {
    runningMax = Math.max(runningMax, amplify[k]);
    factors[k] = runningMax;
  }
  return factors;
}

export async function dynamicPruning(work: TensorWork, model: ModelTensor, partitions: Partitions): Promise<Sparsify> {
  const factors = bandFactors(partitions.amplify);
  const inScope = work.tensor.role.prunable;
  if (!inScope && !model.params.boolean('prune_dense')) {
    const largest = Math.max(0, ...partitions.amplify);
    return { kind: 'dense', factor: largest !== 1 && model.params.boolean('amplify_dense') ? largest : 1 };
  }
  const offset = inScope ? model.dpOffsets?.offsetOf.get(work.tensor.name) ?? 0 : 0;
  const n = work.tensor.numel;
  const rule = tieRule(model);
  const ks = Float64Array.from(partitions.densities, (p) => keepCount(dpDensity(p, offset), n, rule));
  const rules = await selectThresholds(work, model, ks, { rule });
  return { kind: 'bands', rules, factor: factors };
}

/** `sparsify: dp` or `owl_layer` inside another method: one partition at `density`, no amplification. */
export async function dp(work: TensorWork, model: ModelTensor): Promise<Sparsify> {
  return dynamicPruning(work, model, { densities: [model.params.number('density')], amplify: [1] });
}
