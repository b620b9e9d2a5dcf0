// glue_memory.cpp: allocateBuffer — large tensor buffers backed by transparent huge pages.
//
// Tensor buffers are reused tensor after tensor, but every page is faulted in once, and in
// virtual machines a page fault is expensive: the first touch of a 50 MB buffer costs ~12,000
// faults with 4 KiB pages and ~25 with 2 MiB ones. Where the kernel honours MADV_HUGEPAGE
// (transparent_hugepage = madvise or always) these buffers use huge pages; elsewhere they are
// ordinary memory. When the device is the GPU they are also pinned, so that its jobs copy
// straight between them and the device instead of through staging buffers on one CPU thread.
// The ArrayBuffer owns the mapping and unpins and unmaps it when collected.
#include <sys/mman.h>

#include <cstddef>

#include "args.h"
#include "device.h"
#include "glue.h"

namespace dppa {
namespace addon {
namespace {

constexpr size_t kHugePage = size_t(2) << 20;

struct Mapping {
  size_t bytes;
  bool pinned;
};

void unmap(napi_env, void* data, void* hint) {
  const Mapping* mapping = static_cast<const Mapping*>(hint);
  if (mapping->pinned) unpinHost(data);
  munmap(data, mapping->bytes);
  delete mapping;
}

Napi::Value allocateBuffer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const size_t bytes = size_t(requireInteger(info[0], "allocateBuffer(bytes)", 0, 9007199254740991.0));
  if (bytes < kHugePage) return Napi::Uint8Array::New(env, bytes);
  const size_t mapped = (bytes + kHugePage - 1) / kHugePage * kHugePage;
  void* data = mmap(nullptr, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (data == MAP_FAILED) throw Napi::Error::New(env, "dppa: could not allocate " + std::to_string(bytes) + " bytes");
#ifdef MADV_HUGEPAGE
  madvise(data, mapped, MADV_HUGEPAGE);  // a hint: ignored where huge pages are off
#endif
  Mapping* mapping = new Mapping{mapped, pinHostForDevice(data, mapped)};
  napi_value arrayBuffer;
  if (napi_create_external_arraybuffer(env, data, bytes, unmap, mapping, &arrayBuffer) != napi_ok) {
    unmap(env, data, mapping);
    throw Napi::Error::New(env, "dppa: could not wrap a buffer of " + std::to_string(bytes) + " bytes");
  }
  Napi::MemoryManagement::AdjustExternalMemory(env, int64_t(mapped));
  return Napi::Uint8Array::New(env, bytes, Napi::ArrayBuffer(env, arrayBuffer), 0);
}

}  // namespace

void registerMemory(Napi::Env env, Napi::Object exports) {
  exports.Set("allocateBuffer", Napi::Function::New(env, allocateBuffer, "allocateBuffer"));
}

}  // namespace addon
}  // namespace dppa
