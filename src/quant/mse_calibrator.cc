// MSE calibration: every bin edge is a candidate threshold t, scored by the expected squared
// error of symmetric int8 quantization with scale t / 127, each bin standing in for its samples
// at its centre.
//
// Inside the range the error is the uniform-quantization noise step^2 / 12 per sample, not the
// error of rounding the bin centre itself: the centre's own rounding error oscillates with t
// (it is zero whenever a centre happens to sit on a grid point), which would make the choice
// jump between neighbouring edges for reasons unrelated to the data, while step^2 / 12 is the
// expected error of samples spread over a step and grows smoothly with t. Outside the range the
// error is the clipping distance (c - t)^2. Every candidate is evaluated (2048^2 multiply-adds,
// a few milliseconds), so there is no stride for results to depend on.
#include <limits>
#include <vector>

#include "quant/calibrators.h"

namespace qf::quant {

float mse_amax(const AbsHistogram& h) {
  if (h.total() == 0) return 0.0f;
  const int bins = h.bins();
  const std::vector<int64_t>& counts = h.counts();
  const double range = h.range_max();
  constexpr double kLevels = 127.0;

  double best_error = std::numeric_limits<double>::infinity();
  int best_k = bins;
  double inside = 0.0;  // samples in bins [0, k)
  for (int k = 1; k <= bins; ++k) {
    inside += static_cast<double>(counts[k - 1]);
    // The same expression as AbsHistogram::edge(k), before its rounding to float.
    const double t = range * k / bins;
    const double step = t / kLevels;
    double error = inside * step * step / 12.0;
    for (int j = k; j < bins; ++j) {
      if (counts[j] == 0) continue;
      const double distance = range * (j + 0.5) / bins - t;
      error += static_cast<double>(counts[j]) * distance * distance;
    }
    // Strict comparison: on a tie the smaller threshold (seen first) wins.
    if (error < best_error) {
      best_error = error;
      best_k = k;
    }
  }
  return h.edge(best_k);
}

}  // namespace qf::quant
