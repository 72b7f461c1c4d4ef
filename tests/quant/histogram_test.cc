#include "quant/histogram.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

namespace qf::quant {
namespace {

TEST(HistogramTest, EdgesDivideTheRangeEvenly) {
  AbsHistogram h(8.0f, 4);
  EXPECT_EQ(h.bins(), 4);
  EXPECT_EQ(h.bin_width(), 2.0f);
  EXPECT_EQ(h.edge(0), 0.0f);
  EXPECT_EQ(h.edge(1), 2.0f);
  EXPECT_EQ(h.edge(3), 6.0f);
  EXPECT_EQ(h.edge(4), 8.0f);
  EXPECT_EQ(h.total(), 0);
}

TEST(HistogramTest, DefaultsToTensorRTBinCount) {
  AbsHistogram h(1.0f);
  EXPECT_EQ(h.bins(), 2048);
  EXPECT_EQ(h.counts().size(), 2048u);
}

TEST(HistogramTest, LastEdgeIsExactlyTheRange) {
  // 0.1 is not a multiple of 1/2048 in binary; the last edge must still be the max itself.
  AbsHistogram h(0.1f);
  EXPECT_EQ(h.edge(h.bins()), 0.1f);
  EXPECT_EQ(h.range_max(), 0.1f);
}

TEST(HistogramTest, CountsMagnitudes) {
  AbsHistogram h(4.0f, 4);
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  // |x| -> bin: 0.5, 0.5 -> 0; 1.0 (a lower edge) -> 1; 2.5 -> 2; 4.0 (== range), 7 and inf
  // (above the range) -> 3. NaN is not counted.
  const std::vector<float> values = {-0.5f, 0.5f, 1.0f, -2.5f, 4.0f, -7.0f, inf, nan};
  h.add(values);
  EXPECT_EQ(h.counts(), (std::vector<int64_t>{2, 1, 1, 3}));
  EXPECT_EQ(h.total(), 7);
}

TEST(HistogramTest, AddAccumulatesAcrossBatches) {
  const std::vector<float> a = {0.1f, 0.9f, -0.3f};
  const std::vector<float> b = {0.7f, 0.2f};
  AbsHistogram once(1.0f, 10);
  std::vector<float> all = a;
  all.insert(all.end(), b.begin(), b.end());
  once.add(all);
  AbsHistogram twice(1.0f, 10);
  twice.add(a);
  twice.add(b);
  EXPECT_EQ(once.counts(), twice.counts());
  EXPECT_EQ(twice.total(), 5);
}

TEST(HistogramTest, ZeroRangeKeepsZerosInFirstBin) {
  AbsHistogram h(0.0f, 16);
  const std::vector<float> zeros = {0.0f, -0.0f, 0.0f};
  h.add(zeros);
  EXPECT_EQ(h.counts()[0], 3);
  EXPECT_EQ(h.total(), 3);
  EXPECT_EQ(h.edge(16), 0.0f);
  EXPECT_EQ(h.bin_width(), 0.0f);
}

TEST(HistogramTest, InvalidRangeBecomesZero) {
  EXPECT_EQ(AbsHistogram(-1.0f).range_max(), 0.0f);
  EXPECT_EQ(AbsHistogram(std::numeric_limits<float>::quiet_NaN()).range_max(), 0.0f);
  EXPECT_TRUE(std::isfinite(AbsHistogram(std::numeric_limits<float>::infinity()).edge(1)));
}

}  // namespace
}  // namespace qf::quant
