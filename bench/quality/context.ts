/** What every experiment stage needs: the data, the checkpoints and a scratch folder for merges. */
import * as path from 'path';
import { Split, Task } from './datasets';
import { accuracy } from './evaluate';
import { Checkpoint } from './checkpoints';
import { Weights } from './model';
import { Regime, Settings } from './settings';

export interface BenchContext {
  settings: Settings;
  tasks: Task[];
  base: Checkpoint;
  /** `${task}/${regime}` → fine-tune. */
  finetunes: Map<string, Checkpoint>;
  scratch: string;
  log: (msg: string) => void;
}

export const ftKey = (task: string, regime: Regime) => `${task}/${regime}`;

export function finetuneOf(ctx: BenchContext, task: string, regime: Regime): Checkpoint {
  const ft = ctx.finetunes.get(ftKey(task, regime));
  if (!ft) throw new Error(`no fine-tune for ${task} (${regime})`);
  return ft;
}

/** Accuracy of a (pruned or merged) backbone with the task's own fine-tuned head. */
export function taskAccuracy(ctx: BenchContext, backbone: Weights, task: Task, regime: Regime, split: 'validation' | 'test'): number {
  const head = finetuneOf(ctx, task.name, regime).heads.get(task.name)!;
  const data: Split = task[split];
  return accuracy(ctx.settings.arch, backbone, head, data);
}

const denseCache = new Map<string, number>();

export function denseAccuracy(ctx: BenchContext, task: Task, regime: Regime, split: 'validation' | 'test'): number {
  const key = `${task.name}/${regime}/${split}`;
  let acc = denseCache.get(key);
  if (acc === undefined) {
    acc = taskAccuracy(ctx, finetuneOf(ctx, task.name, regime).backbone, task, regime, split);
    denseCache.set(key, acc);
  }
  return acc;
}

let scratchCounter = 0;
export function scratchDir(ctx: BenchContext, label: string): string {
  return path.join(ctx.scratch, `${label.replace(/[^a-z0-9_.-]/gi, '_')}-${scratchCounter++}`);
}

/** The DPPA authors' search score: the geometric mean of accuracies normalized by the dense fine-tunes. */
export function geometricMean(values: number[]): number {
  return Math.exp(values.reduce((s, v) => s + Math.log(Math.max(v, 1e-9)), 0) / values.length);
}
