// stats.cpp: absStats, absHistogram, gram and sparsifyStats. Every float64 sum follows the
// fixed order of kernels.h: per-tile sums are stored by tile index and added in tile order at
// the end, so neither the thread count nor the SIMD path changes a bit of the result.
#include <cmath>
#include <memory>
#include <vector>

#include "common.h"
#include "dppa/philox.h"

namespace dppa {
using namespace detail;

namespace {

size_t reduceTileCount(size_t n) { return (n + simd::kReduceTile - 1) / simd::kReduceTile; }

double sumInOrder(const std::vector<double>& tileSums) {
  double total = 0.0;
  for (double s : tileSums) total += s;
  return total;
}

// Runs body(tileIndex, start, count, delta) for every reduction tile of δ, on the pool.
template <class Body>
void forEachDeltaTile(const DeltaView& in, const Body& body) {
  const simd::TileOps& ops = simd::ops();
  const size_t n = in.size();
  pool::workerSlots();
  pool::parallelFor(chunkCount(n), [&](size_t task, unsigned worker) {
    const Range r = chunkRange(task, n);
    float* d = simd::threadScratch(simd::ScratchSlot::KernelA, simd::kReduceTile);
    float* scratch = simd::threadScratch(simd::ScratchSlot::KernelB, simd::kReduceTile);
    for (size_t start = r.begin; start < r.end; start += simd::kReduceTile) {
      const size_t count = std::min(simd::kReduceTile, r.end - start);
      deltaTile(ops, in, start, count, d, scratch);
      body(worker, start / simd::kReduceTile, start, count, d);
    }
  });
}

}  // namespace

AbsStatsResult absStats(const DeltaView& in, const double* thresholds, size_t nthresholds) {
  checkDelta(in, "absStats");
  const simd::TileOps& ops = simd::ops();
  const size_t n = in.size();
  std::vector<double> tileSums(reduceTileCount(n), 0.0);
  // Counts are integers, so per-tile storage (any order of addition) is exact.
  std::vector<uint64_t> counts(reduceTileCount(n) * (nthresholds + 1), 0);
  SharedDeltaView shared;
  shared.hasBase = in.hasBase;
  shared.base = in.base;
  shared.fts.push_back(in.ft);
  const int coded = registerDtypeCode(shared);
  if (coded != 0) {
    // δ in registers: one pass per tile, no δ buffer (the same sums, see absStatsDelta).
    pool::workerSlots();
    pool::parallelFor(chunkCount(n), [&](size_t task, unsigned) {
      const Range r = chunkRange(task, n);
      for (size_t start = r.begin; start < r.end; start += simd::kReduceTile) {
        const size_t tile = start / simd::kReduceTile, count = std::min(simd::kReduceTile, r.end - start);
        uint64_t* c = counts.data() + tile * (nthresholds + 1);
        tileSums[tile] = ops.absStatsDelta(coded, in.ft.data, in.hasBase ? in.base.data : nullptr, start, count,
                                           thresholds, nthresholds, c, c + nthresholds);
      }
    });
  } else {
    forEachDeltaTile(in, [&](unsigned, size_t tile, size_t, size_t count, const float* d) {
      tileSums[tile] = ops.absSumTile(d, count);
      uint64_t* c = counts.data() + tile * (nthresholds + 1);
      ops.absCounts(d, count, thresholds, nthresholds, c, c + nthresholds);
    });
  }
  AbsStatsResult result;
  result.sumAbs = sumInOrder(tileSums);
  result.countsAbove.assign(nthresholds, 0.0);
  uint64_t nonFinite = 0;
  for (size_t tile = 0; tile < tileSums.size(); ++tile) {
    const uint64_t* c = counts.data() + tile * (nthresholds + 1);
    for (size_t t = 0; t < nthresholds; ++t) result.countsAbove[t] += double(c[t]);
    nonFinite += c[nthresholds];
  }
  result.nonFinite = double(nonFinite);
  return result;
}

std::vector<double> absHistogram(const DeltaView& in, uint32_t shift, uint32_t bins, uint32_t prefixMask,
                                 uint32_t prefixValue) {
  checkDelta(in, "absHistogram");
  if (bins == 0 || bins > 65536 || (bins & (bins - 1)) != 0)
    throw std::invalid_argument("absHistogram: bins must be a power of two <= 65536");
  if (shift > 31) throw std::invalid_argument("absHistogram: shift must be 0..31");
  const simd::TileOps& ops = simd::ops();
  // One histogram per worker, added at the end: no locks or atomics in the loop.
  const unsigned workers = pool::workerSlots();
  std::vector<uint64_t> perWorker(size_t(workers) * bins, 0);
  forEachDeltaTile(in, [&](unsigned worker, size_t, size_t, size_t count, const float* d) {
    uint32_t* abs = reinterpret_cast<uint32_t*>(simd::threadScratch(simd::ScratchSlot::KernelC, count));
    ops.absBits(d, count, abs);
    uint64_t* hist = perWorker.data() + size_t(worker) * bins;
    const uint32_t binMask = bins - 1;
    for (size_t j = 0; j < count; ++j)
      if ((abs[j] & prefixMask) == prefixValue) ++hist[(abs[j] >> shift) & binMask];
  });
  std::vector<double> out(bins, 0.0);
  for (unsigned w = 0; w < workers; ++w)
    for (uint32_t b = 0; b < bins; ++b) out[b] += double(perWorker[size_t(w) * bins + b]);
  return out;
}

std::vector<double> gram(const std::vector<DeltaView>& inputs) {
  const size_t m = inputs.size();
  std::vector<double> out(m * m, 0.0);
  if (m == 0) return out;
  const size_t n = inputs[0].size();
  for (const DeltaView& in : inputs) {
    checkDelta(in, "gram");
    if (in.size() != n) throw std::invalid_argument("gram: every input must have the same element count");
  }
  const simd::TileOps& ops = simd::ops();
  const size_t pairs = m * (m + 1) / 2;
  const size_t tiles = reduceTileCount(n);
  std::vector<double> tileDots(tiles * pairs, 0.0);
  pool::workerSlots();
  pool::parallelFor(chunkCount(n), [&](size_t task, unsigned) {
    const Range r = chunkRange(task, n);
    float* deltas = simd::threadScratch(simd::ScratchSlot::KernelA, m * simd::kReduceTile);
    float* scratch = simd::threadScratch(simd::ScratchSlot::KernelB, simd::kReduceTile);
    for (size_t start = r.begin; start < r.end; start += simd::kReduceTile) {
      const size_t count = std::min(simd::kReduceTile, r.end - start);
      for (size_t a = 0; a < m; ++a) deltaTile(ops, inputs[a], start, count, deltas + a * simd::kReduceTile, scratch);
      double* dots = tileDots.data() + (start / simd::kReduceTile) * pairs;
      size_t pair = 0;
      for (size_t a = 0; a < m; ++a)
        for (size_t b = a; b < m; ++b)
          dots[pair++] = ops.dotTile(deltas + a * simd::kReduceTile, deltas + b * simd::kReduceTile, count);
    }
  });
  size_t pair = 0;
  for (size_t a = 0; a < m; ++a) {
    for (size_t b = a; b < m; ++b, ++pair) {
      double total = 0.0;
      for (size_t tile = 0; tile < tiles; ++tile) total += tileDots[tile * pairs + pair];
      out[a * m + b] = total;
      out[b * m + a] = total;
    }
  }
  return out;
}

SparsifyStatsResult sparsifyStats(const DeltaView& in, const SparsifySpec& sp) {
  checkDelta(in, "sparsifyStats");
  const simd::TileOps& ops = simd::ops();
  const size_t n = in.size();
  const size_t rows = sp.kind == SparsifyKind::Bands ? sp.rules.rows : 0;
  const size_t rowLength = rows > 0 ? n / rows : n;
  const double keepBelow = std::ldexp(sp.density, 24);  // u < d  <=>  (word >> 8) < d·2^24
  std::vector<double> sumAll(reduceTileCount(n), 0.0), sumKept(reduceTileCount(n), 0.0);
  std::vector<uint64_t> keptCounts(reduceTileCount(n), 0);
  const bool della = sp.kind == SparsifyKind::Della;
  std::unique_ptr<float[]> keepProb;  // not zero-filled: every entry is written
  if (della) {
    checkDella(sp, n, "sparsifyStats");
    keepProb.reset(new float[n]);
    dellaKeepProbabilities(in, sp, keepProb.get());
  }
  forEachDeltaTile(in, [&](unsigned, size_t tile, size_t start, size_t count, const float* d) {
    float* keptAbs = simd::threadScratch(simd::ScratchSlot::KernelC, 2 * count);
    uint32_t* words = reinterpret_cast<uint32_t*>(keptAbs + count);
    if (sp.kind == SparsifyKind::Random || della) ops.philoxWords(sp.stream, start, count, words);
    uint64_t kept = 0;
    for (size_t j = 0; j < count; ++j) {
      const size_t i = start + j;
      float magnitude = std::fabs(d[j]);
      uint32_t abs;
      std::memcpy(&abs, &magnitude, 4);
      bool keep = true;
      if (sp.kind == SparsifyKind::Bands) {
        keep = false;
        const size_t entry = rows > 0 ? (i / rowLength) * sp.rules.nbands : 0;
        for (size_t b = 0; b < sp.rules.nbands && !keep; ++b) {
          const uint32_t bits = sp.rules.bits[entry + b];
          keep = abs > bits || (abs == bits && double(i) <= sp.rules.cutoff[entry + b]);
        }
      } else if (sp.kind == SparsifyKind::Random) {
        keep = double(words[j] >> 8) < keepBelow;
      } else if (della) {
        keep = float(words[j] >> 8) * 0x1p-24f < keepProb[i];
      }
      kept += keep ? 1 : 0;
      // A dropped element adds +0.0, which leaves every lane sum unchanged.
      keptAbs[j] = keep ? magnitude : 0.0f;
    }
    sumAll[tile] = ops.absSumTile(d, count);
    sumKept[tile] = ops.absSumTile(keptAbs, count);
    keptCounts[tile] = kept;
  });
  SparsifyStatsResult result;
  result.sumAbs = sumInOrder(sumAll);
  result.sumAbsKept = sumInOrder(sumKept);
  uint64_t kept = 0;
  for (uint64_t k : keptCounts) kept += k;
  result.kept = double(kept);
  return result;
}

}  // namespace dppa
