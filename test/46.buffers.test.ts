/** allocateBuffer: tensor buffers (huge-page backed where the kernel allows), usable as any Uint8Array. */
import { strict as assert } from 'assert';
import { native } from '../lib/native';

describe('46 tensor buffers', () => {
  it('gives writable buffers of exactly the size asked, small and large', () => {
    for (const bytes of [0, 1, 4097, (2 << 20) - 1, (2 << 20) + 7, 9 << 20]) {
      const buffer = native().allocateBuffer(bytes);
      assert.ok(buffer instanceof Uint8Array);
      assert.equal(buffer.byteLength, bytes);
      for (let i = 0; i < bytes; i += 4093) buffer[i] = i % 251;
      for (let i = 0; i < bytes; i += 4093) assert.equal(buffer[i], i % 251);
    }
  });

  it('is a valid target for native kernels and is freed when collected', async () => {
    const buffer = native().allocateBuffer(4 << 20);
    const source = new Uint8Array(4 << 20).map((_, i) => i & 0xff);
    await native().copy(source, buffer);
    assert.deepEqual(buffer.subarray(0, 300), source.subarray(0, 300));
    assert.throws(() => native().allocateBuffer(-1), TypeError);
  });
});
