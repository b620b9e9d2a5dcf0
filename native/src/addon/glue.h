// glue.h: the exported functions, one group per file (glue_*.cpp).
#pragma once
#include <napi.h>

namespace dppa {
namespace addon {

void registerControl(Napi::Env env, Napi::Object exports);   // version, simd, threads, cuda
void registerConvert(Napi::Env env, Napi::Object exports);   // decode, encode, delta, copy, randomUniform
void registerStats(Napi::Env env, Napi::Object exports);     // absStats, absHistogram, gram, sparsifyStats, selectThresholds
void registerMerge(Napi::Env env, Napi::Object exports);     // mergeTensor, linearCombine
void registerMemory(Napi::Env env, Napi::Object exports);    // allocateBuffer
void registerIo(Napi::Env env, Napi::Object exports);        // mapRange, unmapRange, mappedStats, writeback

}  // namespace addon
}  // namespace dppa
