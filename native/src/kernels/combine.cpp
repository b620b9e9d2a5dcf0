// combine.cpp: the fused merge (decode, δ, sparsify, weight, consensus, combine, encode in one
// pass: every input is read once and the output written once) and the plain linear combination.
// This file only cuts the tensor into tiles and resolves per-tile parameters; the per-element
// work is simd::TileOps::mergeTile.
#include <cmath>
#include <memory>
#include <mutex>
#include <vector>

#include "common.h"

namespace dppa {
using namespace detail;

namespace {

// u < density  <=>  (word >> 8) < density·2^24  <=>  (word >> 8) < ceil(density·2^24).
uint32_t keepBelowFor(double density) {
  const double scaled = std::ceil(std::ldexp(density, 24));
  if (!(scaled > 0)) return 0;
  if (scaled >= 16777216.0) return 16777216u;
  return uint32_t(scaled);
}

void checkRules(const SparsifySpec& sp, size_t n, size_t model) {
  const std::string who = "mergeTensor: model " + std::to_string(model);
  if (sp.kind == SparsifyKind::Della) checkDella(sp, n, who.c_str());
  if (sp.kind != SparsifyKind::Bands) return;
  if (sp.rules.nbands > simd::kMaxBands)
    throw std::invalid_argument(who + ": at most " + std::to_string(simd::kMaxBands) + " bands");
  if (sp.rules.rows > 0 && n % sp.rules.rows != 0)
    throw std::invalid_argument(who + ": " + std::to_string(n) + " elements are not " + std::to_string(sp.rules.rows) +
                                " equal rows");
}

// The rules of `sp` for the elements [start, start + count) of one row, as tile-local limits.
void resolveBands(const SparsifySpec& sp, size_t rowLength, size_t start, size_t count, simd::TileBands& bands) {
  const size_t entry = sp.rules.rows > 0 ? (start / rowLength) * sp.rules.nbands : 0;
  bands.nbands = int(sp.rules.nbands);
  for (size_t b = 0; b < sp.rules.nbands; ++b) {
    bands.bits[b] = sp.rules.bits[entry + b];
    const double cutoff = sp.rules.cutoff[entry + b];
    // Local index j is tie-kept when start + j <= cutoff.
    if (!(cutoff >= double(start))) {
      bands.tieLimit[b] = -1;
    } else if (cutoff >= double(start + count)) {
      bands.tieLimit[b] = int32_t(count);
    } else {
      bands.tieLimit[b] = int32_t(std::floor(cutoff) - double(start));
    }
    bands.factor[b] = float(sp.bandFactor[b]);
  }
}

// MergeTileJob::fusedDense (tile_ops.h).
// The same dtype everywhere, every model Dense, Random or Bands; with bands or a consensus
// at most kMaxFusedModels models.
bool needsGeneralFused(const MergeSpec& spec) {
  if (spec.consensus != Consensus::None) return true;
  for (const MergeModelSpec& m : spec.models)
    if (m.sparsify.kind == SparsifyKind::Bands) return true;
  return false;
}

int fusedDenseKind(const MergeSpec& spec) {
  if (needsGeneralFused(spec) && spec.models.size() > simd::kMaxFusedModels) return 0;
  const DType dt = spec.base.dtype;
  const auto aligned = [](const void* p) { return reinterpret_cast<uintptr_t>(p) % 4 == 0; };
  for (const MergeModelSpec& m : spec.models) {
    const SparsifyKind kind = m.sparsify.kind;
    if ((kind != SparsifyKind::Dense && kind != SparsifyKind::Random && kind != SparsifyKind::Bands) ||
        m.tensor.dtype != dt)
      return 0;
    if (dt == DType::F32 && !aligned(m.tensor.data)) return 0;
  }
  if (dt == DType::F32 && !(aligned(spec.base.data))) return 0;
  if (spec.outDtype == DType::F32 && !aligned(spec.out)) return 0;
  switch (dt) {
    case DType::F32: return 1;
    case DType::BF16: return 2;
    case DType::F16: return 3;
    default: return 0;
  }
}

// Elements per group of rows for which DELLA keep probabilities are held at once.
constexpr size_t kDellaGroup = size_t(1) << 22;

// DELLA probability buffers (one per model slot), kept between calls so that large tensors do
// not fault in fresh pages every time; used by one mergeTensor call at a time.
std::mutex& dellaBuffersMutex() {
  static std::mutex mutex;
  return mutex;
}
std::vector<std::vector<float>>& dellaBuffers() {
  static std::vector<std::vector<float>> buffers(simd::kMaxModels);
  return buffers;
}

}  // namespace

std::vector<double> mergeTensor(const MergeSpec& spec) {
  const size_t n = spec.base.n;
  const size_t nmodels = spec.models.size();
  if (nmodels > simd::kMaxModels)
    throw std::invalid_argument("mergeTensor: at most " + std::to_string(simd::kMaxModels) + " models");
  if (!isOutputDType(spec.outDtype)) throw std::invalid_argument("mergeTensor: cannot encode to this dtype");
  std::vector<simd::MergeTileModel> models(nmodels);
  std::vector<size_t> rowLengths(nmodels, n);
  float divisorAll = 0.0f;
  for (size_t t = 0; t < nmodels; ++t) {
    const MergeModelSpec& m = spec.models[t];
    if (m.tensor.n != n)
      throw std::invalid_argument("mergeTensor: model " + std::to_string(t) + " has " + std::to_string(m.tensor.n) +
                                  " elements, base has " + std::to_string(n));
    checkRules(m.sparsify, n, t);
    simd::MergeTileModel& tile = models[t];
    tile.data = m.tensor.data;
    tile.dtype = m.tensor.dtype;
    tile.weight = float(m.weight);
    tile.kind = m.sparsify.kind;
    tile.factor = float(m.sparsify.factor);
    tile.rescale = float(m.sparsify.rescale);
    tile.keepBelow = keepBelowFor(m.sparsify.density);
    tile.stream = m.sparsify.stream;
    tile.keepProb = nullptr;
    tile.keepProbStart = 0;
    tile.divideByProb = m.sparsify.rescale != 0;
    if (m.sparsify.kind == SparsifyKind::Bands && m.sparsify.rules.rows > 0) rowLengths[t] = n / m.sparsify.rules.rows;
    divisorAll = divisorAll + tile.weight;
  }
  simd::MergeTileJob job;
  job.base = spec.base.data;
  job.baseDtype = spec.base.dtype;
  job.models = models.data();
  job.nmodels = nmodels;
  job.consensus = spec.consensus;
  job.normalize = spec.normalize;
  job.lambda = float(spec.lambda);
  job.divisorAll = divisorAll;
  job.out = spec.out;
  job.outDtype = spec.outDtype;
  job.fusedDense = fusedDenseKind(spec);

  // DELLA models: keep probabilities for a group of whole rows at a time (every della model
  // with the same row length), in buffers kept between calls; otherwise the whole tensor.
  size_t dellaRow = 0, group = n;
  bool anyDella = false, sameRows = true;
  for (size_t t = 0; t < nmodels; ++t) {
    if (spec.models[t].sparsify.kind != SparsifyKind::Della) continue;
    const size_t m = dellaRowLength(spec.models[t].sparsify, n);
    if (anyDella && m != dellaRow) sameRows = false;
    anyDella = true;
    dellaRow = m;
  }
  if (anyDella && sameRows && dellaRow > 0 && dellaRow < n) group = std::max<size_t>(1, kDellaGroup / dellaRow) * dellaRow;
  std::unique_lock<std::mutex> keptLock(dellaBuffersMutex(), std::defer_lock);
  std::vector<std::unique_ptr<float[]>> ownProbs(nmodels);
  std::vector<float*> probs(nmodels, nullptr);
  if (anyDella) {
    const bool keep = group <= kDellaGroup && keptLock.try_lock();
    for (size_t t = 0; t < nmodels; ++t) {
      if (spec.models[t].sparsify.kind != SparsifyKind::Della) continue;
      if (keep) {
        std::vector<float>& buffer = dellaBuffers()[t];
        if (buffer.size() < group) buffer.resize(group);
        probs[t] = buffer.data();
      } else {
        ownProbs[t].reset(new float[group]);
        probs[t] = ownProbs[t].get();
      }
    }
  }

  const simd::TileOps& ops = simd::ops();
  std::vector<double> result(nmodels + 1, 0.0);
  pool::workerSlots();
  for (size_t g0 = 0; g0 < n || (n == 0 && g0 == 0); g0 += group) {
    const size_t g1 = std::min(n, g0 + group);
    for (size_t t = 0; t < nmodels && g1 > g0; ++t) {
      const MergeModelSpec& m = spec.models[t];
      if (m.sparsify.kind != SparsifyKind::Della) continue;
      DeltaView dv;
      dv.hasBase = true;
      dv.base = spec.base;
      dv.ft = m.tensor;
      const size_t rowLength = dellaRowLength(m.sparsify, n);
      dellaKeepProbabilities(dv, m.sparsify, g0 / rowLength, g1 / rowLength, probs[t]);
      models[t].keepProb = probs[t];
      models[t].keepProbStart = g0;
    }
    // Chunks of the group (per-element work: the result does not depend on the chunking).
    const size_t tasks = chunkCount(g1 - g0);
    // Each task's counters on cache lines of their own (no false sharing between workers).
    const size_t stride = (nmodels + 1 + 7) / 8 * 8;
    std::vector<uint64_t> counts(tasks * stride, 0);
    pool::parallelFor(tasks, [&](size_t task, unsigned) {
      const Range local = chunkRange(task, g1 - g0);
      const Range r = {g0 + local.begin, g0 + local.end};
      simd::TileBands bands[simd::kMaxModels];
      uint64_t* nonFinite = counts.data() + task * stride;
      for (size_t start = r.begin; start < r.end;) {
        // A tile never crosses a row boundary of per-row rules, so its rules are constants.
        size_t end = std::min(r.end, start + simd::kMergeTile);
        for (size_t t = 0; t < nmodels; ++t)
          if (spec.models[t].sparsify.kind == SparsifyKind::Bands && rowLengths[t] > 0)
            end = std::min(end, (start / rowLengths[t] + 1) * rowLengths[t]);
        for (size_t t = 0; t < nmodels; ++t)
          if (spec.models[t].sparsify.kind == SparsifyKind::Bands)
            resolveBands(spec.models[t].sparsify, rowLengths[t], start, end - start, bands[t]);
        ops.mergeTile(job, bands, start, end - start, nonFinite);
        start = end;
      }
    });
    for (size_t task = 0; task < tasks; ++task)
      for (size_t t = 0; t <= nmodels; ++t) result[t] += double(counts[task * stride + t]);
    if (n == 0) break;
  }
  return result;
}

std::vector<double> linearCombine(const std::vector<TensorView>& inputs, const double* coeffs, uint8_t* out,
                                  DType outDtype) {
  if (!isOutputDType(outDtype)) throw std::invalid_argument("linearCombine: cannot encode to this dtype");
  const size_t ninputs = inputs.size();
  const size_t n = ninputs > 0 ? inputs[0].n : 0;
  std::vector<simd::LinearTileInput> tileInputs(ninputs);
  for (size_t i = 0; i < ninputs; ++i) {
    if (inputs[i].n != n) throw std::invalid_argument("linearCombine: every input must have the same element count");
    tileInputs[i] = {inputs[i].data, inputs[i].dtype, float(coeffs[i])};
  }
  simd::LinearTileJob job{tileInputs.data(), ninputs, out, outDtype};
  const simd::TileOps& ops = simd::ops();
  const size_t tasks = chunkCount(n);
  std::vector<uint64_t> counts(tasks * ninputs, 0);
  pool::workerSlots();
  pool::parallelFor(tasks, [&](size_t task, unsigned) {
    const Range r = chunkRange(task, n);
    for (size_t start = r.begin; start < r.end; start += simd::kMergeTile)
      ops.linearTile(job, start, std::min(simd::kMergeTile, r.end - start), counts.data() + task * ninputs);
  });
  std::vector<double> result(ninputs, 0.0);
  for (size_t task = 0; task < tasks; ++task)
    for (size_t i = 0; i < ninputs; ++i) result[i] += double(counts[task * ninputs + i]);
  return result;
}

}  // namespace dppa
