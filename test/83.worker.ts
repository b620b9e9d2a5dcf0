/**
 * Worker of the concurrency test (83): loads the addon in its own thread and runs the
 * deterministic workload of 83.workload.ts `rounds` times, posting the digest of each round.
 */
import { parentPort, workerData } from 'worker_threads';
import { native } from '../lib/native';
import { workload } from './83.workload';

(async () => {
  const { seed, rounds } = workerData as { seed: number; rounds: number };
  const digests: string[] = [];
  for (let r = 0; r < rounds; r++) digests.push(await workload(native(), seed));
  parentPort!.postMessage({ digests, simd: native().simd.active });
  // stay: keep the thread alive (listening) until the parent ends the process.
  if ((workerData as { stay?: boolean }).stay) parentPort!.on('message', () => undefined);
})().catch((e) => parentPort!.postMessage({ error: String(e?.stack ?? e) }));
