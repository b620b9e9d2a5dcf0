/**
 * The raw native object, as the addon exports it (native/src/addon). This file is the
 * contract between the C++ core and the TypeScript layer: the addon implements exactly
 * this, `lib/native.ts` loads it, and everything else in lib/ calls it through that.
 *
 * Conventions:
 * - Tensors travel as typed arrays, zero-copy: the addon reads and writes their memory in
 *   place and keeps them alive until the Promise settles. Do not touch them meanwhile.
 * - `Uint8Array` inputs hold raw little-endian tensor bytes in the named dtype.
 * - δ (the delta) is always `decode(ft) - decode(base)`, computed in float32.
 * - "abs bits" of a float32 x are its IEEE bits with the sign cleared: as unsigned integers
 *   they order exactly like |x|, which is what thresholds compare.
 * - Every async call runs on the addon's own thread pool, never on libuv's, and returns a
 *   Promise. Bad arguments throw a TypeError synchronously (wrong type, lengths that
 *   disagree, detached buffers, unknown dtype); failures during the job reject the Promise.
 */

/** dtypes the kernels decode. */
export type InputDType = 'F32' | 'F16' | 'BF16' | 'F64' | 'F8_E4M3' | 'F8_E5M2';
/** dtypes the kernels encode (rounding to nearest, ties to even). */
export type OutputDType = 'F32' | 'F16' | 'BF16';
export type SimdPath = 'scalar' | 'avx2' | 'avx512';

/** One input tensor: its bytes and dtype. Element count = bytes / dtype size. */
export interface TensorInput {
  data: Uint8Array;
  dtype: InputDType;
}

/**
 * A δ to work on: `ft - base`. With `base` omitted the input itself is used (δ = ft), which
 * is how linear/slerp-style statistics and tests on plain data are done.
 */
export interface DeltaInput {
  base?: TensorInput;
  ft: TensorInput;
}

/** Several fine-tunes over one base: δ_t = decode(fts[t]) - decode(base). */
export interface SharedDeltaInput {
  base?: TensorInput;
  fts: TensorInput[];
}

/** One fine-tune's whole-tensor selection in `selectThresholdsShared`. */
export interface SelectRequest {
  ks: Float64Array;
  rule?: 'index' | 'drop';
}

/**
 * Keep-rules from magnitude selection, per band, tight to loose. An element with abs bits
 * `a` at flat index `i` is kept by band b when `a > bits[b]`, or `a == bits[b]` and
 * `i <= cutoff[b]` (ties are kept lower index first). `cutoff = -1` keeps no element equal
 * to the threshold. With `rows > 0` the tensor is `rows` equal rows and the arrays hold
 * `rows * nbands` entries, row-major: entry `r * nbands + b`.
 */
export interface BandRules {
  bits: Uint32Array;
  cutoff: Float64Array;
  rows?: number;
}

/**
 * How one model's δ is sparsified inside the fused merge kernel. Exactly one of:
 * - dense:     value = factor · δ
 * - bands:     value = factor[b] · δ for the first (tightest) band b that keeps the element,
 *              0 when none does (DP, DPA, TIES' magnitude, Breadcrumbs)
 * - random:    DARE: keep with probability `density` from the counter-based generator,
 *              value = rescale · δ when kept, else 0
 * - della:     DELLA's MAGPRUNE (algorithms.md §1 `della_magprune`). Per row of m elements
 *              (`rows` > 0: the tensor is `rows` equal rows; 0: the whole tensor is one row):
 *              rank = position when the row is ordered by abs bits of δ ascending, ties by
 *              lower index first (0..m−1; NaN ranks above Inf); r̂ = rank / (m − 1) in float64
 *              (0.5 when m = 1); keep probability p = fround((density − epsilon) +
 *              (2·epsilon)·r̂) (float64, rounded to float32 once). Element i is kept when
 *              u_i < p, u_i from the same generator layout as 'random'; value = δ / p (float32
 *              division) when `rescale` is 1, fround(factor · δ) when it is 0 (factor: 1
 *              unless given; the `l1` rescale's constant); 0 when dropped. TypeError unless
 *              0 <= epsilon, 0 < density − epsilon, density + epsilon < 1, rescale ∈ {0, 1},
 *              factor finite and 1 with rescale 1, and `rows` divides the element count. In
 *              sparsifyStats, sumAbsKept counts |δ| of kept elements before any rescale.
 */
export type Sparsify =
  | { kind: 'dense'; factor: number }
  | { kind: 'bands'; rules: BandRules; factor: Float64Array }
  | { kind: 'random'; stream: RandomStream; density: number; rescale: number }
  | {
      kind: 'della';
      stream: RandomStream;
      density: number;
      epsilon: number;
      rows: number;
      /** 1 = divide kept values by their keep probability (the default), 0 = none. */
      rescale: number;
      /** With rescale 0: kept values are multiplied by this (rescale `l1`). Default 1. */
      factor?: number;
    };

/**
 * The counter-based generator's key: Philox4x32-10 with key = (seedLo, seedHi) and counter
 * = (floor(i / 4) low 32 bits, floor(i / 4) high 32 bits, streamLo, streamHi); element i
 * uses output word i % 4, u = (word >>> 8) · 2^-24, and is kept when u < density.
 * (streamLo, streamHi) is FNV-1a-64 of `${modelName}\u0000${tensorName}` (lib/rng.ts).
 */
export interface RandomStream {
  seedLo: number;
  seedHi: number;
  streamLo: number;
  streamHi: number;
}

export interface MergeModel extends TensorInput {
  weight: number;
  sparsify: Sparsify;
}

export type Consensus = 'none' | 'sum' | 'count';

/** The fused merge of one tensor (algorithms.md §1 "Combiner"). */
export interface MergeJob {
  base: TensorInput;
  models: MergeModel[];
  consensus: Consensus;
  normalize: boolean;
  lambda: number;
  out: Uint8Array;
  outDtype: OutputDType;
}

export interface MergeResult {
  /** NaN/Inf count of each decoded input: base first, then models in order. */
  nonFinite: Float64Array;
}

export interface AbsStats {
  n: number;
  /** Σ|δ|, accumulated in float64. */
  sumAbs: number;
  /** countsAbove[i] = #{ |δ| > thresholds[i] }, compared in float64. */
  countsAbove: Float64Array;
  /** NaN/Inf elements of δ. */
  nonFinite: number;
}

export interface SelectOptions {
  /**
   * 'index' (default): exactly k elements survive, ties at the threshold to lower index.
   * 'drop': the DPPA code's rule: τ = the k-th largest |δ|, and every |δ| <= τ is dropped
   * (cutoff = -1); pass k = n - floor(n·s) to get τ = sorted(|δ|)[floor(n·s)].
   */
  rule?: 'index' | 'drop';
  /** > 0: select per row, the tensor being `rows` equal rows; ks are then per-row counts. */
  rows?: number;
}

export interface NativeBinding {
  readonly version: string;
  /** SIMD paths this CPU supports, best last; `active` is the one in use. */
  readonly simd: { active: SimdPath; available: SimdPath[] };
  /** Switch the SIMD path (tests compare every path against scalar). Throws if unsupported. */
  setSimd(path: SimdPath): void;
  /** Size of the persistent compute pool (default: available cores). */
  getThreads(): number;
  setThreads(n: number): void;
  /** "unavailable: <reason>" or the device name. */
  readonly cuda: { available: boolean; description: string };
  /**
   * The device jobs queued from now on run on: 'auto' picks the GPU when one is usable; 'cuda'
   * throws (with the reason) when none is. Returns the device chosen. Work the GPU kernels do
   * not cover (DELLA, gram, linearCombine, copy, beyond their limits) runs on the CPU.
   */
  setDevice(device: 'cpu' | 'cuda' | 'auto'): 'cpu' | 'cuda';
  readonly device: 'cpu' | 'cuda';

  /** Decode any input dtype to float32. `out.length` must equal the element count. */
  decode(src: TensorInput, out: Float32Array): Promise<void>;
  /** Encode float32 to F32/F16/BF16, round to nearest even. */
  encode(src: Float32Array, dtype: OutputDType, out: Uint8Array): Promise<void>;
  /** out = decode(ft) - decode(base), in float32. */
  delta(input: DeltaInput, out: Float32Array): Promise<void>;
  /** Σ|δ| and counts above thresholds, in one pass. */
  absStats(input: DeltaInput, thresholds: Float64Array): Promise<AbsStats>;
  /**
   * Histogram of abs bits of δ: of the elements whose abs bits satisfy
   * `(bits & prefixMask) === prefixValue`, count bin `(bits >>> shift) & (bins - 1)`.
   * Used to build model-wide thresholds from per-tensor histograms.
   */
  absHistogram(input: DeltaInput, shift: number, bins: number, prefixMask: number, prefixValue: number): Promise<Float64Array>;
  /**
   * Exact magnitude thresholds for several keep-counts at once (radix selection, no sort).
   * For each k in `ks` (0 <= k <= n, or per row), returns the keep-rule of "top k by |δ|".
   */
  selectThresholds(input: DeltaInput, ks: Float64Array, options?: SelectOptions): Promise<BandRules>;
  /**
   * `selectThresholds({ base, ft: fts[t] }, requests[t].ks, { rule: requests[t].rule })` for
   * every fine-tune (whole tensors), with the same results, in one pass: the base is read once
   * for all of them.
   */
  selectThresholdsShared(input: SharedDeltaInput, requests: SelectRequest[]): Promise<BandRules[]>;
  /**
   * Statistics of what a sparsifier keeps: Σ|δ| over all, Σ|δ| over kept (before any
   * factor/rescale) and the kept count. Serves DARE's `l1` rescale and tests.
   */
  sparsifyStats(input: DeltaInput, sparsify: Sparsify): Promise<{ sumAbs: number; sumAbsKept: number; kept: number }>;
  /** Σ_i x_a[i]·x_b[i] for every pair of δs (float64), row-major `m × m`. */
  gram(inputs: DeltaInput[]): Promise<Float64Array>;
  /** out = Σ coeffs[i] · decode(inputs[i]), accumulated in float32 in input order, then encoded. */
  linearCombine(inputs: TensorInput[], coeffs: Float64Array, out: Uint8Array, outDtype: OutputDType): Promise<{ nonFinite: Float64Array }>;
  /**
   * PCB-Merging's scores (lib/methods/pcb.ts) for T tasks of n elements, in float64 with one
   * float32 rounding where stated: c_t = float(clip(δ_t[i], clipLow_t, clipHigh_t)), S = Σ_t c_t
   * in task order, x_t = (|c_t| − absMin_t) / (absMax_t − absMin_t) (0 when that range is not
   * > 0), scores[t][i] = float(exp(T·x_t²) · tanh(c_t·S)). params: (clipLow, clipHigh, absMin,
   * absMax) per task. On the CPU whatever the device.
   */
  pcbScores(deltas: Float32Array[], params: Float64Array, scores: Float32Array[]): Promise<void>;
  /**
   * PCB-Merging's weighted mean (lib/methods/pcb.ts), in float64: over the tasks t whose score
   * s_t >= threshold_t, w_t = (s_t − threshold_t) / (max_t − threshold_t) (1 when that range is
   * not > 0), out[i] = float(Σ w_t·c_t / Σ w_t) (0 when Σ w_t is not > 0), c_t as pcbScores.
   * params: (clipLow, clipHigh, threshold, max) per task. Also counts each task's NaN/Inf
   * deltas. On the CPU.
   */
  pcbMerge(deltas: Float32Array[], scores: Float32Array[], params: Float64Array, out: Float32Array): Promise<{ nonFinite: Float64Array }>;
  /**
   * Order statistics of float32 values: with key = the bits mapped to an unsigned integer that
   * orders like the float (negatives: every bit flipped; others: the sign bit set), adds 1 to
   * counts[(key >>> shift) & (counts.length − 1)] for every value with (key & prefixMask) ===
   * prefixValue. counts.length: a power of two <= 65536. On the CPU.
   */
  orderHistogram(values: Float32Array, counts: Float64Array, shift: number, prefixMask: number, prefixValue: number): Promise<void>;
  /**
   * The k smallest and the k largest order keys (orderHistogram's; NaN included, at the ends) of
   * every value seen so far, kept across calls: low[0 .. counts[0]) and high[0 .. counts[1]),
   * each sorted ascending, k = low.length = high.length. Start with counts [0, 0]. `extremes`
   * (4 entries, updated in place): the least and the largest value, the largest with the sign bit
   * set (negatives and -0) and the least without it, NaN skipped; an entry with no such value is
   * left as it was. On the CPU.
   */
  orderTails(values: Float32Array, low: Uint32Array, high: Uint32Array, counts: Float64Array, extremes?: Float64Array): Promise<void>;
  /** The fused recipe: decode, δ, sparsify, weight, consensus, combine, encode. */
  mergeTensor(job: MergeJob): Promise<MergeResult>;
  /**
   * A large buffer for tensor data, backed by transparent huge pages where the kernel allows
   * (page faults are the main cost of first touching big buffers, especially in VMs). Small
   * sizes get an ordinary Uint8Array. Freed when collected.
   */
  allocateBuffer(bytes: number): Uint8Array;
  /**
   * A read-only view of bytes [offset, offset + length) of the open file `fd`, memory-mapped
   * (private: a write to it never reaches the file). The kernels then read the page cache
   * directly, with no copy and no buffer to fault in. Throws when the range is not inside the
   * file or mmap fails: callers fall back to reading. `populate` faults every page in now
   * (MAP_POPULATE); otherwise read-ahead is only hinted. Unmapped by unmapRange, or when
   * collected. A file truncated under a live mapping ends the process with an E_IO message
   * (SIGBUS), never with output published.
   */
  mapRange(fd: number, offset: number, length: number, populate?: boolean): Uint8Array;
  /**
   * Unmap a mapRange view now (its ArrayBuffer is detached: every view of it becomes empty).
   * False, and nothing done, for any other array or one already unmapped.
   */
  unmapRange(view: Uint8Array): boolean;
  /** Live mappings of mapRange and their bytes (page-rounded), for tests and diagnostics. */
  mappedStats(): { mappings: number; bytes: number };
  /**
   * Write the dirty pages of bytes [offset, offset + length) of `fd` to the disk, wait, then
   * drop them from the page cache (sync_file_range + POSIX_FADV_DONTNEED). Spreads an output's
   * disk writes over the run, so that its final fsync is short. Not a substitute for fsync.
   */
  writeback(fd: number, offset: number, length: number): Promise<void>;
  /**
   * Start the disk writes of the dirty pages of bytes [offset, offset + length) of `fd` and
   * return at once (sync_file_range WRITE). A later writeback() of the range waits for them.
   */
  startWriteback(fd: number, offset: number, length: number): void;
  /** A plain parallel copy of src into dst: the bandwidth yardstick of the benchmarks. */
  copy(src: Uint8Array, dst: Uint8Array): Promise<void>;
  /** The generator itself, for tests: u for elements [start, start + out.length). */
  randomUniform(stream: RandomStream, start: number, out: Float32Array): Promise<void>;
}
