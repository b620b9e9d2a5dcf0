/**
 * Training on tfjs: multi-task pre-training of the shared base, then one fine-tune per task.
 * Every shuffle comes from a seeded Rng and the wasm backend runs single-threaded, so the
 * same seed gives the same checkpoint.
 */
import * as tf from '@tensorflow/tfjs';
import { INPUT_DIM, NUM_CLASSES, Split, Task } from './datasets';
import { Arch, EMBED, Weights, initBackbone, initHead } from './model';
import { Rng } from './rng';
import { TfWeights, disposeVariables, forwardTf, fromVariables, toVariables } from './tfmodel';

export interface TrainSpec {
  epochs: number;
  lr: number;
  batch: number;
  seed: number;
  /** Train on at most this many examples per task (the first ones of a seeded shuffle). */
  maxExamples?: number;
  /**
   * 'adam' or 'momentum' (SGD, momentum 0.9). Fine-tunes use momentum SGD: its deltas are
   * accumulated raw gradients, heavy-tailed like LLM fine-tune deltas, while Adam's
   * normalized steps give nearly uniform |δ| with no outliers for DP's offsets to detect.
   */
  optimizer: 'adam' | 'momentum';
  /** Whether the input projection is trained (the base: yes; fine-tunes: no, see run.ts). */
  trainEmbed: boolean;
}

type Log = (msg: string) => void;

class Batcher {
  private readonly x: Float32Array;
  private readonly y: Int32Array;
  private order: Uint32Array = new Uint32Array(0);
  private pos = 0;

  constructor(private readonly split: Split, private readonly limit: number, private readonly batch: number, private readonly rng: Rng) {
    this.x = new Float32Array(batch * INPUT_DIM);
    this.y = new Int32Array(batch);
    // A fixed subset when `limit` < n; reshuffled every epoch.
    this.order = rng.permutation(split.n).slice(0, limit);
  }

  get stepsPerEpoch(): number {
    return Math.floor(this.limit / this.batch);
  }

  next(): { x: tf.Tensor2D; y: tf.Tensor2D } {
    if (this.pos + this.batch > this.order.length) {
      const perm = this.rng.permutation(this.order.length);
      this.order = Uint32Array.from(perm, (i) => this.order[i]);
      this.pos = 0;
    }
    for (let i = 0; i < this.batch; i++) {
      const s = this.order[this.pos + i];
      this.x.set(this.split.x.subarray(s * INPUT_DIM, (s + 1) * INPUT_DIM), i * INPUT_DIM);
      this.y[i] = this.split.y[s];
    }
    this.pos += this.batch;
    return {
      x: tf.tensor2d(this.x, [this.batch, INPUT_DIM]),
      y: tf.oneHot(tf.tensor1d(this.y, 'int32'), NUM_CLASSES) as tf.Tensor2D,
    };
  }
}

function lossOf(a: Arch, backbone: TfWeights, head: TfWeights, b: { x: tf.Tensor2D; y: tf.Tensor2D }): tf.Scalar {
  return tf.losses.softmaxCrossEntropy(b.y, forwardTf(a, backbone, head, b.x)) as tf.Scalar;
}

function trainLoop(
  a: Arch,
  backbone: TfWeights,
  heads: TfWeights[],
  batchers: Batcher[],
  spec: TrainSpec,
  label: string,
  log: Log,
): void {
  const optimizer = spec.optimizer === 'adam' ? tf.train.adam(spec.lr) : tf.train.momentum(spec.lr, 0.9);
  // A cosine decay to 0, set in place every step (Adam reads `learningRate`, momentum SGD a
  // cached scalar that setLearningRate refreshes); it gives noticeably better final accuracy
  // than a constant rate at the same budget.
  const schedule = optimizer as unknown as { learningRate: number; setLearningRate?: (lr: number) => void };
  const setRate = (lr: number) => (schedule.setLearningRate ? schedule.setLearningRate(lr) : (schedule.learningRate = lr));
  const steps = spec.epochs * Math.min(...batchers.map((b) => b.stepsPerEpoch));
  const vars = [...backbone.values(), ...heads.flatMap((h) => [...h.values()])].filter((v) => v.trainable);
  const t0 = Date.now();
  let running = 0;
  for (let step = 1; step <= steps; step++) {
    setRate(spec.lr * 0.5 * (1 + Math.cos((Math.PI * (step - 1)) / steps)));
    const batches = batchers.map((b) => b.next());
    const cost = optimizer.minimize(
      () => tf.addN(batches.map((b, k) => lossOf(a, backbone, heads[k], b))).div(batches.length) as tf.Scalar,
      true,
      vars,
    );
    running = 0.98 * running + 0.02 * cost!.dataSync()[0];
    cost!.dispose();
    for (const b of batches) tf.dispose([b.x, b.y]);
    if (step % 200 === 0 || step === steps) {
      log(`  ${label}: step ${step}/${steps} loss≈${(running / (1 - 0.98 ** step)).toFixed(4)} (${((Date.now() - t0) / 1000).toFixed(0)} s)`);
    }
  }
  optimizer.dispose();
}

/** The shared base: every task's training examples mixed (one batch of each per step). */
export function pretrain(a: Arch, tasks: Task[], spec: TrainSpec, log: Log): { backbone: Weights; heads: Map<string, Weights> } {
  const rng = new Rng(spec.seed);
  const backbone = toVariables(initBackbone(a, rng), (n) => spec.trainEmbed || n !== EMBED, 'base/');
  const heads = tasks.map((t) => toVariables(initHead(a, rng), () => true, `base/${t.name}/`));
  const batchers = tasks.map((t) => new Batcher(t.train, Math.min(t.train.n, spec.maxExamples ?? Infinity), spec.batch, rng));
  trainLoop(a, backbone, heads, batchers, spec, 'base', log);
  const result = { backbone: fromVariables(backbone), heads: new Map(tasks.map((t, k) => [t.name, fromVariables(heads[k])])) };
  disposeVariables(backbone);
  heads.forEach(disposeVariables);
  return result;
}

export function finetune(
  a: Arch,
  base: Weights,
  baseHead: Weights,
  task: Task,
  spec: TrainSpec,
  label: string,
  log: Log,
): { backbone: Weights; head: Weights } {
  const rng = new Rng(spec.seed);
  const backbone = toVariables(base, (n) => spec.trainEmbed || n !== EMBED, `${label}/`);
  const head = toVariables(baseHead, () => true, `${label}/head/`);
  const batcher = new Batcher(task.train, Math.min(task.train.n, spec.maxExamples ?? Infinity), spec.batch, rng);
  trainLoop(a, backbone, [head], [batcher], spec, label, log);
  const result = { backbone: fromVariables(backbone), head: fromVariables(head) };
  disposeVariables(backbone);
  disposeVariables(head);
  return result;
}
