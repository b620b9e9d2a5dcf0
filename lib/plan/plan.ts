/**
 * Plan a merge before any tensor byte is read: validate the config, open every model,
 * read every header, check names, shapes and dtypes across models, group tensors into
 * layers and modules, and report every problem at once.
 */
import * as fs from 'fs';
import * as path from 'path';
import type { NativeBinding } from '../binding';
import { parseConfig, parseConfigObject } from '../config';
import type { MergeConfig, ParseResult } from '../config/types';
import { DppaError, ErrorCode } from '../errors';
import { ModelSource } from '../io/model';
import { methods } from '../methods';
import type { MethodDefinition, ParamSource, StatisticsNeed } from '../methods/recipe';
import { paramSource } from './params';
import { planMergedTensors, PlannedTensor, TensorPlanContext } from './tensors';

export type { PlannedTensor };

export interface PlannedModel {
  /** As written in the config. */
  name: string;
  /** Index into config.models. */
  configIndex: number;
  source: ModelSource;
  statistics: StatisticsNeed;
}

export interface StatisticsSpec {
  lambda: number;
  moduleOutlier: number;
  layerOutlier: number;
}

export interface MergePlan {
  config: MergeConfig;
  method: MethodDefinition;
  native: NativeBinding;
  base: ModelSource;
  models: PlannedModel[];
  tensors: PlannedTensor[];
  numLayers: number;
  /** num_hidden_layers of the output when it differs from the base's (passthrough slices). */
  outputLayers?: number;
  seed: number;
  warnings: string[];
  /** Bytes the merge pass reads (the statistics pass reads the prunable part once more). */
  bytesToRead: number;
  bytesToWrite: number;
  /** Peak bytes of tensor buffers held at once: inputs of two tensors (prefetch) + two outputs. */
  memoryEstimate: number;
  params(modelIndex: number | null, tensor: PlannedTensor | null): ParamSource;
  statisticsSpec(modelIndex: number): StatisticsSpec;
  close(): Promise<void>;
}

export interface PlanOptions {
  seed?: number;
  /** Folder relative model paths of an object config are resolved against (default: cwd). */
  baseDir?: string;
  native: NativeBinding;
}

function errorCodeOf(e: unknown): ErrorCode {
  return e instanceof DppaError ? e.code : 'E_IO';
}

/** Parse a config file or object, collecting problems instead of throwing. */
function readConfig(input: string | object, baseDir?: string): ParseResult {
  if (typeof input !== 'string') return parseConfigObject(input, { baseDir: path.resolve(baseDir ?? process.cwd()) });
  let text: string;
  try {
    text = fs.readFileSync(input, 'utf8');
  } catch (e) {
    return { problems: [`cannot read the merge config ${input}: ${(e as Error).message}`], warnings: [] };
  }
  return parseConfig(text, { file: input, baseDir: path.resolve(path.dirname(input)) });
}

export async function planMerge(input: string | object, options: PlanOptions): Promise<MergePlan> {
  const { config, problems: configProblems } = readConfig(input, options.baseDir);
  const problems: { code: ErrorCode; text: string }[] = configProblems.map((text) => ({ code: 'E_CONFIG', text }));
  const opened: ModelSource[] = [];
  const fail = async (): Promise<never> => {
    await Promise.all(opened.map((m) => m.close()));
    const code = problems[0].code;
    const list = problems.map((p) => `  - ${p.text}`).join('\n');
    throw new DppaError(code, `the merge cannot start; ${problems.length} problem(s):\n${list}`, problems.map((p) => p.text));
  };
  if (!config) return fail();

  const method = methods[config.mergeMethod];
  const open = async (modelPath: string, label: string): Promise<ModelSource | undefined> => {
    try {
      const source = await ModelSource.open(modelPath);
      opened.push(source);
      return source;
    } catch (e) {
      problems.push({ code: errorCodeOf(e), text: `${label}: ${(e as Error).message}` });
      return undefined;
    }
  };

  const modelEntries = config.models
    .map((m, configIndex) => ({ entry: m, configIndex }))
    .filter((m) => !m.entry.isBase || method?.includesBaseEntry);
  // linear and friends may go without a base: the first model then serves as the reference.
  const basePath = config.baseModel ?? modelEntries[0]?.entry.model;
  const base = basePath ? await open(basePath, `base_model ${config.baseModelName ?? basePath}`) : undefined;
  const sources: (ModelSource | undefined)[] = [];
  for (const { entry } of modelEntries) sources.push(await open(entry.model, `model ${entry.name}`));
  if (!base || sources.some((s) => !s) || !method) {
    if (!method) problems.push({ code: 'E_CONFIG', text: `merge_method ${config.mergeMethod} is not implemented yet` });
    return fail();
  }

  const warnings = [...config.warnings];
  const context: TensorPlanContext = {
    config,
    base,
    models: modelEntries.map(({ entry }, m) => ({ name: entry.name, source: sources[m]! })),
    problem: (code, text) => problems.push({ code, text }),
    warn: (text) => warnings.push(text),
  };
  const { tensors, numLayers, outputLayers } = (method.planTensors ?? planMergedTensors)(context);
  if (problems.length > 0) return fail();

  const contextOf = (t: PlannedTensor | null) =>
    t === null
      ? { tensorName: '', layerIndex: null, numLayers, position: 'before' as const }
      : { tensorName: t.name, layerIndex: t.role.layer, numLayers };
  const params = (modelIndex: number | null, tensor: PlannedTensor | null) =>
    paramSource(config, modelIndex === null ? null : modelEntries[modelIndex].configIndex, contextOf(tensor));

  const models: PlannedModel[] = modelEntries.map(({ entry, configIndex }, m) => ({
    name: entry.name,
    configIndex,
    source: sources[m]!,
    statistics: method.statisticsNeeded(params(m, null)),
  }));
  const largestInput = Math.max(0, ...tensors.map((t) => t.inputBytes));
  const largestOutput = Math.max(0, ...tensors.map((t) => t.outputBytes));
  const seed = options.seed ?? config.seed ?? 0;

  return {
    config,
    method,
    native: options.native,
    base,
    models,
    tensors,
    numLayers,
    outputLayers,
    seed,
    warnings,
    bytesToRead: tensors.reduce((s, t) => s + t.inputBytes, 0),
    bytesToWrite: tensors.reduce((s, t) => s + t.outputBytes, 0),
    memoryEstimate: 2 * largestInput + 2 * largestOutput,
    params,
    statisticsSpec: (m) => {
      const p = params(m, null);
      return { lambda: p.number('dp_lambda'), moduleOutlier: p.number('dp_module_outlier'), layerOutlier: p.number('dp_layer_outlier') };
    },
    close: async () => {
      await Promise.all(opened.map((s) => s.close()));
    },
  };
}

/** The folder whose tokenizer is copied: the base, or `tokenizer_source: <model>`. */
export function tokenizerFolder(plan: MergePlan): string {
  const source = plan.config.tokenizerSource;
  if (!source || source === 'base') return plan.base.dir;
  const model = plan.models.find((m) => m.name === source);
  if (model) return model.source.dir;
  return plan.base.dir;
}
