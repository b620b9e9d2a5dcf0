/**
 * The output model folder, written so that it is never seen half-done: everything goes into
 * a temporary folder beside the target (lib/io/temp-folders.ts), and only a complete,
 * fsynced model is renamed into place. Shard headers are written at creation from a plan
 * made up front (lib/io/shard-plan.ts), so tensors can be written in any order, each with
 * positional writes at its known offset.
 */
import * as fs from 'fs';
import { promises as fsp } from 'fs';
import * as path from 'path';
import { DppaError, isDppaError } from '../errors';
import { encodeShardIndex, planShards, type PlannedTensor, type ShardPlan, type TensorSpec } from './shard-plan';
import { tempFolderPath } from './temp-folders';

export { parseByteSize, formatByteSize } from './byte-size';
export { removeStaleTemps } from './temp-folders';
export type { TensorSpec, PlannedTensor, ShardPlan } from './shard-plan';

export const DEFAULT_MAX_SHARD_BYTES = 5e9;

/** The tokenizer and generation files a merged model needs from its base. */
export const TOKENIZER_FILES: readonly string[] = Object.freeze([
  'tokenizer.json', 'tokenizer_config.json', 'tokenizer.model', 'special_tokens_map.json',
  'vocab.json', 'merges.txt', 'added_tokens.json', 'generation_config.json',
]);

export interface ModelWriterOptions {
  /** Every tensor of the output, in write order (which is also the on-disk order). */
  tensors: TensorSpec[];
  /** Data bytes per shard, at most (one tensor larger than this gets a shard alone). Default 5e9. */
  maxShardBytes?: number;
  /** Replace an existing target (only once the new model is complete). */
  overwrite?: boolean;
  /** `__metadata__` of every shard. Default {format: "pt"}, which transformers expects. */
  metadata?: Record<string, string>;
  /**
   * Write-behind to the disk (NativeBinding.writeback): called, one call at a time, for each
   * page-aligned stretch of a shard that has been written contiguously from its start, so
   * that the disk writes run during the merge instead of all in the final fsync, and written
   * pages leave the page cache (their memory is reused by the next writes instead of fresh
   * memory being faulted in). The final fsync of each shard still runs. Default: none.
   */
  writeback?: (fd: number, offset: number, length: number) => Promise<void>;
  /**
   * Start the disk writes of a stretch at once, without waiting (NativeBinding.startWriteback),
   * just before it is queued for `writeback`: the disk then works while the next pieces are
   * copied, and writeback's wait finds the pages done or in flight. Only with `writeback`.
   */
  startWriteback?: (fd: number, offset: number, length: number) => void;
}

export interface FinishOptions {
  /** Written as config.json (the caller sets torch_dtype). */
  config?: Record<string, unknown>;
  /** Files to copy from another model folder; those that do not exist are skipped. */
  copyFiles?: { from: string; names?: readonly string[] };
  /** Written as README.md. */
  modelCard?: string;
  /** Further small files, name → content. */
  extraFiles?: Record<string, string | Uint8Array>;
}

export interface FinishResult {
  target: string;
  shards: string[];
  totalBytes: number;
  copied: string[];
}

type WriterState = 'open' | 'finishing' | 'finished' | 'aborted';

/** Pages written back of one shard (see ModelWriterOptions.writeback). */
interface ShardWriteback {
  /** Bytes [0, frontier) of the file are written. */
  frontier: number;
  /** Written ranges beyond the frontier: start → end. */
  ahead: Map<number, number>;
  /** Bytes [0, flushed) were handed to writeback. */
  flushed: number;
}

/** Writeback goes in stretches of at least this much (fewer, larger disk requests). */
const WRITEBACK_MIN_BYTES = 16 * 1024 * 1024;
/**
 * With writeback, a tensor is written in pieces of this size, each handed on as soon as it is
 * in the page cache: its pages are then freed and reused while the rest of the tensor is
 * written, rather than the whole tensor landing in fresh page-cache memory first.
 */
const WRITE_PIECE_BYTES = WRITEBACK_MIN_BYTES;
const PAGE_BYTES = 4096;

/** Byte ranges of one tensor written so far (part writes may come in any order). */
interface TensorProgress {
  planned: PlannedTensor;
  ranges: [number, number][];
  written: number;
}

function ioError(file: string, action: string, e: unknown): DppaError {
  if (isDppaError(e)) return e;
  const code = (e as NodeJS.ErrnoException)?.code;
  const reason = code === 'ENOSPC' || code === 'EDQUOT' ? `${code}: no space left on the device` : code ?? (e as Error)?.message ?? String(e);
  return new DppaError('E_IO', `${file}: ${action} failed (${reason})`);
}

async function pathExists(p: string): Promise<boolean> {
  try {
    await fsp.lstat(p);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw ioError(p, 'stat', e);
  }
}

async function writeFully(handle: fsp.FileHandle, file: string, bytes: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < bytes.byteLength) {
    let bytesWritten: number;
    try {
      ({ bytesWritten } = await handle.write(bytes, done, bytes.byteLength - done, position + done));
    } catch (e) {
      throw ioError(file, `writing ${bytes.byteLength - done} bytes at offset ${position + done}`, e);
    }
    if (bytesWritten <= 0) throw new DppaError('E_IO', `${file}: write at offset ${position + done} made no progress`);
    done += bytesWritten;
  }
}

/** Write a small file and fsync it, so that the final rename publishes durable content. */
async function writeFileDurable(file: string, content: string | Uint8Array): Promise<void> {
  let handle: fsp.FileHandle | undefined;
  try {
    handle = await fsp.open(file, 'wx');
    await handle.writeFile(content);
    await handle.sync();
  } catch (e) {
    throw ioError(file, 'writing', e);
  } finally {
    await handle?.close().catch(() => undefined);
  }
}

async function syncDirectory(dir: string): Promise<void> {
  // Directory fsync makes the renames durable; some file systems refuse it, which is harmless.
  let handle: fsp.FileHandle | undefined;
  try {
    handle = await fsp.open(dir, 'r');
    await handle.sync();
  } catch {
    // ignore: best effort
  } finally {
    await handle?.close().catch(() => undefined);
  }
}

export class ModelWriter {
  private state: WriterState = 'open';
  private readonly progress = new Map<string, TensorProgress>();
  /** Open handles per shard, opened on first write and closed once the shard is complete. */
  private readonly handles = new Map<number, Promise<fsp.FileHandle>>();
  private readonly remainingPerShard: number[];
  private readonly inFlight = new Set<Promise<unknown>>();
  private readonly writebacks: ShardWriteback[];
  /** The writeback calls, one after the other; its first failure fails the shard's sync. */
  private writebackChain: Promise<void> = Promise.resolve();
  private writebackError: unknown;

  private constructor(
    /** The final folder, resolved. */
    readonly target: string,
    /** Where the model is assembled until finish(). */
    readonly tempDir: string,
    readonly shards: readonly ShardPlan[],
    private readonly overwrite: boolean,
    private readonly writeback?: (fd: number, offset: number, length: number) => Promise<void>,
    private readonly startWriteback?: (fd: number, offset: number, length: number) => void,
  ) {
    for (const shard of shards) for (const t of shard.tensors) this.progress.set(t.name, { planned: t, ranges: [], written: 0 });
    this.remainingPerShard = shards.map((s) => s.tensors.length);
    this.writebacks = shards.map((s) => ({ frontier: s.header.byteLength, ahead: new Map(), flushed: 0 }));
  }

  static async create(target: string, options: ModelWriterOptions): Promise<ModelWriter> {
    if (typeof target !== 'string' || target.length === 0) throw new DppaError('E_ARGUMENT', 'the output path must be a non-empty string');
    const resolved = path.resolve(target);
    const overwrite = options.overwrite === true;
    const shards = planShards(options.tensors, options.maxShardBytes ?? DEFAULT_MAX_SHARD_BYTES, options.metadata ?? { format: 'pt' });
    if (!overwrite && (await pathExists(resolved))) {
      throw new DppaError('E_EXISTS', `${target} already exists; pass --overwrite to replace it (the old model is replaced only once the new one is complete)`);
    }
    const parent = path.dirname(resolved);
    try {
      await fsp.mkdir(parent, { recursive: true });
    } catch (e) {
      throw ioError(parent, 'creating the output folder', e);
    }
    const tempDir = tempFolderPath(resolved, 'tmp');
    try {
      await fsp.mkdir(tempDir);
    } catch (e) {
      throw ioError(tempDir, 'creating the temporary folder', e);
    }
    const writer = new ModelWriter(resolved, tempDir, shards, overwrite, options.writeback, options.writeback && options.startWriteback);
    try {
      // Headers first: a shard's file then already has its final layout, and the data
      // section fills in as tensors arrive in whatever order.
      for (const shard of shards) {
        const file = path.join(tempDir, shard.fileName);
        const handle = await fsp.open(file, 'wx').catch((e) => { throw ioError(file, 'creating', e); });
        try {
          await writeFully(handle, file, shard.header, 0);
          if (shard.tensors.length === 0 || shard.dataBytes === 0) await handle.truncate(shard.fileBytes);
        } finally {
          await handle.close();
        }
      }
      // Zero-length tensors need no write: count them as done now.
      for (const p of writer.progress.values()) {
        if (p.planned.byteLength === 0) await writer.markComplete(p);
      }
    } catch (e) {
      await writer.abort();
      throw ioError(tempDir, 'preparing the output', e);
    }
    return writer;
  }

  /** The plan of one tensor (shard, offset, length). */
  tensor(name: string): PlannedTensor {
    return this.progressOf(name).planned;
  }

  get isOpen(): boolean {
    return this.state === 'open';
  }

  /** Names of tensors not yet completely written. */
  pending(): string[] {
    return [...this.progress.values()].filter((p) => p.written < p.planned.byteLength).map((p) => p.planned.name);
  }

  private progressOf(name: string): TensorProgress {
    const p = this.progress.get(name);
    if (p === undefined) throw new DppaError('E_ARGUMENT', `tensor "${name}" is not part of the output plan of ${this.target}`);
    return p;
  }

  private requireOpen(action: string): void {
    if (this.state !== 'open') throw new DppaError('E_ARGUMENT', `cannot ${action}: the writer of ${this.target} is ${this.state}`);
  }

  /** Write a whole tensor. Each tensor is written exactly once, with exactly its byte length. */
  async writeTensor(name: string, bytes: Uint8Array): Promise<void> {
    const p = this.progressOf(name);
    if (bytes.byteLength !== p.planned.byteLength) {
      throw new DppaError('E_ARGUMENT', `tensor "${name}": got ${bytes.byteLength} bytes, the plan says ${p.planned.byteLength} (${p.planned.dtype} ${JSON.stringify(p.planned.shape)})`);
    }
    return this.writeTensorPart(name, 0, bytes);
  }

  /**
   * Write `bytes` at `offset` bytes into a tensor, for tensors produced in pieces. Parts may
   * come in any order but must not overlap; the tensor counts as written once covered.
   */
  async writeTensorPart(name: string, offset: number, bytes: Uint8Array): Promise<void> {
    this.requireOpen(`write tensor "${name}"`);
    const p = this.progressOf(name);
    const end = offset + bytes.byteLength;
    if (!Number.isSafeInteger(offset) || offset < 0 || end > p.planned.byteLength) {
      throw new DppaError('E_ARGUMENT', `tensor "${name}": bytes [${offset}, ${end}) fall outside its ${p.planned.byteLength} bytes`);
    }
    if (bytes.byteLength === 0) return;
    for (const [b, e] of p.ranges) {
      if (offset < e && b < end) {
        throw new DppaError('E_ARGUMENT', `tensor "${name}": bytes [${offset}, ${end}) were already written (each tensor is written exactly once)`);
      }
    }
    // Reserve the range before the first await, so that a concurrent duplicate is refused.
    p.ranges.push([offset, end]);
    const shardIndex = p.planned.shard;
    const file = path.join(this.tempDir, this.shards[shardIndex].fileName);
    const work = (async () => {
      const handle = await this.handleOf(shardIndex);
      const piece = this.writeback === undefined ? bytes.byteLength : WRITE_PIECE_BYTES;
      for (let done = 0; done < bytes.byteLength; done += piece) {
        const part = bytes.subarray(done, Math.min(done + piece, bytes.byteLength));
        await writeFully(handle, file, part, p.planned.fileOffset + offset + done);
        this.noteWritten(shardIndex, handle, p.planned.fileOffset + offset + done, part.byteLength);
      }
      p.written += bytes.byteLength;
      if (p.written === p.planned.byteLength) await this.markComplete(p);
    })();
    this.inFlight.add(work);
    try {
      await work;
    } finally {
      this.inFlight.delete(work);
    }
  }

  /**
   * Advance a shard's contiguous frontier over a written range and hand the whole pages
   * behind it to writeback (in the background, one call at a time). Pages the next tensor
   * still writes into (the frontier's own page) are never handed over.
   */
  private noteWritten(shardIndex: number, handle: fsp.FileHandle, start: number, length: number): void {
    const writeback = this.writeback;
    if (writeback === undefined || length === 0) return;
    const state = this.writebacks[shardIndex];
    state.ahead.set(start, start + length);
    let end: number | undefined;
    while ((end = state.ahead.get(state.frontier)) !== undefined) {
      state.ahead.delete(state.frontier);
      state.frontier = end;
    }
    const upTo = Math.floor(state.frontier / PAGE_BYTES) * PAGE_BYTES;
    const complete = state.frontier === this.shards[shardIndex].fileBytes;
    if (upTo - state.flushed < WRITEBACK_MIN_BYTES && !complete) return;
    const from = state.flushed;
    const to = complete ? state.frontier : upTo;
    if (to <= from) return;
    state.flushed = to;
    this.startWriteback?.(handle.fd, from, to - from);
    this.writebackChain = this.writebackChain.then(async () => {
      if (this.writebackError !== undefined || this.state === 'aborted') return;
      try {
        await writeback(handle.fd, from, to - from);
      } catch (e) {
        this.writebackError = e;
      }
    });
  }

  private handleOf(shardIndex: number): Promise<fsp.FileHandle> {
    let handle = this.handles.get(shardIndex);
    if (handle === undefined) {
      const file = path.join(this.tempDir, this.shards[shardIndex].fileName);
      handle = fsp.open(file, 'r+').catch((e) => { throw ioError(file, 'opening for writing', e); });
      this.handles.set(shardIndex, handle);
    }
    return handle;
  }

  /** When the last tensor of a shard is in, sync and close it: few handles stay open. */
  private async markComplete(p: TensorProgress): Promise<void> {
    const shardIndex = p.planned.shard;
    this.remainingPerShard[shardIndex]--;
    if (this.remainingPerShard[shardIndex] > 0) return;
    const handlePromise = this.handles.get(shardIndex);
    if (handlePromise === undefined) return; // nothing was written through a handle (zero-length tensors only)
    this.handles.delete(shardIndex);
    const handle = await handlePromise;
    const file = path.join(this.tempDir, this.shards[shardIndex].fileName);
    try {
      // Writeback still running on this handle must end before it is closed.
      await this.writebackChain;
      if (this.writebackError !== undefined) throw this.writebackError;
      await handle.sync();
    } catch (e) {
      throw ioError(file, 'fsync', e);
    } finally {
      await handle.close().catch(() => undefined);
    }
  }

  /**
   * Complete the model: check every tensor was written, write the index, config, copied
   * files and model card, then move the folder into place. On any failure the temporary
   * folder is removed and the target is left as it was.
   */
  async finish(options: FinishOptions = {}): Promise<FinishResult> {
    this.requireOpen('finish');
    this.state = 'finishing';
    try {
      await Promise.allSettled([...this.inFlight]);
      const missing = this.pending();
      if (missing.length > 0) {
        const shown = missing.slice(0, 5).map((n) => `"${n}"`).join(', ');
        throw new DppaError('E_ARGUMENT', `${this.target}: ${missing.length} tensor(s) were not written: ${shown}${missing.length > 5 ? ', ...' : ''}`);
      }
      await this.verifyShardSizes();
      const written = new Set<string>(this.shards.map((s) => s.fileName));
      if (this.shards.length > 1) {
        await writeFileDurable(path.join(this.tempDir, 'model.safetensors.index.json'), encodeShardIndex(this.shards));
        written.add('model.safetensors.index.json');
      }
      if (options.config !== undefined) {
        await writeFileDurable(path.join(this.tempDir, 'config.json'), `${JSON.stringify(options.config, null, 2)}\n`);
        written.add('config.json');
      }
      if (options.modelCard !== undefined) {
        await writeFileDurable(path.join(this.tempDir, 'README.md'), options.modelCard);
        written.add('README.md');
      }
      for (const [name, content] of Object.entries(options.extraFiles ?? {})) {
        this.checkPlainName(name);
        await writeFileDurable(path.join(this.tempDir, name), content);
        written.add(name);
      }
      const copied: string[] = [];
      if (options.copyFiles !== undefined) {
        for (const name of options.copyFiles.names ?? TOKENIZER_FILES) {
          if (written.has(name)) continue;
          this.checkPlainName(name);
          const from = path.join(options.copyFiles.from, name);
          const to = path.join(this.tempDir, name);
          try {
            await fsp.copyFile(from, to);
          } catch (e) {
            if ((e as NodeJS.ErrnoException).code === 'ENOENT' && !(await pathExists(from))) continue;
            throw ioError(from, `copying to the output`, e);
          }
          copied.push(name);
        }
      }
      await syncDirectory(this.tempDir);
      await this.moveIntoPlace();
      this.state = 'finished';
      return {
        target: this.target,
        shards: this.shards.map((s) => path.join(this.target, s.fileName)),
        totalBytes: this.shards.reduce((sum, s) => sum + s.dataBytes, 0),
        copied,
      };
    } catch (e) {
      this.state = 'open'; // let abort() run its course
      await this.abort();
      throw ioError(this.tempDir, 'finishing the output', e);
    }
  }

  private checkPlainName(name: string): void {
    if (name.length === 0 || name !== path.basename(name) || name === '.' || name === '..') {
      throw new DppaError('E_ARGUMENT', `"${name}" is not a plain file name`);
    }
  }

  /** A last guard against a short file: each shard must be exactly header + data long. */
  private async verifyShardSizes(): Promise<void> {
    for (const shard of this.shards) {
      const file = path.join(this.tempDir, shard.fileName);
      const stat = await fsp.stat(file).catch((e) => { throw ioError(file, 'stat', e); });
      if (stat.size !== shard.fileBytes) {
        throw new DppaError('E_IO', `${file}: is ${stat.size} bytes, expected ${shard.fileBytes}`);
      }
    }
  }

  private async moveIntoPlace(): Promise<void> {
    const parent = path.dirname(this.target);
    const targetExists = await pathExists(this.target);
    if (targetExists && !this.overwrite) {
      throw new DppaError('E_EXISTS', `${this.target} appeared while the model was being written; pass --overwrite to replace it`);
    }
    if (!targetExists) {
      try {
        await fsp.rename(this.tempDir, this.target);
      } catch (e) {
        throw ioError(this.target, 'moving the finished model into place', e);
      }
      await syncDirectory(parent);
      return;
    }
    // Overwrite: old aside, new in, then delete the old. Until the second rename succeeds the
    // old model is intact (beside the target, restored on failure).
    const aside = tempFolderPath(this.target, 'old');
    try {
      await fsp.rename(this.target, aside);
    } catch (e) {
      throw ioError(this.target, 'moving the existing model aside', e);
    }
    try {
      await fsp.rename(this.tempDir, this.target);
    } catch (e) {
      await fsp.rename(aside, this.target).catch(() => undefined);
      throw ioError(this.target, 'moving the finished model into place', e);
    }
    await syncDirectory(parent);
    await fsp.rm(aside, { recursive: true, force: true }).catch(() => undefined);
  }

  /**
   * The synchronous last resort for a process 'exit' handler, where no await can run:
   * removes the temporary folder (open handles die with the process). Prefer abort().
   */
  abortSync(): void {
    if (this.state === 'finished' || this.state === 'aborted') return;
    this.state = 'aborted';
    // Closing is asynchronous; if the process is exiting it closes them anyway.
    for (const handle of this.handles.values()) handle.then((h) => h.close()).catch(() => undefined);
    this.handles.clear();
    try {
      fs.rmSync(this.tempDir, { recursive: true, force: true });
    } catch {
      // best effort: removeStaleTemps() cleans up after the next run
    }
  }

  /** Drop everything written so far. Safe to call more than once, and after a failure. */
  async abort(): Promise<void> {
    if (this.state === 'finished' || this.state === 'aborted') return;
    this.state = 'aborted';
    await Promise.allSettled([...this.inFlight]);
    await this.writebackChain;
    const handles = [...this.handles.values()];
    this.handles.clear();
    for (const handle of handles) {
      await handle.then((h) => h.close()).catch(() => undefined);
    }
    await fsp.rm(this.tempDir, { recursive: true, force: true }).catch(() => undefined);
  }
}
