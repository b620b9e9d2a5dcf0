/**
 * How the executor gets tensor bytes: memory-mapped where it can (the kernels then read the
 * page cache directly: no copy into a buffer, no buffer to fault in), read into a buffer
 * where it cannot (mapping disabled, or refused for that file). Mapped views are released
 * explicitly as soon as their tensor is done, so mapped pages never pile up waiting for the
 * garbage collector.
 *
 * Mapping is off by default: `mmap: true` (API) or DPPA_MMAP=1 in the environment turns it
 * on. Measured on the 2-core PVM guest this project is benchmarked on, touching
 * mapped page-cache pages costs 0.5-1.9 s per GB (every 4 KiB page is a shadow-page fault in
 * the host; no PMD mappings of page cache), while a positional read into the reused,
 * already-faulted huge-page buffers copies at ~8 GB/s: reading is faster there. On bare metal
 * (cheap minor faults) mapping saves the copy and the input buffers' memory.
 */
import type { NativeBinding } from '../binding';
import type { ModelSource } from '../io/model';
import type { RangeMapper } from '../io/safetensors';

/** An on/off environment switch: 1/on/true/yes, 0/off/false/no, else the default. */
export function envSwitch(name: string, fallback: boolean, env: NodeJS.ProcessEnv = process.env): boolean {
  const value = (env[name] ?? '').trim().toLowerCase();
  if (['1', 'on', 'true', 'yes'].includes(value)) return true;
  if (['0', 'off', 'false', 'no'].includes(value)) return false;
  return fallback;
}

/** Whether mapping is wanted: the option when given, else DPPA_MMAP (default off). */
export function mappingEnabled(option: boolean | undefined, env: NodeJS.ProcessEnv = process.env): boolean {
  return option ?? envSwitch('DPPA_MMAP', false, env);
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
