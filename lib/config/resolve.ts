/**
 * Parameter resolution with mergekit's semantics (mergekit/config.py evaluate_setting and
 * plan.py), re-implemented:
 * - a number (or boolean, string) is a constant;
 * - a list of N numbers is a gradient: N − 1 equal segments spanning t ∈ [0, 1], linear inside;
 * - a list of `{filter?, value}`: the first entry, in order, whose filter is a substring of the
 *   tensor name (or that has no filter, or filter "*") gives the value, itself maybe a gradient;
 *   when none matches the setting is absent and the next level (global, then default) applies.
 * - t for a layer tensor is layerIndex / (numLayers − 1) (1 when there is a single layer);
 *   outside the layers mergekit uses t = 0 before them (embeddings) and t = 1 after them
 *   (final norm, output head).
 * For kind 'numberList' (partitions, amplify) the list is the value, never a gradient.
 */
import { DppaError } from '../errors';
import { methodSchemas } from '../methods/schemas';
import type { ParamSpec } from '../methods/types';
import type { FilteredValue, MergeConfig, ParamValue } from './types';

export interface TensorContext {
  tensorName: string;
  /** Layer index relative to the slice (0 … numLayers − 1), or null outside the layers. */
  layerIndex: number | null;
  numLayers: number;
  /**
   * For tensors outside the layers: before them (t = 0) or after them (t = 1). When omitted
   * it is guessed from the name: embeddings (`embed`, `wte`, `wpe`) are before, the rest after.
   */
  position?: 'before' | 'after';
}

export type ResolvedValue = number | boolean | string | number[];

const BEFORE_LAYER_NAMES = /embed|(^|\.)wte(\.|$)|(^|\.)wpe(\.|$)/;

/** Where a tensor lies along the layer stack, as a numerator/denominator pair (exact at knots). */
function layerFraction(ctx: TensorContext): { numerator: number; denominator: number } {
  if (ctx.layerIndex === null) {
    const before = ctx.position ? ctx.position === 'before' : BEFORE_LAYER_NAMES.test(ctx.tensorName);
    return { numerator: before ? 0 : 1, denominator: 1 };
  }
  if (ctx.numLayers <= 1) return { numerator: 1, denominator: 1 };
  return { numerator: ctx.layerIndex, denominator: ctx.numLayers - 1 };
}

/** t ∈ [0, 1] of a tensor, as mergekit computes it. */
export function gradientPosition(ctx: TensorContext): number {
  const { numerator, denominator } = layerFraction(ctx);
  return numerator / denominator;
}

/** Linear interpolation along a gradient of N values; exact at the N knots. */
export function interpolateGradient(values: readonly number[], ctx: TensorContext): number {
  if (values.length === 0) throw new DppaError('E_ARGUMENT', 'an empty gradient has no value');
  if (values.length === 1) return values[0];
  const { numerator, denominator } = layerFraction(ctx);
  // scaled = t · (N − 1) kept as an integer ratio so that knots are hit exactly.
  const scaledNumerator = numerator * (values.length - 1);
  const lower = Math.min(Math.floor(scaledNumerator / denominator), values.length - 1);
  const upper = Math.min(values.length - 1, lower + 1);
  const fraction = (scaledNumerator - lower * denominator) / denominator;
  if (fraction === 0) return values[lower];
  return (1 - fraction) * values[lower] + fraction * values[upper];
}

function isFilterList(value: ParamValue): value is FilteredValue[] {
  return Array.isArray(value) && value.length > 0 && typeof value[0] === 'object' && value[0] !== null;
}

export function filterMatches(entry: FilteredValue, tensorName: string): boolean {
  return entry.filter === undefined || entry.filter === '*' || tensorName.includes(entry.filter);
}

/**
 * The value a setting takes for one tensor, or undefined when it is a filter list with no
 * matching entry (so the caller falls back to the next level).
 */
export function evaluateSetting(spec: ParamSpec, value: ParamValue | undefined, ctx: TensorContext): ResolvedValue | undefined {
  if (value === undefined) return undefined;
  if (spec.kind === 'numberList') return value as number[];
  if (isFilterList(value)) {
    const match = value.find((entry) => filterMatches(entry, ctx.tensorName));
    return match === undefined ? undefined : evaluateSetting(spec, match.value, ctx);
  }
  if (Array.isArray(value)) return interpolateGradient(value as number[], ctx);
  return value;
}

/** One setting (or, when absent or unmatched, the spec's default) for one tensor. */
export function resolveParam(spec: ParamSpec, value: ParamValue | undefined, ctx: TensorContext): ResolvedValue | undefined {
  const resolved = evaluateSetting(spec, value, ctx);
  return resolved !== undefined ? resolved : spec.default;
}

/** Where a resolved value came from. */
export type ParamOrigin = 'model' | 'global' | 'default' | 'absent';

export interface ResolvedParam {
  value: ResolvedValue | undefined;
  origin: ParamOrigin;
}

function specFor(config: MergeConfig, name: string): ParamSpec {
  const spec = methodSchemas[config.mergeMethod]?.params.find((p) => p.name === name);
  if (!spec) {
    throw new DppaError('E_ARGUMENT', `${config.mergeMethod} has no parameter ${name}`);
  }
  return spec;
}

/** A tensor context for parameters that don't vary per tensor. */
const NO_TENSOR: TensorContext = { tensorName: '', layerIndex: null, numLayers: 1, position: 'before' };

/**
 * Per-model over global over default (mergekit's ConfigReader.parameter). `modelIndex` is an
 * index into `config.models`, or null for the global value only.
 */
export function resolveParamWithOrigin(
  config: MergeConfig,
  name: string,
  modelIndex: number | null,
  ctx: TensorContext = NO_TENSOR,
): ResolvedParam {
  const spec = specFor(config, name);
  if (modelIndex !== null) {
    const model = config.models[modelIndex];
    if (!model) throw new DppaError('E_ARGUMENT', `no model at index ${modelIndex}`);
    const perModel = evaluateSetting(spec, model.parameters[name], ctx);
    if (perModel !== undefined) return { value: perModel, origin: 'model' };
  }
  const global = evaluateSetting(spec, config.parameters[name], ctx);
  if (global !== undefined) return { value: global, origin: 'global' };
  if (spec.default !== undefined) return { value: spec.default, origin: 'default' };
  return { value: undefined, origin: 'absent' };
}

/**
 * For slice-based configs (passthrough): a source's own parameters over global over default.
 * Needed when one model appears in several slices with different parameters (`scale`).
 */
export function resolveSourceParam(
  config: MergeConfig,
  name: string,
  sliceIndex: number,
  sourceIndex: number,
  ctx: TensorContext = NO_TENSOR,
): ResolvedParam {
  const spec = specFor(config, name);
  const source = config.slices?.[sliceIndex]?.sources[sourceIndex];
  if (!source) throw new DppaError('E_ARGUMENT', `no source ${sourceIndex} in slice ${sliceIndex}`);
  const own = evaluateSetting(spec, source.parameters[name], ctx);
  if (own !== undefined) return { value: own, origin: 'model' };
  return resolveParamWithOrigin(config, name, null, ctx);
}

/** As resolveParamWithOrigin, the value only. */
export function resolveModelParam(
  config: MergeConfig,
  name: string,
  modelIndex: number | null,
  ctx?: TensorContext,
): ResolvedValue | undefined {
  return resolveParamWithOrigin(config, name, modelIndex, ctx).value;
}

/** A global parameter (or its default). */
export function resolveGlobalParam(config: MergeConfig, name: string, ctx?: TensorContext): ResolvedValue | undefined {
  return resolveParamWithOrigin(config, name, null, ctx).value;
}

/** Typed accessors that fail with E_CONFIG naming the tensor when a required value is missing. */
export function requireNumber(config: MergeConfig, name: string, modelIndex: number | null, ctx?: TensorContext): number {
  const value = resolveModelParam(config, name, modelIndex, ctx);
  if (typeof value !== 'number') {
    const where = [modelIndex !== null ? config.models[modelIndex]?.name : undefined, ctx?.tensorName]
      .filter((part) => part).join(' / ');
    throw new DppaError('E_CONFIG',
      `parameter ${name} has no value${where ? ` for ${where}` : ''}: give it a value without filter as the last entry, or a global value`,
      [`${name}: no value${where ? ` for ${where}` : ''}`]);
  }
  return value;
}
