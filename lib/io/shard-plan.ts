/**
 * How an output model is laid out on disk, decided before any tensor is written: which
 * shard holds each tensor, at which offset, and the exact header bytes of each shard. With
 * the layout fixed up front, tensors can be written in any order with positional writes.
 */
import { DppaError } from '../errors';
import { DTYPE_SIZE, isSafetensorsDType, shapeNumel, type SafetensorsDType } from './dtypes';

export interface TensorSpec {
  name: string;
  dtype: SafetensorsDType;
  shape: number[];
}

export interface PlannedTensor extends TensorSpec {
  numel: number;
  byteLength: number;
  /** Index into ShardPlan[]. */
  shard: number;
  /** Offset of the tensor's first byte in its shard file (header included). */
  fileOffset: number;
}

export interface ShardPlan {
  fileName: string;
  tensors: PlannedTensor[];
  /** The 8-byte length, the JSON header and its space padding. */
  header: Uint8Array;
  dataBytes: number;
  /** header.byteLength + dataBytes. */
  fileBytes: number;
}

/** `model.safetensors` for one shard, else `model-00001-of-00003.safetensors` like transformers. */
export function shardFileName(index: number, count: number): string {
  if (count === 1) return 'model.safetensors';
  const pad = (n: number) => String(n).padStart(5, '0');
  return `model-${pad(index + 1)}-of-${pad(count)}.safetensors`;
}

function validateSpecs(tensors: readonly TensorSpec[]): void {
  const seen = new Set<string>();
  for (const t of tensors) {
    if (typeof t.name !== 'string' || t.name.length === 0) throw new DppaError('E_ARGUMENT', 'a tensor name must be a non-empty string');
    if (t.name === '__metadata__') throw new DppaError('E_ARGUMENT', 'a tensor cannot be named "__metadata__" (reserved by safetensors)');
    if (seen.has(t.name)) throw new DppaError('E_ARGUMENT', `tensor "${t.name}" is listed twice`);
    seen.add(t.name);
    if (!isSafetensorsDType(t.dtype)) throw new DppaError('E_ARGUMENT', `tensor "${t.name}": unknown dtype "${String(t.dtype)}"`);
    if (!Array.isArray(t.shape) || !t.shape.every((d) => Number.isSafeInteger(d) && d >= 0) || Number.isNaN(shapeNumel(t.shape))) {
      throw new DppaError('E_ARGUMENT', `tensor "${t.name}": invalid shape ${JSON.stringify(t.shape)}`);
    }
  }
}

/**
 * The safetensors header of a shard: 8-byte little-endian length, then the JSON, padded with
 * spaces so the data section starts 8-byte aligned (as the reference writer does).
 * The JSON is assembled by hand so that a tensor named "__proto__" stays a plain key.
 */
export function encodeShardHeader(tensors: readonly { name: string; dtype: string; shape: number[] }[], offsets: readonly [number, number][], metadata?: Record<string, string>): Uint8Array {
  const parts: string[] = [];
  if (metadata !== undefined && Object.keys(metadata).length > 0) {
    const items = Object.entries(metadata).map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`);
    parts.push(`"__metadata__":{${items.join(',')}}`);
  }
  tensors.forEach((t, i) => {
    parts.push(`${JSON.stringify(t.name)}:{"dtype":${JSON.stringify(t.dtype)},"shape":[${t.shape.join(',')}],"data_offsets":[${offsets[i][0]},${offsets[i][1]}]}`);
  });
  const json = new TextEncoder().encode(`{${parts.join(',')}}`);
  const padded = Math.ceil(json.byteLength / 8) * 8;
  const out = new Uint8Array(8 + padded).fill(0x20, 8 + json.byteLength);
  new DataView(out.buffer).setBigUint64(0, BigInt(padded), true);
  out.set(json, 8);
  return out;
}

/**
 * Greedy sharding in write order: a tensor goes to the current shard unless it would push
 * the shard's data past maxShardBytes; a tensor larger than the limit gets a shard alone.
 */
export function planShards(tensors: readonly TensorSpec[], maxShardBytes: number, metadata?: Record<string, string>): ShardPlan[] {
  validateSpecs(tensors);
  if (!Number.isSafeInteger(maxShardBytes) || maxShardBytes <= 0) {
    throw new DppaError('E_ARGUMENT', `maxShardBytes must be a positive integer, not ${maxShardBytes}`);
  }
  const groups: { specs: TensorSpec[]; bytes: number[]; total: number }[] = [];
  let current: (typeof groups)[number] | undefined;
  for (const spec of tensors) {
    const bytes = shapeNumel(spec.shape) * DTYPE_SIZE[spec.dtype];
    if (current === undefined || (current.specs.length > 0 && current.total + bytes > maxShardBytes)) {
      current = { specs: [], bytes: [], total: 0 };
      groups.push(current);
    }
    current.specs.push(spec);
    current.bytes.push(bytes);
    current.total += bytes;
  }
  if (groups.length === 0) groups.push({ specs: [], bytes: [], total: 0 });

  return groups.map((group, shardIndex) => {
    const offsets: [number, number][] = [];
    let cursor = 0;
    for (const bytes of group.bytes) {
      offsets.push([cursor, cursor + bytes]);
      cursor += bytes;
    }
    const header = encodeShardHeader(group.specs, offsets, metadata);
    const planned: PlannedTensor[] = group.specs.map((spec, i) => ({
      name: spec.name,
      dtype: spec.dtype,
      shape: spec.shape.slice(),
      numel: shapeNumel(spec.shape),
      byteLength: group.bytes[i],
      shard: shardIndex,
      fileOffset: header.byteLength + offsets[i][0],
    }));
    return {
      fileName: shardFileName(shardIndex, groups.length),
      tensors: planned,
      header,
      dataBytes: cursor,
      fileBytes: header.byteLength + cursor,
    };
  });
}

/** model.safetensors.index.json, keys sorted as transformers writes them. */
export function encodeShardIndex(shards: readonly ShardPlan[], extraMetadata: Record<string, unknown> = {}): string {
  const entries: [string, string][] = [];
  let totalSize = 0;
  for (const shard of shards) {
    totalSize += shard.dataBytes;
    for (const t of shard.tensors) entries.push([t.name, shard.fileName]);
  }
  entries.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const metadata = { ...extraMetadata, total_size: totalSize };
  const mapLines = entries.map(([name, file]) => `    ${JSON.stringify(name)}: ${JSON.stringify(file)}`);
  const metadataText = JSON.stringify(metadata, null, 2).replace(/\n/g, '\n  ');
  return `{\n  "metadata": ${metadataText},\n  "weight_map": {\n${mapLines.join(',\n')}\n  }\n}\n`;
}
