// Latency statistics with trtexec's definitions, so that qforge's numbers compare with
// TensorRT's: percentile P of N sorted samples is sorted[max(N - 1 - floor((1 - P/100) * N), 0)],
// the median of an even count averages the two middle samples, CoV = stddev / mean.
#pragma once

#include <vector>

namespace qf::bench {

struct LatencyStats {
  double min = 0;
  double max = 0;
  double mean = 0;
  double median = 0;
  double stddev = 0;                                   // population standard deviation
  double cov = 0;                                      // coefficient of variation: stddev / mean
  std::vector<std::pair<double, double>> percentiles;  // (P, value)
};

// `samples` need not be sorted; must not be empty.
LatencyStats compute_stats(std::vector<double> samples, const std::vector<double>& percentiles);

// trtexec's percentile rule on already sorted samples.
double percentile_of_sorted(const std::vector<double>& sorted, double p);

}  // namespace qf::bench
