#include "bench/timing_loop.h"

#include <chrono>

namespace qf::bench {

double SteadyClock::now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

Result<TimingResult> run_timing_loop(const TimingOptions& options, Clock& clock,
                                     const std::function<Status()>& query) {
  TimingResult result;
  const double warmup_end = clock.now_s() + options.warmup_ms / 1e3;
  while (clock.now_s() < warmup_end) {
    QF_RETURN_IF_ERROR(query());
    ++result.warmup_queries;
  }
  const double start = clock.now_s();
  double now = start;
  while (static_cast<int>(result.latencies_ms.size()) < options.iterations ||
         now - start < options.duration_s) {
    const double before = clock.now_s();
    QF_RETURN_IF_ERROR(query());
    now = clock.now_s();
    result.latencies_ms.push_back((now - before) * 1e3);
  }
  result.walltime_s = now - start;
  return result;
}

}  // namespace qf::bench
