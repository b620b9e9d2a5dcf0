/**
 * End to end: a generated Llama-shaped family (base + 3 fine-tunes, bf16) merged through the
 * CLI (`node bin/dppa.js merge CONFIG OUT -j T`), against the read bound: plain sequential
 * positional reads of the same files into one reused buffer, from the page cache, in the
 * same run. Each method is merged twice and the fastest kept. Beside it, the write bound: the
 * merged model's bytes written durably the way the merge writes them, with nothing computed.
 * Peak RSS is the merge processes' high-water mark.
 */
import { spawn } from 'child_process';
import * as fs from 'fs';
import { promises as fsp } from 'fs';
import * as path from 'path';
import { writeLlamaFamily, LlamaShape, llamaTensors } from '../lib/synth/llama';
import type { NativeBinding } from '../lib/binding';
import { ModelWriter } from '../lib/io/writer';
import { native } from '../lib/native';
import { timeOnce } from './measure';

export const REPO_ROOT = path.resolve(__dirname, '..', '..');
export const CACHE_DIR = path.join(REPO_ROOT, 'bench', 'cache');

export const FULL_SHAPE: LlamaShape = { layers: 16, hidden: 2048, intermediate: 5632, vocab: 32000, heads: 16 };
export const QUICK_SHAPE: LlamaShape = { layers: 8, hidden: 768, intermediate: 2048, vocab: 32000, heads: 12 };
const FINE_TUNES = 3;
const SEED = 1;

export function paramsOf(shape: LlamaShape): number {
  return llamaTensors(shape, 'BF16').reduce((s, t) => s + t.shape.reduce((a, b) => a * b, 1), 0);
}

/** Input bytes (base + fine-tunes) plus one output model, plus 10% slack. */
export function diskNeeded(shape: LlamaShape): number {
  return Math.ceil(paramsOf(shape) * 2 * (FINE_TUNES + 2) * 1.1);
}

export function familyKey(shape: LlamaShape): string {
  return `llama-L${shape.layers}-h${shape.hidden}-i${shape.intermediate}-v${shape.vocab}-a${shape.heads}-k${FINE_TUNES}-bf16-s${SEED}`;
}

async function freeBytes(dir: string): Promise<number> {
  await fsp.mkdir(dir, { recursive: true });
  const s = await fsp.statfs(dir);
  return s.bavail * s.bsize;
}

export interface Family {
  dir: string;
  shape: LlamaShape;
  params: number;
  files: string[];
  bytes: number;
  generated_seconds: number | null;
  /** Why the shape is smaller than asked, if it is. */
  shrunk?: string;
}

/** The cached family of this shape (generated when missing), shrunk by layers to fit the disk. */
export async function ensureFamily(wanted: LlamaShape, log: (line: string) => void): Promise<Family> {
  let shape = { ...wanted };
  let shrunk: string | undefined;
  const cachedOk = (s: LlamaShape) => fs.existsSync(path.join(CACHE_DIR, familyKey(s), 'COMPLETE'));
  const free = await freeBytes(CACHE_DIR);
  while (!cachedOk(shape) && diskNeeded(shape) > free && shape.layers > 1) {
    shape = { ...shape, layers: shape.layers - 1 };
    shrunk = `only ${(free / 1e9).toFixed(1)} GB free under ${CACHE_DIR}: ${wanted.layers} layers need ${(diskNeeded(wanted) / 1e9).toFixed(1)} GB; using ${shape.layers}`;
  }
  if (shrunk) log(`  ${shrunk}`);
  const dir = path.join(CACHE_DIR, familyKey(shape));
  let generated: number | null = null;
  if (!cachedOk(shape)) {
    log(`  generating ${familyKey(shape)} (${(paramsOf(shape) / 1e6).toFixed(0)}M params x ${FINE_TUNES + 1} models) ...`);
    await fsp.rm(dir, { recursive: true, force: true });
    generated = await timeOnce(() =>
      writeLlamaFamily(dir, { ...shape, fineTunes: FINE_TUNES, dtype: 'BF16', seed: SEED, shardBytes: 1e9, overwrite: true }),
    );
    await fsp.writeFile(path.join(dir, 'COMPLETE'), `${new Date().toISOString()}\n`);
    log(`  generated in ${generated.toFixed(1)} s`);
  }
  const files: string[] = [];
  for (const model of ['base', ...Array.from({ length: FINE_TUNES }, (_, i) => `ft${i}`)]) {
    const m = path.join(dir, model);
    for (const f of (await fsp.readdir(m)).sort()) if (f.endsWith('.safetensors')) files.push(path.join(m, f));
  }
  let bytes = 0;
  for (const f of files) bytes += (await fsp.stat(f)).size;
  return { dir, shape, params: paramsOf(shape), files, bytes, generated_seconds: generated, shrunk };
}

/** Seconds to read every file once, sequentially, 64 MiB positional reads into one buffer. */
export function readAll(files: string[], buffer: Buffer): number {
  const start = process.hrtime.bigint();
  for (const f of files) {
    const fd = fs.openSync(f, 'r');
    try {
      let position = 0;
      for (;;) {
        const got = fs.readSync(fd, buffer, 0, buffer.length, position);
        if (got === 0) break;
        position += got;
      }
    } finally {
      fs.closeSync(fd);
    }
  }
  return Number(process.hrtime.bigint() - start) / 1e9;
}

/**
 * Seconds to write `bytes` durably through the merge's own output path (ModelWriter with its
 * write-behind: 16 MiB pieces, each started to the disk at once, then waited for, flushed and
 * dropped; fsync and rename at the end), from one reused 16 MiB buffer, with no computing. The
 * output's share of the I/O floor: the disk is often slower to take the output than the page
 * cache is to give the inputs.
 */
export async function writeDurably(dir: string, bytes: number, native: Pick<NativeBinding, 'startWriteback' | 'writeback'>): Promise<number> {
  const piece = Buffer.alloc(16 << 20, 0x5a);
  const out = path.join(dir, `write-bound-${process.pid}`);
  const length = 2 * Math.ceil(bytes / 2);
  const start = process.hrtime.bigint();
  const writer = await ModelWriter.create(out, {
    tensors: [{ name: 'bytes', dtype: 'BF16', shape: [length / 2] }],
    overwrite: true,
    writeback: (fd, offset, n) => native.writeback(fd, offset, n),
    startWriteback: (fd, offset, n) => native.startWriteback(fd, offset, n),
  });
  try {
    for (let at = 0; at < length; at += piece.length) await writer.writeTensorPart('bytes', at, piece.subarray(0, Math.min(piece.length, length - at)));
    await writer.finish();
  } catch (e) {
    await writer.abort();
    throw e;
  }
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  await fsp.rm(out, { recursive: true, force: true });
  return seconds;
}

export interface MergeRun {
  seconds: number;
  /** User + system CPU seconds of the merge process (GNU time), null without it. */
  cpu_seconds: number | null;
  peak_rss_mb: number;
  rss_source: string;
}

function vmHwmKb(pid: number): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** One CLI merge; peak RSS from GNU time's %M when present, else by polling VmHWM. */
export async function cliMerge(config: string, out: string, threads: number, extraArgs: string[] = []): Promise<MergeRun> {
  await fsp.rm(out, { recursive: true, force: true });
  const cli = path.join(REPO_ROOT, 'bin', 'dppa.js');
  const args = [cli, 'merge', config, out, '-j', String(threads), '--overwrite', '--quiet', ...extraArgs];
  const useTime = fs.existsSync('/usr/bin/time');
  const marker = 'DPPA_BENCH_MAXRSS_KB';
  const start = process.hrtime.bigint();
  const child = useTime
    ? spawn('/usr/bin/time', ['-f', `${marker} %M %U %S`, process.execPath, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    : spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  let stdout = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  let polled = 0;
  const poll = useTime ? undefined : setInterval(() => (polled = Math.max(polled, vmHwmKb(child.pid!))), 20);
  const code: number = await new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (c) => resolve(c ?? -1));
  });
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  if (poll) clearInterval(poll);
  if (code !== 0) throw new Error(`merge ${path.basename(config)} failed (exit ${code}): ${stderr.trim().slice(-2000)} ${stdout.trim().slice(-500)}`);
  const m = new RegExp(`${marker} (\\d+) ([\\d.]+) ([\\d.]+)`).exec(stderr);
  const kb = m ? Number(m[1]) : polled;
  return { seconds, cpu_seconds: m ? Number(m[2]) + Number(m[3]) : null, peak_rss_mb: kb / 1024, rss_source: m ? '/usr/bin/time %M' : '/proc/<pid>/status VmHWM (polled)' };
}

export function writeConfigs(fam: Family): { ties: string; dppa: string; pcb: string } {
  const models = (params?: string) =>
    Array.from({ length: FINE_TUNES }, (_, i) => `  - model: ${JSON.stringify(path.join(fam.dir, `ft${i}`))}\n` + (params ? `    parameters: ${params}\n` : '')).join('');
  const head = (method: string) => `merge_method: ${method}\nbase_model: ${JSON.stringify(path.join(fam.dir, 'base'))}\nmodels:\n`;
  const ties =
    head('ties') + models('{ weight: 1.0, density: 0.2 }') + 'parameters:\n  normalize: true\n  lambda: 1.0\ndtype: float32\nout_dtype: bfloat16\n';
  const dppa =
    head('dppa') +
    models('{ weight: 1.0 }') +
    'parameters:\n  partitions: [0.1, 0.2]\n  amplify: [1.8, 1.0]\n  dp_lambda: 0.08\n  consensus: none\n  normalize: false\n  lambda: 1.0\ndtype: float32\nout_dtype: bfloat16\n';
  // PCB at the paper's setting: model-wide scope (five statistics passes, then the merge).
  const pcb = head('pcb') + models() + 'parameters:\n  pcb_ratio: 0.1\n  lambda: 1.0\ndtype: float32\nout_dtype: bfloat16\n';
  const paths = { ties: path.join(fam.dir, 'bench-ties.yml'), dppa: path.join(fam.dir, 'bench-dppa.yml'), pcb: path.join(fam.dir, 'bench-pcb.yml') };
  fs.writeFileSync(paths.ties, ties);
  fs.writeFileSync(paths.dppa, dppa);
  fs.writeFileSync(paths.pcb, pcb);
  return paths;
}

export interface E2eFigure {
  input_gb: number;
  params: number;
  seconds: number;
  /** CPU seconds the merge used: well below seconds × threads means it waited (IO, or other load). */
  cpu_seconds: number | null;
  read_bound_seconds: number;
  ratio_to_read_bound: number;
  /** Every merge of this method in the run; `seconds` is the fastest. */
  samples_seconds: number[];
  peak_rss_mb: number;
  rss_source: string;
}

export interface E2eReport {
  shape: LlamaShape;
  family: string;
  params: number;
  input_gb: number;
  threads: number;
  shrunk?: string;
  generated_seconds: number | null;
  read_seconds: number[];
  read_gbps: number;
  /** Bytes of the merged model (bf16, one of the inputs' size). */
  output_gb: number;
  /** writeDurably of the output's bytes, fastest of two, in the same run. */
  write_bound_seconds: number;
  ties: E2eFigure;
  dppa: E2eFigure;
  /** PCB (scope model), one merge, when asked for (the quick family: it is far slower than TIES). */
  pcb?: E2eFigure & { ratio_to_ties: number };
}

export async function measureE2e(shape: LlamaShape, threads: number, log: (line: string) => void, withPcb = false): Promise<E2eReport> {
  const fam = await ensureFamily(shape, log);
  const configs = writeConfigs(fam);
  const buffer = Buffer.allocUnsafe(64 << 20);
  readAll(fam.files, buffer); // into the page cache
  const reads = [readAll(fam.files, buffer)];
  log(`  read bound: ${(fam.bytes / 1e9).toFixed(2)} GB in ${reads[0].toFixed(2)} s (${(fam.bytes / reads[0] / 1e9).toFixed(1)} GB/s)`);
  const outputBytes = fam.params * 2;
  const writes = [await writeDurably(CACHE_DIR, outputBytes, native()), await writeDurably(CACHE_DIR, outputBytes, native())];
  log(`  write bound: ${(outputBytes / 1e9).toFixed(2)} GB written durably in ${Math.min(...writes).toFixed(2)} s`);
  // Two merges per method, fastest kept (this VM's memory and disk timings wander by ~20%).
  const runs: Record<'ties' | 'dppa', MergeRun[]> = { ties: [], dppa: [] };
  for (let sample = 0; sample < 2; sample++) {
    for (const method of ['ties', 'dppa'] as const) {
      readAll(fam.files, buffer); // the output of the previous merge may have pushed inputs out of the cache
      const out = path.join(CACHE_DIR, `out-${method}`);
      const run = await cliMerge(configs[method], out, threads);
      runs[method].push(run);
      await fsp.rm(out, { recursive: true, force: true });
      log(`  ${method}: ${run.seconds.toFixed(2)} s (CPU ${run.cpu_seconds?.toFixed(2) ?? '?'} s), peak RSS ${run.peak_rss_mb.toFixed(0)} MB`);
    }
  }
  const pcbRuns: MergeRun[] = [];
  if (withPcb) {
    readAll(fam.files, buffer);
    const out = path.join(CACHE_DIR, 'out-pcb');
    const run = await cliMerge(configs.pcb, out, threads);
    pcbRuns.push(run);
    await fsp.rm(out, { recursive: true, force: true });
    log(`  pcb: ${run.seconds.toFixed(2)} s (CPU ${run.cpu_seconds?.toFixed(2) ?? '?'} s), peak RSS ${run.peak_rss_mb.toFixed(0)} MB`);
  }
  reads.push(readAll(fam.files, buffer));
  const readBound = Math.min(...reads);
  const figure = (samples: MergeRun[]): E2eFigure => {
    const best = samples.reduce((a, b) => (b.seconds < a.seconds ? b : a));
    return {
      input_gb: fam.bytes / 1e9,
      params: fam.params,
      seconds: best.seconds,
      cpu_seconds: best.cpu_seconds,
      read_bound_seconds: readBound,
      ratio_to_read_bound: readBound / best.seconds,
      samples_seconds: samples.map((r) => r.seconds),
      peak_rss_mb: Math.max(...samples.map((r) => r.peak_rss_mb)),
      rss_source: best.rss_source,
    };
  };
  return {
    shape: fam.shape,
    family: path.basename(fam.dir),
    params: fam.params,
    input_gb: fam.bytes / 1e9,
    threads,
    shrunk: fam.shrunk,
    generated_seconds: fam.generated_seconds,
    read_seconds: reads,
    read_gbps: fam.bytes / readBound / 1e9,
    output_gb: outputBytes / 1e9,
    write_bound_seconds: Math.min(...writes),
    ties: figure(runs.ties),
    dppa: figure(runs.dppa),
    ...(withPcb ? { pcb: { ...figure(pcbRuns), ratio_to_ties: pcbRuns[0].seconds / figure(runs.ties).seconds } } : {}),
  };
}
