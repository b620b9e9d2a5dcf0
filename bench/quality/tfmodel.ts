/**
 * The same network as model.ts, on tfjs: variables for training and a batched forward pass
 * for evaluation. On tfjs every 2-D weight is held transposed, [in, out], so a linear layer is
 * a plain matMul(x, Wᵀ): the wasm backend's matMul with transposeB is ~12× slower than
 * without it. Conversion happens only when weights enter or leave tfjs.
 */
import * as tf from '@tensorflow/tfjs';
import { Arch, EMBED, HEAD_B, HEAD_W, RMS_EPS, Tensor, Weights, downName, upName } from './model';

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

/** A [rows, cols] row-major matrix transposed to [cols, rows]. */
export function transpose2d(data: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(data.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = data[r * cols + c];
  return out;
}

/** A weight as tfjs holds it: 2-D tensors transposed to [in, out]. */
function toTfLayout(t: Tensor): tf.Tensor {
  if (t.shape.length !== 2) return tf.tensor(t.data, t.shape, 'float32');
  const [rows, cols] = t.shape;
  return tf.tensor2d(transpose2d(t.data, rows, cols), [cols, rows]);
}

export function toVariables(w: Weights, trainable: (name: string) => boolean, prefix = ''): TfWeights {
  const out: TfWeights = new Map();
  for (const [name, t] of w) {
    const init = toTfLayout(t);
    out.set(name, tf.variable(init, trainable(name), `${prefix}${name}`));
    init.dispose();
  }
  return out;
}

export function fromVariables(vars: TfWeights): Weights {
  const out: Weights = new Map();
  for (const [name, v] of vars) {
    const data = v.dataSync() as Float32Array;
    if (v.shape.length !== 2) {
      out.set(name, { shape: v.shape.slice(), data: Float32Array.from(data) });
    } else {
      const [cols, rows] = v.shape;
      out.set(name, { shape: [rows, cols], data: transpose2d(data, cols, rows) });
    }
  }
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

/** Logits for a batch x [B, inputDim], weights in tfjs layout. Call inside tf.tidy. */
export function forwardTf(a: Arch, backbone: AnyWeights, head: AnyWeights, x: tf.Tensor2D): tf.Tensor2D {
  let h: tf.Tensor2D = tf.matMul(x, get(backbone, EMBED));
  for (let i = 0; i < a.layers; i++) {
    const u = tf.relu(tf.matMul(rmsNorm(h), get(backbone, upName(i))));
    h = tf.add(h, tf.matMul(u, get(backbone, downName(i)))) as tf.Tensor2D;
  }
  return tf.add(tf.matMul(rmsNorm(h), get(head, HEAD_W)), head.get(HEAD_B)!) as tf.Tensor2D;
}

/** Uploads plain weights as constant tensors in tfjs layout (for evaluation of a merged checkpoint). */
export function toTensors(w: Weights): Map<string, tf.Tensor> {
  const out = new Map<string, tf.Tensor>();
  for (const [name, t] of w) out.set(name, toTfLayout(t));
  return out;
}

export function disposeTensors(w: Map<string, tf.Tensor>): void {
  for (const t of w.values()) t.dispose();
}
