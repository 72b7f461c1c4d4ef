// The trtexec measurement loop: warm up for a while, then time queries until both a minimum
// duration and a minimum number of iterations are reached. The clock is injected so that tests
// can drive the loop deterministically.
#pragma once

#include <functional>
#include <vector>

#include "qforge/status.h"

namespace qf::bench {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual double now_s() = 0;  // monotonic seconds
};

class SteadyClock final : public Clock {
 public:
  double now_s() override;
};

struct TimingOptions {
  double warmup_ms = 200;
  double duration_s = 3;
  int iterations = 10;
};

struct TimingResult {
  std::vector<double> latencies_ms;  // one per timed query
  int warmup_queries = 0;
  double walltime_s = 0;  // host time from the first to the end of the last timed query
};

// Calls `query` until the options are satisfied; stops at the first error. `after_timed`, when
// given, runs after each timed (not warm-up) query, outside its timed interval: it collects what
// the engine measured about that query (the device-side split) without the loop knowing engines.
Result<TimingResult> run_timing_loop(const TimingOptions& options, Clock& clock,
                                     const std::function<Status()>& query,
                                     const std::function<void()>& after_timed = nullptr);

// `--streams N` (trtexec's concurrent inference for throughput): one timing loop per query
// function, each on its own thread with its own clock, all started together. The result holds
// every stream's latencies (stream by stream), the summed warm-up queries and the longest
// stream's walltime, so queries / walltime is the combined throughput. The first error wins.
// `after_timed` is empty or holds one hook per stream, run on that stream's thread.
Result<TimingResult> run_concurrent_timing_loops(
    const TimingOptions& options, const std::vector<Clock*>& clocks,
    const std::vector<std::function<Status()>>& queries,
    const std::vector<std::function<void()>>& after_timed = {});

}  // namespace qf::bench
