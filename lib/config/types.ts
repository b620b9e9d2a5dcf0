/**
 * The validated, typed form of a merge config (mergekit's YAML dialect, algorithms.md §5).
 */

/** `{filter?, value}`: applies to tensors whose name contains `filter`; no filter matches all. */
export interface FilteredValue {
  filter?: string;
  value: number | number[];
}

/**
 * A parameter as written, after validation and light normalisation:
 * - number, boolean, string: a constant;
 * - number[]: for kind 'number' a per-layer gradient, for kind 'numberList' the list itself;
 * - FilteredValue[]: per-tensor values, first matching filter wins (mergekit).
 */
export type ParamValue = number | boolean | string | number[] | FilteredValue[];
export type ParamMap = Record<string, ParamValue>;

export type ComputeDtype = 'float32' | 'bfloat16' | 'float16';

export interface ModelEntry {
  /** Resolved path (relative to the config's folder). */
  model: string;
  /** The model as written in the config: keys random streams, names it in messages. */
  name: string;
  /** Whether this entry is the base model (mergekit lets the base appear in `models`). */
  isBase: boolean;
  parameters: ParamMap;
}

export interface SliceSource {
  model: string;
  name: string;
  /** Half-open [start, end) layer range of the source model. */
  layerRange: [number, number];
  parameters: ParamMap;
}

export interface Slice {
  sources: SliceSource[];
}

export interface MergeConfig {
  file?: string;
  baseDir: string;
  mergeMethod: string;
  /** Resolved path of the base model. */
  baseModel?: string;
  /** The base model as written. */
  baseModelName?: string;
  /**
   * The models merged, in the order written. With `slices:`, the distinct models of all
   * sources in first-appearance order, carrying their first source's parameters.
   */
  models: ModelEntry[];
  /** Global parameters (`parameters:` at the top level). */
  parameters: ParamMap;
  dtype: ComputeDtype;
  outDtype?: ComputeDtype;
  /** 'base' or a model as written (one of `models[].name` or the base's name). */
  tokenizerSource?: string;
  slices?: Slice[];
  /** Set when there is exactly one slice and all its sources share one layer range. */
  layerRange?: [number, number];
  seed?: number;
  /** mergekit's `name:` (used by the model card). */
  name?: string;
  /** Things accepted but ignored (chat_template, int8_mask, …), for the caller to show. */
  warnings: string[];
  /** The input as parsed, before validation. */
  raw: unknown;
}

export interface ParseOptions {
  /** The config's path, for messages; its folder is the default baseDir. */
  file?: string;
  /** Folder model paths are resolved against. */
  baseDir: string;
}

export interface ParseResult {
  config?: MergeConfig;
  problems: string[];
  warnings: string[];
}
