/**
 * `della_magprune` (DELLA, Deep et al. 2024): within each row, rank the elements by |δ| from
 * smallest to largest (r̂ in [0, 1]) and keep each with probability p = d − ε + 2ε·r̂, so
 * larger deltas survive more often; kept elements are divided by their own p (`rescale:
 * inverse`, the default) or left as they are (`none`). The draws come from the same
 * counter-based generator as DARE.
 */
import type { Sparsify } from '../../binding';
import { DppaError } from '../../errors';
import { randomStream } from '../../rng';
import type { ModelTensor, TensorWork } from '../recipe';
import { selectionOptions } from './common';

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
  const rescale = model.params.string('rescale');
  if (rescale === 'l1') {
    throw new DppaError('E_CONFIG', `model ${model.name}: della supports rescale: inverse (default) or none, not l1`);
  }
  const { rows } = selectionOptions(work, model);
  return {
    kind: 'della',
    stream: randomStream(work.seed, model.name, work.tensor.name),
    density,
    epsilon,
    rows,
    rescale: rescale === 'none' ? 0 : 1,
  };
}
