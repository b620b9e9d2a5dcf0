// dppa_cuda_vs_cpu: the CUDA kernels (through dppa::cuda::*, the mirror of dppa/kernels.h)
// against the project's CPU kernels (dppa::*, every SIMD path this CPU has), bit for bit, on
// awkward sizes; then an end-to-end DPPA-style merge timed on both. Built only where the CPU
// kernel sources exist next to this folder. Exit: 0 all equal (or "skipped: no GPU"), 1 not.
//
//   dppa_cuda_vs_cpu [--require-gpu] [--e2e-elements N]
//   dppa_cuda_vs_cpu --ref      the plain reference (not the GPU) vs the CPU kernels; no GPU needed
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "dppa/kernels.h"
#include "dppa/pool.h"
#include "dppa_cuda.h"
#include "reference.h"

// The plain reference (reference.cpp) behind the dppa::cuda signatures: `--ref` compares it
// with the CPU kernels, which needs no GPU (and makes "GPU == reference" imply "GPU == CPU").
namespace refapi {
using namespace dppa;
namespace r = dppa::cuda::ref;
dppa_cuda_tensor toC(const TensorView& t) { return {t.data, uint64_t(t.n), int32_t(t.dtype)}; }
dppa_cuda_delta_input toC(const DeltaView& d) {
  dppa_cuda_delta_input x{};
  if (d.hasBase) x.base = toC(d.base);
  x.ft = toC(d.ft);
  return x;
}
struct SpC {
  dppa_cuda_sparsify sp{};
  std::vector<int64_t> cut;
  explicit SpC(const SparsifySpec& s) {
    if (s.kind != SparsifyKind::Dense && s.kind != SparsifyKind::Bands && s.kind != SparsifyKind::Random)
      throw std::invalid_argument("reference: unsupported sparsify kind");
    sp.kind = s.kind == SparsifyKind::Dense ? DPPA_CUDA_SPARSIFY_DENSE
              : s.kind == SparsifyKind::Bands ? DPPA_CUDA_SPARSIFY_BANDS : DPPA_CUDA_SPARSIFY_RANDOM;
    sp.factor = s.factor;
    sp.density = s.density;
    sp.rescale = s.rescale;
    sp.stream = {s.stream.seedLo, s.stream.seedHi, s.stream.streamLo, s.stream.streamHi};
    if (s.kind == SparsifyKind::Bands) {
      const size_t e = (s.rules.rows ? s.rules.rows : 1) * s.rules.nbands;
      for (size_t i = 0; i < e; ++i) cut.push_back(int64_t(s.rules.cutoff[i]));
      sp.rules = {s.rules.bits, cut.data(), int32_t(s.rules.nbands), uint64_t(s.rules.rows)};
      sp.band_factor = s.bandFactor;
    }
  }
};
void decode(const TensorView& t, float* out) {
  for (size_t i = 0; i < t.n; ++i) out[i] = r::decode(t.data, int32_t(t.dtype), i);
}
void encode(const float* src, size_t n, DType dt, uint8_t* out) { r::encode(src, n, int32_t(dt), out); }
void delta(const DeltaView& in, float* out) {
  const auto d = toC(in);
  for (size_t i = 0; i < in.ft.n; ++i) out[i] = r::deltaAt(d, i);
}
AbsStatsResult absStats(const DeltaView& in, const double* thr, size_t nthr) {
  const auto x = r::absStats(toC(in), thr, int(nthr));
  AbsStatsResult o;
  o.sumAbs = x.sumTiled;
  for (auto c : x.countsAbove) o.countsAbove.push_back(double(c));
  o.nonFinite = double(x.nonFinite);
  return o;
}
std::vector<double> absHistogram(const DeltaView& in, uint32_t shift, uint32_t bins, uint32_t mask, uint32_t value) {
  const auto h = r::absHistogram(toC(in), shift, bins, mask, value);
  return std::vector<double>(h.begin(), h.end());
}
BandRules selectThresholds(const DeltaView& in, const double* ks, size_t nks, SelectRule rule, size_t rows) {
  std::vector<uint64_t> k(ks, ks + nks);
  const size_t e = (rows ? rows : 1) * nks;
  BandRules o;
  o.rows = rows;
  o.bits.resize(e);
  std::vector<int64_t> c(e);
  r::selectThresholds(toC(in), k.data(), int(nks), rule == SelectRule::Drop ? 1 : 0, rows, o.bits.data(), c.data());
  o.cutoff.assign(c.begin(), c.end());
  return o;
}
SparsifyStatsResult sparsifyStats(const DeltaView& in, const SparsifySpec& s) {
  const SpC sp(s);
  SparsifyStatsResult o;
  uint64_t k = 0;
  r::sparsifyStats(toC(in), sp.sp, &o.sumAbs, &o.sumAbsKept, &k);
  o.kept = double(k);
  return o;
}
void randomUniform(const RandomStream& s, uint64_t start, float* out, size_t n) {
  const dppa_cuda_random_stream rs{s.seedLo, s.seedHi, s.streamLo, s.streamHi};
  for (size_t i = 0; i < n; ++i) out[i] = r::uniform(rs, start + i);
}
std::vector<double> mergeTensor(const MergeSpec& spec) {
  std::vector<SpC> sps;
  sps.reserve(spec.models.size());
  for (auto& m : spec.models) sps.emplace_back(m.sparsify);
  std::vector<dppa_cuda_merge_model> models(spec.models.size());
  for (size_t t = 0; t < models.size(); ++t)
    models[t] = {toC(spec.models[t].tensor), spec.models[t].weight, sps[t].sp};
  dppa_cuda_merge_job job{toC(spec.base), models.data(), int32_t(models.size()),
                          spec.consensus == Consensus::Sum ? 1 : spec.consensus == Consensus::Count ? 2 : 0,
                          spec.normalize ? 1 : 0, spec.lambda, spec.out, int32_t(spec.outDtype)};
  const auto nf = r::mergeTensor(job);
  return std::vector<double>(nf.begin(), nf.end());
}
}  // namespace refapi

namespace {

int gChecks = 0, gFailures = 0;

void record(const std::string& what, size_t n, bool ok, const std::string& note = "") {
  ++gChecks;
  if (!ok) ++gFailures;
  std::printf("%-58s n=%-7zu %s %s\n", what.c_str(), n, ok ? "ok" : "MISMATCH", note.c_str());
}

template <class T>
bool sameBits(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0);
}

std::vector<uint8_t> randomBytes(std::mt19937_64& rng, size_t n) {
  std::vector<uint8_t> v(n);
  for (auto& b : v) b = uint8_t(rng());
  return v;
}

// BF16 values with many exact ties.
std::vector<uint8_t> tiedBF16(std::mt19937_64& rng, size_t n) {
  std::vector<uint8_t> v(2 * n);
  for (size_t i = 0; i < n; ++i) {
    const float f = float(int(rng() % 97) - 48) / 1024.0f;
    uint32_t u;
    std::memcpy(&u, &f, 4);
    const uint16_t h = uint16_t(u >> 16);
    std::memcpy(&v[2 * i], &h, 2);
  }
  return v;
}

template <class F>
std::string attempt(F&& f) {
  try {
    f();
    return "";
  } catch (const std::exception& e) {
    return e.what();
  }
}

bool gRef = false;
#define OTHER(f) (gRef ? refapi::f : dppa::cuda::f)

void compareAll(size_t n, size_t rows, std::mt19937_64& rng, const std::string& path) {
  using namespace dppa;
  const std::string tag = " [" + path + "]";
  for (int d = 0; d < 6; ++d) {
    const DType dt = DType(d);
    auto raw = randomBytes(rng, n * dtypeSize(dt));
    TensorView t{raw.data(), n, dt};
    std::vector<float> c(n), g(n);
    decode(t, c.data());
    const std::string e = attempt([&] { OTHER(decode)(t, g.data()); });
    record(std::string("decode ") + dtypeName(dt) + tag, n, e.empty() && sameBits(c, g), e);
  }
  {
    auto raw = randomBytes(rng, 4 * n);
    const float* src = reinterpret_cast<const float*>(raw.data());
    for (DType dt : {DType::F32, DType::F16, DType::BF16}) {
      std::vector<uint8_t> c(n * dtypeSize(dt)), g(c.size());
      encode(src, n, dt, c.data());
      const std::string e = attempt([&] { OTHER(encode)(src, n, dt, g.data()); });
      record(std::string("encode ") + dtypeName(dt) + tag, n, e.empty() && c == g, e);
    }
  }
  auto base = tiedBF16(rng, n), ft = tiedBF16(rng, n), ft1 = tiedBF16(rng, n), ft2 = tiedBF16(rng, n);
  DeltaView in;
  in.hasBase = true;
  in.base = {base.data(), n, DType::BF16};
  in.ft = {ft.data(), n, DType::BF16};
  {
    std::vector<float> c(n), g(n);
    delta(in, c.data());
    const std::string e = attempt([&] { OTHER(delta)(in, g.data()); });
    record("delta" + tag, n, e.empty() && sameBits(c, g), e);
  }
  {
    const double thr[3] = {0.0, 0.01, 0.03};
    AbsStatsResult c = absStats(in, thr, 3), g;
    const std::string e = attempt([&] { g = OTHER(absStats)(in, thr, 3); });
    char note[96];
    std::snprintf(note, sizeof note, "sum cpu %.17g gpu %.17g", c.sumAbs, g.sumAbs);
    record("absStats" + tag, n, e.empty() && c.sumAbs == g.sumAbs && c.countsAbove == g.countsAbove && c.nonFinite == g.nonFinite,
           e.empty() ? note : e);
  }
  {
    std::vector<double> c = absHistogram(in, 16, 65536, 0, 0), g;
    const std::string e = attempt([&] { g = OTHER(absHistogram)(in, 16, 65536, 0, 0); });
    record("absHistogram" + tag, n, e.empty() && c == g, e);
  }
  const double ks[5] = {0, n ? 1.0 : 0.0, double(n / 10), double(n / 2), double(n)};
  for (SelectRule rule : {SelectRule::Index, SelectRule::Drop}) {
    BandRules c = selectThresholds(in, ks, 5, rule, 0), g;
    const std::string e = attempt([&] { g = OTHER(selectThresholds)(in, ks, 5, rule, 0); });
    record(std::string("selectThresholds ") + (rule == SelectRule::Index ? "index" : "drop") + tag, n,
           e.empty() && c.bits == g.bits && c.cutoff == g.cutoff, e);
  }
  if (rows > 1) {
    const size_t cols = n / rows;
    const double rk[4] = {0, 1, double(cols / 3), double(cols)};
    BandRules c = selectThresholds(in, rk, 4, SelectRule::Index, rows), g;
    const std::string e = attempt([&] { g = OTHER(selectThresholds)(in, rk, 4, SelectRule::Index, rows); });
    record("selectThresholds rows" + tag, n, e.empty() && c.bits == g.bits && c.cutoff == g.cutoff, e);
  }
  const double bandKs[2] = {double(n / 10), double(n / 2)};
  BandRules rules = selectThresholds(in, bandKs, 2, SelectRule::Index, 0);
  const double factors[2] = {1.8, 1.0};
  SparsifySpec bands;
  bands.kind = SparsifyKind::Bands;
  bands.rules = {rules.bits.data(), rules.cutoff.data(), 2, 0};
  bands.bandFactor = factors;
  SparsifySpec dare;
  dare.kind = SparsifyKind::Random;
  dare.stream = {11, 22, 33, 44};
  dare.density = 0.3;
  dare.rescale = 1 / 0.3;
  SparsifySpec dense;
  dense.factor = 0.7;
  for (const SparsifySpec* sp : {&bands, &dare}) {
    SparsifyStatsResult c = sparsifyStats(in, *sp), g;
    const std::string e = attempt([&] { g = OTHER(sparsifyStats)(in, *sp); });
    record(std::string("sparsifyStats ") + (sp == &bands ? "bands" : "random") + tag, n,
           e.empty() && c.sumAbs == g.sumAbs && c.sumAbsKept == g.sumAbsKept && c.kept == g.kept, e);
  }
  {
    std::vector<float> c(n), g(n);
    randomUniform(dare.stream, 3, c.data(), n);
    const std::string e = attempt([&] { OTHER(randomUniform)(dare.stream, 3, g.data(), n); });
    record("randomUniform" + tag, n, e.empty() && sameBits(c, g), e);
  }
  for (Consensus cs : {Consensus::None, Consensus::Sum, Consensus::Count}) {
    for (bool normalize : {false, true}) {
      for (DType od : {DType::BF16, DType::F32}) {
        MergeSpec spec;
        spec.base = in.base;
        spec.models = {{{ft.data(), n, DType::BF16}, 1.0, bands},
                       {{ft1.data(), n, DType::BF16}, -0.5, dare},
                       {{ft2.data(), n, DType::BF16}, 0.8, dense}};
        spec.consensus = cs;
        spec.normalize = normalize;
        spec.lambda = 0.9;
        spec.outDtype = od;
        std::vector<uint8_t> c(n * dtypeSize(od) + 1, 0xAB), g = c;
        spec.out = c.data();
        std::vector<double> nc = mergeTensor(spec), ng;
        spec.out = g.data();
        const std::string e = attempt([&] { ng = OTHER(mergeTensor)(spec); });
        static const char* names[] = {"none", "sum", "count"};
        record(std::string("mergeTensor ") + names[int(cs)] + (normalize ? " norm" : "") + " -> " + dtypeName(od) + tag, n,
               e.empty() && c == g && nc == ng, e);
      }
    }
  }
}

double e2e(bool gpu, size_t tensors, size_t per, std::vector<std::vector<uint8_t>>& T,
           std::vector<std::vector<uint8_t>>& out) {
  using namespace dppa;
  const auto t0 = std::chrono::steady_clock::now();
  const double ks[2] = {double(per / 10), double(per / 5)};
  const double factors[2] = {1.8, 1.0};
  for (size_t t = 0; t < tensors; ++t) {
    std::vector<BandRules> rules(3);
    MergeSpec spec;
    spec.base = {T[t * 4].data(), per, DType::BF16};
    for (int j = 0; j < 3; ++j) {
      DeltaView in;
      in.hasBase = true;
      in.base = spec.base;
      in.ft = {T[t * 4 + 1 + j].data(), per, DType::BF16};
      rules[j] = gpu ? cuda::selectThresholds(in, ks, 2, SelectRule::Index, 0) : selectThresholds(in, ks, 2, SelectRule::Index, 0);
      SparsifySpec sp;
      sp.kind = SparsifyKind::Bands;
      sp.rules = {rules[j].bits.data(), rules[j].cutoff.data(), 2, 0};
      sp.bandFactor = factors;
      spec.models.push_back({in.ft, 1.0, sp});
    }
    spec.consensus = Consensus::Sum;
    spec.outDtype = DType::BF16;
    spec.out = out[t].data();
    if (gpu)
      cuda::mergeTensor(spec);
    else
      mergeTensor(spec);
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  bool requireGpu = false;
  size_t e2eN = size_t(1) << 25;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--require-gpu") requireGpu = true;
    else if (a == "--e2e-elements" && i + 1 < argc) e2eN = std::strtoull(argv[++i], nullptr, 10);
  }
  for (int i = 1; i < argc; ++i)
    if (std::string(argv[i]) == "--ref") gRef = true;
  std::string desc;
  if (gRef) {
    std::mt19937_64 rng(99);
    const size_t sizes[][2] = {{0, 0}, {1, 1}, {7, 7}, {4097, 17}, {37 * 129, 37}, {131075, 5}};
    for (const auto& path : dppa::availableSimd()) {
      dppa::setSimd(path);
      for (auto& s : sizes) compareAll(s[0], s[1], rng, path + " vs reference");
    }
    std::printf("\n%d checks, %d mismatches (plain reference vs CPU kernels)\n", gChecks, gFailures);
    return gFailures ? 1 : 0;
  }
  if (!dppa::cuda::available(&desc)) {
    std::printf("skipped: no GPU (%s)\n", desc.c_str());
    return requireGpu ? 2 : 0;
  }
  std::printf("GPU: %s; CPU kernels: SIMD paths", desc.c_str());
  for (auto& p : dppa::availableSimd()) std::printf(" %s", p.c_str());
  std::printf(", %u threads\n", dppa::pool::threads());
  std::mt19937_64 rng(99);
  const size_t sizes[][2] = {{0, 0}, {1, 1}, {7, 7}, {4097, 17}, {37 * 129, 37}, {131075, 5}};
  const std::string initial = dppa::activeSimd();
  for (const auto& path : dppa::availableSimd()) {
    dppa::setSimd(path);
    for (uint64_t chunk : {uint64_t(0), uint64_t(4096)}) {
      dppa_cuda_set_chunk_elements(chunk);
      for (auto& s : sizes) compareAll(s[0], s[1], rng, path + (chunk ? ", gpu chunk 4096" : ""));
    }
  }
  dppa_cuda_set_chunk_elements(0);
  dppa::setSimd(initial);
  std::printf("\n%d checks, %d mismatches (GPU vs CPU kernels)\n", gChecks, gFailures);

  // End to end: 4 tensors, 3 fine-tunes each, 2 nested bands per model, TIES consensus, BF16.
  const size_t tensors = 4, per = e2eN / tensors;
  std::vector<std::vector<uint8_t>> T;
  for (size_t t = 0; t < tensors * 4; ++t) T.push_back(tiedBF16(rng, per));
  std::vector<std::vector<uint8_t>> outG(tensors, std::vector<uint8_t>(2 * per)), outC = outG;
  double first = 0, g = 0, c = 0;
  std::string e = attempt([&] {
    first = e2e(true, tensors, per, T, outG);
    g = e2e(true, tensors, per, T, outG);
  });
  c = e2e(false, tensors, per, T, outC);
  const bool same = e.empty() && outG == outC;
  if (!same) ++gFailures;
  const double bytes = double(tensors) * per * 2 * 5;
  std::printf("\ne2e DPPA-style merge (%zu x %zu elements, select + merge from host memory):\n", tensors, per);
  std::printf("  GPU  %.3f s (first run %.3f s)  %.2f GB/s\n", g, first, bytes / g / 1e9);
  std::printf("  CPU  %.3f s (dppa kernels, %s, %u threads)  %.2f GB/s\n", c, dppa::activeSimd().c_str(),
              dppa::pool::threads(), bytes / c / 1e9);
  std::printf("  GPU/CPU speed-up %.2fx; outputs %s %s\n", c / g, same ? "identical" : "DIFFER", e.c_str());
  std::printf("%s\n", gFailures ? "FAILED" : "PASSED");
  return gFailures ? 1 : 0;
}
