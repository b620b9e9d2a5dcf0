// Plain C++ reference of the CUDA kernels' semantics (single thread, no SIMD, no CUDA), written
// independently of the device code (different formulations: ldexp/frexp arithmetic instead
// of bit tricks, a sort instead of radix selection) so the selftest cross-checks both.
#pragma once
#include <cstdint>
#include <vector>

#include "dppa_cuda.h"

namespace dppa {
namespace cuda {
namespace ref {

float decode(const void* data, int32_t dtype, uint64_t i);
uint16_t encodeBF16(float x);
uint16_t encodeF16(float x);
void encode(const float* src, uint64_t n, int32_t dtype, void* out);
float deltaAt(const dppa_cuda_delta_input& in, uint64_t i);

void philox(uint32_t ctr[4], const uint32_t key[2]);
float uniform(const dppa_cuda_random_stream& s, uint64_t i);

struct AbsStats {
  double sumTiled = 0;   // the documented tile/lane/tree order
  double sumNaive = 0;   // plain left-to-right order, for information
  std::vector<uint64_t> countsAbove;
  uint64_t nonFinite = 0;
};
AbsStats absStats(const dppa_cuda_delta_input& in, const double* thr, int nthr);
std::vector<uint64_t> absHistogram(const dppa_cuda_delta_input& in, uint32_t shift, uint32_t bins, uint32_t prefixMask,
                                   uint32_t prefixValue);
// By sorting (abs bits descending, index ascending). rows > 0: per row, flat cutoffs.
void selectThresholds(const dppa_cuda_delta_input& in, const uint64_t* ks, int nks, int rule, uint64_t rows,
                      uint32_t* bits, int64_t* cutoff);
bool kept(const dppa_cuda_sparsify& sp, uint64_t n, float d, uint64_t i, float* value);
void sparsifyStats(const dppa_cuda_delta_input& in, const dppa_cuda_sparsify& sp, double* sumTiled,
                   double* keptTiled, uint64_t* keptCount);
std::vector<uint64_t> mergeTensor(const dppa_cuda_merge_job& job);

}  // namespace ref
}  // namespace cuda
}  // namespace dppa
