/**
 * The dtypes a safetensors file may hold, their element sizes, and their names in a
 * Hugging Face `config.json` (`torch_dtype`).
 */

export type SafetensorsDType =
  | 'F64' | 'F32' | 'F16' | 'BF16' | 'F8_E4M3' | 'F8_E5M2'
  | 'I64' | 'I32' | 'I16' | 'I8'
  | 'U64' | 'U32' | 'U16' | 'U8'
  | 'BOOL';

/** Bytes per element. */
export const DTYPE_SIZE: Readonly<Record<SafetensorsDType, number>> = Object.freeze({
  F64: 8, F32: 4, F16: 2, BF16: 2, F8_E4M3: 1, F8_E5M2: 1,
  I64: 8, I32: 4, I16: 2, I8: 1,
  U64: 8, U32: 4, U16: 2, U8: 1,
  BOOL: 1,
});

export const SAFETENSORS_DTYPES: readonly SafetensorsDType[] = Object.freeze(
  Object.keys(DTYPE_SIZE) as SafetensorsDType[],
);

export function isSafetensorsDType(value: unknown): value is SafetensorsDType {
  // hasOwnProperty, not `in`: "toString" must not count as a dtype.
  return typeof value === 'string' && Object.prototype.hasOwnProperty.call(DTYPE_SIZE, value);
}

export function isFloatDType(dtype: SafetensorsDType): boolean {
  return dtype === 'F64' || dtype === 'F32' || dtype === 'F16' || dtype === 'BF16' ||
    dtype === 'F8_E4M3' || dtype === 'F8_E5M2';
}

const TORCH_NAMES: Partial<Record<SafetensorsDType, string>> = {
  F64: 'float64', F32: 'float32', F16: 'float16', BF16: 'bfloat16',
  F8_E4M3: 'float8_e4m3fn', F8_E5M2: 'float8_e5m2',
  I64: 'int64', I32: 'int32', I16: 'int16', I8: 'int8', U8: 'uint8', BOOL: 'bool',
};

/** The `torch_dtype` string of config.json for a dtype (e.g. BF16 → "bfloat16"). */
export function torchDtypeName(dtype: SafetensorsDType): string {
  const name = TORCH_NAMES[dtype];
  if (name === undefined) return dtype.toLowerCase();
  return name;
}

/** The inverse of torchDtypeName, for the float dtypes a model's config may name. */
export function dtypeFromTorchName(name: string): SafetensorsDType | undefined {
  const bare = name.startsWith('torch.') ? name.slice(6) : name;
  for (const [dtype, torchName] of Object.entries(TORCH_NAMES)) {
    if (torchName === bare) return dtype as SafetensorsDType;
  }
  if (bare === 'float' ) return 'F32';
  if (bare === 'half') return 'F16';
  return undefined;
}

/**
 * numel of a shape: 1 for a scalar (shape []). Returns NaN when the product is not a safe
 * integer, so callers can report it instead of computing with a rounded count.
 */
export function shapeNumel(shape: readonly number[]): number {
  let numel = 1;
  for (const dim of shape) {
    numel *= dim;
    if (!Number.isSafeInteger(numel)) return NaN;
  }
  return numel;
}
