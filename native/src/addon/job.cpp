// job.cpp: the job thread and Promise settlement (see job.h).
#include "job.h"

#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace dppa {
namespace addon {
namespace {

struct QueuedJob {
  QueuedJob(std::unique_ptr<Job> j, Napi::Promise::Deferred d, napi_env e)
      : job(std::move(j)), deferred(d), env(e) {}
  std::unique_ptr<Job> job;
  Napi::Promise::Deferred deferred;
  napi_env env;  // the environment (main thread or a worker) that queued it
  napi_threadsafe_function settle = nullptr;
  std::string error;
  bool failed = false;
};

// A job whose environment is gone: its references cannot be released any more.
void abandon(QueuedJob* job) {
  for (auto& ref : job->job->keepAlive) ref.SuppressDestruct();
  delete job;
}

// Runs on the JS thread: settles the Promise and releases the references.
void settleOnJsThread(napi_env rawEnv, napi_value, void*, void* data) {
  std::unique_ptr<QueuedJob> queued(static_cast<QueuedJob*>(data));
  if (rawEnv == nullptr) {
    // The environment is going away: references cannot be released any more.
    for (auto& ref : queued->job->keepAlive) ref.SuppressDestruct();
    return;
  }
  Napi::Env env(rawEnv);
  // Nothing may throw out of this callback: an exception here would terminate the process.
  // A worker being terminated makes every N-API call fail (and node-addon-api throw), so
  // each settlement attempt is guarded, and a Promise that cannot be settled is left.
  try {
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
  } catch (...) {
    // The environment is shutting down: the Promise can no longer be settled.
  }
}

// One job thread for the process, shared by every environment that loaded the addon (the
// main thread and any worker_threads). It stops when the last environment is torn down; a
// worker that exits only drops its own queued jobs and waits for its running one, so the
// others keep working.
class JobThread {
 public:
  void attach() {
    std::lock_guard<std::mutex> lock(mutex_);
    ++environments_;
  }

  void push(QueuedJob* job) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!thread_.joinable()) thread_ = std::thread([this] { loop(); });
      queue_.push_back(job);
    }
    wake_.notify_all();
  }

  // At an environment's teardown: its queued jobs are dropped (their Promises can never be
  // settled), its running job is waited for (it may be writing that environment's buffers);
  // the last environment also stops the thread.
  void detach(napi_env env) {
    std::vector<QueuedJob*> dropped;
    std::thread finished;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      for (auto it = queue_.begin(); it != queue_.end();) {
        if ((*it)->env == env) {
          dropped.push_back(*it);
          it = queue_.erase(it);
        } else {
          ++it;
        }
      }
      idle_.wait(lock, [&] { return runningEnv_ != env; });
      if (--environments_ == 0) {
        stopping_ = true;
        finished = std::move(thread_);
      }
    }
    wake_.notify_all();
    if (finished.joinable()) finished.join();
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (environments_ == 0) stopping_ = false;  // a later environment may start it again
    }
    for (QueuedJob* job : dropped) {
      napi_release_threadsafe_function(job->settle, napi_tsfn_abort);
      abandon(job);
    }
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
        runningEnv_ = job->env;
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
      // After a successful call the JS thread owns (and deletes) the job: read `settle` first.
      napi_threadsafe_function settle = job->settle;
      if (napi_call_threadsafe_function(settle, job, napi_tsfn_blocking) != napi_ok) abandon(job);
      napi_release_threadsafe_function(settle, napi_tsfn_release);
      {
        std::lock_guard<std::mutex> lock(mutex_);
        runningEnv_ = nullptr;
      }
      idle_.notify_all();
    }
  }

  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable idle_;
  std::deque<QueuedJob*> queue_;
  std::thread thread_;
  napi_env runningEnv_ = nullptr;
  int environments_ = 0;
  bool stopping_ = false;
};

JobThread& jobThread() {
  static JobThread* thread = new JobThread();
  return *thread;
}

}  // namespace

Napi::Promise queueJob(Napi::Env env, std::unique_ptr<Job> job) {
  auto queued = std::make_unique<QueuedJob>(std::move(job), Napi::Promise::Deferred::New(env), napi_env(env));
  Napi::Promise promise = queued->deferred.Promise();
  // One thread-safe function per job: while it exists, the pending Promise keeps Node alive.
  napi_status status = napi_create_threadsafe_function(env, nullptr, nullptr, Napi::String::New(env, "dppa-job"), 0, 1,
                                                       nullptr, nullptr, nullptr, settleOnJsThread, &queued->settle);
  if (status != napi_ok) throw Napi::Error::New(env, "dppa: could not create a thread-safe function");
  jobThread().push(queued.release());
  return promise;
}

void registerJobCleanup(Napi::Env env) {
  jobThread().attach();
  napi_env raw = env;
  env.AddCleanupHook([raw] { jobThread().detach(raw); });
}

}  // namespace addon
}  // namespace dppa
