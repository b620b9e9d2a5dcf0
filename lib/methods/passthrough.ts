/**
 * `passthrough`: copy tensors unchanged (times the model's `scale`). With mergekit's
 * `slices`, stack layer ranges of models ("frankenmerges"): each slice's layers are copied
 * and renumbered after the previous slice's, the non-layer tensors (embeddings, final norm,
 * head) come from the base model (or the first slice's model), and the output config's
 * num_hidden_layers is rewritten.
 */
import { resolveModelParam } from '../config/resolve';
import { DppaError } from '../errors';
import type { InputDType } from '../binding';
import { DTYPE_SIZE } from '../io/dtypes';
import type { ModelSource } from '../io/model';
import { countLayers, DEFAULT_LAYER_PATTERN, orderTensorNames, tensorRole } from '../plan/layers';
import { outputDtypeFor, PlannedTensor, TensorPlan, TensorPlanContext } from '../plan/tensors';
import type { MethodDefinition } from './recipe';
import { methodSchemas } from './schemas';

function layerOf(name: string): number | null {
  const match = DEFAULT_LAYER_PATTERN.exec(name);
  return match ? Number(match[1]) : null;
}

function renumber(name: string, layer: number): string {
  return name.replace(DEFAULT_LAYER_PATTERN, (whole, index: string) => whole.replace(`.${index}.`, `.${layer}.`));
}

function planPassthrough(ctx: TensorPlanContext): TensorPlan {
  const { config } = ctx;
  const tensors: PlannedTensor[] = [];
  const copy = (source: ModelSource, model: number | 'base', from: string, to: string, scale: number) => {
    const info = source.tensors.get(from)!;
    const outDtype = outputDtypeFor(config, info.dtype);
    const dtype = info.dtype as InputDType;
    tensors.push({
      name: to,
      shape: info.shape,
      numel: info.numel,
      role: tensorRole(to, info.shape),
      action: 'copy',
      copyFrom: { model, name: from, dtype, scale },
      mergedRows: 0,
      inputDtypes: { base: dtype, models: [] },
      outDtype,
      inputBytes: info.byteLength,
      outputBytes: info.numel * DTYPE_SIZE[outDtype],
    });
  };
  const modelIndex = (name: string) => ctx.models.findIndex((m) => m.name === name);
  const scaleOf = (configName: string, tensor: string, layer: number | null, numLayers: number) => {
    const index = config.models.findIndex((m) => m.name === configName);
    const value = index < 0 ? 1 : resolveModelParam(config, 'scale', index, { tensorName: tensor, layerIndex: layer, numLayers });
    return typeof value === 'number' ? value : 1;
  };

  if (!config.slices) {
    if (ctx.models.length !== 1) {
      ctx.problem('E_CONFIG', `passthrough without slices copies exactly one model; ${ctx.models.length} are listed`);
      return { tensors, numLayers: 0 };
    }
    const { source, name } = ctx.models[0];
    const numLayers = countLayers(source.tensors.keys());
    for (const t of orderTensorNames([...source.tensors.keys()])) copy(source, 0, t, t, scaleOf(name, t, layerOf(t), numLayers));
    return { tensors, numLayers };
  }

  // Non-layer tensors from the base, or the first slice's model.
  const first = config.slices[0]?.sources[0];
  const outerIndex = config.baseModel || !first ? -1 : modelIndex(first.name);
  const outer = outerIndex < 0 ? ctx.base : ctx.models[outerIndex].source;
  const outerNames = orderTensorNames([...outer.tensors.keys()]).filter((n) => layerOf(n) === null);
  const before = outerNames.filter((n) => n.includes('embed'));
  const after = outerNames.filter((n) => !n.includes('embed'));
  for (const n of before) copy(outer, outerIndex < 0 ? 'base' : outerIndex, n, n, 1);

  let nextLayer = 0;
  config.slices.forEach((slice, s) => {
    if (slice.sources.length !== 1) {
      ctx.problem('E_CONFIG', `slices[${s}]: passthrough takes one source per slice, not ${slice.sources.length}`);
      return;
    }
    const src = slice.sources[0];
    const index = modelIndex(src.name);
    const source = index < 0 ? ctx.base : ctx.models[index].source;
    const sourceLayers = countLayers(source.tensors.keys());
    const [start, end] = src.layerRange;
    if (end > sourceLayers) {
      ctx.problem('E_CONFIG', `slices[${s}]: layer_range [${start}, ${end}] passes the ${sourceLayers} layers of ${src.name}`);
      return;
    }
    const byLayer = orderTensorNames([...source.tensors.keys()]).filter((n) => layerOf(n) !== null);
    for (let layer = start; layer < end; layer++) {
      for (const n of byLayer.filter((name) => layerOf(name) === layer)) {
        copy(source, index < 0 ? 'base' : index, n, renumber(n, nextLayer), scaleOf(src.name, n, layer, sourceLayers));
      }
      nextLayer++;
    }
  });
  for (const n of after) copy(outer, outerIndex < 0 ? 'base' : outerIndex, n, n, 1);
  return { tensors, numLayers: nextLayer, outputLayers: nextLayer };
}

export const passthrough: MethodDefinition = {
  schema: methodSchemas.passthrough,
  includesBaseEntry: true,
  statisticsNeeded: () => null,
  planTensors: planPassthrough,
  mergeTensor: () => {
    throw new DppaError('E_ARGUMENT', 'passthrough copies tensors; it merges none');
  },
};
