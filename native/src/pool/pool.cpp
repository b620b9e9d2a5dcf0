// pool.cpp: one persistent pool of helper threads. The calling thread (the addon's job thread)
// takes part in every parallelFor, so `threads()` threads compute and threads() - 1 helpers
// exist. Tasks are handed out through one atomic counter: no locks in the hot path.
#include "dppa/pool.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace dppa {
namespace pool {
namespace {

unsigned defaultThreads() {
  unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : n;
}

class Pool {
 public:
  ~Pool() { stopHelpers(); }

  unsigned wanted() const { return wanted_.load(); }
  void setWanted(unsigned n) { wanted_.store(std::max(1u, n)); }
  // Applies a pending setThreads and returns how many workers the next run may use.
  unsigned slots() {
    resizeIfNeeded();
    return unsigned(helpers_.size() + 1);
  }

  void run(size_t tasks, const std::function<void(size_t, unsigned)>& body) {
    if (tasks == 0) return;
    const unsigned helperCount = unsigned(helpers_.size());
    if (helperCount == 0 || tasks == 1) {
      for (size_t t = 0; t < tasks; ++t) body(t, 0);
      return;
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      body_ = &body;
      tasks_ = tasks;
      next_.store(0);
      firstError_ = nullptr;
      busyHelpers_ = helperCount;
      ++generation_;
    }
    wake_.notify_all();
    work(0);
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [&] { return busyHelpers_ == 0; });
    body_ = nullptr;
    if (firstError_) {
      std::exception_ptr error = firstError_;
      firstError_ = nullptr;
      std::rethrow_exception(error);
    }
  }

 private:
  // Grabs tasks until none are left. After an error the remaining tasks are skipped.
  void work(unsigned worker) {
    for (;;) {
      const size_t task = next_.fetch_add(1);
      if (task >= tasks_) return;
      try {
        (*body_)(task, worker);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mutex_);
        if (!firstError_) firstError_ = std::current_exception();
        next_.store(tasks_);
      }
    }
  }

  void helperLoop(unsigned worker) {
    uint64_t seen = 0;
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return stopping_ || generation_ != seen; });
        if (stopping_) return;
        seen = generation_;
      }
      work(worker);
      std::lock_guard<std::mutex> lock(mutex_);
      if (--busyHelpers_ == 0) done_.notify_one();
    }
  }

  void resizeIfNeeded() {
    const unsigned helpersWanted = wanted_.load() - 1;
    if (helpersWanted == helpers_.size()) return;
    stopHelpers();
    stopping_ = false;
    for (unsigned i = 0; i < helpersWanted; ++i) helpers_.emplace_back([this, i] { helperLoop(i + 1); });
  }

  void stopHelpers() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    for (auto& t : helpers_) t.join();
    helpers_.clear();
  }

  std::atomic<unsigned> wanted_{defaultThreads()};
  std::vector<std::thread> helpers_;
  std::mutex mutex_;
  std::condition_variable wake_, done_;
  uint64_t generation_ = 0;
  bool stopping_ = false;
  const std::function<void(size_t, unsigned)>* body_ = nullptr;
  size_t tasks_ = 0;
  std::atomic<size_t> next_{0};
  unsigned busyHelpers_ = 0;
  std::exception_ptr firstError_;
};

Pool& instance() {
  // Leaked on purpose: helpers must not be joined during static destruction at process exit.
  static Pool* pool = new Pool();
  return *pool;
}

}  // namespace

unsigned threads() { return instance().wanted(); }
void setThreads(unsigned n) { instance().setWanted(n); }
unsigned workerSlots() { return instance().slots(); }
void parallelFor(size_t tasks, const std::function<void(size_t, unsigned)>& body) { instance().run(tasks, body); }

}  // namespace pool
}  // namespace dppa
