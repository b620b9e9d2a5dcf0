/**
 * dppa's public API: merge, plan, inspect, and the native core's low-level ops for
 * embedding. Everything async returns a Promise and keeps the event loop free.
 */
import { DppaError } from './errors';
import { parseByteSize } from './io/byte-size';
import { native } from './native';
import { InspectReport, inspectModel, PlanReport, planReport } from './plan/report';
import { planMerge } from './plan/plan';
import type { ProgressListener } from './run/progress';
import { runMerge, RunSummary } from './run/merge';

export interface MergeOptions {
  /** Folder relative model paths of an object config are resolved against (default: cwd). */
  baseDir?: string;
  /** Compute threads (default: available cores). */
  threads?: number;
  signal?: AbortSignal;
  onProgress?: ProgressListener;
  /** Replace an existing output folder (only once the new one is complete). */
  overwrite?: boolean;
  /** Largest output shard: bytes, or '5G' / '500M' (decimal units). Default 5G. */
  shardSize?: number | string;
  /** Overrides the config's `parameters.seed`. */
  seed?: number;
  /** Merge even when an input holds NaN/Inf (by default that is an error). */
  allowNonfinite?: boolean;
  /** Memory budget: bytes or '8G' (default: 60% of available memory). Peak RSS stays under it. */
  maxMemory?: number | string;
  /** 'cpu' (default), 'cuda', or 'auto' (the GPU when one is usable). */
  device?: Device;
  /** Memory-map the inputs instead of reading them (default false, or DPPA_MMAP=1). Same bytes either way. */
  mmap?: boolean;
  /** Write the output to the disk during the merge, not all at the final fsync (default true, or DPPA_WRITEBACK=0). */
  writeback?: boolean;
}

export type Device = 'cpu' | 'cuda' | 'auto';

function applyDevice(device: Device | undefined): void {
  if (device === undefined) return;
  try {
    native().setDevice(device);
  } catch (e) {
    throw new DppaError('E_ARGUMENT', (e as Error).message.replace(/^dppa: /, ''));
  }
}

function applyThreads(threads: number | undefined): void {
  if (threads === undefined) return;
  if (!Number.isInteger(threads) || threads < 1) throw new DppaError('E_ARGUMENT', `threads must be a positive integer, got ${threads}`);
  native().setThreads(threads);
}

/** Merge the models a config names (a mergekit-style object, or the path of a YAML file) into `outDir`. */
export async function merge(config: string | object, outDir: string, options: MergeOptions = {}): Promise<RunSummary> {
  applyThreads(options.threads);
  applyDevice(options.device);
  const plan = await planMerge(config, { native: native(), seed: options.seed, baseDir: options.baseDir });
  try {
    return await runMerge(plan, outDir, {
      signal: options.signal,
      onProgress: options.onProgress,
      overwrite: options.overwrite,
      shardSize: options.shardSize === undefined ? undefined : parseByteSize(options.shardSize),
      allowNonfinite: options.allowNonfinite,
      maxMemory: options.maxMemory === undefined ? undefined : parseByteSize(options.maxMemory),
      mmap: options.mmap,
      writeback: options.writeback,
    });
  } finally {
    await plan.close();
  }
}

/** What a merge will do: per-module DP densities (runs the statistics pass), bytes, memory. */
export async function plan(
  config: string | object,
  options: { threads?: number; seed?: number; statistics?: boolean; onProgress?: ProgressListener; signal?: AbortSignal; baseDir?: string } = {},
): Promise<PlanReport> {
  applyThreads(options.threads);
  return planReport(config, { ...options, native: native() });
}

/** Tensors, dtypes, parameter count and layers of a model folder or safetensors file. */
export function inspect(modelPath: string): Promise<InspectReport> {
  return inspectModel(modelPath);
}

/** The native core itself: decode/encode, delta, statistics, selection, the fused merge. */
export function ops() {
  return native();
}

export { DppaError } from './errors';
export type { ErrorCode } from './errors';
export type * from './binding';
export type { RunSummary } from './run/merge';
export type { ProgressEvent, ProgressListener } from './run/progress';
export type { PlanReport, InspectReport } from './plan/report';
export { ModelSource } from './io/model';
export { SafetensorsFile } from './io/safetensors';
export { ModelWriter } from './io/writer';
export { streamKey, randomStream } from './rng';
export { searchAmplification } from './search';
export type { SearchOptions, SearchResult, SearchStep } from './search';
