/**
 * A safetensors file opened for reading: the header is validated once at open
 * (lib/io/header.ts), then tensors are read with positional reads on a file handle that
 * stays open for the life of the object, or mapped (`map`, with a mapper from the native
 * addon) so that the kernels read the page cache directly. A read of a file that shrank
 * underneath us fails with E_IO; a mapping is only made of a range the file still holds, and
 * a file that shrinks under a live mapping ends the process with an E_IO message (the addon's
 * SIGBUS handler) before any output is published.
 */
import { promises as fsp } from 'fs';
import { DppaError } from '../errors';
import { type SafetensorsDType } from './dtypes';
import { parseHeaderJson, parseHeaderLength } from './header';

export interface TensorInfo {
  name: string;
  dtype: SafetensorsDType;
  shape: number[];
  numel: number;
  /** The file holding the tensor. */
  file: string;
  /** Absolute offset of the first byte in `file`. */
  byteOffset: number;
  byteLength: number;
}

/**
 * Maps bytes [offset, offset + length) of the open file `fd` (NativeBinding.mapRange); throws
 * when it cannot (the range is no longer inside the file, mmap failed).
 */
export type RangeMapper = (fd: number, offset: number, length: number) => Uint8Array;

/** Reads are issued in pieces of at most this size (Node caps one read near 2 GiB). */
const READ_CHUNK_BYTES = 64 * 1024 * 1024;

function ioError(file: string, action: string, e: unknown): DppaError {
  const reason = (e as NodeJS.ErrnoException)?.code ?? (e as Error)?.message ?? String(e);
  return new DppaError('E_IO', `${file}: ${action} failed (${reason})`);
}

/**
 * Read exactly `length` bytes at `position` into `target`. A short read means the file
 * changed or was truncated after it was validated.
 */
export async function readFully(handle: fsp.FileHandle, file: string, target: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < target.byteLength) {
    const length = Math.min(READ_CHUNK_BYTES, target.byteLength - done);
    let bytesRead: number;
    try {
      ({ bytesRead } = await handle.read(target, done, length, position + done));
    } catch (e) {
      throw ioError(file, `reading ${length} bytes at offset ${position + done}`, e);
    }
    if (bytesRead === 0) {
      throw new DppaError('E_IO', `${file}: the file ended at offset ${position + done} while reading; it was truncated or changed after it was opened`);
    }
    done += bytesRead;
  }
}

export class SafetensorsFile {
  /** Tensors in data order. */
  readonly tensors: ReadonlyMap<string, TensorInfo>;
  private handle: fsp.FileHandle | undefined;

  private constructor(
    readonly path: string,
    handle: fsp.FileHandle,
    readonly fileSize: number,
    readonly headerLength: number,
    readonly metadata: Readonly<Record<string, string>>,
    tensors: Map<string, TensorInfo>,
  ) {
    this.handle = handle;
    this.tensors = tensors;
  }

  /** Open and validate a file. Every malformation is a DppaError E_FORMAT naming the file. */
  static async open(path: string): Promise<SafetensorsFile> {
    let handle: fsp.FileHandle;
    try {
      handle = await fsp.open(path, 'r');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') throw new DppaError('E_IO', `${path}: no such file`);
      if (code === 'EISDIR') throw new DppaError('E_IO', `${path}: is a directory, not a safetensors file`);
      throw ioError(path, 'opening', e);
    }
    try {
      const stat = await handle.stat().catch((e) => { throw ioError(path, 'stat', e); });
      if (!stat.isFile()) throw new DppaError('E_IO', `${path}: not a regular file`);
      const fileSize = stat.size;
      const prefix = new Uint8Array(Math.min(8, fileSize));
      await readFully(handle, path, prefix, 0);
      const headerLength = parseHeaderLength(path, prefix, fileSize);
      const headerBytes = new Uint8Array(headerLength);
      await readFully(handle, path, headerBytes, 8);
      const dataStart = 8 + headerLength;
      const header = parseHeaderJson(path, headerBytes, fileSize - dataStart);
      const tensors = new Map<string, TensorInfo>();
      for (const entry of header.entries) {
        tensors.set(entry.name, {
          name: entry.name,
          dtype: entry.dtype,
          shape: entry.shape,
          numel: entry.numel,
          file: path,
          byteOffset: dataStart + entry.begin,
          byteLength: entry.end - entry.begin,
        });
      }
      return new SafetensorsFile(path, handle, fileSize, headerLength, header.metadata, tensors);
    } catch (e) {
      await handle.close().catch(() => undefined);
      throw e;
    }
  }

  /** Tensor names in data order. */
  names(): string[] {
    return [...this.tensors.keys()];
  }

  info(name: string): TensorInfo {
    const info = this.tensors.get(name);
    if (info === undefined) throw new DppaError('E_ARGUMENT', `${this.path}: no tensor named "${name}"`);
    return info;
  }

  /**
   * Read a tensor's raw bytes. With `into` (at least byteLength long) the bytes land there
   * and a view of exactly byteLength is returned, so a caller can reuse one buffer.
   */
  async read(name: string, into?: Uint8Array): Promise<Uint8Array> {
    return this.readInfo(this.info(name), into);
  }

  /** Read the bytes a TensorInfo of this file describes. */
  async readInfo(info: TensorInfo, into?: Uint8Array): Promise<Uint8Array> {
    const handle = this.handle;
    if (handle === undefined) throw new DppaError('E_IO', `${this.path}: read of "${info.name}" after the file was closed`);
    if (info.file !== this.path) throw new DppaError('E_ARGUMENT', `tensor "${info.name}" is in ${info.file}, not ${this.path}`);
    let target: Uint8Array;
    if (into === undefined) {
      target = new Uint8Array(info.byteLength);
    } else {
      if (into.byteLength < info.byteLength) {
        throw new DppaError('E_ARGUMENT', `buffer of ${into.byteLength} bytes is too small for tensor "${info.name}" (${info.byteLength} bytes)`);
      }
      target = into.subarray(0, info.byteLength);
    }
    await readFully(handle, this.path, target, info.byteOffset);
    return target;
  }

  /**
   * A tensor's raw bytes, memory-mapped through `mapper` instead of read: exactly byteLength
   * bytes, to be treated as read-only and released with the mapper's unmap (or left to the
   * garbage collector). Undefined when the mapping cannot be made (mmap refused, the file no
   * longer holds the range): the caller then reads, which reports a changed file as E_IO.
   */
  mapInfo(info: TensorInfo, mapper: RangeMapper): Uint8Array | undefined {
    const handle = this.handle;
    if (handle === undefined) throw new DppaError('E_IO', `${this.path}: read of "${info.name}" after the file was closed`);
    if (info.file !== this.path) throw new DppaError('E_ARGUMENT', `tensor "${info.name}" is in ${info.file}, not ${this.path}`);
    if (!Number.isSafeInteger(info.byteOffset) || !Number.isSafeInteger(info.byteLength) || info.byteOffset < 0 ||
        info.byteLength < 0 || info.byteOffset + info.byteLength > this.fileSize) {
      throw new DppaError('E_ARGUMENT', `${this.path}: tensor "${info.name}" bytes [${info.byteOffset}, ${info.byteOffset + info.byteLength}) are outside the file (${this.fileSize} bytes)`);
    }
    let view: Uint8Array;
    try {
      view = mapper(handle.fd, info.byteOffset, info.byteLength);
    } catch {
      return undefined;
    }
    if (view.byteLength !== info.byteLength) return undefined;
    return view;
  }

  /** Map a tensor by name (see mapInfo). */
  map(name: string, mapper: RangeMapper): Uint8Array | undefined {
    return this.mapInfo(this.info(name), mapper);
  }

  /** Read `length` bytes starting `offset` bytes into a tensor (for streaming large tensors). */
  async readPart(name: string, offset: number, into: Uint8Array): Promise<Uint8Array> {
    const info = this.info(name);
    const handle = this.handle;
    if (handle === undefined) throw new DppaError('E_IO', `${this.path}: read of "${name}" after the file was closed`);
    if (!Number.isSafeInteger(offset) || offset < 0 || offset + into.byteLength > info.byteLength) {
      throw new DppaError('E_ARGUMENT', `${this.path}: range [${offset}, ${offset + into.byteLength}) is outside tensor "${name}" (${info.byteLength} bytes)`);
    }
    await readFully(handle, this.path, into, info.byteOffset + offset);
    return into;
  }

  get closed(): boolean {
    return this.handle === undefined;
  }

  async close(): Promise<void> {
    const handle = this.handle;
    this.handle = undefined;
    if (handle !== undefined) await handle.close();
  }
}
