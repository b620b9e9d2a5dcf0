// job.cpp: the job thread and Promise settlement (see job.h).
#include "job.h"

#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>

namespace dppa {
namespace addon {
namespace {

struct QueuedJob {
  QueuedJob(std::unique_ptr<Job> j, Napi::Promise::Deferred d) : job(std::move(j)), deferred(d) {}
  std::unique_ptr<Job> job;
  Napi::Promise::Deferred deferred;
  napi_threadsafe_function settle = nullptr;
  std::string error;
  bool failed = false;
};

// Runs on the JS thread: settles the Promise and releases the references.
void settleOnJsThread(napi_env rawEnv, napi_value, void*, void* data) {
  std::unique_ptr<QueuedJob> queued(static_cast<QueuedJob*>(data));
  if (rawEnv == nullptr) {
    // The environment is going away: references cannot be released any more.
    for (auto& ref : queued->job->keepAlive) ref.SuppressDestruct();
    return;
  }
  Napi::Env env(rawEnv);
  Napi::HandleScope scope(env);
  try {
    if (queued->failed) {
      queued->deferred.Reject(Napi::Error::New(env, queued->error).Value());
    } else {
      queued->deferred.Resolve(queued->job->result ? queued->job->result(env) : env.Undefined());
    }
  } catch (const Napi::Error& e) {
    queued->deferred.Reject(e.Value());
  } catch (const std::exception& e) {
    queued->deferred.Reject(Napi::Error::New(env, e.what()).Value());
  }
}

class JobThread {
 public:
  void push(QueuedJob* job) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!thread_.joinable()) thread_ = std::thread([this] { loop(); });
      queue_.push_back(job);
    }
    wake_.notify_one();
  }

  void stop() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_one();
    if (thread_.joinable()) thread_.join();
  }

 private:
  void loop() {
    for (;;) {
      QueuedJob* job;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
        if (stopping_) return;
        job = queue_.front();
        queue_.pop_front();
      }
      try {
        job->job->work();
      } catch (const std::exception& e) {
        job->failed = true;
        job->error = e.what();
      } catch (...) {
        job->failed = true;
        job->error = "unknown native error";
      }
      // After this call the JS thread owns (and deletes) the job: read `settle` first.
      napi_threadsafe_function settle = job->settle;
      napi_call_threadsafe_function(settle, job, napi_tsfn_blocking);
      napi_release_threadsafe_function(settle, napi_tsfn_release);
    }
  }

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<QueuedJob*> queue_;
  std::thread thread_;
  bool stopping_ = false;
};

JobThread& jobThread() {
  static JobThread* thread = new JobThread();
  return *thread;
}

}  // namespace

Napi::Promise queueJob(Napi::Env env, std::unique_ptr<Job> job) {
  auto queued = std::make_unique<QueuedJob>(std::move(job), Napi::Promise::Deferred::New(env));
  Napi::Promise promise = queued->deferred.Promise();
  // One thread-safe function per job: while it exists, the pending Promise keeps Node alive.
  napi_status status = napi_create_threadsafe_function(env, nullptr, nullptr, Napi::String::New(env, "dppa-job"), 0, 1,
                                                       nullptr, nullptr, nullptr, settleOnJsThread, &queued->settle);
  if (status != napi_ok) throw Napi::Error::New(env, "dppa: could not create a thread-safe function");
  jobThread().push(queued.release());
  return promise;
}

void registerJobCleanup(Napi::Env env) {
  env.AddCleanupHook([] { jobThread().stop(); });
}

}  // namespace addon
}  // namespace dppa
