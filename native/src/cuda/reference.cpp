#include "reference.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

namespace dppa {
namespace cuda {
namespace ref {
namespace {

uint32_t bitsOf(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
float fromBits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
float withSign(bool neg, float mag) { return neg ? -mag : mag; }

// Round-to-nearest-even of a non-negative double that is an exact value (no fenv games).
double rne(double x) {
  const double f = std::floor(x), r = x - f;
  if (r > 0.5) return f + 1;
  if (r < 0.5) return f;
  return std::fmod(f, 2.0) == 0.0 ? f : f + 1;
}

// Generic "round |x| to a float with `mbits` stored mantissa bits, min normal exponent emin,
// max finite maxf": returns (biased exponent, mantissa) or infinity; exact double math.
uint32_t roundToSmallFloat(float x, int mbits, int bias, int emin, int emax) {
  const double a = std::fabs(double(x));
  if (a == 0) return 0;
  int e;
  std::frexp(a, &e);  // a = f·2^e, f in [0.5, 1): unbiased exponent of a is e - 1
  int ue = e - 1;
  if (ue < emin) ue = emin;  // subnormal: fixed quantum 2^(emin - mbits)
  const double quantum = std::ldexp(1.0, ue - mbits);
  double q = rne(a / quantum);  // integer significand at exponent ue
  if (q >= std::ldexp(1.0, mbits + 1)) {  // carried into the next binade
    q /= 2;
    ++ue;
  }
  if (ue > emax) return 0xFFFFFFFFu;
  const bool normal = q >= std::ldexp(1.0, mbits);
  const uint32_t biased = normal ? uint32_t(ue + bias) : 0u;
  const uint32_t mant = uint32_t(q) & ((1u << mbits) - 1u);
  return (biased << mbits) | mant;
}

}  // namespace

float decode(const void* data, int32_t dtype, uint64_t i) {
  switch (dtype) {
    case DPPA_CUDA_F32: {
      float f;
      std::memcpy(&f, static_cast<const uint8_t*>(data) + 4 * i, 4);
      return f;
    }
    case DPPA_CUDA_F64: {
      double d;
      std::memcpy(&d, static_cast<const uint8_t*>(data) + 8 * i, 8);
      return float(d);
    }
    case DPPA_CUDA_BF16: {
      uint16_t h;
      std::memcpy(&h, static_cast<const uint8_t*>(data) + 2 * i, 2);
      return fromBits(uint32_t(h) << 16);
    }
    case DPPA_CUDA_F16:
    case DPPA_CUDA_F8_E5M2: {
      uint16_t h;
      if (dtype == DPPA_CUDA_F16)
        std::memcpy(&h, static_cast<const uint8_t*>(data) + 2 * i, 2);
      else
        h = uint16_t(static_cast<const uint8_t*>(data)[i] << 8);
      const bool neg = h & 0x8000;
      const int e = (h >> 10) & 31, m = h & 1023;
      if (e == 31) return fromBits((neg ? 0x80000000u : 0u) | (m ? 0x7FC00000u | (uint32_t(m) << 13) : 0x7F800000u));
      if (e == 0) return withSign(neg, float(std::ldexp(double(m), -24)));
      return withSign(neg, float(std::ldexp(double(1024 + m), e - 25)));
    }
    case DPPA_CUDA_F8_E4M3: {
      const uint8_t b = static_cast<const uint8_t*>(data)[i];
      const bool neg = b & 0x80;
      const int e = (b >> 3) & 15, m = b & 7;
      if (e == 15 && m == 7) return fromBits((neg ? 0x80000000u : 0u) | 0x7FC00000u);
      if (e == 0) return withSign(neg, float(std::ldexp(double(m), -9)));
      return withSign(neg, float(std::ldexp(double(8 + m), e - 10)));
    }
  }
  return 0;
}

uint16_t encodeBF16(float x) {
  const uint32_t u = bitsOf(x);
  const uint16_t sign = uint16_t((u >> 16) & 0x8000u);
  if (std::isnan(x)) return uint16_t((u >> 16) | 0x40u);
  if (std::isinf(x)) return sign | 0x7F80u;
  const uint32_t r = roundToSmallFloat(x, 7, 127, -126, 127);
  return r == 0xFFFFFFFFu ? uint16_t(sign | 0x7F80u) : uint16_t(sign | r);
}

uint16_t encodeF16(float x) {
  const uint32_t u = bitsOf(x);
  const uint16_t sign = uint16_t((u >> 16) & 0x8000u);
  if (std::isnan(x)) return uint16_t(sign | 0x7E00u | ((u >> 13) & 0x3FFu));
  if (std::isinf(x)) return sign | 0x7C00u;
  const uint32_t r = roundToSmallFloat(x, 10, 15, -14, 15);
  return r == 0xFFFFFFFFu ? uint16_t(sign | 0x7C00u) : uint16_t(sign | r);
}

void encode(const float* src, uint64_t n, int32_t dtype, void* out) {
  for (uint64_t i = 0; i < n; ++i) {
    if (dtype == DPPA_CUDA_F32) {
      std::memcpy(static_cast<uint8_t*>(out) + 4 * i, &src[i], 4);
    } else {
      const uint16_t h = dtype == DPPA_CUDA_BF16 ? encodeBF16(src[i]) : encodeF16(src[i]);
      std::memcpy(static_cast<uint8_t*>(out) + 2 * i, &h, 2);
    }
  }
}

float deltaAt(const dppa_cuda_delta_input& in, uint64_t i) {
  const float f = decode(in.ft.data, in.ft.dtype, i);
  if (!in.base.data) return f;
  return f - decode(in.base.data, in.base.dtype, i);
}

void philox(uint32_t c[4], const uint32_t keyIn[2]) {
  uint32_t k0 = keyIn[0], k1 = keyIn[1];
  for (int r = 0; r < 10; ++r) {
    const uint64_t p0 = uint64_t(0xD2511F53u) * c[0], p1 = uint64_t(0xCD9E8D57u) * c[2];
    const uint32_t n0 = uint32_t(p1 >> 32) ^ c[1] ^ k0, n2 = uint32_t(p0 >> 32) ^ c[3] ^ k1;
    c[0] = n0;
    c[1] = uint32_t(p1);
    c[2] = n2;
    c[3] = uint32_t(p0);
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
}

float uniform(const dppa_cuda_random_stream& s, uint64_t i) {
  uint32_t c[4] = {uint32_t(i / 4), uint32_t((i / 4) >> 32), s.stream_lo, s.stream_hi};
  const uint32_t k[2] = {s.seed_lo, s.seed_hi};
  philox(c, k);
  return float(std::ldexp(double(c[i % 4] >> 8), -24));
}

namespace {
// The documented order: per tile of 4096, lanes of stride 256, tree, tiles in order.
template <class F>
double tiledSum(uint64_t n, F&& value) {
  double total = 0;
  for (uint64_t t0 = 0; t0 < n; t0 += 4096) {
    double lane[256];
    for (int l = 0; l < 256; ++l) {
      double acc = 0;
      for (int j = 0; j < 16; ++j) {
        const uint64_t i = t0 + l + 256 * uint64_t(j);
        if (i < n) acc += value(i);
      }
      lane[l] = acc;
    }
    for (int s = 128; s > 0; s >>= 1)
      for (int l = 0; l < s; ++l) lane[l] += lane[l + s];
    total += lane[0];
  }
  return total;
}
}  // namespace

AbsStats absStats(const dppa_cuda_delta_input& in, const double* thr, int nthr) {
  AbsStats r;
  const uint64_t n = in.ft.n;
  r.countsAbove.assign(nthr, 0);
  std::vector<float> d(n);
  for (uint64_t i = 0; i < n; ++i) {
    d[i] = deltaAt(in, i);
    const double a = std::fabs(double(d[i]));
    r.sumNaive += a;
    if (!std::isfinite(d[i])) ++r.nonFinite;
    for (int j = 0; j < nthr; ++j)
      if (a > thr[j]) ++r.countsAbove[j];
  }
  r.sumTiled = tiledSum(n, [&](uint64_t i) { return std::fabs(double(d[i])); });
  return r;
}

std::vector<uint64_t> absHistogram(const dppa_cuda_delta_input& in, uint32_t shift, uint32_t bins, uint32_t prefixMask,
                                   uint32_t prefixValue) {
  std::vector<uint64_t> h(bins, 0);
  for (uint64_t i = 0; i < in.ft.n; ++i) {
    const uint32_t a = bitsOf(deltaAt(in, i)) & 0x7FFFFFFFu;
    if ((a & prefixMask) == prefixValue) ++h[(a >> shift) % bins];
  }
  return h;
}

void selectThresholds(const dppa_cuda_delta_input& in, const uint64_t* ks, int nks, int rule, uint64_t rows,
                      uint32_t* bits, int64_t* cutoff) {
  const uint64_t n = in.ft.n;
  const uint64_t nrows = rows ? rows : 1, cols = rows ? n / rows : n;
  std::vector<uint32_t> a(n);
  for (uint64_t i = 0; i < n; ++i) a[i] = bitsOf(deltaAt(in, i)) & 0x7FFFFFFFu;
  for (uint64_t r = 0; r < nrows; ++r) {
    std::vector<uint64_t> order(cols);
    std::iota(order.begin(), order.end(), r * cols);
    std::sort(order.begin(), order.end(), [&](uint64_t x, uint64_t y) { return a[x] != a[y] ? a[x] > a[y] : x < y; });
    for (int b = 0; b < nks; ++b) {
      const uint64_t k = ks[b];
      uint32_t& ob = bits[r * nks + b];
      int64_t& oc = cutoff[r * nks + b];
      if (k == 0) {
        ob = 0xFFFFFFFFu;
        oc = -1;
        continue;
      }
      const uint64_t last = order[k - 1];  // the k-th kept element
      ob = a[last];
      oc = rule == 0 ? int64_t(last) : -1;
    }
  }
}

bool kept(const dppa_cuda_sparsify& sp, uint64_t n, float d, uint64_t i, float* value) {
  if (sp.kind == DPPA_CUDA_SPARSIFY_DENSE) {
    *value = float(sp.factor) * d;
    return true;
  }
  if (sp.kind == DPPA_CUDA_SPARSIFY_BANDS) {
    const uint32_t a = bitsOf(d) & 0x7FFFFFFFu;
    const uint64_t row = sp.rules.rows ? i / (n / sp.rules.rows) : 0;
    for (int b = 0; b < sp.rules.nbands; ++b) {
      const uint32_t t = sp.rules.bits[row * sp.rules.nbands + b];
      const int64_t c = sp.rules.cutoff[row * sp.rules.nbands + b];
      if (a > t || (a == t && int64_t(i) <= c)) {
        *value = float(sp.band_factor[b]) * d;
        return true;
      }
    }
    *value = 0.0f;
    return false;
  }
  if (double(uniform(sp.stream, i)) < sp.density) {
    *value = float(sp.rescale) * d;
    return true;
  }
  *value = 0.0f;
  return false;
}

void sparsifyStats(const dppa_cuda_delta_input& in, const dppa_cuda_sparsify& sp, double* sumTiled, double* keptTiled,
                   uint64_t* keptCount) {
  const uint64_t n = in.ft.n;
  std::vector<float> d(n);
  std::vector<char> k(n);
  uint64_t c = 0;
  for (uint64_t i = 0; i < n; ++i) {
    d[i] = deltaAt(in, i);
    float v;
    k[i] = kept(sp, n, d[i], i, &v);
    c += k[i];
  }
  *sumTiled = tiledSum(n, [&](uint64_t i) { return std::fabs(double(d[i])); });
  *keptTiled = tiledSum(n, [&](uint64_t i) { return k[i] ? std::fabs(double(d[i])) : 0.0; });
  *keptCount = c;
}

std::vector<uint64_t> mergeTensor(const dppa_cuda_merge_job& job) {
  const uint64_t n = job.base.n;
  const int K = job.nmodels;
  std::vector<uint64_t> nonFinite(K + 1, 0);
  std::vector<float> W(K), out(n);
  const float lambda = float(job.lambda);
  for (uint64_t i = 0; i < n; ++i) {
    const float b = decode(job.base.data, job.base.dtype, i);
    if (!std::isfinite(b)) ++nonFinite[0];
    float S = 0;
    int C = 0;
    for (int t = 0; t < K; ++t) {
      const auto& m = job.models[t];
      const float x = decode(m.tensor.data, m.tensor.dtype, i);
      if (!std::isfinite(x)) ++nonFinite[t + 1];
      float v;
      kept(m.sparsify, n, x - b, i, &v);
      W[t] = float(m.weight) * v;
      S += W[t];
      C += W[t] > 0 ? 1 : W[t] < 0 ? -1 : 0;
    }
    const bool positive = job.consensus == DPPA_CUDA_CONSENSUS_SUM ? !(S < 0) : !(C < 0);
    float mixed = 0, div = 0;
    for (int t = 0; t < K; ++t) {
      const bool m = job.consensus == DPPA_CUDA_CONSENSUS_NONE || (positive ? W[t] > 0 : W[t] < 0);
      if (m) {
        mixed += W[t];
        div += float(job.models[t].weight);
      }
    }
    if (job.normalize) {
      if (std::fabs(div) < 1e-8) div = 1;
      mixed = mixed / div;
    }
    out[i] = b + lambda * mixed;
  }
  encode(out.data(), n, job.out_dtype, job.out);
  return nonFinite;
}

}  // namespace ref
}  // namespace cuda
}  // namespace dppa
