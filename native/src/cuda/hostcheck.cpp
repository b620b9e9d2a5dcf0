// dppa_cuda_hostcheck: compiles the element-level device functions of device_math.cuh as host
// code (the CUDA intrinsics they use are given exact host definitions below) and checks them
// against the plain reference: every f16/bf16/f8 pattern decoded, a sweep of float32 patterns
// encoded, Philox words, and addCpu & co. against this CPU's own arithmetic on NaN, Inf, zeros
// and numbers. Needs no GPU, so the bit-level code is verified on any machine.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>

#define __device__
#define __forceinline__ inline
namespace {
inline float __uint_as_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline uint32_t __float_as_uint(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
// The float intrinsics as the GPU computes them: IEEE results, but every NaN result is CUDA's
// canonical 0x7FFFFFFF (no NaN propagation), which is what addCpu & co. must undo.
inline float cudaNaN(float r) { return r == r ? r : __uint_as_float(0x7FFFFFFFu); }
inline float __fadd_rn(float a, float b) { return cudaNaN(a + b); }
inline float __fsub_rn(float a, float b) { return cudaNaN(a - b); }
inline float __fmul_rn(float a, float b) { return cudaNaN(a * b); }
inline float __fdiv_rn(float a, float b) { return cudaNaN(a / b); }
inline uint32_t __umulhi(uint32_t a, uint32_t b) { return uint32_t((uint64_t(a) * b) >> 32); }
inline float __double2float_rn(double d) { return float(d); }
}  // namespace
#include "device_math.cuh"
#include "reference.h"

int main() {
  using namespace dppa::cuda;
  long bad = 0;
  auto same = [](float a, float b) { return __float_as_uint(a) == __float_as_uint(b); };
  for (uint32_t h = 0; h < 65536; ++h) {
    const uint16_t v = uint16_t(h);
    if (!same(decodeAt(&v, DPPA_CUDA_F16, 0), ref::decode(&v, DPPA_CUDA_F16, 0))) ++bad;
    if (!same(decodeAt(&v, DPPA_CUDA_BF16, 0), ref::decode(&v, DPPA_CUDA_BF16, 0))) ++bad;
  }
  for (uint32_t b = 0; b < 256; ++b) {
    const uint8_t v = uint8_t(b);
    if (!same(decodeAt(&v, DPPA_CUDA_F8_E4M3, 0), ref::decode(&v, DPPA_CUDA_F8_E4M3, 0))) ++bad;
    if (!same(decodeAt(&v, DPPA_CUDA_F8_E5M2, 0), ref::decode(&v, DPPA_CUDA_F8_E5M2, 0))) ++bad;
  }
  std::printf("decode: %ld mismatches\n", bad);
  long badE = 0;
  // Every float32 pattern whose low 7 bits are 0 or 0x7F, plus all with low 13 bits near the
  // rounding points: covers every exponent, both signs, ties and near-ties.
  for (uint64_t hi = 0; hi < (uint64_t(1) << 25); ++hi) {
    for (uint32_t lo : {0x00u, 0x7Fu}) {
      const uint32_t u = uint32_t(hi << 7) | lo;
      const float f = __uint_as_float(u);
      if (encodeBF16(f) != ref::encodeBF16(f)) ++badE;
      if (encodeF16(f) != ref::encodeF16(f)) ++badE;
    }
  }
  for (uint32_t e = 0; e < 512; ++e)
    for (uint32_t m : {0x0FFFu, 0x1000u, 0x1001u, 0x2FFFu, 0x3000u, 0x3001u, 0x7FFFu, 0x8000u, 0x8001u, 0x18000u}) {
      const float f = __uint_as_float((e << 23) | m);
      if (encodeBF16(f) != ref::encodeBF16(f)) ++badE;
      if (encodeF16(f) != ref::encodeF16(f)) ++badE;
    }
  std::printf("encode: %ld mismatches\n", badE);
  long badR = 0;
  const dppa_cuda_random_stream s{0x12345678u, 0x9abcdef0u, 0x0badf00du, 0xfeedbeefu};
  for (uint64_t i = 0; i < 100000; ++i) {
    const uint64_t j = i * 7919 + (i << 33);
    if (!same(uniformFromWord(philoxWord(s, j)), ref::uniform(s, j))) ++badR;
  }
  const Philox4 k = philox4x32_10(0, 0, 0, 0, 0, 0);
  if (k.v[0] != 0x6627e8d5u || k.v[3] != 0x9b00dbd8u) ++badR;
  std::printf("philox: %ld mismatches\n", badR);
  // addCpu & co. against this CPU's arithmetic (volatile: computed at run time, not folded).
  long badN = 0;
  const uint32_t specials[] = {0x00000000u, 0x80000000u, 0x3F800000u, 0xC0200000u, 0x7F800000u, 0xFF800000u,
                               0x7F7FFFFFu, 0x00000001u, 0x7FC00000u, 0xFFC00000u, 0x7FC12345u, 0xFFE00001u,
                               0x7F800001u, 0xFF812345u, 0x7FFFFFFFu};
  for (uint32_t ua : specials)
    for (uint32_t ub : specials) {
      volatile float a = __uint_as_float(ua), b = __uint_as_float(ub);
      const float x = a, y = b;
      if (!same(addCpu(x, y), a + b)) ++badN;
      if (!same(subCpu(x, y), a - b)) ++badN;
      if (!same(mulCpu(x, y), a * b)) ++badN;
      if (!same(divCpu(x, y), a / b)) ++badN;
    }
  std::printf("NaN bits of add/sub/mul/div: %ld mismatches\n", badN);
  const long total = bad + badE + badR + badN;
  std::printf("%s\n", total ? "FAILED" : "PASSED");
  return total ? 1 : 0;
}
