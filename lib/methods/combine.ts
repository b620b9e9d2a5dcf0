/**
 * mergekit's generalized task arithmetic, which every sparsifier feeds (algorithms.md §1):
 *
 *   W_t = w_t · sparsify(δ_t)
 *   consensus sum:   γ = sign(Σ W_t);  count: γ = sign(Σ sign(W_t));  m_t = sign(W_t) == γ
 *   mixed = Σ W_t·m_t,  divisor = Σ w_t·m_t,  normalize → mixed / divisor
 *   out = θ₀ + λ · mixed
 *
 * The whole recipe — decode, δ, sparsify, weight, consensus, combine, encode — is one fused
 * native call per tensor; this file only decides its inputs.
 */
import type { Consensus, MergeResult, Sparsify } from '../binding';
import { DppaError } from '../errors';
import type { MethodDefinition, ModelTensor, ParamSource, StatisticsNeed, TensorWork } from './recipe';
import { sparsifiers } from './sparsify';
import type { MethodSchema } from './types';

export type SparsifyFor = (work: TensorWork, model: ModelTensor) => Promise<Sparsify>;

export async function combine(work: TensorWork, sparsifyFor: SparsifyFor): Promise<MergeResult> {
  // Together, so that their selections share one pass over the inputs (sparsify/common.ts).
  const sparsified = await Promise.all(work.models.map((model) => sparsifyFor(work, model)));
  const models = work.models.map((model, i) => ({ ...model.input, weight: model.params.number('weight'), sparsify: sparsified[i] }));
  return work.native.mergeTensor({
    base: work.base,
    models,
    consensus: work.params.string('consensus') as Consensus,
    normalize: work.params.boolean('normalize'),
    lambda: work.params.number('lambda'),
    out: work.out,
    outDtype: work.outDtype,
  });
}

export function statisticsForSparsifier(name: string, scope: string): StatisticsNeed {
  if (name === 'dp') return 'dp';
  if (name === 'owl_layer') return 'owl';
  if (name === 'magnitude' && scope === 'model') return 'model-threshold';
  return null;
}

/** A method that is a preset of (sparsifier, consensus, normalize): task_arithmetic, ties, dare_*, … */
export function combinerMethod(schema: MethodSchema): MethodDefinition {
  return {
    schema,
    statisticsNeeded: (params: ParamSource) => statisticsForSparsifier(params.string('sparsify'), params.string('scope')),
    mergeTensor: (work) => {
      const name = work.params.string('sparsify');
      const sparsifier = sparsifiers[name];
      if (!sparsifier) throw new DppaError('E_CONFIG', `${schema.name}: unknown sparsify '${name}'`);
      return combine(work, sparsifier);
    },
  };
}
