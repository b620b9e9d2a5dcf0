/**
 * `della_magprune` (DELLA, Deep et al. 2024): within each row, rank the elements by |δ| from
 * smallest to largest (r̂ in [0, 1]) and keep each with probability p = d − ε + 2ε·r̂, so
 * larger deltas survive more often; kept elements are divided by their own p (`rescale:
 * inverse`, the default), left as they are (`none`), or all multiplied by ‖δ‖₁ / ‖kept‖₁
 * (`l1`, as `random`). The draws come from the same counter-based generator as DARE.
 */
import type { Sparsify } from '../../binding';
import { DppaError } from '../../errors';
import { randomStream } from '../../rng';
import type { ModelTensor, TensorWork } from '../recipe';
import { deltaOf, selectionOptions } from './common';

export async function dellaMagprune(work: TensorWork, model: ModelTensor): Promise<Sparsify> {
  const density = model.params.number('density');
  const epsilon = model.params.number('epsilon');
  if (density >= 1) return { kind: 'dense', factor: 1 };
  if (!(density - epsilon > 0 && density + epsilon < 1)) {
    throw new DppaError(
      'E_CONFIG',
      `model ${model.name}, tensor ${work.tensor.name}: della needs 0 < density ± epsilon < 1, got density ${density}, epsilon ${epsilon}`,
    );
  }
  const rescaleRule = model.params.string('rescale');
  const { rows } = selectionOptions(work, model);
  const stream = randomStream(work.seed, model.name, work.tensor.name);
  const unscaled: Sparsify = { kind: 'della', stream, density, epsilon, rows, rescale: 0 };
  if (rescaleRule === 'none') return unscaled;
  if (rescaleRule !== 'l1') return { ...unscaled, rescale: 1 };
  // l1: kept · ‖δ‖₁ / ‖kept‖₁, skipped when either norm is negligible (as mergekit). The keep
  // mask is the merge's own (same stream, same probabilities), so ‖kept‖₁ is exact.
  const stats = await work.native.sparsifyStats(deltaOf(work, model), unscaled);
  const factor = stats.sumAbs < 1e-7 || stats.sumAbsKept < 1e-7 ? 1 : stats.sumAbs / stats.sumAbsKept;
  return { ...unscaled, factor };
}
