// avx512.cpp: the AVX-512 (F/BW/VL/DQ) + F16C path. Compiled with those flags and
// -ffp-contract=off; only called after the CPU was checked (dispatch.cpp).
#include <cstring>

#include "dppa/philox.h"
#include "tile_ops.h"
#include "traits_avx512.h"
#include "traits_scalar.h"

namespace dppa {
namespace simd {
namespace avx512_path {
using V = Avx512Traits;
static const char* const kPathName = "avx512";
#include "tile_kernels.inl"
}  // namespace avx512_path
const TileOps* avx512Ops() { return &avx512_path::kTileOps; }
}  // namespace simd
}  // namespace dppa
