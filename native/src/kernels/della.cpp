// della.cpp: DELLA's MAGPRUNE keep probabilities (kernels.h, SparsifySpec / kind Della). Per
// row, every element's rank by |δ| (abs bits ascending, ties by lower index) becomes
// p = float((d - ε) + (2ε)·rank/(m - 1)). A rank is a position in sorted order, so this is a
// sort: (abs bits, index) keys, std::sort for short rows, a stable LSD radix sort on the abs
// bits otherwise (keys start in index order, so stability breaks ties by index). The fused
// merge and sparsifyStats then read p element by element.
#include <algorithm>
#include <cmath>
#include <vector>

#include "common.h"

namespace dppa {
using namespace detail;

void checkDella(const SparsifySpec& sp, size_t n, const char* who) {
  const std::string w = std::string(who) + ": della ";
  const double d = sp.density, e = sp.epsilon;
  if (!std::isfinite(d) || !std::isfinite(e) || !(e >= 0) || !(d - e > 0) || !(d + e < 1))
    throw std::invalid_argument(w + "needs 0 <= epsilon and 0 < density - epsilon, density + epsilon < 1 (density " +
                                std::to_string(d) + ", epsilon " + std::to_string(e) + ")");
  if (!(sp.rescale == 0 || sp.rescale == 1)) throw std::invalid_argument(w + "rescale must be 0 or 1");
  if (sp.rows > 0 && n % sp.rows != 0)
    throw std::invalid_argument(w + std::to_string(n) + " elements are not " + std::to_string(sp.rows) + " equal rows");
  const size_t m = sp.rows > 0 ? n / sp.rows : n;
  if (m > size_t(0xFFFFFFFFu)) throw std::invalid_argument(w + "rows longer than 2^32 - 1 elements");
}

namespace detail {
namespace {

constexpr size_t kSortBelow = 4096;  // rows shorter than this: std::sort

// Stable LSD radix sort of keys (abs << 32 | index) on bits 32..62 (abs bits < 2^31).
void radixSortKeys(uint64_t* keys, uint64_t* tmp, size_t m) {
  static const unsigned kShift[3] = {32, 43, 54};
  std::vector<size_t> count(2048);
  for (unsigned pass = 0; pass < 3; ++pass) {
    const unsigned shift = kShift[pass];
    std::fill(count.begin(), count.end(), 0);
    for (size_t j = 0; j < m; ++j) ++count[(keys[j] >> shift) & 2047];
    // A pass where every key has the same digit changes nothing.
    if (count[(keys[0] >> shift) & 2047] == m) continue;
    size_t sum = 0;
    for (size_t b = 0; b < 2048; ++b) {
      const size_t c = count[b];
      count[b] = sum;
      sum += c;
    }
    for (size_t j = 0; j < m; ++j) tmp[count[(keys[j] >> shift) & 2047]++] = keys[j];
    std::copy(tmp, tmp + m, keys);
  }
}

}  // namespace

void dellaKeepProbabilities(const DeltaView& in, const SparsifySpec& sp, float* p) {
  const size_t n = in.size();
  if (n == 0) return;
  const size_t rows = sp.rows > 0 ? sp.rows : 1;
  const size_t m = n / rows;
  const double low = sp.density - sp.epsilon, step = 2.0 * sp.epsilon;
  const double last = double(m - 1);
  const simd::TileOps& ops = simd::ops();
  const size_t rowsPerTask = std::max<size_t>(1, kChunk / m);
  const size_t tasks = (rows + rowsPerTask - 1) / rowsPerTask;
  pool::workerSlots();
  pool::parallelFor(tasks, [&](size_t task, unsigned) {
    std::vector<uint64_t> keys(m), tmp(m >= kSortBelow ? m : 0);
    float* d = simd::threadScratch(simd::ScratchSlot::KernelA, simd::kReduceTile);
    float* scratch = simd::threadScratch(simd::ScratchSlot::KernelB, simd::kReduceTile);
    uint32_t* abs = reinterpret_cast<uint32_t*>(simd::threadScratch(simd::ScratchSlot::KernelC, simd::kReduceTile));
    const size_t rowEnd = std::min(rows, (task + 1) * rowsPerTask);
    for (size_t row = task * rowsPerTask; row < rowEnd; ++row) {
      const size_t rowStart = row * m;
      for (size_t start = 0; start < m; start += simd::kReduceTile) {
        const size_t count = std::min(simd::kReduceTile, m - start);
        deltaTile(ops, in, rowStart + start, count, d, scratch);
        ops.absBits(d, count, abs);
        for (size_t j = 0; j < count; ++j) keys[start + j] = (uint64_t(abs[j]) << 32) | uint64_t(start + j);
      }
      if (m < kSortBelow) std::sort(keys.begin(), keys.end());
      else radixSortKeys(keys.data(), tmp.data(), m);
      float* out = p + rowStart;
      if (m == 1) {
        out[0] = float(low + step * 0.5);
        continue;
      }
      for (size_t r = 0; r < m; ++r) out[uint32_t(keys[r])] = float(low + step * (double(r) / last));
    }
  });
}

}  // namespace detail
}  // namespace dppa
