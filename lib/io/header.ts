/**
 * Parsing and validation of a safetensors header, as strict as the reference
 * implementation: a file that passes can be read without a single further bounds check.
 * Pure functions over bytes, so the fuzz tests can drive them without a file system.
 */
import { DppaError } from '../errors';
import { DTYPE_SIZE, SAFETENSORS_DTYPES, isSafetensorsDType, shapeNumel, type SafetensorsDType } from './dtypes';

/** The reference rejects headers above 100 MB: a length beyond it is corruption, never an allocation. */
export const MAX_HEADER_BYTES = 100_000_000;

/** One tensor as the header describes it; offsets are relative to the data section. */
export interface HeaderEntry {
  name: string;
  dtype: SafetensorsDType;
  shape: number[];
  numel: number;
  begin: number;
  end: number;
}

export interface ParsedHeader {
  /** Entries in data order (sorted by offset). */
  entries: HeaderEntry[];
  metadata: Record<string, string>;
  /** Bytes of the JSON header (without the 8-byte length). */
  headerLength: number;
  /** Bytes of the data section: file size − 8 − headerLength. */
  dataLength: number;
}

function formatError(file: string, what: string): DppaError {
  return new DppaError('E_FORMAT', `${file}: not a valid safetensors file: ${what}`);
}

/**
 * Validate the 8-byte length prefix against the file size; returns the header length.
 * `prefix` holds the first min(8, size) bytes of the file.
 */
export function parseHeaderLength(file: string, prefix: Uint8Array, fileSize: number): number {
  if (fileSize < 8 || prefix.byteLength < 8) {
    throw formatError(file, `the file is ${fileSize} bytes, too short for the 8-byte header length`);
  }
  const view = new DataView(prefix.buffer, prefix.byteOffset, 8);
  const length = view.getBigUint64(0, true);
  if (length > BigInt(MAX_HEADER_BYTES)) {
    throw formatError(file, `the header length field says ${length} bytes, above the 100 MB limit (corrupt or not a safetensors file)`);
  }
  const headerLength = Number(length);
  if (headerLength > fileSize - 8) {
    throw formatError(file, `the header length field says ${headerLength} bytes but the file has only ${fileSize - 8} bytes after it (truncated?)`);
  }
  if (headerLength < 2) throw formatError(file, `the header length field says ${headerLength} bytes, too short for a JSON object`);
  return headerLength;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Find a key that occurs twice in the same JSON object, at any depth. JSON.parse keeps the
 * last of duplicate keys silently, so two tensors of one name would otherwise go unnoticed.
 * `text` must already be known to be valid JSON.
 */
export function findDuplicateKey(text: string): { key: string; path: string } | undefined {
  // A stack of open containers: objects carry their keys so far and a flag for
  // "the next string is a key".
  type Frame = { keys: Set<string> | undefined; expectKey: boolean; name: string };
  const stack: Frame[] = [];
  let lastKey = '';
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      let j = i + 1;
      let escaped = false;
      for (; j < n; j++) {
        const d = text.charCodeAt(j);
        if (d === 0x5c /* \ */) { escaped = true; j++; continue; }
        if (d === 0x22) break;
      }
      const top = stack[stack.length - 1];
      if (top !== undefined && top.keys !== undefined && top.expectKey) {
        const raw = text.slice(i, j + 1);
        // Compare decoded keys: "a" and "\u0061" are the same name.
        const key = escaped ? (JSON.parse(raw) as string) : raw.slice(1, -1);
        if (top.keys.has(key)) return { key, path: stack.map((f) => f.name).filter((s) => s).join(' → ') };
        top.keys.add(key);
        top.expectKey = false;
        lastKey = key;
      }
      i = j;
    } else if (c === 0x7b /* { */) {
      stack.push({ keys: new Set(), expectKey: true, name: stack.length === 0 ? '' : lastKey });
    } else if (c === 0x5b /* [ */) {
      stack.push({ keys: undefined, expectKey: false, name: lastKey });
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      stack.pop();
    } else if (c === 0x2c /* , */) {
      const top = stack[stack.length - 1];
      if (top !== undefined && top.keys !== undefined) top.expectKey = true;
    }
  }
  return undefined;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isNonNegativeInteger(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function describe(value: unknown): string {
  const text = JSON.stringify(value);
  if (text === undefined) return String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

/**
 * Parse and validate the JSON header bytes. `dataLength` is the size of the data section,
 * which the tensors must cover exactly, without gaps or overlaps.
 */
export function parseHeaderJson(file: string, headerBytes: Uint8Array, dataLength: number): ParsedHeader {
  let text: string;
  try {
    text = utf8.decode(headerBytes);
  } catch {
    throw formatError(file, 'the header is not valid UTF-8');
  }
  if (text.charCodeAt(0) !== 0x7b /* { */) {
    throw formatError(file, 'the header does not start with "{" (not a safetensors file?)');
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw formatError(file, `the header is not valid JSON (${(e as Error).message})`);
  }
  if (!isPlainObject(parsed)) throw formatError(file, 'the header is not a JSON object');
  const duplicate = findDuplicateKey(text);
  if (duplicate !== undefined) {
    const where = duplicate.path ? ` in the entry "${duplicate.path}"` : '';
    const what = duplicate.path ? `key "${duplicate.key}"` : `tensor name "${duplicate.key}"`;
    throw formatError(file, `the ${what} occurs twice${where}`);
  }

  const metadata: Record<string, string> = {};
  const entries: HeaderEntry[] = [];
  for (const [name, value] of Object.entries(parsed)) {
    if (name === '__metadata__') {
      if (!isPlainObject(value)) throw formatError(file, '"__metadata__" must be an object of strings');
      for (const [key, item] of Object.entries(value)) {
        if (typeof item !== 'string') {
          throw formatError(file, `"__metadata__"."${key}" must be a string, not ${describe(item)}`);
        }
        metadata[key] = item;
      }
      continue;
    }
    entries.push(parseEntry(file, name, value));
  }

  checkCoverage(file, entries, dataLength);
  return { entries, metadata, headerLength: headerBytes.byteLength, dataLength };
}

function parseEntry(file: string, name: string, value: unknown): HeaderEntry {
  const bad = (what: string) => formatError(file, `tensor "${name}": ${what}`);
  if (!isPlainObject(value)) throw bad(`its entry must be an object with dtype, shape and data_offsets, not ${describe(value)}`);
  const { dtype, shape, data_offsets: offsets } = value;
  if (!isSafetensorsDType(dtype)) {
    throw bad(`unknown dtype ${describe(dtype)} (expected one of ${SAFETENSORS_DTYPES.join(', ')})`);
  }
  if (!Array.isArray(shape) || !shape.every(isNonNegativeInteger)) {
    throw bad(`shape must be an array of non-negative integers, not ${describe(shape)}`);
  }
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isNonNegativeInteger)) {
    throw bad(`data_offsets must be [begin, end] of non-negative integers, not ${describe(offsets)}`);
  }
  const [begin, end] = offsets as [number, number];
  if (begin > end) throw bad(`data_offsets [${begin}, ${end}] end before they begin`);
  const numel = shapeNumel(shape);
  const expected = numel * DTYPE_SIZE[dtype];
  if (!Number.isSafeInteger(expected)) throw bad(`shape [${shape.join(', ')}] is too large`);
  if (end - begin !== expected) {
    throw bad(`data_offsets [${begin}, ${end}] span ${end - begin} bytes but shape [${shape.join(', ')}] of ${dtype} needs ${expected}`);
  }
  return { name, dtype, shape: shape.slice(), numel, begin, end };
}

/** The tensors, sorted by offset, must tile [0, dataLength) exactly. */
function checkCoverage(file: string, entries: HeaderEntry[], dataLength: number): void {
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let expectedBegin = 0;
  let previous: HeaderEntry | undefined;
  for (const entry of entries) {
    if (entry.begin !== expectedBegin) {
      const what = entry.begin < expectedBegin
        ? `overlaps ${previous ? `tensor "${previous.name}"` : 'another tensor'} (its data begins at ${entry.begin}, before ${expectedBegin})`
        : `leaves a gap: its data begins at ${entry.begin} but the data before it ends at ${expectedBegin}`;
      throw formatError(file, `tensor "${entry.name}" ${what}`);
    }
    expectedBegin = entry.end;
    previous = entry;
  }
  if (expectedBegin !== dataLength) {
    const what = expectedBegin < dataLength
      ? `the tensors cover ${expectedBegin} bytes of data but the file holds ${dataLength} (trailing bytes)`
      : `the tensors need ${expectedBegin} bytes of data but the file holds only ${dataLength} (truncated?)`;
    throw formatError(file, what);
  }
}

/** Parse a whole safetensors file held in memory (tests, fuzzing, small files). */
export function parseSafetensorsBytes(file: string, bytes: Uint8Array): ParsedHeader {
  const headerLength = parseHeaderLength(file, bytes.subarray(0, 8), bytes.byteLength);
  return parseHeaderJson(file, bytes.subarray(8, 8 + headerLength), bytes.byteLength - 8 - headerLength);
}
