/** Helpers the sparsifiers share. */
import type { BandRules, DeltaInput, SelectOptions } from '../../binding';
import type { ModelTensor, TensorWork } from '../recipe';

export function deltaOf(work: TensorWork, model: ModelTensor): DeltaInput {
  return { base: work.base, ft: model.input };
}

/** `scope: row` selects per output row (DELLA's way); otherwise over the whole tensor. */
export function selectionOptions(work: TensorWork, model: ModelTensor): { rows: number; rowLength: number } {
  const { shape, numel } = work.tensor;
  if (model.params.string('scope') === 'row' && shape.length >= 2 && numel > 0) {
    return { rows: shape[0], rowLength: numel / shape[0] };
  }
  return { rows: 0, rowLength: numel };
}

export type TieRule = 'index' | 'drop';

export function tieRule(model: ModelTensor): TieRule {
  return model.params.string('ties') === 'drop' ? 'drop' : 'index';
}

/**
 * How many elements the selection must rank for density d over n elements.
 * - index: exactly floor(d·n) survive (as mergekit: int(density·numel)).
 * - drop (the DPPA code): τ = sorted(|δ|)[floor(n·s)] with s = 1 − d, and every |δ| <= τ is
 *   dropped; τ is the (n − floor(n·s))-th largest value, so that is the k to select.
 */
export function keepCount(density: number, n: number, rule: TieRule): number {
  return rule === 'drop' ? n - Math.floor(n * (1 - density)) : Math.floor(density * n);
}

/**
 * Exact magnitude thresholds of a model's δ for this tensor. Thresholds do not depend on
 * amplification factors, weights or λ, so a run that merges many candidates (the DPA factor
 * search) passes a cache and selects each tensor once.
 */
export async function selectThresholds(work: TensorWork, model: ModelTensor, ks: Float64Array, options: SelectOptions): Promise<BandRules> {
  const key = `${model.name}\u0000${work.tensor.name}\u0000${ks.join(',')}\u0000${options.rule ?? 'index'}\u0000${options.rows ?? 0}`;
  const cached = work.selectionCache?.get(key);
  if (cached) return cached;
  const rules = await work.native.selectThresholds(deltaOf(work, model), ks, options);
  work.selectionCache?.set(key, rules);
  return rules;
}
