/**
 * The process the concurrency test (83) runs, so that a hang or a crash of the addon under
 * worker_threads fails one test instead of the whole suite. Prints one JSON line.
 *
 *   node dist/test/83.child.js concurrent|after-exit|terminate
 */
import * as path from 'path';
import { Worker } from 'worker_threads';
import { native } from '../lib/native';
import { workload } from './83.workload';

const workerFile = path.join(__dirname, '83.worker.js');

function runWorker(seed: number, rounds: number): Promise<{ digests: string[]; simd: string }> {
  return new Promise((resolve, reject) => {
    const w = new Worker(workerFile, { workerData: { seed, rounds, stay: true } });
    w.once('message', (m) => (m.error ? reject(new Error(m.error)) : resolve(m)));
    w.once('error', reject);
  });
}

/** The workload on the main thread, or 'hang' when it does not settle within `ms`. */
function mainWorkload(seed: number, ms = 15000): Promise<string> {
  return Promise.race([workload(native(), seed), new Promise<string>((r) => setTimeout(() => r('hang'), ms).unref())]);
}

async function main(): Promise<unknown> {
  const scenario = process.argv[2];
  if (scenario === 'concurrent') {
    // Workers stay alive until every result is in (see 83.concurrency.test.ts on why).
    const seeds = [1, 2, 3, 1];
    const expected: Record<number, string> = {};
    for (const s of [1, 2, 3]) expected[s] = await workload(native(), s);
    const [results, mainAgain] = await Promise.all([
      Promise.all(seeds.map((s) => runWorker(s, 2))),
      (async () => [await workload(native(), 2), await workload(native(), 3)])(),
    ]);
    return { expected, seeds, workers: results, main: mainAgain, simd: native().simd.active };
  }
  if (scenario === 'after-exit') {
    const before = await mainWorkload(1);
    await new Promise<void>((resolve, reject) => {
      const w = new Worker(workerFile, { workerData: { seed: 2, rounds: 1 } });
      w.once('error', reject);
      w.once('exit', () => resolve());
    });
    return { before, after: await mainWorkload(1) };
  }
  if (scenario === 'terminate') {
    const before = await mainWorkload(1);
    for (const delay of [0, 5, 30, 80]) {
      const w = new Worker(workerFile, { workerData: { seed: 9, rounds: 50 } });
      w.on('error', () => undefined);
      await new Promise((r) => setTimeout(r, delay));
      await w.terminate();
    }
    return { before, after: await mainWorkload(1) };
  }
  throw new Error(`unknown scenario ${scenario}`);
}

main().then(
  (r) => {
    process.stdout.write(`${JSON.stringify(r)}\n`);
    process.exit(0);
  },
  (e) => {
    process.stdout.write(`${JSON.stringify({ error: String(e?.stack ?? e) })}\n`);
    process.exit(1);
  },
);
