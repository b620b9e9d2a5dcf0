/**
 * `linear`: the weighted average Σ w_t θ_t / Σ w_t of the models (base not needed; a base
 * listed among the models is averaged like any other). `normalize: false` gives Σ w_t θ_t.
 */
import { DppaError } from '../errors';
import type { MethodDefinition } from './recipe';
import { methodSchemas } from './schemas';

export const linear: MethodDefinition = {
  schema: methodSchemas.linear,
  includesBaseEntry: true,
  statisticsNeeded: () => null,
  mergeTensor: (work) => {
    const weights = work.models.map((m) => m.params.number('weight'));
    const total = weights.reduce((s, w) => s + w, 0);
    if (work.params.boolean('normalize') && Math.abs(total) < 1e-8) {
      throw new DppaError('E_CONFIG', `linear: the weights for ${work.tensor.name} sum to 0; they cannot be normalized`);
    }
    const scale = work.params.boolean('normalize') ? 1 / total : 1;
    return work.native.linearCombine(
      work.models.map((m) => m.input),
      Float64Array.from(weights, (w) => w * scale),
      work.out,
      work.outDtype,
    );
  },
};
