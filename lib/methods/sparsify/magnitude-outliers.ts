/**
 * `magnitude_outliers` (Breadcrumbs): drop the top γ·n elements by |δ| (the outliers) and
 * the bottom n − d·n − γ·n, keeping the d·n in between. γ = 0 drops no outliers (mergekit
 * zeroes the whole tensor there: a bug not copied).
 */
import type { Sparsify } from '../../binding';
import type { ModelTensor, TensorWork } from '../recipe';
import { selectionOptions, selectThresholds } from './common';

export async function magnitudeOutliers(work: TensorWork, model: ModelTensor): Promise<Sparsify> {
  const density = model.params.number('density');
  const gamma = model.params.number('gamma');
  const { rows, rowLength } = selectionOptions(work, model);
  const outliers = Math.floor(rowLength * gamma);
  const kept = Math.min(rowLength - outliers, Math.floor(rowLength * density));
  // Band 0 holds the outliers (factor 0), band 1 the kept middle (factor 1).
  const rules = await selectThresholds(work, model, Float64Array.of(outliers, outliers + kept), { rows });
  return { kind: 'bands', rules, factor: Float64Array.of(0, 1) };
}
