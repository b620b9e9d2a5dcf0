export * from './types';
export { parseConfig, parseConfigObject, loadConfig } from './parse';
export type { LoadOptions } from './parse';
export { validateConfig, formatPath, resolveModelPath, TOP_LEVEL_KEYS, DTYPES } from './validate';
export type { Locator, PathSegment } from './validate';
export {
  resolveParam, evaluateSetting, interpolateGradient, gradientPosition, filterMatches,
  resolveParamWithOrigin, resolveSourceParam, resolveModelParam, resolveGlobalParam, requireNumber,
} from './resolve';
export type { TensorContext, ResolvedValue, ResolvedParam, ParamOrigin } from './resolve';
export { describeConfig } from './describe';
export { nearestName, didYouMean, damerauDistance, normalizeName } from './suggest';
