// pcb.cpp: PCB-Merging's element-wise scores (lib/methods/pcb.ts), the float64 formula of the
// TypeScript layer run on the pool, and the order histograms of its exact quantiles. Scalar on
// purpose: exp and tanh are most of the work, and double versions accurate to their last bit
// (the C library's, and a short series for the small arguments tanh mostly gets) are what give
// the reference's float32 scores: none of 6M random scores differed from V8's Math.exp/tanh.
#include <cmath>
#include <cstring>
#include <mutex>

#include "common.h"

namespace dppa {
using namespace detail;

namespace {

// tanh of c_t·S, which for δ-sized values is mostly far below 2^-5: there its Taylor series to
// y^9 is within rounding of tanh (the next term, 1382/155925·y^11, is below 2^-61 of y), and
// far cheaper than the library call (which was a quarter of a PCB merge's CPU time in `perf`).
// Larger |y| (and NaN) take the library; ±0 is returned as is (a sign that the order keys see).
inline double tanhOfProduct(double y) {
  if (!(std::fabs(y) < 0x1p-5) || y == 0) return std::tanh(y);
  const double y2 = y * y;
  return y + y * y2 * (-1.0 / 3 + y2 * (2.0 / 15 + y2 * (-17.0 / 315 + y2 * (62.0 / 2835))));
}

// clip(x, low, high) rounded to float32, as the TypeScript layer stores clipped values (NaN stays NaN).
inline float clippedValue(double x, double low, double high) { return float(x < low ? low : x > high ? high : x); }

}  // namespace

void pcbScores(const std::vector<const float*>& deltas, size_t n, const PcbTaskParams* params,
               const std::vector<float*>& scores) {
  const size_t tasks = deltas.size();
  if (tasks == 0 || n == 0) return;
  if (tasks > kMaxPcbTasks) throw std::invalid_argument("pcbScores: at most " + std::to_string(kMaxPcbTasks) + " tasks");
  pool::workerSlots();
  pool::parallelFor(chunkCount(n), [&](size_t task, unsigned) {
    const Range r = chunkRange(task, n);
    float clipped[kMaxPcbTasks];
    for (size_t i = r.begin; i < r.end; ++i) {
      double sum = 0;
      for (size_t t = 0; t < tasks; ++t) {
        clipped[t] = clippedValue(deltas[t][i], params[t].clipLow, params[t].clipHigh);
        sum += double(clipped[t]);
      }
      for (size_t t = 0; t < tasks; ++t) {
        const PcbTaskParams& p = params[t];
        const double c = clipped[t], range = p.absMax - p.absMin;
        const double normalized = range > 0 ? (std::fabs(c) - p.absMin) / range : 0;
        scores[t][i] = float(std::exp(double(tasks) * normalized * normalized) * tanhOfProduct(c * sum));
      }
    }
  });
}

std::vector<double> pcbMerge(const std::vector<const float*>& deltas, const std::vector<const float*>& scores, size_t n,
                             const PcbMergeParams* params, float* out) {
  const size_t tasks = deltas.size();
  if (tasks > kMaxPcbTasks) throw std::invalid_argument("pcbMerge: at most " + std::to_string(kMaxPcbTasks) + " tasks");
  std::vector<double> nonFinite(tasks, 0.0);
  if (n == 0) return nonFinite;
  const size_t chunks = chunkCount(n);
  std::vector<uint64_t> counts(chunks * tasks, 0);  // per chunk: no sharing between workers
  pool::workerSlots();
  pool::parallelFor(chunks, [&](size_t task, unsigned) {
    const Range r = chunkRange(task, n);
    uint64_t* notFinite = counts.data() + task * tasks;
    for (size_t i = r.begin; i < r.end; ++i) {
      double weighted = 0, total = 0;
      for (size_t t = 0; t < tasks; ++t) {
        notFinite[t] += std::isfinite(deltas[t][i]) ? 0 : 1;
        const PcbMergeParams& p = params[t];
        const double score = scores[t][i];
        if (!(score >= p.threshold)) continue;
        const double range = p.max - p.threshold;
        const double w = range > 0 ? (score - p.threshold) / range : 1;
        weighted += w * double(clippedValue(deltas[t][i], p.clipLow, p.clipHigh));
        total += w;
      }
      out[i] = total > 0 ? float(weighted / total) : 0.0f;
    }
  });
  for (size_t c = 0; c < chunks; ++c)
    for (size_t t = 0; t < tasks; ++t) nonFinite[t] += double(counts[c * tasks + t]);
  return nonFinite;
}

namespace {

// Per-worker counts of orderHistogram, kept between calls (a model has many tensors, and fresh
// pages fault expensively); one call at a time holds them, a concurrent one uses its own.
struct OrderHistogramScratch {
  std::mutex mutex;
  std::vector<uint64_t> perWorker;
};
OrderHistogramScratch& keptOrderCounts() {
  static OrderHistogramScratch scratch;
  return scratch;
}

uint32_t orderKey(uint32_t bits) { return bits ^ (uint32_t(int32_t(bits) >> 31) | 0x80000000u); }

float fromOrderKey(uint32_t key) {
  const uint32_t bits = key & 0x80000000u ? key & 0x7FFFFFFFu : ~key;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// Extremes of the order keys of non-NaN values. Keys of NaN are 0..0x007FFFFE (negative NaN)
// and 0xFF800001..0xFFFFFFFF (positive NaN), so 0 and 0xFFFFFFFF mean "none".
struct KeyExtremes {
  uint32_t least = 0xFFFFFFFFu, most = 0, largestSigned = 0, leastUnsigned = 0xFFFFFFFFu;
  void add(uint32_t bits, uint32_t key) {
    // Masks and branch-free min/max: the sign of a δ is a coin toss, and branches on it made
    // this loop 8x slower.
    const uint32_t number = 0u - uint32_t((bits & 0x7FFFFFFFu) <= 0x7F800000u);  // all ones for non-NaN
    const uint32_t signedSide = (key >> 31) - 1u;                                 // all ones for the sign bit set
    least = minBranchFree(least, key | ~number);
    most = maxBranchFree(most, key & number);
    largestSigned = maxBranchFree(largestSigned, key & number & signedSide);
    leastUnsigned = minBranchFree(leastUnsigned, key | ~(number & ~signedSide));
  }
  // GCC compiles some std::min/max of this loop to a branch, which mispredicts half the time.
  static uint32_t maxBranchFree(uint32_t a, uint32_t b) { return a ^ ((a ^ b) & (0u - uint32_t(a < b))); }
  static uint32_t minBranchFree(uint32_t a, uint32_t b) { return a ^ ((a ^ b) & (0u - uint32_t(b < a))); }
  void add(const KeyExtremes& o) {
    least = std::min(least, o.least);
    most = std::max(most, o.most);
    largestSigned = std::max(largestSigned, o.largestSigned);
    leastUnsigned = std::min(leastUnsigned, o.leastUnsigned);
  }
  void into(double* extremes) const {
    if (least != 0xFFFFFFFFu) extremes[0] = std::min(extremes[0], double(fromOrderKey(least)));
    if (most != 0) extremes[1] = std::max(extremes[1], double(fromOrderKey(most)));
    if (largestSigned != 0) extremes[2] = std::max(extremes[2], double(fromOrderKey(largestSigned)));
    if (leastUnsigned != 0xFFFFFFFFu) extremes[3] = std::min(extremes[3], double(fromOrderKey(leastUnsigned)));
  }
};

// A loop of its own over the same (cache-warm) range: alone it has no stores and compiles
// to straight-line selects, where merged into another loop it did not.
void gatherExtremes(const float* values, Range r, KeyExtremes* extremes) {
  KeyExtremes local;
  for (size_t i = r.begin; i < r.end; ++i) {
    uint32_t bits;
    std::memcpy(&bits, values + i, 4);
    local.add(bits, orderKey(bits));
  }
  extremes->add(local);
}

}  // namespace

void orderHistogram(const float* values, size_t n, uint32_t shift, uint32_t prefixMask, uint32_t prefixValue,
                    double* counts, size_t bins) {
  if (bins == 0 || bins > 65536 || (bins & (bins - 1)) != 0)
    throw std::invalid_argument("orderHistogram: bins must be a power of two <= 65536");
  if (shift > 31) throw std::invalid_argument("orderHistogram: shift must be 0..31");
  if (n == 0) return;
  const unsigned workers = pool::workerSlots();
  std::unique_lock<std::mutex> lock(keptOrderCounts().mutex, std::try_to_lock);
  std::vector<uint64_t> own;
  std::vector<uint64_t>& perWorker = lock.owns_lock() ? keptOrderCounts().perWorker : own;
  perWorker.assign(size_t(workers) * bins, 0);
  const uint32_t binMask = uint32_t(bins - 1);
  pool::parallelFor(chunkCount(n), [&](size_t task, unsigned worker) {
    const Range r = chunkRange(task, n);
    uint64_t* hist = perWorker.data() + size_t(worker) * bins;
    for (size_t i = r.begin; i < r.end; ++i) {
      uint32_t bits;
      std::memcpy(&bits, values + i, 4);
      const uint32_t key = orderKey(bits);
      // Where nothing is masked, every value counts: no compare in the loop.
      if (prefixMask == 0 || (key & prefixMask) == prefixValue) ++hist[(key >> shift) & binMask];
    }
  });
  for (unsigned w = 0; w < workers; ++w)
    for (size_t b = 0; b < bins; ++b) counts[b] += double(perWorker[size_t(w) * bins + b]);
}

namespace {

// Keeps the k smallest keys of `keys` (all of them when fewer), sorted ascending; with `largest`,
// the k largest instead.
void keepSorted(std::vector<uint32_t>& keys, size_t k, bool largest) {
  if (keys.size() > k) {
    if (largest)
      std::nth_element(keys.begin(), keys.begin() + (keys.size() - k), keys.end());
    else
      std::nth_element(keys.begin(), keys.begin() + (k - 1), keys.end());
    if (largest)
      keys.erase(keys.begin(), keys.begin() + (keys.size() - k));
    else
      keys.resize(k);
  }
  std::sort(keys.begin(), keys.end());
}

// One worker's candidates: keys below lowLimit / above highLimit, trimmed to k as they grow;
// and its extremes.
struct TailCandidates {
  std::vector<uint32_t> low, high;
  int64_t lowLimit, highLimit;  // 2^32 and -1: take every key
  KeyExtremes extremes;
};

}  // namespace

void orderTails(const float* values, size_t n, size_t k, uint32_t* low, size_t* lowCount, uint32_t* high,
                size_t* highCount, double* extremes) {
  if (k == 0) throw std::invalid_argument("orderTails: k must be at least 1");
  if (*lowCount > k || *highCount > k) throw std::invalid_argument("orderTails: the tails hold more than k keys");
  if (n == 0) return;
  // Keys that cannot enter the tails kept so far: at or past their k-th key, once they are full.
  const int64_t lowLimit = *lowCount == k ? int64_t(low[k - 1]) : int64_t(1) << 32;
  const int64_t highLimit = *highCount == k ? int64_t(high[0]) : -1;
  std::vector<TailCandidates> workers(pool::workerSlots(), TailCandidates{{}, {}, lowLimit, highLimit, {}});
  pool::parallelFor(chunkCount(n), [&](size_t task, unsigned worker) {
    TailCandidates& w = workers[worker];
    const Range r = chunkRange(task, n);
    for (size_t i = r.begin; i < r.end; ++i) {
      uint32_t bits;
      std::memcpy(&bits, values + i, 4);
      const int64_t key = orderKey(bits);
      // Rarely true once the tails are full: two predictable compares per value.
      if (key < w.lowLimit) {
        w.low.push_back(key);
        if (w.low.size() >= 4 * k) {
          keepSorted(w.low, k, false);
          w.lowLimit = w.low.back();
        }
      }
      if (key > w.highLimit) {
        w.high.push_back(key);
        if (w.high.size() >= 4 * k) {
          keepSorted(w.high, k, true);
          w.highLimit = w.high.front();
        }
      }
    }
    if (extremes) gatherExtremes(values, r, &w.extremes);
  });
  std::vector<uint32_t> lows(low, low + *lowCount), highs(high, high + *highCount);
  for (const TailCandidates& w : workers) {
    lows.insert(lows.end(), w.low.begin(), w.low.end());
    highs.insert(highs.end(), w.high.begin(), w.high.end());
  }
  keepSorted(lows, k, false);
  keepSorted(highs, k, true);
  std::copy(lows.begin(), lows.end(), low);
  std::copy(highs.begin(), highs.end(), high);
  *lowCount = lows.size();
  *highCount = highs.size();
  if (extremes)
    for (const TailCandidates& w : workers) w.extremes.into(extremes);
}

}  // namespace dppa
