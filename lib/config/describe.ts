/**
 * The config in normalized form, as YAML, for the model card: models as written (never the
 * resolved local paths), mergekit's key names, parameters as validated.
 */
import { Document, isScalar, visit } from 'yaml';
import type { MergeConfig, ParamMap } from './types';

function plainParams(params: ParamMap): Record<string, unknown> | undefined {
  return Object.keys(params).length > 0 ? { ...params } : undefined;
}

export function describeConfig(config: MergeConfig): string {
  const out: Record<string, unknown> = {};
  if (config.name !== undefined) out.name = config.name;
  out.merge_method = config.mergeMethod;
  if (config.baseModelName !== undefined) out.base_model = config.baseModelName;
  if (config.slices) {
    out.slices = config.slices.map((slice) => ({
      sources: slice.sources.map((source) => {
        const entry: Record<string, unknown> = { model: source.name, layer_range: [...source.layerRange] };
        const params = plainParams(source.parameters);
        if (params) entry.parameters = params;
        return entry;
      }),
    }));
  } else {
    out.models = config.models.map((model) => {
      const entry: Record<string, unknown> = { model: model.name };
      const params = plainParams(model.parameters);
      if (params) entry.parameters = params;
      return entry;
    });
  }
  const params = plainParams(config.parameters);
  if (params) out.parameters = params;
  out.dtype = config.dtype;
  if (config.outDtype !== undefined) out.out_dtype = config.outDtype;
  if (config.tokenizerSource !== undefined) out.tokenizer_source = config.tokenizerSource;
  // Number lists (gradients, partitions, layer ranges) read best on one line.
  const doc = new Document(out);
  visit(doc, {
    Seq(_key, node) {
      if (node.items.every((item) => isScalar(item))) node.flow = true;
    },
  });
  return doc.toString({ flowCollectionPadding: false, lineWidth: 0 });
}
