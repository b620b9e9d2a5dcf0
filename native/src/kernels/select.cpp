// select.cpp: exact "top k by |δ|" keep-rules by radix selection on the abs bits (which order
// like |δ| as unsigned integers). Never a sort.
//
// Whole tensor, large: one pass when a sample brackets each k-th value (selectByBracket),
// shared by every fine-tune of one base (selectThresholdsShared: the sparsifiers of a tensor
// ask together); otherwise, and for small tensors, any number of ks, two passes over δ:
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
#include <cstring>
#include <functional>
#include <memory>
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
double nthEqualIndex(const simd::TileOps& ops, const DeltaView& in, size_t begin, size_t end, uint32_t bits,
                     uint64_t m);

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
    out.cutoff[i] = nthEqualIndex(ops, in, r.begin, r.end, bits, m - seen);
  }
}

// ---- one pass when a sample brackets the k-th values -------------------------------------
//
// A fixed-stride sample of up to kSample abs bits gives, for each k, bounds lower <= upper that hold
// the k-th largest value with overwhelming probability (a margin of many standard deviations of
// the sample rank). One pass over the inputs then counts, per bracket, the elements above
// `upper` and collects the abs bits of those inside [lower, upper] (per chunk, in index order).
// Fine-tunes that share a base are bracketed in the same pass (the base's tile is decoded once
// into L1 for all of them). When the count above is < k and the collected elements reach k, the
// k-th largest is selected among them exactly, and the tie cutoff is found by rescanning the
// one chunk that holds it. Otherwise (a sample that missed, or too many elements inside the
// bracket, e.g. heavy ties) that model's selection falls back to the two-pass radix selection.
// The result is exact either way: the sample only decides how fast it is found.

constexpr size_t kSample = 65536;  // elements sampled from large tensors
constexpr size_t kMinSample = 16384;
constexpr size_t kSampleRun = 16;
constexpr size_t kBracketMinElements = 4 * kSample;  // smaller tensors: the radix path
constexpr size_t kSampleTasks = 64;

// n/64 elements, at least kMinSample and at most kSample, a multiple of kSampleRun·kSampleTasks:
// sampling and ranking cost the same whatever n is, so smaller tensors sample less.
size_t sampleSize(size_t n) {
  const size_t unit = kSampleRun * kSampleTasks;
  return std::min(kSample, std::max(kMinSample, n / 64 / unit * unit));
}
constexpr size_t kFinishBins = 2048;
constexpr size_t kSamplePrefetch = 16;
// Sample histogram bins: abs bits >> 15 (65536 bins, 8 bits of mantissa).
constexpr unsigned kSampleShift = 15;

// The abs bits collected by one pass task for one bracket; capacity kept between calls.
struct ValueList {
  std::unique_ptr<uint32_t[]> data;
  size_t size = 0, capacity = 0;
  void reserveMore(size_t more) {
    if (size + more <= capacity) return;
    const size_t grown = std::max(size + more, 2 * capacity);
    std::unique_ptr<uint32_t[]> bigger(new uint32_t[grown]);
    std::copy(data.get(), data.get() + size, bigger.get());
    data = std::move(bigger);
    capacity = grown;
  }
};

// One k of one model.
struct Bracket {
  size_t model = 0, which = 0;  // ks index
  uint64_t k = 0;
  uint32_t lower = 0, upper = 0;
  uint64_t cap = 0;  // most elements worth collecting
  // The lower bound is a heavily repeated value (say δ = 0 of untouched weights): its group is
  // counted, not collected.
  bool countLower = false;
  // The pass's entries (tile_ops.h BracketJob) that serve it: `entry` counts a > upper and
  // collects [lower, upper], or (lower, upper] with countLower, or nothing when lower == upper;
  // with countLower or lower == upper, atLeast counts a >= lower (-1 when lower is 0: every
  // element does).
  size_t entry = 0;
  long atLeast = -1;
};


// Buffers of selectByBracket, kept between calls (fresh pages fault expensively on every call);
// one call at a time holds them, a concurrent one uses its own.
struct BracketScratch {
  std::vector<std::vector<uint32_t>> samples;   // per model
  std::vector<std::vector<uint32_t>> sampleHists;  // per model
  std::vector<std::vector<uint32_t>> hists;     // per bracket
  std::vector<std::vector<uint64_t>> inBin;     // per bracket: value << 32 | chunk
  std::vector<std::vector<uint32_t>> values;    // per bracket
  std::vector<std::vector<uint32_t>> perChunk;  // per bracket
  std::vector<uint64_t> above;                  // [task * nb + b]
  std::vector<ValueList> lists;                 // [task * nb + b]
};

// The (m)-th element (1-based) of [begin, end) whose abs bits equal `bits`, as a flat index;
// -1 when there are fewer.
double nthEqualIndex(const simd::TileOps& ops, const DeltaView& in, size_t begin, size_t end, uint32_t bits,
                     uint64_t m) {
  uint32_t* abs = reinterpret_cast<uint32_t*>(simd::threadScratch(simd::ScratchSlot::KernelC, simd::kReduceTile));
  uint64_t seen = 0;
  for (size_t start = begin; start < end; start += simd::kReduceTile) {
    const size_t count = std::min(simd::kReduceTile, end - start);
    absBitsOfRange(ops, in, start, start + count, abs);
    for (size_t j = 0; j < count; ++j)
      if (abs[j] == bits && ++seen == m) return double(start + j);
  }
  return -1.0;
}

// Bounds of every bracket from a sample of each model's abs bits.
void bracketBounds(const SharedDeltaView& in, std::vector<Bracket>& brackets, BracketScratch& mem) {
  const simd::TileOps& ops = simd::ops();
  const size_t n = in.fts[0].n, nm = in.fts.size();
  // The sample: m / kSampleRun runs of kSampleRun consecutive elements (a cache line of float32
  // each), run s starting at floor(s·n·kSampleRun / m); the base's run is decoded once for
  // every fine-tune.
  if (mem.samples.size() < nm) mem.samples.resize(nm);
  if (mem.sampleHists.size() < nm) mem.sampleHists.resize(nm);
  const size_t m = sampleSize(n), blocks = m / kSampleRun;
  for (size_t t = 0; t < nm; ++t) mem.samples[t].resize(m);
  const auto runStart = [&](size_t s) { return size_t(uint64_t(s) * n / blocks); };
  pool::parallelFor(kSampleTasks, [&](size_t part, unsigned) {
    const size_t per = blocks / kSampleTasks, first = part * per, count = per * kSampleRun;
    // The task's runs of one input are first gathered into one stretch of raw bytes, so that
    // decode, subtract and abs bits run once per input and task rather than once per 16-element
    // run (the calls, not the arithmetic, were most of the sampling's time).
    uint8_t* raw = reinterpret_cast<uint8_t*>(simd::threadScratch(simd::ScratchSlot::KernelA, 2 * count));  // 8 bytes an element at most
    float* base = simd::threadScratch(simd::ScratchSlot::KernelB, count);
    float* d = simd::threadScratch(simd::ScratchSlot::KernelC, count);
    const auto gather = [&](const TensorView& input) {
      const size_t size = dtypeSize(input.dtype), runBytes = kSampleRun * size;
      for (size_t s = first; s < first + per; ++s) {
        // The runs are far apart: fetch a few ahead, so the misses overlap.
        if (s + kSamplePrefetch < first + per) __builtin_prefetch(input.data + runStart(s + kSamplePrefetch) * size);
        std::memcpy(raw + (s - first) * runBytes, input.data + runStart(s) * size, runBytes);
      }
    };
    if (in.hasBase) {
      gather(in.base);
      ops.decode(in.base.dtype, raw, 0, count, base);
    }
    for (size_t t = 0; t < nm; ++t) {
      gather(in.fts[t]);
      ops.decode(in.fts[t].dtype, raw, 0, count, d);
      if (in.hasBase) ops.subtract(d, base, count);
      ops.absBits(d, count, &mem.samples[t][first * kSampleRun]);
    }
  });
  // Per model, the sample's order statistics from a histogram of its abs bits >> kSampleShift:
  // the bin holding rank r, then a selection among that bin's few values.
  pool::parallelFor(nm, [&](size_t t, unsigned) {
    std::vector<uint32_t>& hist = mem.sampleHists[t];
    hist.assign(size_t(1) << (31 - kSampleShift), 0);  // abs bits < 2^31
    const std::vector<uint32_t>& sample = mem.samples[t];
    uint32_t largest = 0;
    for (const uint32_t a : sample) {
      ++hist[a >> kSampleShift];
      largest = std::max(largest, a);
    }
    std::vector<uint32_t> inBin;
    // The r-th largest of the sample (0 = largest).
    const auto sampleRank = [&](size_t r) {
      size_t bin = largest >> kSampleShift, higher = 0;
      while (higher + hist[bin] <= r) higher += hist[bin--];
      inBin.clear();
      for (const uint32_t a : sample)
        if (a >> kSampleShift == bin) inBin.push_back(a);
      std::nth_element(inBin.begin(), inBin.begin() + long(r - higher), inBin.end(), std::greater<uint32_t>());
      return inBin[r - higher];
    };
    for (Bracket& br : brackets) {
      if (br.model != t) continue;
      // Rank of the k-th largest in the sample, and a margin of ~4 standard deviations of that
      // rank plus a constant.
      const double q = double(br.k) * double(m) / double(n) - 1;
      const double margin = 4.0 * std::sqrt(std::max(q, 1.0) * (1.0 - std::min(q, double(m) - 1) / double(m))) + 16;
      const double hiRank = std::floor(q - margin), loRank = std::ceil(q + margin);
      br.upper = hiRank < 0 ? 0xFFFFFFFFu : sampleRank(size_t(hiRank));
      br.lower = loRank >= double(m) ? 0 : sampleRank(size_t(loRank));
      // Sample values equal to lower: all in the bin sampleRank just gathered (or, for lower = 0
      // without a rank, counted over the sample).
      const size_t atLower = loRank >= double(m) ? size_t(std::count(sample.begin(), sample.end(), 0u))
                                                 : size_t(std::count(inBin.begin(), inBin.end(), br.lower));
      br.countLower = br.lower < br.upper && atLower >= m / 256;
      const double expected = (std::min(loRank, double(m)) - std::max(hiRank, 0.0) + 1) / double(m) * double(n);
      br.cap = uint64_t(4 * expected) + 65536;
    }
  });
}

// The flat index of the m-th element (1-based) of model t whose abs bits equal `bits`, given
// how many such elements each chunk holds: the chunk that holds it is rescanned.
double cutoffInChunks(const SharedDeltaView& in, size_t t, uint32_t bits, uint64_t m,
                      const std::function<uint64_t(size_t)>& equalIn) {
  const size_t n = in.fts[t].n;
  uint64_t seen = 0;
  for (size_t task = 0; task < chunkCount(n); ++task) {
    const uint64_t equal = equalIn(task);
    if (seen + equal >= m) {
      const Range chunk = chunkRange(task, n);
      return nthEqualIndex(simd::ops(), in.of(t), chunk.begin, chunk.end, bits, m - seen);
    }
    seen += equal;
  }
  return -1.0;  // unreachable when the counts hold m such elements
}

// The values v with low <= v <= low + width, tested with one unsigned comparison (v - low wraps
// below the range; abs bits stay below 2^31, so low + width never wraps).
struct BinRange {
  uint32_t low, width;
  bool holds(uint32_t v) const { return v - low <= width; }
  // How many of values[0, n) it holds; smallest and largest are lowered and raised to theirs.
  // Branch-free with masks: the chosen bin often holds most of the values (quantized deltas),
  // hit or miss is then unpredictable, and a branchy loop ran ~4x slower (temporary timers).
  uint32_t scan(const uint32_t* values, size_t n, uint32_t& smallest, uint32_t& largest) const {
    uint32_t count = 0, lowest = 0xFFFFFFFFu, highest = 0;
    for (size_t e = 0; e < n; ++e) {
      const uint32_t offset = values[e] - low;
      const uint32_t hit = 0u - uint32_t(offset <= width);  // all ones or zero
      count += hit & 1u;
      lowest = std::min(lowest, offset | ~hit);  // a miss gives all ones
      highest = std::max(highest, offset & hit);  // a miss gives 0
    }
    if (count > 0) {
      smallest = std::min(smallest, low + lowest);
      largest = std::max(largest, low + highest);
    }
    return count;
  }
};

// The k-th value and tie cutoff of one bracket from what the pass collected; false when the
// bracket missed it.
bool finishBracket(const SharedDeltaView& in, const Bracket& br, size_t b, size_t ne, SelectRule rule,
                   BracketScratch& mem, BandRules& out) {
  const size_t n = in.fts[0].n, tasks = chunkCount(n);
  uint64_t above = 0, inside = 0;
  for (size_t task = 0; task < tasks; ++task) above += mem.above[task * ne + br.entry];
  // Elements equal to lower in a chunk, when they are counted rather than collected.
  const auto lowerGroupIn = [&](size_t task) {
    const uint64_t atLeast = br.atLeast < 0 ? chunkRange(task, n).end - chunkRange(task, n).begin
                                            : mem.above[task * ne + size_t(br.atLeast)];
    return atLeast - mem.above[task * ne + br.entry] - mem.lists[task * ne + br.entry].size;
  };
  uint64_t collected = 0, lowerGroup = 0;
  for (size_t task = 0; task < tasks; ++task) {
    collected += mem.lists[task * ne + br.entry].size;
    if (br.lower == br.upper || br.countLower) lowerGroup += lowerGroupIn(task);
  }
  inside = collected + lowerGroup;
  if (!(above < br.k && br.k <= above + inside)) return false;  // the sample missed
  if (br.k > above + collected) {
    // The k-th value is the counted lower bound (every inside element, when lower == upper).
    out.bits[br.which] = br.lower;
    if (rule == SelectRule::Index)
      out.cutoff[br.which] = cutoffInChunks(in, br.model, br.lower, br.k - above - collected, lowerGroupIn);
    return true;
  }
  // Rank r (0 = largest) among the collected: a histogram of (a - lower) >> shift small
  // enough for L1 (the bracket is narrow, so its values spread evenly) names its bin; a
  // selection among that bin's values gives the value.
  const size_t r = size_t(br.k - above) - 1;
  const uint32_t range = br.upper - br.lower;
  unsigned shift = 0;
  while ((uint64_t(range) >> shift) >= kFinishBins) ++shift;
  // Four interleaved histograms: quantized deltas repeat a few values, and increments of one
  // counter would wait on each other.
  std::vector<uint32_t>& hist = mem.hists[b];
  hist.assign(4 * kFinishBins, 0);
  for (size_t task = 0; task < tasks; ++task) {
    const ValueList& list = mem.lists[task * ne + br.entry];
    size_t e = 0;
    for (; e + 4 <= list.size; e += 4)
      for (size_t copy = 0; copy < 4; ++copy) ++hist[copy * kFinishBins + ((list.data[e + copy] - br.lower) >> shift)];
    for (; e < list.size; ++e) ++hist[(list.data[e] - br.lower) >> shift];
  }
  for (size_t bin = 0; bin < kFinishBins; ++bin)
    hist[bin] += hist[kFinishBins + bin] + hist[2 * kFinishBins + bin] + hist[3 * kFinishBins + bin];
  uint64_t higher = 0;  // collected elements in bins above the chosen one
  size_t bin = kFinishBins - 1;
  while (higher + hist[bin] <= r) higher += hist[bin--];
  // One scan of the chosen bin: how many of its values each chunk holds, and their smallest
  // and largest. Every element equal to the k-th value is in this bin, so the counts also
  // locate the tie cutoff when the bin holds one value.
  const BinRange chosen{br.lower + (uint32_t(bin) << shift), (uint32_t(1) << shift) - 1};
  std::vector<uint32_t>& perChunk = mem.perChunk[b];
  perChunk.assign(tasks, 0);
  uint32_t smallest = 0xFFFFFFFFu, largest = 0;
  for (size_t task = 0; task < tasks; ++task) {
    const ValueList& list = mem.lists[task * ne + br.entry];
    perChunk[task] = chosen.scan(list.data.get(), list.size, smallest, largest);
  }
  const size_t rInBin = r - size_t(higher);
  if (smallest == largest) {
    // One value fills the bin (coarsely quantized deltas, e.g. from bf16): it is the k-th.
    out.bits[br.which] = smallest;
    if (rule == SelectRule::Index)
      out.cutoff[br.which] = cutoffInChunks(in, br.model, smallest, br.k - above - higher, [&](size_t task) { return perChunk[task]; });
    return true;
  }
  // Several values: the bin's values with the chunk each came from, in chunk order.
  std::vector<uint64_t>& inBin = mem.inBin[b];
  inBin.clear();
  for (size_t task = 0; task < tasks; ++task) {
    const ValueList& list = mem.lists[task * ne + br.entry];
    for (size_t e = 0; e < list.size; ++e)
      if (chosen.holds(list.data[e])) inBin.push_back((uint64_t(list.data[e]) << 32) | task);
  }
  std::vector<uint32_t>& values = mem.values[b];
  values.resize(inBin.size());
  for (size_t e = 0; e < inBin.size(); ++e) values[e] = uint32_t(inBin[e] >> 32);
  std::nth_element(values.begin(), values.begin() + long(rInBin), values.end(), std::greater<uint32_t>());
  const uint32_t bits = values[rInBin];
  out.bits[br.which] = bits;
  if (rule == SelectRule::Drop) return true;
  uint64_t aboveBits = above + higher;
  for (size_t j = 0; j < rInBin; ++j) aboveBits += values[j] > bits ? 1 : 0;  // [0, rInBin) >= bits
  // Keep the first m elements equal to `bits`, in flat index order.
  std::vector<uint32_t>& equalPerChunk = perChunk;
  equalPerChunk.assign(tasks, 0);
  for (const uint64_t e : inBin)
    if (uint32_t(e >> 32) == bits) ++equalPerChunk[size_t(e & 0xFFFFFFFFu)];
  out.cutoff[br.which] = cutoffInChunks(in, br.model, bits, br.k - aboveBits, [&](size_t task) { return equalPerChunk[task]; });
  return true;
}

// Brackets every positive k of the given models in one pass. done[t] is set for each model
// whose every k was found; the others need the radix selection. brackets.size() <= kMaxBracketsPerPass / 2.
void selectByBracket(const SharedDeltaView& in, const std::vector<SelectRequest>& requests, std::vector<Bracket> brackets,
                     std::vector<BandRules>& out, std::vector<bool>& done, BracketScratch& mem) {
  const simd::TileOps& ops = simd::ops();
  const size_t n = in.fts[0].n, nm = in.fts.size(), nb = brackets.size();
  pool::workerSlots();
  bracketBounds(in, brackets, mem);

  // The pass's entries, in model order (see Bracket); in a pass small enough for one of the
  // register-resident shapes, every model gets as many (padding with entries that count nothing).
  std::vector<std::vector<std::pair<uint32_t, uint32_t>>> perModel(nm);  // (lower, upper)
  uint64_t cap = 0;
  for (Bracket& br : brackets) {
    std::vector<std::pair<uint32_t, uint32_t>>& entries = perModel[br.model];
    br.entry = entries.size();  // within the model, for now
    if (br.lower == br.upper) {
      entries.push_back({simd::kCollectNothingBits, br.upper});
    } else {
      entries.push_back({br.countLower ? br.lower + 1 : br.lower, br.upper});
      cap += br.cap;
    }
    if ((br.lower == br.upper || br.countLower) && br.lower > 0) {
      br.atLeast = long(entries.size());
      entries.push_back({simd::kCollectNothingBits, br.lower - 1});
    }
  }
  size_t widest = 0;
  for (const auto& entries : perModel) widest = std::max(widest, entries.size());
  std::vector<uint32_t> firstEntry(nm + 1, 0), lower, upper;
  for (size_t t = 0; t < nm; ++t) {
    for (Bracket& br : brackets) {
      if (br.model != t) continue;
      br.entry += lower.size();
      if (br.atLeast >= 0) br.atLeast += long(lower.size());
    }
    for (const auto& entry : perModel[t]) {
      lower.push_back(entry.first);
      upper.push_back(entry.second);
    }
    const bool pad = nm <= simd::kFixedBracketModels && widest <= simd::kFixedBracketEntries;
    for (size_t e = perModel[t].size(); pad && e < widest; ++e) {
      lower.push_back(simd::kCollectNothingBits);
      upper.push_back(0xFFFFFFFFu);
    }
    firstEntry[t + 1] = uint32_t(lower.size());
  }
  const size_t ne = lower.size();

  const size_t tasks = chunkCount(n);
  mem.above.assign(tasks * ne, 0);
  if (mem.lists.size() < tasks * ne) mem.lists.resize(tasks * ne);
  for (size_t e = 0; e < tasks * ne; ++e) mem.lists[e].size = 0;  // keeps the capacity
  const int coded = registerDtypeCode(in);
  std::atomic<uint64_t> collected{0};
  std::atomic<bool> overflow{false};
  pool::parallelFor(tasks, [&](size_t task, unsigned) {
    if (overflow.load(std::memory_order_relaxed)) return;
    const Range r = chunkRange(task, n);
    // Without a shared dtype: δ of each model decoded into a tile of float32 first.
    float* decoded = coded ? nullptr : simd::threadScratch(simd::ScratchSlot::KernelA, nm * simd::kReduceTile);
    float* scratch = coded ? nullptr : simd::threadScratch(simd::ScratchSlot::KernelB, simd::kReduceTile);
    std::vector<const uint8_t*> fts(nm);
    for (size_t t = 0; t < nm; ++t)
      fts[t] = coded ? in.fts[t].data : reinterpret_cast<const uint8_t*>(decoded + t * simd::kReduceTile);
    simd::BracketJob job{coded ? coded : 1, coded && in.hasBase ? in.base.data : nullptr, fts.data(), nm,
                         firstEntry.data(), lower.data(), upper.data()};
    uint32_t* values[simd::kMaxBracketsPerPass];
    size_t sizes[simd::kMaxBracketsPerPass];
    ValueList* lists = &mem.lists[task * ne];
    for (size_t e = 0; e < ne; ++e) sizes[e] = 0;
    for (size_t start = r.begin; start < r.end; start += simd::kReduceTile) {
      const size_t count = std::min(simd::kReduceTile, r.end - start);
      for (size_t e = 0; e < ne; ++e) {
        lists[e].size = sizes[e];
        lists[e].reserveMore(count + simd::kMaxVectorLanes);
        values[e] = lists[e].data.get();
      }
      if (coded) {
        ops.bracketShared(job, start, count, &mem.above[task * ne], values, sizes);
      } else {
        for (size_t t = 0; t < nm; ++t) deltaTile(ops, in.of(t), start, count, decoded + t * simd::kReduceTile, scratch);
        ops.bracketShared(job, 0, count, &mem.above[task * ne], values, sizes);
      }
    }
    uint64_t total = 0;
    for (size_t e = 0; e < ne; ++e) {
      lists[e].size = sizes[e];
      total += sizes[e];
    }
    if (collected.fetch_add(total, std::memory_order_relaxed) + total > cap) overflow.store(true);
  });
  if (overflow.load()) return;  // every model of this pass goes to the radix selection

  if (mem.hists.size() < nb) mem.hists.resize(nb);
  if (mem.inBin.size() < nb) mem.inBin.resize(nb);
  if (mem.values.size() < nb) mem.values.resize(nb);
  if (mem.perChunk.size() < nb) mem.perChunk.resize(nb);
  std::vector<char> found(nb, 0);
  pool::parallelFor(nb, [&](size_t b, unsigned) {
    const Bracket& br = brackets[b];
    found[b] = finishBracket(in, br, b, ne, requests[br.model].rule, mem, out[br.model]) ? 1 : 0;
  });
  for (size_t t = 0; t < nm; ++t) {
    bool all = true;
    for (size_t b = 0; b < nb; ++b) all = all && (brackets[b].model != t || found[b]);
    done[t] = all;
  }
}

// Every model's whole-tensor selection: bracketed passes over groups of models (at most
// kMaxBracketsPerPass / 2 brackets each), then the radix selection for whatever they missed.
void selectShared(const SharedDeltaView& in, const std::vector<SelectRequest>& requests, std::vector<BandRules>& out) {
  const size_t nm = in.fts.size();
  const size_t n = nm > 0 ? in.fts[0].n : 0;
  std::vector<bool> done(nm, false);
  for (size_t t = 0; t < nm; ++t) {
    out[t].bits.assign(requests[t].nks, kKeepNothingBits);
    out[t].cutoff.assign(requests[t].nks, -1.0);
    bool anyPositive = false;
    for (size_t i = 0; i < requests[t].nks; ++i) anyPositive = anyPositive || requests[t].ks[i] > 0;
    done[t] = !anyPositive;
  }
  if (n >= kBracketMinElements) {
    std::unique_lock<std::mutex> lock(kept<BracketScratch>().mutex, std::try_to_lock);
    BracketScratch own;
    BracketScratch& mem = lock.owns_lock() ? kept<BracketScratch>().scratch : own;
    for (size_t first = 0; first < nm;) {
      // The next group: as many models as fit in one pass.
      std::vector<Bracket> brackets;
      std::vector<size_t> group;
      size_t t = first;
      for (; t < nm; ++t) {
        if (done[t]) continue;
        size_t positive = 0;
        for (size_t i = 0; i < requests[t].nks; ++i) positive += requests[t].ks[i] > 0 ? 1 : 0;
        // A bracket takes one or two of the pass's entries (see Bracket).
        if (2 * positive > simd::kMaxBracketsPerPass) continue;  // radix only
        if (2 * (brackets.size() + positive) > simd::kMaxBracketsPerPass) break;
        for (size_t i = 0; i < requests[t].nks; ++i)
          if (requests[t].ks[i] > 0) brackets.push_back({group.size(), i, uint64_t(requests[t].ks[i])});
        group.push_back(t);
      }
      first = t;
      if (group.empty()) continue;
      SharedDeltaView part;
      part.hasBase = in.hasBase;
      part.base = in.base;
      std::vector<SelectRequest> partRequests;
      std::vector<BandRules> partOut(group.size());
      for (size_t g : group) {
        part.fts.push_back(in.fts[g]);
        partRequests.push_back(requests[g]);
      }
      for (size_t g = 0; g < group.size(); ++g) partOut[g] = out[group[g]];
      std::vector<bool> partDone(group.size(), false);
      selectByBracket(part, partRequests, brackets, partOut, partDone, mem);
      for (size_t g = 0; g < group.size(); ++g) {
        out[group[g]] = std::move(partOut[g]);
        done[group[g]] = partDone[g];
      }
    }
  }
  for (size_t t = 0; t < nm; ++t) {
    if (done[t]) continue;
    std::unique_lock<std::mutex> lock(kept<RadixScratch>().mutex, std::try_to_lock);
    RadixScratch own;
    selectRadix(in.of(t), requests[t].ks, requests[t].nks, requests[t].rule, out[t],
                lock.owns_lock() ? kept<RadixScratch>().scratch : own);
  }
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
    SharedDeltaView shared;
    shared.hasBase = in.hasBase;
    shared.base = in.base;
    shared.fts.push_back(in.ft);
    std::vector<BandRules> results(1);
    selectShared(shared, {SelectRequest{ks, nks, rule}}, results);
    out.bits = std::move(results[0].bits);
    out.cutoff = std::move(results[0].cutoff);
  }
  return out;
}

std::vector<BandRules> selectThresholdsShared(const SharedDeltaView& in, const std::vector<SelectRequest>& requests) {
  if (requests.size() != in.fts.size())
    throw std::invalid_argument("selectThresholdsShared: " + std::to_string(requests.size()) + " requests for " +
                                std::to_string(in.fts.size()) + " fine-tunes");
  for (size_t t = 0; t < in.fts.size(); ++t) {
    checkDelta(in.of(t), "selectThresholdsShared");
    if (in.fts[t].n != in.fts[0].n)
      throw std::invalid_argument("selectThresholdsShared: fine-tune " + std::to_string(t) + " has " +
                                  std::to_string(in.fts[t].n) + " elements, fine-tune 0 has " + std::to_string(in.fts[0].n));
    checkKs(requests[t].ks, requests[t].nks, in.fts[t].n, "element count");
  }
  std::vector<BandRules> out(in.fts.size());
  selectShared(in, requests, out);
  return out;
}

}  // namespace dppa
