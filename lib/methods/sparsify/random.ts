/**
 * `random` (DARE): keep each element with probability d, from the counter-based generator
 * keyed by (seed, model, tensor, index), then rescale: `inverse` (1/d, the paper's
 * 1/(1−p)), `l1` (restore ‖δ‖₁), or `none`.
 */
import type { Sparsify } from '../../binding';
import { randomStream } from '../../rng';
import type { ModelTensor, TensorWork } from '../recipe';
import { deltaOf } from './common';

export async function random(work: TensorWork, model: ModelTensor): Promise<Sparsify> {
  const density = model.params.number('density');
  if (density >= 1) return { kind: 'dense', factor: 1 };
  if (density <= 0) return { kind: 'dense', factor: 0 };
  const stream = randomStream(work.seed, model.name, work.tensor.name);
  const rescaleRule = model.params.string('rescale');
  if (rescaleRule === 'none') return { kind: 'random', stream, density, rescale: 1 };
  if (rescaleRule === 'inverse') return { kind: 'random', stream, density, rescale: 1 / density };
  // l1: kept · ‖δ‖₁ / ‖kept‖₁, skipped when either norm is negligible (as mergekit).
  const unscaled: Sparsify = { kind: 'random', stream, density, rescale: 1 };
  const stats = await work.native.sparsifyStats(deltaOf(work, model), unscaled);
  const rescale = stats.sumAbs < 1e-7 || stats.sumAbsKept < 1e-7 ? 1 : stats.sumAbs / stats.sumAbsKept;
  return { kind: 'random', stream, density, rescale };
}
