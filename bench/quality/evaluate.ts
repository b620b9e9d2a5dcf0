/** Accuracy of a backbone + task head on a split, batched on tfjs. */
import * as tf from '@tensorflow/tfjs';
import { INPUT_DIM, Split } from './datasets';
import { Arch, Weights } from './model';
import { disposeTensors, forwardTf, toTensors } from './tfmodel';

const BATCH = 2500;

/**
 * Each split's images are uploaded to the backend once and kept: the benchmark evaluates the
 * same validation and test sets hundreds of times, and the upload costs more than a forward pass.
 */
const uploaded = new WeakMap<Split, tf.Tensor2D[]>();

function batchesOf(split: Split): tf.Tensor2D[] {
  let batches = uploaded.get(split);
  if (!batches) {
    batches = [];
    for (let s = 0; s < split.n; s += BATCH) {
      const e = Math.min(split.n, s + BATCH);
      batches.push(tf.tensor2d(split.x.subarray(s * INPUT_DIM, e * INPUT_DIM), [e - s, INPUT_DIM]));
    }
    uploaded.set(split, batches);
  }
  return batches;
}

export function predictAll(a: Arch, backbone: Weights, head: Weights, split: Split): Uint8Array {
  const bb = toTensors(backbone);
  const hd = toTensors(head);
  const pred = new Uint8Array(split.n);
  try {
    for (const [k, x] of batchesOf(split).entries()) {
      const s = k * BATCH;
      const p = tf.tidy(() => tf.argMax(forwardTf(a, bb, hd, x), 1));
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
