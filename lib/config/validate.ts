/**
 * Validation of a parsed config (YAML or a plain object) into a MergeConfig. Every problem is
 * collected, never only the first: a user fixing a config wants the whole list at once.
 */
import * as os from 'os';
import * as path from 'path';
import { methodNames, methodSchemas, requiredParams } from '../methods/schemas';
import type { MethodSchema, ParamSpec } from '../methods/types';
import { didYouMean, nearestName } from './suggest';
import type {
  ComputeDtype, FilteredValue, MergeConfig, ModelEntry, ParamMap, ParamValue, ParseOptions, ParseResult, Slice, SliceSource,
} from './types';

export type PathSegment = string | number;
/** The 1-based line of the deepest node found along a path, when the source text is known. */
export type Locator = (fieldPath: PathSegment[]) => number | undefined;

export const TOP_LEVEL_KEYS = [
  'merge_method', 'base_model', 'models', 'slices', 'parameters', 'dtype', 'out_dtype',
  'tokenizer_source', 'tokenizer', 'chat_template', 'name',
];
const MODEL_KEYS = ['model', 'parameters'];
const SLICE_KEYS = ['sources'];
const SOURCE_KEYS = ['model', 'layer_range', 'parameters'];
const FILTER_KEYS = ['filter', 'value'];
const TOKENIZER_KEYS = ['source', 'tokens', 'pad_to_multiple_of'];
/** mergekit keys this project knows but does not implement: a clear message, not "unknown". */
const UNSUPPORTED_KEYS: Record<string, string> = {
  modules: 'modules (multi-module merges) is not supported yet',
};
const UNSUPPORTED_SLICE_KEYS: Record<string, string> = {
  parameters: 'per-slice parameters are not supported yet; put them under the sources or the top-level parameters',
  base_model: 'a per-slice base_model is not supported yet; use the top-level base_model',
  residual_weight: 'residual_weight is not supported yet',
};

export const DTYPES: ComputeDtype[] = ['float32', 'bfloat16', 'float16'];
const DTYPE_ALIASES: Record<string, ComputeDtype> = {
  fp32: 'float32', float: 'float32', bf16: 'bfloat16', fp16: 'float16', half: 'float16',
};

export function formatPath(fieldPath: readonly PathSegment[]): string {
  let out = '';
  for (const segment of fieldPath) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else out += out ? `.${segment}` : segment;
  }
  return out || '(config)';
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function describeType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (isPlainObject(value)) return 'a mapping';
  if (typeof value === 'string') return `the string "${value}"`;
  return `${typeof value} ${String(value)}`;
}

/** Absent in the mergekit sense: missing, or written with no value (YAML null). */
function isAbsent(value: unknown): boolean {
  return value === undefined || value === null;
}

class ProblemCollector {
  private readonly problemEntries: { line: number; text: string }[] = [];
  private readonly warningEntries: { line: number; text: string }[] = [];

  constructor(private readonly file: string | undefined, private readonly locate: Locator | undefined) {}

  /** Problems in file order (by line), so they read top to bottom like the config. */
  get problems(): string[] {
    return ProblemCollector.inLineOrder(this.problemEntries);
  }

  get warnings(): string[] {
    return ProblemCollector.inLineOrder(this.warningEntries);
  }

  get problemCount(): number {
    return this.problemEntries.length;
  }

  private static inLineOrder(entries: { line: number; text: string }[]): string[] {
    return [...entries].sort((a, b) => a.line - b.line).map((entry) => entry.text);
  }

  private entry(fieldPath: PathSegment[], message: string): { line: number; text: string } {
    const line = this.locate?.(fieldPath);
    let prefix = '';
    if (this.file && line !== undefined) prefix = `${this.file}:${line}: `;
    else if (line !== undefined) prefix = `line ${line}: `;
    else if (this.file) prefix = `${this.file}: `;
    return { line: line ?? 0, text: `${prefix}${formatPath(fieldPath)}: ${message}` };
  }

  problem(fieldPath: PathSegment[], message: string): void {
    this.problemEntries.push(this.entry(fieldPath, message));
  }

  warn(fieldPath: PathSegment[], message: string): void {
    this.warningEntries.push(this.entry(fieldPath, message));
  }

  /**
   * Reports keys outside `allowed` (with a suggestion). Returns the valid names suggested, so a
   * caller can skip "missing X" when the user wrote X misspelt (one problem, not two).
   */
  checkKeys(object: Record<string, unknown>, allowed: readonly string[], fieldPath: PathSegment[], what: string,
    unsupported: Record<string, string> = {}): Set<string> {
    const suggested = new Set<string>();
    for (const key of Object.keys(object)) {
      if (allowed.includes(key)) continue;
      if (key in unsupported) {
        this.problem([...fieldPath, key], unsupported[key]);
        continue;
      }
      const nearest = nearestName(key, allowed);
      if (nearest !== undefined) suggested.add(nearest);
      this.problem([...fieldPath, key], `unknown ${what} "${key}"${didYouMean(key, allowed)} (valid: ${allowed.join(', ')})`);
    }
    return suggested;
  }
}

// ---------------------------------------------------------------------------------------------
// Parameters

type Level = 'model' | 'global';

function checkNumber(collector: ProblemCollector, spec: ParamSpec, value: unknown, fieldPath: PathSegment[]): value is number {
  if (typeof value !== 'number') {
    collector.problem(fieldPath, `${spec.name} must be a number, got ${describeType(value)}`);
    return false;
  }
  if (!Number.isFinite(value)) {
    collector.problem(fieldPath, `${spec.name} must be finite, got ${value}`);
    return false;
  }
  const below = spec.min !== undefined && value < spec.min;
  const above = spec.max !== undefined && value > spec.max;
  if (below || above) {
    const range = spec.max !== undefined ? `[${spec.min ?? '-∞'}, ${spec.max}]` : `≥ ${spec.min}`;
    collector.problem(fieldPath, `${spec.name} must be in ${range}, got ${value}`);
    return false;
  }
  if (spec.name === 'seed' && !Number.isInteger(value)) {
    collector.problem(fieldPath, `seed must be an integer, got ${value}`);
    return false;
  }
  return true;
}

/** A number or (when the spec allows per-tensor values) a gradient list of numbers. */
function validateNumberOrGradient(collector: ProblemCollector, spec: ParamSpec, value: unknown,
  fieldPath: PathSegment[]): number | number[] | undefined {
  if (Array.isArray(value)) {
    if (!spec.perTensor) {
      collector.problem(fieldPath, `${spec.name} takes a single number, not a list (gradients are not allowed for it)`);
      return undefined;
    }
    if (value.length === 0) {
      collector.problem(fieldPath, `${spec.name}: an empty gradient list has no value`);
      return undefined;
    }
    let ok = true;
    value.forEach((element, index) => {
      if (!checkNumber(collector, spec, element, [...fieldPath, index])) ok = false;
    });
    return ok ? (value as number[]) : undefined;
  }
  return checkNumber(collector, spec, value, fieldPath) ? value : undefined;
}

function validateFilterList(collector: ProblemCollector, spec: ParamSpec, entries: unknown[],
  fieldPath: PathSegment[]): FilteredValue[] | undefined {
  const result: FilteredValue[] = [];
  let ok = true;
  entries.forEach((entry, index) => {
    const entryPath = [...fieldPath, index];
    if (!isPlainObject(entry)) {
      collector.problem(entryPath, `expected {filter, value}, got ${describeType(entry)}; a list mixing numbers and filters is not allowed`);
      ok = false;
      return;
    }
    collector.checkKeys(entry, FILTER_KEYS, entryPath, 'key');
    if (!isAbsent(entry.filter) && typeof entry.filter !== 'string') {
      collector.problem([...entryPath, 'filter'], `filter must be a string (a substring of tensor names), got ${describeType(entry.filter)}`);
      ok = false;
    }
    if (isAbsent(entry.value)) {
      collector.problem(entryPath, `a {filter, value} entry needs a value`);
      ok = false;
      return;
    }
    if (isPlainObject(entry.value) || (Array.isArray(entry.value) && entry.value.some(isPlainObject))) {
      collector.problem([...entryPath, 'value'], 'filters cannot be nested; give a number or a gradient list');
      ok = false;
      return;
    }
    const inner = validateNumberOrGradient(collector, spec, entry.value, [...entryPath, 'value']);
    if (inner === undefined) {
      ok = false;
      return;
    }
    const filtered: FilteredValue = typeof entry.filter === 'string' ? { filter: entry.filter, value: inner } : { value: inner };
    result.push(filtered);
  });
  // mergekit takes the first matching entry in order, so a catch-all hides everything after it.
  const catchAll = result.findIndex((entry) => entry.filter === undefined || entry.filter === '*');
  if (ok && catchAll >= 0 && catchAll < result.length - 1) {
    collector.warn([...fieldPath, catchAll], 'an entry without filter matches every tensor; the entries after it are never used (put it last)');
  }
  return ok ? result : undefined;
}

function validateParamValue(collector: ProblemCollector, spec: ParamSpec, value: unknown,
  fieldPath: PathSegment[]): ParamValue | undefined {
  switch (spec.kind) {
    case 'number': {
      const looksFiltered = isPlainObject(value) || (Array.isArray(value) && value.some(isPlainObject));
      if (looksFiltered) {
        if (!spec.perTensor) {
          collector.problem(fieldPath, `${spec.name} cannot vary per tensor; give a single number`);
          return undefined;
        }
        // mergekit also accepts a single {filter, value} mapping: treat it as a one-entry list.
        return validateFilterList(collector, spec, Array.isArray(value) ? value : [value], fieldPath);
      }
      return validateNumberOrGradient(collector, spec, value, fieldPath);
    }
    case 'boolean': {
      if (typeof value === 'boolean') return value;
      // mergekit configs commonly write `normalize: 1.0` / `int8_mask: 1.0`; Python reads them as truthy.
      if (value === 0 || value === 1) return value === 1;
      collector.problem(fieldPath, `${spec.name} must be true or false, got ${describeType(value)}`);
      return undefined;
    }
    case 'string': {
      // mergekit's `rescale` is a boolean: true is 1/density (inverse), false is none.
      if (spec.name === 'rescale' && typeof value === 'boolean') return value ? 'inverse' : 'none';
      if (typeof value !== 'string') {
        collector.problem(fieldPath, `${spec.name} must be one of ${spec.choices?.join(', ')}, got ${describeType(value)}`);
        return undefined;
      }
      if (spec.choices && !spec.choices.includes(value)) {
        collector.problem(fieldPath, `${spec.name} must be one of ${spec.choices.join(', ')}, got "${value}"${didYouMean(value, spec.choices)}`);
        return undefined;
      }
      return value;
    }
    case 'numberList': {
      // A lone number is a one-element list (`partitions: 0.1`).
      const list = typeof value === 'number' ? [value] : value;
      if (!Array.isArray(list) || list.length === 0) {
        collector.problem(fieldPath, `${spec.name} must be a non-empty list of numbers, got ${Array.isArray(list) ? 'an empty list' : describeType(value)}`);
        return undefined;
      }
      let ok = true;
      list.forEach((element, index) => {
        if (!checkNumber(collector, spec, element, Array.isArray(value) ? [...fieldPath, index] : fieldPath)) ok = false;
      });
      return ok ? (list as number[]) : undefined;
    }
  }
}

function validateParams(collector: ProblemCollector, schema: MethodSchema | undefined, raw: unknown,
  fieldPath: PathSegment[], level: Level): ParamMap {
  const params: ParamMap = {};
  if (isAbsent(raw)) return params;
  if (!isPlainObject(raw)) {
    collector.problem(fieldPath, `parameters must be a mapping of name: value, got ${describeType(raw)}`);
    return params;
  }
  const validNames = schema ? schema.params.map((spec) => spec.name) : [];
  for (const [name, value] of Object.entries(raw)) {
    const paramPath = [...fieldPath, name];
    if (isAbsent(value)) continue;
    if (!schema) continue; // unknown method: already reported; names can't be checked
    const spec = schema.params.find((candidate) => candidate.name === name);
    if (!spec) {
      collector.problem(paramPath, `unknown parameter "${name}" for ${schema.name}${didYouMean(name, validNames)} (valid: ${validNames.join(', ')})`);
      continue;
    }
    if (level === 'model' && spec.scope === 'global') {
      collector.problem(paramPath, `${name} can only be given globally (under the top-level parameters), not per model`);
      continue;
    }
    if (level === 'global' && spec.scope === 'model') {
      collector.problem(paramPath, `${name} is a per-model parameter; set it under models[i].parameters`);
      continue;
    }
    const validated = validateParamValue(collector, spec, value, paramPath);
    if (validated !== undefined) params[name] = validated;
  }
  return params;
}

// ---------------------------------------------------------------------------------------------
// Models and slices

export function resolveModelPath(written: string, baseDir: string): string {
  if (written === '~' || written.startsWith('~/')) return path.join(os.homedir(), written.slice(1));
  return path.resolve(baseDir, written);
}

function validateModelName(collector: ProblemCollector, value: unknown, fieldPath: PathSegment[]): string | undefined {
  if (isAbsent(value)) {
    collector.problem(fieldPath, 'missing model (a path to a model folder)');
    return undefined;
  }
  if (typeof value !== 'string' || value.trim() === '') {
    collector.problem(fieldPath, `model must be a path string, got ${describeType(value)}`);
    return undefined;
  }
  return value;
}

/** Models or slices as validated; `complete` is false when some entry was dropped as invalid. */
interface Validated<T> {
  items: T;
  complete: boolean;
}

function validateModels(collector: ProblemCollector, schema: MethodSchema | undefined, raw: unknown,
  baseDir: string, baseModel: string | undefined): Validated<ModelEntry[]> {
  const models: ModelEntry[] = [];
  if (!Array.isArray(raw)) {
    collector.problem(['models'], `models must be a list of {model, parameters}, got ${describeType(raw)}`);
    return { items: models, complete: false };
  }
  let complete = true;
  const seen = new Map<string, number>();
  raw.forEach((entry, index) => {
    const entryPath: PathSegment[] = ['models', index];
    if (typeof entry === 'string') {
      collector.problem(entryPath, `write a model as {model: ${entry}}, not a bare string`);
      complete = false;
      return;
    }
    if (!isPlainObject(entry)) {
      collector.problem(entryPath, `expected {model, parameters}, got ${describeType(entry)}`);
      complete = false;
      return;
    }
    const misspelt = collector.checkKeys(entry, MODEL_KEYS, entryPath, 'model key');
    const name = misspelt.has('model') && isAbsent(entry.model)
      ? undefined : validateModelName(collector, entry.model, [...entryPath, 'model']);
    const parameters = validateParams(collector, schema, entry.parameters, [...entryPath, 'parameters'], 'model');
    if (name === undefined) {
      complete = false;
      return;
    }
    const resolved = resolveModelPath(name, baseDir);
    const earlier = seen.get(resolved);
    if (earlier !== undefined) {
      collector.problem([...entryPath, 'model'], `${name} is listed twice (also models[${earlier}]); list each model once`);
      return;
    }
    seen.set(resolved, index);
    models.push({ model: resolved, name, isBase: resolved === baseModel, parameters });
  });
  return { items: models, complete };
}

function validateLayerRange(collector: ProblemCollector, value: unknown, fieldPath: PathSegment[]): [number, number] | undefined {
  if (isAbsent(value)) {
    collector.problem(fieldPath, 'missing layer_range: [start, end]');
    return undefined;
  }
  if (!Array.isArray(value) || value.length !== 2) {
    collector.problem(fieldPath, `layer_range must be [start, end], got ${describeType(value)}`);
    return undefined;
  }
  const [start, end] = value;
  if (!Number.isInteger(start) || !Number.isInteger(end)) {
    collector.problem(fieldPath, `layer_range must hold two integers, got [${String(start)}, ${String(end)}]`);
    return undefined;
  }
  if (start < 0 || end <= start) {
    collector.problem(fieldPath, `layer_range [${start}, ${end}] must satisfy 0 ≤ start < end (end is exclusive)`);
    return undefined;
  }
  return [start, end];
}

function validateSlices(collector: ProblemCollector, schema: MethodSchema | undefined, raw: unknown,
  baseDir: string): Validated<Slice[]> {
  const slices: Slice[] = [];
  if (!Array.isArray(raw) || raw.length === 0) {
    collector.problem(['slices'], `slices must be a non-empty list of {sources: [...]}, got ${describeType(raw)}`);
    return { items: slices, complete: false };
  }
  let complete = true;
  raw.forEach((slice, sliceIndex) => {
    const slicePath: PathSegment[] = ['slices', sliceIndex];
    if (!isPlainObject(slice)) {
      collector.problem(slicePath, `expected {sources: [...]}, got ${describeType(slice)}`);
      complete = false;
      return;
    }
    collector.checkKeys(slice, SLICE_KEYS, slicePath, 'slice key', UNSUPPORTED_SLICE_KEYS);
    const sourcesPath = [...slicePath, 'sources'];
    if (!Array.isArray(slice.sources) || slice.sources.length === 0) {
      collector.problem(sourcesPath, `sources must be a non-empty list of {model, layer_range}, got ${describeType(slice.sources)}`);
      complete = false;
      return;
    }
    const sources: SliceSource[] = [];
    // A source dropped without its own message (misspelt key) still makes the slice incomplete.
    slice.sources.forEach((source, sourceIndex) => {
      const sourcePath = [...sourcesPath, sourceIndex];
      if (!isPlainObject(source)) {
        collector.problem(sourcePath, `expected {model, layer_range}, got ${describeType(source)}`);
        return;
      }
      const misspelt = collector.checkKeys(source, SOURCE_KEYS, sourcePath, 'source key');
      const name = misspelt.has('model') && isAbsent(source.model)
        ? undefined : validateModelName(collector, source.model, [...sourcePath, 'model']);
      const layerRange = misspelt.has('layer_range') && isAbsent(source.layer_range)
        ? undefined : validateLayerRange(collector, source.layer_range, [...sourcePath, 'layer_range']);
      const parameters = validateParams(collector, schema, source.parameters, [...sourcePath, 'parameters'], 'model');
      if (name !== undefined && layerRange !== undefined) {
        sources.push({ model: resolveModelPath(name, baseDir), name, layerRange, parameters });
      }
    });
    if (sources.length !== slice.sources.length) {
      complete = false;
    } else {
      const lengths = sources.map((source) => source.layerRange[1] - source.layerRange[0]);
      if (lengths.some((length) => length !== lengths[0])) {
        collector.problem(sourcesPath, `all sources of a slice must span the same number of layers, got ${lengths.join(', ')}`);
      }
    }
    slices.push({ sources });
  });
  return { items: slices, complete };
}

/** The models a slice-based config merges: distinct sources in first-appearance order. */
function modelsFromSlices(slices: Slice[], baseModel: string | undefined): ModelEntry[] {
  const models: ModelEntry[] = [];
  for (const slice of slices) {
    for (const source of slice.sources) {
      if (models.some((model) => model.model === source.model)) continue;
      models.push({ model: source.model, name: source.name, isBase: source.model === baseModel, parameters: source.parameters });
    }
  }
  return models;
}

// ---------------------------------------------------------------------------------------------
// Cross-field rules

function constantAt(params: ParamMap, name: string): number | undefined {
  const value = params[name];
  return typeof value === 'number' ? value : undefined;
}

function checkDppaBands(collector: ProblemCollector, config: MergeConfig): void {
  const levels: { params: ParamMap; path: PathSegment[] }[] = [
    { params: config.parameters, path: ['parameters'] },
    ...config.models.map((model, index) => ({ params: model.parameters, path: ['models', index, 'parameters'] as PathSegment[] })),
  ];
  for (const { params, path: levelPath } of levels) {
    const partitions = params.partitions as number[] | undefined;
    if (partitions) {
      const bad = partitions.findIndex((value, index) => value <= 0 || (index > 0 && value <= partitions[index - 1]));
      if (bad >= 0) {
        collector.problem([...levelPath, 'partitions'],
          `partitions must be densities strictly increasing in (0, 1] (tight → loose), got [${partitions.join(', ')}]`);
      }
    }
  }
  // Lengths are checked on what each model will actually use (per-model over global over default).
  config.models.forEach((model, index) => {
    if (model.isBase) return;
    const explicitPartitions = (model.parameters.partitions ?? config.parameters.partitions) as number[] | undefined;
    const explicitAmplify = (model.parameters.amplify ?? config.parameters.amplify) as number[] | undefined;
    const density = model.parameters.density ?? config.parameters.density;
    const partitionCount = explicitPartitions?.length ?? (density !== undefined ? 1 : 2);
    const amplifyCount = explicitAmplify?.length ?? (explicitPartitions === undefined && density !== undefined ? 1 : 2);
    if (partitionCount !== amplifyCount) {
      const where = model.parameters.amplify !== undefined ? ['models', index, 'parameters', 'amplify']
        : config.parameters.amplify !== undefined ? ['parameters', 'amplify'] : ['models', index, 'parameters'];
      const source = explicitPartitions ? `partitions has ${partitionCount}` : density !== undefined ? 'density means 1 partition' : `the default partitions have ${partitionCount}`;
      collector.problem(where, `amplify needs one factor per partition for ${model.name}: ${source}, amplify has ${amplifyCount}`);
    }
    if (explicitPartitions && density !== undefined) {
      const wherePath = model.parameters.density !== undefined ? ['models', index, 'parameters', 'density'] : ['parameters', 'density'];
      collector.warn(wherePath, `density is ignored for ${model.name} because partitions is given`);
    }
  });
}

/** Options that only some sparsifiers read: warn when given but the chosen sparsifier ignores them. */
const SPARSIFIER_ONLY: Record<string, string[]> = {
  gamma: ['magnitude_outliers'],
  epsilon: ['della_magprune'],
  dp_lambda: ['dp', 'owl_layer'],
  dp_module_outlier: ['dp'],
  dp_layer_outlier: ['dp', 'owl_layer'],
  prune_dense: ['dp', 'owl_layer'],
  partitions: ['dp'],
  amplify: ['dp'],
  amplify_dense: ['dp'],
};

function checkSparsifierOptions(collector: ProblemCollector, config: MergeConfig, schema: MethodSchema): void {
  const sparsifySpec = schema.params.find((spec) => spec.name === 'sparsify');
  if (!sparsifySpec) return;
  const sparsifier = (config.parameters.sparsify ?? sparsifySpec.default) as string;
  const levels: { params: ParamMap; path: PathSegment[] }[] = [
    { params: config.parameters, path: ['parameters'] },
    ...config.models.map((model, index) => ({ params: model.parameters, path: ['models', index, 'parameters'] as PathSegment[] })),
  ];
  for (const { params, path: levelPath } of levels) {
    for (const [name, users] of Object.entries(SPARSIFIER_ONLY)) {
      if (params[name] !== undefined && !users.includes(sparsifier)) {
        collector.warn([...levelPath, name], `${name} has no effect with sparsify: ${sparsifier} (it applies to ${users.join(', ')})`);
      }
    }
    if (params.density !== undefined && sparsifier === 'none') {
      collector.warn([...levelPath, 'density'], `density has no effect with sparsify: none (${schema.name} does not prune)`);
    }
  }
  // Constraints between density and gamma / epsilon, checked where both are plain numbers.
  config.models.forEach((model, index) => {
    if (model.isBase) return;
    const density = constantAt(model.parameters, 'density') ?? constantAt(config.parameters, 'density');
    if (density === undefined) return;
    const densityPath = model.parameters.density !== undefined ? ['models', index, 'parameters', 'density'] : ['parameters', 'density'];
    if (sparsifier === 'della_magprune') {
      const epsilon = constantAt(model.parameters, 'epsilon') ?? constantAt(config.parameters, 'epsilon')
        ?? (schema.params.find((spec) => spec.name === 'epsilon')?.default as number);
      if (!(density - epsilon > 0 && density + epsilon < 1)) {
        collector.problem(densityPath, `della_magprune needs 0 < density ± epsilon < 1 for ${model.name}, got density ${density}, epsilon ${epsilon}`);
      }
    }
    if (sparsifier === 'magnitude_outliers') {
      const gamma = constantAt(model.parameters, 'gamma') ?? constantAt(config.parameters, 'gamma')
        ?? (schema.params.find((spec) => spec.name === 'gamma')?.default as number);
      if (density + gamma > 1) {
        collector.problem(densityPath, `magnitude_outliers needs density + gamma ≤ 1 for ${model.name}, got density ${density}, gamma ${gamma}`);
      }
    }
  });
}

function checkRequired(collector: ProblemCollector, config: MergeConfig, schema: MethodSchema): void {
  for (const name of requiredParams[schema.name] ?? []) {
    const spec = schema.params.find((candidate) => candidate.name === name);
    if (!spec || config.parameters[name] !== undefined) continue;
    if (spec.scope === 'global') {
      collector.problem(['parameters'], `${schema.name} needs parameter ${name} (${spec.help})`);
      continue;
    }
    config.models.forEach((model, index) => {
      if (!model.isBase && model.parameters[name] === undefined) {
        collector.problem(['models', index, 'parameters'], `${schema.name} needs parameter ${name} for ${model.name}, per model or globally`);
      }
    });
  }
}

function checkModelCount(collector: ProblemCollector, config: MergeConfig, schema: MethodSchema, listKey: 'models' | 'slices'): void {
  const inputs = new Set(config.models.map((model) => model.model));
  if (config.baseModel) inputs.add(config.baseModel);
  const count = inputs.size;
  const countingNote = schema.needsBase ? ' (counting base_model)' : '';
  if (count < schema.minModels) {
    collector.problem([listKey], `${schema.name} needs at least ${schema.minModels} models${countingNote}, got ${count}`);
  }
  if (schema.maxModels !== undefined && count > schema.maxModels) {
    const exact = schema.maxModels === schema.minModels ? `exactly ${schema.maxModels}` : `at most ${schema.maxModels}`;
    collector.problem([listKey], `${schema.name} takes ${exact} models${countingNote}, got ${count}`);
  }
}

function checkSliceUse(collector: ProblemCollector, config: MergeConfig, method: string): void {
  const slices = config.slices ?? [];
  if (method === 'passthrough') {
    slices.forEach((slice, index) => {
      if (slice.sources.length !== 1) {
        collector.problem(['slices', index, 'sources'], `passthrough copies one model per slice; this slice has ${slice.sources.length} sources`);
      }
    });
    return;
  }
  if (slices.length > 1) {
    collector.problem(['slices'], `several slices are only supported with passthrough; ${method} takes one slice (or models:)`);
  }
}

// ---------------------------------------------------------------------------------------------

function validateDtype(collector: ProblemCollector, value: unknown, key: string): ComputeDtype | undefined {
  if (typeof value !== 'string') {
    collector.problem([key], `${key} must be one of ${DTYPES.join(', ')}, got ${describeType(value)}`);
    return undefined;
  }
  const lower = value.toLowerCase();
  if ((DTYPES as string[]).includes(lower)) return lower as ComputeDtype;
  if (lower in DTYPE_ALIASES) return DTYPE_ALIASES[lower];
  collector.problem([key], `${key} must be one of ${DTYPES.join(', ')}, got "${value}"${didYouMean(value, DTYPES)}`);
  return undefined;
}

function validateTokenizerSource(collector: ProblemCollector, value: unknown, fieldPath: PathSegment[],
  config: MergeConfig): string | undefined {
  if (typeof value !== 'string') {
    collector.problem(fieldPath, `tokenizer source must be base or a model name, got ${describeType(value)}`);
    return undefined;
  }
  if (value === 'union') {
    collector.problem(fieldPath, 'union is not supported yet; use base or a model name');
    return undefined;
  }
  if (value === 'base') {
    if (!config.baseModel) collector.problem(fieldPath, 'tokenizer source base needs a base_model');
    return value;
  }
  const names = config.models.map((model) => model.name);
  if (config.baseModelName) names.push(config.baseModelName);
  if (names.includes(value)) return value;
  // A different spelling of the same path (./ft0 vs ft0) is the same model: use its written name.
  const resolved = resolveModelPath(value, config.baseDir);
  const same = config.models.find((model) => model.model === resolved);
  if (same) return same.name;
  if (resolved === config.baseModel) return config.baseModelName;
  collector.problem(fieldPath, `tokenizer source "${value}" is neither base nor one of the models${didYouMean(value, ['base', ...names])}`);
  return undefined;
}

/** Validates a parsed config; `locate` maps field paths to lines when the YAML text is known. */
export function validateConfig(raw: unknown, options: ParseOptions, locate?: Locator): ParseResult {
  const collector = new ProblemCollector(options.file, locate);
  if (!isPlainObject(raw)) {
    collector.problem([], `a config must be a mapping (merge_method, models, parameters, …), got ${describeType(raw)}`);
    return { problems: collector.problems, warnings: collector.warnings };
  }
  collector.checkKeys(raw, TOP_LEVEL_KEYS, [], 'top-level key', UNSUPPORTED_KEYS);

  let method: string | undefined;
  let schema: MethodSchema | undefined;
  if (isAbsent(raw.merge_method)) {
    collector.problem(['merge_method'], `missing merge_method (one of ${methodNames.join(', ')})`);
  } else if (typeof raw.merge_method !== 'string') {
    collector.problem(['merge_method'], `merge_method must be a string, got ${describeType(raw.merge_method)}`);
  } else if (!(raw.merge_method in methodSchemas)) {
    collector.problem(['merge_method'], `unknown merge_method "${raw.merge_method}"${didYouMean(raw.merge_method, methodNames)} (valid: ${methodNames.join(', ')})`);
  } else {
    method = raw.merge_method;
    schema = methodSchemas[method];
  }

  const baseDir = options.baseDir;
  let baseModel: string | undefined;
  let baseModelName: string | undefined;
  if (!isAbsent(raw.base_model)) {
    baseModelName = validateModelName(collector, raw.base_model, ['base_model']);
    if (baseModelName !== undefined) baseModel = resolveModelPath(baseModelName, baseDir);
  }

  const parameters = validateParams(collector, schema, raw.parameters, ['parameters'], 'global');

  const hasModels = !isAbsent(raw.models);
  const hasSlices = !isAbsent(raw.slices);
  let models: ModelEntry[] = [];
  let slices: Slice[] | undefined;
  // Count and slice-shape rules are skipped when entries were dropped: they would only echo those problems.
  let inputsComplete = hasModels !== hasSlices;
  if (hasModels && hasSlices) {
    collector.problem(['slices'], 'give either models or slices, not both');
  } else if (!hasModels && !hasSlices) {
    collector.problem(['models'], 'missing models (a list of {model, parameters}) or slices');
  }
  if (hasModels) {
    const validated = validateModels(collector, schema, raw.models, baseDir, baseModel);
    models = validated.items;
    inputsComplete &&= validated.complete;
  }
  if (hasSlices && !hasModels) {
    const validated = validateSlices(collector, schema, raw.slices, baseDir);
    slices = validated.items;
    inputsComplete &&= validated.complete;
    models = modelsFromSlices(slices, baseModel);
  }

  const config: MergeConfig = {
    baseDir,
    mergeMethod: method ?? String(raw.merge_method),
    models,
    parameters,
    dtype: 'float32',
    warnings: [],
    raw,
  };
  if (options.file !== undefined) config.file = options.file;
  if (baseModel !== undefined) {
    config.baseModel = baseModel;
    config.baseModelName = baseModelName;
  }
  if (slices) {
    config.slices = slices;
    const ranges = slices.length === 1 ? slices[0].sources.map((source) => source.layerRange) : [];
    if (ranges.length > 0 && ranges.every((range) => range[0] === ranges[0][0] && range[1] === ranges[0][1])) {
      config.layerRange = [ranges[0][0], ranges[0][1]];
    }
  }
  if (!isAbsent(raw.dtype)) {
    const dtype = validateDtype(collector, raw.dtype, 'dtype');
    if (dtype) config.dtype = dtype;
  }
  if (!isAbsent(raw.out_dtype)) {
    const outDtype = validateDtype(collector, raw.out_dtype, 'out_dtype');
    if (outDtype) config.outDtype = outDtype;
  }
  if (!isAbsent(raw.name)) {
    if (typeof raw.name === 'string') config.name = raw.name;
    else collector.problem(['name'], `name must be a string, got ${describeType(raw.name)}`);
  }
  if (!isAbsent(raw.chat_template)) {
    collector.warn(['chat_template'], 'chat_template is accepted but ignored (the tokenizer files are copied as they are)');
  }

  if (!isAbsent(raw.tokenizer_source) && !isAbsent(raw.tokenizer)) {
    collector.problem(['tokenizer'], 'give either tokenizer_source or tokenizer, not both');
  } else if (!isAbsent(raw.tokenizer_source)) {
    const source = validateTokenizerSource(collector, raw.tokenizer_source, ['tokenizer_source'], config);
    if (source !== undefined) config.tokenizerSource = source;
  } else if (!isAbsent(raw.tokenizer)) {
    if (!isPlainObject(raw.tokenizer)) {
      collector.problem(['tokenizer'], `tokenizer must be a mapping {source: …}, got ${describeType(raw.tokenizer)}`);
    } else {
      collector.checkKeys(raw.tokenizer, TOKENIZER_KEYS, ['tokenizer'], 'tokenizer key');
      if (!isAbsent(raw.tokenizer.source)) {
        const source = validateTokenizerSource(collector, raw.tokenizer.source, ['tokenizer', 'source'], config);
        if (source !== undefined) config.tokenizerSource = source;
      }
      for (const ignored of ['tokens', 'pad_to_multiple_of']) {
        if (!isAbsent(raw.tokenizer[ignored])) collector.warn(['tokenizer', ignored], `${ignored} is accepted but ignored`);
      }
    }
  }

  if (typeof parameters.seed === 'number') config.seed = parameters.seed;
  if (parameters.int8_mask !== undefined) {
    collector.warn(['parameters', 'int8_mask'], 'int8_mask is accepted for mergekit compatibility and ignored');
  }

  if (schema && method) {
    if (schema.needsBase && !baseModel) {
      collector.problem(['base_model'], `${method} needs a base_model`);
    }
    if (inputsComplete) {
      checkModelCount(collector, config, schema, slices ? 'slices' : 'models');
      if (method === 'passthrough' && !slices && models.length > 1) {
        collector.problem(['models'], 'passthrough copies a single model; use slices to combine layer ranges of several');
      }
      if (slices) checkSliceUse(collector, config, method);
    }
    checkRequired(collector, config, schema);
    if (schema.needsBase) {
      config.models.forEach((model, index) => {
        if (model.isBase && Object.keys(model.parameters).length > 0) {
          collector.warn(['models', index, 'parameters'], `the parameters of the base model are ignored by ${method} (it is the reference, not merged as a task vector)`);
        }
      });
    }
    if (method === 'dppa') checkDppaBands(collector, config);
    checkSparsifierOptions(collector, config, schema);
  }

  if (collector.problemCount > 0) return { problems: collector.problems, warnings: collector.warnings };
  config.warnings = collector.warnings;
  return { config, problems: [], warnings: config.warnings };
}
