// dispatch.cpp: picks the tile-function table once at load (the best path the CPU supports,
// or DPPA_SIMD), and lets tests switch it. Compiled for the baseline ISA only.
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "dppa/kernels.h"
#include "tile_ops.h"
#include "traits_scalar.h"

namespace dppa {
namespace simd {

const TileOps* scalarOps();
const TileOps* avx2Ops();
const TileOps* avx512Ops();

namespace {

struct Path {
  const char* name;
  const TileOps* (*table)();
  bool (*supported)();
};

bool always() { return true; }
bool cpuHasAvx2() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
}
bool cpuHasAvx512() {
  __builtin_cpu_init();
  return cpuHasAvx2() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
}

// Worst to best: the last supported one is the default.
const Path kPaths[] = {
    {"scalar", scalarOps, always},
    {"avx2", avx2Ops, cpuHasAvx2},
    {"avx512", avx512Ops, cpuHasAvx512},
};

const TileOps* chooseAtLoad() {
  const TileOps* best = scalarOps();
  for (const Path& p : kPaths)
    if (p.supported()) best = p.table();
  if (const char* wanted = std::getenv("DPPA_SIMD")) {
    for (const Path& p : kPaths)
      if (std::strcmp(wanted, p.name) == 0 && p.supported()) return p.table();
  }
  return best;
}

std::atomic<const TileOps*>& active() {
  static std::atomic<const TileOps*> table{chooseAtLoad()};
  return table;
}

struct Fp8Tables {
  float e4m3[256];
  float e5m2[256];
  Fp8Tables() {
    for (unsigned b = 0; b < 256; ++b) {
      // E4M3FN: bias 7, no infinities; S.1111.111 is NaN; exponent 0 is subnormal (m·2^-9).
      const float sign = (b & 0x80) ? -1.0f : 1.0f;
      const unsigned exponent = (b >> 3) & 0xF, mantissa = b & 7;
      if (exponent == 15 && mantissa == 7) {
        const uint32_t nan = (b & 0x80 ? 0x80000000u : 0u) | 0x7FC00000u;
        std::memcpy(&e4m3[b], &nan, 4);
      } else if (exponent == 0) {
        e4m3[b] = sign * std::ldexp(float(mantissa), -9);
      } else {
        e4m3[b] = sign * std::ldexp(float(8 + mantissa), int(exponent) - 10);
      }
      // E5M2 is the top byte of an f16.
      const uint32_t bits = ScalarTraits::f16ToF32Bits(uint16_t(b << 8));
      std::memcpy(&e5m2[b], &bits, 4);
    }
  }
};

}  // namespace

const TileOps& ops() { return *active().load(std::memory_order_acquire); }

const float* fp8Table(DType dtype) {
  static const Fp8Tables tables;
  return dtype == DType::F8_E4M3 ? tables.e4m3 : tables.e5m2;
}

float* threadScratch(ScratchSlot slot, size_t floats) {
  static thread_local std::vector<float> buffers[size_t(ScratchSlot::Count)];
  std::vector<float>& buffer = buffers[size_t(slot)];
  // Rounded up so a SIMD loop may read a whole vector past a tile's last element.
  if (buffer.size() < floats + 16) buffer.resize(floats + 16);
  return buffer.data();
}

}  // namespace simd

std::vector<std::string> availableSimd() {
  std::vector<std::string> names;
  for (const simd::Path& p : simd::kPaths)
    if (p.supported()) names.push_back(p.name);
  return names;
}

std::string activeSimd() { return simd::ops().name; }

bool setSimd(const std::string& path) {
  for (const simd::Path& p : simd::kPaths) {
    if (path == p.name) {
      if (!p.supported()) return false;
      simd::active().store(p.table(), std::memory_order_release);
      return true;
    }
  }
  return false;
}

}  // namespace dppa
