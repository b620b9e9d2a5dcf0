/**
 * `magnitude`: keep exactly floor(d·n) elements of largest |δ| (TIES' trim), per tensor or
 * per row, or over the whole model (`scope: model`, via run/model-threshold.ts). Ties at the
 * threshold keep lower flat indices first; `ties: drop` reproduces the DPPA code's rule
 * instead (drop every |δ| <= τ).
 */
import type { Sparsify } from '../../binding';
import type { ModelTensor, TensorWork } from '../recipe';
import { keepCount, selectionOptions, selectThresholds, tieRule } from './common';

export async function magnitude(work: TensorWork, model: ModelTensor): Promise<Sparsify> {
  const density = model.params.number('density');
  if (density >= 1) return { kind: 'dense', factor: 1 };
  const rule = tieRule(model);
  if (model.modelScope) {
    // scope: model — the statistics pass found this tensor's share of one model-wide threshold.
    const share = model.modelScope;
    const rules = 'bits' in share
      ? { bits: Uint32Array.of(share.bits), cutoff: Float64Array.of(-1) }
      : await selectThresholds(work, model, Float64Array.of(share.keep), { rule: 'index' });
    return { kind: 'bands', rules, factor: Float64Array.of(1) };
  }
  const { rows, rowLength } = selectionOptions(work, model);
  const ks = Float64Array.of(keepCount(density, rowLength, rule));
  const rules = await selectThresholds(work, model, ks, { rule, rows });
  return { kind: 'bands', rules, factor: Float64Array.of(1) };
}
