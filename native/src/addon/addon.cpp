// addon.cpp: registers the exports of lib/binding.ts NativeBinding. Nothing else lives here.
#include <napi.h>

#include "glue.h"
#include "job.h"

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  dppa::addon::registerJobCleanup(env);
  dppa::addon::registerControl(env, exports);
  dppa::addon::registerConvert(env, exports);
  dppa::addon::registerStats(env, exports);
  dppa::addon::registerMerge(env, exports);
  dppa::addon::registerMemory(env, exports);
  dppa::addon::registerIo(env, exports);
  return exports;
}

NODE_API_MODULE(dppa, Init)
