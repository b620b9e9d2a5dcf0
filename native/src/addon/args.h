// args.h: synchronous argument checks on the JS thread. Every failure throws a JS TypeError
// naming the argument; what passes is copied into the plain structs of dppa/kernels.h, and
// the typed arrays are held by the Job until it settles (zero-copy).
#pragma once
#include <napi.h>

#include <string>

#include "dppa/kernels.h"
#include "job.h"

namespace dppa {
namespace addon {

[[noreturn]] void throwTypeError(Napi::Env env, const std::string& message);

Napi::Object requireObject(Napi::Value value, const std::string& what);
double requireNumber(Napi::Value value, const std::string& what);
// A finite integer in [min, max].
double requireInteger(Napi::Value value, const std::string& what, double min, double max);
uint32_t requireUint32(Napi::Value value, const std::string& what);
bool requireBoolean(Napi::Value value, const std::string& what);
std::string requireString(Napi::Value value, const std::string& what);

// A typed array of the given type, not detached; held by `job`. Returns its first byte.
uint8_t* requireTypedArray(Napi::Value value, napi_typedarray_type type, const char* typeName,
                           const std::string& what, Job& job, size_t* length);

DType requireInputDType(Napi::Value value, const std::string& what);
DType requireOutputDType(Napi::Value value, const std::string& what);

// { data: Uint8Array, dtype } with a byte length that is a multiple of the dtype size.
TensorView requireTensor(Napi::Value value, const std::string& what, Job& job);
// { base?, ft }; base and ft must have the same element count.
DeltaView requireDelta(Napi::Value value, const std::string& what, Job& job);
// Band rules for a tensor of n elements; sets *nbands.
BandRulesView requireBandRules(Napi::Value value, const std::string& what, size_t n, Job& job);
RandomStream requireStream(Napi::Value value, const std::string& what);
// One Sparsify variant for a tensor of n elements.
SparsifySpec requireSparsify(Napi::Value value, const std::string& what, size_t n, Job& job);

}  // namespace addon
}  // namespace dppa
