/**
 * The one place the benchmark calls the merge library: builds mergekit-style configs for
 * every pruning and merging method compared, runs `merge` into a scratch folder and
 * reads the result back.
 */
import * as fs from 'fs';
import { merge } from '../../lib/index';
import { loadModelDir } from './checkpoint';
import { Weights } from './model';
import { dpaPartitions } from './settings';

export const PRUNE_METHODS = ['magnitude', 'dare', 'owl_layer', 'dp', 'dppa'] as const;
export type PruneMethod = (typeof PRUNE_METHODS)[number];

export const MERGE_METHODS = ['task_arithmetic', 'ties', 'dare_ties', 'dppa', 'dppa_sum'] as const;
export type MergeMethod = (typeof MERGE_METHODS)[number];

const DTYPES = { dtype: 'float32', out_dtype: 'float32' };

/** Pruning one fine-tune = a one-model merge at λ = 1 (base + sparsified δ). */
export function pruneConfig(method: PruneMethod, density: number, base: string, ft: string, amplify: number[], seed: number): object {
  const models = [{ model: ft, parameters: { weight: 1.0 } }];
  const common = { base_model: base, models, ...DTYPES };
  switch (method) {
    case 'magnitude':
      return { ...common, merge_method: 'task_arithmetic', parameters: { sparsify: 'magnitude', density } };
    case 'dare':
      return { ...common, merge_method: 'dare_linear', parameters: { density, rescale: 'inverse', seed } };
    case 'owl_layer':
      return { ...common, merge_method: 'task_arithmetic', parameters: { sparsify: 'owl_layer', density } };
    case 'dp':
      // One partition at d with α = 1: DP's dynamic densities, no amplification.
      return { ...common, merge_method: 'dppa', parameters: { density } };
    case 'dppa':
      return { ...common, merge_method: 'dppa', parameters: { partitions: dpaPartitions(density), amplify } };
  }
}

export function mergeConfig(
  method: MergeMethod,
  base: string,
  fts: string[],
  opts: { density: number; lambda: number; amplify: number[]; seed: number },
): object {
  const models = fts.map((model) => ({ model, parameters: { weight: 1.0 } }));
  const common = { base_model: base, models, ...DTYPES };
  const { density, lambda, amplify, seed } = opts;
  switch (method) {
    case 'task_arithmetic':
      return { ...common, merge_method: 'task_arithmetic', parameters: { lambda } };
    case 'ties':
      return { ...common, merge_method: 'ties', parameters: { density, lambda } };
    case 'dare_ties':
      return { ...common, merge_method: 'dare_ties', parameters: { density, lambda, seed } };
    case 'dppa':
      return { ...common, merge_method: 'dppa', parameters: { partitions: dpaPartitions(density), amplify, lambda } };
    case 'dppa_sum':
      return {
        ...common,
        merge_method: 'dppa',
        parameters: { partitions: dpaPartitions(density), amplify, lambda, consensus: 'sum' },
      };
  }
}

/** Runs a merge into `outDir` (replaced), returns the merged backbone and removes the folder. */
export async function runMerge(config: object, outDir: string): Promise<Weights> {
  // One compute thread: the model is tiny and the machine's cores are shared.
  await merge(config, outDir, { threads: 1, overwrite: true });
  try {
    return loadModelDir(outDir);
  } finally {
    fs.rmSync(outDir, { recursive: true, force: true });
  }
}
