// della.cpp: DELLA's MAGPRUNE keep probabilities (kernels.h, SparsifySpec / kind Della). Per
// row, every element's rank by |δ| (abs bits ascending, ties by lower index) becomes
// p = float((d - ε) + (2ε)·rank/(m - 1)). A rank is a position in sorted order, so this is a
// sort: (abs bits, index) keys, std::sort for short rows, a stable LSD radix sort (8-bit
// digits) on the abs bits otherwise (keys start in index order, so stability breaks ties by
// index). p by rank is the same table for every row. The fused merge reads p for a group of
// rows at a time (combine.cpp); sparsifyStats for the whole tensor.
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

constexpr size_t kSortBelow = 512;  // rows shorter than this: std::sort
constexpr size_t kKeepBuffersUpTo = size_t(1) << 20;  // per-thread sort buffers kept for rows up to this

}  // namespace

size_t dellaRowLength(const SparsifySpec& sp, size_t n) { return sp.rows > 0 ? n / sp.rows : n; }

void dellaKeepProbabilities(const DeltaView& in, const SparsifySpec& sp, size_t rowBegin, size_t rowEnd, float* p) {
  const size_t n = in.size();
  if (n == 0 || rowEnd <= rowBegin) return;
  const size_t m = dellaRowLength(sp, n);
  const double low = sp.density - sp.epsilon, step = 2.0 * sp.epsilon;
  const double last = double(m - 1);
  // p by rank, the same for every row: (d - ε) + (2ε)·(rank / (m - 1)).
  std::vector<float> byRank(m);
  if (m == 1) byRank[0] = float(low + step * 0.5);
  else
    for (size_t r = 0; r < m; ++r) byRank[r] = float(low + step * (double(r) / last));
  const simd::TileOps& ops = simd::ops();
  const size_t rows = rowEnd - rowBegin;
  const size_t rowsPerTask = std::max<size_t>(1, kChunk / m);
  const size_t tasks = (rows + rowsPerTask - 1) / rowsPerTask;
  pool::workerSlots();
  pool::parallelFor(tasks, [&](size_t task, unsigned) {
    // Per pool thread, kept between calls (no allocation, no page faults once warm).
    // Very long rows (a whole large tensor) get buffers of their own, freed at the end.
    static thread_local std::vector<uint64_t> keptKeys, keptTmp;
    std::vector<uint64_t> ownKeys, ownTmp;
    std::vector<uint64_t>& keyBuffer = m <= kKeepBuffersUpTo ? keptKeys : ownKeys;
    std::vector<uint64_t>& tmpBuffer = m <= kKeepBuffersUpTo ? keptTmp : ownTmp;
    if (keyBuffer.size() < m) keyBuffer.resize(m);
    if (m >= kSortBelow && tmpBuffer.size() < m) tmpBuffer.resize(m);
    uint64_t* keys = keyBuffer.data();
    float* d = simd::threadScratch(simd::ScratchSlot::KernelA, simd::kReduceTile);
    float* scratch = simd::threadScratch(simd::ScratchSlot::KernelB, simd::kReduceTile);
    uint32_t* abs = reinterpret_cast<uint32_t*>(simd::threadScratch(simd::ScratchSlot::KernelC, simd::kReduceTile));
    const size_t first = rowBegin + task * rowsPerTask;
    const size_t end = std::min(rowEnd, first + rowsPerTask);
    for (size_t row = first; row < end; ++row) {
      const size_t rowStart = row * m;
      for (size_t start = 0; start < m; start += simd::kReduceTile) {
        const size_t count = std::min(simd::kReduceTile, m - start);
        deltaTile(ops, in, rowStart + start, count, d, scratch);
        ops.absBits(d, count, abs);
        for (size_t j = 0; j < count; ++j) keys[start + j] = (uint64_t(abs[j]) << 32) | uint64_t(start + j);
      }
      const uint64_t* sorted = keys;
      if (m < kSortBelow) {
        std::sort(keys, keys + m);
      } else {
        // Each non-skipped pass swaps the buffers; find where the result ended up.
        uint64_t* a = keys;
        uint64_t* b = tmpBuffer.data();
        size_t count[256];
        for (unsigned shift = 32; shift < 64; shift += 8) {
          std::fill(count, count + 256, size_t(0));
          for (size_t j = 0; j < m; ++j) ++count[(a[j] >> shift) & 255];
          if (count[(a[0] >> shift) & 255] == m) continue;
          size_t sum = 0;
          for (size_t bin = 0; bin < 256; ++bin) {
            const size_t c = count[bin];
            count[bin] = sum;
            sum += c;
          }
          for (size_t j = 0; j < m; ++j) b[count[(a[j] >> shift) & 255]++] = a[j];
          std::swap(a, b);
        }
        sorted = a;
      }
      float* out = p + (rowStart - rowBegin * m);
      for (size_t r = 0; r < m; ++r) out[uint32_t(sorted[r])] = byRank[r];
    }
  });
}

void dellaKeepProbabilities(const DeltaView& in, const SparsifySpec& sp, float* p) {
  const size_t n = in.size();
  if (n == 0) return;
  dellaKeepProbabilities(in, sp, 0, sp.rows > 0 ? sp.rows : 1, p);
}

}  // namespace detail
}  // namespace dppa
