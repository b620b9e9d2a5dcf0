/**
 * `della`: DELLA's magnitude-ranked stochastic dropping (sparsify/della.ts) feeding the
 * combiner with TIES' sign election (consensus: sum, normalize: true); presets in schemas.ts.
 */
import { combinerMethod } from './combine';
import { methodSchemas } from './schemas';

export const della = combinerMethod(methodSchemas.della);
