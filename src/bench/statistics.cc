#include "bench/statistics.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace qf::bench {

double percentile_of_sorted(const std::vector<double>& sorted, double p) {
  const auto n = static_cast<int64_t>(sorted.size());
  // (100 - P) * N / 100 keeps integral inputs exact; the epsilon absorbs the rounding of
  // decimal percentiles such as 99.9 so that floor() lands where exact arithmetic would.
  const double excluded = (100.0 - p) * static_cast<double>(n) / 100.0;
  const auto from_top = static_cast<int64_t>(std::floor(excluded + 1e-9));
  const int64_t index = std::clamp<int64_t>(n - 1 - from_top, 0, n - 1);
  return sorted[static_cast<size_t>(index)];
}

LatencyStats compute_stats(std::vector<double> samples, const std::vector<double>& percentiles) {
  LatencyStats s;
  if (samples.empty()) return s;
  std::sort(samples.begin(), samples.end());
  const size_t n = samples.size();
  s.min = samples.front();
  s.max = samples.back();
  s.mean = std::accumulate(samples.begin(), samples.end(), 0.0) / static_cast<double>(n);
  s.median = n % 2 == 1 ? samples[n / 2] : (samples[n / 2 - 1] + samples[n / 2]) / 2.0;
  double squares = 0;
  for (double v : samples) squares += (v - s.mean) * (v - s.mean);
  s.stddev = std::sqrt(squares / static_cast<double>(n));
  s.cov = s.mean > 0 ? s.stddev / s.mean : 0;
  for (double p : percentiles) s.percentiles.emplace_back(p, percentile_of_sorted(samples, p));
  return s;
}

}  // namespace qf::bench
