/**
 * How the executor gets tensor bytes: memory-mapped where it can (the kernels then read the
 * page cache directly: no copy into a buffer, no buffer to fault in), read into a buffer
 * where it cannot (mapping disabled, or refused for that file). Mapped views are released
 * explicitly as soon as their tensor is done, so mapped pages never pile up waiting for the
 * garbage collector.
 *
 * Mapping is on by default; `mmap: false` (API) or DPPA_MMAP=0 in the environment turns it off.
 */
import type { NativeBinding } from '../binding';
import type { ModelSource } from '../io/model';
import type { RangeMapper } from '../io/safetensors';

/** Whether mapping is wanted: the option when given, else DPPA_MMAP (off for 0/off/false/no). */
export function mappingEnabled(option: boolean | undefined, env: NodeJS.ProcessEnv = process.env): boolean {
  if (option !== undefined) return option;
  const value = (env.DPPA_MMAP ?? '').trim().toLowerCase();
  return !['0', 'off', 'false', 'no'].includes(value);
}

export class TensorInputs {
  private readonly mapper: RangeMapper | undefined;

  constructor(private readonly native: NativeBinding, enabled: boolean) {
    this.mapper = enabled && typeof native.mapRange === 'function' ? (fd, offset, length) => native.mapRange(fd, offset, length) : undefined;
  }

  get mapping(): boolean {
    return this.mapper !== undefined;
  }

  /**
   * A tensor's bytes: a mapping when possible (added to `held`, for release), else read into
   * `buffer()` (called only then, so buffers are not allocated while mapping works).
   */
  async get(source: ModelSource, name: string, buffer: () => Uint8Array | undefined, held: Uint8Array[]): Promise<Uint8Array> {
    if (this.mapper !== undefined) {
      const view = source.map(name, this.mapper);
      if (view !== undefined) {
        if (view.byteLength > 0) held.push(view);
        return view;
      }
    }
    return source.read(name, buffer());
  }

  /** Unmap views from get(); their arrays become empty. */
  release(held: Uint8Array[]): void {
    for (const view of held.splice(0)) this.native.unmapRange(view);
  }
}
