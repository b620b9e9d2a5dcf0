// device.h: which device a job runs on. The CPU kernels always exist; the CUDA ones when the
// addon was built with them and a GPU is usable. A job takes the device current when it is
// queued, so switching devices never changes a job in flight. Work the GPU kernels do not
// cover (DELLA, more models, bands or thresholds than their limits) runs on the CPU, with
// the same results.
#pragma once
#include <string>
#include <vector>

#include "dppa/kernels.h"

namespace dppa {
namespace addon {

enum class Device { Cpu, Cuda };

Device currentDevice();
// 'cpu', 'cuda' or 'auto' (the GPU when one is usable). Throws std::runtime_error with the
// reason when 'cuda' is asked for and no GPU is usable; std::invalid_argument for other names.
Device selectDevice(const std::string& name);
const char* deviceName(Device device);

// Pins host memory for the current device (dppa_cuda_pin) when it is the GPU, so that jobs
// reading or writing it skip their staging copy; false (the memory works all the same) on the
// CPU, without CUDA, or when pinning fails. unpinHost before freeing what was pinned.
bool pinHostForDevice(void* p, size_t bytes);
void unpinHost(void* p);

// The kernels of dppa/kernels.h, on the given device.
namespace routed {
void decode(Device device, const TensorView& src, float* out);
void encode(Device device, const float* src, size_t n, DType outDtype, uint8_t* out);
void delta(Device device, const DeltaView& in, float* out);
void randomUniform(Device device, const RandomStream& stream, uint64_t start, float* out, size_t n);
AbsStatsResult absStats(Device device, const DeltaView& in, const double* thresholds, size_t nthresholds);
std::vector<double> absHistogram(Device device, const DeltaView& in, uint32_t shift, uint32_t bins,
                                 uint32_t prefixMask, uint32_t prefixValue);
SparsifyStatsResult sparsifyStats(Device device, const DeltaView& in, const SparsifySpec& sparsify);
BandRules selectThresholds(Device device, const DeltaView& in, const double* ks, size_t nks, SelectRule rule,
                           size_t rows);
std::vector<BandRules> selectThresholdsShared(Device device, const SharedDeltaView& in,
                                              const std::vector<SelectRequest>& requests);
std::vector<double> mergeTensor(Device device, const MergeSpec& spec);
}  // namespace routed

}  // namespace addon
}  // namespace dppa
