/** The sparsifiers any combiner-based method can use (`sparsify:` in the config). */
import type { Sparsify } from '../../binding';
import type { ModelTensor, TensorWork } from '../recipe';
import { dellaMagprune } from './della';
import { dp } from './dp';
import { magnitude } from './magnitude';
import { magnitudeOutliers } from './magnitude-outliers';
import { random } from './random';

export type Sparsifier = (work: TensorWork, model: ModelTensor) => Promise<Sparsify>;

const keepAll: Sparsifier = async () => ({ kind: 'dense', factor: 1 });

export const sparsifiers: Record<string, Sparsifier> = {
  none: keepAll,
  magnitude,
  random,
  magnitude_outliers: magnitudeOutliers,
  della_magprune: dellaMagprune,
  dp,
  owl_layer: dp, // the same pruning; the statistics pass computes layer offsets only
};
