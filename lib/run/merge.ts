/**
 * The executor: statistics pass when the method needs model-wide numbers, then the merge
 * pass tensor by tensor in layer order. The next tensor's inputs are read while the native
 * core works on the current one, and the previous output is written meanwhile; at most two
 * tensors' inputs and two outputs are held, whatever the model size. Output goes to a
 * temporary folder beside the target, renamed into place only when complete.
 */
import type { BandRules, InputDType, OutputDType } from '../binding';
import { describeConfig } from '../config';
import { DppaError } from '../errors';
import { DTYPE_SIZE, torchDtypeName } from '../io/dtypes';
import { ModelWriter, removeStaleTemps, TOKENIZER_FILES } from '../io/writer';
import type { DpOffsets } from '../methods/dp-densities';
import type { TensorWork } from '../methods/recipe';
import { MergePlan, PlannedTensor, tokenizerFolder } from '../plan/plan';
import { envSwitch, mappingEnabled, TensorInputs as InputSource } from './inputs';
import { BufferSlot, defaultMemoryBudget, methodWork, planBuffers, TensorArena } from './memory';
import { gatherModelThresholds, ModelScopeRule } from './model-threshold';
import { checkAborted, ProgressListener, ProgressReporter } from './progress';
import { gatherDpOffsets, nonFiniteError } from './statistics';

export interface RunOptions {
  signal?: AbortSignal;
  onProgress?: ProgressListener;
  overwrite?: boolean;
  /** Largest shard in bytes (default 5e9). */
  shardSize?: number;
  /** Merge tensors holding NaN/Inf instead of failing. */
  allowNonfinite?: boolean;
  /** Memory budget in bytes (default: 60% of available memory). */
  maxMemory?: number;
  /**
   * Memory-map the inputs instead of reading them into buffers (default false, or DPPA_MMAP=1
   * in the environment; see lib/run/inputs.ts for when it pays). A file that cannot be
   * mapped is read.
   */
  mmap?: boolean;
  /**
   * Write the output to the disk as it is produced (sync_file_range, then drop it from the
   * page cache) rather than all in the final fsync (default true, or DPPA_WRITEBACK=0).
   */
  writeback?: boolean;
  /**
   * Reuse across runs of one plan (the DPA factor search): DP offsets from the statistics
   * pass, and magnitude selections, neither of which depends on the amplification factors.
   */
  reuse?: { dpOffsets?: (DpOffsets | undefined)[]; selections: Map<string, BandRules> };
}

export interface RunSummary {
  outDir: string;
  tensors: number;
  bytesRead: number;
  bytesWritten: number;
  seconds: number;
  warnings: string[];
}

/** What the statistics passes measured, per model; and selections to reuse. */
interface ModelStatistics {
  dpOffsets: (DpOffsets | undefined)[];
  modelScopes: (Map<string, ModelScopeRule> | undefined)[];
  methodStatistics?: unknown;
  selections?: Map<string, BandRules>;
}

interface TensorInputs {
  base: Uint8Array;
  models: Uint8Array[];
  /** Mapped views among them, unmapped once the tensor (and its write) is done. */
  mapped: Uint8Array[];
}

/** Byte length of input i (0 = the base, or the tensor a copy reads) of a tensor. */
function inputByteLength(plan: MergePlan, tensor: PlannedTensor, input: number): number {
  if (tensor.copyFrom) {
    if (input > 0) return 0;
    const { model, name } = tensor.copyFrom;
    return (model === 'base' ? plan.base : plan.models[model].source).tensors.get(name)!.byteLength;
  }
  const source = input === 0 ? plan.base : plan.models[input - 1].source;
  return source.tensors.get(tensor.name)!.byteLength;
}

/** Map a tensor's inputs, or read them into a slot's buffers (fresh ones without a slot). */
async function readInputs(plan: MergePlan, source: InputSource, tensor: PlannedTensor, slot: BufferSlot | undefined): Promise<TensorInputs> {
  const mapped: Uint8Array[] = [];
  const buffer = (i: number) => () => slot?.input(i);
  try {
    if (tensor.copyFrom) {
      const { model, name } = tensor.copyFrom;
      const from = model === 'base' ? plan.base : plan.models[model].source;
      return { base: await source.get(from, name, buffer(0), mapped), models: [], mapped };
    }
    const [base, ...models] = await Promise.all([
      source.get(plan.base, tensor.name, buffer(0), mapped),
      ...plan.models.map((m, i) => source.get(m.source, tensor.name, buffer(i + 1), mapped)),
    ]);
    return { base, models, mapped };
  } catch (e) {
    source.release(mapped);
    throw e;
  }
}

/** Elements [start, end) of a tensor's bytes. */
function elements(data: Uint8Array, dtype: InputDType | OutputDType, start: number, end: number): Uint8Array {
  const size = DTYPE_SIZE[dtype];
  return data.subarray(start * size, end * size);
}

async function copyOne(plan: MergePlan, tensor: PlannedTensor, bytes: Uint8Array, out: Uint8Array): Promise<Uint8Array> {
  const { dtype, scale = 1 } = tensor.copyFrom!;
  if (scale === 1 && dtype === tensor.outDtype) return bytes;
  await plan.native.linearCombine([{ data: bytes, dtype }], Float64Array.of(scale), out, tensor.outDtype);
  return out;
}

async function mergeOne(
  plan: MergePlan,
  tensor: PlannedTensor,
  inputs: TensorInputs,
  out: Uint8Array,
  statistics: ModelStatistics,
  allowNonfinite: boolean,
): Promise<Uint8Array> {
  if (tensor.copyFrom) return copyOne(plan, tensor, inputs.base, out);
  // Vocab tensors whose sizes differ are merged over the common rows only (plan/tensors.ts).
  const rowElements = tensor.shape.length > 0 && tensor.shape[0] > 0 ? tensor.numel / tensor.shape[0] : tensor.numel;
  const merged = tensor.shape.length > 0 ? tensor.mergedRows * rowElements : tensor.numel;
  const mergedShape = tensor.shape.length > 0 ? [tensor.mergedRows, ...tensor.shape.slice(1)] : tensor.shape;
  const work: TensorWork = {
    tensor: { name: tensor.name, shape: mergedShape, numel: merged, role: tensor.role, numLayers: plan.numLayers },
    base: { data: elements(inputs.base, tensor.inputDtypes.base, 0, merged), dtype: tensor.inputDtypes.base },
    models: plan.models.map((m, i) => ({
      name: m.name,
      input: { data: elements(inputs.models[i], tensor.inputDtypes.models[i], 0, merged), dtype: tensor.inputDtypes.models[i] },
      params: plan.params(i, tensor),
      dpOffsets: statistics.dpOffsets[i],
      modelScope: statistics.modelScopes[i]?.get(tensor.name),
    })),
    params: plan.params(null, tensor),
    seed: plan.seed,
    out: elements(out, tensor.outDtype, 0, merged),
    outDtype: tensor.outDtype,
    native: plan.native,
    selectionCache: statistics.selections,
    methodStatistics: statistics.methodStatistics,
  };
  const result = await plan.method.mergeTensor(work);
  if (!allowNonfinite) {
    const labels = plan.method.includesBaseEntry ? plan.models.map((m) => m.name) : ['base', ...plan.models.map((m) => m.name)];
    result.nonFinite.forEach((count, i) => {
      if (count > 0) throw nonFiniteError(labels[i] ?? `input ${i}`, tensor.name, count);
    });
  }
  if (merged < tensor.numel) {
    // The base's further rows (added tokens, padding) are kept, never truncated.
    const tail = { data: elements(inputs.base, tensor.inputDtypes.base, merged, tensor.numel), dtype: tensor.inputDtypes.base };
    await plan.native.linearCombine([tail], Float64Array.of(1), elements(out, tensor.outDtype, merged, tensor.numel), tensor.outDtype);
  }
  return out;
}

export function modelCard(plan: MergePlan): string {
  const models = plan.models.map((m) => `- \`${m.name}\``).join('\n');
  return [
    '---',
    'library_name: transformers',
    'tags:',
    '- merge',
    '- dppa',
    `- ${plan.config.mergeMethod}`,
    '---',
    `# ${plan.config.name ?? 'Merged model'}`,
    '',
    `This model was merged with [dppa](https://www.npmjs.com/package/dppa) using the **${plan.config.mergeMethod}** method` +
      ` (${plan.method.schema.summary}).`,
    '',
    `Base model: \`${plan.config.baseModelName ?? plan.config.baseModel ?? plan.models[0]?.name}\``,
    '',
    'Models merged:',
    '',
    models,
    '',
    '## Configuration',
    '',
    '```yaml',
    describeConfig(plan.config).trimEnd(),
    '```',
    '',
  ].join('\n');
}

function outputConfig(plan: MergePlan): Record<string, unknown> | undefined {
  const config = plan.base.config ? { ...plan.base.config } : undefined;
  if (!config) return undefined;
  const merged = plan.tensors.find((t) => t.action === 'merge');
  if (merged) config.torch_dtype = torchDtypeName(merged.outDtype);
  if (plan.outputLayers !== undefined) config.num_hidden_layers = plan.outputLayers;
  return config;
}

export async function runMerge(plan: MergePlan, outDir: string, options: RunOptions = {}): Promise<RunSummary> {
  const started = process.hrtime.bigint();
  const progress = new ProgressReporter(options.onProgress);
  const allowNonfinite = options.allowNonfinite ?? false;
  checkAborted(options.signal);
  const budget = options.maxMemory ?? defaultMemoryBudget();
  const buffers = planBuffers(plan.tensors, plan.models.length, (t, i) => inputByteLength(plan, t, i), budget, methodWork(plan));

  // Temporary folders of killed runs (dead pids) go; a model a kill left aside mid-overwrite comes back.
  await removeStaleTemps(outDir);
  const writeBehind = options.writeback ?? envSwitch('DPPA_WRITEBACK', true);
  const writer = await ModelWriter.create(outDir, {
    tensors: plan.tensors.map((t) => ({ name: t.name, dtype: t.outDtype as OutputDType, shape: t.shape })),
    maxShardBytes: options.shardSize,
    overwrite: options.overwrite ?? false,
    writeback: writeBehind ? (fd, offset, length) => plan.native.writeback(fd, offset, length) : undefined,
    startWriteback: writeBehind ? (fd, offset, length) => plan.native.startWriteback(fd, offset, length) : undefined,
  });
  const source = new InputSource(plan.native, mappingEnabled(options.mmap));
  const tensors = plan.tensors;
  const arena = new TensorArena(buffers, (n) => plan.native.allocateBuffer(n));
  let pendingRead: Promise<TensorInputs> | undefined;
  let pendingWrite: Promise<void> | undefined;
  // Inputs whose mappings are released once the write that may still read them has landed.
  let previous: TensorInputs | undefined;
  let current: TensorInputs | undefined;
  try {
    const dpOffsets = options.reuse?.dpOffsets ?? (await gatherDpOffsets(plan, { signal: options.signal, progress, allowNonfinite, budget, source, scratch: () => arena.buffer() }));
    if (options.reuse) options.reuse.dpOffsets = dpOffsets;
    const modelScopes = await gatherModelThresholds(plan, { signal: options.signal, progress });
    const indexOf = new Map(tensors.map((t, i) => [t, i]));
    const mergedTensors = tensors.filter((t) => t.action === 'merge').length;
    const methodReads = (plan.method.statisticsPasses?.(plan) ?? 0) * mergedTensors;
    if (methodReads > 0) progress.start('statistics', methodReads);
    // A read's step is counted when the method asks for the next one (it is done with this one).
    let inUse: PlannedTensor | undefined;
    const stepDone = () => {
      if (inUse && methodReads > 0) progress.step(inUse.name, inUse.numel);
      inUse = undefined;
    };
    const methodStatistics = await plan.method.gatherStatistics?.(plan, async (t) => {
      checkAborted(options.signal);
      stepDone();
      inUse = t;
      // Read, not mapped: the method keeps no handle by which its inputs could be released.
      // Into the tensor's arena slot (free until the merge pass; the method is done with one
      // tensor's inputs before it reads the next), so repeated passes fault in no fresh memory.
      const index = indexOf.get(t);
      const inputs = await readInputs(plan, new InputSource(plan.native, false), t, index === undefined ? undefined : arena.slot(index, t.outputBytes));
      return {
        base: { data: inputs.base, dtype: t.inputDtypes.base },
        models: inputs.models.map((data, i) => ({ data, dtype: t.inputDtypes.models[i] })),
      };
    }, (passes) => {
      if (methodReads > 0) progress.extend(passes * mergedTensors);
    });
    stepDone();

    const statistics: ModelStatistics = { dpOffsets, modelScopes, methodStatistics, selections: options.reuse?.selections };

    progress.start('merge', plan.tensors.length);
    const slotOf = (i: number) => arena.slot(i, tensors[i].outputBytes);
    pendingRead = tensors.length > 0 ? readInputs(plan, source, tensors[0], slotOf(0)) : undefined;
    for (let i = 0; i < tensors.length; i++) {
      checkAborted(options.signal);
      current = await pendingRead!;
      pendingRead = undefined;
      // This tensor's buffers are not the previous one's: compute while its write lands.
      const merging = mergeOne(plan, tensors[i], current, slotOf(i).out(tensors[i].outputBytes), statistics, allowNonfinite);
      merging.catch(() => undefined);
      // The previous write may still reference the previous tensor's buffers (or its mapped
      // input, for a plain copy), where the next tensor's go: let it land first.
      await pendingWrite;
      if (previous) source.release(previous.mapped);
      previous = undefined;
      const overlap = arena.overlaps(i);
      if (overlap) {
        // Read the next tensor while this one is computed; a failed read surfaces when awaited.
        pendingRead = readInputs(plan, source, tensors[i + 1], slotOf(i + 1));
        pendingRead.catch(() => undefined);
      }
      const out = await merging;
      pendingWrite = writer.writeTensor(tensors[i].name, out);
      pendingWrite.catch(() => undefined);
      previous = current;
      current = undefined;
      if (!overlap) {
        // This tensor and the next do not both fit: serially, once this one is written.
        await pendingWrite;
        source.release(previous.mapped);
        previous = undefined;
        if (i + 1 < tensors.length) pendingRead = readInputs(plan, source, tensors[i + 1], slotOf(i + 1));
      }
      progress.step(tensors[i].name, tensors[i].numel);
    }
    await pendingWrite;
    if (previous) source.release(previous.mapped);
    checkAborted(options.signal);

    progress.start('finish', 1);
    await writer.finish({
      config: outputConfig(plan),
      copyFiles: { from: tokenizerFolder(plan), names: TOKENIZER_FILES },
      modelCard: modelCard(plan),
    });
    progress.step('', 0);
  } catch (e) {
    const next = await pendingRead?.catch(() => undefined);
    await pendingWrite?.catch(() => undefined);
    // Nothing reads these any more: unmap now rather than at collection. The current tensor's
    // are left to the collector: a native job that failed beside another may still read them
    // (the job keeps them alive until it settles).
    for (const inputs of [previous, next]) if (inputs) source.release(inputs.mapped);
    await writer.abort();
    throw e instanceof DppaError ? e : new DppaError('E_IO', (e as Error).message ?? String(e));
  }
  return {
    outDir,
    tensors: plan.tensors.length,
    bytesRead: plan.bytesToRead,
    bytesWritten: plan.bytesToWrite,
    seconds: Number(process.hrtime.bigint() - started) / 1e9,
    warnings: plan.warnings,
  };
}

