// pcb.cpp: PCB-Merging's element-wise scores (lib/methods/pcb.ts), the float64 formula of the
// TypeScript layer run on the pool. Scalar on purpose: exp and tanh are most of the work, and
// only the C library's double versions give (to within their last bit) the reference's values.
#include <cmath>

#include "common.h"

namespace dppa {
using namespace detail;

void pcbScores(const std::vector<const float*>& deltas, size_t n, const PcbTaskParams* params,
               const std::vector<float*>& scores) {
  const size_t tasks = deltas.size();
  if (tasks == 0 || n == 0) return;
  if (tasks > kMaxPcbTasks) throw std::invalid_argument("pcbScores: at most " + std::to_string(kMaxPcbTasks) + " tasks");
  pool::workerSlots();
  pool::parallelFor(chunkCount(n), [&](size_t task, unsigned) {
    const Range r = chunkRange(task, n);
    float clipped[kMaxPcbTasks];
    for (size_t i = r.begin; i < r.end; ++i) {
      double sum = 0;
      for (size_t t = 0; t < tasks; ++t) {
        const double x = deltas[t][i];
        const PcbTaskParams& p = params[t];
        // As the TypeScript layer: clipped values are stored as float32 before use.
        clipped[t] = float(x < p.clipLow ? p.clipLow : x > p.clipHigh ? p.clipHigh : x);
        sum += double(clipped[t]);
      }
      for (size_t t = 0; t < tasks; ++t) {
        const PcbTaskParams& p = params[t];
        const double c = clipped[t], range = p.absMax - p.absMin;
        const double normalized = range > 0 ? (std::fabs(c) - p.absMin) / range : 0;
        scores[t][i] = float(std::exp(double(tasks) * normalized * normalized) * std::tanh(c * sum));
      }
    }
  });
}

}  // namespace dppa
