/** Accuracy of a backbone + task head on a split, batched on tfjs. */
import * as tf from '@tensorflow/tfjs';
import { INPUT_DIM, Split } from './datasets';
import { Arch, Weights } from './model';
import { disposeTensors, forwardTf, toTensors } from './tfmodel';

export function predictAll(a: Arch, backbone: Weights, head: Weights, split: Split, batch = 2000): Uint8Array {
  const bb = toTensors(backbone);
  const hd = toTensors(head);
  const pred = new Uint8Array(split.n);
  try {
    for (let s = 0; s < split.n; s += batch) {
      const e = Math.min(split.n, s + batch);
      const p = tf.tidy(() => {
        const x = tf.tensor2d(split.x.subarray(s * INPUT_DIM, e * INPUT_DIM), [e - s, INPUT_DIM]);
        return tf.argMax(forwardTf(a, bb, hd, x), 1);
      });
      pred.set(p.dataSync() as Int32Array, s);
      p.dispose();
    }
  } finally {
    disposeTensors(bb);
    disposeTensors(hd);
  }
  return pred;
}

export function accuracy(a: Arch, backbone: Weights, head: Weights, split: Split): number {
  const pred = predictAll(a, backbone, head, split);
  let correct = 0;
  for (let i = 0; i < split.n; i++) if (pred[i] === split.y[i]) correct++;
  return correct / split.n;
}
