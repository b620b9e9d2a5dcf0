/**
 * `pcb` — PCB-Merging (Parameter Competition Balancing, arXiv 2410.02396).
 *
 * Each task vector τ_t = δ_t is first clipped at its 0.01% / 99.99% quantiles. Then
 *   intra-balance  E_t = exp(N · minmax(|τ_t|)²)       (N tasks; minmax over the scope)
 *   inter-balance  C_t = tanh(τ_t ⊙ Σ_s τ_s)
 *   score          B_t = E_t ⊙ C_t
 * the top `pcb_ratio` of B_t per task is kept and min-max normalised to weights W_t in [0, 1]
 * (the rest weigh 0), and the merge is θ₀ + λ · Σ_t W_t ⊙ τ_t / Σ_t W_t (0 where Σ W = 0).
 *
 * The scope of the quantiles, min/max and top-k is the whole model (as the paper; a
 * statistics pass of two streaming passes computes six numbers per task) or one tensor
 * (`scope: tensor`, the same passes in memory). Order statistics are exact, never a sort of
 * the scope: the clip quantiles from the few keys kept at either end, the score threshold from
 * a radix histogram of the float bits mapped to monotone integers, counted in full inside the
 * bins that hold it. δ is decoded, the scores (exp, tanh: most of the work) and the weighted
 * mean computed, and the keys and histograms counted by the native core (NativeBinding.pcbScores,
 * pcbMerge, orderTails, orderHistogram); the passes, the ranks and the |τ| range are kept here.
 */
import type { NativeBinding, TensorInput } from '../binding';
import { DppaError } from '../errors';
import type { MergePlan } from '../plan/plan';
import type { MethodDefinition, TensorWork } from './recipe';
import { methodSchemas } from './schemas';

/** What the scope's statistics give each task. */
export interface PcbTaskStatistics {
  clipLow: number;
  clipHigh: number;
  absMin: number;
  absMax: number;
  /** Scores >= this are kept; Infinity keeps none. */
  scoreThreshold: number;
  scoreMax: number;
}

/**
 * Float32 work buffers (each task's δ and scores, and the merged values) reused from tensor to
 * tensor of one run, so that each pass over the model does not fault in fresh memory for every
 * tensor (expensive, especially in VMs); counted in the memory budget (`workBytes` below). One
 * user at a time: the passes and merges of a run are sequential.
 */
class PcbBuffers {
  private readonly buffers = new Map<string, Float32Array>();

  get(kind: 'delta' | 'score' | 'merged', task: number, n: number): Float32Array {
    const key = `${kind}${task}`;
    let buffer = this.buffers.get(key);
    if (!buffer || buffer.length < n) {
      buffer = new Float32Array(n);
      this.buffers.set(key, buffer);
    }
    return buffer.subarray(0, n);
  }
}

/** What the run's statistics pass hands the merge: the model scope's statistics, and the buffers. */
interface PcbRun {
  stats?: PcbTaskStatistics[];
  buffers: PcbBuffers;
}

/** A source of every task's δ, one chunk (tensor) at a time: the scope. */
export type DeltaChunks = (visit: (deltas: Float32Array[]) => void | Promise<void>) => Promise<void>;

const CLIP_LOW = 0.0001;
const CLIP_HIGH = 0.9999;

const keyScratch = new Uint32Array(1);
const keyFloat = new Float32Array(keyScratch.buffer);
/** The float32 of an order key (NativeBinding.orderHistogram's: negatives flipped, the rest with the sign bit set). */
function fromOrderKey(key: number): number {
  keyScratch[0] = key & 0x80000000 ? key & 0x7fffffff : ~key;
  return keyFloat[0];
}

/**
 * Exact order statistics (0-based ascending ranks) of a multiset streamed once or twice: `add`
 * every chunk, `refine` with the ranks wanted, and, when it says so, `add` every chunk again;
 * then `value(rank)`. The histograms are of order keys (NativeBinding.orderHistogram): the high
 * 16 bits, and the low 16 bits inside each bin that holds a wanted rank. `prerefine` guesses
 * those bins before the first pass (from a sample), so that one pass can be enough.
 */
class OrderStatistics {
  count = 0;
  private readonly high = new Float64Array(65536);
  /** The low-bit counts of chosen high bins, and which of them the next pass must count. */
  private readonly low = new Map<number, Float64Array>();
  private counting: number[] = [];
  private firstPass = true;

  constructor(private readonly native: NativeBinding) {}

  /** Count the low bits of these high bins in the first pass already. */
  prerefine(bins: number[]): void {
    for (const bin of bins) if (!this.low.has(bin)) this.low.set(bin, new Float64Array(65536));
    this.counting = [...this.low.keys()];
  }

  async add(values: Float32Array): Promise<void> {
    if (this.firstPass) {
      await this.native.orderHistogram(values, this.high, 16, 0, 0);
      this.count += values.length;
    }
    for (const bin of this.counting) await this.native.orderHistogram(values, this.low.get(bin)!, 0, 0xffff0000, (bin << 16) >>> 0);
  }

  /** Ends the first pass; true when the ranks need a second (a wanted bin was not prerefined). */
  refine(ranks: number[]): boolean {
    this.firstPass = false;
    this.counting = [];
    for (const rank of ranks) {
      const bin = this.binHolding(rank).bin;
      if (!this.low.has(bin)) {
        this.low.set(bin, new Float64Array(65536));
        this.counting.push(bin);
      }
    }
    return this.counting.length > 0;
  }

  value(rank: number): number {
    const { bin, below } = this.binHolding(rank);
    const low = this.low.get(bin);
    if (!low) throw new DppaError('E_ARGUMENT', `order statistic ${rank} was not refined`);
    let seen = below;
    for (let b = 0; b < 65536; b++) {
      seen += low[b];
      if (seen > rank) return fromOrderKey(bin * 65536 + b);
    }
    throw new DppaError('E_ARGUMENT', `order statistic ${rank} is beyond the ${this.count} values`);
  }

  /** The high bin that holds a rank, and how many values lie in the bins below it (after a first pass). */
  binHolding(rank: number): { bin: number; below: number } {
    let below = 0;
    for (let bin = 0; bin < 65536; bin++) {
      if (below + this.high[bin] > rank) return { bin, below };
      below += this.high[bin];
    }
    throw new DppaError('E_ARGUMENT', `order statistic ${rank} is beyond the ${this.count} values`);
  }
}

/**
 * The order statistics near either end of one task's δ over the scope, in one pass
 * (NativeBinding.orderTails): PCB's clip quantiles lie within 0.01% of the ends, so the k keys
 * kept at each end hold them, where a histogram needs a second pass to refine its bins.
 */
class OrderTails {
  count = 0;
  private readonly low: Uint32Array;
  private readonly high: Uint32Array;
  private readonly kept = new Float64Array(2); // keys kept in low, in high

  constructor(private readonly native: NativeBinding, k: number) {
    this.low = new Uint32Array(k);
    this.high = new Uint32Array(k);
  }

  /** extremes: see NativeBinding.orderTails (ClipRangeExtremes.values). */
  async add(values: Float32Array, extremes?: Float64Array): Promise<void> {
    await this.native.orderTails(values, this.low, this.high, this.kept, extremes);
    this.count += values.length;
  }

  /** The value of ascending rank `rank`, which must lie within k of either end. */
  value(rank: number): number {
    if (rank < this.kept[0]) return fromOrderKey(this.low[rank]);
    const fromTop = this.count - 1 - rank;
    if (fromTop >= 0 && fromTop < this.kept[1]) return fromOrderKey(this.high[this.kept[1] - 1 - fromTop]);
    throw new DppaError('E_ARGUMENT', `order statistic ${rank} of ${this.count} is not in the tails kept`);
  }
}

/**
 * Every task's δ at the same evenly spaced positions of the scope (at most SAMPLE_SIZE, at
 * least every SAMPLE_STRIDE-th element), taken in the first statistics pass. Its scores, once
 * the clip statistics are known, say in which high bins the score threshold will fall
 * (likelyBins), so that the score pass counts those bins' low bits at once and a second pass
 * over the scores (exp and tanh of every element again) is rarely needed.
 */
const SAMPLE_SIZE = 1 << 21;
const SAMPLE_STRIDE = 8;
function sampleStride(totalElements: number): number {
  return Math.max(SAMPLE_STRIDE, Math.ceil(totalElements / SAMPLE_SIZE));
}
function sampleLength(totalElements: number): number {
  return Math.ceil(totalElements / sampleStride(totalElements));
}

class DeltaSample {
  readonly deltas: Float32Array[];
  length = 0;
  private readonly stride: number;
  private offset = 0; // position of the next sample in the current chunk

  constructor(tasks: number, totalElements: number) {
    this.stride = sampleStride(totalElements);
    this.deltas = Array.from({ length: tasks }, () => new Float32Array(sampleLength(totalElements)));
  }

  add(deltas: Float32Array[]): void {
    const n = deltas[0]?.length ?? 0;
    let i = this.offset;
    for (; i < n && this.length < this.deltas[0].length; i += this.stride, this.length++) {
      for (let t = 0; t < deltas.length; t++) this.deltas[t][this.length] = deltas[t][i];
    }
    this.offset = i - n;
  }
}

/**
 * The high bins (of order keys) that hold ascending rank `rank` of `count` values with high
 * probability, from a sample of them: those of the sample's ranks within three standard
 * deviations of the expected one, and a little more (a miss costs one more pass, nothing
 * else). [] when they span more than MAX_LIKELY_BINS: each is one more histogram call per
 * chunk. The sample's size keeps the span narrow: 4 to 7 bins on the bench's model and test 17's
 * data, whose scores are dense around the threshold (about 16 with 2^18 values and six deviations).
 */
const MAX_LIKELY_BINS = 8;
async function likelyBins(native: NativeBinding, sample: Float32Array, rank: number, count: number): Promise<number[]> {
  const m = sample.length;
  if (m === 0 || count === 0) return [];
  const order = new OrderStatistics(native);
  await order.add(sample);
  const q = rank / count;
  const margin = 3 * Math.sqrt(m * q * (1 - q)) + 2;
  const lo = order.binHolding(Math.max(0, Math.floor(q * m - margin))).bin;
  const hi = order.binHolding(Math.min(m - 1, Math.ceil(q * m + margin))).bin;
  return hi - lo < MAX_LIKELY_BINS ? Array.from({ length: hi - lo + 1 }, (_, k) => lo + k) : [];
}

/** Linear interpolation between order statistics, as torch.quantile. */
function quantileRanks(n: number, q: number): [number, number, number] {
  const position = q * (n - 1);
  return [Math.floor(position), Math.ceil(position), position - Math.floor(position)];
}

function clip(x: number, low: number, high: number): number {
  return x < low ? low : x > high ? high : x;
}

/**
 * Four extremes of one task's δ over the scope, NaN skipped, gathered by the first statistics
 * pass (NativeBinding.orderTails' `extremes`): enough for the least and the largest
 * |clip(δ)| under any clip bounds, which are known only at the end of that pass. clip is monotone,
 * so |clip(x)| falls, then rises, with x: its largest value is at the least or the largest x,
 * and its least at the x on either side of 0 (the largest with the sign bit set, the least
 * without it). This saves a pass over the model.
 */
export class ClipRangeExtremes {
  /** [least, largest, largest with the sign bit set, least without it]; ±Inf where none yet. */
  readonly values = Float64Array.of(Infinity, -Infinity, -Infinity, Infinity);

  /** [least, largest] |clip(x, low, high)| over the values seen; [Infinity, 0] when none (or all NaN). */
  absClipRange(low: number, high: number): [number, number] {
    const [least, most, largestSigned, leastUnsigned] = this.values;
    if (!(least <= most)) return [Infinity, 0];
    const at = (x: number) => Math.abs(clip(x, low, high));
    // ±Inf in a side's entry is a value seen when it is also the least (largest) value.
    const sides: number[] = [];
    if (largestSigned > -Infinity || least === -Infinity) sides.push(largestSigned);
    if (leastUnsigned < Infinity || most === Infinity) sides.push(leastUnsigned);
    return [Math.min(...sides.map(at)), Math.max(0, at(least), at(most))];
  }
}

// The loop below uses Math.max, branch-free (a branchy loop ran 2-3x slower); NaN, which it
// would spread, is rare: its arrays take the exact loop, which skips NaN.

/** The largest value (NaN skipped); -Infinity when none. */
function largest(values: Float32Array): number {
  let most = -Infinity;
  for (let i = 0; i < values.length; i++) most = Math.max(most, values[i]);
  if (!Number.isNaN(most)) return most;
  most = -Infinity;
  for (let i = 0; i < values.length; i++) if (values[i] > most) most = values[i];
  return most;
}

/**
 * The scores B_t of one chunk, for every task, given the clipping and min/max statistics:
 * with c_t = float32(clip(τ_t)), B_t = exp(N · ((|c_t| − min) / (max − min))²) · tanh(c_t · Σ_s c_s)
 * (NativeBinding.pcbScores).
 */
async function scores(native: NativeBinding, deltas: Float32Array[], stats: PcbTaskStatistics[], buffers: PcbBuffers): Promise<Float32Array[]> {
  const score = deltas.map((d, t) => buffers.get('score', t, d.length));
  await native.pcbScores(deltas, scoreParams(stats), score);
  return score;
}

/** NativeBinding.pcbScores' params: clip bounds and |τ| range of every task. */
function scoreParams(stats: PcbTaskStatistics[]): Float64Array {
  return Float64Array.from(stats.flatMap((s) => [s.clipLow, s.clipHigh, s.absMin, s.absMax]));
}

/**
 * Two streaming passes over the scope. The first finds the clip quantiles (the keys at either
 * end, orderTails), the extremes that give the |τ| range, and a sample of δ; the second the score
 * threshold (its histogram, with the bins the sample's scores point to counted in full). A third,
 * over the scores again, only when the threshold falls outside those bins: then `morePasses(1)`
 * says so first.
 */
const STATISTICS_PASSES = 2;
export async function pcbStatistics(
  native: NativeBinding,
  chunks: DeltaChunks,
  tasks: number,
  ratio: number,
  totalElements: number,
  { buffers = new PcbBuffers(), morePasses = () => undefined }: { buffers?: PcbBuffers; morePasses?: (passes: number) => void } = {},
): Promise<PcbTaskStatistics[]> {
  // The ranks of the clip quantiles, and how many keys each end must keep to hold them.
  const ranks = [quantileRanks(totalElements, CLIP_LOW), quantileRanks(totalElements, CLIP_HIGH)];
  const tailLength = Math.max(ranks[0][1], totalElements - 1 - ranks[1][0], 0) + 1;
  const tails = Array.from({ length: tasks }, () => new OrderTails(native, tailLength));
  const extremes = Array.from({ length: tasks }, () => new ClipRangeExtremes());
  const sample = new DeltaSample(tasks, totalElements);
  await chunks(async (deltas) => {
    for (let t = 0; t < tasks; t++) await tails[t].add(deltas[t], extremes[t].values);
    sample.add(deltas);
  });
  const count = tails[0]?.count ?? 0;
  if (count !== totalElements) throw new DppaError('E_ARGUMENT', `pcb statistics: the scope holds ${count} elements, not ${totalElements}`);

  const stats: PcbTaskStatistics[] = tails.map((o, t) => {
    const [low, high] = ranks.map(([a, b, f]) => (count === 0 ? 0 : o.value(a) + f * (o.value(b) - o.value(a))));
    const [absMin, absMax] = extremes[t].absClipRange(low, high);
    return { clipLow: low, clipHigh: high, absMin, absMax, scoreThreshold: Infinity, scoreMax: -Infinity };
  });

  const keep = Math.floor(ratio * count);
  const keepRank = keep === 0 ? -1 : count - keep; // ascending rank of the smallest kept score
  const scoreOrder = Array.from({ length: tasks }, () => new OrderStatistics(native));
  if (keepRank >= 0) {
    const sampleScores = sample.deltas.map(() => new Float32Array(sample.length));
    await native.pcbScores(sample.deltas.map((d) => d.subarray(0, sample.length)), scoreParams(stats), sampleScores);
    for (let t = 0; t < tasks; t++) scoreOrder[t].prerefine(await likelyBins(native, sampleScores[t], keepRank, count));
  }
  const visitScores = async (deltas: Float32Array[]) => {
    const score = await scores(native, deltas, stats, buffers);
    for (let t = 0; t < tasks; t++) {
      const s = score[t];
      await scoreOrder[t].add(s);
      stats[t].scoreMax = Math.max(stats[t].scoreMax, largest(s));
    }
  };
  await chunks(visitScores);
  const again = scoreOrder.map((o) => o.refine(keepRank >= 0 ? [keepRank] : []));
  if (again.some(Boolean)) {
    morePasses(1);
    await chunks(visitScores);
  }
  scoreOrder.forEach((o, t) => {
    stats[t].scoreThreshold = keepRank >= 0 ? o.value(keepRank) : Infinity;
  });
  return stats;
}

/**
 * Σ_t W_t τ_t / Σ_t W_t of one tensor, as float32 values (the merge is θ₀ + λ times it), and
 * each task's count of NaN/Inf in τ_t.
 */
export async function pcbMergeChunk(
  native: NativeBinding,
  buffers: PcbBuffers,
  deltas: Float32Array[],
  stats: PcbTaskStatistics[],
): Promise<{ merged: Float32Array; nonFinite: Float64Array }> {
  const score = await scores(native, deltas, stats, buffers);
  const merged = buffers.get('merged', 0, deltas[0].length);
  // Per element, over the tasks whose score reaches the threshold: w = (score − threshold) /
  // (max − threshold), merged = Σ w·c / Σ w (NativeBinding.pcbMerge).
  const params = Float64Array.from(stats.flatMap((s) => [s.clipLow, s.clipHigh, s.scoreThreshold, s.scoreMax]));
  const { nonFinite } = await native.pcbMerge(deltas, score, params, merged);
  return { merged, nonFinite };
}

async function decodeDeltas(native: NativeBinding, buffers: PcbBuffers, base: TensorInput, models: TensorInput[], n: number): Promise<Float32Array[]> {
  return Promise.all(
    models.map(async (ft, t) => {
      const out = buffers.get('delta', t, n);
      await native.delta({ base, ft }, out);
      return out;
    }),
  );
}

/** Elements of the model scope: every merged tensor. */
function mergedElements(plan: MergePlan): number {
  return plan.tensors.reduce((sum, t) => sum + (t.action === 'merge' ? t.numel : 0), 0);
}

export const pcb: MethodDefinition = {
  schema: methodSchemas.pcb,
  statisticsNeeded: () => null,
  // PcbBuffers: each task's δ and scores, and the merged values, as float32, for the largest
  // tensor; and the statistics' sample of δ and its scores.
  workBytes: (plan, largestElements) => {
    const tasks = plan.models.length;
    const scope = plan.params(null, null).string('scope') === 'model' ? mergedElements(plan) : largestElements;
    return (2 * tasks + 1) * 4 * largestElements + 8 * tasks * sampleLength(scope);
  },
  statisticsPasses: (plan) => (plan.params(null, null).string('scope') === 'model' ? STATISTICS_PASSES : 0),
  async gatherStatistics(plan, read, morePasses): Promise<PcbRun> {
    const buffers = new PcbBuffers();
    if (plan.params(null, null).string('scope') !== 'model') return { buffers };
    const chunks: DeltaChunks = async (visit) => {
      for (const t of plan.tensors) {
        if (t.action !== 'merge') continue;
        const inputs = await read(t);
        await visit(await decodeDeltas(plan.native, buffers, inputs.base, inputs.models, t.numel));
      }
    };
    const ratio = plan.params(null, null).number('pcb_ratio');
    return { stats: await pcbStatistics(plan.native, chunks, plan.models.length, ratio, mergedElements(plan), { buffers, morePasses }), buffers };
  },
  async mergeTensor(work: TensorWork) {
    const n = work.tensor.numel;
    const run = work.methodStatistics as PcbRun | undefined;
    const buffers = run?.buffers ?? new PcbBuffers();
    const deltas = await decodeDeltas(work.native, buffers, work.base, work.models.map((m) => m.input), n);
    const stats = run?.stats ??
      (await pcbStatistics(work.native, async (visit) => visit(deltas), deltas.length, work.params.number('pcb_ratio'), n, { buffers }));
    const { merged, nonFinite } = await pcbMergeChunk(work.native, buffers, deltas, stats);
    const mergedInput = { data: new Uint8Array(merged.buffer, merged.byteOffset, merged.byteLength), dtype: 'F32' as const };
    const result = await work.native.linearCombine([work.base, mergedInput], Float64Array.of(1, work.params.number('lambda')), work.out, work.outDtype);
    return { nonFinite: Float64Array.of(result.nonFinite[0], ...nonFinite) };
  },
};
