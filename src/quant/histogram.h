// A histogram of |x| over [0, range_max], the statistic every histogram calibrator reads.
//
// Calibration runs the data twice: the first pass finds max |x| per tensor, the second fills a
// histogram whose range is that max, so the bins are the same whatever the batch order and the
// result is deterministic. Values above range_max (none, with this scheme) count in the last bin.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace qf::quant {

class AbsHistogram {
 public:
  static constexpr int kDefaultBins = 2048;  // TensorRT's EntropyCalibrator2 uses 2048 bins

  explicit AbsHistogram(float range_max, int bins = kDefaultBins);

  void add(std::span<const float> values);

  float range_max() const { return range_max_; }
  int bins() const { return static_cast<int>(counts_.size()); }
  float bin_width() const;
  // Upper edge of bin i (i in [0, bins]); edge(bins()) == range_max().
  float edge(int i) const;
  const std::vector<int64_t>& counts() const { return counts_; }
  int64_t total() const { return total_; }

 private:
  float range_max_;
  std::vector<int64_t> counts_;
  int64_t total_ = 0;
};

}  // namespace qf::quant
