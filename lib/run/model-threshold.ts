/**
 * `scope: model` for magnitude pruning: one exact threshold over every merged tensor of a
 * model, as the original TIES and FusionBench prune (algorithms.md §1).
 *
 * The k-th largest |δ| of the whole model comes from radix selection across tensors:
 *   pass 1  a histogram of the high 16 abs bits of every tensor's δ, summed → the bin of τ
 *   pass 2  a histogram of the low 16 bits inside that bin, summed          → τ exactly
 *   pass 3  per tensor, the count above τ and equal to τ
 * Ties at τ are kept lower flat index first in the model's tensor order, so each tensor
 * learns how many of its elements survive: its count above τ plus its share of the ties.
 * The merge pass then selects exactly that many per tensor — the same elements.
 */
import type { DeltaInput } from '../binding';
import { DppaError } from '../errors';
import { DTYPE_SIZE } from '../io/dtypes';
import { keepCount } from '../methods/sparsify/common';
import type { MergePlan, PlannedTensor } from '../plan/plan';
import { checkAborted, ProgressReporter } from './progress';

/** Per tensor: how many elements survive ('index' rule) or the threshold bits ('drop'). */
export type ModelScopeRule = { keep: number } | { bits: number };

const HIGH_BINS = 65536;

function mergedElements(t: PlannedTensor): number {
  return t.shape.length > 0 && t.shape[0] > 0 ? (t.numel / t.shape[0]) * t.mergedRows : t.numel;
}

/** The k-th largest (1-based) over a histogram: its bin, and how many lie in higher bins. */
function binOfKth(histogram: Float64Array, k: number): { bin: number; above: number } {
  let above = 0;
  for (let bin = histogram.length - 1; bin >= 0; bin--) {
    if (above + histogram[bin] >= k) return { bin, above };
    above += histogram[bin];
  }
  return { bin: 0, above };
}

function previousFloat(bits: number): number {
  const view = new DataView(new ArrayBuffer(4));
  view.setUint32(0, bits === 0 ? 0 : bits - 1);
  return bits === 0 ? -1 : view.getFloat32(0);
}

function floatOfBits(bits: number): number {
  const view = new DataView(new ArrayBuffer(4));
  view.setUint32(0, bits);
  return view.getFloat32(0);
}

export async function gatherModelThresholds(
  plan: MergePlan,
  options: { signal?: AbortSignal; progress: ProgressReporter },
): Promise<(Map<string, ModelScopeRule> | undefined)[]> {
  const result: (Map<string, ModelScopeRule> | undefined)[] = plan.models.map(() => undefined);
  const tensors = plan.tensors.filter((t) => t.action === 'merge');
  const wanted = plan.models.map((m, i) => (m.statistics === 'model-threshold' ? i : -1)).filter((i) => i >= 0);
  if (wanted.length === 0) return result;
  options.progress.start('statistics', tensors.length * 3 * wanted.length);

  for (const m of wanted) {
    const model = plan.models[m];
    const params = plan.params(m, null);
    if (params.given('density') && plan.tensors.some((t) => plan.params(m, t).number('density') !== params.number('density'))) {
      throw new DppaError('E_CONFIG', `model ${model.name}: scope: model needs one density for the whole model, not a gradient or filters`);
    }
    const density = params.number('density');
    const rule = params.string('ties') === 'drop' ? 'drop' : 'index';
    const deltaOf = async (t: PlannedTensor): Promise<DeltaInput> => {
      const n = mergedElements(t);
      const slice = (bytes: Uint8Array, dtype: keyof typeof DTYPE_SIZE) => bytes.subarray(0, n * DTYPE_SIZE[dtype]);
      const [base, ft] = await Promise.all([plan.base.read(t.name), model.source.read(t.name)]);
      return {
        base: { data: slice(base, t.inputDtypes.base), dtype: t.inputDtypes.base },
        ft: { data: slice(ft, t.inputDtypes.models[m]), dtype: t.inputDtypes.models[m] },
      };
    };
    const total = tensors.reduce((s, t) => s + mergedElements(t), 0);
    const k = keepCount(density, total, rule);
    const rules = new Map<string, ModelScopeRule>();
    if (k === 0) {
      for (const t of tensors) rules.set(t.name, rule === 'drop' ? { bits: 0xffffffff } : { keep: 0 });
      result[m] = rules;
      continue;
    }

    const high = new Float64Array(HIGH_BINS);
    for (const t of tensors) {
      checkAborted(options.signal);
      const h = await plan.native.absHistogram(await deltaOf(t), 16, HIGH_BINS, 0, 0);
      for (let b = 0; b < HIGH_BINS; b++) high[b] += h[b];
      options.progress.step(t.name, mergedElements(t));
    }
    const first = binOfKth(high, k);
    const low = new Float64Array(HIGH_BINS);
    for (const t of tensors) {
      checkAborted(options.signal);
      const h = await plan.native.absHistogram(await deltaOf(t), 0, HIGH_BINS, 0xffff0000, first.bin * HIGH_BINS);
      for (let b = 0; b < HIGH_BINS; b++) low[b] += h[b];
      options.progress.step(t.name, mergedElements(t));
    }
    const second = binOfKth(low, k - first.above);
    const tauBits = (first.bin * HIGH_BINS + second.bin) >>> 0;
    if (rule === 'drop') {
      for (const t of tensors) rules.set(t.name, { bits: tauBits });
      result[m] = rules;
      continue;
    }
    // Ties at τ: the first `tiesKept` of them, in model order, survive.
    let tiesKept = k - first.above - second.above;
    const tau = floatOfBits(tauBits);
    for (const t of tensors) {
      checkAborted(options.signal);
      const counts = await plan.native.absStats(await deltaOf(t), Float64Array.of(tau, previousFloat(tauBits)));
      const above = counts.countsAbove[0];
      const equal = counts.countsAbove[1] - above;
      const ties = Math.min(equal, tiesKept);
      tiesKept -= ties;
      rules.set(t.name, { keep: above + ties });
      options.progress.step(t.name, mergedElements(t));
    }
    result[m] = rules;
  }
  return result;
}
