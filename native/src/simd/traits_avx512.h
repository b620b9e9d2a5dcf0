// traits_avx512.h: 16-lane float32 traits on AVX-512 F/BW/VL/DQ + F16C. Include only from
// avx512.cpp. The AVX512-BF16 conversion instruction is NOT used: it flushes subnormals, and
// the contract is bit-exact IEEE rounding, so bf16 rounding is done on the integer bits.
#pragma once
#include <immintrin.h>

#include <cstdint>

// In an anonymous namespace: each ISA file gets its own copy, compiled with its own flags.
// (Shared inline functions would be merged by the linker, and one compiled for AVX-512 could
// end up running on the scalar path.)
namespace {

struct Avx512Traits {
  static constexpr int W = 16;
  using F = __m512;
  using I = __m512i;
  using M = __mmask16;

  static F loadF(const float* p) { return _mm512_loadu_ps(p); }
  static void storeF(float* p, F x) { _mm512_storeu_ps(p, x); }
  static I loadI(const uint32_t* p) { return _mm512_loadu_si512(p); }
  static void storeI(uint32_t* p, I x) { _mm512_storeu_si512(p, x); }
  static F zeroF() { return _mm512_setzero_ps(); }
  static F set1F(float x) { return _mm512_set1_ps(x); }
  static I set1I(uint32_t x) { return _mm512_set1_epi32(int32_t(x)); }
  static I iota() { return _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15); }
  static F add(F a, F b) { return _mm512_add_ps(a, b); }
  static F sub(F a, F b) { return _mm512_sub_ps(a, b); }
  static F mul(F a, F b) { return _mm512_mul_ps(a, b); }
  static F div(F a, F b) { return _mm512_div_ps(a, b); }
  static F maxF(F a, F b) { return _mm512_max_ps(a, b); }
  static I bitsOf(F x) { return _mm512_castps_si512(x); }
  static F floatOf(I u) { return _mm512_castsi512_ps(u); }
  static I absBits(F x) { return _mm512_and_si512(bitsOf(x), _mm512_set1_epi32(0x7FFFFFFF)); }
  static F absF(F x) { return floatOf(absBits(x)); }
  static I addI(I a, I b) { return _mm512_add_epi32(a, b); }
  static F floatFromInt(I a) { return _mm512_cvtepi32_ps(a); }  // exact below 2^24
  static I shiftRight(I a, int s) { return _mm512_srli_epi32(a, unsigned(s)); }
  static I maxU(I a, I b) { return _mm512_max_epu32(a, b); }
  static M gtF(F a, F b) { return _mm512_cmp_ps_mask(a, b, _CMP_GT_OQ); }
  static M ltF(F a, F b) { return _mm512_cmp_ps_mask(a, b, _CMP_LT_OQ); }
  static M gtU(I a, I b) { return _mm512_cmpgt_epu32_mask(a, b); }
  static M leU(I a, I b) { return _mm512_cmple_epu32_mask(a, b); }
  static I subI(I a, I b) { return _mm512_sub_epi32(a, b); }
  static M eqI(I a, I b) { return _mm512_cmpeq_epi32_mask(a, b); }
  static M gtS(I a, I b) { return _mm512_cmpgt_epi32_mask(a, b); }
  static M ltS(I a, I b) { return _mm512_cmplt_epi32_mask(a, b); }
  static M mAnd(M a, M b) { return M(a & b); }
  static M mOr(M a, M b) { return M(a | b); }
  static M mAndNot(M a, M b) { return M(a & ~b); }
  static M mNot(M a) { return M(~a); }
  static M mNone() { return 0; }
  static F select(M m, F ifTrue, F ifFalse) { return _mm512_mask_blend_ps(m, ifFalse, ifTrue); }
  static F mulOrZero(M m, F a, F b) { return _mm512_maskz_mul_ps(m, a, b); }
  static F addIf(M m, F a, F b) { return _mm512_mask_add_ps(a, m, a, b); }
  static F negateIf(M m, F x) { return _mm512_mask_xor_ps(x, m, x, _mm512_set1_ps(-0.0f)); }
  static unsigned maskBits(M m) { return unsigned(m); }  // bit l: lane l
  static unsigned popcount(M m) { return unsigned(__builtin_popcount(unsigned(m))); }
  // Per-lane counters: acc + 1 in the lanes of m; their total (lanes hold small counts).
  static I countLanes(I acc, M m) { return _mm512_mask_add_epi32(acc, m, acc, _mm512_set1_epi32(1)); }
  static uint64_t sumLanes(I acc) {
    alignas(64) uint32_t lanes[16];
    _mm512_store_si512(lanes, acc);
    uint64_t total = 0;
    for (uint32_t lane : lanes) total += lane;
    return total;
  }
  // The lanes of x selected by m, packed to the front of W entries at p (the rest undefined).
  // The register form of compress: the memory form is microcoded and slow on AMD.
  static void compressStoreI(uint32_t* p, M m, I x) { _mm512_storeu_si512(p, _mm512_maskz_compress_epi32(m, x)); }

  static F loadBF16(const uint8_t* p) {
    const __m512i wide = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    return floatOf(_mm512_slli_epi32(wide, 16));
  }
  static F loadF16(const uint8_t* p) { return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))); }
  static F loadF64(const uint8_t* p) {
    const __m256 lo = _mm512_cvtpd_ps(_mm512_loadu_pd(p));
    const __m256 hi = _mm512_cvtpd_ps(_mm512_loadu_pd(p + 64));
    return _mm512_insertf32x8(_mm512_castps256_ps512(lo), hi, 1);
  }
  static void storeBF16(uint8_t* p, F x) {
    // As ScalarTraits::f32ToBF16Bits, computed in the high half of each lane: + 0x7FFF, or
    // + 0x8000 when the kept lsb (bit 16) is set; a NaN keeps its bits, quiet bit (22) set.
    const I bits = bitsOf(x);
    const M odd = _mm512_test_epi32_mask(bits, set1I(0x10000u));
    I rounded = _mm512_mask_add_epi32(_mm512_add_epi32(bits, set1I(0x7FFFu)), odd, bits, set1I(0x8000u));
    rounded = _mm512_mask_or_epi32(rounded, _mm512_fpclass_ps_mask(x, 0x81), bits, set1I(0x400000u));  // QNaN|SNaN
    // The high halves, in lane order, to words 0..15 (one vpermw; faster here than shift + vpmovdw).
    const I highs = _mm512_setr_epi32(0x30001, 0x70005, 0xB0009, 0xF000D, 0x130011, 0x170015, 0x1B0019, 0x1F001D,
                                      0, 0, 0, 0, 0, 0, 0, 0);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), _mm512_castsi512_si256(_mm512_permutexvar_epi16(highs, rounded)));
  }
  static void storeF16(uint8_t* p, F x) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), _mm512_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  }

  static void laneAddAbs(double* lanes, F a) {
    _mm512_storeu_pd(lanes, _mm512_add_pd(_mm512_loadu_pd(lanes), _mm512_cvtps_pd(_mm512_castps512_ps256(a))));
    _mm512_storeu_pd(lanes + 8, _mm512_add_pd(_mm512_loadu_pd(lanes + 8), _mm512_cvtps_pd(_mm512_extractf32x8_ps(a, 1))));
  }
  static void laneAddDot(double* lanes, const float* x, const float* y) {
    const F a = loadF(x), b = loadF(y);
    const __m512d p0 = _mm512_mul_pd(_mm512_cvtps_pd(_mm512_castps512_ps256(a)), _mm512_cvtps_pd(_mm512_castps512_ps256(b)));
    const __m512d p1 = _mm512_mul_pd(_mm512_cvtps_pd(_mm512_extractf32x8_ps(a, 1)), _mm512_cvtps_pd(_mm512_extractf32x8_ps(b, 1)));
    _mm512_storeu_pd(lanes, _mm512_add_pd(_mm512_loadu_pd(lanes), p0));
    _mm512_storeu_pd(lanes + 8, _mm512_add_pd(_mm512_loadu_pd(lanes + 8), p1));
  }
  static unsigned countAbove(F a, double threshold) {
    const __m512d t = _mm512_set1_pd(threshold);
    const unsigned lo = _mm512_cmp_pd_mask(_mm512_cvtps_pd(_mm512_castps512_ps256(a)), t, _CMP_GT_OQ);
    const unsigned hi = _mm512_cmp_pd_mask(_mm512_cvtps_pd(_mm512_extractf32x8_ps(a, 1)), t, _CMP_GT_OQ);
    return unsigned(__builtin_popcount(lo | (hi << 8)));
  }

  // Philox4x32-10 (philox.h) of the 16 blocks with counters (blockLo + lane, blockHi, c2, c3);
  // blockLo + 15 must not wrap. Writes their 64 words in element order to out.
  static void mulHiLo(__m512i a, __m512i k, __m512i& hi, __m512i& lo) {
    const __m512i even = _mm512_mul_epu32(a, k);                      // lanes 0, 2, ...: 64-bit products
    const __m512i odd = _mm512_mul_epu32(_mm512_srli_epi64(a, 32), k);  // lanes 1, 3, ...
    hi = _mm512_mask_blend_epi32(0xAAAA, _mm512_srli_epi64(even, 32), odd);
    lo = _mm512_mask_blend_epi32(0xAAAA, even, _mm512_slli_epi64(odd, 32));
  }
  static void philoxBlocks(uint32_t blockLo, uint32_t blockHi, uint32_t c2, uint32_t c3, uint32_t k0, uint32_t k1,
                           uint32_t* out) {
    __m512i x0 = _mm512_add_epi32(_mm512_set1_epi32(int32_t(blockLo)), iota());
    __m512i x1 = _mm512_set1_epi32(int32_t(blockHi));
    __m512i x2 = _mm512_set1_epi32(int32_t(c2));
    __m512i x3 = _mm512_set1_epi32(int32_t(c3));
    const __m512i mul0 = _mm512_set1_epi32(int32_t(0xD2511F53u)), mul1 = _mm512_set1_epi32(int32_t(0xCD9E8D57u));
    for (int round = 0; round < 10; ++round) {
      __m512i hi0, lo0, hi1, lo1;
      mulHiLo(x0, mul0, hi0, lo0);
      mulHiLo(x2, mul1, hi1, lo1);
      x0 = _mm512_xor_si512(_mm512_xor_si512(hi1, x1), _mm512_set1_epi32(int32_t(k0)));
      x1 = lo1;
      x2 = _mm512_xor_si512(_mm512_xor_si512(hi0, x3), _mm512_set1_epi32(int32_t(k1)));
      x3 = lo0;
      k0 += 0x9E3779B9u;
      k1 += 0xBB67AE85u;
    }
    // 4 × 16 -> 16 × 4: within each 128-bit lane L, b_j holds block 4L + j's four words.
    const __m512i t0 = _mm512_unpacklo_epi32(x0, x1), t1 = _mm512_unpackhi_epi32(x0, x1);
    const __m512i t2 = _mm512_unpacklo_epi32(x2, x3), t3 = _mm512_unpackhi_epi32(x2, x3);
    const __m512i b0 = _mm512_unpacklo_epi64(t0, t2), b1 = _mm512_unpackhi_epi64(t0, t2);
    const __m512i b2 = _mm512_unpacklo_epi64(t1, t3), b3 = _mm512_unpackhi_epi64(t1, t3);
    // Gather 128-bit lane L of b0..b3 into one vector: blocks 4L..4L+3 = words 16L..16L+15.
    const __m512i lo01 = _mm512_shuffle_i32x4(b0, b1, 0x44), hi01 = _mm512_shuffle_i32x4(b0, b1, 0xEE);  // L0,L1 | L2,L3
    const __m512i lo23 = _mm512_shuffle_i32x4(b2, b3, 0x44), hi23 = _mm512_shuffle_i32x4(b2, b3, 0xEE);
    // lo01 = [b0.L0, b0.L1, b1.L0, b1.L1], lo23 = [b2.L0, b2.L1, b3.L0, b3.L1]
    _mm512_storeu_si512(out, _mm512_shuffle_i32x4(lo01, lo23, 0x88));       // b0.L0 b1.L0 b2.L0 b3.L0
    _mm512_storeu_si512(out + 16, _mm512_shuffle_i32x4(lo01, lo23, 0xDD));  // b0.L1 b1.L1 b2.L1 b3.L1
    _mm512_storeu_si512(out + 32, _mm512_shuffle_i32x4(hi01, hi23, 0x88));
    _mm512_storeu_si512(out + 48, _mm512_shuffle_i32x4(hi01, hi23, 0xDD));
  }
};

}  // namespace
