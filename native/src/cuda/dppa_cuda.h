// dppa_cuda.h: the CUDA kernels' host API. Plain C/C++ (no CUDA headers), so the addon can
// include it from a normal C++ translation unit. Every function takes HOST pointers: the
// library streams them to the device through pinned staging buffers in chunks, so tensors
// larger than free device memory are processed, not refused.
//
// Availability is checked at run time (cudaGetDeviceCount on first use), never at load: the
// CUDA runtime is linked statically, so the addon loads where there is no GPU or driver and
// dppa_cuda_available() reports why.
//
// Semantics are those of lib/binding.ts. The per-element float32 order of the fused merge is
// written down at dppa_cuda_merge_tensor; sums over elements (Σ|δ|) are float64 in a fixed
// tile order documented at dppa_cuda_abs_stats.
#ifndef DPPA_CUDA_H
#define DPPA_CUDA_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// Input dtypes (decode) and output dtypes (encode: F32, F16, BF16 only).
typedef enum dppa_cuda_dtype {
  DPPA_CUDA_F32 = 0,
  DPPA_CUDA_F16 = 1,
  DPPA_CUDA_BF16 = 2,
  DPPA_CUDA_F64 = 3,
  DPPA_CUDA_F8_E4M3 = 4,  // OCP E4M3FN: bias 7, no infinities, S.1111.111 is NaN
  DPPA_CUDA_F8_E5M2 = 5   // bias 15, IEEE-like (the top byte of an f16)
} dppa_cuda_dtype;

size_t dppa_cuda_dtype_size(int32_t dtype);  // 0 for an unknown dtype

// One tensor in host memory: n elements of `dtype`, little-endian.
typedef struct dppa_cuda_tensor {
  const void* data;
  uint64_t n;
  int32_t dtype;
} dppa_cuda_tensor;

// δ = decode(ft) - decode(base) in float32; base.data == NULL means δ = decode(ft).
typedef struct dppa_cuda_delta_input {
  dppa_cuda_tensor base;
  dppa_cuda_tensor ft;
} dppa_cuda_delta_input;

// Keep-rules per band, tight to loose (lib/binding.ts BandRules). Element at flat index i with
// abs bits a is kept by band b when a > bits[b] or (a == bits[b] and i <= cutoff[b]).
// rows > 0: `rows` equal rows; entries are row-major [r * nbands + b]. cutoff is always a
// FLAT index into the whole tensor (not an index inside the row).
typedef struct dppa_cuda_band_rules {
  const uint32_t* bits;
  const int64_t* cutoff;
  int32_t nbands;
  uint64_t rows;  // 0: one rule set for the whole tensor
} dppa_cuda_band_rules;

// Counter-based generator key (lib/binding.ts RandomStream): Philox4x32-10, key = (seed_lo,
// seed_hi), counter = (lo32(i/4), hi32(i/4), stream_lo, stream_hi), word i%4,
// u = (word >> 8) * 2^-24, kept when (double)u < density.
typedef struct dppa_cuda_random_stream {
  uint32_t seed_lo, seed_hi, stream_lo, stream_hi;
} dppa_cuda_random_stream;

typedef enum dppa_cuda_sparsify_kind {
  DPPA_CUDA_SPARSIFY_DENSE = 0,   // value = factor * δ
  DPPA_CUDA_SPARSIFY_BANDS = 1,   // value = band_factor[b] * δ, b = first band keeping it, else 0
  DPPA_CUDA_SPARSIFY_RANDOM = 2   // value = rescale * δ when the generator keeps it, else 0
} dppa_cuda_sparsify_kind;

typedef struct dppa_cuda_sparsify {
  int32_t kind;
  double factor;                 // dense
  dppa_cuda_band_rules rules;    // bands
  const double* band_factor;     // bands: nbands entries
  dppa_cuda_random_stream stream;  // random
  double density;                // random
  double rescale;                // random
} dppa_cuda_sparsify;

typedef struct dppa_cuda_merge_model {
  dppa_cuda_tensor tensor;
  double weight;
  dppa_cuda_sparsify sparsify;
} dppa_cuda_merge_model;

typedef enum dppa_cuda_consensus {
  DPPA_CUDA_CONSENSUS_NONE = 0,
  DPPA_CUDA_CONSENSUS_SUM = 1,
  DPPA_CUDA_CONSENSUS_COUNT = 2
} dppa_cuda_consensus;

#define DPPA_CUDA_MAX_MODELS 32
#define DPPA_CUDA_MAX_BANDS 8
#define DPPA_CUDA_MAX_THRESHOLDS 16

typedef struct dppa_cuda_merge_job {
  dppa_cuda_tensor base;
  const dppa_cuda_merge_model* models;
  int32_t nmodels;      // 1 .. DPPA_CUDA_MAX_MODELS
  int32_t consensus;    // dppa_cuda_consensus
  int32_t normalize;    // 0 / 1
  double lambda;
  void* out;            // base.n elements of out_dtype
  int32_t out_dtype;    // F32, F16 or BF16
} dppa_cuda_merge_job;

// All functions: return 0 on success; otherwise a non-zero code and a message in err (which
// may be NULL). Calls are serialized internally (one process-wide device context).

// 1 when a CUDA device is usable (reason = the device name), 0 otherwise (reason = why).
int dppa_cuda_available(char* reason, size_t size);

// Fused merge (lib/binding.ts mergeTensor). Per element i, float32 throughout, with the
// double parameters rounded to float once (f(x)):
//   b = decode(base[i])
//   for t in models, in order:
//     d  = decode(ft_t[i]) - b
//     v  = dense: f(factor) * d | bands: f(band_factor[bk]) * d or 0 | random: f(rescale) * d or 0
//     W_t = f(weight_t) * v
//   consensus sum:   S = ((0 + W_0) + W_1) + ...;  γ = S < 0 ? -1 : +1
//   consensus count: C = Σ sign(W_t) (integer);      γ = C < 0 ? -1 : +1
//   m_t = none: 1 | else: (γ > 0 ? W_t > 0 : W_t < 0)         (zeros never match)
//   mixed = 0; div = 0; for t with m_t: mixed += W_t; div += f(weight_t)
//   normalize: if |div| < 1e-8f: div = 1;  mixed = mixed / div
//   out = encode(b + f(lambda) * mixed)
// No fused multiply-add anywhere. non_finite (nmodels + 1 doubles, may be NULL): NaN/Inf
// count of each decoded input, base first.
int dppa_cuda_merge_tensor(const dppa_cuda_merge_job* job, double* non_finite, char* err, size_t err_size);

// out[n] float32 = decode(src).
int dppa_cuda_decode(const dppa_cuda_tensor* src, float* out, char* err, size_t err_size);
// out = encode(src[n]) to F32/F16/BF16, round to nearest even (NaN -> quiet NaN, sign kept).
int dppa_cuda_encode(const float* src, uint64_t n, int32_t out_dtype, void* out, char* err, size_t err_size);
// out[n] = δ.
int dppa_cuda_delta(const dppa_cuda_delta_input* in, float* out, char* err, size_t err_size);

// Σ|δ| (float64), counts_above[j] = #{ (double)|δ| > thresholds[j] }, non-finite count.
// Σ order (deterministic, independent of chunking and device): tiles of 4096 elements
// [4096·t, 4096·t + 4096); inside a tile, lane l (0..255) sums elements l, l+256, ... in
// order starting from 0.0; lanes are combined by the tree "for s = 128, 64, ..., 1:
// lane[l] += lane[l + s]"; tile sums are added in tile order starting from 0.0.
int dppa_cuda_abs_stats(const dppa_cuda_delta_input* in, const double* thresholds, int32_t nthresholds,
                        double* sum_abs, double* counts_above, double* non_finite, char* err, size_t err_size);

// Histogram of abs bits: elements with (a & prefix_mask) == prefix_value count in bin
// (a >> shift) & (bins - 1). bins is a power of two <= 65536. out: bins doubles.
int dppa_cuda_abs_histogram(const dppa_cuda_delta_input* in, uint32_t shift, uint32_t bins, uint32_t prefix_mask,
                            uint32_t prefix_value, double* out, char* err, size_t err_size);

// Exact top-k thresholds by radix selection (lib/binding.ts selectThresholds).
// rule 0 = 'index' (exactly k kept, ties to lower flat index), 1 = 'drop' (cutoff = -1).
// rows == 0: ks[nks] over the whole tensor, out has nks entries; rows > 0: the same ks apply
// to every row, out has rows * nks entries (row-major), cutoffs are flat indices.
// k == 0 gives bits = 0xFFFFFFFF, cutoff = -1 (keeps nothing).
int dppa_cuda_select_thresholds(const dppa_cuda_delta_input* in, const uint64_t* ks, int32_t nks, int32_t rule,
                                uint64_t rows, uint32_t* out_bits, int64_t* out_cutoff, char* err, size_t err_size);

// Σ|δ| over all, Σ|δ| over kept (before factor/rescale; same tile order as abs_stats), kept count.
int dppa_cuda_sparsify_stats(const dppa_cuda_delta_input* in, const dppa_cuda_sparsify* sp, double* sum_abs,
                             double* sum_abs_kept, double* kept, char* err, size_t err_size);

// The generator itself: out[j] = u of element start + j.
int dppa_cuda_random_uniform(const dppa_cuda_random_stream* stream, uint64_t start, float* out, uint64_t n,
                             char* err, size_t err_size);

// Pins host memory [p, p + bytes) (cudaHostRegister), so that jobs whose inputs or output lie
// in it copy straight between it and the device: without it, each job first copies its inputs
// into the merger's own pinned buffers (and its output out of them) on the calling thread.
// Returns 0 on success; otherwise err says why, and the memory still works, through staging.
// Call dppa_cuda_unpin(p) before the memory is freed. DPPA_CUDA_PIN=0 in the environment turns
// pinning off (every call then fails with that reason): for comparisons.
int dppa_cuda_pin(void* p, size_t bytes, char* err, size_t err_size);
void dppa_cuda_unpin(void* p);

// Tuning / tests: elements per streamed chunk (rounded down to a multiple of 4096, minimum
// 4096); 0 restores the automatic size (from free device memory).
void dppa_cuda_set_chunk_elements(uint64_t n);

#ifdef __cplusplus
}  // extern "C"

#include <memory>
#include <string>
#if defined(DPPA_CUDA_HAVE_CPU_API)
#include <vector>
#include "dppa/kernels.h"
#endif

namespace dppa {
namespace cuda {

// The C++ face of the same thing: one CudaMerger per device context. The C functions above use
// one shared instance behind a mutex; tests and benchmarks may own their own.
class CudaMerger {
 public:
  // Returns nullptr (and the reason in *why) when no device is usable.
  static std::unique_ptr<CudaMerger> create(int device, std::string* why);
  virtual ~CudaMerger() = default;

  virtual std::string deviceName() const = 0;
  virtual void setChunkElements(uint64_t n) = 0;  // 0 = automatic
  virtual uint64_t chunkElements(uint64_t wanted_bytes_per_element) = 0;

  // Each returns an empty string on success, else the error message.
  virtual std::string mergeTensor(const dppa_cuda_merge_job& job, double* non_finite) = 0;
  virtual std::string decode(const dppa_cuda_tensor& src, float* out) = 0;
  virtual std::string encode(const float* src, uint64_t n, int32_t out_dtype, void* out) = 0;
  virtual std::string delta(const dppa_cuda_delta_input& in, float* out) = 0;
  virtual std::string absStats(const dppa_cuda_delta_input& in, const double* thresholds, int32_t nthresholds,
                               double* sum_abs, double* counts_above, double* non_finite) = 0;
  virtual std::string absHistogram(const dppa_cuda_delta_input& in, uint32_t shift, uint32_t bins,
                                   uint32_t prefix_mask, uint32_t prefix_value, double* out) = 0;
  virtual std::string selectThresholds(const dppa_cuda_delta_input& in, const uint64_t* ks, int32_t nks, int32_t rule,
                                       uint64_t rows, uint32_t* out_bits, int64_t* out_cutoff) = 0;
  virtual std::string sparsifyStats(const dppa_cuda_delta_input& in, const dppa_cuda_sparsify& sp, double* sum_abs,
                                    double* sum_abs_kept, double* kept) = 0;
  virtual std::string randomUniform(const dppa_cuda_random_stream& stream, uint64_t start, float* out,
                                    uint64_t n) = 0;
  virtual std::string pin(void* p, size_t bytes) = 0;  // dppa_cuda_pin
};

#if defined(DPPA_CUDA_HAVE_CPU_API)
// The CPU kernel API of native/include/dppa/kernels.h, on the GPU: same structs, same
// semantics, errors thrown as std::runtime_error / std::invalid_argument. The addon can pick
// `dppa::cuda::mergeTensor(spec)` or `dppa::mergeTensor(spec)` with one branch.
bool available(std::string* description);  // description: device name, or why not
bool pin(void* p, size_t bytes, std::string* why);  // dppa_cuda_pin
void unpin(void* p);                                // dppa_cuda_unpin
void decode(const TensorView& src, float* out);
void encode(const float* src, size_t n, DType outDtype, uint8_t* out);
void delta(const DeltaView& in, float* out);
AbsStatsResult absStats(const DeltaView& in, const double* thresholds, size_t nthresholds);
std::vector<double> absHistogram(const DeltaView& in, uint32_t shift, uint32_t bins, uint32_t prefixMask,
                                 uint32_t prefixValue);
SparsifyStatsResult sparsifyStats(const DeltaView& in, const SparsifySpec& sparsify);
BandRules selectThresholds(const DeltaView& in, const double* ks, size_t nks, SelectRule rule, size_t rows);
std::vector<double> mergeTensor(const MergeSpec& spec);
void randomUniform(const RandomStream& stream, uint64_t start, float* out, size_t n);
#endif

}  // namespace cuda
}  // namespace dppa
#endif  // __cplusplus

#endif  // DPPA_CUDA_H
