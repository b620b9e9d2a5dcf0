// select.cpp: exact "top k by |δ|" keep-rules by radix selection on the abs bits (which order
// like |δ| as unsigned integers). Never a sort.
//
// Whole tensor, large: one pass when a sample brackets each k-th value (selectByBracket);
// otherwise, and for small tensors, any number of ks, two passes over δ:
//   1. a histogram of the high 16 bits (per-worker histograms, added at the end);
//      for each k this names the bin holding the k-th largest value;
//   2. inside the chosen bins only, counts of the low 16 bits, kept per chunk as sparse
//      (value, count) lists; summed they give the exact k-th value v, and per chunk they say
//      where the m-th element equal to v lies (the tie cutoff), so finding the cutoff's exact
//      index rescans one chunk, not the tensor.
// Per row (rows > 1): each row is small enough to sit in cache; it is decoded once and
// selected with std::nth_element (linear expected time), one pool task per group of rows.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <functional>
#include <mutex>
#include <utility>
#include <vector>

#include "common.h"


namespace dppa {
using namespace detail;

namespace {

constexpr uint32_t kKeepNothingBits = 0xFFFFFFFFu;
constexpr size_t kBins = 65536;

void checkKs(const double* ks, size_t nks, size_t limit, const char* what) {
  for (size_t i = 0; i < nks; ++i) {
    const double k = ks[i];
    if (!(k >= 0) || k > double(limit) || std::floor(k) != k)
      throw std::invalid_argument(std::string("selectThresholds: k = ") + std::to_string(k) + " must be an integer in [0, " +
                                  std::to_string(limit) + "] (" + what + ")");
  }
}

// Reads δ of [begin, end) as abs bits into `abs` (end - begin entries), tile by tile.
void absBitsOfRange(const simd::TileOps& ops, const DeltaView& in, size_t begin, size_t end, uint32_t* abs) {
  float* d = simd::threadScratch(simd::ScratchSlot::KernelA, simd::kReduceTile);
  float* scratch = simd::threadScratch(simd::ScratchSlot::KernelB, simd::kReduceTile);
  for (size_t start = begin; start < end; start += simd::kReduceTile) {
    const size_t count = std::min(simd::kReduceTile, end - start);
    deltaTile(ops, in, start, count, d, scratch);
    ops.absBits(d, count, abs + (start - begin));
  }
}

struct LowCount {
  uint16_t low;
  uint32_t count;
};

bool selectByBracket(const DeltaView& in, const double* ks, size_t nks, SelectRule rule, BandRules& out);

// Buffers of the two-pass radix selection, kept between calls (fresh pages fault expensively
// on every call, and most tensors of a model are small); one call at a time holds them, a
// concurrent one uses its own. denseCounts stay all zero between chunks.
struct RadixScratch {
  std::vector<uint64_t> perWorker, high;
  std::vector<int> slotOfBin;
  std::vector<std::vector<LowCount>> records;
  std::vector<std::vector<uint32_t>> denseCounts;
  std::vector<std::vector<uint16_t>> touched;
  std::vector<std::vector<uint64_t>> lowHist;
  std::vector<uint32_t> abs;
};
// Scratch memory kept between calls (page faults are expensive, especially in VMs): one
// instance per kind, try-locked; a concurrent call that finds it busy uses its own.
template <typename Scratch>
struct KeptScratch {
  std::mutex mutex;
  Scratch scratch;
};
template <typename Scratch>
KeptScratch<Scratch>& kept() {
  static KeptScratch<Scratch>* instance = new KeptScratch<Scratch>();  // leaked: no teardown order issues
  return *instance;
}

void selectRadix(const DeltaView& in, const double* ks, size_t nks, SelectRule rule, BandRules& out,
                 RadixScratch& mem);

void selectWholeTensor(const DeltaView& in, const double* ks, size_t nks, SelectRule rule, BandRules& out) {
  out.bits.assign(nks, kKeepNothingBits);
  out.cutoff.assign(nks, -1.0);
  bool anyPositive = false;
  for (size_t i = 0; i < nks; ++i) anyPositive = anyPositive || ks[i] > 0;
  if (!anyPositive) return;
  if (selectByBracket(in, ks, nks, rule, out)) return;
  std::unique_lock<std::mutex> lock(kept<RadixScratch>().mutex, std::try_to_lock);
  if (lock.owns_lock()) return selectRadix(in, ks, nks, rule, out, kept<RadixScratch>().scratch);
  RadixScratch own;
  selectRadix(in, ks, nks, rule, out, own);
}

void selectRadix(const DeltaView& in, const double* ks, size_t nks, SelectRule rule, BandRules& out,
                 RadixScratch& mem) {
  const simd::TileOps& ops = simd::ops();
  const size_t n = in.size();
  const size_t tasks = chunkCount(n);

  // Pass 1: histogram of the high 16 abs bits.
  const unsigned workers = pool::workerSlots();
  std::vector<uint64_t>& perWorker = mem.perWorker;
  perWorker.assign(size_t(workers) * kBins, 0);
  pool::parallelFor(tasks, [&](size_t task, unsigned worker) {
    const Range r = chunkRange(task, n);
    uint32_t* abs = reinterpret_cast<uint32_t*>(simd::threadScratch(simd::ScratchSlot::KernelC, kChunk));
    absBitsOfRange(ops, in, r.begin, r.end, abs);
    uint64_t* hist = perWorker.data() + size_t(worker) * kBins;
    for (size_t j = 0; j < r.end - r.begin; ++j) ++hist[abs[j] >> 16];
  });
  std::vector<uint64_t>& high = mem.high;
  high.assign(kBins, 0);
  for (unsigned w = 0; w < workers; ++w)
    for (size_t b = 0; b < kBins; ++b) high[b] += perWorker[size_t(w) * kBins + b];

  // For each k: the bin of its k-th largest value, and how many lie in higher bins.
  struct Target {
    uint32_t bin = 0;
    uint64_t above = 0;  // elements in higher bins
    int slot = -1;
  };
  std::vector<Target> targets(nks);
  std::vector<int>& slotOfBin = mem.slotOfBin;
  slotOfBin.assign(kBins, -1);
  std::vector<uint32_t> slotBins;
  for (size_t i = 0; i < nks; ++i) {
    const uint64_t k = uint64_t(ks[i]);
    if (k == 0) continue;
    uint64_t above = 0;
    size_t bin = kBins - 1;
    while (above + high[bin] < k) above += high[bin--];
    targets[i].bin = uint32_t(bin);
    targets[i].above = above;
    if (slotOfBin[bin] < 0) {
      slotOfBin[bin] = int(slotBins.size());
      slotBins.push_back(uint32_t(bin));
    }
    targets[i].slot = slotOfBin[bin];
  }
  const size_t slots = slotBins.size();

  // Pass 2: per chunk and chosen bin, sparse counts of the low 16 bits.
  std::vector<std::vector<LowCount>>& records = mem.records;
  if (records.size() < tasks * slots) records.resize(tasks * slots);
  for (size_t e = 0; e < tasks * slots; ++e) records[e].clear();  // keeps the capacity
  std::vector<std::vector<uint32_t>>& denseCounts = mem.denseCounts;  // reused per chunk
  std::vector<std::vector<uint16_t>>& touched = mem.touched;
  if (denseCounts.size() < size_t(workers) * slots) denseCounts.resize(size_t(workers) * slots);
  if (touched.size() < size_t(workers) * slots) touched.resize(size_t(workers) * slots);
  pool::parallelFor(tasks, [&](size_t task, unsigned worker) {
    const Range r = chunkRange(task, n);
    uint32_t* abs = reinterpret_cast<uint32_t*>(simd::threadScratch(simd::ScratchSlot::KernelC, kChunk));
    absBitsOfRange(ops, in, r.begin, r.end, abs);
    for (size_t s = 0; s < slots; ++s) {
      std::vector<uint32_t>& dense = denseCounts[size_t(worker) * slots + s];
      if (dense.empty()) dense.assign(kBins, 0);
    }
    for (size_t j = 0; j < r.end - r.begin; ++j) {
      const int s = slotOfBin[abs[j] >> 16];
      if (s < 0) continue;
      const uint16_t low = uint16_t(abs[j] & 0xFFFFu);
      uint32_t& c = denseCounts[size_t(worker) * slots + size_t(s)][low];
      if (c++ == 0) touched[size_t(worker) * slots + size_t(s)].push_back(low);
    }
    for (size_t s = 0; s < slots; ++s) {
      std::vector<uint32_t>& dense = denseCounts[size_t(worker) * slots + s];
      std::vector<uint16_t>& list = touched[size_t(worker) * slots + s];
      std::vector<LowCount>& rec = records[task * slots + s];
      rec.reserve(list.size());
      for (uint16_t low : list) {
        rec.push_back({low, dense[low]});
        dense[low] = 0;
      }
      list.clear();
    }
  });
  std::vector<std::vector<uint64_t>>& lowHist = mem.lowHist;
  if (lowHist.size() < slots) lowHist.resize(slots);
  for (size_t s = 0; s < slots; ++s) lowHist[s].assign(kBins, 0);
  for (size_t task = 0; task < tasks; ++task)
    for (size_t s = 0; s < slots; ++s)
      for (const LowCount& lc : records[task * slots + s]) lowHist[s][lc.low] += lc.count;

  for (size_t i = 0; i < nks; ++i) {
    const uint64_t k = uint64_t(ks[i]);
    if (k == 0) continue;
    const Target& t = targets[i];
    const std::vector<uint64_t>& low = lowHist[size_t(t.slot)];
    uint64_t above = t.above;
    size_t value = kBins - 1;
    while (above + low[value] < k) above += low[value--];
    const uint32_t bits = (t.bin << 16) | uint32_t(value);
    out.bits[i] = bits;
    if (rule == SelectRule::Drop) continue;  // cutoff -1: every element equal to τ is dropped
    // Keep the first m elements equal to `bits`, in flat index order.
    const uint64_t m = k - above;
    uint64_t seen = 0;
    size_t task = 0;
    for (; task < tasks; ++task) {
      uint64_t inChunk = 0;
      for (const LowCount& lc : records[task * slots + size_t(t.slot)])
        if (lc.low == value) inChunk = lc.count;
      if (seen + inChunk >= m) break;
      seen += inChunk;
    }
    const Range r = chunkRange(task, n);
    std::vector<uint32_t>& abs = mem.abs;
    abs.resize(r.end - r.begin);
    absBitsOfRange(ops, in, r.begin, r.end, abs.data());
    for (size_t j = 0; j < abs.size(); ++j) {
      if (abs[j] == bits && ++seen == m) {
        out.cutoff[i] = double(r.begin + j);
        break;
      }
    }
  }
}

// ---- one pass when a sample brackets the k-th value ---------------------------------------
//
// A fixed-stride sample of kSample abs bits gives, for each k, bounds lower <= upper that hold
// the k-th largest value with overwhelming probability (a margin of many standard deviations of
// the sample rank). One pass over δ then counts the elements above `upper` and collects those
// inside [lower, upper] (abs bits and index, per chunk in index order). When the count above is
// < k and the collected elements reach k, the k-th largest is selected among them exactly, and
// the tie cutoff is read off the collected indices. Otherwise (a sample that missed, or too many
// elements inside the bracket, e.g. heavy ties) the two-pass radix selection runs instead. The
// result is exact either way: the sample only decides how fast it is found.

constexpr size_t kSample = 65536;
constexpr size_t kSampleRun = 16;
constexpr size_t kSampleBlocks = kSample / kSampleRun;
constexpr size_t kBracketMinElements = 4 * kSample;  // smaller tensors: the radix path
constexpr size_t kMaxBrackets = 8;

// The r-th largest of the sample (0 = largest); reorders it.
uint32_t sampleRank(std::vector<uint32_t>& sample, size_t r) {
  std::nth_element(sample.begin(), sample.begin() + r, sample.end(), std::greater<uint32_t>());
  return sample[r];
}

// Buffers of selectByBracket, kept between calls (fresh pages fault expensively on every call);
// one call at a time holds them, a concurrent one uses its own.
struct BracketScratch {
  std::vector<uint32_t> sample, hist, values;
  std::vector<uint64_t> above;
  std::vector<std::vector<uint64_t>> found;
};

bool selectByBracketWith(const DeltaView& in, const double* ks, size_t nks, SelectRule rule, BandRules& out,
                         BracketScratch& mem);

bool selectByBracket(const DeltaView& in, const double* ks, size_t nks, SelectRule rule, BandRules& out) {
  if (in.size() < kBracketMinElements) return false;
  std::unique_lock<std::mutex> lock(kept<BracketScratch>().mutex, std::try_to_lock);
  if (lock.owns_lock()) return selectByBracketWith(in, ks, nks, rule, out, kept<BracketScratch>().scratch);
  BracketScratch own;
  return selectByBracketWith(in, ks, nks, rule, out, own);
}

bool selectByBracketWith(const DeltaView& in, const double* ks, size_t nks, SelectRule rule, BandRules& out,
                         BracketScratch& mem) {
  const simd::TileOps& ops = simd::ops();
  const size_t n = in.size();
  if (n < kBracketMinElements) return false;
  std::vector<size_t> which;  // the positive ks
  for (size_t i = 0; i < nks; ++i)
    if (ks[i] > 0) which.push_back(i);
  const size_t nb = which.size();
  if (nb > kMaxBrackets) return false;

  // The sample: kSampleBlocks runs of kSampleRun consecutive elements (a cache line of float32
  // each), run s starting at floor(s·n / kSampleBlocks).
  std::vector<uint32_t>& sample = mem.sample;
  sample.resize(kSample);
  pool::workerSlots();
  constexpr size_t kSampleTasks = 64;
  pool::parallelFor(kSampleTasks, [&](size_t task, unsigned) {
    float d[kSampleRun], scratch[kSampleRun];
    const size_t per = kSampleBlocks / kSampleTasks;
    for (size_t s = task * per; s < (task + 1) * per; ++s) {
      deltaTile(ops, in, size_t(uint64_t(s) * n / kSampleBlocks), kSampleRun, d, scratch);
      ops.absBits(d, kSampleRun, &sample[s * kSampleRun]);
    }
  });
  std::vector<uint32_t> lower(nb), upper(nb);
  double expected = 0;
  for (size_t b = 0; b < nb; ++b) {
    // Rank of the k-th largest in the sample (0 = largest), and a margin of ~6 standard
    // deviations of that rank plus a constant.
    const double q = ks[which[b]] * double(kSample) / double(n) - 1;
    const double margin = 4.0 * std::sqrt(std::max(q, 1.0) * (1.0 - std::min(q, double(kSample) - 1) / kSample)) + 16;
    const double hiRank = std::floor(q - margin), loRank = std::ceil(q + margin);
    upper[b] = hiRank < 0 ? 0xFFFFFFFFu : sampleRank(sample, size_t(hiRank));
    lower[b] = loRank >= double(kSample) ? 0u : sampleRank(sample, size_t(loRank));
    expected += (std::min(loRank, double(kSample)) - std::max(hiRank, 0.0) + 1) / kSample * double(n);
  }
  const uint64_t cap = uint64_t(4 * expected) + 65536;

  const size_t tasks = chunkCount(n);
  std::vector<uint64_t>& above = mem.above;
  above.assign(tasks * nb, 0);
  std::vector<std::vector<uint64_t>>& found = mem.found;
  if (found.size() < tasks * nb) found.resize(tasks * nb);
  for (size_t e = 0; e < tasks * nb; ++e) found[e].clear();  // keeps the capacity
  std::atomic<uint64_t> collected{0};
  std::atomic<bool> overflow{false};
  // δ computed in registers when ft (and base) share one of F32 (aligned), BF16, F16.
  int coded = 0;
  if (!in.hasBase || in.base.dtype == in.ft.dtype) {
    const auto aligned = [](const uint8_t* p) { return reinterpret_cast<uintptr_t>(p) % 4 == 0; };
    switch (in.ft.dtype) {
      case DType::F32: coded = aligned(in.ft.data) && (!in.hasBase || aligned(in.base.data)) ? 1 : 0; break;
      case DType::BF16: coded = 2; break;
      case DType::F16: coded = 3; break;
      default: break;
    }
  }
  static_assert(kMaxBrackets <= simd::kMaxBracketsPerPass, "one bracketDelta call takes every bracket");
  pool::parallelFor(tasks, [&](size_t task, unsigned) {
    if (overflow.load(std::memory_order_relaxed)) return;
    const Range r = chunkRange(task, n);
    float* d = simd::threadScratch(simd::ScratchSlot::KernelA, simd::kReduceTile);
    float* scratch = simd::threadScratch(simd::ScratchSlot::KernelB, simd::kReduceTile);
    uint64_t* hits = reinterpret_cast<uint64_t*>(simd::threadScratch(simd::ScratchSlot::KernelC, 2 * nb * simd::kReduceTile));
    uint64_t total = 0;
    for (size_t start = r.begin; start < r.end; start += simd::kReduceTile) {
      const size_t count = std::min(simd::kReduceTile, r.end - start);
      size_t nfound[kMaxBrackets] = {};
      if (coded != 0) {
        ops.bracketDelta(coded, in.ft.data, in.hasBase ? in.base.data : nullptr, start, count,
                         uint32_t(start - r.begin), lower.data(), upper.data(), nb, above.data() + task * nb, hits,
                         nfound);
      } else {
        deltaTile(ops, in, start, count, d, scratch);
        ops.bracket(d, count, uint32_t(start - r.begin), lower.data(), upper.data(), nb, above.data() + task * nb,
                    hits, nfound);
      }
      for (size_t b = 0; b < nb; ++b) {
        std::vector<uint64_t>& list = found[task * nb + b];
        list.insert(list.end(), hits + b * simd::kReduceTile, hits + b * simd::kReduceTile + nfound[b]);
        total += nfound[b];
      }
    }
    if (collected.fetch_add(total, std::memory_order_relaxed) + total > cap) overflow.store(true);
  });
  if (overflow.load()) return false;

  std::vector<uint64_t> aboveTotal(nb, 0), inside(nb, 0);
  for (size_t b = 0; b < nb; ++b) {
    for (size_t task = 0; task < tasks; ++task) {
      aboveTotal[b] += above[task * nb + b];
      inside[b] += found[task * nb + b].size();
    }
    const uint64_t k = uint64_t(ks[which[b]]);
    if (!(aboveTotal[b] < k && k <= aboveTotal[b] + inside[b])) return false;  // the sample missed
  }
  for (size_t b = 0; b < nb; ++b) {
    const size_t i = which[b];
    const uint64_t k = uint64_t(ks[i]);
    // Rank r (0 = largest) among the collected: a 65536-bin histogram of (a - lower) >> shift
    // names its bin; a selection inside that bin gives the value.
    const size_t r = size_t(k - aboveTotal[b]) - 1;
    const uint32_t low = lower[b], range = upper[b] - lower[b];
    unsigned shift = 0;
    while ((uint64_t(range) >> shift) >= kBins) ++shift;
    std::vector<uint32_t>& hist = mem.hist;
    hist.assign(kBins, 0);
    for (size_t task = 0; task < tasks; ++task)
      for (uint64_t e : found[task * nb + b]) ++hist[(uint32_t(e >> 32) - low) >> shift];
    uint64_t higher = 0;  // collected elements in bins above the chosen one
    size_t bin = kBins - 1;
    while (higher + hist[bin] <= r) higher += hist[bin--];
    std::vector<uint32_t>& values = mem.values;
    values.clear();
    values.reserve(hist[bin]);
    for (size_t task = 0; task < tasks; ++task)
      for (uint64_t e : found[task * nb + b])
        if (((uint32_t(e >> 32) - low) >> shift) == bin) values.push_back(uint32_t(e >> 32));
    const size_t rInBin = r - size_t(higher);
    std::nth_element(values.begin(), values.begin() + rInBin, values.end(), std::greater<uint32_t>());
    const uint32_t bits = values[rInBin];
    out.bits[i] = bits;
    if (rule == SelectRule::Drop) continue;
    uint64_t aboveBits = aboveTotal[b] + higher;
    for (size_t j = 0; j < rInBin; ++j) aboveBits += values[j] > bits ? 1 : 0;  // [0, rInBin) >= bits
    const uint64_t m = k - aboveBits;
    uint64_t seen = 0;
    for (size_t task = 0; task < tasks && out.cutoff[i] < 0; ++task) {
      for (uint64_t e : found[task * nb + b]) {
        if (uint32_t(e >> 32) == bits && ++seen == m) {
          out.cutoff[i] = double(task * kChunk + (e & 0xFFFFFFFFu));
          break;
        }
      }
    }
  }
  return true;
}

void selectPerRow(const DeltaView& in, const double* ks, size_t nks, SelectRule rule, size_t rows, BandRules& out) {
  const simd::TileOps& ops = simd::ops();
  const size_t n = in.size();
  const size_t rowLength = n / rows;
  out.bits.assign(rows * nks, kKeepNothingBits);
  out.cutoff.assign(rows * nks, -1.0);
  if (rowLength == 0) return;
  const size_t rowsPerTask = std::max<size_t>(1, kChunk / rowLength);
  const size_t tasks = (rows + rowsPerTask - 1) / rowsPerTask;
  pool::workerSlots();
  pool::parallelFor(tasks, [&](size_t task, unsigned) {
    uint32_t* abs = reinterpret_cast<uint32_t*>(simd::threadScratch(simd::ScratchSlot::KernelC, rowLength));
    uint32_t* work = reinterpret_cast<uint32_t*>(simd::threadScratch(simd::ScratchSlot::TileModels, rowLength));
    const size_t rowEnd = std::min(rows, (task + 1) * rowsPerTask);
    for (size_t row = task * rowsPerTask; row < rowEnd; ++row) {
      const size_t rowStart = row * rowLength;
      absBitsOfRange(ops, in, rowStart, rowStart + rowLength, abs);
      std::copy(abs, abs + rowLength, work);
      for (size_t i = 0; i < nks; ++i) {
        const size_t k = size_t(ks[i]);
        if (k == 0) continue;
        // The k-th largest: nth_element is a selection (linear expected time), not a sort.
        std::nth_element(work, work + (k - 1), work + rowLength, std::greater<uint32_t>());
        const uint32_t bits = work[k - 1];
        out.bits[row * nks + i] = bits;
        if (rule == SelectRule::Drop) continue;
        size_t above = 0;
        for (size_t j = 0; j < rowLength; ++j) above += abs[j] > bits ? 1 : 0;
        const size_t m = k - above;
        size_t seen = 0;
        for (size_t j = 0; j < rowLength; ++j) {
          if (abs[j] == bits && ++seen == m) {
            out.cutoff[row * nks + i] = double(rowStart + j);
            break;
          }
        }
      }
    }
  });
}

}  // namespace

BandRules selectThresholds(const DeltaView& in, const double* ks, size_t nks, SelectRule rule, size_t rows) {
  checkDelta(in, "selectThresholds");
  const size_t n = in.size();
  BandRules out;
  out.rows = rows;
  if (rows > 0 && n % rows != 0)
    throw std::invalid_argument("selectThresholds: " + std::to_string(n) + " elements are not " + std::to_string(rows) +
                                " equal rows");
  if (rows > 1) {
    checkKs(ks, nks, n / rows, "per-row count");
    selectPerRow(in, ks, nks, rule, rows, out);
  } else {
    checkKs(ks, nks, n, "element count");
    selectWholeTensor(in, ks, nks, rule, out);
  }
  return out;
}

}  // namespace dppa
