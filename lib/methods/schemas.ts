/**
 * The parameter schema of every merge method: names, scopes and defaults follow mergekit's
 * presets (generalized task arithmetic, linear, slerp, model_stock, pcb, passthrough) and
 * ../shared/docs/algorithms.md §1 and §5 for the generic sparsifier/combiner options and dppa.
 *
 * Conventions the config validator (lib/config) relies on:
 * - `minModels` / `maxModels` count the distinct input models *including* the base model
 *   (mergekit adds `base_model` to the inputs when it is not listed), so slerp is exactly 2
 *   and "a base plus at least one fine-tune" is `needsBase: true, minModels: 2`.
 * - A parameter with no `default` is either required (listed in `requiredParams`) or optional
 *   with a meaning of its own when absent (dppa's `density`, see algorithms.md §5).
 * - Every parameter of kind 'number' is checked to be finite; `min`/`max` are inclusive.
 */
import type { MethodSchema, ParamSpec } from './types';

export const SPARSIFIERS = ['magnitude', 'random', 'magnitude_outliers', 'della_magprune', 'dp', 'owl_layer', 'none'] as const;
export const THRESHOLD_SCOPES = ['tensor', 'row', 'model'] as const;
export const TIE_RULES = ['index', 'drop'] as const;
export const RESCALES = ['inverse', 'l1', 'none'] as const;
export const CONSENSUS = ['none', 'sum', 'count'] as const;

export type Sparsifier = (typeof SPARSIFIERS)[number];
export type ConsensusRule = (typeof CONSENSUS)[number];
export type RescaleRule = (typeof RESCALES)[number];

// --- Parameter builders: one place for each parameter's meaning, shared by the methods. ---

// Per model usually; a global `weight` is every model's weight, as mergekit reads it.
function weight(scope: ParamSpec['scope'] = 'both'): ParamSpec {
  return {
    name: 'weight', kind: 'number', scope, default: 1.0, perTensor: true,
    help: 'Scale of this model\'s contribution (task vector weight w_t); negative values subtract.',
  };
}

function density(defaultValue: number | undefined, scope: ParamSpec['scope'] = 'both'): ParamSpec {
  const spec: ParamSpec = {
    name: 'density', kind: 'number', scope, min: 0, max: 1, perTensor: true,
    help: 'Fraction of each task vector kept by the sparsifier (1 − pruning rate).',
  };
  if (defaultValue !== undefined) spec.default = defaultValue;
  return spec;
}

const gamma: ParamSpec = {
  name: 'gamma', kind: 'number', scope: 'both', default: 0.01, min: 0, max: 1, perTensor: true,
  help: 'magnitude_outliers (Breadcrumbs): fraction of largest-magnitude entries dropped as outliers.',
};

const epsilon: ParamSpec = {
  name: 'epsilon', kind: 'number', scope: 'both', default: 0.15, min: 0, max: 1, perTensor: true,
  help: 'della_magprune (DELLA): spread of keep probabilities around density (d − ε … d + ε).',
};

const lambda: ParamSpec = {
  name: 'lambda', kind: 'number', scope: 'global', default: 1.0, perTensor: true,
  help: 'Scale applied to the combined task vector before it is added to the base (mergekit\'s lambda).',
};

function normalize(defaultValue: boolean): ParamSpec {
  return {
    name: 'normalize', kind: 'boolean', scope: 'global', default: defaultValue,
    help: 'Divide the combined delta by the sum of the (consensus-masked) weights.',
  };
}

const int8Mask: ParamSpec = {
  name: 'int8_mask', kind: 'boolean', scope: 'global', default: false,
  help: 'Accepted for mergekit compatibility (a memory optimisation there); ignored.',
};

function sparsify(defaultValue: Sparsifier): ParamSpec {
  return {
    name: 'sparsify', kind: 'string', scope: 'global', default: defaultValue, choices: [...SPARSIFIERS],
    help: 'How each task vector is pruned before combining (algorithms.md §1–2).',
  };
}

function thresholdScope(defaultValue: (typeof THRESHOLD_SCOPES)[number]): ParamSpec {
  return {
    name: 'scope', kind: 'string', scope: 'global', default: defaultValue, choices: [...THRESHOLD_SCOPES],
    help: 'Over what a magnitude threshold is taken: each tensor, each output row, or the whole model.',
  };
}

const tieRule: ParamSpec = {
  name: 'ties', kind: 'string', scope: 'global', default: 'index', choices: [...TIE_RULES],
  help: 'Ties at the magnitude threshold: keep exactly k by lower index (index), or drop every |δ| ≤ τ (drop, as the DPPA code).',
};

function rescale(defaultValue: RescaleRule): ParamSpec {
  return {
    name: 'rescale', kind: 'string', scope: 'global', default: defaultValue, choices: [...RESCALES],
    help: 'Rescale kept entries after random dropping: inverse (1/d), l1 (restore the L1 norm) or none. mergekit\'s true/false read as inverse/none.',
  };
}

function consensus(defaultValue: ConsensusRule): ParamSpec {
  return {
    name: 'consensus', kind: 'string', scope: 'global', default: defaultValue, choices: [...CONSENSUS],
    help: 'Sign election before combining: none, sum (TIES) or count.',
  };
}

const seed: ParamSpec = {
  name: 'seed', kind: 'number', scope: 'global', default: 0, min: 0,
  help: 'Seed of the counter-based random generator (random and della_magprune sparsifiers).',
};

const dpLambda: ParamSpec = {
  name: 'dp_lambda', kind: 'number', scope: 'global', default: 0.08, min: 0,
  help: 'DP: λ, the largest density offset a layer or module gets from its outlier statistics.',
};

const dpModuleOutlier: ParamSpec = {
  name: 'dp_module_outlier', kind: 'number', scope: 'global', default: 5, min: 0,
  help: 'DP: M, an entry is a module outlier when |δ| > M · mean(|δ|) of its tensor.',
};

const dpLayerOutlier: ParamSpec = {
  name: 'dp_layer_outlier', kind: 'number', scope: 'global', default: 3, min: 0,
  help: 'DP: L₀, an entry is a layer outlier when |δ| > L₀ · mean(|δ|) of its layer.',
};

const pruneDense: ParamSpec = {
  name: 'prune_dense', kind: 'boolean', scope: 'global', default: false,
  help: 'DP: also prune embeddings, norms and biases, at the uniform rate, instead of keeping them dense.',
};

const partitions: ParamSpec = {
  name: 'partitions', kind: 'numberList', scope: 'both', default: [0.1, 0.2], min: 0, max: 1,
  help: 'DPA: densities (1 − s_k) of the nested masks, tight → loose, strictly increasing in (0, 1].',
};

const amplify: ParamSpec = {
  name: 'amplify', kind: 'numberList', scope: 'both', default: [1.8, 1.0], min: 0,
  help: 'DPA: amplification factor α_k per partition (same length as partitions; 0 disables a band).',
};

const amplifyDense: ParamSpec = {
  name: 'amplify_dense', kind: 'boolean', scope: 'global', default: true,
  help: 'DPA: multiply never-pruned tensors by max(α), as the authors\' code; false leaves them at 1.',
};

/** A preset of mergekit's generalized task arithmetic (plus this project's generic options). */
interface TaskVectorPreset {
  sparsify: Sparsifier;
  consensus: ConsensusRule;
  normalize: boolean;
  rescale: RescaleRule;
  scope?: (typeof THRESHOLD_SCOPES)[number];
}

/**
 * Every task-vector method accepts every generic sparsifier/combiner option, because
 * `sparsify:` can switch any of them to any sparsifier; options that the chosen sparsifier
 * ignores (gamma without magnitude_outliers, …) draw a warning from the validator.
 */
function taskVectorParams(preset: TaskVectorPreset): ParamSpec[] {
  return [
    weight(),
    density(1.0),
    gamma,
    epsilon,
    lambda,
    normalize(preset.normalize),
    int8Mask,
    sparsify(preset.sparsify),
    thresholdScope(preset.scope ?? 'tensor'),
    tieRule,
    rescale(preset.rescale),
    consensus(preset.consensus),
    seed,
    dpLambda,
    dpModuleOutlier,
    dpLayerOutlier,
    pruneDense,
  ];
}

function taskVectorMethod(name: string, summary: string, preset: TaskVectorPreset): MethodSchema {
  return { name, summary, needsBase: true, minModels: 2, params: taskVectorParams(preset) };
}

export const methodSchemas: Record<string, MethodSchema> = {
  task_arithmetic: taskVectorMethod('task_arithmetic',
    'Task arithmetic: base + λ · Σ w_t δ_t.',
    { sparsify: 'none', consensus: 'none', normalize: false, rescale: 'none' }),
  ties: taskVectorMethod('ties',
    'TIES: magnitude pruning, sign election by sum, disjoint mean.',
    { sparsify: 'magnitude', consensus: 'sum', normalize: true, rescale: 'none' }),
  dare_linear: taskVectorMethod('dare_linear',
    'DARE: random dropping with rescale, then task arithmetic.',
    { sparsify: 'random', consensus: 'none', normalize: false, rescale: 'inverse' }),
  dare_ties: taskVectorMethod('dare_ties',
    'DARE with TIES sign election.',
    { sparsify: 'random', consensus: 'sum', normalize: false, rescale: 'inverse' }),
  breadcrumbs: taskVectorMethod('breadcrumbs',
    'Model Breadcrumbs: drop the smallest and the largest (outlier) entries, then task arithmetic.',
    { sparsify: 'magnitude_outliers', consensus: 'none', normalize: false, rescale: 'none' }),
  breadcrumbs_ties: taskVectorMethod('breadcrumbs_ties',
    'Model Breadcrumbs with TIES sign election.',
    { sparsify: 'magnitude_outliers', consensus: 'sum', normalize: false, rescale: 'none' }),
  della: taskVectorMethod('della',
    'DELLA: magnitude-ranked stochastic dropping (row-wise), TIES sign election.',
    { sparsify: 'della_magprune', consensus: 'sum', normalize: true, rescale: 'inverse', scope: 'row' }),
  della_linear: taskVectorMethod('della_linear',
    'DELLA without sign election.',
    { sparsify: 'della_magprune', consensus: 'none', normalize: false, rescale: 'inverse', scope: 'row' }),
  dppa: {
    name: 'dppa',
    summary: 'DPPA: dynamic pruning (DP) and partition amplification (DPA) of each task vector, then task arithmetic.',
    needsBase: true,
    minModels: 2,
    params: [
      weight(),
      // No default: absent means "use partitions"; `density: d` alone means partitions [d].
      density(undefined),
      partitions,
      amplify,
      amplifyDense,
      dpLambda,
      dpModuleOutlier,
      dpLayerOutlier,
      pruneDense,
      lambda,
      normalize(false),
      int8Mask,
      sparsify('dp'),
      thresholdScope('tensor'),
      tieRule,
      rescale('none'),
      consensus('none'),
      seed,
      gamma,
      epsilon,
    ],
  },
  linear: {
    name: 'linear',
    summary: 'Weighted average of the models: Σ w_t θ_t / Σ w_t.',
    needsBase: false,
    minModels: 1,
    params: [
      weight(),
      normalize(true),
      int8Mask,
    ],
  },
  slerp: {
    name: 'slerp',
    summary: 'Spherical interpolation between the base and one other model, by t.',
    needsBase: true,
    minModels: 2,
    maxModels: 2,
    params: [
      {
        name: 't', kind: 'number', scope: 'global', min: 0, max: 1, perTensor: true,
        help: 'Interpolation factor: 0 gives the base model, 1 the other model.',
      },
    ],
  },
  model_stock: {
    name: 'model_stock',
    summary: 'Model Stock: average of the fine-tunes, pulled toward the base by their angle.',
    needsBase: true,
    minModels: 3,
    params: [
      {
        name: 'filter_wise', kind: 'boolean', scope: 'global', default: false,
        help: 'Compute the interpolation ratio per row instead of per tensor.',
      },
    ],
  },
  pcb: {
    name: 'pcb',
    summary: 'PCB merging: clip, balance each task vector within itself and against the others, keep the top scores as weights.',
    needsBase: true,
    minModels: 2,
    params: [
      {
        name: 'pcb_ratio', kind: 'number', scope: 'global', default: 0.1, min: 0, max: 1,
        help: 'PCB: the fraction of each task vector kept, by its balanced score.',
      },
      {
        name: 'scope', kind: 'string', scope: 'global', default: 'model', choices: ['model', 'tensor'],
        help: 'PCB: statistics (quantiles, min/max, top scores) over the whole model (the paper) or per tensor.',
      },
      lambda,
    ],
  },
  passthrough: {
    name: 'passthrough',
    summary: 'Copy tensors through unchanged (with slices: stack layer ranges of models).',
    needsBase: false,
    minModels: 1,
    params: [
      {
        name: 'scale', kind: 'number', scope: 'model', default: 1.0, perTensor: true,
        help: 'Multiply the copied tensor by this factor.',
      },
    ],
  },
};

/** Parameters that have no default and must be given (per model or globally). */
export const requiredParams: Record<string, string[]> = {
  slerp: ['t'],
};

export const methodNames: string[] = Object.keys(methodSchemas);

export function findParamSpec(method: string, name: string): ParamSpec | undefined {
  return methodSchemas[method]?.params.find((spec) => spec.name === name);
}
