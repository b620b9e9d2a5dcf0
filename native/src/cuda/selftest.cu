// dppa_cuda_selftest: the CUDA kernels against the plain C++ reference (reference.cpp) on
// random data of awkward sizes, with the automatic chunk size and with tiny chunks (so every
// multi-chunk path runs). Bit-identical results are required everywhere, sums included (both
// follow the documented tile order); the distance of Σ|δ| from a naive left-to-right sum is
// printed for information.
//
//   dppa_cuda_selftest                 checks; exit 0 = all match, 1 = mismatch, 0 + "skipped: no GPU"
//   dppa_cuda_selftest --require-gpu   the same, but no GPU is a failure (exit 2)
//   dppa_cuda_selftest --bench [--elements N] [--e2e-elements N]
//                                      checks, then kernel GB/s vs a device-to-device copy, then an
//                                      end-to-end merge (GPU vs the reference on the CPU, 1 thread)
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <cuda_runtime.h>

#include "dppa_cuda.h"
#include "kernels.cuh"
#include "reference.h"

using namespace dppa::cuda;

namespace {

int gFailures = 0;
int gChecks = 0;

struct Row {
  std::string what, size, chunk, result, note;
};
std::vector<Row> gRows;

void record(const std::string& what, uint64_t n, const std::string& chunk, bool ok, const std::string& note = "") {
  ++gChecks;
  if (!ok) ++gFailures;
  gRows.push_back({what, std::to_string(n), chunk, ok ? "ok" : "MISMATCH", note});
  if (!ok) std::printf("MISMATCH: %s n=%llu chunk=%s %s\n", what.c_str(), (unsigned long long)n, chunk.c_str(), note.c_str());
}

void printTable(const std::vector<Row>& rows, const char* title) {
  size_t w[5] = {5, 4, 5, 6, 4};
  for (auto& r : rows) {
    w[0] = std::max(w[0], r.what.size());
    w[1] = std::max(w[1], r.size.size());
    w[2] = std::max(w[2], r.chunk.size());
    w[3] = std::max(w[3], r.result.size());
    w[4] = std::max(w[4], r.note.size());
  }
  std::printf("\n%s\n", title);
  std::printf("%-*s  %*s  %-*s  %-*s  %s\n", int(w[0]), "check", int(w[1]), "n", int(w[2]), "chunk", int(w[3]), "result",
              "note");
  for (auto& r : rows)
    std::printf("%-*s  %*s  %-*s  %-*s  %s\n", int(w[0]), r.what.c_str(), int(w[1]), r.size.c_str(), int(w[2]),
                r.chunk.c_str(), int(w[3]), r.result.c_str(), r.note.c_str());
}

bool sameBytes(const void* a, const void* b, size_t n, std::string* note) {
  if (n == 0 || std::memcmp(a, b, n) == 0) return true;
  const uint8_t* x = static_cast<const uint8_t*>(a);
  const uint8_t* y = static_cast<const uint8_t*>(b);
  size_t i = 0;
  while (x[i] == y[i]) ++i;
  char buf[96];
  std::snprintf(buf, sizeof buf, "first differing byte %zu: %02x vs %02x", i, x[i], y[i]);
  *note = buf;
  return false;
}

// Distance in units in the last place between two doubles of the same sign.
double ulpDistance(double a, double b) {
  if (a == b) return 0;
  int64_t ia, ib;
  std::memcpy(&ia, &a, 8);
  std::memcpy(&ib, &b, 8);
  return double(std::llabs(ia - ib));
}

// Values with many exact ties (multiples of 2^-10 in a narrow range), some zeros, encoded.
std::vector<uint8_t> tiedTensor(std::mt19937_64& rng, uint64_t n, int32_t dtype, bool specials) {
  std::vector<float> f(n);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (uint64_t i = 0; i < n; ++i) {
    float v = std::round(nd(rng) * 24.0f) / 1024.0f;
    if (rng() % 17 == 0) v = 0.0f;
    f[i] = v;
  }
  if (specials && n > 6) {
    f[n / 3] = INFINITY;
    f[n / 2] = -0.0f;
    f[n - 1] = NAN;
  }
  std::vector<uint8_t> out(n * dppa_cuda_dtype_size(dtype));
  if (dtype == DPPA_CUDA_F64) {
    for (uint64_t i = 0; i < n; ++i) {
      const double d = f[i];
      std::memcpy(out.data() + 8 * i, &d, 8);
    }
  } else if (dtype == DPPA_CUDA_F8_E4M3 || dtype == DPPA_CUDA_F8_E5M2) {
    for (uint64_t i = 0; i < n; ++i) out[i] = uint8_t(rng());
  } else {
    ref::encode(f.data(), n, dtype, out.data());
  }
  return out;
}

std::vector<uint8_t> randomBytes(std::mt19937_64& rng, size_t bytes) {
  std::vector<uint8_t> v(bytes);
  for (auto& b : v) b = uint8_t(rng());
  return v;
}

const char* dtName(int32_t d) {
  static const char* names[] = {"F32", "F16", "BF16", "F64", "F8_E4M3", "F8_E5M2"};
  return d >= 0 && d < 6 ? names[d] : "?";
}

// ---- the checks ----------------------------------------------------------------------------

void checkAll(CudaMerger& m, uint64_t n, uint64_t rows, const std::string& chunk, std::mt19937_64& rng) {
  std::string err, note;
  // decode: every dtype, every bit pattern the random bytes hit (NaNs and subnormals included)
  for (int32_t dt = 0; dt < 6; ++dt) {
    auto raw = randomBytes(rng, n * dppa_cuda_dtype_size(dt));
    dppa_cuda_tensor t{raw.data(), n, dt};
    std::vector<float> g(n), r(n);
    err = m.decode(t, g.data());
    for (uint64_t i = 0; i < n; ++i) r[i] = ref::decode(raw.data(), dt, i);
    note.clear();
    record(std::string("decode ") + dtName(dt), n, chunk, err.empty() && sameBytes(g.data(), r.data(), 4 * n, &note),
           err.empty() ? note : err);
  }
  // encode: random float bits (all classes) plus values near rounding boundaries
  {
    std::vector<float> src(n);
    for (uint64_t i = 0; i < n; ++i) {
      uint32_t u = uint32_t(rng());
      if (i % 3 == 1) u = (u & 0x8000FFFFu) | ((0x33u + (u >> 27)) << 23);  // small exponents: f16 subnormals
      std::memcpy(&src[i], &u, 4);
    }
    for (int32_t dt : {DPPA_CUDA_F32, DPPA_CUDA_F16, DPPA_CUDA_BF16}) {
      const size_t es = dppa_cuda_dtype_size(dt);
      std::vector<uint8_t> g(n * es), r(n * es);
      err = m.encode(src.data(), n, dt, g.data());
      ref::encode(src.data(), n, dt, r.data());
      note.clear();
      record(std::string("encode ") + dtName(dt), n, chunk, err.empty() && sameBytes(g.data(), r.data(), g.size(), &note),
             err.empty() ? note : err);
    }
  }
  // δ inputs: base F16 with specials, ft BF16 (mixed dtypes), many ties
  auto base = tiedTensor(rng, n, DPPA_CUDA_F16, true);
  auto ft = tiedTensor(rng, n, DPPA_CUDA_BF16, false);
  dppa_cuda_delta_input in{{base.data(), n, DPPA_CUDA_F16}, {ft.data(), n, DPPA_CUDA_BF16}};
  {
    std::vector<float> g(n), r(n);
    err = m.delta(in, g.data());
    for (uint64_t i = 0; i < n; ++i) r[i] = ref::deltaAt(in, i);
    note.clear();
    record("delta F16/BF16", n, chunk, err.empty() && sameBytes(g.data(), r.data(), 4 * n, &note), err.empty() ? note : err);
  }
  // statistics: sums exact in the documented order, counts exact
  {
    const double thr[3] = {0.0, 0.01, 0.05};
    double sum = -1, counts[3], nf = -1;
    err = m.absStats(in, thr, 3, &sum, counts, &nf);
    auto r = ref::absStats(in, thr, 3);
    bool ok = err.empty();
    ok = ok && (sum == r.sumTiled || (std::isnan(sum) && std::isnan(r.sumTiled))) && nf == double(r.nonFinite);
    for (int j = 0; j < 3; ++j) ok = ok && counts[j] == double(r.countsAbove[j]);
    char buf[128];
    std::snprintf(buf, sizeof buf, "sum %.17g; vs naive order %.0f ulp", sum, ulpDistance(sum, r.sumNaive));
    record("absStats (with Inf/NaN)", n, chunk, ok, err.empty() ? buf : err);
    // finite δ for a meaningful sum
    dppa_cuda_delta_input fin{{nullptr, 0, 0}, {ft.data(), n, DPPA_CUDA_BF16}};
    err = m.absStats(fin, thr, 3, &sum, counts, &nf);
    r = ref::absStats(fin, thr, 3);
    ok = err.empty() && sum == r.sumTiled && nf == double(r.nonFinite);
    for (int j = 0; j < 3; ++j) ok = ok && counts[j] == double(r.countsAbove[j]);
    std::snprintf(buf, sizeof buf, "vs naive order %.0f ulp", ulpDistance(sum, r.sumNaive));
    record("absStats (finite, no base)", n, chunk, ok && ulpDistance(sum, r.sumTiled) <= 1, err.empty() ? buf : err);
  }
  // histograms: first level, and a second level inside the most populated bin
  {
    std::vector<double> g(65536);
    err = m.absHistogram(in, 16, 65536, 0, 0, g.data());
    auto r = ref::absHistogram(in, 16, 65536, 0, 0);
    bool ok = err.empty();
    uint32_t top = 0;
    for (uint32_t b = 0; b < 65536; ++b) {
      ok = ok && g[b] == double(r[b]);
      if (r[b] > r[top]) top = b;
    }
    record("absHistogram hi16", n, chunk, ok, err);
    std::vector<double> g2(256);
    err = m.absHistogram(in, 8, 256, 0xFFFF0000u, top << 16, g2.data());
    auto r2 = ref::absHistogram(in, 8, 256, 0xFFFF0000u, top << 16);
    ok = err.empty();
    for (int b = 0; b < 256; ++b) ok = ok && g2[b] == double(r2[b]);
    record("absHistogram prefix", n, chunk, ok, err);
  }
  // selection: whole tensor and per row, both tie rules
  const uint64_t ks[5] = {0, n ? 1ull : 0ull, n / 10, n / 2, n};
  for (int rule = 0; rule < 2; ++rule) {
    uint32_t gb[5], rb[5];
    int64_t gc[5], rc[5];
    err = m.selectThresholds(in, ks, 5, rule, 0, gb, gc);
    ref::selectThresholds(in, ks, 5, rule, 0, rb, rc);
    bool ok = err.empty();
    for (int b = 0; b < 5; ++b) ok = ok && gb[b] == rb[b] && gc[b] == rc[b];
    record(rule == 0 ? "select (ties: index)" : "select (ties: drop)", n, chunk, ok, err);
  }
  if (rows > 0) {
    const uint64_t cols = n / rows;
    const uint64_t rk[4] = {0, 1, cols / 3, cols};
    for (int rule = 0; rule < 2; ++rule) {
      std::vector<uint32_t> gb(rows * 4), rb(rows * 4);
      std::vector<int64_t> gc(rows * 4), rc(rows * 4);
      err = m.selectThresholds(in, rk, 4, rule, rows, gb.data(), gc.data());
      ref::selectThresholds(in, rk, 4, rule, rows, rb.data(), rc.data());
      record(rule == 0 ? "select rows (index)" : "select rows (drop)", n, chunk,
             err.empty() && gb == rb && gc == rc, err.empty() ? std::to_string(rows) + " rows" : err);
    }
  }
  // band rules for the merge: 2 nested bands (n/10 tight, n/2 loose), plus per-row rules
  uint32_t bandBits[2];
  int64_t bandCut[2];
  const uint64_t bandKs[2] = {n / 10, n / 2};
  ref::selectThresholds(in, bandKs, 2, 0, 0, bandBits, bandCut);
  const double bandFactor[2] = {1.8, 1.0};
  std::vector<uint32_t> rowBits;
  std::vector<int64_t> rowCut;
  if (rows > 0) {
    const uint64_t cols = n / rows;
    const uint64_t rk[2] = {cols / 5, cols / 2};
    rowBits.resize(rows * 2);
    rowCut.resize(rows * 2);
    ref::selectThresholds(in, rk, 2, 0, rows, rowBits.data(), rowCut.data());
  }
  dppa_cuda_sparsify bands{};
  bands.kind = DPPA_CUDA_SPARSIFY_BANDS;
  bands.rules = {bandBits, bandCut, 2, 0};
  bands.band_factor = bandFactor;
  dppa_cuda_sparsify random{};
  random.kind = DPPA_CUDA_SPARSIFY_RANDOM;
  random.stream = {0x12345678u, 0x9abcdef0u, 0x0badf00du, 0xfeedbeefu};
  random.density = 0.3;
  random.rescale = 1.0 / 0.3;
  dppa_cuda_sparsify dense{};
  dense.kind = DPPA_CUDA_SPARSIFY_DENSE;
  dense.factor = 0.7;
  // sparsify statistics
  for (const auto* sp : {&bands, &random}) {
    double s, sk, k;
    err = m.sparsifyStats(in, *sp, &s, &sk, &k);
    double rs, rsk;
    uint64_t rk;
    ref::sparsifyStats(in, *sp, &rs, &rsk, &rk);
    const bool ok = err.empty() && (s == rs || (std::isnan(s) && std::isnan(rs))) &&
                    (sk == rsk || (std::isnan(sk) && std::isnan(rsk))) && k == double(rk);
    record(sp == &bands ? "sparsifyStats bands" : "sparsifyStats random (DARE)", n, chunk, ok, err);
  }
  // the generator
  {
    std::vector<float> g(n), r(n);
    err = m.randomUniform(random.stream, 5, g.data(), n);
    for (uint64_t i = 0; i < n; ++i) r[i] = ref::uniform(random.stream, 5 + i);
    note.clear();
    record("randomUniform", n, chunk, err.empty() && sameBytes(g.data(), r.data(), 4 * n, &note), err.empty() ? note : err);
  }
  // the fused merge: 3 models of different dtypes and sparsifiers, every consensus / normalize / out dtype
  auto ft1 = tiedTensor(rng, n, DPPA_CUDA_F16, false);
  auto ft2 = tiedTensor(rng, n, DPPA_CUDA_F32, n > 100);
  dppa_cuda_merge_model models[3];
  models[0] = {{ft.data(), n, DPPA_CUDA_BF16}, 1.0, bands};
  models[1] = {{ft1.data(), n, DPPA_CUDA_F16}, -0.5, random};
  models[2] = {{ft2.data(), n, DPPA_CUDA_F32}, 0.8, dense};
  for (int variant = 0; variant < (rows > 0 ? 2 : 1); ++variant) {
    if (variant == 1) models[0].sparsify.rules = {rowBits.data(), rowCut.data(), 2, rows};
    for (int consensus = 0; consensus < 3; ++consensus)
      for (int normalize = 0; normalize < 2; ++normalize)
        for (int32_t od : {DPPA_CUDA_F32, DPPA_CUDA_BF16, DPPA_CUDA_F16}) {
          const size_t es = dppa_cuda_dtype_size(od);
          std::vector<uint8_t> g(n * es + 1, 0xCD), r(n * es + 1, 0xCD);
          dppa_cuda_merge_job job{{base.data(), n, DPPA_CUDA_F16}, models, 3, consensus, normalize, 0.9, g.data(), od};
          double nf[4] = {-1, -1, -1, -1};
          err = m.mergeTensor(job, nf);
          job.out = r.data();
          auto rnf = ref::mergeTensor(job);
          bool ok = err.empty();
          for (int t = 0; t < 4; ++t) ok = ok && nf[t] == double(rnf[t]);
          note.clear();
          ok = ok && sameBytes(g.data(), r.data(), g.size(), &note);
          static const char* cn[] = {"none", "sum", "count"};
          const std::string what = std::string("merge ") + (variant ? "row-bands" : "bands") + "/DARE/dense " +
                                   cn[consensus] + (normalize ? " norm" : "") + " -> " + dtName(od);
          record(what, n, chunk, ok, err.empty() ? note : err);
        }
  }
}

bool philoxKnownAnswers() {
  struct Kat {
    uint32_t ctr[4], key[2], out[4];
  } kats[] = {
      {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}},
      {{0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}, {0xffffffffu, 0xffffffffu},
       {0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu}},
      {{0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}, {0xa4093822u, 0x299f31d0u},
       {0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}},
  };
  bool ok = true;
  for (auto& k : kats) {
    uint32_t c[4] = {k.ctr[0], k.ctr[1], k.ctr[2], k.ctr[3]};
    ref::philox(c, k.key);
    for (int j = 0; j < 4; ++j) ok = ok && c[j] == k.out[j];
  }
  return ok;
}

// Host-only sanity of the reference itself (runs without a GPU too).
bool referenceSanity(std::string* why) {
  // f16: every finite pattern decodes and re-encodes to itself; NaNs stay NaN.
  for (uint32_t h = 0; h < 65536; ++h) {
    const uint16_t hv = uint16_t(h);
    const float f = ref::decode(&hv, DPPA_CUDA_F16, 0);
    const uint16_t back = ref::encodeF16(f);
    const bool nan = (hv & 0x7C00) == 0x7C00 && (hv & 0x3FF);
    if (back != (nan ? (hv | 0x200) : hv)) {
      *why = "f16 round trip fails at 0x" + std::to_string(h);
      return false;
    }
    const uint16_t bv = uint16_t(h);
    const float g = ref::decode(&bv, DPPA_CUDA_BF16, 0);
    if (ref::encodeBF16(g) != ((bv & 0x7FFF) > 0x7F80 ? (bv | 0x40) : bv)) {
      *why = "bf16 round trip fails at 0x" + std::to_string(h);
      return false;
    }
  }
  // ties to even
  if (ref::encodeBF16(1.0f + 1.0f / 256) != 0x3F80 || ref::encodeBF16(1.0f + 3.0f / 256) != 0x3F82 ||
      ref::encodeF16(65520.0f) != 0x7C00 || ref::encodeF16(65519.0f) != 0x7BFF || ref::encodeF16(std::ldexp(1.0f, -25)) != 0 ||
      ref::encodeF16(std::ldexp(1.5f, -25)) != 1) {
    *why = "rounding spot checks";
    return false;
  }
  if (!philoxKnownAnswers()) {
    *why = "Philox4x32-10 known-answer vectors (Random123)";
    return false;
  }
  return true;
}

// ---- benchmark -------------------------------------------------------------------------------

struct Timer {
  cudaEvent_t a, b;
  Timer() {
    cudaEventCreate(&a);
    cudaEventCreate(&b);
  }
  ~Timer() {
    cudaEventDestroy(a);
    cudaEventDestroy(b);
  }
  template <class F>
  double ms(F&& f, int reps = 10) {
    f();  // warm-up
    cudaDeviceSynchronize();
    cudaEventRecord(a);
    for (int r = 0; r < reps; ++r) f();
    cudaEventRecord(b);
    cudaEventSynchronize(b);
    float t = 0;
    cudaEventElapsedTime(&t, a, b);
    return double(t) / reps;
  }
};

#define BCK(x)                                                                      \
  do {                                                                              \
    cudaError_t e_ = (x);                                                           \
    if (e_ != cudaSuccess) {                                                        \
      std::printf("bench: %s failed: %s\n", #x, cudaGetErrorString(e_));            \
      std::exit(1);                                                                 \
    }                                                                               \
  } while (0)

int bench(CudaMerger& m, uint64_t n, uint64_t e2eN) {
  std::printf("\nbenchmark: %llu elements per tensor (device-resident kernels), %s\n", (unsigned long long)n,
              m.deviceName().c_str());
  std::mt19937_64 rng(7);
  auto hb = tiedTensor(rng, n, DPPA_CUDA_BF16, false);
  auto h1 = tiedTensor(rng, n, DPPA_CUDA_BF16, false);
  auto h2 = tiedTensor(rng, n, DPPA_CUDA_BF16, false);
  auto h3 = tiedTensor(rng, n, DPPA_CUDA_BF16, false);
  uint8_t *dBase, *d1, *d2, *d3, *dOut;
  float* dF;
  unsigned long long* dCnt;
  double* dTiles;
  BCK(cudaMalloc(&dBase, 2 * n));
  BCK(cudaMalloc(&d1, 2 * n));
  BCK(cudaMalloc(&d2, 2 * n));
  BCK(cudaMalloc(&d3, 2 * n));
  BCK(cudaMalloc(&dOut, 4 * n));
  BCK(cudaMalloc(&dF, 4 * n));
  BCK(cudaMalloc(&dCnt, sizeof(unsigned long long) * DPPA_CUDA_MAX_BANDS * 65536));
  BCK(cudaMalloc(&dTiles, sizeof(double) * (n / kTile + 1)));
  BCK(cudaMemcpy(dBase, hb.data(), 2 * n, cudaMemcpyHostToDevice));
  BCK(cudaMemcpy(d1, h1.data(), 2 * n, cudaMemcpyHostToDevice));
  BCK(cudaMemcpy(d2, h2.data(), 2 * n, cudaMemcpyHostToDevice));
  BCK(cudaMemcpy(d3, h3.data(), 2 * n, cudaMemcpyHostToDevice));
  Timer timer;
  cudaStream_t s = 0;
  struct B {
    std::string name;
    double ms, bytes;
  };
  std::vector<B> res;
  // yardstick: a device-to-device copy of 4n bytes moves 8n bytes
  const double copyMs = timer.ms([&] { cudaMemcpyAsync(dF, dOut, 4 * n, cudaMemcpyDeviceToDevice, s); });
  res.push_back({"cudaMemcpy D2D (yardstick)", copyMs, 8.0 * n});
  res.push_back({"decode BF16->F32", timer.ms([&] { launchDecode(d1, DPPA_CUDA_BF16, n, dF, s); }), 6.0 * n});
  res.push_back({"encode F32->BF16", timer.ms([&] { launchEncode(dF, n, DPPA_CUDA_BF16, dOut, s); }), 6.0 * n});
  const DeltaSrc src{dBase, DPPA_CUDA_BF16, d1, DPPA_CUDA_BF16};
  res.push_back({"delta BF16,BF16->F32", timer.ms([&] { launchDelta(src, n, dF, s); }), 8.0 * n});
  const double thr[2] = {0.01, 0.05};
  res.push_back({"absStats (sum + 2 counts)", timer.ms([&] { launchAbsStats(src, n, thr, 2, dTiles, dCnt, s); }), 4.0 * n});
  const uint32_t zero = 0;
  res.push_back({"histogram hi16, global atomics",
                 timer.ms([&] { launchHistogram(src, n, 16, 65536, 0, &zero, 1, dCnt, s); }), 4.0 * n});
  res.push_back({"histogram hi16, shared-memory variant", timer.ms([&] { launchHistogramHi16Shared(src, n, dCnt, s); }),
                 4.0 * n});
  {
    // the two pass-A variants must agree on a large tensor
    BCK(cudaMemset(dCnt, 0, sizeof(unsigned long long) * 2 * 65536));
    launchHistogram(src, n, 16, 65536, 0, &zero, 1, dCnt, s);
    launchHistogramHi16Shared(src, n, dCnt + 65536, s);
    std::vector<unsigned long long> h(2 * 65536);
    BCK(cudaMemcpy(h.data(), dCnt, sizeof(unsigned long long) * 2 * 65536, cudaMemcpyDeviceToHost));
    const bool same = std::equal(h.begin(), h.begin() + 65536, h.begin() + 65536);
    record("histogram hi16: shared == global atomics", n, "resident", same);
  }
  res.push_back({"randomUniform F32", timer.ms([&] { launchRandomUniform({1, 2, 3, 4}, 0, n, dF, s); }), 4.0 * n});
  // fused merges: 3 models in BF16 -> BF16: (3 + 1) * 2 bytes read + 2 written
  MergeParams p{};
  p.base = dBase;
  p.baseDtype = DPPA_CUDA_BF16;
  p.nmodels = 3;
  p.lambda = 1.0f;
  p.outDtype = DPPA_CUDA_BF16;
  const uint8_t* ds[3] = {d1, d2, d3};
  for (int t = 0; t < 3; ++t) {
    p.models[t].data = ds[t];
    p.models[t].dtype = DPPA_CUDA_BF16;
    p.models[t].weight = 1.0f;
    p.models[t].sp.kind = DPPA_CUDA_SPARSIFY_DENSE;
    p.models[t].sp.factor = 1.0f;
  }
  res.push_back({"merge x3 dense, none", timer.ms([&] { launchMerge(p, 0, n, dOut, dCnt, s); }), 8.0 * n});
  p.consensus = DPPA_CUDA_CONSENSUS_SUM;
  p.normalize = 1;
  res.push_back({"merge x3 dense, sum+normalize", timer.ms([&] { launchMerge(p, 0, n, dOut, dCnt, s); }), 8.0 * n});
  uint32_t* dBits;
  int64_t* dCut;
  BCK(cudaMalloc(&dBits, 8));
  BCK(cudaMalloc(&dCut, 16));
  const uint32_t bb[2] = {0x3D000000u, 0x3C000000u};
  const int64_t bc[2] = {int64_t(n / 3), -1};
  BCK(cudaMemcpy(dBits, bb, 8, cudaMemcpyHostToDevice));
  BCK(cudaMemcpy(dCut, bc, 16, cudaMemcpyHostToDevice));
  for (int t = 0; t < 3; ++t) {
    auto& sp = p.models[t].sp;
    if (t == 1) {
      sp.kind = DPPA_CUDA_SPARSIFY_RANDOM;
      sp.stream = {9, 8, 7, 6};
      sp.density = 0.3;
      sp.rescale = 3.3f;
    } else {
      sp.kind = DPPA_CUDA_SPARSIFY_BANDS;
      sp.nbands = 2;
      sp.bits = dBits;
      sp.cutoff = dCut;
      sp.bandFactor[0] = 1.8f;
      sp.bandFactor[1] = 1.0f;
    }
  }
  res.push_back({"merge x3 bands/DARE/bands, sum", timer.ms([&] { launchMerge(p, 0, n, dOut, dCnt, s); }), 8.0 * n});
  BCK(cudaGetLastError());
  BCK(cudaDeviceSynchronize());
  const double copyGBs = 8.0 * n / (copyMs * 1e6);
  std::vector<Row> rows;
  for (auto& b : res) {
    const double gbs = b.bytes / (b.ms * 1e6);
    char t[32], g[32], r[32];
    std::snprintf(t, sizeof t, "%.3f ms", b.ms);
    std::snprintf(g, sizeof g, "%.0f GB/s", gbs);
    std::snprintf(r, sizeof r, "%.2f x copy", gbs / copyGBs);
    rows.push_back({b.name, std::to_string(n), t, g, r});
  }
  for (void* ptr : {(void*)dBase, (void*)d1, (void*)d2, (void*)d3, (void*)dOut, (void*)dF, (void*)dCnt, (void*)dTiles,
                    (void*)dBits, (void*)dCut})
    cudaFree(ptr);

  // End to end from host memory: per tensor, select 2 nested bands for each of 3 models (DPPA
  // style) and merge with TIES consensus, BF16 in and out. The CPU side is the plain reference
  // on one thread (not the project's SIMD/thread-pool kernels).
  const int tensors = 4;
  const uint64_t per = e2eN / tensors;
  std::vector<std::vector<uint8_t>> T;  // tensors * 4 (base + 3)
  for (int t = 0; t < tensors * 4; ++t) T.push_back(tiedTensor(rng, per, DPPA_CUDA_BF16, false));
  std::vector<std::vector<uint8_t>> outG(tensors, std::vector<uint8_t>(2 * per)), outR = outG;
  auto runSet = [&](bool gpu) -> std::string {
    for (int t = 0; t < tensors; ++t) {
      const uint64_t ks[2] = {per / 10, per / 5};
      uint32_t bits[3][2];
      int64_t cut[3][2];
      dppa_cuda_merge_model mm[3];
      static const double fac[2] = {1.8, 1.0};
      for (int j = 0; j < 3; ++j) {
        dppa_cuda_delta_input in{{T[t * 4].data(), per, DPPA_CUDA_BF16}, {T[t * 4 + 1 + j].data(), per, DPPA_CUDA_BF16}};
        if (gpu) {
          const std::string e = m.selectThresholds(in, ks, 2, 0, 0, bits[j], cut[j]);
          if (!e.empty()) return e;
        } else {
          ref::selectThresholds(in, ks, 2, 0, 0, bits[j], cut[j]);
        }
        mm[j].tensor = {T[t * 4 + 1 + j].data(), per, DPPA_CUDA_BF16};
        mm[j].weight = 1.0;
        mm[j].sparsify = {};
        mm[j].sparsify.kind = DPPA_CUDA_SPARSIFY_BANDS;
        mm[j].sparsify.rules = {bits[j], cut[j], 2, 0};
        mm[j].sparsify.band_factor = fac;
      }
      dppa_cuda_merge_job job{{T[t * 4].data(), per, DPPA_CUDA_BF16}, mm, 3, DPPA_CUDA_CONSENSUS_SUM, 0, 1.0,
                              (gpu ? outG : outR)[t].data(), DPPA_CUDA_BF16};
      if (gpu) {
        const std::string e = m.mergeTensor(job, nullptr);
        if (!e.empty()) return e;
      } else {
        ref::mergeTensor(job);
      }
    }
    return "";
  };
  auto t0 = std::chrono::steady_clock::now();
  std::string e = runSet(true);  // warm-up (allocations, pinned staging)
  auto t1 = std::chrono::steady_clock::now();
  if (e.empty()) e = runSet(true);
  auto t2 = std::chrono::steady_clock::now();
  runSet(false);
  auto t3 = std::chrono::steady_clock::now();
  const double gpuS = std::chrono::duration<double>(t2 - t1).count();
  const double cpuS = std::chrono::duration<double>(t3 - t2).count();
  bool same = e.empty();
  for (int t = 0; t < tensors; ++t) same = same && outG[t] == outR[t];
  const double bytes = double(tensors) * per * 2 * 5;  // 4 inputs read + 1 output written
  char a[64], b[64], c[64];
  std::snprintf(a, sizeof a, "%.3f s (first %.3f s)", gpuS, std::chrono::duration<double>(t1 - t0).count());
  std::snprintf(b, sizeof b, "%.2f GB/s", bytes / gpuS / 1e9);
  std::snprintf(c, sizeof c, "%.1f x the CPU reference (%.3f s)", cpuS / gpuS, cpuS);
  rows.push_back({"e2e DPPA-style merge, GPU from host", std::to_string(uint64_t(tensors) * per), a, b, c});
  rows.push_back({"e2e output equals CPU reference", std::to_string(uint64_t(tensors) * per), "", same ? "ok" : "MISMATCH",
                  e});
  if (!same) ++gFailures;
  {
    // The same set streamed in 1M-element chunks: selection passes re-stream each tensor.
    m.setChunkElements(uint64_t(1) << 20);
    for (auto& o : outG) std::fill(o.begin(), o.end(), 0);
    auto c0 = std::chrono::steady_clock::now();
    const std::string e2 = runSet(true);
    const double s2 = std::chrono::duration<double>(std::chrono::steady_clock::now() - c0).count();
    bool same2 = e2.empty();
    for (int t = 0; t < tensors; ++t) same2 = same2 && outG[t] == outR[t];
    char a2[64], b2[64];
    std::snprintf(a2, sizeof a2, "%.3f s", s2);
    std::snprintf(b2, sizeof b2, "%.2f GB/s", bytes / s2 / 1e9);
    rows.push_back({"e2e again, 1M-element chunks", std::to_string(uint64_t(tensors) * per), a2, b2,
                    same2 ? "output equals CPU reference" : "MISMATCH " + e2});
    if (!same2) ++gFailures;
    m.setChunkElements(0);
  }
  printTable(rows, "benchmark (GB/s = bytes read + written / time; ratio to the D2D copy measured in this run)");
  return gFailures ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  bool doBench = false, requireGpu = false, verbose = false;
  uint64_t benchN = uint64_t(1) << 28, e2eN = uint64_t(1) << 25;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--bench") doBench = true;
    else if (a == "--require-gpu") requireGpu = true;
    else if (a == "--verbose") verbose = true;
    else if (a == "--elements" && i + 1 < argc) benchN = std::strtoull(argv[++i], nullptr, 10);
    else if (a == "--e2e-elements" && i + 1 < argc) e2eN = std::strtoull(argv[++i], nullptr, 10);
  }
  std::string why;
  if (!referenceSanity(&why)) {
    std::printf("reference self-check FAILED: %s\n", why.c_str());
    return 1;
  }
  std::printf("reference self-check: ok (f16/bf16 round trips, rounding, Philox KAT)\n");
  auto m = CudaMerger::create(0, &why);
  if (!m) {
    std::printf("skipped: no GPU (%s)\n", why.c_str());
    return requireGpu ? 2 : 0;
  }
  std::printf("device: %s\n", m->deviceName().c_str());
  std::mt19937_64 rng(20240229);
  struct Size {
    uint64_t n, rows;
  } sizes[] = {{0, 0}, {1, 1}, {7, 1}, {4097, 17}, {37 * 129, 37}, {3 * 65536 + 3, 3}};
  for (uint64_t chunk : {uint64_t(0), uint64_t(4096)}) {
    m->setChunkElements(chunk);
    const std::string label = chunk ? std::to_string(chunk) : "auto";
    for (auto& s : sizes) checkAll(*m, s.n, s.rows, label, rng);
  }
  m->setChunkElements(0);
  {
    // Selection's first pass with global atomics instead of shared-memory histograms.
    setenv("DPPA_CUDA_HIST", "global", 1);
    auto m2 = CudaMerger::create(0, &why);
    unsetenv("DPPA_CUDA_HIST");
    if (m2)
      for (auto& s : sizes) checkAll(*m2, s.n, s.rows, "auto, global-atomic histogram", rng);
  }
  if (verbose) {
    printTable(gRows, "selftest: CUDA vs the C++ reference (bit-identical required)");
  } else {
    // One row per check: how many (size, chunk) cases matched.
    std::vector<Row> grouped;
    for (auto& r : gRows) {
      auto it = std::find_if(grouped.begin(), grouped.end(), [&](const Row& g) { return g.what == r.what; });
      if (it == grouped.end()) {
        grouped.push_back({r.what, "", "", "0/0", ""});
        it = grouped.end() - 1;
      }
      int ok = 0, all = 0;
      std::sscanf(it->result.c_str(), "%d/%d", &ok, &all);
      ++all;
      if (r.result == "ok") ++ok;
      it->result = std::to_string(ok) + "/" + std::to_string(all);
      it->size += (it->size.empty() ? "" : ",") + r.size;
      if (r.result != "ok" && it->note.empty()) it->note = "n=" + r.size + " chunk=" + r.chunk + ": " + r.note;
    }
    for (auto& g : grouped) {
      // distinct sizes only
      std::vector<std::string> seen;
      size_t pos = 0;
      while (pos <= g.size.size()) {
        const size_t c = g.size.find(',', pos);
        const std::string v = g.size.substr(pos, c == std::string::npos ? std::string::npos : c - pos);
        if (std::find(seen.begin(), seen.end(), v) == seen.end()) seen.push_back(v);
        if (c == std::string::npos) break;
        pos = c + 1;
      }
      g.size.clear();
      for (auto& v : seen) g.size += (g.size.empty() ? "" : ",") + v;
      g.chunk = "auto,4096,auto+global-hist";
    }
    printTable(grouped, "selftest: CUDA vs the C++ reference, bit-identical (matched/cases; --verbose for every case)");
  }
  std::printf("\n%d checks, %d mismatches\n", gChecks, gFailures);
  int rc = gFailures ? 1 : 0;
  if (doBench && bench(*m, benchN, e2eN) != 0) rc = 1;
  std::printf("%s\n", rc ? "FAILED" : "PASSED");
  return rc;
}
