// traits_avx2.h: 8-lane float32 traits on AVX2 + F16C. Include only from avx2.cpp (compiled
// with -mavx2 -mfma -mf16c -ffp-contract=off). Masks are all-ones float lanes.
#pragma once
#include <immintrin.h>

#include <cstdint>

// In an anonymous namespace: each ISA file gets its own copy, compiled with its own flags.
// (Shared inline functions would be merged by the linker, and one compiled for AVX-512 could
// end up running on the scalar path.)
namespace {

// For each 8-bit lane mask: the indices of its set lanes, in order, then zeros.
struct CompressOrder {
  uint32_t lanes[256][8];
};
constexpr CompressOrder makeCompressOrder() {
  CompressOrder table{};
  for (unsigned mask = 0; mask < 256; ++mask) {
    unsigned next = 0;
    for (unsigned lane = 0; lane < 8; ++lane)
      if (mask & (1u << lane)) table.lanes[mask][next++] = lane;
  }
  return table;
}
constexpr CompressOrder kCompressOrder = makeCompressOrder();

struct Avx2Traits {
  static constexpr int W = 8;
  using F = __m256;
  using I = __m256i;
  using M = __m256;

  static F loadF(const float* p) { return _mm256_loadu_ps(p); }
  static void storeF(float* p, F x) { _mm256_storeu_ps(p, x); }
  static I loadI(const uint32_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
  static void storeI(uint32_t* p, I x) { _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), x); }
  static F zeroF() { return _mm256_setzero_ps(); }
  static F set1F(float x) { return _mm256_set1_ps(x); }
  static I set1I(uint32_t x) { return _mm256_set1_epi32(int32_t(x)); }
  static I iota() { return _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7); }
  static F add(F a, F b) { return _mm256_add_ps(a, b); }
  static F sub(F a, F b) { return _mm256_sub_ps(a, b); }
  static F mul(F a, F b) { return _mm256_mul_ps(a, b); }
  static F div(F a, F b) { return _mm256_div_ps(a, b); }
  static F maxF(F a, F b) { return _mm256_max_ps(a, b); }
  static I bitsOf(F x) { return _mm256_castps_si256(x); }
  static F floatOf(I u) { return _mm256_castsi256_ps(u); }
  static I absBits(F x) { return _mm256_and_si256(bitsOf(x), _mm256_set1_epi32(0x7FFFFFFF)); }
  static F absF(F x) { return floatOf(absBits(x)); }
  static I addI(I a, I b) { return _mm256_add_epi32(a, b); }
  static F floatFromInt(I a) { return _mm256_cvtepi32_ps(a); }  // exact below 2^24
  static I shiftRight(I a, int s) { return _mm256_srli_epi32(a, s); }
  static I maxU(I a, I b) { return _mm256_max_epu32(a, b); }
  static M gtF(F a, F b) { return _mm256_cmp_ps(a, b, _CMP_GT_OQ); }
  static M ltF(F a, F b) { return _mm256_cmp_ps(a, b, _CMP_LT_OQ); }
  // AVX2 compares only signed integers: flip the sign bits to compare unsigned.
  static M gtU(I a, I b) {
    const I flip = _mm256_set1_epi32(int32_t(0x80000000u));
    return _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_xor_si256(a, flip), _mm256_xor_si256(b, flip)));
  }
  static M leU(I a, I b) { return mNot(gtU(a, b)); }
  static I subI(I a, I b) { return _mm256_sub_epi32(a, b); }
  static M eqI(I a, I b) { return _mm256_castsi256_ps(_mm256_cmpeq_epi32(a, b)); }
  static M gtS(I a, I b) { return _mm256_castsi256_ps(_mm256_cmpgt_epi32(a, b)); }
  static M ltS(I a, I b) { return _mm256_castsi256_ps(_mm256_cmpgt_epi32(b, a)); }
  static M mAnd(M a, M b) { return _mm256_and_ps(a, b); }
  static M mOr(M a, M b) { return _mm256_or_ps(a, b); }
  static M mAndNot(M a, M b) { return _mm256_andnot_ps(b, a); }
  static M mNot(M a) { return _mm256_xor_ps(a, _mm256_castsi256_ps(_mm256_set1_epi32(-1))); }
  static M mNone() { return _mm256_setzero_ps(); }
  static F select(M m, F ifTrue, F ifFalse) { return _mm256_blendv_ps(ifFalse, ifTrue, m); }
  // Masks are all ones or all zeros per lane: and selects exactly.
  static F mulOrZero(M m, F a, F b) { return _mm256_and_ps(m, _mm256_mul_ps(a, b)); }
  static F addIf(M m, F a, F b) { return _mm256_blendv_ps(a, _mm256_add_ps(a, b), m); }
  static F negateIf(M m, F x) { return _mm256_xor_ps(x, _mm256_and_ps(m, _mm256_set1_ps(-0.0f))); }
  static unsigned maskBits(M m) { return unsigned(_mm256_movemask_ps(m)); }  // bit l: lane l
  static unsigned popcount(M m) { return unsigned(__builtin_popcount(unsigned(_mm256_movemask_ps(m)))); }
  // Per-lane counters: acc + 1 in the lanes of m (a set mask lane is -1 as an integer); their total.
  static I countLanes(I acc, M m) { return _mm256_sub_epi32(acc, _mm256_castps_si256(m)); }
  static uint64_t sumLanes(I acc) {
    alignas(32) uint32_t lanes[8];
    _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), acc);
    uint64_t total = 0;
    for (uint32_t lane : lanes) total += lane;
    return total;
  }
  // The lanes of x selected by m, packed to the front of W entries at p (the rest undefined):
  // AVX2 has no compress, so a permutation per 8-bit mask comes from a table.
  static void compressStoreI(uint32_t* p, M m, I x) {
    const I order = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kCompressOrder.lanes[maskBits(m)]));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), _mm256_permutevar8x32_epi32(x, order));
  }

  static F loadBF16(const uint8_t* p) {
    const __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    return floatOf(_mm256_slli_epi32(wide, 16));
  }
  // F16C converts f16 subnormals exactly and quiets NaNs: the same as ScalarTraits.
  static F loadF16(const uint8_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }
  static F loadF64(const uint8_t* p) {
    const __m128 lo = _mm256_cvtpd_ps(_mm256_loadu_pd(reinterpret_cast<const double*>(p)));
    const __m128 hi = _mm256_cvtpd_ps(_mm256_loadu_pd(reinterpret_cast<const double*>(p + 32)));
    return _mm256_set_m128(hi, lo);
  }
  static void storeBF16(uint8_t* p, F x) {
    const I bits = bitsOf(x);
    const I high = _mm256_srli_epi32(bits, 16);
    const I lsb = _mm256_and_si256(high, _mm256_set1_epi32(1));
    const I rounded = _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(bits, _mm256_set1_epi32(0x7FFF)), lsb), 16);
    const I quietNaN = _mm256_or_si256(high, _mm256_set1_epi32(0x40));
    const M isNaN = _mm256_cmp_ps(x, x, _CMP_UNORD_Q);  // one compare: abs bits > 0x7F800000
    const I result = _mm256_castps_si256(_mm256_blendv_ps(floatOf(rounded), floatOf(quietNaN), isNaN));
    // Values are < 2^16, so the saturating pack is exact; it packs within 128-bit halves.
    const I packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(result, result), 0x08);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm256_castsi256_si128(packed));
  }
  static void storeF16(uint8_t* p, F x) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm256_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  }

  static void laneAddAbs(double* lanes, F a) {
    _mm256_storeu_pd(lanes, _mm256_add_pd(_mm256_loadu_pd(lanes), _mm256_cvtps_pd(_mm256_castps256_ps128(a))));
    _mm256_storeu_pd(lanes + 4, _mm256_add_pd(_mm256_loadu_pd(lanes + 4), _mm256_cvtps_pd(_mm256_extractf128_ps(a, 1))));
  }
  static void laneAddDot(double* lanes, const float* x, const float* y) {
    const F a = loadF(x), b = loadF(y);
    const __m256d p0 = _mm256_mul_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(a)), _mm256_cvtps_pd(_mm256_castps256_ps128(b)));
    const __m256d p1 = _mm256_mul_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(a, 1)), _mm256_cvtps_pd(_mm256_extractf128_ps(b, 1)));
    _mm256_storeu_pd(lanes, _mm256_add_pd(_mm256_loadu_pd(lanes), p0));
    _mm256_storeu_pd(lanes + 4, _mm256_add_pd(_mm256_loadu_pd(lanes + 4), p1));
  }
  static unsigned countAbove(F a, double threshold) {
    const __m256d t = _mm256_set1_pd(threshold);
    const int lo = _mm256_movemask_pd(_mm256_cmp_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(a)), t, _CMP_GT_OQ));
    const int hi = _mm256_movemask_pd(_mm256_cmp_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(a, 1)), t, _CMP_GT_OQ));
    return unsigned(__builtin_popcount(unsigned(lo | (hi << 4))));
  }

  // Philox4x32-10 (philox.h) of the 8 blocks with counters (blockLo + lane, blockHi, c2, c3);
  // blockLo + 7 must not wrap. Writes their 32 words in element order to out.
  static void mulHiLo(__m256i a, __m256i k, __m256i& hi, __m256i& lo) {
    const __m256i even = _mm256_mul_epu32(a, k);                      // lanes 0, 2, ...: 64-bit products
    const __m256i odd = _mm256_mul_epu32(_mm256_srli_epi64(a, 32), k);  // lanes 1, 3, ...
    hi = _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xAA);
    lo = _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
  }
  static void philoxBlocks(uint32_t blockLo, uint32_t blockHi, uint32_t c2, uint32_t c3, uint32_t k0, uint32_t k1,
                           uint32_t* out) {
    __m256i x0 = _mm256_add_epi32(_mm256_set1_epi32(int32_t(blockLo)), iota());
    __m256i x1 = _mm256_set1_epi32(int32_t(blockHi));
    __m256i x2 = _mm256_set1_epi32(int32_t(c2));
    __m256i x3 = _mm256_set1_epi32(int32_t(c3));
    const __m256i mul0 = _mm256_set1_epi32(int32_t(0xD2511F53u)), mul1 = _mm256_set1_epi32(int32_t(0xCD9E8D57u));
    for (int round = 0; round < 10; ++round) {
      __m256i hi0, lo0, hi1, lo1;
      mulHiLo(x0, mul0, hi0, lo0);
      mulHiLo(x2, mul1, hi1, lo1);
      x0 = _mm256_xor_si256(_mm256_xor_si256(hi1, x1), _mm256_set1_epi32(int32_t(k0)));
      x1 = lo1;
      x2 = _mm256_xor_si256(_mm256_xor_si256(hi0, x3), _mm256_set1_epi32(int32_t(k1)));
      x3 = lo0;
      k0 += 0x9E3779B9u;
      k1 += 0xBB67AE85u;
    }
    // 4 × 8 -> 8 × 4: within each 128-bit half H, b_j holds block 4H + j's four words.
    const __m256i t0 = _mm256_unpacklo_epi32(x0, x1), t1 = _mm256_unpackhi_epi32(x0, x1);
    const __m256i t2 = _mm256_unpacklo_epi32(x2, x3), t3 = _mm256_unpackhi_epi32(x2, x3);
    const __m256i b0 = _mm256_unpacklo_epi64(t0, t2), b1 = _mm256_unpackhi_epi64(t0, t2);
    const __m256i b2 = _mm256_unpacklo_epi64(t1, t3), b3 = _mm256_unpackhi_epi64(t1, t3);
    __m256i* o = reinterpret_cast<__m256i*>(out);
    _mm256_storeu_si256(o, _mm256_permute2x128_si256(b0, b1, 0x20));      // blocks 0, 1
    _mm256_storeu_si256(o + 1, _mm256_permute2x128_si256(b2, b3, 0x20));  // blocks 2, 3
    _mm256_storeu_si256(o + 2, _mm256_permute2x128_si256(b0, b1, 0x31));  // blocks 4, 5
    _mm256_storeu_si256(o + 3, _mm256_permute2x128_si256(b2, b3, 0x31));  // blocks 6, 7
  }
};

}  // namespace
