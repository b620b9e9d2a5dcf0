// device.cpp: the device switch and the routing of each kernel to the CPU or the GPU.
#include "device.h"

#include <atomic>
#include <stdexcept>

#if defined(DPPA_HAVE_CUDA) && defined(DPPA_CUDA_HAVE_CPU_API)
#include "../cuda/dppa_cuda.h"
#define DPPA_ROUTE_CUDA 1
#endif

namespace dppa {
namespace addon {
namespace {

std::atomic<int> activeDevice{int(Device::Cpu)};

// The GPU kernels' limits (native/src/cuda/README.md); beyond them the CPU runs the job.
constexpr size_t kCudaMaxModels = 32;
constexpr size_t kCudaMaxBands = 8;
constexpr size_t kCudaMaxThresholds = 16;
constexpr size_t kCudaMaxKs = 8;

bool cudaCovers(const SparsifySpec& sparsify) {
  if (sparsify.kind == SparsifyKind::Della) return false;
  return sparsify.kind != SparsifyKind::Bands || sparsify.rules.nbands <= kCudaMaxBands;
}

bool usable(std::string* reason) {
#ifdef DPPA_ROUTE_CUDA
  return cuda::available(reason);
#else
  if (reason) *reason = "the addon was built without CUDA";
  return false;
#endif
}

}  // namespace

Device currentDevice() { return Device(activeDevice.load()); }

const char* deviceName(Device device) { return device == Device::Cuda ? "cuda" : "cpu"; }

Device selectDevice(const std::string& name) {
  Device device;
  if (name == "cpu") {
    device = Device::Cpu;
  } else if (name == "cuda") {
    std::string reason;
    if (!usable(&reason)) throw std::runtime_error("dppa: device 'cuda' is unavailable: " + reason);
    device = Device::Cuda;
  } else if (name == "auto") {
    device = usable(nullptr) ? Device::Cuda : Device::Cpu;
  } else {
    throw std::invalid_argument("dppa: device must be 'cpu', 'cuda' or 'auto', got '" + name + "'");
  }
  activeDevice.store(int(device));
  return device;
}

bool pinHostForDevice(void* p, size_t bytes) {
#ifdef DPPA_ROUTE_CUDA
  return currentDevice() == Device::Cuda && cuda::pin(p, bytes, nullptr);
#else
  (void)p;
  (void)bytes;
  return false;
#endif
}

void unpinHost(void* p) {
#ifdef DPPA_ROUTE_CUDA
  cuda::unpin(p);
#else
  (void)p;
#endif
}

#ifdef DPPA_ROUTE_CUDA
#define ROUTE(condition, call) \
  do {                         \
    if (condition) return cuda::call; \
    return dppa::call;         \
  } while (0)
#else
#define ROUTE(condition, call) \
  do {                         \
    (void)(condition);         \
    return dppa::call;         \
  } while (0)
#endif

namespace routed {

void decode(Device device, const TensorView& src, float* out) { ROUTE(device == Device::Cuda, decode(src, out)); }

void encode(Device device, const float* src, size_t n, DType outDtype, uint8_t* out) {
  ROUTE(device == Device::Cuda, encode(src, n, outDtype, out));
}

void delta(Device device, const DeltaView& in, float* out) { ROUTE(device == Device::Cuda, delta(in, out)); }

void randomUniform(Device device, const RandomStream& stream, uint64_t start, float* out, size_t n) {
  ROUTE(device == Device::Cuda, randomUniform(stream, start, out, n));
}

AbsStatsResult absStats(Device device, const DeltaView& in, const double* thresholds, size_t nthresholds) {
  ROUTE(device == Device::Cuda && nthresholds <= kCudaMaxThresholds, absStats(in, thresholds, nthresholds));
}

std::vector<double> absHistogram(Device device, const DeltaView& in, uint32_t shift, uint32_t bins,
                                 uint32_t prefixMask, uint32_t prefixValue) {
  ROUTE(device == Device::Cuda, absHistogram(in, shift, bins, prefixMask, prefixValue));
}

SparsifyStatsResult sparsifyStats(Device device, const DeltaView& in, const SparsifySpec& sparsify) {
  ROUTE(device == Device::Cuda && cudaCovers(sparsify), sparsifyStats(in, sparsify));
}

BandRules selectThresholds(Device device, const DeltaView& in, const double* ks, size_t nks, SelectRule rule,
                           size_t rows) {
  ROUTE(device == Device::Cuda && nks <= kCudaMaxKs, selectThresholds(in, ks, nks, rule, rows));
}

std::vector<BandRules> selectThresholdsShared(Device device, const SharedDeltaView& in,
                                              const std::vector<SelectRequest>& requests) {
  if (device != Device::Cuda) return dppa::selectThresholdsShared(in, requests);
  // The GPU selects model by model (each its own pass).
  std::vector<BandRules> out;
  for (size_t t = 0; t < in.fts.size(); ++t)
    out.push_back(selectThresholds(device, in.of(t), requests[t].ks, requests[t].nks, requests[t].rule, 0));
  return out;
}

std::vector<double> mergeTensor(Device device, const MergeSpec& spec) {
  // The GPU kernels take 1..32 models; a merge of none (the output is the base) runs on the CPU.
  bool covered = device == Device::Cuda && !spec.models.empty() && spec.models.size() <= kCudaMaxModels;
  for (const MergeModelSpec& model : spec.models) covered = covered && cudaCovers(model.sparsify);
  ROUTE(covered, mergeTensor(spec));
}

}  // namespace routed

}  // namespace addon
}  // namespace dppa
