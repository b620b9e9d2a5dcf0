// Kernel launchers. All pointers here are DEVICE pointers to one chunk; `start` is the flat
// index of the chunk's first element in the whole tensor (rules, Philox counters and rows are
// keyed by it). Chunks start on multiples of kTile, so tile sums do not depend on chunking.
#pragma once
#include <cstdint>
#include <cuda_runtime.h>
#include "dppa_cuda.h"

namespace dppa {
namespace cuda {

constexpr int kBlock = 256;
constexpr int kTileItems = 16;
constexpr uint64_t kTile = uint64_t(kBlock) * kTileItems;  // 4096 elements per Σ tile

// δ read on the fly from the staged inputs: ft - base (base may be null).
struct DeltaSrc {
  const void* base;
  int32_t baseDtype;
  const void* ft;
  int32_t ftDtype;
};

struct SparsifyDev {
  int32_t kind;
  float factor;
  int32_t nbands;
  uint64_t cols;              // > 0: rules are per row of `cols` elements
  const uint32_t* bits;       // device, rows * nbands (or nbands)
  const int64_t* cutoff;      // device
  float bandFactor[DPPA_CUDA_MAX_BANDS];
  dppa_cuda_random_stream stream;
  double density;
  float rescale;
};

struct MergeModelDev {
  const void* data;
  int32_t dtype;
  float weight;
  SparsifyDev sp;
};

struct MergeParams {
  const void* base;
  int32_t baseDtype;
  int32_t nmodels;
  int32_t consensus;
  int32_t normalize;
  float lambda;
  int32_t outDtype;
  MergeModelDev models[DPPA_CUDA_MAX_MODELS];
};

// nonFinite: nmodels + 1 counters (base first), accumulated atomically.
void launchMerge(const MergeParams& p, uint64_t start, uint64_t len, void* out, unsigned long long* nonFinite,
                 cudaStream_t s);
void launchDecode(const void* in, int32_t dtype, uint64_t len, float* out, cudaStream_t s);
void launchEncode(const float* in, uint64_t len, int32_t outDtype, void* out, cudaStream_t s);
void launchDelta(const DeltaSrc& src, uint64_t len, float* out, cudaStream_t s);
void launchRandomUniform(const dppa_cuda_random_stream& rs, uint64_t start, uint64_t len, float* out, cudaStream_t s);

// One double per tile of the chunk (ceil(len / kTile)); counts: [0] = non-finite,
// [1 + j] = above thresholds[j].
void launchAbsStats(const DeltaSrc& src, uint64_t len, const double* thresholds, int32_t nthr, double* tileSums,
                    unsigned long long* counts, cudaStream_t s);
// tileSums / tileKept: per tile; kept: one counter.
void launchSparsifyStats(const DeltaSrc& src, const SparsifyDev& sp, uint64_t start, uint64_t len, double* tileSums,
                         double* tileKeptSums, unsigned long long* kept, cudaStream_t s);

// hist[b * bins + ((a >> shift) & (bins - 1))] += 1 for every band b whose prefix matches
// ((a & prefixMask) == prefix[b]).
void launchHistogram(const DeltaSrc& src, uint64_t len, uint32_t shift, uint32_t bins, uint32_t prefixMask,
                     const uint32_t* prefix, int32_t nb, unsigned long long* hist, cudaStream_t s);
// The same as launchHistogram(src, len, 16, 65536, 0, {0}, 1, hist) with per-block shared-memory
// histograms instead of global atomics (crowded |δ| bins make those contend).
void launchHistogramHi16Shared(const DeltaSrc& src, uint64_t len, unsigned long long* hist, cudaStream_t s);
// counts[b] += #{ a == target[b] } (e.g. one slot of a per-chunk array).
void launchCountEqual(const DeltaSrc& src, uint64_t len, const uint32_t* target, int32_t nb, unsigned long long* counts,
                      cudaStream_t s);
// Per tile of kTile elements: #{ a == target }.
void launchTileCountEqual(const DeltaSrc& src, uint64_t len, uint32_t target, uint32_t* tileCounts, cudaStream_t s);
// One block: local index of the m-th (1-based) element with a == target in [from, from + len).
void launchFindMthEqual(const DeltaSrc& src, uint64_t from, uint64_t len, uint32_t target, uint64_t m, int64_t* outIndex,
                        cudaStream_t s);

struct RowSelectParams {
  uint64_t ks[DPPA_CUDA_MAX_BANDS];
  int32_t nks;
  int32_t rule;  // 0 index, 1 drop
};
// One block per row; rows are whole inside the chunk. Writes rows * nks entries at out + 0.
void launchRowSelect(const DeltaSrc& src, uint64_t rows, uint64_t cols, uint64_t start, const RowSelectParams& p,
                     uint32_t* outBits, int64_t* outCutoff, cudaStream_t s);

}  // namespace cuda
}  // namespace dppa
