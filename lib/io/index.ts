/** The checkpoint I/O layer: safetensors reading, model folders, the output writer, codecs. */
export * from './dtypes';
export * from './codec';
export { MAX_HEADER_BYTES, parseSafetensorsBytes, type HeaderEntry, type ParsedHeader } from './header';
export { SafetensorsFile, type RangeMapper, type TensorInfo } from './safetensors';
export { ModelSource, INDEX_FILE_NAME, SINGLE_FILE_NAME, type ModelLayout } from './model';
export {
  ModelWriter, DEFAULT_MAX_SHARD_BYTES, TOKENIZER_FILES,
  type ModelWriterOptions, type FinishOptions, type FinishResult,
} from './writer';
export { planShards, shardFileName, encodeShardHeader, encodeShardIndex, type TensorSpec, type PlannedTensor, type ShardPlan } from './shard-plan';
export { parseByteSize, formatByteSize } from './byte-size';
export { removeStaleTemps } from './temp-folders';
