/**
 * DPPA — Dynamic Pruning Partition Amplification (arXiv 2403.02799; algorithms.md §2–4).
 *
 * Each fine-tune's δ goes through DP (per-layer and per-module densities from |δ|
 * statistics: dp-densities.ts) at every partition rate, the nested masks form bands, and
 * DPA amplifies each band (sparsify/dp.ts). The amplified deltas then go through the
 * combiner: task arithmetic by default (λ = 1, weights 1), or TIES-style with
 * `consensus: sum`. With a single fine-tune this is DPPA's pruning of that model.
 */
import { DppaError } from '../errors';
import { combine } from './combine';
import type { MethodDefinition, ModelTensor, ParamSource } from './recipe';
import { methodSchemas } from './schemas';
import { dynamicPruning, Partitions } from './sparsify/dp';

/** `partitions` + `amplify`, or `density: d` alone meaning one partition [d] (α = [1]). */
export function partitionsOf(params: ParamSource, where: string): Partitions {
  let densities: number[];
  let amplify: number[];
  if (params.given('partitions')) {
    densities = params.list('partitions');
    amplify = params.list('amplify');
  } else if (params.given('density')) {
    densities = [params.number('density')];
    amplify = params.given('amplify') ? params.list('amplify') : [1];
  } else {
    densities = params.list('partitions');
    amplify = params.list('amplify');
  }
  if (densities.length !== amplify.length) {
    throw new DppaError(
      'E_CONFIG',
      `${where}: ${densities.length} partitions but ${amplify.length} amplify factors; give one α per partition`,
    );
  }
  return { densities, amplify };
}

export const dppa: MethodDefinition = {
  schema: methodSchemas.dppa,
  statisticsNeeded: () => 'dp',
  mergeTensor: (work) =>
    combine(work, (w, model: ModelTensor) => dynamicPruning(w, model, partitionsOf(model.params, `model ${model.name}`))),
};
