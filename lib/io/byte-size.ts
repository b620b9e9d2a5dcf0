/**
 * Byte sizes as users type them (`--max-shard-size 5G`). Units are decimal, like disk
 * sizes and Hugging Face's `max_shard_size="5GB"`: K = 1000, M = 1000², G = 1000³,
 * T = 1000⁴, with an optional trailing "B" ("5GB"). Binary units are spelled out: KiB, MiB,
 * GiB, TiB = powers of 1024. A bare "5B" is refused: in mergekit it means five billion, in
 * most other tools five bytes.
 */
import { DppaError } from '../errors';

const UNITS: Record<string, number> = {
  '': 1,
  K: 1e3, KB: 1e3, M: 1e6, MB: 1e6, G: 1e9, GB: 1e9, T: 1e12, TB: 1e12,
  KIB: 1024, MIB: 1024 ** 2, GIB: 1024 ** 3, TIB: 1024 ** 4,
};

export function parseByteSize(text: string | number): number {
  if (typeof text === 'number') {
    if (Number.isSafeInteger(text) && text > 0) return text;
    throw new DppaError('E_ARGUMENT', `a byte size must be a positive integer, not ${text}`);
  }
  const match = /^\s*(\d+(?:\.\d+)?|\.\d+)\s*([a-zA-Z]*)\s*$/.exec(String(text));
  if (match === null) {
    throw new DppaError('E_ARGUMENT', `"${text}" is not a byte size (examples: 5G, 500M, 10K, 123456; units are powers of 1000, KiB/MiB/GiB powers of 1024)`);
  }
  const unit = match[2].toUpperCase();
  if (unit === 'B') {
    throw new DppaError('E_ARGUMENT', `"${text}" is ambiguous (bytes or billions?): write ${match[1]}G for ${match[1]}·10⁹ bytes, or the plain number of bytes`);
  }
  const multiplier = UNITS[unit];
  if (multiplier === undefined) {
    throw new DppaError('E_ARGUMENT', `"${text}": unknown unit "${match[2]}" (use K, M, G, T — powers of 1000 — or KiB, MiB, GiB, TiB)`);
  }
  const bytes = Math.round(Number(match[1]) * multiplier);
  if (!Number.isSafeInteger(bytes) || bytes <= 0) {
    throw new DppaError('E_ARGUMENT', `"${text}" is not a usable byte size (must be at least 1 byte)`);
  }
  return bytes;
}

/** A short human form: 1.50 GB, 320 MB, 12 KB, 7 B (decimal units, like parseByteSize). */
export function formatByteSize(bytes: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = 0;
  while (Math.abs(value) >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  if (unit === 0) return `${bytes} B`;
  return `${value >= 100 ? value.toFixed(0) : value >= 10 ? value.toFixed(1) : value.toFixed(2)} ${units[unit]}`;
}
