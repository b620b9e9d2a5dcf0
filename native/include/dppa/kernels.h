// kernels.h: the kernel library's C++ API. Plain spans in, plain results out; no N-API, no
// threads visible to the caller (every function runs on the compute pool, see pool.h, and
// returns when done). Semantics are those of lib/binding.ts; the per-element float32 order
// of the fused merge is written down at mergeTensor. Errors are reported by throwing
// std::runtime_error / std::invalid_argument; the addon turns them into rejected Promises.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "dppa/dtype.h"

namespace dppa {

// n elements of `dtype`, little-endian, at `data` (any alignment).
struct TensorView {
  const uint8_t* data = nullptr;
  size_t n = 0;
  DType dtype = DType::F32;
};

// δ = decode(ft) - decode(base) in float32. hasBase == false means δ = decode(ft).
struct DeltaView {
  bool hasBase = false;
  TensorView base;
  TensorView ft;
  size_t size() const { return ft.n; }
};

// Several fine-tunes over one base: δ_t = decode(fts[t]) - decode(base), or decode(fts[t])
// when hasBase is false. Every ft has base's element count.
struct SharedDeltaView {
  bool hasBase = false;
  TensorView base;
  std::vector<TensorView> fts;
  DeltaView of(size_t t) const {
    DeltaView d;
    d.hasBase = hasBase;
    d.base = base;
    d.ft = fts[t];
    return d;
  }
};

// Keep-rules per band, tight to loose. An element at flat index i with abs bits a is kept
// by band b when a > bits[b], or a == bits[b] and i <= cutoff[b]. With rows > 0 the tensor
// is `rows` equal rows and entries are row-major [r * nbands + b]. cutoff is always a FLAT
// index into the whole tensor; -1 keeps no element equal to the threshold.
struct BandRulesView {
  const uint32_t* bits = nullptr;
  const double* cutoff = nullptr;
  size_t nbands = 0;
  size_t rows = 0;
};

// Owned band rules (what selectThresholds returns).
struct BandRules {
  std::vector<uint32_t> bits;
  std::vector<double> cutoff;
  size_t rows = 0;
};

// The counter-based generator's key: Philox4x32-10, key = (seedLo, seedHi), counter =
// (lo32(i/4), hi32(i/4), streamLo, streamHi); element i uses word i % 4 and
// u = (word >> 8) * 2^-24.
struct RandomStream {
  uint32_t seedLo = 0, seedHi = 0, streamLo = 0, streamHi = 0;
};

enum class SparsifyKind { Dense, Bands, Random, Della };

struct SparsifySpec {
  SparsifyKind kind = SparsifyKind::Dense;
  double factor = 1.0;             // dense; della with rescale 0: kept δ times factor (`l1`)
  BandRulesView rules;             // bands
  const double* bandFactor = nullptr;  // bands: nbands entries
  RandomStream stream;             // random, della
  double density = 1.0;            // random: kept when u < density; della: d
  double rescale = 1.0;            // random: the factor; della: 1 = divide by p, 0 = none
  double epsilon = 0.0;            // della: ε
  size_t rows = 0;                 // della: > 0: `rows` equal rows ranked separately; 0: one row
};

// DELLA's MAGPRUNE (algorithms.md §1 della_magprune), kind Della. Per row of m elements (the
// whole tensor when rows is 0): rank = position of the element when the row is ordered by the
// abs bits of δ ascending, ties by lower index first (0..m-1; NaN ranks above Inf);
// r = rank / (m - 1) in float64 (0.5 when m == 1); the keep probability
//   p = float((d - ε) + (2ε)·r)          (float64, rounded to float32 once)
// element i (flat index, the 'random' Philox layout) is kept when u_i < p (compared in
// float32, u_i exact); value = δ / p (float32 division) when rescale, δ when not; 0 dropped.
// Requires 0 <= ε, 0 < d - ε and d + ε < 1 (std::invalid_argument otherwise).
void checkDella(const SparsifySpec& sp, size_t n, const char* who);

struct MergeModelSpec {
  TensorView tensor;
  double weight = 1.0;
  SparsifySpec sparsify;
};

enum class Consensus { None, Sum, Count };

struct MergeSpec {
  TensorView base;
  std::vector<MergeModelSpec> models;
  Consensus consensus = Consensus::None;
  bool normalize = false;
  double lambda = 1.0;
  uint8_t* out = nullptr;  // base.n elements of outDtype
  DType outDtype = DType::F32;
};

struct AbsStatsResult {
  double sumAbs = 0;
  std::vector<double> countsAbove;
  double nonFinite = 0;
};

struct SparsifyStatsResult {
  double sumAbs = 0, sumAbsKept = 0, kept = 0;
};

enum class SelectRule { Index, Drop };

// The ks of one model's whole-tensor selection (selectThresholdsShared).
struct SelectRequest {
  const double* ks = nullptr;
  size_t nks = 0;
  SelectRule rule = SelectRule::Index;
};

// ---- conversion ---------------------------------------------------------------------------
void decode(const TensorView& src, float* out);
// F32/F16/BF16 only; round to nearest, ties to even; NaN stays a (quiet) NaN; overflow -> Inf.
void encode(const float* src, size_t n, DType outDtype, uint8_t* out);
void delta(const DeltaView& in, float* out);

// ---- statistics -----------------------------------------------------------------------------
// Sums over elements (Σ|δ|, Σ x·y) are float64 in one fixed order, the same on every SIMD
// path, thread count and device (native/src/cuda follows it too): tiles of 4096 elements;
// inside a tile lane l (0..255) sums elements l, l+256, ... starting from 0.0; lanes are
// combined by the tree "for s = 128, 64, ..., 1: lane[l] += lane[l + s]"; tile sums are added
// in tile order starting from 0.0.
AbsStatsResult absStats(const DeltaView& in, const double* thresholds, size_t nthresholds);
// Elements whose abs bits a satisfy (a & prefixMask) == prefixValue count in bin
// (a >> shift) & (bins - 1). bins: a power of two <= 65536.
std::vector<double> absHistogram(const DeltaView& in, uint32_t shift, uint32_t bins, uint32_t prefixMask,
                                 uint32_t prefixValue);
// Σ_i x_a[i]·x_b[i] for every pair, row-major m × m (products exact in float64).
std::vector<double> gram(const std::vector<DeltaView>& inputs);
SparsifyStatsResult sparsifyStats(const DeltaView& in, const SparsifySpec& sparsify);

// ---- selection ------------------------------------------------------------------------------
// Exact keep-rules of "top k by |δ|" for each k (radix selection, never a sort). rows == 0:
// whole tensor, one entry per k; rows > 0: every row separately, rows * nks entries.
// k == 0 gives bits = 0xFFFFFFFF, cutoff = -1. Rule Drop: bits = the k-th largest abs bits,
// cutoff = -1 (drops every element equal to it).
BandRules selectThresholds(const DeltaView& in, const double* ks, size_t nks, SelectRule rule, size_t rows);
// selectThresholds(in.of(t), requests[t], rows = 0) for every fine-tune t, with the same
// results; the fine-tunes are read in the same pass, the base once for all of them.
std::vector<BandRules> selectThresholdsShared(const SharedDeltaView& in, const std::vector<SelectRequest>& requests);

// ---- merging --------------------------------------------------------------------------------
// The fused merge of one tensor. Per element, float32 throughout, the double parameters
// rounded to float once (f(x)), no fused multiply-add:
//   b = decode(base[i])
//   for t in models, in order:
//     d   = decode(ft_t[i]) - b
//     v   = dense: f(factor)·d | bands: f(bandFactor[first band keeping i])·d, else 0
//           | random: f(rescale)·d when u_i < density, else 0
//           | della:  (rescale ? d / p_i : factor·d) when u_i < p_i, else 0  (p_i: see SparsifySpec)
//     W_t = f(weight_t)·v
//   consensus sum:   S = ((0 + W_0) + W_1) + ...;  γ = S < 0 ? -1 : +1
//   consensus count: C = Σ sign(W_t);                γ = C < 0 ? -1 : +1
//   m_t = none: 1 | otherwise (γ > 0 ? W_t > 0 : W_t < 0)     (zeros never match)
//   mixed = 0; div = 0; for t with m_t: mixed += W_t; div += f(weight_t)
//   normalize: if |div| < 1e-8: div = 1;  mixed = mixed / div
//   out = encode(b + f(lambda)·mixed)
// Returns the NaN/Inf count of each decoded input, base first.
std::vector<double> mergeTensor(const MergeSpec& spec);
// out = encode(acc), acc = 0; for i in order: acc = acc + f(coeffs[i])·decode(inputs[i]).
// Returns the NaN/Inf count of each input.
std::vector<double> linearCombine(const std::vector<TensorView>& inputs, const double* coeffs, uint8_t* out,
                                  DType outDtype);

// ---- PCB-Merging ----------------------------------------------------------------------------
// One task's statistics over the scope (lib/methods/pcb.ts PcbTaskStatistics).
struct PcbTaskParams {
  double clipLow, clipHigh, absMin, absMax;
};
constexpr size_t kMaxPcbTasks = 64;
// For every element i and task t, in float64 with one float32 rounding where stated:
//   c_t = float(clip(δ_t[i], clipLow_t, clipHigh_t)),  S = 0 + c_0 + c_1 + ... (task order)
//   x_t = (|c_t| - absMin_t) / (absMax_t - absMin_t)  (0 when that range is not > 0)
//   scores[t][i] = float(exp(T·x_t·x_t) · tanh(c_t·S))
// deltas and scores: T arrays of n floats each (T <= kMaxPcbTasks).
void pcbScores(const std::vector<const float*>& deltas, size_t n, const PcbTaskParams* params,
               const std::vector<float*>& scores);
// PCB's weighted mean: per element, over the tasks t whose score s_t >= threshold_t (in order):
//   w_t = (s_t - threshold_t) / (max_t - threshold_t)  (1 when that range is not > 0)
//   out[i] = float(Σ w_t·c_t / Σ w_t)  (0 when Σ w_t is not > 0), c_t as pcbScores, in float64.
// Returns each task's count of NaN/Inf deltas (it reads every one anyway).
struct PcbMergeParams {
  double clipLow, clipHigh, threshold, max;
};
std::vector<double> pcbMerge(const std::vector<const float*>& deltas, const std::vector<const float*>& scores, size_t n,
              const PcbMergeParams* params, float* out);
// Exact order statistics of float32 values (PCB's quantiles and score threshold): with key =
// the float's bits mapped to an unsigned integer that orders like the float (negatives: every
// bit flipped; the rest: the sign bit set), counts[(key >> shift) & (bins - 1)] += 1 for every
// value whose (key & prefixMask) == prefixValue. bins = counts' length, a power of two <= 65536.
void orderHistogram(const float* values, size_t n, uint32_t shift, uint32_t prefixMask, uint32_t prefixValue,
                    double* counts, size_t bins);
// The k smallest and the k largest order keys (as orderHistogram's; NaN included, at the ends)
// of every value seen so far, kept across calls: low[0 .. *lowCount) and high[0 .. *highCount),
// each sorted ascending, at most k entries (fewer while fewer values were seen). PCB's clip
// quantiles lie within 0.01% of either end: one pass finds them, where a histogram needs two.
// extremes (optional, 4 entries, updated in place): the least and the largest value, the
// largest value with the sign bit set (-0 included) and the least without it, NaN skipped; an
// entry with no such value is left as it was (start them at +Inf, -Inf, -Inf, +Inf).
void orderTails(const float* values, size_t n, size_t k, uint32_t* low, size_t* lowCount, uint32_t* high,
                size_t* highCount, double* extremes = nullptr);

// ---- misc -----------------------------------------------------------------------------------
void copyBytes(const uint8_t* src, uint8_t* dst, size_t bytes);
void randomUniform(const RandomStream& stream, uint64_t start, float* out, size_t n);

// ---- SIMD dispatch ------------------------------------------------------------------------
// Paths this CPU supports, best last ("scalar", "avx2", "avx512"). The active one is chosen at
// load: the best available, or DPPA_SIMD when set to an available path.
std::vector<std::string> availableSimd();
std::string activeSimd();
bool setSimd(const std::string& path);  // false when the path is unknown or unsupported

}  // namespace dppa
