/**
 * `model_stock` (Jang et al. 2024): average the fine-tunes, then pull the average toward
 * the base by how much the task vectors agree: with cos θ̄ the mean pairwise cosine of the
 * task vectors, t = N·cos θ̄ / (1 + (N − 1)·cos θ̄), out = t·mean(θ_t) + (1 − t)·θ₀.
 */
import { DppaError } from '../errors';
import type { MethodDefinition } from './recipe';
import { methodSchemas } from './schemas';

/** Mean pairwise cosine of the task vectors, from their Gram matrix (N × N). */
export function meanPairwiseCosine(gram: Float64Array, n: number): number {
  let sum = 0;
  let pairs = 0;
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      const norms = Math.sqrt(gram[i * n + i] * gram[j * n + j]);
      sum += norms > 1e-12 ? gram[i * n + j] / norms : 0;
      pairs++;
    }
  }
  return pairs === 0 ? 0 : sum / pairs;
}

export function modelStockRatio(cos: number, n: number): number {
  const denominator = 1 + (n - 1) * cos;
  return Math.abs(denominator) < 1e-12 ? 0 : (n * cos) / denominator;
}

export const model_stock: MethodDefinition = {
  schema: methodSchemas.model_stock,
  statisticsNeeded: () => null,
  mergeTensor: async (work) => {
    if (work.params.boolean('filter_wise')) {
      throw new DppaError('E_CONFIG', 'model_stock: filter_wise: true is not supported yet; remove it to use one ratio per tensor');
    }
    const n = work.models.length;
    const gram = await work.native.gram(work.models.map((m) => ({ base: work.base, ft: m.input })));
    const t = modelStockRatio(meanPairwiseCosine(gram, n), n);
    const coeffs = Float64Array.from([...work.models.map(() => t / n), 1 - t]);
    return work.native.linearCombine([...work.models.map((m) => m.input), work.base], coeffs, work.out, work.outDtype);
  },
};
