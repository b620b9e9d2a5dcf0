/** Helpers the sparsifiers share. */
import type { BandRules, DeltaInput, SelectOptions, SelectRequest, TensorInput } from '../../binding';
import type { ModelTensor, TensorWork } from '../recipe';

export function deltaOf(work: TensorWork, model: ModelTensor): DeltaInput {
  return { base: work.base, ft: model.input };
}

/** `scope: row` selects per output row (DELLA's way); otherwise over the whole tensor. */
export function selectionOptions(work: TensorWork, model: ModelTensor): { rows: number; rowLength: number } {
  const { shape, numel } = work.tensor;
  if (model.params.string('scope') === 'row' && shape.length >= 2 && numel > 0) {
    return { rows: shape[0], rowLength: numel / shape[0] };
  }
  return { rows: 0, rowLength: numel };
}

export type TieRule = 'index' | 'drop';

export function tieRule(model: ModelTensor): TieRule {
  return model.params.string('ties') === 'drop' ? 'drop' : 'index';
}

/**
 * How many elements the selection must rank for density d over n elements.
 * - index: exactly floor(d·n) survive (as mergekit: int(density·numel)).
 * - drop (the DPPA code): τ = sorted(|δ|)[floor(n·s)] with s = 1 − d, and every |δ| <= τ is
 *   dropped; τ is the (n − floor(n·s))-th largest value, so that is the k to select.
 */
export function keepCount(density: number, n: number, rule: TieRule): number {
  return rule === 'drop' ? n - Math.floor(n * (1 - density)) : Math.floor(density * n);
}

/**
 * Exact magnitude thresholds of a model's δ for this tensor. Thresholds do not depend on
 * amplification factors, weights or λ, so a run that merges many candidates (the DPA factor
 * search) passes a cache and selects each tensor once. Whole-tensor selections that the
 * models of one tensor ask for in the same turn (combine.ts runs the sparsifiers together)
 * go to the native core as one call, which reads the base once and every fine-tune in the
 * same pass.
 */
export async function selectThresholds(work: TensorWork, model: ModelTensor, ks: Float64Array, options: SelectOptions): Promise<BandRules> {
  const key = `${model.name}\u0000${work.tensor.name}\u0000${ks.join(',')}\u0000${options.rule ?? 'index'}\u0000${options.rows ?? 0}`;
  const cached = work.selectionCache?.get(key);
  if (cached) return cached;
  const rules = options.rows
    ? await work.native.selectThresholds(deltaOf(work, model), ks, options)
    : await sharedSelection(work).request(model.input, { ks, rule: options.rule });
  work.selectionCache?.set(key, rules);
  return rules;
}

/** Whole-tensor selection requests of one tensor's models, sent together at the end of the turn. */
class SharedSelection {
  private pending: { ft: TensorInput; request: SelectRequest; resolve: (rules: BandRules) => void; reject: (e: unknown) => void }[] = [];

  constructor(private readonly work: TensorWork) {}

  request(ft: TensorInput, request: SelectRequest): Promise<BandRules> {
    return new Promise((resolve, reject) => {
      if (this.pending.length === 0) queueMicrotask(() => this.flush());
      this.pending.push({ ft, request, resolve, reject });
    });
  }

  private flush(): void {
    const batch = this.pending;
    this.pending = [];
    this.work.native
      .selectThresholdsShared({ base: this.work.base, fts: batch.map((p) => p.ft) }, batch.map((p) => p.request))
      .then(
        (results) => batch.forEach((p, i) => p.resolve(results[i])),
        (error: unknown) => batch.forEach((p) => p.reject(error)),
      );
  }
}

const sharedSelections = new WeakMap<TensorWork, SharedSelection>();

function sharedSelection(work: TensorWork): SharedSelection {
  let selection = sharedSelections.get(work);
  if (!selection) sharedSelections.set(work, (selection = new SharedSelection(work)));
  return selection;
}
