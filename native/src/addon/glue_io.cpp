// glue_io.cpp: mapRange / unmapRange (read-only views of input files), startWriteback (start
// the disk writes of an output range) and writeback (wait for them, then drop the range from
// the page cache).
//
// Why map: a positional read copies every input byte from the page cache into a buffer, and
// a fresh buffer is first zeroed by the kernel; in virtual machines that give free memory back
// to the host, the first touch of memory costs far more than the copy (seconds per GB). A
// mapping lets the kernels read the page-cache pages themselves: no copy, no new memory.
//
// A mapping is MAP_PRIVATE with PROT_READ | PROT_WRITE: the kernels only read inputs, and a
// stray write would copy one page (never reach the file) instead of crashing the process.
// The Uint8Array's ArrayBuffer owns the mapping; unmapRange detaches it and unmaps at once
// (the finalizer then has nothing left to do), otherwise the garbage collector unmaps it.
//
// A mapped file truncated by someone else while we read it raises SIGBUS. A handler installed
// with the first mapping recognises addresses inside our mappings and ends the process with a
// clear message (the output is still in its temporary folder, never renamed into place, and
// the next run removes it); any other SIGBUS goes to the handler that was there before.
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>

#include "args.h"
#include "glue.h"

namespace dppa {
namespace addon {
namespace {

// ---- the registry of live mappings, readable from a signal handler (lock-free) ------------------
constexpr size_t kSlots = 1024;
struct Range {
  std::atomic<uintptr_t> start{0};
  std::atomic<uintptr_t> end{0};
};
Range gRanges[kSlots];
std::mutex gRegistryMutex;  // writers only; the handler reads the atomics
std::atomic<int64_t> gLiveMappings{0};
std::atomic<int64_t> gLiveBytes{0};

struct sigaction gPreviousBus;
std::once_flag gHandlerOnce;

bool insideMapping(uintptr_t address) {
  for (size_t i = 0; i < kSlots; ++i) {
    const uintptr_t start = gRanges[i].start.load(std::memory_order_acquire);
    if (start != 0 && address >= start && address < gRanges[i].end.load(std::memory_order_acquire)) return true;
  }
  return false;
}

void onBus(int signal, siginfo_t* info, void* context) {
  if (info != nullptr && insideMapping(reinterpret_cast<uintptr_t>(info->si_addr))) {
    static const char message[] =
        "dppa: E_IO: an input model file shrank (was truncated or rewritten) while it was being read; "
        "the merge stopped and no output was published (its temporary folder is removed by the next run)\n";
    ssize_t ignored = write(2, message, sizeof(message) - 1);
    (void)ignored;
    _exit(74);  // EX_IOERR
  }
  // Not ours: hand it to whoever handled SIGBUS before.
  if (gPreviousBus.sa_flags & SA_SIGINFO) {
    if (gPreviousBus.sa_sigaction != nullptr) return gPreviousBus.sa_sigaction(signal, info, context);
  } else if (gPreviousBus.sa_handler != SIG_IGN && gPreviousBus.sa_handler != SIG_DFL && gPreviousBus.sa_handler != nullptr) {
    return gPreviousBus.sa_handler(signal);
  }
  // Default action: restore it and return; the faulting access repeats and kills the process.
  struct sigaction fallback;
  memset(&fallback, 0, sizeof(fallback));
  fallback.sa_handler = SIG_DFL;
  sigemptyset(&fallback.sa_mask);
  sigaction(SIGBUS, &fallback, nullptr);
}

void installBusHandler() {
  std::call_once(gHandlerOnce, [] {
    struct sigaction action;
    memset(&action, 0, sizeof(action));
    action.sa_sigaction = onBus;
    action.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&action.sa_mask);
    sigaction(SIGBUS, &action, &gPreviousBus);
  });
}

int registerRange(uintptr_t start, uintptr_t end) {
  std::lock_guard<std::mutex> lock(gRegistryMutex);
  for (size_t i = 0; i < kSlots; ++i) {
    if (gRanges[i].start.load(std::memory_order_relaxed) == 0) {
      gRanges[i].end.store(end, std::memory_order_release);
      gRanges[i].start.store(start, std::memory_order_release);
      return int(i);
    }
  }
  return -1;  // full: the mapping works, a SIGBUS in it just gets the default action
}

void unregisterRange(int slot) {
  if (slot < 0) return;
  std::lock_guard<std::mutex> lock(gRegistryMutex);
  gRanges[slot].start.store(0, std::memory_order_release);
  gRanges[slot].end.store(0, std::memory_order_release);
}

// ---- mappings ------------------------------------------------------------------------------
struct Mapping {
  void* base = nullptr;  // page-aligned start of the mmap
  size_t length = 0;     // bytes mapped
  uintptr_t first = 0;   // the view's first byte (the key of gByFirst)
  int slot = -1;
  bool unmapped = false;
};

// Live mappings by the address of their view's first byte (JS thread only).
std::unordered_map<uintptr_t, Mapping*> gByFirst;

void release(Mapping* mapping) {
  if (mapping->unmapped) return;
  mapping->unmapped = true;
  gByFirst.erase(mapping->first);
  unregisterRange(mapping->slot);
  munmap(mapping->base, mapping->length);
  gLiveMappings.fetch_sub(1);
  gLiveBytes.fetch_sub(int64_t(mapping->length));
}

void finalizeMapping(napi_env, void*, void* hint) {
  Mapping* mapping = static_cast<Mapping*>(hint);
  release(mapping);
  delete mapping;
}

std::string errnoText(int error) { return std::string(strerror(error)); }

// mapRange(fd, offset, length, populate?) -> Uint8Array of exactly `length` bytes at `offset`
// of the open file `fd`. Throws when the range is not inside the file or mmap fails (callers
// fall back to reading). length 0 gives an ordinary empty Uint8Array.
Napi::Value MapRange(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int fd = int(requireInteger(info[0], "mapRange(fd)", 0, 2147483647.0));
  const double offsetValue = requireInteger(info[1], "mapRange(offset)", 0, 9007199254740991.0);
  const double lengthValue = requireInteger(info[2], "mapRange(length)", 0, 9007199254740991.0);
  const bool populate = info.Length() > 3 && !info[3].IsUndefined() && requireBoolean(info[3], "mapRange(populate)");
  const uint64_t offset = uint64_t(offsetValue);
  const uint64_t length = uint64_t(lengthValue);
  struct stat st;
  if (fstat(fd, &st) != 0) throw Napi::Error::New(env, "dppa: mapRange: fstat failed (" + errnoText(errno) + ")");
  if (!S_ISREG(st.st_mode)) throw Napi::Error::New(env, "dppa: mapRange: not a regular file");
  if (offset > uint64_t(st.st_size) || length > uint64_t(st.st_size) - offset)
    throw Napi::RangeError::New(env, "dppa: mapRange: bytes [" + std::to_string(offset) + ", " + std::to_string(offset + length) +
                                         ") are outside the file (" + std::to_string(st.st_size) + " bytes)");
  if (length == 0) return Napi::Uint8Array::New(env, 0);
  const uint64_t page = uint64_t(sysconf(_SC_PAGESIZE));
  const uint64_t start = offset / page * page;
  const size_t mapped = size_t(offset + length - start);
  int flags = MAP_PRIVATE;
#ifdef MAP_POPULATE
  if (populate) flags |= MAP_POPULATE;
#endif
  void* base = mmap(nullptr, mapped, PROT_READ | PROT_WRITE, flags, fd, off_t(start));
  if (base == MAP_FAILED) throw Napi::Error::New(env, "dppa: mapRange: mmap failed (" + errnoText(errno) + ")");
  if (!populate) madvise(base, mapped, MADV_WILLNEED);  // a hint: starts read-ahead of pages not cached
  installBusHandler();
  Mapping* mapping = new Mapping();
  mapping->base = base;
  mapping->length = mapped;
  mapping->slot = registerRange(uintptr_t(base), uintptr_t(base) + mapped);
  gLiveMappings.fetch_add(1);
  gLiveBytes.fetch_add(int64_t(mapped));
  uint8_t* first = static_cast<uint8_t*>(base) + (offset - start);
  mapping->first = uintptr_t(first);
  gByFirst[mapping->first] = mapping;
  napi_value arrayBuffer;
  if (napi_create_external_arraybuffer(env, first, size_t(length), finalizeMapping, mapping, &arrayBuffer) != napi_ok) {
    release(mapping);
    delete mapping;
    throw Napi::Error::New(env, "dppa: mapRange: could not wrap the mapping");
  }
  return Napi::Uint8Array::New(env, size_t(length), Napi::ArrayBuffer(env, arrayBuffer), 0);
}

// unmapRange(view) -> true when `view` is a view of a live mapping of mapRange, now detached
// and unmapped; false for any other Uint8Array (nothing happens). Every view of the mapping
// becomes empty: a later access reads nothing instead of touching unmapped memory.
Napi::Value UnmapRange(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsTypedArray()) throwTypeError(env, "unmapRange(view) must be a Uint8Array from mapRange");
  Napi::ArrayBuffer buffer = info[0].As<Napi::TypedArray>().ArrayBuffer();
  if (buffer.IsDetached()) return Napi::Boolean::New(env, false);
  auto it = gByFirst.find(uintptr_t(buffer.Data()));
  if (it == gByFirst.end()) return Napi::Boolean::New(env, false);
  Mapping* mapping = it->second;
  buffer.Detach();   // first: no JS view can reach the pages once they are gone
  release(mapping);  // the finalizer (at collection) then only frees the record
  return Napi::Boolean::New(env, true);
}

// writeback(fd, offset, length) -> Promise<void>: write the range's dirty pages to the disk and
// wait for them (sync_file_range), flush the disk's cache (fdatasync), then drop the range from
// the page cache. The final fsync of the file still runs (and is then quick): this only
// spreads the disk writes over the run and keeps the page cache from filling with output.
// On a libuv thread: it waits for the disk.
class WritebackWorker : public Napi::AsyncWorker {
 public:
  WritebackWorker(Napi::Env env, int fd, uint64_t offset, uint64_t length)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), fd_(fd), offset_(offset), length_(length) {}
  Napi::Promise promise() { return deferred_.Promise(); }

  void Execute() override {
    if (length_ == 0) return;
#ifdef SYNC_FILE_RANGE_WRITE
    if (sync_file_range(fd_, off_t(offset_), off_t(length_),
                        SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER) != 0) {
      const int error = errno;
      if (error != ENOSYS && error != EINVAL && error != ESPIPE) {
        SetError(std::string("writeback failed (") + errnoText(error) + ")");
        return;
      }
    }
#endif
    // Flush the disk's cache too, stretch by stretch. On the benchmark's VM a flush takes time
    // in proportion to the bytes written since the last one; done only by the final fsync it
    // was the last 0.75 s of a full-size merge (strace), here it overlaps the merge.
    if (fdatasync(fd_) != 0) {
      const int error = errno;
      if (error != EINVAL && error != EROFS) {
        SetError(std::string("writeback failed (") + errnoText(error) + ")");
        return;
      }
    }
#ifdef POSIX_FADV_DONTNEED
    posix_fadvise(fd_, off_t(offset_), off_t(length_), POSIX_FADV_DONTNEED);  // a hint
#endif
  }
  void OnOK() override { deferred_.Resolve(Env().Undefined()); }
  void OnError(const Napi::Error& error) override { deferred_.Reject(error.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  int fd_;
  uint64_t offset_;
  uint64_t length_;
};

// The (fd, offset, length) arguments of writeback and startWriteback.
struct FileRange {
  int fd;
  uint64_t offset;
  uint64_t length;
};

FileRange fileRangeArgs(const Napi::CallbackInfo& info, const std::string& name) {
  return {int(requireInteger(info[0], name + "(fd)", 0, 2147483647.0)),
          uint64_t(requireInteger(info[1], name + "(offset)", 0, 9007199254740991.0)),
          uint64_t(requireInteger(info[2], name + "(length)", 0, 9007199254740991.0))};
}

Napi::Value Writeback(const Napi::CallbackInfo& info) {
  const FileRange range = fileRangeArgs(info, "writeback");
  auto* worker = new WritebackWorker(info.Env(), range.fd, range.offset, range.length);
  Napi::Promise promise = worker->promise();
  worker->Queue();
  return promise;
}

// startWriteback(fd, offset, length) -> undefined: start the disk writes of the range's dirty
// pages and return without waiting (sync_file_range WRITE alone). Called as each piece of an
// output is written, so the disk works while the next piece is copied; writeback() later waits
// for the same range and drops it. Pages freed that soon are reused by the next writes instead
// of fresh memory, whose first touch is slow on the benchmark's VM.
Napi::Value StartWriteback(const Napi::CallbackInfo& info) {
  const FileRange range = fileRangeArgs(info, "startWriteback");
#ifdef SYNC_FILE_RANGE_WRITE
  // A failure here is not reported: writeback() on the same range waits and reports it.
  if (range.length > 0) (void)sync_file_range(range.fd, off_t(range.offset), off_t(range.length), SYNC_FILE_RANGE_WRITE);
#endif
  return info.Env().Undefined();
}

Napi::Value MappedStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object object = Napi::Object::New(env);
  object.Set("mappings", Napi::Number::New(env, double(gLiveMappings.load())));
  object.Set("bytes", Napi::Number::New(env, double(gLiveBytes.load())));
  return object;
}

}  // namespace

void registerIo(Napi::Env env, Napi::Object exports) {
  exports.Set("mapRange", Napi::Function::New(env, MapRange, "mapRange"));
  exports.Set("unmapRange", Napi::Function::New(env, UnmapRange, "unmapRange"));
  exports.Set("writeback", Napi::Function::New(env, Writeback, "writeback"));
  exports.Set("startWriteback", Napi::Function::New(env, StartWriteback, "startWriteback"));
  exports.Set("mappedStats", Napi::Function::New(env, MappedStats, "mappedStats"));
}

}  // namespace addon
}  // namespace dppa
