// Entropy calibration in the manner of TensorRT's EntropyCalibrator2.
//
// Empty bins in Q: a candidate threshold i whose last kept bin (i - 1) holds no sample of its
// own still has P[i-1] > 0 once the clipped outliers are folded into it, while Q, built from the
// original counts, is 0 there, so KL(P||Q) is infinite. (It is the only bin where that can
// happen: elsewhere P > 0 implies a sample in the bin, hence a share of its group in Q.)
// NVIDIA's Python reference (pytorch-quantization's entropy calibrator, through scipy's
// `entropy`) keeps the infinity, which rules out every threshold that falls in an empty stretch
// of the histogram. For the case calibration exists
// for, a dense bulk plus a few far outliers (histogram range = the outlier), every candidate
// between the bulk and the outlier is such a threshold, so the reference ends up not clipping
// at all. Here such a bin instead gets half a sample in Q (a pseudo-count), and Q is normalised
// with it included so that it stays a distribution and KL stays >= 0. Half a sample is less
// than any occupied bin gets (a group's total spread over its occupied bins is at least one
// sample each), so an empty last bin still costs more than an occupied one, but the cost is
// finite and grows with the clipped mass: clipping 2 outliers in a million is cheap, clipping
// 5% of the data is not.
#include <cmath>
#include <limits>
#include <vector>

#include "quant/calibrators.h"

namespace qf::quant {
namespace {

constexpr double kEmptyBinPseudoCount = 0.5;

}  // namespace

float entropy_amax(const AbsHistogram& h, int levels, int start_bin) {
  if (h.total() == 0) return 0.0f;
  const int bins = h.bins();
  if (bins < start_bin) return h.range_max();
  if (levels < 1) levels = 1;
  if (start_bin < 1) start_bin = 1;

  // The first bin holds every exact zero, and after a ReLU that is often half the tensor. Left
  // as it is, that spike dominates P and Q: any threshold whose first group merges bin 0 with a
  // neighbour pays a large divergence, so the search settles on thresholds below 256 bins
  // (an eighth of the range) and clips most of the signal. NVIDIA's reference implementation
  // of this calibrator replaces the first bin's count by the second's for that reason; so do we.
  std::vector<int64_t> counts = h.counts();
  if (counts.size() > 1) counts[0] = counts[1];
  // Prefix sums of counts and of occupied bins make each group's total and size O(1).
  std::vector<int64_t> prefix(static_cast<size_t>(bins) + 1, 0);
  std::vector<int64_t> nonzero_prefix(static_cast<size_t>(bins) + 1, 0);
  for (int j = 0; j < bins; ++j) {
    prefix[j + 1] = prefix[j] + counts[j];
    nonzero_prefix[j + 1] = nonzero_prefix[j] + (counts[j] > 0 ? 1 : 0);
  }
  const double total = static_cast<double>(prefix[bins]);

  double best_kl = std::numeric_limits<double>::infinity();
  int best_i = bins;
  for (int i = start_bin; i <= bins; ++i) {
    const int64_t kept = prefix[i];
    // Everything is clipped: Q has no mass at all, so the divergence is infinite.
    if (kept == 0) continue;
    const int64_t outliers = prefix[bins] - kept;
    const bool pseudo = outliers > 0 && counts[i - 1] == 0;
    const double q_total = static_cast<double>(kept) + (pseudo ? kEmptyBinPseudoCount : 0.0);

    double kl = 0.0;
    for (int g = 0; g < levels; ++g) {
      // Integer boundaries: for i not a multiple of levels the groups differ by at most one
      // bin, and which ones are larger is fixed by the arithmetic, not by float rounding.
      const int begin = static_cast<int>(static_cast<int64_t>(g) * i / levels);
      const int end = static_cast<int>(static_cast<int64_t>(g + 1) * i / levels);
      if (begin == end) continue;
      const int64_t group_total = prefix[end] - prefix[begin];
      const int64_t group_nonzero = nonzero_prefix[end] - nonzero_prefix[begin];
      const double share =
          group_nonzero > 0 ? static_cast<double>(group_total) / static_cast<double>(group_nonzero)
                            : 0.0;
      for (int j = begin; j < end; ++j) {
        const int64_t p_count = counts[j] + (j == i - 1 ? outliers : 0);
        if (p_count == 0) continue;
        const double q_count = counts[j] > 0 ? share : kEmptyBinPseudoCount;
        const double p = static_cast<double>(p_count) / total;
        const double q = q_count / q_total;
        kl += p * std::log(p / q);
      }
    }
    // Strict comparison: on a tie the smaller threshold (seen first) wins.
    if (kl < best_kl) {
      best_kl = kl;
      best_i = i;
    }
  }
  return h.edge(best_i);
}

}  // namespace qf::quant
