// glue_convert.cpp: decode, encode, delta, copy, randomUniform.
#include "args.h"
#include "device.h"
#include "glue.h"

namespace dppa {
namespace addon {
namespace {

float* requireFloat32Out(Napi::Value value, const std::string& what, size_t n, Job& job) {
  size_t length = 0;
  uint8_t* data = requireTypedArray(value, napi_float32_array, "Float32Array", what, job, &length);
  if (length != n)
    throwTypeError(value.Env(), what + " has " + std::to_string(length) + " elements, expected " + std::to_string(n));
  return reinterpret_cast<float*>(data);
}

Napi::Value Decode(const Napi::CallbackInfo& info) {
  auto job = std::make_unique<Job>();
  const TensorView src = requireTensor(info[0], "decode(src)", *job);
  float* out = requireFloat32Out(info[1], "decode(out)", src.n, *job);
  job->work = [src, out, device = currentDevice()] { routed::decode(device, src, out); };
  return queueJob(info.Env(), std::move(job));
}

Napi::Value Encode(const Napi::CallbackInfo& info) {
  auto job = std::make_unique<Job>();
  size_t n = 0;
  const float* src = reinterpret_cast<const float*>(
      requireTypedArray(info[0], napi_float32_array, "Float32Array", "encode(src)", *job, &n));
  const DType dtype = requireOutputDType(info[1], "encode(dtype)");
  size_t bytes = 0;
  uint8_t* out = requireTypedArray(info[2], napi_uint8_array, "Uint8Array", "encode(out)", *job, &bytes);
  if (bytes != n * dtypeSize(dtype))
    throwTypeError(info.Env(), "encode(out) has " + std::to_string(bytes) + " bytes, expected " +
                                   std::to_string(n * dtypeSize(dtype)));
  job->work = [src, n, dtype, out, device = currentDevice()] { routed::encode(device, src, n, dtype, out); };
  return queueJob(info.Env(), std::move(job));
}

Napi::Value Delta(const Napi::CallbackInfo& info) {
  auto job = std::make_unique<Job>();
  const DeltaView in = requireDelta(info[0], "delta(input)", *job);
  float* out = requireFloat32Out(info[1], "delta(out)", in.size(), *job);
  job->work = [in, out, device = currentDevice()] { routed::delta(device, in, out); };
  return queueJob(info.Env(), std::move(job));
}

Napi::Value Copy(const Napi::CallbackInfo& info) {
  auto job = std::make_unique<Job>();
  size_t n = 0, m = 0;
  const uint8_t* src = requireTypedArray(info[0], napi_uint8_array, "Uint8Array", "copy(src)", *job, &n);
  uint8_t* dst = requireTypedArray(info[1], napi_uint8_array, "Uint8Array", "copy(dst)", *job, &m);
  if (n != m) throwTypeError(info.Env(), "copy: src has " + std::to_string(n) + " bytes, dst " + std::to_string(m));
  job->work = [src, dst, n] { copyBytes(src, dst, n); };
  return queueJob(info.Env(), std::move(job));
}

Napi::Value RandomUniformJs(const Napi::CallbackInfo& info) {
  auto job = std::make_unique<Job>();
  const RandomStream stream = requireStream(info[0], "randomUniform(stream)");
  const double start = requireInteger(info[1], "randomUniform(start)", 0, 9007199254740991.0);
  size_t n = 0;
  float* out = reinterpret_cast<float*>(
      requireTypedArray(info[2], napi_float32_array, "Float32Array", "randomUniform(out)", *job, &n));
  job->work = [stream, start, out, n, device = currentDevice()] {
    routed::randomUniform(device, stream, uint64_t(start), out, n);
  };
  return queueJob(info.Env(), std::move(job));
}

}  // namespace

void registerConvert(Napi::Env env, Napi::Object exports) {
  exports.Set("decode", Napi::Function::New(env, Decode, "decode"));
  exports.Set("encode", Napi::Function::New(env, Encode, "encode"));
  exports.Set("delta", Napi::Function::New(env, Delta, "delta"));
  exports.Set("copy", Napi::Function::New(env, Copy, "copy"));
  exports.Set("randomUniform", Napi::Function::New(env, RandomUniformJs, "randomUniform"));
}

}  // namespace addon
}  // namespace dppa
