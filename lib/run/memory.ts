/**
 * The memory budget. Peak memory is bounded by the budget, never by model size: the merge
 * pass holds the inputs and output of at most two tensors (one being computed, the next
 * being read, the previous being written), in one arena allocated once and reused; where two
 * consecutive tensors do not fit it runs serially, one tensor at a time; when one does not
 * fit it refuses before any work starts.
 */
import * as fs from 'fs';
import * as os from 'os';
import { DppaError } from '../errors';
import { formatByteSize } from '../io/byte-size';
import type { PlannedTensor } from '../plan/tensors';
import type { MergePlan } from '../plan/plan';

/**
 * What the process holds besides tensor buffers: Node, V8's heap, the addon, the pool. A CLI
 * merge of a tiny model peaks near 65 MB (measured by test/85); this keeps a margin.
 */
export const RUNTIME_OVERHEAD_BYTES = 100e6;

/** Bytes the system can give without swapping (MemAvailable), or os.freemem(). */
export function availableMemory(): number {
  try {
    const match = /^MemAvailable:\s+(\d+) kB/m.exec(fs.readFileSync('/proc/meminfo', 'utf8'));
    if (match) return Number(match[1]) * 1024;
  } catch {
    // not Linux: fall through
  }
  return os.freemem();
}

/** The default budget: 60% of what is available now, leaving room for the page cache. */
export function defaultMemoryBudget(): number {
  return Math.floor(0.6 * availableMemory());
}

export interface BufferPlan {
  /** Largest bytes each input needs (base first, then the models), and the output. */
  inputBytes: number[];
  outputBytes: number;
  /**
   * Two tensors at once (read-ahead and write-behind overlap) wherever a consecutive pair
   * fits the arena, or one (serial) where none does.
   */
  slots: 1 | 2;
  /** The one buffer all tensor buffers are carved from. */
  arenaBytes: number;
  /** Per tensor, in plan order: its inputs' and output's bytes, each rounded to ALIGN_BYTES. */
  tensorBytes: number[];
  /** Per tensor: its inputs' byte lengths (0 for inputs it does not read). */
  tensorInputs: number[][];
}

/** Every buffer carved from the arena starts on a page. */
export const ALIGN_BYTES = 4096;

function align(bytes: number): number {
  return Math.ceil(bytes / ALIGN_BYTES) * ALIGN_BYTES;
}

function inputSizes(t: PlannedTensor, models: number, sizeOf: (t: PlannedTensor, input: number) => number): number[] {
  return Array.from({ length: models + 1 }, (_, i) => sizeOf(t, i));
}

/**
 * Size the tensor buffers for a plan under a budget (bytes, including the runtime overhead).
 * `sizeOf(t, i)` is input i's byte length for tensor t (0 = base). `work`: memory the method
 * holds besides (PCB's float32 work buffers), taken from the budget first.
 *
 * All buffers come from one arena, reused tensor after tensor: a tensor's inputs and output
 * sit together at the arena's bottom or top, alternately, so a tensor and the next one never
 * overlap when both fit. The arena is sized for the largest consecutive pair, not for the
 * largest tensor twice: a model whose one huge tensor (the embeddings) sits beside small ones
 * needs little more than that tensor. Fresh memory is costly (every page is zeroed on first
 * touch, and in VMs faulted in from the host too), so less of it is also faster.
 */
export function planBuffers(
  tensors: PlannedTensor[],
  models: number,
  sizeOf: (t: PlannedTensor, input: number) => number,
  budget: number,
  work: { bytes: number; what: string } = { bytes: 0, what: '' },
): BufferPlan {
  const inputBytes = new Array<number>(models + 1).fill(0);
  let outputBytes = 0;
  let largest = { bytes: 0, name: '' };
  const tensorBytes: number[] = [];
  const tensorInputs: number[][] = [];
  for (const t of tensors) {
    const sizes = inputSizes(t, models, sizeOf);
    sizes.forEach((s, i) => (inputBytes[i] = Math.max(inputBytes[i], s)));
    outputBytes = Math.max(outputBytes, t.outputBytes);
    const own = sizes.reduce((a, b) => a + b, 0) + t.outputBytes;
    if (own > largest.bytes) largest = { bytes: own, name: t.name };
    tensorBytes.push(sizes.reduce((a, b) => a + align(b), 0) + align(t.outputBytes));
    tensorInputs.push(sizes);
  }
  const usable = budget - RUNTIME_OVERHEAD_BYTES - work.bytes;
  if (largest.bytes > usable) {
    const kept = work.bytes > 0 ? `${formatByteSize(RUNTIME_OVERHEAD_BYTES)} are kept for the runtime and ${formatByteSize(work.bytes)} for ${work.what}` : `${formatByteSize(RUNTIME_OVERHEAD_BYTES)} are kept for the runtime`;
    throw new DppaError(
      'E_MEMORY',
      `tensor ${largest.name} needs ${formatByteSize(largest.bytes)} of buffers (its inputs and output), more than the ` +
        `memory budget of ${formatByteSize(budget)} allows (${kept}); raise --max-memory (API: maxMemory)`,
    );
  }
  const single = Math.max(0, ...tensorBytes);
  let pair = single;
  for (let i = 0; i + 1 < tensorBytes.length; i++) pair = Math.max(pair, tensorBytes[i] + tensorBytes[i + 1]);
  // The page rounding may push the largest tensor a little past the allowance: it still fits.
  const arenaBytes = pair <= usable ? pair : single;
  const overlapping = tensorBytes.some((b, i) => i + 1 < tensorBytes.length && b + tensorBytes[i + 1] <= arenaBytes);
  return { inputBytes, outputBytes, slots: overlapping ? 2 : 1, arenaBytes, tensorBytes, tensorInputs };
}

/** The memory a plan's method holds besides the tensor buffers (MethodDefinition.workBytes). */
export function methodWork(plan: MergePlan): { bytes: number; what: string } {
  const largest = Math.max(0, ...plan.tensors.filter((t) => t.action === 'merge').map((t) => t.numel));
  return { bytes: plan.method.workBytes?.(plan, largest) ?? 0, what: `${plan.config.mergeMethod}'s work buffers` };
}

/** Allocates a buffer for tensor data (the addon's huge-page-backed allocateBuffer). */
export type Allocate = (bytes: number) => Uint8Array;

/** The buffers of one tensor, carved from the arena (see planBuffers). */
export class BufferSlot {
  constructor(
    private readonly arena: TensorArena,
    private readonly start: number,
    private readonly inputOffsets: number[],
    private readonly outputOffset: number,
    private readonly inputLengths: number[],
    private readonly outputLength: number,
  ) {}

  input(i: number): Uint8Array {
    const at = this.start + this.inputOffsets[i];
    return this.arena.buffer().subarray(at, at + this.inputLengths[i]);
  }

  out(bytes: number): Uint8Array {
    if (bytes > this.outputLength) throw new DppaError('E_ARGUMENT', `output of ${bytes} bytes does not fit its buffer of ${this.outputLength}`);
    const at = this.start + this.outputOffset;
    return this.arena.buffer().subarray(at, at + bytes);
  }
}

/** The one buffer of a plan's tensor buffers, allocated on first use. */
export class TensorArena {
  private memory: Uint8Array | undefined;

  constructor(readonly plan: BufferPlan, private readonly allocate: Allocate) {}

  buffer(): Uint8Array {
    return (this.memory ??= this.allocate(this.plan.arenaBytes));
  }

  /** Whether tensor i + 1's buffers can be filled while tensor i's are in use. */
  overlaps(i: number): boolean {
    const sizes = this.plan.tensorBytes;
    return i + 1 < sizes.length && sizes[i] + sizes[i + 1] <= this.plan.arenaBytes;
  }

  /** Tensor i's buffers: at the bottom for even i, at the top for odd i. */
  slot(i: number, outputBytes: number): BufferSlot {
    const lengths = this.plan.tensorInputs[i];
    const offsets: number[] = [];
    let cursor = 0;
    for (const n of lengths) {
      offsets.push(cursor);
      cursor += align(n);
    }
    const outputOffset = cursor;
    const bytes = this.plan.tensorBytes[i];
    const start = i % 2 === 0 ? 0 : this.plan.arenaBytes - bytes;
    return new BufferSlot(this, start, offsets, outputOffset, lengths, outputBytes);
  }
}
