/**
 * Tensor names → layers and modules. DP works per layer ("…layers.N.…", "…h.N.…",
 * "…blocks.N.…") and per module (each 2-D linear weight inside a layer); everything else
 * (embeddings, the output head, norms, biases) is outside DP's scope and keeps its dense δ.
 */
export const DEFAULT_LAYER_PATTERN = /(?:^|\.)(?:layers|h|blocks|layer)\.(\d+)\./;

export interface TensorRole {
  /** Layer index, or null outside the repeated blocks. */
  layer: number | null;
  /** A 2-D linear weight inside a layer: what DP prunes. */
  prunable: boolean;
}

export function tensorRole(name: string, shape: readonly number[], layerPattern: RegExp = DEFAULT_LAYER_PATTERN): TensorRole {
  const match = layerPattern.exec(name);
  const layer = match ? Number(match[1]) : null;
  const prunable = layer !== null && shape.length === 2 && name.endsWith('.weight');
  return { layer, prunable };
}

/** Number of layers = 1 + the highest layer index seen (0 when there are none). */
export function countLayers(names: Iterable<string>, layerPattern: RegExp = DEFAULT_LAYER_PATTERN): number {
  let highest = -1;
  for (const name of names) {
    const match = layerPattern.exec(name);
    if (match) highest = Math.max(highest, Number(match[1]));
  }
  return highest + 1;
}

/**
 * Layer order for the merge pass: embeddings first, then layers in index order, then the
 * rest; stable by name inside each group so runs are reproducible.
 */
export function orderTensorNames(names: string[], layerPattern: RegExp = DEFAULT_LAYER_PATTERN): string[] {
  const keyOf = (name: string): [number, number, string] => {
    const match = layerPattern.exec(name);
    if (match) return [1, Number(match[1]), name];
    return [name.includes('embed') ? 0 : 2, 0, name];
  };
  return [...names].sort((a, b) => {
    const ka = keyOf(a), kb = keyOf(b);
    return ka[0] - kb[0] || ka[1] - kb[1] || (ka[2] < kb[2] ? -1 : ka[2] > kb[2] ? 1 : 0);
  });
}
