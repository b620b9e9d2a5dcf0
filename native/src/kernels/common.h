// common.h: what the kernel families share: the fixed chunking of tensors into pool tasks,
// and reading δ tile by tile.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>

#include "../simd/tile_ops.h"
#include "dppa/kernels.h"
#include "dppa/pool.h"

namespace dppa {
namespace detail {

// Elements per pool task. Fixed (never derived from the thread count), so which elements
// meet in which partial result never depends on the number of threads. A multiple of the
// reduction tile (4096) so reduction tiles never straddle tasks.
constexpr size_t kChunk = 65536;
static_assert(kChunk % simd::kReduceTile == 0, "chunks hold whole reduction tiles");

inline size_t chunkCount(size_t n) { return (n + kChunk - 1) / kChunk; }

struct Range {
  size_t begin, end;
};
inline Range chunkRange(size_t task, size_t n) {
  const size_t begin = task * kChunk;
  return {begin, std::min(n, begin + kChunk)};
}

// out[j] = δ[start + j] for j < count; `scratch` holds count floats for the base.
inline void deltaTile(const simd::TileOps& ops, const DeltaView& in, size_t start, size_t count, float* out,
                      float* scratch) {
  ops.decode(in.ft.dtype, in.ft.data, start, count, out);
  if (in.hasBase) {
    ops.decode(in.base.dtype, in.base.data, start, count, scratch);
    ops.subtract(out, scratch, count);
  }
}

// δ computed in registers when every fine-tune (and the base) share one of F32 (aligned),
// BF16, F16: that dtype's code (tile_ops.h BracketJob); 0 otherwise.
inline int registerDtypeCode(const SharedDeltaView& in) {
  const DType dt = in.fts[0].dtype;
  const auto aligned = [](const uint8_t* p) { return reinterpret_cast<uintptr_t>(p) % 4 == 0; };
  if (in.hasBase && in.base.dtype != dt) return 0;
  for (const TensorView& ft : in.fts) {
    if (ft.dtype != dt) return 0;
    if (dt == DType::F32 && !aligned(ft.data)) return 0;
  }
  switch (dt) {
    case DType::F32: return !in.hasBase || aligned(in.base.data) ? 1 : 0;
    case DType::BF16: return 2;
    case DType::F16: return 3;
    default: return 0;
  }
}

inline void checkDelta(const DeltaView& in, const char* what) {
  if (in.hasBase && in.base.n != in.ft.n)
    throw std::invalid_argument(std::string(what) + ": base has " + std::to_string(in.base.n) +
                                " elements but ft has " + std::to_string(in.ft.n));
}

// DELLA (kernels.h, kind Della): p[i] = the keep probability of element i of δ, n floats.
// The spec must have passed checkDella.
void dellaKeepProbabilities(const DeltaView& in, const SparsifySpec& sp, float* p);
// The same for rows [rowBegin, rowEnd) only: p[0] is the first element of row rowBegin.
void dellaKeepProbabilities(const DeltaView& in, const SparsifySpec& sp, size_t rowBegin, size_t rowEnd, float* p);
// Elements per row of a della spec (n when rows is 0).
size_t dellaRowLength(const SparsifySpec& sp, size_t n);

}  // namespace detail
}  // namespace dppa
