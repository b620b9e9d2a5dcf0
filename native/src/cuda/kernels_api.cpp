// The CPU kernel API (dppa/kernels.h) on the GPU: converts its structs to the plain C structs of
// dppa_cuda.h and calls the shared CudaMerger through the C API (one device context per process).
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "dppa_cuda.h"

namespace dppa {
namespace cuda {
namespace {

constexpr size_t kErr = 1024;

void check(int rc, const char* err, const char* what) {
  if (rc == 0) return;
  const std::string msg = std::string(what) + " (cuda): " + err;
  if (rc == 1) throw std::runtime_error(msg);  // unavailable
  throw std::runtime_error(msg);
}

dppa_cuda_tensor toC(const TensorView& t) { return {t.data, uint64_t(t.n), int32_t(t.dtype)}; }

dppa_cuda_delta_input toC(const DeltaView& d) {
  dppa_cuda_delta_input r{};
  if (d.hasBase) r.base = toC(d.base);
  r.ft = toC(d.ft);
  return r;
}

int64_t cutoffIndex(double c) {
  if (!(c >= -1.0) || c != std::floor(c)) throw std::invalid_argument("band cutoff must be an integer >= -1");
  return int64_t(c);
}

// Owns the int64 copies of a SparsifySpec's double cutoffs.
struct SparsifyC {
  dppa_cuda_sparsify sp{};
  std::vector<int64_t> cutoff;
  SparsifyC(const SparsifySpec& s) {
    sp.factor = s.factor;
    sp.density = s.density;
    sp.rescale = s.rescale;
    sp.stream = {s.stream.seedLo, s.stream.seedHi, s.stream.streamLo, s.stream.streamHi};
    switch (s.kind) {
      case SparsifyKind::Dense: sp.kind = DPPA_CUDA_SPARSIFY_DENSE; break;
      case SparsifyKind::Random: sp.kind = DPPA_CUDA_SPARSIFY_RANDOM; break;
      case SparsifyKind::Bands: {
        sp.kind = DPPA_CUDA_SPARSIFY_BANDS;
        const size_t entries = (s.rules.rows ? s.rules.rows : 1) * s.rules.nbands;
        cutoff.resize(entries);
        for (size_t i = 0; i < entries; ++i) cutoff[i] = cutoffIndex(s.rules.cutoff[i]);
        sp.rules = {s.rules.bits, cutoff.data(), int32_t(s.rules.nbands), uint64_t(s.rules.rows)};
        sp.band_factor = s.bandFactor;
        break;
      }
      default:
        // A kind the CUDA kernels do not implement (e.g. DELLA's MAGPRUNE): the caller falls
        // back to the CPU kernels.
        throw std::invalid_argument("sparsify kind " + std::to_string(int(s.kind)) + " is not supported on CUDA");
    }
  }
};

}  // namespace

bool available(std::string* description) {
  char buf[512];
  const int ok = dppa_cuda_available(buf, sizeof buf);
  if (description) *description = buf;
  return ok == 1;
}

bool pin(void* p, size_t bytes, std::string* why) {
  char buf[512];
  const int rc = dppa_cuda_pin(p, bytes, buf, sizeof buf);
  if (why) *why = buf;
  return rc == 0;
}

void unpin(void* p) { dppa_cuda_unpin(p); }

void decode(const TensorView& src, float* out) {
  char err[kErr];
  const dppa_cuda_tensor t = toC(src);
  check(dppa_cuda_decode(&t, out, err, kErr), err, "decode");
}

void encode(const float* src, size_t n, DType outDtype, uint8_t* out) {
  char err[kErr];
  check(dppa_cuda_encode(src, n, int32_t(outDtype), out, err, kErr), err, "encode");
}

void delta(const DeltaView& in, float* out) {
  char err[kErr];
  const auto d = toC(in);
  check(dppa_cuda_delta(&d, out, err, kErr), err, "delta");
}

AbsStatsResult absStats(const DeltaView& in, const double* thresholds, size_t nthresholds) {
  char err[kErr];
  const auto d = toC(in);
  AbsStatsResult r;
  r.countsAbove.assign(nthresholds, 0.0);
  check(dppa_cuda_abs_stats(&d, thresholds, int32_t(nthresholds), &r.sumAbs, r.countsAbove.data(), &r.nonFinite, err,
                            kErr),
        err, "absStats");
  return r;
}

std::vector<double> absHistogram(const DeltaView& in, uint32_t shift, uint32_t bins, uint32_t prefixMask,
                                 uint32_t prefixValue) {
  char err[kErr];
  const auto d = toC(in);
  if (bins == 0 || bins > 65536) throw std::invalid_argument("absHistogram: bins must be a power of two <= 65536");
  std::vector<double> out(bins);
  check(dppa_cuda_abs_histogram(&d, shift, bins, prefixMask, prefixValue, out.data(), err, kErr), err, "absHistogram");
  return out;
}

SparsifyStatsResult sparsifyStats(const DeltaView& in, const SparsifySpec& sparsify) {
  char err[kErr];
  const auto d = toC(in);
  const SparsifyC sp(sparsify);
  SparsifyStatsResult r;
  check(dppa_cuda_sparsify_stats(&d, &sp.sp, &r.sumAbs, &r.sumAbsKept, &r.kept, err, kErr), err, "sparsifyStats");
  return r;
}

BandRules selectThresholds(const DeltaView& in, const double* ks, size_t nks, SelectRule rule, size_t rows) {
  char err[kErr];
  const auto d = toC(in);
  std::vector<uint64_t> k(nks);
  for (size_t i = 0; i < nks; ++i) {
    if (!(ks[i] >= 0) || ks[i] != std::floor(ks[i])) throw std::invalid_argument("selectThresholds: k must be a non-negative integer");
    k[i] = uint64_t(ks[i]);
  }
  const size_t entries = (rows ? rows : 1) * nks;
  BandRules r;
  r.rows = rows;
  r.bits.resize(entries);
  std::vector<int64_t> cut(entries);
  check(dppa_cuda_select_thresholds(&d, k.data(), int32_t(nks), rule == SelectRule::Drop ? 1 : 0, rows, r.bits.data(),
                                    cut.data(), err, kErr),
        err, "selectThresholds");
  r.cutoff.assign(cut.begin(), cut.end());
  return r;
}

std::vector<double> mergeTensor(const MergeSpec& spec) {
  char err[kErr];
  std::vector<SparsifyC> sps;
  sps.reserve(spec.models.size());
  for (const auto& m : spec.models) sps.emplace_back(m.sparsify);
  std::vector<dppa_cuda_merge_model> models(spec.models.size());
  for (size_t t = 0; t < models.size(); ++t) {
    models[t].tensor = toC(spec.models[t].tensor);
    models[t].weight = spec.models[t].weight;
    models[t].sparsify = sps[t].sp;
  }
  dppa_cuda_merge_job job{};
  job.base = toC(spec.base);
  job.models = models.data();
  job.nmodels = int32_t(models.size());
  job.consensus = spec.consensus == Consensus::Sum ? DPPA_CUDA_CONSENSUS_SUM
                  : spec.consensus == Consensus::Count ? DPPA_CUDA_CONSENSUS_COUNT
                                                       : DPPA_CUDA_CONSENSUS_NONE;
  job.normalize = spec.normalize ? 1 : 0;
  job.lambda = spec.lambda;
  job.out = spec.out;
  job.out_dtype = int32_t(spec.outDtype);
  std::vector<double> nonFinite(models.size() + 1);
  check(dppa_cuda_merge_tensor(&job, nonFinite.data(), err, kErr), err, "mergeTensor");
  return nonFinite;
}

void randomUniform(const RandomStream& stream, uint64_t start, float* out, size_t n) {
  char err[kErr];
  const dppa_cuda_random_stream s{stream.seedLo, stream.seedHi, stream.streamLo, stream.streamHi};
  check(dppa_cuda_random_uniform(&s, start, out, n, err, kErr), err, "randomUniform");
}

}  // namespace cuda
}  // namespace dppa
