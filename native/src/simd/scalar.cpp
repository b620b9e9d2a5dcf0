// scalar.cpp: the reference path: one element at a time, portable C++.
#include <cstring>

#include "dppa/philox.h"
#include "tile_ops.h"
#include "traits_scalar.h"

namespace dppa {
namespace simd {
namespace scalar_path {
using V = ScalarTraits;
static const char* const kPathName = "scalar";
#include "tile_kernels.inl"
}  // namespace scalar_path
const TileOps* scalarOps() { return &scalar_path::kTileOps; }
}  // namespace simd
}  // namespace dppa
