/**
 * `della_linear`: DELLA's magnitude-ranked stochastic dropping (sparsify/della.ts) feeding the
 * combiner without sign election (task arithmetic); presets in schemas.ts.
 */
import { combinerMethod } from './combine';
import { methodSchemas } from './schemas';

export const della_linear = combinerMethod(methodSchemas.della_linear);
