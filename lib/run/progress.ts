/** Progress events of a long merge, and the abort check between tensors. */
import { DppaError } from '../errors';

export type Phase = 'statistics' | 'merge' | 'finish';

export interface ProgressEvent {
  phase: Phase;
  /** Steps (tensors) done in this phase, and their total. */
  done: number;
  total: number;
  /** The tensor just finished. */
  tensor?: string;
  /** Elements processed so far in this phase. */
  elements: number;
  elapsedSeconds: number;
}

export type ProgressListener = (event: ProgressEvent) => void;

export class ProgressReporter {
  private phase: Phase = 'merge';
  private done = 0;
  private total = 0;
  private elements = 0;
  private readonly startedAt = process.hrtime.bigint();

  constructor(private readonly listener?: ProgressListener) {}

  start(phase: Phase, total: number): void {
    this.phase = phase;
    this.done = 0;
    this.total = total;
    this.elements = 0;
    this.emit();
  }

  /** The phase has `steps` more than it started with. */
  extend(steps: number): void {
    this.total += steps;
    this.emit();
  }

  step(tensor: string, elements: number): void {
    this.done++;
    this.elements += elements;
    this.emit(tensor);
  }

  private emit(tensor?: string): void {
    if (!this.listener) return;
    const elapsedSeconds = Number(process.hrtime.bigint() - this.startedAt) / 1e9;
    this.listener({ phase: this.phase, done: this.done, total: this.total, tensor, elements: this.elements, elapsedSeconds });
  }
}

export function checkAborted(signal?: AbortSignal): void {
  if (signal?.aborted) throw new DppaError('E_ABORTED', 'the merge was aborted; nothing was written at the target');
}
