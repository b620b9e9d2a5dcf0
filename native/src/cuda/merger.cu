// CudaMerger: streams host tensors through pinned staging buffers onto the device, chunk by
// chunk, on kSlots streams (the CPU copy of chunk c+1 into pinned memory overlaps the transfer
// and kernels of chunk c), and the C API on top of one shared instance.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <cuda_runtime.h>
#if defined(__linux__)
#include <dlfcn.h>
#endif

#include "dppa_cuda.h"
#include "kernels.cuh"

namespace dppa {
namespace cuda {
namespace {

constexpr int kSlots = 2;
constexpr uint64_t kMaxAutoChunk = uint64_t(1) << 25;  // elements: keeps pinned staging modest

struct CudaFailure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw CudaFailure(std::string(what) + ": " + cudaGetErrorString(e));
}
#define CK(x) check((x), #x)

size_t dtypeSize(int32_t dt) {
  switch (dt) {
    case DPPA_CUDA_F32: return 4;
    case DPPA_CUDA_F16: return 2;
    case DPPA_CUDA_BF16: return 2;
    case DPPA_CUDA_F64: return 8;
    case DPPA_CUDA_F8_E4M3: return 1;
    case DPPA_CUDA_F8_E5M2: return 1;
    default: return 0;
  }
}

bool isOutDtype(int32_t dt) { return dt == DPPA_CUDA_F32 || dt == DPPA_CUDA_F16 || dt == DPPA_CUDA_BF16; }

size_t align256(size_t b) { return (b + 255) & ~size_t(255); }

// Large host copies into pinned memory are split over a few threads: one core cannot keep up
// with PCIe 5.
void parallelMemcpy(void* dst, const void* src, size_t bytes) {
  const size_t kSplit = size_t(32) << 20;
  if (bytes < kSplit) {
    std::memcpy(dst, src, bytes);
    return;
  }
  unsigned hw = std::thread::hardware_concurrency();
  int parts = int(std::min<size_t>(std::min(8u, hw ? hw : 1u), bytes / (size_t(8) << 20)));
  if (parts < 2) {
    std::memcpy(dst, src, bytes);
    return;
  }
  std::vector<std::thread> th;
  const size_t per = (bytes + parts - 1) / parts;
  for (int p = 1; p < parts; ++p) {
    const size_t off = per * p;
    if (off >= bytes) break;
    th.emplace_back([=] { std::memcpy(static_cast<char*>(dst) + off, static_cast<const char*>(src) + off, std::min(per, bytes - off)); });
  }
  std::memcpy(dst, src, std::min(per, bytes));
  for (auto& t : th) t.join();
}

struct HostIn {
  const uint8_t* p;
  size_t es;
};

struct Slot {
  cudaStream_t s = nullptr;
  uint8_t* d = nullptr;
  size_t dcap = 0;
  uint8_t* h = nullptr;
  size_t hcap = 0;
  // Filled by the pipeline for the chunk in flight.
  std::vector<uint8_t*> dIn;
  uint8_t* dOut = nullptr;
  uint8_t* hOut = nullptr;
  uint8_t* dScratch = nullptr;  // per-chunk small results (tile sums)
  uint8_t* hScratch = nullptr;
};

struct Layout {
  std::vector<size_t> inOff;
  size_t outOff = 0, scratchOff = 0, total = 0;
};

Layout layoutFor(const std::vector<HostIn>& ins, size_t outEs, uint64_t chunk, size_t scratchBytes) {
  Layout l;
  size_t off = 0;
  for (const auto& in : ins) {
    l.inOff.push_back(off);
    off += align256(chunk * in.es);
  }
  l.outOff = off;
  off += align256(chunk * outEs);
  l.scratchOff = off;
  off += align256(scratchBytes);
  l.total = off;
  return l;
}

DeltaSrc deltaSrcFrom(const dppa_cuda_delta_input& in, const std::vector<uint8_t*>& dIn) {
  DeltaSrc s{};
  if (in.base.data) {
    s.base = dIn[0];
    s.baseDtype = in.base.dtype;
    s.ft = dIn[1];
  } else {
    s.base = nullptr;
    s.ft = dIn[0];
  }
  s.ftDtype = in.ft.dtype;
  return s;
}

std::vector<HostIn> deltaInputs(const dppa_cuda_delta_input& in) {
  std::vector<HostIn> v;
  if (in.base.data) v.push_back({static_cast<const uint8_t*>(in.base.data), dtypeSize(in.base.dtype)});
  v.push_back({static_cast<const uint8_t*>(in.ft.data), dtypeSize(in.ft.dtype)});
  return v;
}

void validateDelta(const dppa_cuda_delta_input& in) {
  if (!dtypeSize(in.ft.dtype)) throw std::invalid_argument("ft: unknown dtype");
  if (in.ft.n && !in.ft.data) throw std::invalid_argument("ft: null data");
  if (in.base.data) {
    if (!dtypeSize(in.base.dtype)) throw std::invalid_argument("base: unknown dtype");
    if (in.base.n != in.ft.n) throw std::invalid_argument("base and ft element counts differ");
  }
}

bool probeDevice(int device, std::string* desc);

class Impl final : public CudaMerger {
 public:
  explicit Impl(int dev) : dev_(dev) {}

  ~Impl() override {
    cudaSetDevice(dev_);
    for (auto& s : slots_) {
      if (s.s) cudaStreamSynchronize(s.s);
      if (s.d) cudaFree(s.d);
      if (s.h) cudaFreeHost(s.h);
      if (s.s) cudaStreamDestroy(s.s);
    }
    for (void* p : {(void*)dCounts_, (void*)dHist_, (void*)dTile_, (void*)dIndex_, (void*)dRules_, (void*)dRowBits_,
                    (void*)dRowCut_, (void*)dChunkCounts_})
      if (p) cudaFree(p);
  }

  // Context, streams, and a one-element launch: proves a kernel image for this device exists.
  std::string init() {
    try {
      CK(cudaSetDevice(dev_));
      if (!probeDevice(dev_, &name_)) return name_;
      int smemOptin = 0;
      CK(cudaDeviceGetAttribute(&smemOptin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev_));
      if (smemOptin < 128 * 1024) hi16Shared_ = false;  // e.g. sm_86/89: 99 KiB per block
      for (auto& s : slots_) CK(cudaStreamCreateWithFlags(&s.s, cudaStreamNonBlocking));
      CK(cudaMalloc(&dCounts_, sizeof(unsigned long long) * 64));
      CK(cudaMalloc(&dHist_, sizeof(unsigned long long) * DPPA_CUDA_MAX_BANDS * 65536));
      CK(cudaMalloc(&dIndex_, sizeof(int64_t)));
      float* probe = nullptr;
      CK(cudaMalloc(&probe, sizeof(float)));
      dppa_cuda_random_stream rs{};
      launchRandomUniform(rs, 0, 1, probe, slots_[0].s);
      cudaError_t e = cudaGetLastError();
      if (e == cudaSuccess) e = cudaStreamSynchronize(slots_[0].s);
      cudaFree(probe);
      if (e != cudaSuccess) return std::string("test kernel failed: ") + cudaGetErrorString(e);
      return "";
    } catch (const std::exception& ex) {
      return ex.what();
    }
  }

  std::string deviceName() const override { return name_; }

  void setChunkElements(uint64_t n) override {
    chunkOverride_ = n == 0 ? 0 : std::max<uint64_t>(kTile, n / kTile * kTile);
  }

  uint64_t chunkElements(uint64_t bytesPerElement) override {
    if (chunkOverride_) return chunkOverride_;
    size_t freeB = 0, totalB = 0;
    if (cudaMemGetInfo(&freeB, &totalB) != cudaSuccess) freeB = size_t(1) << 30;
    size_t held = 0;
    for (auto& s : slots_) held += s.dcap;
    const uint64_t budget = (uint64_t(freeB) + held) / 2;
    uint64_t c = budget / (kSlots * std::max<uint64_t>(1, bytesPerElement + 1));
    c = std::min(c, kMaxAutoChunk);
    c = c / kTile * kTile;
    return std::max<uint64_t>(c, kTile);
  }

  // ---- operations ---------------------------------------------------------------------------

  std::string mergeTensor(const dppa_cuda_merge_job& job, double* nonFinite) override {
    return guard([&] {
      const uint64_t n = job.base.n;
      if (job.nmodels < 1 || job.nmodels > DPPA_CUDA_MAX_MODELS)
        throw std::invalid_argument("nmodels must be 1.." + std::to_string(DPPA_CUDA_MAX_MODELS));
      if (!dtypeSize(job.base.dtype)) throw std::invalid_argument("base: unknown dtype");
      if (!isOutDtype(job.out_dtype)) throw std::invalid_argument("out dtype must be F32, F16 or BF16");
      if (job.consensus < 0 || job.consensus > 2) throw std::invalid_argument("unknown consensus");
      std::vector<HostIn> ins{{static_cast<const uint8_t*>(job.base.data), dtypeSize(job.base.dtype)}};
      uint64_t bpe = dtypeSize(job.base.dtype) + dtypeSize(job.out_dtype);
      for (int t = 0; t < job.nmodels; ++t) {
        const auto& m = job.models[t];
        if (!dtypeSize(m.tensor.dtype)) throw std::invalid_argument("model " + std::to_string(t) + ": unknown dtype");
        if (m.tensor.n != n) throw std::invalid_argument("model " + std::to_string(t) + ": element count differs from base");
        ins.push_back({static_cast<const uint8_t*>(m.tensor.data), dtypeSize(m.tensor.dtype)});
        bpe += dtypeSize(m.tensor.dtype);
      }
      MergeParams p{};
      p.baseDtype = job.base.dtype;
      p.nmodels = job.nmodels;
      p.consensus = job.consensus;
      p.normalize = job.normalize ? 1 : 0;
      p.lambda = float(job.lambda);
      p.outDtype = job.out_dtype;
      std::vector<const dppa_cuda_sparsify*> sps;
      for (int t = 0; t < job.nmodels; ++t) sps.push_back(&job.models[t].sparsify);
      std::vector<SparsifyDev> devs = uploadSparsify(sps, n);
      for (int t = 0; t < job.nmodels; ++t) {
        p.models[t].dtype = job.models[t].tensor.dtype;
        p.models[t].weight = float(job.models[t].weight);
        p.models[t].sp = devs[t];
      }
      zero(dCounts_, sizeof(unsigned long long) * 64);
      pipeline(n, chunkElements(bpe), ins, static_cast<uint8_t*>(job.out), dtypeSize(job.out_dtype), 0,
               [&](Slot& sl, uint64_t, uint64_t start, uint64_t len) {
                 MergeParams q = p;
                 q.base = sl.dIn[0];
                 for (int t = 0; t < job.nmodels; ++t) q.models[t].data = sl.dIn[t + 1];
                 launchMerge(q, start, len, sl.dOut, dCounts_, sl.s);
               },
               [](Slot&, uint64_t, uint64_t, uint64_t) {});
      if (nonFinite) {
        unsigned long long c[DPPA_CUDA_MAX_MODELS + 1];
        CK(cudaMemcpy(c, dCounts_, sizeof(unsigned long long) * (job.nmodels + 1), cudaMemcpyDeviceToHost));
        for (int t = 0; t <= job.nmodels; ++t) nonFinite[t] = double(c[t]);
      }
    });
  }

  std::string decode(const dppa_cuda_tensor& src, float* out) override {
    return guard([&] {
      if (!dtypeSize(src.dtype)) throw std::invalid_argument("unknown dtype");
      std::vector<HostIn> ins{{static_cast<const uint8_t*>(src.data), dtypeSize(src.dtype)}};
      pipeline(src.n, chunkElements(dtypeSize(src.dtype) + 4), ins, reinterpret_cast<uint8_t*>(out), 4, 0,
               [&](Slot& sl, uint64_t, uint64_t, uint64_t len) {
                 launchDecode(sl.dIn[0], src.dtype, len, reinterpret_cast<float*>(sl.dOut), sl.s);
               },
               [](Slot&, uint64_t, uint64_t, uint64_t) {});
    });
  }

  std::string encode(const float* src, uint64_t n, int32_t outDtype, void* out) override {
    return guard([&] {
      if (!isOutDtype(outDtype)) throw std::invalid_argument("out dtype must be F32, F16 or BF16");
      std::vector<HostIn> ins{{reinterpret_cast<const uint8_t*>(src), 4}};
      pipeline(n, chunkElements(4 + dtypeSize(outDtype)), ins, static_cast<uint8_t*>(out), dtypeSize(outDtype), 0,
               [&](Slot& sl, uint64_t, uint64_t, uint64_t len) {
                 launchEncode(reinterpret_cast<const float*>(sl.dIn[0]), len, outDtype, sl.dOut, sl.s);
               },
               [](Slot&, uint64_t, uint64_t, uint64_t) {});
    });
  }

  std::string delta(const dppa_cuda_delta_input& in, float* out) override {
    return guard([&] {
      validateDelta(in);
      auto ins = deltaInputs(in);
      pipeline(in.ft.n, chunkElements(bytesPerElement(ins) + 4), ins, reinterpret_cast<uint8_t*>(out), 4, 0,
               [&](Slot& sl, uint64_t, uint64_t, uint64_t len) {
                 launchDelta(deltaSrcFrom(in, sl.dIn), len, reinterpret_cast<float*>(sl.dOut), sl.s);
               },
               [](Slot&, uint64_t, uint64_t, uint64_t) {});
    });
  }

  std::string absStats(const dppa_cuda_delta_input& in, const double* thresholds, int32_t nthr, double* sumAbs,
                       double* countsAbove, double* nonFinite) override {
    return guard([&] {
      validateDelta(in);
      if (nthr < 0 || nthr > DPPA_CUDA_MAX_THRESHOLDS)
        throw std::invalid_argument("at most " + std::to_string(DPPA_CUDA_MAX_THRESHOLDS) + " thresholds");
      auto ins = deltaInputs(in);
      const uint64_t chunk = chunkElements(bytesPerElement(ins));
      zero(dCounts_, sizeof(unsigned long long) * 64);
      double sum = 0.0;
      pipeline(in.ft.n, chunk, ins, nullptr, 0, tilesOf(chunk) * sizeof(double),
               [&](Slot& sl, uint64_t, uint64_t, uint64_t len) {
                 launchAbsStats(deltaSrcFrom(in, sl.dIn), len, thresholds, nthr,
                                reinterpret_cast<double*>(sl.dScratch), dCounts_, sl.s);
                 CK(cudaMemcpyAsync(sl.hScratch, sl.dScratch, tilesOf(len) * sizeof(double), cudaMemcpyDeviceToHost, sl.s));
               },
               [&](Slot& sl, uint64_t, uint64_t, uint64_t len) {
                 const double* t = reinterpret_cast<const double*>(sl.hScratch);
                 for (uint64_t j = 0; j < tilesOf(len); ++j) sum += t[j];
               });
      unsigned long long c[DPPA_CUDA_MAX_THRESHOLDS + 1];
      CK(cudaMemcpy(c, dCounts_, sizeof(unsigned long long) * (nthr + 1), cudaMemcpyDeviceToHost));
      if (sumAbs) *sumAbs = sum;
      if (nonFinite) *nonFinite = double(c[0]);
      if (countsAbove)
        for (int j = 0; j < nthr; ++j) countsAbove[j] = double(c[j + 1]);
    });
  }

  std::string absHistogram(const dppa_cuda_delta_input& in, uint32_t shift, uint32_t bins, uint32_t prefixMask,
                           uint32_t prefixValue, double* out) override {
    return guard([&] {
      validateDelta(in);
      if (bins == 0 || bins > 65536 || (bins & (bins - 1))) throw std::invalid_argument("bins must be a power of two <= 65536");
      if (shift > 31) throw std::invalid_argument("shift must be 0..31");
      auto ins = deltaInputs(in);
      zero(dHist_, sizeof(unsigned long long) * bins);
      forEachChunk(in, ins, chunkElements(bytesPerElement(ins)),
                   [&](Slot& sl, const DeltaSrc& src, uint64_t, uint64_t, uint64_t len) {
        launchHistogram(src, len, shift, bins, prefixMask, &prefixValue, 1, dHist_, sl.s);
      });
      std::vector<unsigned long long> h(bins);
      CK(cudaMemcpy(h.data(), dHist_, sizeof(unsigned long long) * bins, cudaMemcpyDeviceToHost));
      for (uint32_t b = 0; b < bins; ++b) out[b] = double(h[b]);
    });
  }

  std::string selectThresholds(const dppa_cuda_delta_input& in, const uint64_t* ks, int32_t nks, int32_t rule,
                               uint64_t rows, uint32_t* outBits, int64_t* outCutoff) override {
    return guard([&] {
      validateDelta(in);
      if (nks < 0 || nks > DPPA_CUDA_MAX_BANDS)
        throw std::invalid_argument("at most " + std::to_string(DPPA_CUDA_MAX_BANDS) + " keep-counts");
      if (rule != 0 && rule != 1) throw std::invalid_argument("rule must be 0 (index) or 1 (drop)");
      if (rows > 0)
        selectRows(in, ks, nks, rule, rows, outBits, outCutoff);
      else
        selectWhole(in, ks, nks, rule, outBits, outCutoff);
    });
  }

  std::string sparsifyStats(const dppa_cuda_delta_input& in, const dppa_cuda_sparsify& sp, double* sumAbs,
                            double* sumAbsKept, double* kept) override {
    return guard([&] {
      validateDelta(in);
      auto ins = deltaInputs(in);
      const uint64_t n = in.ft.n;
      const SparsifyDev dev = uploadSparsify({&sp}, n)[0];
      const uint64_t chunk = chunkElements(bytesPerElement(ins));
      zero(dCounts_, sizeof(unsigned long long) * 64);
      double sum = 0.0, sumKept = 0.0;
      pipeline(n, chunk, ins, nullptr, 0, 2 * tilesOf(chunk) * sizeof(double),
               [&](Slot& sl, uint64_t, uint64_t start, uint64_t len) {
                 double* t = reinterpret_cast<double*>(sl.dScratch);
                 launchSparsifyStats(deltaSrcFrom(in, sl.dIn), dev, start, len, t, t + tilesOf(chunk), dCounts_, sl.s);
                 CK(cudaMemcpyAsync(sl.hScratch, sl.dScratch, 2 * tilesOf(chunk) * sizeof(double), cudaMemcpyDeviceToHost,
                                    sl.s));
               },
               [&](Slot& sl, uint64_t, uint64_t, uint64_t len) {
                 const double* t = reinterpret_cast<const double*>(sl.hScratch);
                 for (uint64_t j = 0; j < tilesOf(len); ++j) sum += t[j];
                 for (uint64_t j = 0; j < tilesOf(len); ++j) sumKept += t[tilesOf(chunk) + j];
               });
      unsigned long long c = 0;
      CK(cudaMemcpy(&c, dCounts_, sizeof c, cudaMemcpyDeviceToHost));
      if (sumAbs) *sumAbs = sum;
      if (sumAbsKept) *sumAbsKept = sumKept;
      if (kept) *kept = double(c);
    });
  }

  std::string randomUniform(const dppa_cuda_random_stream& rs, uint64_t start, float* out, uint64_t n) override {
    return guard([&] {
      std::vector<HostIn> ins;
      pipeline(n, chunkElements(4), ins, reinterpret_cast<uint8_t*>(out), 4, 0,
               [&](Slot& sl, uint64_t, uint64_t cs, uint64_t len) {
                 launchRandomUniform(rs, start + cs, len, reinterpret_cast<float*>(sl.dOut), sl.s);
               },
               [](Slot&, uint64_t, uint64_t, uint64_t) {});
    });
  }

  std::string pin(void* p, size_t bytes) override {
    return guard([&] { CK(cudaHostRegister(p, bytes, cudaHostRegisterDefault)); });
  }

 private:
  template <class F>
  std::string guard(F&& f) {
    try {
      CK(cudaSetDevice(dev_));
      f();
      CK(cudaGetLastError());
      return "";
    } catch (const std::exception& e) {
      // Leave the device usable for the next job.
      for (auto& s : slots_)
        if (s.s) cudaStreamSynchronize(s.s);
      cudaGetLastError();
      return e.what();
    }
  }

  // Memsets and pageable uploads on the legacy stream do not order against our non-blocking
  // streams, so they are followed by a device-wide wait.
  void zero(void* p, size_t bytes) {
    CK(cudaMemsetAsync(p, 0, bytes, 0));
    CK(cudaDeviceSynchronize());
  }

  static uint64_t tilesOf(uint64_t len) { return (len + kTile - 1) / kTile; }

  static uint64_t bytesPerElement(const std::vector<HostIn>& ins) {
    uint64_t b = 0;
    for (auto& i : ins) b += i.es;
    return b;
  }

  void ensure(Slot& s, size_t bytes) {
    if (s.dcap < bytes) {
      if (s.d) CK(cudaFree(s.d));
      s.d = nullptr;
      s.dcap = 0;
      CK(cudaMalloc(&s.d, bytes));
      s.dcap = bytes;
    }
    if (s.hcap < bytes) {
      if (s.h) CK(cudaFreeHost(s.h));
      s.h = nullptr;
      s.hcap = 0;
      CK(cudaMallocHost(&s.h, bytes));
      s.hcap = bytes;
    }
  }

  void bind(Slot& s, const Layout& l, size_t nin) {
    s.dIn.assign(nin, nullptr);
    for (size_t i = 0; i < nin; ++i) s.dIn[i] = s.d + l.inOff[i];
    s.dOut = s.d + l.outOff;
    s.hOut = s.h + l.outOff;
    s.dScratch = s.d + l.scratchOff;
    s.hScratch = s.h + l.scratchOff;
  }

  // Host memory the device can read and write directly (dppa_cuda_pin, cudaMallocHost).
  static bool pinned(const void* p) {
    cudaPointerAttributes a;
    if (cudaPointerGetAttributes(&a, p) != cudaSuccess) {
      cudaGetLastError();
      return false;
    }
    return a.type == cudaMemoryTypeHost;
  }

  // Inputs in pinned memory are uploaded from where they are; the others are first copied into
  // the slot's pinned buffer (on this thread). Either way the copy completes before the job
  // returns, as every pipeline waits for its slots.
  void stage(Slot& s, const Layout& l, const std::vector<HostIn>& ins, uint64_t start, uint64_t len) {
    for (size_t i = 0; i < ins.size(); ++i) {
      const size_t bytes = len * ins[i].es;
      if (!bytes) continue;
      if (!ins[i].p) throw std::invalid_argument("null tensor data");
      const uint8_t* from = ins[i].p + start * ins[i].es;
      if (!pinned(ins[i].p)) {
        parallelMemcpy(s.h + l.inOff[i], from, bytes);
        from = s.h + l.inOff[i];
      }
      CK(cudaMemcpyAsync(s.d + l.inOff[i], from, bytes, cudaMemcpyHostToDevice, s.s));
    }
  }

  // Chunks of `chunk` elements through the slots in turn. launch(slot, c, start, len) enqueues
  // kernels (and any scratch read-back) on slot.s; drain(slot, c, start, len) runs on the host
  // once the chunk is complete and its output is copied out, strictly in chunk order.
  template <class Launch, class Drain>
  void pipeline(uint64_t n, uint64_t chunk, const std::vector<HostIn>& ins, uint8_t* outHost, size_t outEs,
                size_t scratchBytes, Launch&& launch, Drain&& drain) {
    if (n == 0) return;
    chunk = std::min(chunk, n);
    const Layout l = layoutFor(ins, outEs, chunk, scratchBytes);
    const uint64_t nchunks = (n + chunk - 1) / chunk;
    const int used = int(std::min<uint64_t>(kSlots, nchunks));
    for (int s = 0; s < used; ++s) {
      ensure(slots_[s], l.total);
      bind(slots_[s], l, ins.size());
    }
    // A pinned output takes the download directly; otherwise it goes through the slot.
    const bool outPinned = outHost && pinned(outHost);
    auto finish = [&](uint64_t c) {
      Slot& sl = slots_[c % kSlots];
      CK(cudaStreamSynchronize(sl.s));
      CK(cudaGetLastError());
      const uint64_t start = c * chunk, len = std::min(chunk, n - start);
      if (outHost && !outPinned) parallelMemcpy(outHost + start * outEs, sl.hOut, len * outEs);
      drain(sl, c, start, len);
    };
    for (uint64_t c = 0; c < nchunks; ++c) {
      Slot& sl = slots_[c % kSlots];
      if (c >= uint64_t(kSlots)) finish(c - kSlots);
      const uint64_t start = c * chunk, len = std::min(chunk, n - start);
      stage(sl, l, ins, start, len);
      launch(sl, c, start, len);
      if (outHost)
        CK(cudaMemcpyAsync(outPinned ? outHost + start * outEs : sl.hOut, sl.dOut, len * outEs, cudaMemcpyDeviceToHost, sl.s));
    }
    for (uint64_t c = nchunks > uint64_t(kSlots) ? nchunks - kSlots : 0; c < nchunks; ++c) finish(c);
  }

  // Runs fn(slot, src, c, start, len) over every chunk of δ. A tensor that fits one chunk is
  // staged once and stays resident for every pass of the same call (resident_ is set by the
  // caller for multi-pass work); otherwise each pass streams it again.
  // `chunk` must be the same for every pass of one call: chunk c starts at c * chunk.
  template <class Fn>
  void forEachChunk(const dppa_cuda_delta_input& in, const std::vector<HostIn>& ins, uint64_t chunk, Fn&& fn) {
    const uint64_t n = in.ft.n;
    if (n == 0) return;
    if (resident_) {
      fn(slots_[0], deltaSrcFrom(in, slots_[0].dIn), 0, 0, n);
      CK(cudaStreamSynchronize(slots_[0].s));
      return;
    }
    pipeline(n, chunk, ins, nullptr, 0, 0,
             [&](Slot& sl, uint64_t c, uint64_t start, uint64_t len) { fn(sl, deltaSrcFrom(in, sl.dIn), c, start, len); },
             [](Slot&, uint64_t, uint64_t, uint64_t) {});
  }

  // Stages [start, start + len) into slot 0 and waits; returns the layout used.
  void stageOne(const std::vector<HostIn>& ins, uint64_t start, uint64_t len, uint64_t capacity) {
    Slot& sl = slots_[0];
    const Layout l = layoutFor(ins, 0, capacity, tilesOf(capacity) * sizeof(uint32_t));
    ensure(sl, l.total);
    bind(sl, l, ins.size());
    stage(sl, l, ins, start, len);
    CK(cudaStreamSynchronize(sl.s));
  }

  void selectWhole(const dppa_cuda_delta_input& in, const uint64_t* ks, int32_t nks, int32_t rule, uint32_t* outBits,
                   int64_t* outCutoff) {
    const uint64_t n = in.ft.n;
    for (int b = 0; b < nks; ++b)
      if (ks[b] > n) throw std::invalid_argument("k = " + std::to_string(ks[b]) + " exceeds n = " + std::to_string(n));
    std::vector<int> active;
    for (int b = 0; b < nks; ++b) {
      outBits[b] = 0xFFFFFFFFu;
      outCutoff[b] = -1;
      if (ks[b] > 0) active.push_back(b);
    }
    if (active.empty()) return;
    const int na = int(active.size());
    auto ins = deltaInputs(in);
    const uint64_t chunk = std::min<uint64_t>(chunkElements(bytesPerElement(ins)), n);
    const uint64_t nchunks = (n + chunk - 1) / chunk;
    struct ResidentScope {
      bool& r;
      ~ResidentScope() { r = false; }
    } scope{resident_};
    if (nchunks == 1) {
      stageOne(ins, 0, n, n);
      resident_ = true;
    }

    // Pass A: high 16 bits.
    std::vector<unsigned long long> h(size_t(na) * 65536);
    zero(dHist_, sizeof(unsigned long long) * 65536);
    const uint32_t noPrefix = 0;
    forEachChunk(in, ins, chunk, [&](Slot& sl, const DeltaSrc& src, uint64_t, uint64_t, uint64_t len) {
      if (hi16Shared_)
        launchHistogramHi16Shared(src, len, dHist_, sl.s);
      else
        launchHistogram(src, len, 16, 65536, 0, &noPrefix, 1, dHist_, sl.s);
    });
    CK(cudaDeviceSynchronize());
    CK(cudaMemcpy(h.data(), dHist_, sizeof(unsigned long long) * 65536, cudaMemcpyDeviceToHost));
    std::vector<uint32_t> hiBin(na);
    std::vector<uint64_t> rem(na);
    for (int a = 0; a < na; ++a) {
      const uint64_t k = ks[active[a]];
      uint64_t cum = 0;
      int bin = 65535;
      for (; bin > 0; --bin) {
        if (cum + h[bin] >= k) break;
        cum += h[bin];
      }
      hiBin[a] = uint32_t(bin);
      rem[a] = k - cum;
    }
    // Pass B: low 16 bits inside each chosen bin.
    std::vector<uint32_t> prefix(na);
    for (int a = 0; a < na; ++a) prefix[a] = hiBin[a] << 16;
    zero(dHist_, sizeof(unsigned long long) * 65536 * na);
    forEachChunk(in, ins, chunk, [&](Slot& sl, const DeltaSrc& src, uint64_t, uint64_t, uint64_t len) {
      launchHistogram(src, len, 0, 65536, 0xFFFF0000u, prefix.data(), na, dHist_, sl.s);
    });
    CK(cudaDeviceSynchronize());
    CK(cudaMemcpy(h.data(), dHist_, sizeof(unsigned long long) * 65536 * na, cudaMemcpyDeviceToHost));
    std::vector<uint32_t> target(na);
    for (int a = 0; a < na; ++a) {
      const unsigned long long* hb = h.data() + size_t(a) * 65536;
      uint64_t cum = 0;
      int bin = 65535;
      for (; bin > 0; --bin) {
        if (cum + hb[bin] >= rem[a]) break;
        cum += hb[bin];
      }
      target[a] = prefix[a] | uint32_t(bin);
      rem[a] -= cum;  // m: how many elements equal to the threshold are kept, lowest index first
      outBits[active[a]] = target[a];
    }
    if (rule == 1) return;

    // Pass C: which chunk holds the m-th equal element, then which tile, then where.
    if (dChunkCountsCap_ < nchunks * na) {
      if (dChunkCounts_) CK(cudaFree(dChunkCounts_));
      dChunkCounts_ = nullptr;
      CK(cudaMalloc(&dChunkCounts_, sizeof(unsigned long long) * nchunks * na));
      dChunkCountsCap_ = nchunks * na;
    }
    zero(dChunkCounts_, sizeof(unsigned long long) * nchunks * na);
    forEachChunk(in, ins, chunk, [&](Slot& sl, const DeltaSrc& src, uint64_t c, uint64_t, uint64_t len) {
      launchCountEqual(src, len, target.data(), na, dChunkCounts_ + c * na, sl.s);
    });
    CK(cudaDeviceSynchronize());
    std::vector<unsigned long long> cc(nchunks * na);
    CK(cudaMemcpy(cc.data(), dChunkCounts_, sizeof(unsigned long long) * nchunks * na, cudaMemcpyDeviceToHost));
    for (int a = 0; a < na; ++a) {
      uint64_t m = rem[a];
      uint64_t c = 0;
      for (; c < nchunks; ++c) {
        if (cc[c * na + a] >= m) break;
        m -= cc[c * na + a];
      }
      if (c == nchunks) throw std::logic_error("selection: tie count mismatch");
      const uint64_t start = c * chunk, len = std::min(chunk, n - start);
      if (!resident_) stageOne(ins, start, len, chunk);
      Slot& sl = slots_[0];
      const DeltaSrc src = deltaSrcFrom(in, sl.dIn);
      const uint64_t tiles = tilesOf(len);
      if (dTileCap_ < tiles) {
        if (dTile_) CK(cudaFree(dTile_));
        dTile_ = nullptr;
        CK(cudaMalloc(&dTile_, sizeof(uint32_t) * tiles));
        dTileCap_ = tiles;
      }
      launchTileCountEqual(src, len, target[a], dTile_, sl.s);
      std::vector<uint32_t> tc(tiles);
      CK(cudaMemcpyAsync(tc.data(), dTile_, sizeof(uint32_t) * tiles, cudaMemcpyDeviceToHost, sl.s));
      CK(cudaStreamSynchronize(sl.s));
      uint64_t t = 0;
      for (; t < tiles; ++t) {
        if (tc[t] >= m) break;
        m -= tc[t];
      }
      if (t == tiles) throw std::logic_error("selection: tile count mismatch");
      const uint64_t from = t * kTile;
      launchFindMthEqual(src, from, std::min(kTile, len - from), target[a], m, dIndex_, sl.s);
      int64_t local = -1;
      CK(cudaMemcpyAsync(&local, dIndex_, sizeof local, cudaMemcpyDeviceToHost, sl.s));
      CK(cudaStreamSynchronize(sl.s));
      if (local < 0) throw std::logic_error("selection: cutoff not found");
      outCutoff[active[a]] = int64_t(start) + local;
    }
  }

  void selectRows(const dppa_cuda_delta_input& in, const uint64_t* ks, int32_t nks, int32_t rule, uint64_t rows,
                  uint32_t* outBits, int64_t* outCutoff) {
    const uint64_t n = in.ft.n;
    if (n % rows) throw std::invalid_argument("rows = " + std::to_string(rows) + " does not divide n = " + std::to_string(n));
    const uint64_t cols = n / rows;
    for (int b = 0; b < nks; ++b)
      if (ks[b] > cols) throw std::invalid_argument("k = " + std::to_string(ks[b]) + " exceeds the row length " + std::to_string(cols));
    if (nks == 0) return;
    if (cols == 0) {
      for (uint64_t i = 0; i < rows * nks; ++i) {
        outBits[i] = 0xFFFFFFFFu;
        outCutoff[i] = -1;
      }
      return;
    }
    RowSelectParams p{};
    p.nks = nks;
    p.rule = rule;
    for (int b = 0; b < nks; ++b) p.ks[b] = ks[b];
    const size_t entries = size_t(rows) * nks;
    if (dRowCap_ < entries) {
      if (dRowBits_) CK(cudaFree(dRowBits_));
      if (dRowCut_) CK(cudaFree(dRowCut_));
      dRowBits_ = nullptr;
      dRowCut_ = nullptr;
      CK(cudaMalloc(&dRowBits_, sizeof(uint32_t) * entries));
      CK(cudaMalloc(&dRowCut_, sizeof(int64_t) * entries));
      dRowCap_ = entries;
    }
    auto ins = deltaInputs(in);
    const uint64_t rowsPerChunk = std::max<uint64_t>(1, chunkElements(bytesPerElement(ins)) / cols);
    pipeline(n, rowsPerChunk * cols, ins, nullptr, 0, 0,
             [&](Slot& sl, uint64_t, uint64_t start, uint64_t len) {
               const uint64_t r0 = start / cols;
               launchRowSelect(deltaSrcFrom(in, sl.dIn), len / cols, cols, start, p, dRowBits_ + r0 * nks,
                               dRowCut_ + r0 * nks, sl.s);
             },
             [](Slot&, uint64_t, uint64_t, uint64_t) {});
    CK(cudaMemcpy(outBits, dRowBits_, sizeof(uint32_t) * entries, cudaMemcpyDeviceToHost));
    CK(cudaMemcpy(outCutoff, dRowCut_, sizeof(int64_t) * entries, cudaMemcpyDeviceToHost));
  }

  // Copies every band rule table to the device; returns the kernel-side descriptions.
  std::vector<SparsifyDev> uploadSparsify(const std::vector<const dppa_cuda_sparsify*>& sps, uint64_t n) {
    size_t bytes = 0;
    std::vector<size_t> entries(sps.size(), 0);
    for (size_t t = 0; t < sps.size(); ++t) {
      const auto& sp = *sps[t];
      if (sp.kind < 0 || sp.kind > 2) throw std::invalid_argument("model " + std::to_string(t) + ": unknown sparsify kind");
      if (sp.kind != DPPA_CUDA_SPARSIFY_BANDS) continue;
      const auto& r = sp.rules;
      if (r.nbands < 1 || r.nbands > DPPA_CUDA_MAX_BANDS)
        throw std::invalid_argument("model " + std::to_string(t) + ": nbands must be 1.." + std::to_string(DPPA_CUDA_MAX_BANDS));
      if (r.rows && n % r.rows)
        throw std::invalid_argument("model " + std::to_string(t) + ": rule rows do not divide the tensor");
      if (!r.bits || !r.cutoff || !sp.band_factor) throw std::invalid_argument("model " + std::to_string(t) + ": null band rules");
      entries[t] = size_t(r.rows ? r.rows : 1) * r.nbands;
      bytes += align256(entries[t] * 4) + align256(entries[t] * 8);
    }
    if (bytes > dRulesCap_) {
      if (dRules_) CK(cudaFree(dRules_));
      dRules_ = nullptr;
      CK(cudaMalloc(&dRules_, bytes));
      dRulesCap_ = bytes;
    }
    std::vector<SparsifyDev> out(sps.size());
    size_t off = 0;
    for (size_t t = 0; t < sps.size(); ++t) {
      const auto& sp = *sps[t];
      SparsifyDev& d = out[t];
      d.kind = sp.kind;
      d.factor = float(sp.factor);
      d.stream = sp.stream;
      d.density = sp.density;
      d.rescale = float(sp.rescale);
      if (sp.kind == DPPA_CUDA_SPARSIFY_BANDS) {
        const auto& r = sp.rules;
        d.nbands = r.nbands;
        d.cols = r.rows ? n / r.rows : 0;
        if (r.rows && d.cols == 0) d.cols = 1;  // empty tensor: never indexed
        for (int b = 0; b < r.nbands; ++b) d.bandFactor[b] = float(sp.band_factor[b]);
        uint32_t* bits = reinterpret_cast<uint32_t*>(dRules_ + off);
        off += align256(entries[t] * 4);
        int64_t* cut = reinterpret_cast<int64_t*>(dRules_ + off);
        off += align256(entries[t] * 8);
        CK(cudaMemcpy(bits, r.bits, entries[t] * 4, cudaMemcpyHostToDevice));
        CK(cudaMemcpy(cut, r.cutoff, entries[t] * 8, cudaMemcpyHostToDevice));
        d.bits = bits;
        d.cutoff = cut;
      }
    }
    CK(cudaDeviceSynchronize());
    return out;
  }

  int dev_;
  std::string name_;
  Slot slots_[kSlots];
  uint64_t chunkOverride_ = 0;
  bool resident_ = false;
  // Selection pass A: shared-memory histograms (default) or warp-aggregated global atomics
  // (DPPA_CUDA_HIST=global), for measuring one against the other.
  bool hi16Shared_ = [] {
    const char* e = std::getenv("DPPA_CUDA_HIST");
    return !(e && std::string(e) == "global");
  }();
  unsigned long long* dCounts_ = nullptr;
  unsigned long long* dHist_ = nullptr;
  unsigned long long* dChunkCounts_ = nullptr;
  uint64_t dChunkCountsCap_ = 0;
  uint32_t* dTile_ = nullptr;
  uint64_t dTileCap_ = 0;
  int64_t* dIndex_ = nullptr;
  uint8_t* dRules_ = nullptr;
  size_t dRulesCap_ = 0;
  uint32_t* dRowBits_ = nullptr;
  int64_t* dRowCut_ = nullptr;
  size_t dRowCap_ = 0;
};

// ---- the process-wide instance behind the C API ------------------------------------------------

std::mutex gMutex;
// Never destroyed: static destructors run after the CUDA runtime may be torn down at exit.
CudaMerger* gMerger = nullptr;
std::string gWhy;
bool gTried = false;
uint64_t gChunk = 0;

CudaMerger* shared(std::string* why) {
  if (!gTried) {
    gTried = true;
    gMerger = CudaMerger::create(0, &gWhy).release();
    if (gMerger && gChunk) gMerger->setChunkElements(gChunk);
  }
  if (!gMerger && why) *why = gWhy;
  return gMerger;
}

void writeMsg(char* buf, size_t size, const std::string& s) {
  if (!buf || !size) return;
  const size_t n = std::min(size - 1, s.size());
  std::memcpy(buf, s.data(), n);
  buf[n] = 0;
}

template <class F>
int callShared(char* err, size_t errSize, F&& f) {
  std::lock_guard<std::mutex> lock(gMutex);
  std::string why;
  CudaMerger* m = shared(&why);
  if (!m) {
    writeMsg(err, errSize, "CUDA unavailable: " + why);
    return 1;
  }
  const std::string r = f(*m);
  if (!r.empty()) {
    writeMsg(err, errSize, r);
    return 2;
  }
  writeMsg(err, errSize, "");
  return 0;
}

}  // namespace

namespace {
// Driver, device count and compute capability only: no context, no allocation. On success
// *desc is the device description, else the reason.
bool probeDevice(int device, std::string* desc) {
  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess) {
    std::string reason = cudaGetErrorString(e);
#if defined(__linux__)
    // Without any driver the runtime says "driver version is insufficient"; say what is missing.
    if (e == cudaErrorInsufficientDriver) {
      if (void* h = dlopen("libcuda.so.1", RTLD_LAZY | RTLD_LOCAL))
        dlclose(h);
      else
        reason = "no NVIDIA driver (libcuda.so.1 not found)";
    }
#endif
    *desc = reason;
    cudaGetLastError();
    return false;
  }
  if (count == 0) {
    *desc = "no CUDA device found";
    return false;
  }
  if (device < 0 || device >= count) {
    *desc = "device " + std::to_string(device) + " does not exist (" + std::to_string(count) + " found)";
    return false;
  }
  cudaDeviceProp prop{};
  const cudaError_t pe = cudaGetDeviceProperties(&prop, device);
  if (pe != cudaSuccess) {
    *desc = std::string("cudaGetDeviceProperties: ") + cudaGetErrorString(pe);
    cudaGetLastError();
    return false;
  }
  if (prop.major < 8) {
    *desc = "device " + std::string(prop.name) + " has compute capability " + std::to_string(prop.major) + "." +
            std::to_string(prop.minor) + "; dppa's CUDA kernels need 8.0 or newer";
    return false;
  }
  char buf[320];
  std::snprintf(buf, sizeof buf, "%s (sm_%d%d, %.0f GiB)", prop.name, prop.major, prop.minor,
                double(prop.totalGlobalMem) / double(1ull << 30));
  *desc = buf;
  return true;
}
}  // namespace

std::unique_ptr<CudaMerger> CudaMerger::create(int device, std::string* why) {
  std::string desc;
  if (!probeDevice(device, &desc)) {
    if (why) *why = desc;
    return nullptr;
  }
  std::unique_ptr<Impl> impl(new Impl(device));
  const std::string r = impl->init();
  if (!r.empty()) {
    if (why) *why = r;
    return nullptr;
  }
  return std::unique_ptr<CudaMerger>(impl.release());
}

}  // namespace cuda
}  // namespace dppa

using dppa::cuda::CudaMerger;

extern "C" {

size_t dppa_cuda_dtype_size(int32_t dtype) { return dppa::cuda::dtypeSize(dtype); }

int dppa_cuda_available(char* reason, size_t size) {
  // Cheap on purpose (the addon may ask at load): a probe, no context. The device context,
  // streams and buffers are created by the first job, and a failure there is reported then
  // (and by later calls of this function).
  std::lock_guard<std::mutex> lock(dppa::cuda::gMutex);
  using namespace dppa::cuda;
  if (gMerger) {
    writeMsg(reason, size, gMerger->deviceName());
    return 1;
  }
  if (gTried) {
    writeMsg(reason, size, gWhy);
    return 0;
  }
  static bool probed = false, ok = false;
  static std::string desc;
  if (!probed) {
    probed = true;
    ok = probeDevice(0, &desc);
  }
  writeMsg(reason, size, desc);
  return ok ? 1 : 0;
}

int dppa_cuda_pin(void* p, size_t bytes, char* err, size_t err_size) {
  const char* env = std::getenv("DPPA_CUDA_PIN");
  if (env && std::string(env) == "0") {
    dppa::cuda::writeMsg(err, err_size, "pinning is off (DPPA_CUDA_PIN=0)");
    return 3;
  }
  return dppa::cuda::callShared(err, err_size, [&](CudaMerger& m) { return m.pin(p, bytes); });
}

void dppa_cuda_unpin(void* p) {
  // Fails harmlessly for memory that was never pinned.
  if (cudaHostUnregister(p) != cudaSuccess) cudaGetLastError();
}

void dppa_cuda_set_chunk_elements(uint64_t n) {
  std::lock_guard<std::mutex> lock(dppa::cuda::gMutex);
  dppa::cuda::gChunk = n;
  if (dppa::cuda::gMerger) dppa::cuda::gMerger->setChunkElements(n);
}

int dppa_cuda_merge_tensor(const dppa_cuda_merge_job* job, double* non_finite, char* err, size_t err_size) {
  return dppa::cuda::callShared(err, err_size, [&](CudaMerger& m) { return m.mergeTensor(*job, non_finite); });
}

int dppa_cuda_decode(const dppa_cuda_tensor* src, float* out, char* err, size_t err_size) {
  return dppa::cuda::callShared(err, err_size, [&](CudaMerger& m) { return m.decode(*src, out); });
}

int dppa_cuda_encode(const float* src, uint64_t n, int32_t out_dtype, void* out, char* err, size_t err_size) {
  return dppa::cuda::callShared(err, err_size, [&](CudaMerger& m) { return m.encode(src, n, out_dtype, out); });
}

int dppa_cuda_delta(const dppa_cuda_delta_input* in, float* out, char* err, size_t err_size) {
  return dppa::cuda::callShared(err, err_size, [&](CudaMerger& m) { return m.delta(*in, out); });
}

int dppa_cuda_abs_stats(const dppa_cuda_delta_input* in, const double* thresholds, int32_t nthresholds,
                        double* sum_abs, double* counts_above, double* non_finite, char* err, size_t err_size) {
  return dppa::cuda::callShared(err, err_size, [&](CudaMerger& m) {
    return m.absStats(*in, thresholds, nthresholds, sum_abs, counts_above, non_finite);
  });
}

int dppa_cuda_abs_histogram(const dppa_cuda_delta_input* in, uint32_t shift, uint32_t bins, uint32_t prefix_mask,
                            uint32_t prefix_value, double* out, char* err, size_t err_size) {
  return dppa::cuda::callShared(err, err_size, [&](CudaMerger& m) {
    return m.absHistogram(*in, shift, bins, prefix_mask, prefix_value, out);
  });
}

int dppa_cuda_select_thresholds(const dppa_cuda_delta_input* in, const uint64_t* ks, int32_t nks, int32_t rule,
                                uint64_t rows, uint32_t* out_bits, int64_t* out_cutoff, char* err, size_t err_size) {
  return dppa::cuda::callShared(err, err_size, [&](CudaMerger& m) {
    return m.selectThresholds(*in, ks, nks, rule, rows, out_bits, out_cutoff);
  });
}

int dppa_cuda_sparsify_stats(const dppa_cuda_delta_input* in, const dppa_cuda_sparsify* sp, double* sum_abs,
                             double* sum_abs_kept, double* kept, char* err, size_t err_size) {
  return dppa::cuda::callShared(err, err_size, [&](CudaMerger& m) {
    return m.sparsifyStats(*in, *sp, sum_abs, sum_abs_kept, kept);
  });
}

int dppa_cuda_random_uniform(const dppa_cuda_random_stream* stream, uint64_t start, float* out, uint64_t n,
                             char* err, size_t err_size) {
  return dppa::cuda::callShared(err, err_size, [&](CudaMerger& m) { return m.randomUniform(*stream, start, out, n); });
}

}  // extern "C"
