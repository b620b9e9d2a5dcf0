/**
 * DP — Dynamic Pruning: where each module's density comes from (algorithms.md §2).
 *
 * Data-free, from |δ| statistics only. A layer whose |δ| has more outliers (elements above
 * L₀ × the layer's mean |δ|) than the average layer keeps more of its δ; within the model,
 * a module (one 2-D linear weight) with more outliers above M × its own mean keeps more.
 * Both offsets are scaled so the largest deviation moves the density by exactly λ.
 *
 *   D_i = 100 · fraction(|δ| in layer i > L₀ · mean |δ| of layer i)
 *   ℓ_i = λ · (D_i − mean D) / max |D − mean D|
 *   O_j = 100 · fraction(|δ_j| > M · mean |δ_j|)
 *   m_j = λ · (O_j − Ō) / max |O − Ō|,   Ō numel-weighted
 *   d_j = clamp(d + ℓ_{layer(j)} + m_j, 0, 1)
 *
 * The offsets do not depend on d, so densities at two rates differ by exactly the rates'
 * difference (before clamping) and the masks are nested — which is what DPA's partitions
 * rely on.
 */

/** What the statistics pass measured for one prunable tensor of one model. */
export interface ModuleStatistics {
  name: string;
  layer: number;
  numel: number;
  /** #{ |δ| > M · mean|δ| of this module } */
  moduleOutliers: number;
  /** #{ |δ| > L₀ · mean|δ| of its layer } */
  layerOutliers: number;
}

export interface DpOffsetOptions {
  /** λ: the largest offset, in density units (default 0.08). */
  lambda: number;
  /** Include the per-module offsets m_j (DP) or only the per-layer ℓ_i (OWL-style baseline). */
  moduleOffsets: boolean;
}

export interface DpOffsets {
  /** ℓ_i + m_j for each prunable tensor: add the partition's density, then clamp. */
  offsetOf: Map<string, number>;
  layerOutlierPercent: Map<number, number>;
  layerOffset: Map<number, number>;
  moduleOutlierPercent: Map<string, number>;
}

/** Scale deviations from a centre so the largest has magnitude λ (all equal → all 0). */
function scaledDeviations(values: number[], centre: number, lambda: number): number[] {
  let largest = 0;
  for (const v of values) largest = Math.max(largest, Math.abs(v - centre));
  return values.map((v) => (largest === 0 ? 0 : (lambda * (v - centre)) / largest));
}

export function computeDpOffsets(modules: ModuleStatistics[], options: DpOffsetOptions): DpOffsets {
  // Layer outlier percentages D_i and offsets ℓ_i.
  const layerCounts = new Map<number, { outliers: number; numel: number }>();
  for (const m of modules) {
    const c = layerCounts.get(m.layer) ?? { outliers: 0, numel: 0 };
    c.outliers += m.layerOutliers;
    c.numel += m.numel;
    layerCounts.set(m.layer, c);
  }
  const layers = [...layerCounts.keys()].sort((a, b) => a - b);
  const layerPercent = layers.map((l) => {
    const c = layerCounts.get(l)!;
    return c.numel === 0 ? 0 : (100 * c.outliers) / c.numel;
  });
  const meanLayerPercent = layerPercent.reduce((s, v) => s + v, 0) / Math.max(1, layers.length);
  const layerOffsets = scaledDeviations(layerPercent, meanLayerPercent, options.lambda);

  // Module outlier percentages O_j, their numel-weighted mean Ō, and offsets m_j.
  const modulePercent = modules.map((m) => (m.numel === 0 ? 0 : (100 * m.moduleOutliers) / m.numel));
  let weighted = 0, totalNumel = 0;
  modules.forEach((m, j) => {
    weighted += m.numel * modulePercent[j];
    totalNumel += m.numel;
  });
  const meanModulePercent = totalNumel === 0 ? 0 : weighted / totalNumel;
  const moduleOffsets = options.moduleOffsets
    ? scaledDeviations(modulePercent, meanModulePercent, options.lambda)
    : modules.map(() => 0);

  const result: DpOffsets = {
    offsetOf: new Map(),
    layerOutlierPercent: new Map(),
    layerOffset: new Map(),
    moduleOutlierPercent: new Map(),
  };
  layers.forEach((l, i) => {
    result.layerOutlierPercent.set(l, layerPercent[i]);
    result.layerOffset.set(l, layerOffsets[i]);
  });
  modules.forEach((m, j) => {
    result.moduleOutlierPercent.set(m.name, modulePercent[j]);
    result.offsetOf.set(m.name, result.layerOffset.get(m.layer)! + moduleOffsets[j]);
  });
  return result;
}

/** d_j = clamp(d + offset, 0, 1). The clamp fixes the authors' code, which fails when d_j < 0. */
export function dpDensity(partitionDensity: number, offset: number): number {
  return Math.min(1, Math.max(0, partitionDensity + offset));
}

