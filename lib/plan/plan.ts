/**
 * Plan a merge before any tensor byte is read: validate the config, open every model,
 * read every header, check names, shapes and dtypes across models, group tensors into
 * layers and modules, and report every problem at once.
 */
import * as fs from 'fs';
import * as path from 'path';
import type { InputDType, NativeBinding, OutputDType } from '../binding';
import { parseConfig, parseConfigObject } from '../config';
import type { MergeConfig, ParseResult } from '../config/types';
import { DppaError, ErrorCode } from '../errors';
import { isFloatDType, SafetensorsDType } from '../io/dtypes';
import { ModelSource } from '../io/model';
import { methods } from '../methods';
import type { MethodDefinition, ParamSource, StatisticsNeed } from '../methods/recipe';
import { countLayers, orderTensorNames, tensorRole, TensorRole } from './layers';
import { paramSource } from './params';

export interface PlannedTensor {
  name: string;
  shape: number[];
  numel: number;
  role: TensorRole;
  /** 'merge' through the method, or 'copy' the base's tensor (non-float tensors). */
  action: 'merge' | 'copy';
  inputDtypes: { base: InputDType; models: InputDType[] };
  outDtype: OutputDType;
  /** Bytes read for it from all inputs. */
  inputBytes: number;
  outputBytes: number;
}

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
  native: NativeBinding;
}

const OUTPUT_DTYPES: Record<string, OutputDType> = { float32: 'F32', float16: 'F16', bfloat16: 'BF16' };

function outputDtypeFor(config: MergeConfig, baseDtype: SafetensorsDType): OutputDType {
  if (config.outDtype) return OUTPUT_DTYPES[config.outDtype];
  if (baseDtype === 'F32' || baseDtype === 'F16' || baseDtype === 'BF16') return baseDtype;
  return 'F32';
}

const DTYPE_BYTES: Record<string, number> = { F64: 8, F32: 4, F16: 2, BF16: 2, F8_E4M3: 1, F8_E5M2: 1 };

function errorCodeOf(e: unknown): ErrorCode {
  return e instanceof DppaError ? e.code : 'E_IO';
}

/** Parse a config file or object, collecting problems instead of throwing. */
function readConfig(input: string | object): ParseResult {
  if (typeof input !== 'string') return parseConfigObject(input, { baseDir: process.cwd() });
  let text: string;
  try {
    text = fs.readFileSync(input, 'utf8');
  } catch (e) {
    return { problems: [`cannot read the merge config ${input}: ${(e as Error).message}`], warnings: [] };
  }
  return parseConfig(text, { file: input, baseDir: path.resolve(path.dirname(input)) });
}

export async function planMerge(input: string | object, options: PlanOptions): Promise<MergePlan> {
  const { config, problems: configProblems } = readConfig(input);
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

  // Tensors: the base's, checked against every model.
  const warnings = [...config.warnings];
  const names = orderTensorNames([...base.tensors.keys()]);
  const numLayers = countLayers(names);
  const tensors: PlannedTensor[] = [];
  modelEntries.forEach(({ entry }, m) => {
    const source = sources[m]!;
    const missing = names.filter((n) => !source.tensors.has(n));
    if (missing.length > 0) {
      problems.push({
        code: 'E_SHAPE',
        text: `model ${entry.name} lacks ${missing.length} tensor(s) the base has: ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ', …' : ''}`,
      });
    }
    const extra = [...source.tensors.keys()].filter((n) => !base.tensors.has(n));
    if (extra.length > 0) {
      warnings.push(`model ${entry.name} has ${extra.length} tensor(s) the base lacks (ignored): ${extra.slice(0, 5).join(', ')}`);
    }
  });
  for (const name of names) {
    const info = base.tensors.get(name)!;
    const modelDtypes: InputDType[] = [];
    let mergeable = isFloatDType(info.dtype);
    let inputBytes = info.byteLength;
    modelEntries.forEach(({ entry }, m) => {
      const other = sources[m]!.tensors.get(name);
      if (!other) return;
      if (other.shape.join('x') !== info.shape.join('x')) {
        problems.push({
          code: 'E_SHAPE',
          text: `tensor ${name}: model ${entry.name} has shape [${other.shape}] but the base has [${info.shape}]`,
        });
      }
      if (!isFloatDType(other.dtype)) mergeable = false;
      modelDtypes.push(other.dtype as InputDType);
      inputBytes += other.byteLength;
    });
    const outDtype = outputDtypeFor(config, info.dtype);
    const action = mergeable ? 'merge' : 'copy';
    if (!mergeable) warnings.push(`tensor ${name} (${info.dtype}) is not floating point: copied from the base`);
    tensors.push({
      name,
      shape: info.shape,
      numel: info.numel,
      role: tensorRole(name, info.shape),
      action,
      inputDtypes: { base: info.dtype as InputDType, models: modelDtypes },
      outDtype: action === 'copy' ? (info.dtype as OutputDType) : outDtype,
      inputBytes: action === 'copy' ? info.byteLength : inputBytes,
      outputBytes: action === 'copy' ? info.byteLength : info.numel * DTYPE_BYTES[outDtype],
    });
  }
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
