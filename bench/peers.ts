/**
 * The same merges in other frameworks, on the same data: TensorFlow.js (wasm backend, and
 * the pure-JS cpu backend as a footnote) and PyTorch doing mergekit's math
 * (bench/torch_peer.py through child_process). Each peer's time over ours = its speedup.
 */
import { spawnSync } from 'child_process';
import { promises as fsp } from 'fs';
import * as path from 'path';
import type { NativeBinding } from '../lib/binding';
import { measure, timeOnce } from './measure';
import { Family, makeFamily } from './synthdata';
import { taMerge, TIES_DENSITY, tiesMerge } from './kernels';

export interface OursTimes {
  threads: number;
  task_arithmetic_seconds: number;
  ties_seconds: number;
}

/** Our TA and TIES on the family, best of benchmark.js samples, at the given thread count. */
export async function oursOn(native: NativeBinding, fam: Family, threads: number, minSamples: number, maxTime: number): Promise<OursTimes> {
  const saved = native.getThreads();
  native.setThreads(threads);
  try {
    const out = new Uint8Array(fam.n * 2);
    const ta = await measure(() => taMerge(native, fam, out), { minSamples, maxTime });
    const ties = await measure(() => tiesMerge(native, fam, out), { minSamples, maxTime });
    return { threads, task_arithmetic_seconds: ta.best, ties_seconds: ties.best };
  } finally {
    native.setThreads(saved);
  }
}

export function bf16ToFloat32(bytes: Uint8Array): Float32Array {
  const halves = new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.length / 2);
  const out = new Float32Array(halves.length);
  const bits = new Uint32Array(out.buffer);
  for (let i = 0; i < halves.length; i++) bits[i] = halves[i] << 16;
  return out;
}

export interface TfjsResult {
  backend: string;
  version: string;
  threads: number;
  n: number;
  /** bf16 → f32 of base + 3 fine-tunes in JS, reported apart, not counted in the merges. */
  decode_seconds: number;
  task_arithmetic_seconds: number;
  /** null when skipped (the cpu backend's TIES in --quick). */
  ties_seconds: number | null;
  /**
   * Same-math check: the fraction of TIES outputs where tfjs and ours differ by more than
   * bf16 rounding. Not 0: bf16 inputs make many |δ| tie at the threshold, and tfjs keeps
   * every tie (>= k-th value) where we keep exactly k, lower index first.
   */
  ties_mismatch_fraction: number | null;
}

type Tf = typeof import('@tensorflow/tfjs');

/** TIES in tfjs: top-k of |δ| for the threshold, masks, sign election, disjoint mean. */
function tfTies(tf: Tf, base: import('@tensorflow/tfjs').Tensor1D, fts: import('@tensorflow/tfjs').Tensor1D[], density: number) {
  return tf.tidy(() => {
    const n = base.shape[0];
    const k = Math.floor(density * n);
    const trimmed = fts.map((ft) => {
      const d = tf.sub(ft, base);
      const a = tf.abs(d);
      const kth = tf.slice(tf.topk(a, k, true).values, k - 1, 1);
      return tf.mul(d, tf.cast(tf.greaterEqual(a, kth), 'float32'));
    });
    const total = tf.addN(trimmed);
    const majority = tf.where(tf.greaterEqual(total, 0), tf.onesLike(total), tf.onesLike(total).neg());
    const agree = trimmed.map((t) => tf.cast(tf.equal(tf.sign(t), majority), 'float32'));
    const mixed = tf.addN(trimmed.map((t, i) => tf.mul(t, agree[i])));
    const divisor = tf.addN(agree);
    const safe = tf.where(tf.less(tf.abs(divisor), 1e-8), tf.onesLike(divisor), divisor);
    return tf.add(base, tf.div(mixed, safe));
  });
}

function tfTaskArithmetic(tf: Tf, base: import('@tensorflow/tfjs').Tensor1D, fts: import('@tensorflow/tfjs').Tensor1D[]) {
  return tf.tidy(() => tf.add(base, tf.addN(fts.map((ft) => tf.sub(ft, base)))));
}

export async function tfjsPeer(native: NativeBinding, fam: Family, backend: 'wasm' | 'cpu', reps: number, withTies = true): Promise<TfjsResult> {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const tf = require('@tensorflow/tfjs') as Tf;
  if (backend === 'wasm') require('@tensorflow/tfjs-backend-wasm');
  if (!(await tf.setBackend(backend))) throw new Error(`tfjs backend ${backend} did not start`);
  await tf.ready();
  let decoded: Float32Array[] = [];
  const decodeSeconds = await timeOnce(async () => {
    decoded = [fam.base, ...fam.fts].map(bf16ToFloat32);
  });
  const [base, ...fts] = decoded.map((d) => tf.tensor1d(d));
  const best = async (make: () => import('@tensorflow/tfjs').Tensor) => {
    let seconds = Infinity;
    let last: Float32Array | undefined;
    for (let r = 0; r <= reps; r++) {
      const t = await timeOnce(async () => {
        const result = make();
        last = (await result.data()) as Float32Array;
        result.dispose();
      });
      if (r > 0) seconds = Math.min(seconds, t); // r = 0 warms up
    }
    return { seconds, last: last! };
  };
  try {
    const ta = await best(() => tfTaskArithmetic(tf, base, fts));
    const ties = withTies ? await best(() => tfTies(tf, base, fts, TIES_DENSITY)) : null;
    let mismatch: number | null = null;
    if (ties) {
      const ours = new Uint8Array(fam.n * 2);
      await tiesMerge(native, fam, ours);
      const oursF = bf16ToFloat32(ours);
      let bad = 0;
      for (let i = 0; i < fam.n; i++) if (Math.abs(oursF[i] - ties.last[i]) > 2 ** -7 * Math.abs(ties.last[i]) + 1e-7) bad++;
      mismatch = bad / fam.n;
    }
    return {
      backend,
      version: tf.version.tfjs,
      threads: 1,
      n: fam.n,
      decode_seconds: decodeSeconds,
      task_arithmetic_seconds: ta.seconds,
      ties_seconds: ties ? ties.seconds : null,
      ties_mismatch_fraction: mismatch,
    };
  } finally {
    tf.dispose([base, ...fts]);
  }
}

export interface TorchResult {
  python: string;
  torch_version: string;
  threads: number;
  n: number;
  task_arithmetic_seconds: number;
  ties_seconds: number;
}

export const PYTHON = process.env.DPPA_BENCH_PYTHON ?? '/usr/bin/python3';

/** null when python3 or torch is missing (the reason goes to `log`); never throws for that. */
export async function torchPeer(fam: Family, dir: string, threads: number, reps: number, log: (line: string) => void): Promise<TorchResult | null> {
  const probe = spawnSync(PYTHON, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) {
    log(`  torch: not available (${probe.error ? probe.error.message : (probe.stderr || '').trim().split('\n').pop()}); torch_speedup = null`);
    return null;
  }
  await fsp.mkdir(dir, { recursive: true });
  const files = [['base.bin', fam.base], ...fam.fts.map((ft, i) => [`ft${i}.bin`, ft] as const)] as [string, Uint8Array][];
  for (const [name, data] of files) await fsp.writeFile(path.join(dir, name), data);
  const script = path.resolve(__dirname, '..', '..', 'bench', 'torch_peer.py');
  const run = spawnSync(PYTHON, [script, dir, String(fam.n), String(fam.fts.length), String(TIES_DENSITY), String(threads), String(reps)], {
    encoding: 'utf8',
    maxBuffer: 1 << 20,
    env: { ...process.env, OMP_NUM_THREADS: String(threads), MKL_NUM_THREADS: String(threads) },
  });
  if (run.error || run.status !== 0) {
    log(`  torch: the peer failed (${run.error?.message ?? run.stderr.trim().split('\n').slice(-3).join(' | ')}); torch_speedup = null`);
    return null;
  }
  const parsed = JSON.parse(run.stdout.trim().split('\n').pop()!);
  return { python: PYTHON, ...parsed };
}

export { makeFamily };
