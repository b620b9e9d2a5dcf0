/**
 * The statistics pass: DP's layer offsets need every layer's |δ| statistics before any
 * tensor is pruned. Layer by layer, it reads the layer's prunable tensors of the base and
 * of one fine-tune at a time, the next fine-tune's being read meanwhile when there is room
 * (memory: a layer of the base and at most two of fine-tunes, never the model), and measures
 *   mean |δ_j| of each module                                   (one native pass per tensor)
 *   #{|δ_j| > M·mean_j} and #{|δ_j| > L₀·mean of the layer}      (one more, both counts at once)
 * No tensor data is kept; only these counts.
 */
import type { DeltaInput } from '../binding';
import { DppaError } from '../errors';
import { computeDpOffsets, DpOffsets, ModuleStatistics } from '../methods/dp-densities';
import type { StatisticsNeed } from '../methods/recipe';
import type { MergePlan, PlannedTensor } from '../plan/plan';
import { mappingEnabled, TensorInputs } from './inputs';
import { RUNTIME_OVERHEAD_BYTES } from './memory';
import { checkAborted, ProgressReporter } from './progress';

export interface StatisticsOptions {
  signal?: AbortSignal;
  progress: ProgressReporter;
  allowNonfinite: boolean;
  /** Memory budget in bytes (see memory.ts). */
  budget: number;
  /** Where tensor bytes come from (mapped or read); default: read unless DPPA_MMAP=1. */
  source?: TensorInputs;
  /**
   * A buffer free for the pass's reads (the merge pass's arena, used only afterwards): a
   * layer's tensors go there when they fit, so the pass faults in no memory of its own.
   */
  scratch?: () => Uint8Array;
}

export async function gatherDpOffsets(plan: MergePlan, options: StatisticsOptions): Promise<(DpOffsets | undefined)[]> {
  const needs = plan.models.map((m) => (m.statistics === 'dp' || m.statistics === 'owl' ? m.statistics : null));
  if (needs.every((n) => n === null)) return needs.map(() => undefined);

  const byLayer = new Map<number, PlannedTensor[]>();
  for (const t of plan.tensors) {
    if (!t.role.prunable || t.action !== 'merge') continue;
    const list = byLayer.get(t.role.layer!) ?? [];
    list.push(t);
    byLayer.set(t.role.layer!, list);
  }
  const perModel: ModuleStatistics[][] = plan.models.map(() => []);
  const totalSteps = [...byLayer.values()].reduce((s, l) => s + l.length, 0) * needs.filter((n) => n !== null).length;
  options.progress.start('statistics', totalSteps);

  const usable = options.budget - RUNTIME_OVERHEAD_BYTES;
  const source = options.source ?? new TensorInputs(plan.native, mappingEnabled(undefined));
  // Read buffers (when inputs are not mapped) are reused from layer to layer (same-position
  // modules have the same size), so memory stays at one layer's worth instead of waiting for
  // the garbage collector. Mapped inputs are unmapped as soon as they are done with.
  const allocate = (bytes: number) => plan.native.allocateBuffer(bytes);
  const baseBuffers = new GrowingBuffers(allocate);
  const ftBuffers = new GrowingBuffers(allocate);
  // Views of the scratch buffer at given offsets, or undefined when it is too small.
  const scratchAt = (offset: number, bytes: number): Uint8Array | undefined => {
    if (options.scratch === undefined) return undefined;
    const scratch = options.scratch();
    return offset + bytes <= scratch.byteLength ? scratch.subarray(offset, offset + bytes) : undefined;
  };
  const page = (n: number) => Math.ceil(n / 4096) * 4096;
  const baseMapped: Uint8Array[] = [];
  const ftMapped: Uint8Array[] = [];
  const ftLayers = new Map<number, { held: Promise<Uint8Array>[]; mapped: Uint8Array[] }>();
  const needing = plan.models.map((_, m) => m).filter((m) => needs[m] !== null);
  const bytesOf = (t: PlannedTensor, m: number) => plan.models[m].source.tensors.get(t.name)!.byteLength;
  try {
    for (const [layer, tensors] of [...byLayer.entries()].sort((a, b) => a[0] - b[0])) {
      // Hold the layer's tensors (base + one fine-tune) between the passes when the budget
      // allows; otherwise get each tensor again for the layer-level pass (page cache helps).
      const baseBytes = tensors.map((t) => plan.base.tensors.get(t.name)!.byteLength);
      const ftBytes = tensors.map((t) => Math.max(...plan.models.map((_, m) => bytesOf(t, m))));
      const baseLayerBytes = baseBytes.reduce((a, b) => a + page(b), 0);
      const ftLayerBytes = ftBytes.reduce((a, b) => a + page(b), 0);
      const hold = baseLayerBytes + ftLayerBytes <= usable;
      // With room for two fine-tunes' layers (in the scratch buffer, so that no fresh memory is
      // faulted in for it), the next fine-tune's tensors are read while this one's second pass
      // runs: reads and statistics overlap instead of taking turns.
      const regions = hold && baseLayerBytes + 2 * ftLayerBytes <= Math.min(usable, options.scratch?.().byteLength ?? Infinity) ? 2 : 1;
      // Where each tensor goes in the scratch buffer: held, the layer's base then each region's
      // fine-tune tensors; one at a time, one base tensor and one fine-tune tensor.
      const baseAt: number[] = [];
      const ftAt: number[] = [];
      let cursor = 0;
      for (let j = 0; j < tensors.length; j++) baseAt.push(hold ? (cursor += page(baseBytes[j])) - page(baseBytes[j]) : 0);
      const ftStart = hold ? cursor : page(Math.max(0, ...baseBytes));
      cursor = ftStart;
      for (let j = 0; j < tensors.length; j++) ftAt.push(hold ? (cursor += page(ftBytes[j])) - page(ftBytes[j]) : ftStart);
      const baseBuffer = (j: number, slot: number) => () => scratchAt(baseAt[j], baseBytes[j]) ?? baseBuffers.get(slot, baseBytes[j]);
      const ftBuffer = (j: number, region: number, slot: number) => () =>
        scratchAt(ftAt[j] + region * ftLayerBytes, ftBytes[j]) ?? ftBuffers.get(region * tensors.length + slot, ftBytes[j]);
      const baseHeld = hold
        ? await Promise.all(tensors.map((t, j) => source.get(plan.base, t.name, baseBuffer(j, j), baseMapped)))
        : [];

      // Held fine-tune layers being read or in use, by model (region: the order among the
      // models that need statistics, modulo the regions).
      const readLayer = (m: number): Promise<Uint8Array>[] => {
        let layer = ftLayers.get(m);
        if (layer === undefined) {
          const region = needing.indexOf(m) % regions;
          const mapped: Uint8Array[] = [];
          const held = tensors.map((t, j) => {
            const read = source.get(plan.models[m].source, t.name, ftBuffer(j, region, j), mapped);
            read.catch(() => undefined); // a failure surfaces where it is awaited
            return read;
          });
          ftLayers.set(m, (layer = { held, mapped }));
        }
        return layer.held;
      };

      for (const m of needing) {
        const model = plan.models[m];
        const spec = plan.statisticsSpec(m);
        const deltaOf = async (j: number): Promise<DeltaInput> => {
          const t = tensors[j];
          if (!hold) {
            // One tensor at a time: whatever the previous call mapped is done with.
            source.release(baseMapped);
            source.release(ftMapped);
          }
          const base = hold ? baseHeld[j] : await source.get(plan.base, t.name, baseBuffer(j, 0), baseMapped);
          const ft = hold ? await readLayer(m)[j] : await source.get(model.source, t.name, ftBuffer(j, 0, 0), ftMapped);
          return { base: { data: base, dtype: t.inputDtypes.base }, ft: { data: ft, dtype: t.inputDtypes.models[m] } };
        };
        // Pass 1: Σ|δ| of each module (and the NaN/Inf check).
        const sums: number[] = [];
        for (let j = 0; j < tensors.length; j++) {
          checkAborted(options.signal);
          const t = tensors[j];
          const delta = await deltaOf(j);
          const { sumAbs, nonFinite } = await plan.native.absStats(delta, new Float64Array(0));
          if (nonFinite > 0 && !options.allowNonfinite) throw nonFiniteError(model.name, t.name, nonFinite);
          sums.push(sumAbs);
        }
        // Pass 2: both outlier counts at once, the module's and the layer's thresholds being
        // known now.
        const next = needing[needing.indexOf(m) + 1];
        if (regions === 2 && next !== undefined) readLayer(next);
        const layerNumel = tensors.reduce((s, t) => s + t.numel, 0);
        const layerMean = layerNumel === 0 ? 0 : sums.reduce((s, v) => s + v, 0) / layerNumel;
        for (let j = 0; j < tensors.length; j++) {
          checkAborted(options.signal);
          const t = tensors[j];
          const mean = t.numel === 0 ? 0 : sums[j] / t.numel;
          const thresholds = Float64Array.of(spec.moduleOutlier * mean, spec.layerOutlier * layerMean);
          const { countsAbove } = await plan.native.absStats(await deltaOf(j), thresholds);
          perModel[m].push({ name: t.name, layer, numel: t.numel, moduleOutliers: countsAbove[0], layerOutliers: countsAbove[1] });
          options.progress.step(t.name, t.numel);
        }
        source.release(ftMapped);
        source.release(ftLayers.get(m)?.mapped ?? []);
        ftLayers.delete(m);
      }
      source.release(baseMapped);
    }
  } catch (e) {
    // A failed native job has settled (each is awaited in turn), and reads ahead settle
    // before their views are released: nothing reads these now.
    for (const layer of ftLayers.values()) await Promise.allSettled(layer.held);
    source.release(baseMapped);
    source.release(ftMapped);
    for (const layer of ftLayers.values()) source.release(layer.mapped);
    throw e;
  }
  return plan.models.map((model, m) =>
    needs[m] === null
      ? undefined
      : computeDpOffsets(perModel[m], { lambda: plan.statisticsSpec(m).lambda, moduleOffsets: model.statistics === 'dp' }),
  );
}

/** Buffers by slot, each grown to the largest size asked of it and then reused. */
class GrowingBuffers {
  private readonly buffers: Uint8Array[] = [];

  constructor(private readonly allocate: (bytes: number) => Uint8Array) {}

  get(slot: number, bytes: number): Uint8Array {
    if ((this.buffers[slot]?.byteLength ?? -1) < bytes) this.buffers[slot] = this.allocate(bytes);
    return this.buffers[slot];
  }
}

export function nonFiniteError(model: string, tensor: string, count: number): DppaError {
  return new DppaError(
    'E_NONFINITE',
    `${model}: tensor ${tensor} has ${count} NaN/Inf value(s) in its delta from the base; ` +
      `fix the checkpoint, or pass --allow-nonfinite (API: allowNonfinite: true) to merge anyway`,
  );
}

export type { StatisticsNeed };
