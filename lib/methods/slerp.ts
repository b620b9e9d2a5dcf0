/**
 * `slerp`: spherical interpolation from the base (t = 0) to the other model (t = 1), along
 * the great circle between the two tensors' directions; plain lerp when they are nearly
 * colinear (|cos| > 0.9995), as mergekit.
 */
import type { MethodDefinition } from './recipe';
import { methodSchemas } from './schemas';

const COLINEAR = 0.9995;
const NORM_EPSILON = 1e-8;

/** The coefficients (s0, s1) with slerp(t) = s0·v0 + s1·v1, from the Gram matrix of v0, v1. */
export function slerpCoefficients(t: number, gram: Float64Array): [number, number] {
  const [g00, g01, , g11] = gram;
  const n0 = Math.sqrt(g00) > NORM_EPSILON ? Math.sqrt(g00) : 1;
  const n1 = Math.sqrt(g11) > NORM_EPSILON ? Math.sqrt(g11) : 1;
  const cos = g01 / (n0 * n1);
  if (Math.abs(cos) > COLINEAR) return [1 - t, t];
  const theta0 = Math.acos(Math.max(-1, Math.min(1, cos)));
  const sinTheta0 = Math.sin(theta0);
  const thetaT = theta0 * t;
  return [Math.sin(theta0 - thetaT) / sinTheta0, Math.sin(thetaT) / sinTheta0];
}

export const slerp: MethodDefinition = {
  schema: methodSchemas.slerp,
  statisticsNeeded: () => null,
  mergeTensor: async (work) => {
    const t = work.params.number('t');
    const other = work.models[0].input;
    const gram = await work.native.gram([{ ft: work.base }, { ft: other }]);
    const [s0, s1] = slerpCoefficients(t, gram);
    return work.native.linearCombine([work.base, other], Float64Array.of(s0, s1), work.out, work.outDtype);
  },
};
