// avx2.cpp: the AVX2 + F16C path. Compiled with -mavx2 -mfma -mf16c -ffp-contract=off; only
// called after the CPU was checked (dispatch.cpp).
#include <cstring>

#include "dppa/philox.h"
#include "tile_ops.h"
#include "traits_avx2.h"
#include "traits_scalar.h"

namespace dppa {
namespace simd {
namespace avx2_path {
using V = Avx2Traits;
static const char* const kPathName = "avx2";
#include "tile_kernels.inl"
}  // namespace avx2_path
const TileOps* avx2Ops() { return &avx2_path::kTileOps; }
}  // namespace simd
}  // namespace dppa
