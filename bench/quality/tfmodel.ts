/**
 * The same network as model.ts, on tfjs: variables for training and a batched forward pass
 * for evaluation. Weights stay in [out, in] layout; y = x · Wᵀ is matMul(x, W, false, true).
 */
import * as tf from '@tensorflow/tfjs';
import { Arch, EMBED, HEAD_B, HEAD_W, RMS_EPS, Weights, downName, upName } from './model';

let backendReady: Promise<void> | undefined;

/** Selects the wasm backend once (tfjs-node cannot be installed here; wasm is ~10× the pure-JS cpu backend). */
export function initTf(): Promise<void> {
  if (!backendReady) {
    backendReady = (async () => {
      require('@tensorflow/tfjs-backend-wasm');
      if (!(await tf.setBackend('wasm'))) throw new Error('tfjs wasm backend failed to initialize');
      await tf.ready();
    })();
  }
  return backendReady;
}

export type TfWeights = Map<string, tf.Variable>;

export function toVariables(w: Weights, trainable: (name: string) => boolean, prefix = ''): TfWeights {
  const out: TfWeights = new Map();
  for (const [name, t] of w) {
    out.set(name, tf.variable(tf.tensor(t.data, t.shape, 'float32'), trainable(name), `${prefix}${name}`));
  }
  return out;
}

export function fromVariables(vars: TfWeights): Weights {
  const out: Weights = new Map();
  for (const [name, v] of vars) out.set(name, { shape: v.shape.slice(), data: v.dataSync() as Float32Array });
  return out;
}

export function disposeVariables(vars: TfWeights): void {
  for (const v of vars.values()) v.dispose();
}

function rmsNorm(h: tf.Tensor2D): tf.Tensor2D {
  const inv = tf.rsqrt(tf.add(tf.mean(tf.square(h), 1, true), RMS_EPS));
  return tf.mul(h, inv) as tf.Tensor2D;
}

type AnyWeights = Map<string, tf.Tensor>;

function get(w: AnyWeights, name: string): tf.Tensor2D {
  const t = w.get(name);
  if (!t) throw new Error(`missing tensor ${name}`);
  return t as tf.Tensor2D;
}

/** Logits for a batch x [B, inputDim]. Call inside tf.tidy. */
export function forwardTf(a: Arch, backbone: AnyWeights, head: AnyWeights, x: tf.Tensor2D): tf.Tensor2D {
  let h: tf.Tensor2D = tf.matMul(x, get(backbone, EMBED), false, true);
  for (let i = 0; i < a.layers; i++) {
    const u = tf.relu(tf.matMul(rmsNorm(h), get(backbone, upName(i)), false, true));
    h = tf.add(h, tf.matMul(u, get(backbone, downName(i)), false, true)) as tf.Tensor2D;
  }
  return tf.add(tf.matMul(rmsNorm(h), get(head, HEAD_W), false, true), head.get(HEAD_B)!) as tf.Tensor2D;
}

/** Uploads plain weights as constant tensors (for evaluation of a merged checkpoint). */
export function toTensors(w: Weights): Map<string, tf.Tensor> {
  const out = new Map<string, tf.Tensor>();
  for (const [name, t] of w) out.set(name, tf.tensor(t.data, t.shape, 'float32'));
  return out;
}

export function disposeTensors(w: Map<string, tf.Tensor>): void {
  for (const t of w.values()) t.dispose();
}
