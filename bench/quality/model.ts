/**
 * The benchmark's model: a residual MLP classifier laid out like a Llama decoder so the
 * merge library sees familiar tensor names.
 *
 *   h = W_in · x                                         model.embed_in.weight   [H, 784]
 *   for each layer i:  h += W_down,i · relu(W_up,i · rms(h))
 *                      model.layers.i.mlp.up_proj.weight [F, H], …down_proj.weight [H, F]
 *   logits = W_head · rms(h) + b_head                    lm_head.weight [C, H], lm_head.bias [C]
 *
 * rms(h) = h / sqrt(mean(h²) + ε) has no weights, so training is stable at large learning
 * rates and no norm tensor carries a delta. The backbone (input projection + layers) is what
 * gets pruned and merged; each task keeps its own head, stored beside the backbone.
 * Weights are row-major [out, in] (PyTorch's layout), so a linear layer is y = W · x.
 */
import { Rng } from './rng';

export interface Arch {
  inputDim: number;
  hidden: number;
  ffn: number;
  layers: number;
  classes: number;
}

export const ARCH: Arch = { inputDim: 784, hidden: 128, ffn: 256, layers: 4, classes: 10 };

export const RMS_EPS = 1e-5;

export interface Tensor {
  shape: number[];
  data: Float32Array;
}

/** Tensor name → tensor. Insertion order is the order tensors are written. */
export type Weights = Map<string, Tensor>;

export const EMBED = 'model.embed_in.weight';
export const HEAD_W = 'lm_head.weight';
export const HEAD_B = 'lm_head.bias';
export const upName = (i: number) => `model.layers.${i}.mlp.up_proj.weight`;
export const downName = (i: number) => `model.layers.${i}.mlp.down_proj.weight`;

export function backboneShapes(a: Arch): [string, number[]][] {
  const out: [string, number[]][] = [[EMBED, [a.hidden, a.inputDim]]];
  for (let i = 0; i < a.layers; i++) {
    out.push([upName(i), [a.ffn, a.hidden]]);
    out.push([downName(i), [a.hidden, a.ffn]]);
  }
  return out;
}

export function headShapes(a: Arch): [string, number[]][] {
  return [
    [HEAD_W, [a.classes, a.hidden]],
    [HEAD_B, [a.classes]],
  ];
}

function gaussian(shape: number[], std: number, rng: Rng): Tensor {
  const data = new Float32Array(shape.reduce((x, y) => x * y, 1));
  for (let i = 0; i < data.length; i++) data[i] = rng.normal() * std;
  return { shape, data };
}

/** He init for the up projections; down projections scaled by 1/√(2·layers) so the residual stream stays bounded at init. */
export function initBackbone(a: Arch, rng: Rng): Weights {
  const w: Weights = new Map();
  w.set(EMBED, gaussian([a.hidden, a.inputDim], Math.sqrt(1 / a.inputDim) * 3, rng));
  for (let i = 0; i < a.layers; i++) {
    w.set(upName(i), gaussian([a.ffn, a.hidden], Math.sqrt(2 / a.hidden), rng));
    w.set(downName(i), gaussian([a.hidden, a.ffn], Math.sqrt(1 / a.ffn) / Math.sqrt(2 * a.layers), rng));
  }
  return w;
}

export function initHead(a: Arch, rng: Rng): Weights {
  const w: Weights = new Map();
  w.set(HEAD_W, gaussian([a.classes, a.hidden], Math.sqrt(1 / a.hidden), rng));
  w.set(HEAD_B, { shape: [a.classes], data: new Float32Array(a.classes) });
  return w;
}

export function cloneWeights(w: Weights): Weights {
  const out: Weights = new Map();
  for (const [k, t] of w) out.set(k, { shape: t.shape.slice(), data: t.data.slice() });
  return out;
}

function need(w: Weights, name: string): Float32Array {
  const t = w.get(name);
  if (!t) throw new Error(`missing tensor ${name}`);
  return t.data;
}

/** y[o] = Σ_i W[o, i] · x[i], accumulated in float64 (this is the reference path). */
function linear(W: Float32Array, x: Float64Array, outDim: number, inDim: number): Float64Array {
  const y = new Float64Array(outDim);
  for (let o = 0; o < outDim; o++) {
    let s = 0;
    const row = o * inDim;
    for (let i = 0; i < inDim; i++) s += W[row + i] * x[i];
    y[o] = s;
  }
  return y;
}

function rms(h: Float64Array): Float64Array {
  let ss = 0;
  for (const v of h) ss += v * v;
  const inv = 1 / Math.sqrt(ss / h.length + RMS_EPS);
  return h.map((v) => v * inv);
}

/**
 * Plain-array forward pass for one example: the reference the tfjs path is tested against,
 * and a way to evaluate a checkpoint without tfjs.
 */
export function forwardPlain(a: Arch, backbone: Weights, head: Weights, x: Float32Array): Float64Array {
  let h = linear(need(backbone, EMBED), Float64Array.from(x), a.hidden, a.inputDim);
  for (let i = 0; i < a.layers; i++) {
    const u = linear(need(backbone, upName(i)), rms(h), a.ffn, a.hidden).map((v) => (v > 0 ? v : 0));
    const d = linear(need(backbone, downName(i)), u, a.hidden, a.ffn);
    h = h.map((v, k) => v + d[k]);
  }
  const logits = linear(need(head, HEAD_W), rms(h), a.classes, a.hidden);
  const b = need(head, HEAD_B);
  return logits.map((v, k) => v + b[k]);
}
