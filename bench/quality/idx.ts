/**
 * Reader for the IDX format used by MNIST and Fashion-MNIST (http://yann.lecun.com/exdb/mnist/):
 * a 4-byte magic (0, 0, type code, number of dimensions), one big-endian uint32 per
 * dimension, then the data. Only unsigned bytes (type 0x08) occur in these data sets.
 * Gzipped files (Debian ships `.gz`) are inflated first.
 */
import * as fs from 'fs';
import * as zlib from 'zlib';

export interface IdxArray {
  dims: number[];
  data: Uint8Array;
}

const TYPE_UBYTE = 0x08;

export function parseIdx(bytes: Uint8Array): IdxArray {
  if (bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b) bytes = zlib.gunzipSync(bytes);
  if (bytes.length < 4 || bytes[0] !== 0 || bytes[1] !== 0) throw new Error('not an IDX file: bad magic');
  const type = bytes[2];
  const rank = bytes[3];
  if (type !== TYPE_UBYTE) throw new Error(`IDX type 0x${type.toString(16)} is not supported (only unsigned bytes)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const header = 4 + 4 * rank;
  if (bytes.length < header) throw new Error('IDX file truncated in its header');
  const dims: number[] = [];
  for (let i = 0; i < rank; i++) dims.push(view.getUint32(4 + 4 * i, false));
  const count = dims.reduce((a, b) => a * b, 1);
  if (bytes.length !== header + count) {
    throw new Error(`IDX size mismatch: header says ${count} elements, file holds ${bytes.length - header}`);
  }
  return { dims, data: bytes.subarray(header, header + count) };
}

export function readIdx(file: string): IdxArray {
  try {
    return parseIdx(fs.readFileSync(file));
  } catch (err) {
    throw new Error(`${file}: ${(err as Error).message}`);
  }
}

/** Serializes an unsigned-byte IDX array: used by the tests to build fixtures. */
export function encodeIdx(dims: number[], data: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + 4 * dims.length + data.length);
  const view = new DataView(out.buffer);
  out[2] = TYPE_UBYTE;
  out[3] = dims.length;
  dims.forEach((d, i) => view.setUint32(4 + 4 * i, d, false));
  out.set(data, 4 + 4 * dims.length);
  return out;
}
