/**
 * The memory budget. Peak memory is bounded by the budget, never by model size: the merge
 * pass holds the inputs and output of at most two tensors (one being computed, the next
 * being read, the previous being written), in buffers allocated once and reused; when two
 * do not fit it runs serially, one tensor at a time; when one does not fit it refuses
 * before any work starts.
 */
import * as fs from 'fs';
import * as os from 'os';
import { DppaError } from '../errors';
import { formatByteSize } from '../io/byte-size';
import type { PlannedTensor } from '../plan/tensors';

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
  /** Two slots (read-ahead and write-behind overlap) or one (serial). */
  slots: 1 | 2;
}

function inputSizes(t: PlannedTensor, models: number, sizeOf: (t: PlannedTensor, input: number) => number): number[] {
  return Array.from({ length: models + 1 }, (_, i) => sizeOf(t, i));
}

/**
 * Size the reusable buffers for a plan under a budget (bytes, including the runtime
 * overhead). `sizeOf(t, i)` is input i's byte length for tensor t (0 = base).
 */
export function planBuffers(
  tensors: PlannedTensor[],
  models: number,
  sizeOf: (t: PlannedTensor, input: number) => number,
  budget: number,
): BufferPlan {
  const inputBytes = new Array<number>(models + 1).fill(0);
  let outputBytes = 0;
  let largest = { bytes: 0, name: '' };
  for (const t of tensors) {
    const sizes = inputSizes(t, models, sizeOf);
    sizes.forEach((s, i) => (inputBytes[i] = Math.max(inputBytes[i], s)));
    outputBytes = Math.max(outputBytes, t.outputBytes);
    const own = sizes.reduce((a, b) => a + b, 0) + t.outputBytes;
    if (own > largest.bytes) largest = { bytes: own, name: t.name };
  }
  const oneSlot = inputBytes.reduce((a, b) => a + b, 0) + outputBytes;
  const usable = budget - RUNTIME_OVERHEAD_BYTES;
  if (largest.bytes > usable) {
    throw new DppaError(
      'E_MEMORY',
      `tensor ${largest.name} needs ${formatByteSize(largest.bytes)} of buffers (its inputs and output), more than the ` +
        `memory budget of ${formatByteSize(budget)} allows (${formatByteSize(RUNTIME_OVERHEAD_BYTES)} are kept for the runtime); ` +
        `raise --max-memory (API: maxMemory)`,
    );
  }
  // Buffers are sized for the largest tensor of each input; when those exceed the budget
  // although every single tensor fits, run serially with one slot.
  return { inputBytes, outputBytes, slots: 2 * oneSlot <= usable ? 2 : 1 };
}

/** Allocates a buffer for tensor data (the addon's huge-page-backed allocateBuffer). */
export type Allocate = (bytes: number) => Uint8Array;

/**
 * A set of buffers reused tensor after tensor: one per input, plus one for the output. Each is
 * allocated on first use: inputs that are memory-mapped (lib/run/inputs.ts) never need theirs.
 */
export class BufferSlot {
  private readonly inputs: (Uint8Array | undefined)[];
  private output: Uint8Array | undefined;

  constructor(private readonly plan: BufferPlan, private readonly allocate: Allocate) {
    this.inputs = plan.inputBytes.map(() => undefined);
  }

  input(i: number): Uint8Array {
    return (this.inputs[i] ??= this.allocate(this.plan.inputBytes[i]));
  }

  out(bytes: number): Uint8Array {
    return (this.output ??= this.allocate(this.plan.outputBytes)).subarray(0, bytes);
  }
}
