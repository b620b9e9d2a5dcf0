/**
 * Timing through benchmark.js: each op is an async function run as a deferred benchmark,
 * called by reference (no decompilation). The figure used is the fastest sample: on a
 * shared machine noise only ever adds time, so the best sample is the closest estimate of
 * what the hardware does; the median is kept beside it to show the spread.
 */
// eslint-disable-next-line @typescript-eslint/no-var-requires
const Benchmark = require('benchmark') as BenchmarkCtor;

interface Deferred { resolve(): void }
interface BenchmarkInstance {
  stats: { sample: number[] };
  error?: unknown;
  aborted?: boolean;
  on(event: string, cb: () => void): void;
  run(options: { async: boolean }): void;
}
type BenchmarkCtor = new (name: string, options: Record<string, unknown>) => BenchmarkInstance;

export interface Timing {
  /** Fastest sample, seconds per call. */
  best: number;
  median: number;
  samples: number;
}

export interface MeasureOptions {
  /** Fewest samples (default 5). */
  minSamples?: number;
  /** Seconds to keep sampling after minSamples are reached (benchmark.js maxTime, default 2). */
  maxTime?: number;
}

export function measure(fn: () => Promise<unknown>, options: MeasureOptions = {}): Promise<Timing> {
  return new Promise((resolve, reject) => {
    let failure: unknown;
    const bench = new Benchmark('op', {
      defer: true,
      async: true,
      initCount: 1,
      minSamples: options.minSamples ?? 5,
      maxTime: options.maxTime ?? 2,
      fn: (deferred: Deferred) => {
        fn().then(
          () => deferred.resolve(),
          (error) => {
            failure ??= error;
            deferred.resolve();
          },
        );
      },
    });
    bench.on('complete', () => {
      if (failure !== undefined || bench.error !== undefined) {
        reject(failure ?? bench.error);
        return;
      }
      const sample = bench.stats.sample.slice().sort((a, b) => a - b);
      if (sample.length === 0) {
        reject(new Error('benchmark produced no samples'));
        return;
      }
      resolve({ best: sample[0], median: sample[Math.floor(sample.length / 2)], samples: sample.length });
    });
    // One warm-up call first: page faults of fresh buffers, thread pool start.
    fn().then(() => bench.run({ async: true }), reject);
  });
}

/** Wall time of one call, seconds. */
export async function timeOnce(fn: () => Promise<unknown>): Promise<number> {
  const start = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - start) / 1e9;
}
