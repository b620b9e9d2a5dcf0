// job.h: how an async call runs. The JS thread validates and copies the arguments into a Job
// (plain C++ plus references that keep the typed arrays alive), the Job goes to the addon's
// own job thread (which runs kernels on the compute pool, never on libuv's threadpool), and
// the Promise is settled back on the JS thread through a thread-safe function. A kernel that
// throws rejects the Promise; nothing is thrown across threads.
#pragma once
#include <napi.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace dppa {
namespace addon {

struct Job {
  // Runs on the job thread. May throw (std::exception): the Promise then rejects.
  std::function<void()> work;
  // Runs on the JS thread after `work` succeeded: the value the Promise resolves to.
  std::function<Napi::Value(Napi::Env)> result;
  // Typed arrays (and other objects) the work reads or writes: alive until the job settles.
  std::vector<Napi::Reference<Napi::Value>> keepAlive;

  void hold(const Napi::Value& value) { keepAlive.push_back(Napi::Persistent(value)); }
};

// Queues the job and returns its Promise.
Napi::Promise queueJob(Napi::Env env, std::unique_ptr<Job> job);

// Stops the job thread at environment teardown (after the running job finishes).
void registerJobCleanup(Napi::Env env);

}  // namespace addon
}  // namespace dppa
