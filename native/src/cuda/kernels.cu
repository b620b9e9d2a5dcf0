// The CUDA kernels. Every float op that could be contracted is an explicit __f*_rn intrinsic
// (and the library is built with -fmad=false as a second guard), so per-element results are
// the CPU's bit for bit; ops whose result reaches an output give x86's NaN bits (addCpu & co.,
// device_math.cuh). Sums over elements use a fixed tile/lane/tree order (see dppa_cuda.h).
#include "kernels.cuh"
#include "device_math.cuh"

namespace dppa {
namespace cuda {
namespace {

__device__ __forceinline__ float deltaAt(const DeltaSrc& s, uint64_t i) {
  const float f = decodeAt(s.ft, s.ftDtype, i);
  if (!s.base) return f;
  return subCpu(f, decodeAt(s.base, s.baseDtype, i));
}

unsigned gridFor(uint64_t len, unsigned maxBlocks = 1u << 20) {
  uint64_t blocks = (len + kBlock - 1) / kBlock;
  if (blocks < 1) blocks = 1;
  if (blocks > maxBlocks) blocks = maxBlocks;
  return unsigned(blocks);
}

// Block-wide sum of an unsigned 64-bit value; result valid in thread 0. Integer: any order.
__device__ unsigned long long blockSumU64(unsigned long long v) {
  __shared__ unsigned long long warpSums[kBlock / 32];
  for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xFFFFFFFFu, v, o);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  __syncthreads();
  if (lane == 0) warpSums[warp] = v;
  __syncthreads();
  unsigned long long total = 0;
  if (threadIdx.x == 0)
    for (int w = 0; w < kBlock / 32; ++w) total += warpSums[w];
  return total;
}

// The documented tree: for s = 128 .. 1: lane[l] += lane[l + s]. Result in thread 0.
__device__ double blockTreeSum(double v, double* sh) {
  sh[threadIdx.x] = v;
  __syncthreads();
  for (int s = kBlock / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) sh[threadIdx.x] = __dadd_rn(sh[threadIdx.x], sh[threadIdx.x + s]);
    __syncthreads();
  }
  const double r = sh[0];
  __syncthreads();
  return r;
}

__device__ __forceinline__ float sparsifyValue(const SparsifyDev& sp, float d, uint64_t gi, bool& kept) {
  if (sp.kind == DPPA_CUDA_SPARSIFY_DENSE) {
    kept = true;
    return mulCpu(sp.factor, d);
  }
  if (sp.kind == DPPA_CUDA_SPARSIFY_BANDS) {
    const uint32_t a = absBits(d);
    const uint64_t rb = sp.cols ? (gi / sp.cols) * uint64_t(sp.nbands) : 0;
    for (int b = 0; b < sp.nbands; ++b) {
      if (keptByRule(a, gi, sp.bits[rb + b], sp.cutoff[rb + b])) {
        kept = true;
        return mulCpu(sp.bandFactor[b], d);
      }
    }
    kept = false;
    return 0.0f;
  }
  const float u = uniformFromWord(philoxWord(sp.stream, gi));
  kept = double(u) < sp.density;
  return kept ? mulCpu(sp.rescale, d) : 0.0f;
}

__device__ __forceinline__ void storeEncoded(void* out, int32_t dtype, uint64_t i, float v) {
  if (dtype == DPPA_CUDA_F32)
    static_cast<float*>(out)[i] = v;
  else if (dtype == DPPA_CUDA_BF16)
    static_cast<uint16_t*>(out)[i] = uint16_t(encodeBF16(v));
  else
    static_cast<uint16_t*>(out)[i] = uint16_t(encodeF16(v));
}

__global__ void __launch_bounds__(kBlock) mergeKernel(const __grid_constant__ MergeParams p, uint64_t start,
                                                      uint64_t len, void* out, unsigned long long* nonFinite) {
  __shared__ unsigned int nf[DPPA_CUDA_MAX_MODELS + 1];
  for (int t = threadIdx.x; t <= p.nmodels; t += blockDim.x) nf[t] = 0;
  __syncthreads();
  const uint64_t stride = uint64_t(gridDim.x) * blockDim.x;
  for (uint64_t i = uint64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < len; i += stride) {
    const uint64_t gi = start + i;
    const float b = decodeAt(p.base, p.baseDtype, i);
    if (isNonFinite(b)) atomicAdd(&nf[0], 1u);
    float mixed = 0.0f, div = 0.0f;
    if (p.consensus == DPPA_CUDA_CONSENSUS_NONE) {
      for (int t = 0; t < p.nmodels; ++t) {
        const MergeModelDev& m = p.models[t];
        const float x = decodeAt(m.data, m.dtype, i);
        if (isNonFinite(x)) atomicAdd(&nf[t + 1], 1u);
        bool kept;
        const float v = sparsifyValue(m.sp, subCpu(x, b), gi, kept);
        mixed = addCpu(mixed, mulCpu(m.weight, v));
        div = __fadd_rn(div, m.weight);
      }
    } else {
      float W[DPPA_CUDA_MAX_MODELS];
      float S = 0.0f;
      int C = 0;
      for (int t = 0; t < p.nmodels; ++t) {
        const MergeModelDev& m = p.models[t];
        const float x = decodeAt(m.data, m.dtype, i);
        if (isNonFinite(x)) atomicAdd(&nf[t + 1], 1u);
        bool kept;
        const float v = sparsifyValue(m.sp, subCpu(x, b), gi, kept);
        const float w = mulCpu(m.weight, v);
        W[t] = w;
        S = __fadd_rn(S, w);
        C += (w > 0.0f) - (w < 0.0f);
      }
      const bool positive = p.consensus == DPPA_CUDA_CONSENSUS_SUM ? !(S < 0.0f) : !(C < 0);
      for (int t = 0; t < p.nmodels; ++t) {
        const float w = W[t];
        if (positive ? (w > 0.0f) : (w < 0.0f)) {
          mixed = addCpu(mixed, w);
          div = __fadd_rn(div, p.models[t].weight);
        }
      }
    }
    if (p.normalize) {
      if (double(fabsf(div)) < 1e-8) div = 1.0f;
      mixed = divCpu(mixed, div);
    }
    storeEncoded(out, p.outDtype, i, addCpu(b, mulCpu(p.lambda, mixed)));
  }
  __syncthreads();
  for (int t = threadIdx.x; t <= p.nmodels; t += blockDim.x)
    if (nf[t]) atomicAdd(&nonFinite[t], (unsigned long long)nf[t]);
}

__global__ void decodeKernel(const void* in, int32_t dtype, uint64_t len, float* out) {
  const uint64_t stride = uint64_t(gridDim.x) * blockDim.x;
  for (uint64_t i = uint64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < len; i += stride) out[i] = decodeAt(in, dtype, i);
}

__global__ void encodeKernel(const float* in, uint64_t len, int32_t dtype, void* out) {
  const uint64_t stride = uint64_t(gridDim.x) * blockDim.x;
  for (uint64_t i = uint64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < len; i += stride)
    storeEncoded(out, dtype, i, in[i]);
}

__global__ void deltaKernel(const DeltaSrc src, uint64_t len, float* out) {
  const uint64_t stride = uint64_t(gridDim.x) * blockDim.x;
  for (uint64_t i = uint64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < len; i += stride) out[i] = deltaAt(src, i);
}

__global__ void randomKernel(const dppa_cuda_random_stream rs, uint64_t start, uint64_t len, float* out) {
  const uint64_t stride = uint64_t(gridDim.x) * blockDim.x;
  for (uint64_t i = uint64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < len; i += stride)
    out[i] = uniformFromWord(philoxWord(rs, start + i));
}

struct Thresholds {
  double t[DPPA_CUDA_MAX_THRESHOLDS];
  int32_t n;
};

// One block per tile of kTile elements.
__global__ void __launch_bounds__(kBlock) absStatsKernel(const DeltaSrc src, uint64_t len, const Thresholds th,
                                                         double* tileSums, unsigned long long* counts) {
  __shared__ double sh[kBlock];
  const uint64_t tileBase = uint64_t(blockIdx.x) * kTile;
  double acc = 0.0;
  unsigned c[DPPA_CUDA_MAX_THRESHOLDS + 1];
#pragma unroll
  for (int j = 0; j <= DPPA_CUDA_MAX_THRESHOLDS; ++j) c[j] = 0;
#pragma unroll 4
  for (int it = 0; it < kTileItems; ++it) {
    const uint64_t i = tileBase + threadIdx.x + uint64_t(it) * kBlock;
    if (i < len) {
      const float d = deltaAt(src, i);
      const double ad = double(fabsf(d));
      acc = __dadd_rn(acc, ad);
      c[0] += isNonFinite(d) ? 1u : 0u;
#pragma unroll
      for (int j = 0; j < DPPA_CUDA_MAX_THRESHOLDS; ++j)
        if (j < th.n && ad > th.t[j]) c[j + 1]++;
    }
  }
  const double s = blockTreeSum(acc, sh);
  if (threadIdx.x == 0) tileSums[blockIdx.x] = s;
#pragma unroll
  for (int j = 0; j <= DPPA_CUDA_MAX_THRESHOLDS; ++j) {
    if (j > th.n) break;
    const unsigned long long tot = blockSumU64(c[j]);
    if (threadIdx.x == 0 && tot) atomicAdd(&counts[j], tot);
  }
}

__global__ void __launch_bounds__(kBlock) sparsifyStatsKernel(const DeltaSrc src, const SparsifyDev sp, uint64_t start,
                                                              uint64_t len, double* tileSums, double* tileKept,
                                                              unsigned long long* kept) {
  __shared__ double sh[kBlock];
  const uint64_t tileBase = uint64_t(blockIdx.x) * kTile;
  double acc = 0.0, accKept = 0.0;
  unsigned c = 0;
  for (int it = 0; it < kTileItems; ++it) {
    const uint64_t i = tileBase + threadIdx.x + uint64_t(it) * kBlock;
    if (i < len) {
      const float d = deltaAt(src, i);
      const double ad = double(fabsf(d));
      acc = __dadd_rn(acc, ad);
      bool k;
      (void)sparsifyValue(sp, d, start + i, k);
      if (k) {
        accKept = __dadd_rn(accKept, ad);
        ++c;
      }
    }
  }
  const double s = blockTreeSum(acc, sh);
  const double sk = blockTreeSum(accKept, sh);
  if (threadIdx.x == 0) {
    tileSums[blockIdx.x] = s;
    tileKept[blockIdx.x] = sk;
  }
  const unsigned long long tot = blockSumU64(c);
  if (threadIdx.x == 0 && tot) atomicAdd(kept, tot);
}

struct Prefixes {
  uint32_t v[DPPA_CUDA_MAX_BANDS];
};

// Warp-aggregated global atomics: lanes with the same bin add once (|δ| bins are crowded).
__global__ void __launch_bounds__(kBlock) histogramKernel(const DeltaSrc src, uint64_t len, uint32_t shift,
                                                          uint32_t bins, uint32_t prefixMask, const Prefixes pre,
                                                          int32_t nb, unsigned long long* hist) {
  const uint64_t stride = uint64_t(gridDim.x) * blockDim.x;
  const unsigned lane = threadIdx.x & 31;
  for (uint64_t base = uint64_t(blockIdx.x) * blockDim.x; base < len; base += stride) {
    const uint64_t i = base + threadIdx.x;
    const bool valid = i < len;
    const uint32_t a = valid ? absBits(deltaAt(src, i)) : 0u;
    for (int b = 0; b < nb; ++b) {
      const bool hit = valid && (a & prefixMask) == pre.v[b];
      const uint32_t key = hit ? ((a >> shift) & (bins - 1)) : 0xFFFFFFFFu;
      const unsigned peers = __match_any_sync(0xFFFFFFFFu, key);
      if (hit && lane == unsigned(__ffs(peers) - 1))
        atomicAdd(&hist[uint64_t(b) * bins + key], (unsigned long long)__popc(peers));
    }
  }
}

// The first selection level (bin = a >> 16, no prefix) with a per-block histogram in shared
// memory: 65536 16-bit counters packed two per word (128 KiB). A block counts at most
// kHi16PerPass elements between flushes, so a counter never overflows into its neighbour.
constexpr int kHi16Block = 1024;
constexpr uint64_t kHi16PerPass = uint64_t(kHi16Block) * 63;  // 64512 < 65536
constexpr size_t kHi16Smem = 32768 * sizeof(uint32_t);

__global__ void __launch_bounds__(kHi16Block) histogramHi16SharedKernel(const DeltaSrc src, uint64_t len,
                                                                       unsigned long long* hist) {
  extern __shared__ uint32_t packed[];
  for (uint64_t base = uint64_t(blockIdx.x) * kHi16PerPass; base < len; base += uint64_t(gridDim.x) * kHi16PerPass) {
    for (int w = threadIdx.x; w < 32768; w += blockDim.x) packed[w] = 0;
    __syncthreads();
    const uint64_t end = min(len, base + kHi16PerPass);
    for (uint64_t i = base + threadIdx.x; i < end; i += blockDim.x) {
      const uint32_t bin = absBits(deltaAt(src, i)) >> 16;
      atomicAdd(&packed[bin >> 1], 1u << ((bin & 1u) * 16u));
    }
    __syncthreads();
    for (int w = threadIdx.x; w < 32768; w += blockDim.x) {
      const uint32_t v = packed[w];
      if (v & 0xFFFFu) atomicAdd(&hist[2 * w], (unsigned long long)(v & 0xFFFFu));
      if (v >> 16) atomicAdd(&hist[2 * w + 1], (unsigned long long)(v >> 16));
    }
    __syncthreads();
  }
}

__global__ void __launch_bounds__(kBlock) countEqualKernel(const DeltaSrc src, uint64_t len, const Prefixes target,
                                                           int32_t nb, unsigned long long* counts) {
  const uint64_t stride = uint64_t(gridDim.x) * blockDim.x;
  unsigned c[DPPA_CUDA_MAX_BANDS];
#pragma unroll
  for (int b = 0; b < DPPA_CUDA_MAX_BANDS; ++b) c[b] = 0;
  for (uint64_t i = uint64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < len; i += stride) {
    const uint32_t a = absBits(deltaAt(src, i));
#pragma unroll
    for (int b = 0; b < DPPA_CUDA_MAX_BANDS; ++b)
      if (b < nb && a == target.v[b]) c[b]++;
  }
#pragma unroll
  for (int b = 0; b < DPPA_CUDA_MAX_BANDS; ++b) {
    if (b >= nb) break;
    const unsigned long long tot = blockSumU64(c[b]);
    if (threadIdx.x == 0 && tot) atomicAdd(&counts[b], tot);
  }
}

__global__ void __launch_bounds__(kBlock) tileCountEqualKernel(const DeltaSrc src, uint64_t len, uint32_t target,
                                                               uint32_t* tileCounts) {
  const uint64_t tileBase = uint64_t(blockIdx.x) * kTile;
  unsigned c = 0;
  for (int it = 0; it < kTileItems; ++it) {
    const uint64_t i = tileBase + threadIdx.x + uint64_t(it) * kBlock;
    if (i < len && absBits(deltaAt(src, i)) == target) ++c;
  }
  const unsigned long long tot = blockSumU64(c);
  if (threadIdx.x == 0) tileCounts[blockIdx.x] = uint32_t(tot);
}

// Block-cooperative: the local index (in [from, from + len)) of the m-th element (1-based, in
// index order) whose abs bits equal target; -1 when there are fewer. Each thread owns one
// contiguous segment, so an exclusive scan of the segment counts orders them.
__device__ int64_t blockFindMthEqual(const DeltaSrc& src, uint64_t from, uint64_t len, uint32_t target, uint64_t m) {
  __shared__ unsigned long long segCount[kBlock];
  __shared__ long long found;
  const uint64_t seg = (len + kBlock - 1) / kBlock;
  const uint64_t lo = from + seg * threadIdx.x;
  const uint64_t hi = min(from + len, lo + seg);
  unsigned long long c = 0;
  for (uint64_t i = lo; i < hi; ++i) c += absBits(deltaAt(src, i)) == target;
  if (threadIdx.x == 0) found = -1;
  segCount[threadIdx.x] = c;
  __syncthreads();
  if (threadIdx.x == 0) {
    unsigned long long run = 0;
    for (int t = 0; t < kBlock; ++t) {
      const unsigned long long v = segCount[t];
      segCount[t] = run;
      run += v;
    }
  }
  __syncthreads();
  const unsigned long long before = segCount[threadIdx.x];
  if (before < m && m <= before + c) {
    unsigned long long seen = before;
    for (uint64_t i = lo; i < hi; ++i) {
      if (absBits(deltaAt(src, i)) == target && ++seen == m) {
        found = (long long)i;
        break;
      }
    }
  }
  __syncthreads();
  const int64_t r = found;
  __syncthreads();
  return r;
}

__global__ void __launch_bounds__(kBlock) findMthEqualKernel(const DeltaSrc src, uint64_t from, uint64_t len,
                                                             uint32_t target, uint64_t m, int64_t* outIndex) {
  const int64_t r = blockFindMthEqual(src, from, len, target, m);
  if (threadIdx.x == 0) *outIndex = r;
}

// One block per row: 4 passes of 8-bit radix selection in shared memory, then the tie cutoff.
__global__ void __launch_bounds__(kBlock) rowSelectKernel(const DeltaSrc src, uint64_t cols, uint64_t start,
                                                          const RowSelectParams p, uint32_t* outBits,
                                                          int64_t* outCutoff) {
  __shared__ unsigned int hist[256];
  __shared__ uint32_t chosen;
  __shared__ unsigned long long remaining;
  const uint64_t row = blockIdx.x;
  const uint64_t rowBase = row * cols;
  for (int b = 0; b < p.nks; ++b) {
    const uint64_t k = p.ks[b];
    uint32_t bits = 0xFFFFFFFFu;
    int64_t cutoff = -1;
    if (k > 0) {
      uint32_t prefix = 0, mask = 0;
      if (threadIdx.x == 0) remaining = k;
      for (int pass = 0; pass < 4; ++pass) {
        const uint32_t shift = 24u - 8u * uint32_t(pass);
        hist[threadIdx.x] = 0;  // kBlock == 256
        __syncthreads();
        for (uint64_t j = threadIdx.x; j < cols; j += blockDim.x) {
          const uint32_t a = absBits(deltaAt(src, rowBase + j));
          if ((a & mask) == prefix) atomicAdd(&hist[(a >> shift) & 255u], 1u);
        }
        __syncthreads();
        if (threadIdx.x == 0) {
          unsigned long long cum = 0, rem = remaining;
          uint32_t bin = 0;
          for (int h = 255; h >= 0; --h) {
            if (cum + hist[h] >= rem) {
              bin = uint32_t(h);
              break;
            }
            cum += hist[h];
          }
          remaining = rem - cum;
          chosen = bin;
        }
        __syncthreads();
        prefix |= chosen << shift;
        mask |= 0xFFu << shift;
        __syncthreads();
      }
      bits = prefix;
      if (p.rule == 0) {
        const int64_t local = blockFindMthEqual(src, rowBase, cols, prefix, remaining);
        cutoff = local < 0 ? -1 : int64_t(start) + local;
      }
    }
    if (threadIdx.x == 0) {
      outBits[row * p.nks + b] = bits;
      outCutoff[row * p.nks + b] = cutoff;
    }
    __syncthreads();
  }
}

}  // namespace

void launchMerge(const MergeParams& p, uint64_t start, uint64_t len, void* out, unsigned long long* nonFinite,
                 cudaStream_t s) {
  if (len == 0) return;
  mergeKernel<<<gridFor(len), kBlock, 0, s>>>(p, start, len, out, nonFinite);
}

void launchDecode(const void* in, int32_t dtype, uint64_t len, float* out, cudaStream_t s) {
  if (len == 0) return;
  decodeKernel<<<gridFor(len), kBlock, 0, s>>>(in, dtype, len, out);
}

void launchEncode(const float* in, uint64_t len, int32_t outDtype, void* out, cudaStream_t s) {
  if (len == 0) return;
  encodeKernel<<<gridFor(len), kBlock, 0, s>>>(in, len, outDtype, out);
}

void launchDelta(const DeltaSrc& src, uint64_t len, float* out, cudaStream_t s) {
  if (len == 0) return;
  deltaKernel<<<gridFor(len), kBlock, 0, s>>>(src, len, out);
}

void launchRandomUniform(const dppa_cuda_random_stream& rs, uint64_t start, uint64_t len, float* out, cudaStream_t s) {
  if (len == 0) return;
  randomKernel<<<gridFor(len), kBlock, 0, s>>>(rs, start, len, out);
}

void launchAbsStats(const DeltaSrc& src, uint64_t len, const double* thresholds, int32_t nthr, double* tileSums,
                    unsigned long long* counts, cudaStream_t s) {
  if (len == 0) return;
  Thresholds th{};
  th.n = nthr;
  for (int j = 0; j < nthr && j < DPPA_CUDA_MAX_THRESHOLDS; ++j) th.t[j] = thresholds[j];
  const uint64_t tiles = (len + kTile - 1) / kTile;
  absStatsKernel<<<unsigned(tiles), kBlock, 0, s>>>(src, len, th, tileSums, counts);
}

void launchSparsifyStats(const DeltaSrc& src, const SparsifyDev& sp, uint64_t start, uint64_t len, double* tileSums,
                         double* tileKeptSums, unsigned long long* kept, cudaStream_t s) {
  if (len == 0) return;
  const uint64_t tiles = (len + kTile - 1) / kTile;
  sparsifyStatsKernel<<<unsigned(tiles), kBlock, 0, s>>>(src, sp, start, len, tileSums, tileKeptSums, kept);
}

void launchHistogram(const DeltaSrc& src, uint64_t len, uint32_t shift, uint32_t bins, uint32_t prefixMask,
                     const uint32_t* prefix, int32_t nb, unsigned long long* hist, cudaStream_t s) {
  if (len == 0) return;
  Prefixes pre{};
  for (int b = 0; b < nb && b < DPPA_CUDA_MAX_BANDS; ++b) pre.v[b] = prefix[b];
  histogramKernel<<<gridFor(len, 1u << 16), kBlock, 0, s>>>(src, len, shift, bins, prefixMask, pre, nb, hist);
}

void launchHistogramHi16Shared(const DeltaSrc& src, uint64_t len, unsigned long long* hist, cudaStream_t s) {
  if (len == 0) return;
  static bool configured = false;  // the attribute is per function and process; setting it twice is harmless
  if (!configured) {
    cudaFuncSetAttribute(histogramHi16SharedKernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(kHi16Smem));
    configured = true;
  }
  uint64_t blocks = (len + kHi16PerPass - 1) / kHi16PerPass;
  if (blocks > 4096) blocks = 4096;
  histogramHi16SharedKernel<<<unsigned(blocks), kHi16Block, kHi16Smem, s>>>(src, len, hist);
}

void launchCountEqual(const DeltaSrc& src, uint64_t len, const uint32_t* target, int32_t nb, unsigned long long* counts,
                      cudaStream_t s) {
  if (len == 0) return;
  Prefixes t{};
  for (int b = 0; b < nb && b < DPPA_CUDA_MAX_BANDS; ++b) t.v[b] = target[b];
  countEqualKernel<<<gridFor(len, 1u << 14), kBlock, 0, s>>>(src, len, t, nb, counts);
}

void launchTileCountEqual(const DeltaSrc& src, uint64_t len, uint32_t target, uint32_t* tileCounts, cudaStream_t s) {
  if (len == 0) return;
  const uint64_t tiles = (len + kTile - 1) / kTile;
  tileCountEqualKernel<<<unsigned(tiles), kBlock, 0, s>>>(src, len, target, tileCounts);
}

void launchFindMthEqual(const DeltaSrc& src, uint64_t from, uint64_t len, uint32_t target, uint64_t m, int64_t* outIndex,
                        cudaStream_t s) {
  findMthEqualKernel<<<1, kBlock, 0, s>>>(src, from, len, target, m, outIndex);
}

void launchRowSelect(const DeltaSrc& src, uint64_t rows, uint64_t cols, uint64_t start, const RowSelectParams& p,
                     uint32_t* outBits, int64_t* outCutoff, cudaStream_t s) {
  if (rows == 0) return;
  rowSelectKernel<<<unsigned(rows), kBlock, 0, s>>>(src, cols, start, p, outBits, outCutoff);
}

}  // namespace cuda
}  // namespace dppa
