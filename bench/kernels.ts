/**
 * Kernel throughput against the copy yardstick. Every kernel is credited with the minimal
 * bytes it must move (inputs read once, outputs written once), whatever it really does; the
 * figure of merit is its GB/s divided by the native copy's GB/s (read + written) measured
 * in the same run, for the same thread count and SIMD path, right before and after.
 */
import type { BandRules, MergeModel, NativeBinding, SimdPath, TensorInput } from '../lib/binding';
import { bandFactors } from '../lib/methods/sparsify/dp';
import { measure, MeasureOptions, Timing } from './measure';
import { Family, makeFamily, makeFloat32 } from './synthdata';

export interface KernelOptions extends MeasureOptions {
  /** Elements per tensor of the bf16 family (base + 3 fine-tunes). */
  n: number;
  /** Elements of the float32 tensor of `select_threshold` (45M in the real run). */
  selectN: number;
  /** Bytes of the copy yardstick's source (the same again written). */
  copyBytes: number;
  threads: number[];
  /** SIMD paths to measure (default: every available one). */
  simd?: SimdPath[];
  /** Kernel names to run (default: all). */
  only?: string[];
  log?: (line: string) => void;
}

export interface KernelFigure {
  gbps: number;
  /** gbps over the faster of the copies measured right before and right after it. */
  ratio_to_copy: number;
  copy_gbps: number;
  seconds: number;
  seconds_median: number;
  samples: number;
}

export interface ConfigResult {
  threads: number;
  simd: SimdPath;
  /** The fastest copy of this configuration. */
  copy_gbps: number;
  kernels: Record<string, KernelFigure>;
}

export interface KernelReport {
  n: number;
  select_n: number;
  copy_bytes: number;
  default_simd: SimdPath;
  configs: ConfigResult[];
}

/** TIES' density and DPPA's partitions, offsets and factors used by the kernel benchmarks. */
export const TIES_DENSITY = 0.2;
export const DPPA_PARTITIONS = [0.1, 0.2];
export const DPPA_AMPLIFY = [1.8, 1.0];
/** Stand-ins for DP's per-module offsets ℓ + m_j of the three fine-tunes. */
export const DPPA_OFFSETS = [0.012, -0.006, 0.021];

interface Kernel {
  name: string;
  /** Minimal bytes moved per call. */
  bytes: number;
  run: () => Promise<unknown>;
}

function bf16(data: Uint8Array): TensorInput {
  return { data, dtype: 'BF16' };
}

/** Every fine-tune's selection in one shared pass, as the library makes them (sparsify/common.ts). */
export async function tiesRules(native: NativeBinding, fam: Family): Promise<BandRules[]> {
  const ks = Float64Array.of(Math.floor(TIES_DENSITY * fam.n));
  return native.selectThresholdsShared({ base: bf16(fam.base), fts: fam.fts.map(bf16) }, fam.fts.map(() => ({ ks })));
}

export async function tiesMerge(native: NativeBinding, fam: Family, out: Uint8Array, rules?: BandRules[]): Promise<void> {
  const r = rules ?? (await tiesRules(native, fam));
  const models: MergeModel[] = fam.fts.map((ft, i) => ({
    ...bf16(ft),
    weight: 1,
    sparsify: { kind: 'bands', rules: r[i], factor: Float64Array.of(1) },
  }));
  await native.mergeTensor({ base: bf16(fam.base), models, consensus: 'sum', normalize: true, lambda: 1, out, outDtype: 'BF16' });
}

export async function taMerge(native: NativeBinding, fam: Family, out: Uint8Array): Promise<void> {
  const models: MergeModel[] = fam.fts.map((ft) => ({ ...bf16(ft), weight: 1, sparsify: { kind: 'dense', factor: 1 } }));
  await native.mergeTensor({ base: bf16(fam.base), models, consensus: 'none', normalize: false, lambda: 1, out, outDtype: 'BF16' });
}

async function dppaMerge(native: NativeBinding, fam: Family, out: Uint8Array): Promise<void> {
  const factor = bandFactors(DPPA_AMPLIFY);
  const requests = fam.fts.map((_, i) => ({
    ks: Float64Array.from(DPPA_PARTITIONS, (p) => Math.floor(Math.min(1, Math.max(0, p + DPPA_OFFSETS[i % DPPA_OFFSETS.length])) * fam.n)),
  }));
  const rules = await native.selectThresholdsShared({ base: bf16(fam.base), fts: fam.fts.map(bf16) }, requests);
  const models: MergeModel[] = fam.fts.map((ft, i) => ({ ...bf16(ft), weight: 1, sparsify: { kind: 'bands', rules: rules[i], factor } }));
  await native.mergeTensor({ base: bf16(fam.base), models, consensus: 'none', normalize: false, lambda: 1, out, outDtype: 'BF16' });
}

/** Throughput of every kernel at every (threads, SIMD path); restores both afterwards. */
export async function measureKernels(native: NativeBinding, options: KernelOptions): Promise<KernelReport> {
  const log = options.log ?? (() => undefined);
  const { n, selectN } = options;
  const fam = await makeFamily(native, n, 3);
  const f32 = new Float32Array(n);
  await native.decode(bf16(fam.base), f32);
  const f32out = new Float32Array(n);
  const out = new Uint8Array(n * 2);
  const sel = makeFloat32(selectN);
  const selBytes = new Uint8Array(sel.buffer, sel.byteOffset, sel.byteLength);
  const copySrc = new Uint8Array(options.copyBytes).fill(7);
  const copyDst = new Uint8Array(options.copyBytes);
  const rules = await tiesRules(native, fam);
  const thresholds = Float64Array.of(0.004, 0.01);

  const kernels: Kernel[] = [
    { name: 'decode_bf16', bytes: 6 * n, run: () => native.decode(bf16(fam.base), f32out) },
    { name: 'encode_bf16', bytes: 6 * n, run: () => native.encode(f32, 'BF16', out) },
    { name: 'delta_bf16', bytes: 8 * n, run: () => native.delta({ base: bf16(fam.base), ft: bf16(fam.fts[0]) }, f32out) },
    { name: 'abs_stats_bf16', bytes: 4 * n, run: () => native.absStats({ base: bf16(fam.base), ft: bf16(fam.fts[0]) }, thresholds) },
    {
      name: 'select_delta_bf16',
      bytes: 4 * n,
      run: () => native.selectThresholds({ base: bf16(fam.base), ft: bf16(fam.fts[0]) }, Float64Array.of(Math.floor(TIES_DENSITY * n))),
    },
    { name: 'ta_k3_bf16', bytes: 10 * n, run: () => taMerge(native, fam, out) },
    { name: 'ties_merge_only_k3_bf16', bytes: 10 * n, run: () => tiesMerge(native, fam, out, rules) },
    { name: 'ties_k3_bf16', bytes: 10 * n, run: () => tiesMerge(native, fam, out) },
    { name: 'dppa_k3_bf16', bytes: 10 * n, run: () => dppaMerge(native, fam, out) },
    {
      name: 'select_threshold',
      bytes: 4 * selectN,
      run: () => native.selectThresholds({ ft: { data: selBytes, dtype: 'F32' } }, Float64Array.of(Math.floor(TIES_DENSITY * selectN))),
    },
  ].filter((k) => !options.only || options.only.includes(k.name));

  const savedThreads = native.getThreads();
  const defaultSimd = native.simd.active;
  const simdPaths = options.simd ?? native.simd.available;
  const configs: ConfigResult[] = [];
  const copyOnce = () => measure(() => native.copy(copySrc, copyDst), options);
  const gbps = (bytes: number, t: Timing) => bytes / t.best / 1e9;
  try {
    for (const threads of options.threads) {
      for (const simd of simdPaths) {
        native.setThreads(threads);
        native.setSimd(simd);
        // A copy right before and after every kernel: on a shared machine the load changes
        // by the second, so each kernel is divided by the faster of its two neighbours.
        const copies = [gbps(2 * options.copyBytes, await copyOnce())];
        const timings: [Kernel, Timing][] = [];
        for (const k of kernels) {
          timings.push([k, await measure(k.run, options)]);
          copies.push(gbps(2 * options.copyBytes, await copyOnce()));
        }
        const copyGbps = Math.max(...copies);
        const result: ConfigResult = { threads, simd, copy_gbps: copyGbps, kernels: {} };
        timings.forEach(([k, t], i) => {
          const g = gbps(k.bytes, t);
          const yardstick = Math.max(copies[i], copies[i + 1]);
          result.kernels[k.name] = { gbps: g, ratio_to_copy: g / yardstick, copy_gbps: yardstick, seconds: t.best, seconds_median: t.median, samples: t.samples };
        });
        configs.push(result);
        log(
          `  threads ${threads} ${simd.padEnd(6)} copy ${copyGbps.toFixed(1)} GB/s (${Math.min(...copies).toFixed(1)}..${copyGbps.toFixed(1)}); ` +
            Object.entries(result.kernels).map(([name, f]) => `${name} ${f.ratio_to_copy.toFixed(2)}`).join(', '),
        );
      }
    }
  } finally {
    native.setThreads(savedThreads);
    native.setSimd(defaultSimd);
  }
  return { n, select_n: selectN, copy_bytes: options.copyBytes, default_simd: defaultSimd, configs };
}
