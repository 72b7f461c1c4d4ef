// trtexec's split of a query's latency for a bench row: H2D, GPU compute and D2H from the
// engine's device events, and the host's enqueue time (runtime::RunTiming), each summarized with
// the same statistics as the latency. Only engines that measure it fill it in; for the others a
// row has no split and reports print "n/a", never an estimate.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "bench/statistics.h"
#include "runtime/run_timing.h"

namespace qf::bench {

struct LatencySplit {
  std::optional<LatencyStats> h2d_ms;  // absent when the queries copied nothing to the device
  LatencyStats compute_ms;
  std::optional<LatencyStats> d2h_ms;  // absent when the queries copied nothing back
  LatencyStats enqueue_ms;
};

// The RunTiming of every timed query of one engine. Storage for `reserve` queries is taken up
// front so that recording, which runs between timed queries, seldom allocates.
class SplitRecorder {
 public:
  explicit SplitRecorder(size_t reserve = size_t{1} << 14);
  void add(const std::optional<runtime::RunTiming>& timing);
  // Another stream's queries (--streams).
  void append(const SplitRecorder& other);
  // The row's split; nullopt when some timed query had none (the engine does not measure it):
  // a split of only some queries would misstate the row.
  std::optional<LatencySplit> summarize(const std::vector<double>& percentiles) const;

 private:
  std::vector<double> h2d_, compute_, d2h_, enqueue_;
  size_t untimed_ = 0;
};

}  // namespace qf::bench
