/**
 * Which tensors the output has, where each comes from, and in which dtype — checked across
 * every model before any tensor data is read.
 */
import type { InputDType, OutputDType } from '../binding';
import type { MergeConfig } from '../config/types';
import type { ErrorCode } from '../errors';
import { DTYPE_SIZE, isFloatDType, SafetensorsDType } from '../io/dtypes';
import type { ModelSource } from '../io/model';
import { countLayers, orderTensorNames, tensorRole, TensorRole } from './layers';

export interface PlannedTensor {
  name: string;
  shape: number[];
  numel: number;
  role: TensorRole;
  /** 'merge' through the method, or 'copy' one input tensor (times a scale). */
  action: 'merge' | 'copy';
  /** For 'copy': the model (index into the plan's models, or 'base') and tensor to copy. */
  copyFrom?: { model: number | 'base'; name: string; dtype: InputDType; scale?: number };
  /**
   * For 'merge': rows merged (vocab tensors whose sizes differ across models are merged over
   * the rows all models have; the base's further rows are kept as they are).
   */
  mergedRows: number;
  inputDtypes: { base: InputDType; models: InputDType[] };
  outDtype: OutputDType;
  /** Bytes read for it from all inputs, and written. */
  inputBytes: number;
  outputBytes: number;
}

export interface TensorPlanContext {
  config: MergeConfig;
  base: ModelSource;
  models: { name: string; source: ModelSource }[];
  problem(code: ErrorCode, text: string): void;
  warn(text: string): void;
}

export interface TensorPlan {
  tensors: PlannedTensor[];
  /** Layers of the inputs, for gradients and DP. */
  numLayers: number;
  /** num_hidden_layers of the output when it differs (passthrough slices). */
  outputLayers?: number;
}

const OUTPUT_DTYPES: Record<string, OutputDType> = { float32: 'F32', float16: 'F16', bfloat16: 'BF16' };

/** out_dtype, or the base's dtype (the default), or F32 for bases stored in other dtypes. */
export function outputDtypeFor(config: MergeConfig, baseDtype: SafetensorsDType): OutputDType {
  if (config.outDtype) return OUTPUT_DTYPES[config.outDtype];
  if (baseDtype === 'F32' || baseDtype === 'F16' || baseDtype === 'BF16') return baseDtype;
  return 'F32';
}

/** Embedding and output-head tensors, whose row count is the vocabulary size. */
export function isVocabTensor(name: string): boolean {
  return /embed_tokens|lm_head|(^|\.)wte\.|embed_out|(^|\.)output\.weight$/.test(name);
}

function tiedEmbeddings(base: ModelSource): boolean {
  return base.config?.tie_word_embeddings === true;
}

/** The base's tensors, each merged from every model (or copied when not floating point). */
export function planMergedTensors(ctx: TensorPlanContext): TensorPlan {
  const { base, models, config } = ctx;
  let names = orderTensorNames([...base.tensors.keys()]);
  if (tiedEmbeddings(base) && base.tensors.has('lm_head.weight')) {
    // The config ties the head to the embeddings: writing a separate lm_head would be spurious.
    names = names.filter((n) => n !== 'lm_head.weight');
    ctx.warn('the base ties its word embeddings (tie_word_embeddings: true): lm_head.weight is not written');
  }
  for (const model of models) {
    const missing = names.filter((n) => !model.source.tensors.has(n));
    if (missing.length > 0) {
      ctx.problem('E_SHAPE',
        `model ${model.name} lacks ${missing.length} tensor(s) the base has: ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ', …' : ''}`);
    }
    const extra = [...model.source.tensors.keys()].filter((n) => !base.tensors.has(n));
    if (extra.length > 0) {
      ctx.warn(`model ${model.name} has ${extra.length} tensor(s) the base lacks (ignored): ${extra.slice(0, 5).join(', ')}`);
    }
  }

  const tensors: PlannedTensor[] = [];
  for (const name of names) {
    const info = base.tensors.get(name)!;
    const outDtype = outputDtypeFor(config, info.dtype);
    const others = models.map((m) => m.source.tensors.get(name));
    const mergeable = isFloatDType(info.dtype) && others.every((o) => !o || isFloatDType(o.dtype));
    let mergedRows = info.shape.length > 0 ? info.shape[0] : 1;
    others.forEach((other, m) => {
      if (!other || other.shape.join('x') === info.shape.join('x')) return;
      const sameColumns = other.shape.length === info.shape.length && other.shape.slice(1).join('x') === info.shape.slice(1).join('x');
      if (isVocabTensor(name) && sameColumns && info.shape.length >= 1) {
        mergedRows = Math.min(mergedRows, other.shape[0]);
        ctx.warn(
          `${name}: vocabulary sizes differ (base ${info.shape[0]}, ${models[m].name} ${other.shape[0]}); ` +
            `merging the ${Math.min(info.shape[0], other.shape[0])} common rows` +
            (info.shape[0] > other.shape[0] ? `, keeping the base's ${info.shape[0] - other.shape[0]} further rows as they are` : '') +
            (other.shape[0] > info.shape[0] ? `; ${models[m].name}'s ${other.shape[0] - info.shape[0]} further rows are not in the output` : ''),
        );
      } else {
        ctx.problem('E_SHAPE', `tensor ${name}: model ${models[m].name} has shape [${other.shape}] but the base has [${info.shape}]`);
      }
    });
    if (!mergeable) ctx.warn(`tensor ${name} (${info.dtype}) is not floating point: copied from the base`);
    const inputBytes = info.byteLength + (mergeable ? others.reduce((s, o) => s + (o?.byteLength ?? 0), 0) : 0);
    tensors.push({
      name,
      shape: info.shape,
      numel: info.numel,
      role: tensorRole(name, info.shape),
      action: mergeable ? 'merge' : 'copy',
      copyFrom: mergeable ? undefined : { model: 'base', name, dtype: info.dtype as InputDType },
      mergedRows: mergeable ? mergedRows : 0,
      inputDtypes: { base: info.dtype as InputDType, models: others.map((o) => (o?.dtype ?? info.dtype) as InputDType) },
      outDtype: mergeable ? outDtype : (info.dtype as OutputDType),
      inputBytes,
      outputBytes: mergeable ? info.numel * DTYPE_SIZE[outDtype] : info.byteLength,
    });
  }
  const numLayers = countLayers(names);
  if (config.slices) {
    // mergekit writes whole-model merges as one slice over every layer (the classic slerp config).
    const range = config.layerRange;
    if (!range || range[0] !== 0 || range[1] !== numLayers) {
      ctx.problem('E_CONFIG',
        `${config.mergeMethod} with slices: only one slice whose sources all cover every layer [0, ${numLayers}] is supported; ` +
          'use passthrough to stack layer ranges');
    }
  }
  return { tensors, numLayers };
}
