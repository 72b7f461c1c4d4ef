#include "quant/histogram.h"

#include <cfloat>
#include <cmath>

namespace qf::quant {

// A NaN or negative range (a caller bug or an all-NaN tensor) becomes 0 so that every bin edge
// is a finite, ordered number; an infinite range would make every edge inf and every finite
// value land in bin 0, so it is capped at the largest float.
AbsHistogram::AbsHistogram(float range_max, int bins)
    : range_max_(range_max >= 0.0f ? std::fmin(range_max, FLT_MAX) : 0.0f),
      counts_(static_cast<size_t>(bins > 0 ? bins : 1), 0) {}

float AbsHistogram::bin_width() const {
  return static_cast<float>(static_cast<double>(range_max_) / bins());
}

// Computed from range_max rather than as i * bin_width() so that edge(bins()) is range_max
// exactly: a threshold at the last edge must reproduce the tensor's max bit for bit.
float AbsHistogram::edge(int i) const {
  return static_cast<float>(static_cast<double>(range_max_) * i / bins());
}

void AbsHistogram::add(std::span<const float> values) {
  const int n = bins();
  const double range = range_max_;
  for (float v : values) {
    // NaN has no magnitude to calibrate against; counting it anywhere would bias the threshold.
    if (std::isnan(v)) continue;
    const double a = std::fabs(static_cast<double>(v));
    int64_t index = n - 1;
    if (range > 0.0) {
      const double pos = a * n / range;
      if (pos < n) index = static_cast<int64_t>(pos);
    } else if (a == 0.0) {
      index = 0;  // an all-zero tensor: zeros belong in the first bin, not "above the range"
    }
    ++counts_[static_cast<size_t>(index)];
    ++total_;
  }
}

}  // namespace qf::quant
