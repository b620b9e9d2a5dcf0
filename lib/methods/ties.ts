/**
 * `ties`: a preset of the combiner (combine.ts); its sparsifier, consensus and normalize
 * defaults are in schemas.ts, as mergekit sets them.
 */
import { combinerMethod } from './combine';
import { methodSchemas } from './schemas';

export const ties = combinerMethod(methodSchemas.ties);
