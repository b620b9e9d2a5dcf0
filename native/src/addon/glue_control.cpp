// glue_control.cpp: version, SIMD path, thread count and CUDA availability.
#include <string>

#include "args.h"
#include "dppa/pool.h"
#include "device.h"
#include "glue.h"
#ifdef DPPA_HAVE_CUDA
#include "../cuda/dppa_cuda.h"
#endif

namespace dppa {
namespace addon {
namespace {

Napi::Value simdInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object result = Napi::Object::New(env);
  result.Set("active", activeSimd());
  Napi::Array available = Napi::Array::New(env);
  uint32_t i = 0;
  for (const std::string& path : availableSimd()) available.Set(i++, path);
  result.Set("available", available);
  return result;
}

Napi::Value setSimdPath(const Napi::CallbackInfo& info) {
  const std::string path = requireString(info[0], "setSimd(path)");
  if (!setSimd(path)) {
    std::string list;
    for (const std::string& p : availableSimd()) list += (list.empty() ? "" : ", ") + p;
    throw Napi::Error::New(info.Env(), "dppa: SIMD path '" + path + "' is not supported here (available: " + list + ")");
  }
  return info.Env().Undefined();
}

Napi::Value getThreads(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), pool::threads()); }

Napi::Value setThreads(const Napi::CallbackInfo& info) {
  pool::setThreads(unsigned(requireInteger(info[0], "setThreads(n)", 1, 1024)));
  return info.Env().Undefined();
}

// setDevice('cpu' | 'cuda' | 'auto') → the device now current; jobs queued later run on it.
Napi::Value setDeviceJs(const Napi::CallbackInfo& info) {
  const std::string name = requireString(info[0], "setDevice(device)");
  try {
    return Napi::String::New(info.Env(), deviceName(selectDevice(name)));
  } catch (const std::invalid_argument& e) {
    throw Napi::TypeError::New(info.Env(), e.what());
  } catch (const std::exception& e) {
    throw Napi::Error::New(info.Env(), e.what());
  }
}

Napi::Value deviceInfo(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), deviceName(currentDevice())); }

Napi::Object cudaInfo(Napi::Env env) {
  Napi::Object result = Napi::Object::New(env);
#ifdef DPPA_HAVE_CUDA
  char reason[256] = {0};
  const bool available = dppa_cuda_available(reason, sizeof reason) != 0;
  result.Set("available", available);
  result.Set("description", available ? std::string(reason) : "unavailable: " + std::string(reason));
#else
  result.Set("available", false);
  result.Set("description", "unavailable: the addon was built without CUDA");
#endif
  return result;
}

}  // namespace

void registerControl(Napi::Env env, Napi::Object exports) {
  exports.Set("version", Napi::String::New(env, "0.1.0"));
  // `simd` is a getter so that it reflects setSimd.
  exports.DefineProperty(Napi::PropertyDescriptor::Accessor(env, exports, "simd", simdInfo, napi_enumerable));
  exports.Set("setSimd", Napi::Function::New(env, setSimdPath, "setSimd"));
  exports.Set("getThreads", Napi::Function::New(env, getThreads, "getThreads"));
  exports.Set("setThreads", Napi::Function::New(env, setThreads, "setThreads"));
  exports.Set("cuda", cudaInfo(env));
  exports.Set("setDevice", Napi::Function::New(env, setDeviceJs, "setDevice"));
  exports.DefineProperty(Napi::PropertyDescriptor::Accessor(env, exports, "device", deviceInfo, napi_enumerable));
}

}  // namespace addon
}  // namespace dppa
