// 14: the vectorized generator (AVX2 / AVX-512 Philox4x32-10, 8 / 16 blocks at once) gives the
// scalar words exactly: every element against the JS reference, at aligned and unaligned
// starts and across the wrap of the counter's low word.
import * as assert from 'assert';
import { native } from '../lib/native';
import * as ref from './ref/kernels-ref';
import { everyPathAndThreads } from './10.convert.test';

describe('14 philox: vectorized generator', () => {
  it('randomUniform: every element equals the reference, any start, across the low-word wrap', async () => {
    const streams = [
      { seedLo: 0xffffffff, seedHi: 3, streamLo: 17, streamHi: 0x80000000 },
      { seedLo: 0, seedHi: 0, streamLo: 0, streamHi: 0 },
    ];
    const wrap = 4 * (2 ** 32 - 9); // block 0xFFFFFFF7: the next 9 blocks cross into hi = 1
    const starts = [0, 1, 2, 3, 4, 61, wrap, wrap + 1, wrap + 7, 4 * (3 * 2 ** 32 - 30) + 2, 2 ** 50 + 3];
    for (const stream of streams) {
      for (const start of starts) {
        const n = 1237;
        const expected = Float32Array.from({ length: n }, (_, i) => ref.uniformRef(stream, start + i));
        await everyPathAndThreads(async (label) => {
          const out = new Float32Array(n);
          await native().randomUniform(stream, start, out);
          for (let i = 0; i < n; ++i) {
            if (out[i] !== expected[i]) assert.fail(`${label} start ${start} i ${i}: ${out[i]} vs ${expected[i]}`);
          }
        });
      }
    }
  });

  it('randomUniform over many chunks is the same on every path and thread count', async () => {
    const stream = { seedLo: 5, seedHi: 6, streamLo: 7, streamHi: 8 };
    const n = 3 * 65536 + 333;
    let first: Float32Array | undefined;
    await everyPathAndThreads(async (label) => {
      const out = new Float32Array(n);
      await native().randomUniform(stream, 4 * (2 ** 32) - 4 * 70000 + 1, out);
      if (!first) first = out;
      else assert.ok(Buffer.from(out.buffer).equals(Buffer.from(first.buffer)), label);
    });
    for (let i = 0; i < n; i += 4099) assert.strictEqual(first![i], ref.uniformRef(stream, 4 * (2 ** 32) - 4 * 70000 + 1 + i));
  });
});
