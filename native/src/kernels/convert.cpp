// convert.cpp: decode, encode and δ over whole tensors, chunk by chunk on the pool.
#include "common.h"

namespace dppa {
using namespace detail;

void decode(const TensorView& src, float* out) {
  const simd::TileOps& ops = simd::ops();
  pool::workerSlots();
  pool::parallelFor(chunkCount(src.n), [&](size_t task, unsigned) {
    const Range r = chunkRange(task, src.n);
    ops.decode(src.dtype, src.data, r.begin, r.end - r.begin, out + r.begin);
  });
}

void encode(const float* src, size_t n, DType outDtype, uint8_t* out) {
  if (!isOutputDType(outDtype)) throw std::invalid_argument(std::string("cannot encode to ") + dtypeName(outDtype));
  const simd::TileOps& ops = simd::ops();
  pool::workerSlots();
  pool::parallelFor(chunkCount(n), [&](size_t task, unsigned) {
    const Range r = chunkRange(task, n);
    ops.encode(src + r.begin, r.end - r.begin, outDtype, out, r.begin);
  });
}

void delta(const DeltaView& in, float* out) {
  checkDelta(in, "delta");
  const simd::TileOps& ops = simd::ops();
  pool::workerSlots();
  pool::parallelFor(chunkCount(in.size()), [&](size_t task, unsigned) {
    const Range r = chunkRange(task, in.size());
    for (size_t start = r.begin; start < r.end; start += simd::kReduceTile) {
      const size_t count = std::min(simd::kReduceTile, r.end - start);
      float* scratch = simd::threadScratch(simd::ScratchSlot::KernelA, count);
      deltaTile(ops, in, start, count, out + start, scratch);
    }
  });
}

void copyBytes(const uint8_t* src, uint8_t* dst, size_t bytes) {
  // 1 MiB per task: large enough that the pool's overhead vanishes, small enough to balance.
  const size_t block = size_t(1) << 20;
  pool::workerSlots();
  pool::parallelFor((bytes + block - 1) / block, [&](size_t task, unsigned) {
    const size_t begin = task * block;
    std::memcpy(dst + begin, src + begin, std::min(block, bytes - begin));
  });
}

void randomUniform(const RandomStream& stream, uint64_t start, float* out, size_t n) {
  const simd::TileOps& ops = simd::ops();
  pool::workerSlots();
  pool::parallelFor(chunkCount(n), [&](size_t task, unsigned) {
    const Range r = chunkRange(task, n);
    uint32_t* words = reinterpret_cast<uint32_t*>(simd::threadScratch(simd::ScratchSlot::KernelA, kChunk));
    ops.philoxWords(stream, start + r.begin, r.end - r.begin, words);
    // u = (word >> 8) · 2^-24: 24 random bits, exact in float32, in [0, 1).
    for (size_t j = 0; j < r.end - r.begin; ++j) out[r.begin + j] = float(words[j] >> 8) * 0x1p-24f;
  });
}

}  // namespace dppa
