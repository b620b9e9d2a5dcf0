// tile_ops.h: the ISA-specific layer. Kernels in native/src/kernels split a tensor into
// chunks for the pool and each chunk into tiles; a tile is processed by one of these
// functions, implemented once (tile_kernels.inl) over a "vector traits" type and compiled for
// each ISA (scalar.cpp, avx2.cpp, avx512.cpp) with that ISA's flags. Every path computes each
// element with the same float32 operations in the same order, so outputs are bit-identical.
#pragma once
#include <cstddef>
#include <cstdint>

#include "dppa/dtype.h"
#include "dppa/kernels.h"

namespace dppa {
namespace simd {

// Elements per tile of the fused merge: (models + 2) buffers of this many floats stay in L1/L2.
constexpr size_t kMergeTile = 1024;
// The fixed reduction order (kernels.h): tiles of 4096 elements summed in 256 lanes.
constexpr size_t kReduceTile = 4096;
constexpr size_t kReduceLanes = 256;
constexpr size_t kMaxBands = 16;
constexpr size_t kMaxModels = 64;
// Most models of the fused merge loop with bands or a consensus (MergeTileJob::fusedDense).
constexpr size_t kMaxFusedModels = 8;
// Most brackets of one bracketShared call, and most lanes of any path's vectors.
constexpr size_t kMaxBracketsPerPass = 32;
constexpr size_t kMaxVectorLanes = 16;
// bracketShared keeps everything in registers for up to this many fine-tunes with the same
// number of entries each, at most this many.
constexpr size_t kFixedBracketModels = 4;
constexpr size_t kFixedBracketEntries = 4;

// The band rules of one model resolved for one tile (one row): element j of the tile (local
// index) is kept by band b when abs > bits[b], or abs == bits[b] and j <= tieLimit[b].
struct TileBands {
  int nbands = 0;
  uint32_t bits[kMaxBands];
  int32_t tieLimit[kMaxBands];
  float factor[kMaxBands];
};

struct MergeTileModel {
  const uint8_t* data;
  DType dtype;
  float weight;
  SparsifyKind kind;
  float factor;       // dense; della without 1/p: kept δ times factor (rescale l1)
  float rescale;      // random
  uint32_t keepBelow; // random: kept when (word >> 8) < keepBelow, i.e. u < density
  RandomStream stream;  // random, della
  const float* keepProb;  // della: keepProb[i - keepProbStart] = p of element i
  size_t keepProbStart;
  bool divideByProb;      // della: value = δ / p when kept (else δ)
};

struct MergeTileJob {
  const uint8_t* base;
  DType baseDtype;
  const MergeTileModel* models;
  size_t nmodels;
  Consensus consensus;
  bool normalize;
  float lambda;
  float divisorAll;  // 0 + f(w_0) + f(w_1) + ...: the divisor when every model matches
  uint8_t* out;
  DType outDtype;
  // 0, or the one input dtype (F32 = 1, BF16 = 2, F16 = 3) when every model is Dense, Random or
  // Bands and base and models share that dtype (F32: 4-byte aligned, out too); with bands or a
  // consensus, at most kMaxFusedModels models. mergeTile then runs one fused loop (same
  // operations, same order, no tile buffers, every W_t in registers).
  int fusedDense;
};

// A lower bound above every abs bits: the entry collects nothing and only counts.
constexpr uint32_t kCollectNothingBits = 0xFFFFFFFFu;

// Inputs of TileOps::bracketShared. dtypeCode: 1 = F32 (4-byte aligned), 2 = BF16, 3 = F16,
// shared by the base and every fine-tune.
struct BracketJob {
  int dtypeCode;
  const uint8_t* base;  // may be null: δ = decode(ft)
  const uint8_t* const* fts;
  size_t nfts;
  const uint32_t* firstBracket;  // nfts + 1 entries; firstBracket[nfts] = brackets in all
  const uint32_t* lower;  // kCollectNothingBits: count only
  const uint32_t* upper;
};

struct LinearTileInput {
  const uint8_t* data;
  DType dtype;
  float coeff;
};

struct LinearTileJob {
  const LinearTileInput* inputs;
  size_t ninputs;
  uint8_t* out;
  DType outDtype;
};

struct TileOps {
  const char* name;
  // out[j] = decode(data[start + j]) for j < count.
  void (*decode)(DType dtype, const uint8_t* data, size_t start, size_t count, float* out);
  // dst[start + j] = encode(src[j]).
  void (*encode)(const float* src, size_t count, DType dtype, uint8_t* dst, size_t start);
  // ft[j] -= base[j].
  void (*subtract)(float* ft, const float* base, size_t count);
  // One reduction tile (count <= 4096) in the fixed lane order: Σ|x|, Σ x·y.
  double (*absSumTile)(const float* x, size_t count);
  double (*dotTile)(const float* x, const float* y, size_t count);
  // countsAbove[t] += #{(double)|x| > thresholds[t]}; *nonFinite += #{x is NaN or Inf}.
  void (*absCounts)(const float* x, size_t count, const double* thresholds, size_t nthresholds,
                    uint64_t* countsAbove, uint64_t* nonFinite);
  uint64_t (*countNonFinite)(const float* x, size_t count);
  // absSumTile, absCounts and countNonFinite of one reduction tile (count <= kReduceTile) of
  // δ = decode(ft) - decode(base) (base may be null), elements [start, start + count), computed
  // in registers; ft and base share dtype code dtypeCode (as BracketJob). Returns the tile sum.
  double (*absStatsDelta)(int dtypeCode, const uint8_t* ft, const uint8_t* base, size_t start, size_t count,
                          const double* thresholds, size_t nthresholds, uint64_t* countsAbove, uint64_t* nonFinite);
  // out[j] = bits of |x[j]|.
  void (*absBits)(const float* x, size_t count, uint32_t* out);
  // Bracket pass of the exact selection (select.cpp) over fine-tunes sharing one base: model t's
  // δ = decode(fts[t]) - decode(base) (base may be null) over elements [start, start + count),
  // count <= kReduceTile, with brackets [firstBracket[t], firstBracket[t + 1]). For each bracket
  // b: above[b] += #{a > upper[b]}, and the abs bits a of the elements with lower[b] <= a <=
  // upper[b] are stored in index order at values[b] + nvalues[b], nvalues[b] advancing by their
  // number. values[b] needs room for count + kMaxVectorLanes more entries (whole vectors are stored).
  void (*bracketShared)(const BracketJob& job, size_t start, size_t count, uint64_t* above, uint32_t* const* values,
                        size_t* nvalues);
  // out[j] = the Philox word of element start + j.
  void (*philoxWords)(const RandomStream& stream, uint64_t start, size_t count, uint32_t* out);
  // The fused merge of elements [start, start + count), count <= kMergeTile.
  // bands[t] is used by models whose kind is Bands. nonFinite[0..nmodels] accumulate.
  void (*mergeTile)(const MergeTileJob& job, const TileBands* bands, size_t start, size_t count,
                    uint64_t* nonFinite);
  void (*linearTile)(const LinearTileJob& job, size_t start, size_t count, uint64_t* nonFinite);
};

// Per-thread scratch buffers, kept between calls (no allocation per tile or per call once
// warm). Slots must not alias within one tile function.
enum class ScratchSlot { TileBase, TileModels, TileResult, TileWords, KernelA, KernelB, KernelC, Count };
float* threadScratch(ScratchSlot slot, size_t floats);

// The table in use (chosen once at load, switchable for tests).
const TileOps& ops();

// 256-entry decode tables of the 8-bit floats.
const float* fp8Table(DType dtype);

}  // namespace simd
}  // namespace dppa
