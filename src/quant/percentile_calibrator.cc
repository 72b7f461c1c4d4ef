#include <cmath>
#include <vector>

#include "quant/calibrators.h"

namespace qf::quant {

// Out-of-range percentiles are a caller's bug (the CLI validates its option), but the function
// returns a float and has no error channel, so they are clamped into (0, 100]: above 100 (or
// NaN) means "keep everything", 0 or below means the limit p -> 0+, the upper edge of the first
// occupied bin.
float percentile_amax(const AbsHistogram& h, double percentile) {
  if (h.total() == 0) return 0.0f;
  if (std::isnan(percentile) || percentile > 100.0) percentile = 100.0;
  if (percentile < 0.0) percentile = 0.0;

  const std::vector<int64_t>& counts = h.counts();
  double total = 0.0;
  for (int64_t c : counts) total += static_cast<double>(c);
  // `cumulative * 100 >= percentile * total` instead of `cumulative >= percentile / 100 * total`:
  // the left side is an exact integer and the right side is rounded once, so a percentile that
  // lands exactly on a bin boundary (50% of 10 samples) is not pushed to the next bin by the
  // extra rounding of the division.
  const double target = percentile * total;
  double cumulative = 0.0;
  for (int j = 0; j < h.bins(); ++j) {
    cumulative += static_cast<double>(counts[j]);
    if (cumulative > 0.0 && cumulative * 100.0 >= target) return h.edge(j + 1);
  }
  return h.range_max();
}

}  // namespace qf::quant
