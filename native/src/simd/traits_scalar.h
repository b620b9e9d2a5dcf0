// traits_scalar.h: one-lane "vector" traits. The scalar path uses them throughout; the SIMD
// paths use them for the tail of a tile, so every path computes the same per-element ops.
// Bit manipulation is explicit (no hardware conversion) and must match F16C exactly.
#pragma once
#include <cstdint>
#include <cstring>

#include "dppa/philox.h"

// In an anonymous namespace: each ISA file gets its own copy, compiled with its own flags.
// (Shared inline functions would be merged by the linker, and one compiled for AVX-512 could
// end up running on the scalar path.)
namespace {

struct ScalarTraits {
  static constexpr int W = 1;
  using F = float;
  using I = uint32_t;
  using M = bool;

  static F loadF(const float* p) { return *p; }
  static void storeF(float* p, F x) { *p = x; }
  static I loadI(const uint32_t* p) { return *p; }
  static void storeI(uint32_t* p, I x) { *p = x; }
  static F zeroF() { return 0.0f; }
  static F set1F(float x) { return x; }
  static I set1I(uint32_t x) { return x; }
  static I iota() { return 0; }
  static F add(F a, F b) { return a + b; }
  static F sub(F a, F b) { return a - b; }
  static F mul(F a, F b) { return a * b; }
  static F div(F a, F b) { return a / b; }
  static F maxF(F a, F b) { return a > b ? a : b; }  // as x86 max: b when unordered
  static I bitsOf(F x) { uint32_t u; std::memcpy(&u, &x, 4); return u; }
  static F floatOf(I u) { float x; std::memcpy(&x, &u, 4); return x; }
  static I absBits(F x) { return bitsOf(x) & 0x7FFFFFFFu; }
  static F absF(F x) { return floatOf(absBits(x)); }
  static I addI(I a, I b) { return a + b; }
  static F floatFromInt(I a) { return float(int32_t(a)); }  // exact below 2^24
  static I shiftRight(I a, int s) { return a >> s; }
  static I maxU(I a, I b) { return a > b ? a : b; }
  static M gtF(F a, F b) { return a > b; }
  static M ltF(F a, F b) { return a < b; }
  static M gtU(I a, I b) { return a > b; }
  static M leU(I a, I b) { return a <= b; }
  static I subI(I a, I b) { return a - b; }
  static M eqI(I a, I b) { return a == b; }
  static M gtS(I a, I b) { return int32_t(a) > int32_t(b); }
  static M ltS(I a, I b) { return int32_t(a) < int32_t(b); }
  static M mAnd(M a, M b) { return a && b; }
  static M mOr(M a, M b) { return a || b; }
  static M mAndNot(M a, M b) { return a && !b; }  // a and not b
  static M mNot(M a) { return !a; }
  static M mNone() { return false; }
  static F select(M m, F ifTrue, F ifFalse) { return m ? ifTrue : ifFalse; }
  static F mulOrZero(M m, F a, F b) { return m ? a * b : 0.0f; }  // select(m, a·b, +0)
  static F addIf(M m, F a, F b) { return m ? a + b : a; }         // select(m, a + b, a)
  static F negateIf(M m, F x) { return m ? floatOf(bitsOf(x) ^ 0x80000000u) : x; }  // sign bit flipped
  static unsigned maskBits(M m) { return m ? 1u : 0u; }  // bit l: lane l
  static unsigned popcount(M m) { return m ? 1u : 0u; }
  static I countLanes(I acc, M m) { return acc + (m ? 1u : 0u); }
  static uint64_t sumLanes(I acc) { return acc; }
  // As the vector traits: the selected lanes packed to the front of W entries at p (stored
  // unconditionally; the caller advances p by popcount(m)).
  static void compressStoreI(uint32_t* p, M, I x) { *p = x; }

  static F loadBF16(const uint8_t* p) {
    uint16_t h;
    std::memcpy(&h, p, 2);
    return floatOf(uint32_t(h) << 16);
  }
  static F loadF16(const uint8_t* p) {
    uint16_t h;
    std::memcpy(&h, p, 2);
    return floatOf(f16ToF32Bits(h));
  }
  static F loadF64(const uint8_t* p) {
    double d;
    std::memcpy(&d, p, 8);
    return float(d);
  }
  static void storeBF16(uint8_t* p, F x) {
    uint16_t h = f32ToBF16Bits(bitsOf(x));
    std::memcpy(p, &h, 2);
  }
  static void storeF16(uint8_t* p, F x) {
    uint16_t h = f32ToF16Bits(bitsOf(x));
    std::memcpy(p, &h, 2);
  }

  // lanes[l] += (double)|x[l]|, lanes[l] += (double)x[l] * (double)y[l]: exact products.
  // lanes[l] += double(a[l]) for an abs value a; the count of lanes with double(a) > threshold.
  static void laneAddAbs(double* lanes, F a) { lanes[0] += double(a); }
  static void laneAddDot(double* lanes, const float* x, const float* y) { lanes[0] += double(x[0]) * double(y[0]); }
  static unsigned countAbove(F a, double threshold) { return double(a) > threshold ? 1u : 0u; }

  // ---- the bit-exact conversions (also the reference for the SIMD paths) ----
  static uint32_t f16ToF32Bits(uint16_t h) {
    const uint32_t sign = uint32_t(h & 0x8000u) << 16;
    const uint32_t exponent = (h >> 10) & 0x1Fu;
    uint32_t mantissa = h & 0x3FFu;
    if (exponent == 0x1F) {
      // Inf stays Inf; a NaN becomes a quiet NaN with its payload kept (as F16C does).
      return mantissa == 0 ? (sign | 0x7F800000u) : (sign | 0x7FC00000u | (mantissa << 13));
    }
    if (exponent != 0) return sign | ((exponent + 112u) << 23) | (mantissa << 13);
    if (mantissa == 0) return sign;
    // f16 subnormal: m·2^-24 is a normal float32; normalize the mantissa.
    int shift = 0;
    while ((mantissa & 0x400u) == 0) {
      mantissa <<= 1;
      ++shift;
    }
    mantissa &= 0x3FFu;
    return sign | (uint32_t(113 - shift) << 23) | (mantissa << 13);
  }

  static uint16_t f32ToBF16Bits(uint32_t bits) {
    if ((bits & 0x7FFFFFFFu) > 0x7F800000u) return uint16_t((bits >> 16) | 0x0040u);  // quiet NaN
    // Round to nearest even: add just under half an ulp, plus one when the kept lsb is odd.
    // Overflow carries into the exponent and gives Inf, as IEEE rounding does.
    return uint16_t((bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16);
  }

  static uint16_t f32ToF16Bits(uint32_t bits) {
    const uint16_t sign = uint16_t((bits >> 16) & 0x8000u);
    const uint32_t a = bits & 0x7FFFFFFFu;
    if (a > 0x7F800000u) return uint16_t(sign | 0x7E00u | ((a >> 13) & 0x3FFu));  // quiet NaN
    if (a >= 0x38800000u) {  // |x| >= 2^-14: a normal f16, or overflow
      if (a >= 0x47800000u) return uint16_t(sign | 0x7C00u);  // >= 65536 (and Inf): Inf
      const uint32_t rebiased = a - (112u << 23);
      const uint32_t rounded = (rebiased + 0xFFFu + ((rebiased >> 13) & 1u)) >> 13;
      return uint16_t(sign | (rounded >= 0x7C00u ? 0x7C00u : rounded));
    }
    // f16 subnormal range: the result is round(|x| / 2^-24), ties to even.
    const uint32_t exponent = a >> 23;
    if (exponent < 102) return sign;  // |x| < 2^-25: rounds to zero (also float32 subnormals)
    const uint32_t mantissa = (a & 0x7FFFFFu) | 0x800000u;
    const uint32_t shift = 126u - exponent;  // 14 .. 24
    uint32_t q = mantissa >> shift;
    const uint32_t rest = mantissa & ((1u << shift) - 1u);
    const uint32_t half = 1u << (shift - 1);
    if (rest > half || (rest == half && (q & 1u))) ++q;
    return uint16_t(sign | q);
  }

  // Philox4x32-10 of the block with counter (blockLo, blockHi, c2, c3): its 4 words to out.
  static void philoxBlocks(uint32_t blockLo, uint32_t blockHi, uint32_t c2, uint32_t c3, uint32_t k0, uint32_t k1,
                           uint32_t* out) {
    const dppa::Philox4x32Block b = dppa::philox4x32_10(blockLo, blockHi, c2, c3, k0, k1);
    for (int w = 0; w < 4; ++w) out[w] = b.word[w];
  }
};

}  // namespace
