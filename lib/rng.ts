/**
 * Keys of the counter-based generator (Philox4x32-10, in native/src/kernels/rng). Every
 * random draw is a pure function of (seed, model name, tensor name, element index), so the
 * same seed gives bit-identical masks whatever the thread count, tensor order or device —
 * unlike mergekit's one global stream, whose masks change with execution order.
 */
import type { RandomStream } from './binding';

/** FNV-1a 64-bit of `${modelName}\0${tensorName}` as two 32-bit halves. */
export function streamKey(modelName: string, tensorName: string): { lo: number; hi: number } {
  const bytes = Buffer.from(`${modelName}\u0000${tensorName}`, 'utf8');
  let hash = 0xcbf29ce484222325n;
  const prime = 0x100000001b3n;
  const mask = 0xffffffffffffffffn;
  for (const b of bytes) {
    hash ^= BigInt(b);
    hash = (hash * prime) & mask;
  }
  return { lo: Number(hash & 0xffffffffn), hi: Number(hash >> 32n) };
}

export function randomStream(seed: number, modelName: string, tensorName: string): RandomStream {
  if (!Number.isSafeInteger(seed) || seed < 0) throw new RangeError(`seed must be a non-negative integer, got ${seed}`);
  const key = streamKey(modelName, tensorName);
  return {
    seedLo: seed % 0x100000000,
    seedHi: Math.floor(seed / 0x100000000),
    streamLo: key.lo,
    streamHi: key.hi,
  };
}
