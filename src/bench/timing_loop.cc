#include "bench/timing_loop.h"

#include <chrono>
#include <optional>
#include <thread>

namespace qf::bench {

double SteadyClock::now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

Result<TimingResult> run_timing_loop(const TimingOptions& options, Clock& clock,
                                     const std::function<Status()>& query,
                                     const std::function<void()>& after_timed) {
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
    // Between queries, like the loop's own bookkeeping: in no query's latency, in the walltime
    // only when another query follows.
    if (after_timed) after_timed();
  }
  result.walltime_s = now - start;
  return result;
}

Result<TimingResult> run_concurrent_timing_loops(
    const TimingOptions& options, const std::vector<Clock*>& clocks,
    const std::vector<std::function<Status()>>& queries,
    const std::vector<std::function<void()>>& after_timed) {
  if (clocks.size() != queries.size() || queries.empty() ||
      (!after_timed.empty() && after_timed.size() != queries.size())) {
    return internal_error(
        "concurrent timing needs one clock (and hook, if any) per stream ({} clocks, {} hooks, "
        "{} streams)",
        clocks.size(), after_timed.size(), queries.size());
  }
  std::vector<std::optional<Result<TimingResult>>> results(queries.size());
  {
    std::vector<std::jthread> streams;
    for (size_t i = 0; i < queries.size(); ++i) {
      streams.emplace_back([&, i] {
        results[i] = run_timing_loop(options, *clocks[i], queries[i],
                                     after_timed.empty() ? nullptr : after_timed[i]);
      });
    }
  }  // the jthreads join here
  TimingResult merged;
  for (auto& r : results) {
    if (!r->ok()) return r->status();
    const TimingResult& t = r->value();
    merged.latencies_ms.insert(merged.latencies_ms.end(), t.latencies_ms.begin(),
                               t.latencies_ms.end());
    merged.warmup_queries += t.warmup_queries;
    merged.walltime_s = std::max(merged.walltime_s, t.walltime_s);
  }
  return merged;
}

}  // namespace qf::bench
