// Element-level device functions: decode/encode, Philox4x32-10, keep-rules. Pure bit
// manipulation and explicitly rounded float ops (__fadd_rn & co.), so nothing is contracted
// into an FMA and every result is the IEEE one the CPU computes.
#pragma once
#include <cstdint>
#include "dppa_cuda.h"

namespace dppa {
namespace cuda {

__device__ __forceinline__ float bitsToFloat(uint32_t u) { return __uint_as_float(u); }
__device__ __forceinline__ uint32_t floatToBits(float f) { return __float_as_uint(f); }

__device__ __forceinline__ float decodeF16(uint32_t h) {
  const uint32_t sign = (h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1Fu;
  const uint32_t mant = h & 0x3FFu;
  if (exp == 0) {
    // Subnormal or zero: mant * 2^-24, exact in float32.
    const float mag = __fmul_rn((float)mant, 5.9604644775390625e-8f);
    return sign ? -mag : mag;
  }
  if (exp == 31) return bitsToFloat(mant ? (sign | 0x7FC00000u | (mant << 13)) : (sign | 0x7F800000u));  // NaN made quiet, payload kept
  return bitsToFloat(sign | ((exp + 112u) << 23) | (mant << 13));
}

__device__ __forceinline__ float decodeE4M3(uint32_t b) {
  const uint32_t sign = (b & 0x80u) << 24;
  const uint32_t exp = (b >> 3) & 0xFu;
  const uint32_t mant = b & 0x7u;
  if (exp == 15 && mant == 7) return bitsToFloat(sign | 0x7FC00000u);
  if (exp == 0) {
    const float mag = __fmul_rn((float)mant, 0.001953125f);  // 2^-9
    return sign ? -mag : mag;
  }
  return bitsToFloat(sign | ((exp + 120u) << 23) | (mant << 20));
}

// Decode element i of a raw little-endian buffer.
__device__ __forceinline__ float decodeAt(const void* p, int32_t dtype, uint64_t i) {
  switch (dtype) {
    case DPPA_CUDA_F32: return static_cast<const float*>(p)[i];
    case DPPA_CUDA_F16: return decodeF16(static_cast<const uint16_t*>(p)[i]);
    case DPPA_CUDA_BF16: return bitsToFloat(uint32_t(static_cast<const uint16_t*>(p)[i]) << 16);
    case DPPA_CUDA_F64: return __double2float_rn(static_cast<const double*>(p)[i]);
    case DPPA_CUDA_F8_E4M3: return decodeE4M3(static_cast<const uint8_t*>(p)[i]);
    case DPPA_CUDA_F8_E5M2: return decodeF16(uint32_t(static_cast<const uint8_t*>(p)[i]) << 8);
    default: return 0.0f;
  }
}

__device__ __forceinline__ uint32_t encodeBF16(float f) {
  const uint32_t u = floatToBits(f);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return (u >> 16) | 0x40u;  // quiet NaN, sign + top payload kept
  return (u + 0x7FFFu + ((u >> 16) & 1u)) >> 16;                  // round to nearest even
}

__device__ __forceinline__ uint32_t encodeF16(float f) {
  const uint32_t u = floatToBits(f);
  const uint32_t sign = (u >> 16) & 0x8000u;
  const uint32_t a = u & 0x7FFFFFFFu;
  if (a > 0x7F800000u) return sign | 0x7E00u | ((a >> 13) & 0x3FFu);  // quiet NaN, top payload kept
  if (a >= 0x477FF000u) return sign | 0x7C00u;  // >= 65520 rounds to infinity
  if (a < 0x38800000u) {
    // Result is subnormal (or zero): value / 2^-24 rounded to nearest even, in integers.
    if (a < 0x33000000u) return sign;  // < 2^-25: rounds to zero (2^-25 itself is a tie to 0)
    const uint32_t e = a >> 23;                 // biased exponent, 102..112
    const uint32_t m = (a & 0x7FFFFFu) | 0x800000u;
    const uint32_t shift = 126u - e;            // 14..24: value = m * 2^(e-150) = q * 2^-24
    const uint32_t q = m >> shift;
    const uint32_t rem = m & ((1u << shift) - 1u);
    const uint32_t half = 1u << (shift - 1u);
    const uint32_t r = q + ((rem > half || (rem == half && (q & 1u))) ? 1u : 0u);
    return sign | r;
  }
  // Normal: rebias the exponent, round 13 mantissa bits to nearest even (a carry into the
  // exponent is the correct result, up to 0x7C00 = infinity, excluded above).
  const uint32_t r = a - 0x38000000u;  // (127 - 15) << 23
  return sign | ((r + 0xFFFu + ((r >> 13) & 1u)) >> 13);
}

// Philox4x32-10 (Salmon et al. 2011), the Random123 constants.
struct Philox4 {
  uint32_t v[4];
};

__device__ __forceinline__ Philox4 philox4x32_10(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3, uint32_t k0,
                                                 uint32_t k1) {
#pragma unroll
  for (int r = 0; r < 10; ++r) {
    const uint32_t hi0 = __umulhi(0xD2511F53u, c0), lo0 = 0xD2511F53u * c0;
    const uint32_t hi1 = __umulhi(0xCD9E8D57u, c2), lo1 = 0xCD9E8D57u * c2;
    const uint32_t n0 = hi1 ^ c1 ^ k0, n1 = lo1, n2 = hi0 ^ c3 ^ k1, n3 = lo0;
    c0 = n0; c1 = n1; c2 = n2; c3 = n3;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  Philox4 out;
  out.v[0] = c0; out.v[1] = c1; out.v[2] = c2; out.v[3] = c3;
  return out;
}

__device__ __forceinline__ uint32_t philoxWord(const dppa_cuda_random_stream& s, uint64_t i) {
  const uint64_t block = i >> 2;
  const Philox4 r = philox4x32_10(uint32_t(block), uint32_t(block >> 32), s.stream_lo, s.stream_hi, s.seed_lo, s.seed_hi);
  return r.v[i & 3];
}

__device__ __forceinline__ float uniformFromWord(uint32_t w) { return __fmul_rn((float)(w >> 8), 5.9604644775390625e-8f); }

__device__ __forceinline__ uint32_t absBits(float x) { return floatToBits(x) & 0x7FFFFFFFu; }

__device__ __forceinline__ bool keptByRule(uint32_t a, uint64_t i, uint32_t bits, int64_t cutoff) {
  return a > bits || (a == bits && (int64_t)i <= cutoff);
}

// ---- float ops with the CPU's NaN bits ----------------------------------------------------
// The CPU kernels run on x86 (SSE/AVX), where a NaN result is the first NaN operand made quiet,
// or, for an invalid operation on two numbers (Inf - Inf, 0 * Inf, Inf / Inf), the "default NaN"
// 0xFFC00000. CUDA returns its canonical NaN 0x7FFFFFFF in every case. Each op whose result can
// reach an output goes through these, so with NaN inputs (--allow-nonfinite) the GPU writes the
// CPU's bytes, and the histograms of |delta| (which hold NaN's bits) count the same bins.
__device__ __forceinline__ float withCpuNaN(float a, float b, float r) {
  if (r == r) return r;
  if (a != a) return bitsToFloat(floatToBits(a) | 0x00400000u);
  if (b != b) return bitsToFloat(floatToBits(b) | 0x00400000u);
  return bitsToFloat(0xFFC00000u);
}
__device__ __forceinline__ float addCpu(float a, float b) { return withCpuNaN(a, b, __fadd_rn(a, b)); }
__device__ __forceinline__ float subCpu(float a, float b) { return withCpuNaN(a, b, __fsub_rn(a, b)); }
__device__ __forceinline__ float mulCpu(float a, float b) { return withCpuNaN(a, b, __fmul_rn(a, b)); }
__device__ __forceinline__ float divCpu(float a, float b) { return withCpuNaN(a, b, __fdiv_rn(a, b)); }

__device__ __forceinline__ bool isNonFinite(float x) { return (floatToBits(x) & 0x7F800000u) == 0x7F800000u; }

}  // namespace cuda
}  // namespace dppa
