/** The methods' view of parameters: resolved for one model (or globally) and one tensor. */
import { resolveParamWithOrigin, TensorContext } from '../config/resolve';
import type { MergeConfig } from '../config/types';
import { DppaError } from '../errors';
import type { ParamSource } from '../methods/recipe';

export function paramSource(config: MergeConfig, modelIndex: number | null, ctx: TensorContext): ParamSource {
  const where = () =>
    [modelIndex !== null ? `model ${config.models[modelIndex].name}` : 'global parameters', ctx.tensorName && `tensor ${ctx.tensorName}`]
      .filter(Boolean)
      .join(', ');
  const get = (name: string, kind: string) => {
    const { value } = resolveParamWithOrigin(config, name, modelIndex, ctx);
    const ok = kind === 'list' ? Array.isArray(value) : typeof value === kind;
    if (!ok) {
      throw new DppaError('E_CONFIG', `parameter ${name} has no ${kind} value for ${where()}: give it per model, globally, or as a filter list with a fallback entry`);
    }
    return value;
  };
  return {
    number: (name) => get(name, 'number') as number,
    boolean: (name) => get(name, 'boolean') as boolean,
    string: (name) => get(name, 'string') as string,
    list: (name) => get(name, 'list') as number[],
    given: (name) => {
      const origin = resolveParamWithOrigin(config, name, modelIndex, ctx).origin;
      return origin === 'model' || origin === 'global';
    },
  };
}
