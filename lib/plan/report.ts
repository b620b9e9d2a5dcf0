/**
 * `dppa plan` and `dppa inspect`: what a merge will do, and what a model holds, as plain
 * JSON-able objects (the CLI prints them; the API returns them).
 */
import type { NativeBinding } from '../binding';
import { isFloatDType } from '../io/dtypes';
import { ModelSource } from '../io/model';
import { dpDensity } from '../methods/dp-densities';
import { partitionsOf } from '../methods/dppa';
import { defaultMemoryBudget, methodWork } from '../run/memory';
import { ProgressListener, ProgressReporter } from '../run/progress';
import { gatherDpOffsets } from '../run/statistics';
import { countLayers, tensorRole } from './layers';
import { planMerge } from './plan';

export interface PlanReport {
  method: string;
  summary: string;
  base: string;
  models: string[];
  tensors: number;
  layers: number;
  bytesToRead: number;
  bytesToWrite: number;
  /** Peak bytes of tensor buffers the merge holds at once, and of the method's work buffers (PCB's). */
  memoryEstimate: number;
  /** Per model: the statistics pass it needs ('dp', 'owl' or null). */
  statistics: Record<string, string | null>;
  /** Per model, per prunable tensor: the density of each partition after DP's offsets. */
  densities?: Record<string, Record<string, number[]>>;
  warnings: string[];
}

export async function planReport(
  config: string | object,
  options: { native: NativeBinding; seed?: number; statistics?: boolean; onProgress?: ProgressListener; signal?: AbortSignal; baseDir?: string },
): Promise<PlanReport> {
  const plan = await planMerge(config, options);
  try {
    const report: PlanReport = {
      method: plan.config.mergeMethod,
      summary: plan.method.schema.summary,
      base: plan.config.baseModelName ?? plan.base.path,
      models: plan.models.map((m) => m.name),
      tensors: plan.tensors.length,
      layers: plan.numLayers,
      bytesToRead: plan.bytesToRead,
      bytesToWrite: plan.bytesToWrite,
      memoryEstimate: plan.memoryEstimate + methodWork(plan).bytes,
      statistics: Object.fromEntries(plan.models.map((m) => [m.name, m.statistics])),
      warnings: plan.warnings,
    };
    if (options.statistics !== false && plan.models.some((m) => m.statistics !== null)) {
      const offsets = await gatherDpOffsets(plan, {
        progress: new ProgressReporter(options.onProgress),
        signal: options.signal,
        allowNonfinite: true,
        budget: defaultMemoryBudget(),
      });
      report.densities = {};
      plan.models.forEach((model, m) => {
        const perTensor: Record<string, number[]> = {};
        for (const t of plan.tensors) {
          const offset = offsets[m]?.offsetOf.get(t.name);
          if (offset === undefined) continue;
          const params = plan.params(m, t);
          const densities = plan.config.mergeMethod === 'dppa' ? partitionsOf(params, model.name).densities : [params.number('density')];
          perTensor[t.name] = densities.map((d) => dpDensity(d, offset));
        }
        report.densities![model.name] = perTensor;
      });
    }
    return report;
  } finally {
    await plan.close();
  }
}

export interface InspectReport {
  path: string;
  layout: string;
  files: string[];
  parameters: number;
  bytes: number;
  dtypes: Record<string, number>;
  layers: number;
  /** 2-D linear weights inside layers: what DP prunes. */
  prunableTensors: number;
  tensors: { name: string; dtype: string; shape: number[]; layer: number | null; prunable: boolean }[];
  config?: Record<string, unknown>;
}

export async function inspectModel(modelPath: string): Promise<InspectReport> {
  const source = await ModelSource.open(modelPath);
  try {
    const tensors = [...source.tensors.values()].map((t) => {
      const role = tensorRole(t.name, t.shape);
      return { name: t.name, dtype: t.dtype, shape: t.shape, layer: role.layer, prunable: role.prunable && isFloatDType(t.dtype) };
    });
    const dtypes: Record<string, number> = {};
    for (const t of source.tensors.values()) dtypes[t.dtype] = (dtypes[t.dtype] ?? 0) + t.numel;
    return {
      path: modelPath,
      layout: source.layout,
      files: source.files.map((f) => f.path),
      parameters: [...source.tensors.values()].reduce((s, t) => s + t.numel, 0),
      bytes: [...source.tensors.values()].reduce((s, t) => s + t.byteLength, 0),
      dtypes,
      layers: countLayers(source.tensors.keys()),
      prunableTensors: tensors.filter((t) => t.prunable).length,
      tensors,
      config: source.config,
    };
  } finally {
    await source.close();
  }
}
