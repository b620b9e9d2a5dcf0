// pool.h: the one persistent compute pool. Every kernel runs its parallel loops here (never on
// libuv's threadpool). Work is split into fixed-size tasks whose results are combined in task
// order, so results never depend on how many threads ran them.
#pragma once
#include <cstddef>
#include <functional>

namespace dppa {
namespace pool {

// Threads that compute (the calling thread included). Default: the available cores.
unsigned threads();
// Takes effect for the next parallelFor; n >= 1.
void setThreads(unsigned n);

// Runs body(task, worker) for task in [0, tasks), on up to threads() threads; worker is in
// [0, threads()) and identifies per-thread scratch. Returns when all are done. The first
// exception thrown by a body is rethrown here (the other tasks still finish or are skipped).
// Not re-entrant: call it from one thread at a time (the addon's job thread).
void parallelFor(size_t tasks, const std::function<void(size_t task, unsigned worker)>& body);

// Applies a pending setThreads (resizing happens only here, so that a size read before a
// parallelFor stays true during it) and returns how many workers the next parallelFor uses:
// size per-worker scratch with it. Call it from the same thread as parallelFor.
unsigned workerSlots();

}  // namespace pool
}  // namespace dppa
