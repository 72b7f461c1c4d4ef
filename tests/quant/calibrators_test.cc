#include "quant/calibrators.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "quant/calib_method.h"

namespace qf::quant {
namespace {

// `per_bin` samples at the centre of every bin: an exactly flat histogram.
AbsHistogram exact_uniform(float range, int bins, int per_bin) {
  AbsHistogram h(range, bins);
  std::vector<float> values;
  for (int j = 0; j < bins; ++j) {
    const float centre = static_cast<float>(range * (j + 0.5) / bins);
    values.insert(values.end(), static_cast<size_t>(per_bin), centre);
  }
  h.add(values);
  return h;
}

// One million N(0, 1) samples plus one outlier at +outlier and one at -outlier; the histogram
// spans [0, outlier] as the two-pass scheme would make it (max |x| of a million normal samples
// is about 5).
AbsHistogram gaussian_with_outliers(float outlier) {
  std::mt19937 rng(42);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> values(1'000'000);
  for (float& v : values) v = normal(rng);
  values.push_back(outlier);
  values.push_back(-outlier);
  AbsHistogram h(outlier);
  h.add(values);
  return h;
}

AbsHistogram random_uniform(float range) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> uniform(-range, range);
  std::vector<float> values(1'000'000);
  float max_abs = 0.0f;
  for (float& v : values) {
    v = uniform(rng);
    max_abs = std::max(max_abs, std::fabs(v));
  }
  AbsHistogram h(max_abs);
  h.add(values);
  return h;
}

AbsHistogram single_value(float v, int count) {
  AbsHistogram h(v);
  const std::vector<float> values(static_cast<size_t>(count), v);
  h.add(values);
  return h;
}

TEST(CalibMethodTest, NamesRoundTrip) {
  for (CalibMethod m :
       {CalibMethod::kEntropy, CalibMethod::kMinMax, CalibMethod::kPercentile, CalibMethod::kMse}) {
    auto parsed = parse_calib_method(calib_method_name(m));
    ASSERT_TRUE(parsed.ok()) << parsed.status().message();
    EXPECT_EQ(*parsed, m);
  }
  EXPECT_EQ(calib_method_name(CalibMethod::kEntropy), "entropy");
  EXPECT_EQ(calib_method_name(CalibMethod::kMinMax), "minmax");
  EXPECT_EQ(calib_method_name(CalibMethod::kPercentile), "percentile");
  EXPECT_EQ(calib_method_name(CalibMethod::kMse), "mse");
}

TEST(CalibMethodTest, UnknownNameIsUsageErrorListingValidNames) {
  for (const char* bad : {"Entropy", "kl", ""}) {
    auto parsed = parse_calib_method(bad);
    ASSERT_FALSE(parsed.ok());
    EXPECT_EQ(parsed.status().code(), StatusCode::kUsage);
    for (const char* name : {"entropy", "minmax", "percentile", "mse"}) {
      EXPECT_NE(parsed.status().message().find(name), std::string::npos) << name;
    }
  }
}

TEST(CalibMethodTest, TensorRTAlgorithmNames) {
  EXPECT_EQ(trt_algorithm_name(CalibMethod::kEntropy), "EntropyCalibration2");
  EXPECT_EQ(trt_algorithm_name(CalibMethod::kMinMax), "MinMaxCalibration");
  EXPECT_EQ(trt_algorithm_name(CalibMethod::kPercentile), "PercentileCalibration");
  EXPECT_EQ(trt_algorithm_name(CalibMethod::kMse), "MSECalibration");
}

TEST(CalibratorsAllZeroTest, EveryMethodGivesZero) {
  AbsHistogram zeros(0.0f);
  const std::vector<float> values(1000, 0.0f);
  zeros.add(values);
  EXPECT_EQ(entropy_amax(zeros), 0.0f);
  EXPECT_EQ(percentile_amax(zeros), 0.0f);
  EXPECT_EQ(mse_amax(zeros), 0.0f);

  AbsHistogram empty(3.0f);  // no samples at all
  EXPECT_EQ(entropy_amax(empty), 0.0f);
  EXPECT_EQ(percentile_amax(empty), 0.0f);
  EXPECT_EQ(mse_amax(empty), 0.0f);
}

// Entropy.

TEST(EntropyCalibratorTest, ExactlyFlatHistogramKeepsFullRange) {
  // At i = bins every 16-bin group is flat, so Q == P and KL == 0. Every smaller i folds a
  // nonzero tail into P[i-1] that Q (built without it) does not have, so KL > 0 (Gibbs).
  const AbsHistogram h = exact_uniform(2.0f, 2048, 10);
  EXPECT_EQ(entropy_amax(h), 2.0f);
}

TEST(EntropyCalibratorTest, UnevenGroupsStillReproduceFlatHistogram) {
  // 300 bins do not split into 128 equal groups (sizes 2 and 3); a flat histogram must still
  // give Q == P at i = 300 and so keep the full range.
  const AbsHistogram h = exact_uniform(3.0f, 300, 7);
  EXPECT_EQ(entropy_amax(h), 3.0f);
}

TEST(EntropyCalibratorTest, RandomUniformStaysNearMax) {
  const AbsHistogram h = random_uniform(1.0f);
  EXPECT_GE(entropy_amax(h), 0.98f * h.range_max());
  EXPECT_LE(entropy_amax(h), h.range_max());
}

TEST(EntropyCalibratorTest, SingleValueKeepsIt) {
  // Everything sits in the last bin: any threshold below clips all of it (Q has no mass).
  const AbsHistogram h = single_value(3.0f, 1000);
  EXPECT_EQ(entropy_amax(h), 3.0f);
}

TEST(EntropyCalibratorTest, FewerBinsThanStartBinGivesRange) {
  AbsHistogram h(5.0f, 64);
  const std::vector<float> values = {0.1f, 1.0f, 2.0f};
  h.add(values);
  EXPECT_EQ(entropy_amax(h), 5.0f);
}

TEST(EntropyCalibratorTest, ClipsFarOutliers) {
  // The bulk ends near 5 (bin ~340 of 2048 over [0, 30]); the two outliers are 2 in a million.
  // Every candidate between the bulk and the outlier has an empty last bin, which must not
  // stop entropy from clipping there (see entropy_calibrator.cc). minmax would keep 30.
  const AbsHistogram h = gaussian_with_outliers(30.0f);
  EXPECT_EQ(h.range_max(), 30.0f);
  const float amax = entropy_amax(h);
  EXPECT_GE(amax, 2.5f);
  EXPECT_LE(amax, 6.0f);
}

TEST(EntropyCalibratorTest, ClipsHugeOutliersDownToStartBin) {
  // With the outlier at 1000 the bulk (|x| < ~5) lies below the first candidate, edge(128) =
  // 62.5, so every candidate clips exactly the two outliers into an empty last bin: the same
  // pseudo-count term for all of them. What differs is the bulk: at i = 128 each of the 128
  // levels is one bin and Q reproduces it exactly, while coarser groups can only add
  // divergence (log-sum inequality). So the first candidate wins, far below minmax's 1000.
  const AbsHistogram h = gaussian_with_outliers(1000.0f);
  EXPECT_EQ(entropy_amax(h), h.edge(128));
}

// Percentile.

TEST(PercentileCalibratorTest, HandComputedHistogram) {
  // Bins of width 1 over [0, 10]; counts [5, 0, 3, 2, 0...], total 10, cumulative 5, 5, 8, 10.
  AbsHistogram h(10.0f, 10);
  const std::vector<float> values = {0.5f, 0.5f, 0.5f, 0.5f, 0.5f, 2.5f, 2.5f, 2.5f, 3.5f, 3.5f};
  h.add(values);
  EXPECT_EQ(percentile_amax(h, 10.0), 1.0f);
  EXPECT_EQ(percentile_amax(h, 50.0), 1.0f);  // exactly 5 of 10: bin 0 suffices
  EXPECT_EQ(percentile_amax(h, 50.5), 3.0f);  // bin 1 is empty, bin 2 reaches 8
  EXPECT_EQ(percentile_amax(h, 80.0), 3.0f);
  EXPECT_EQ(percentile_amax(h, 80.5), 4.0f);
  EXPECT_EQ(percentile_amax(h, 100.0), 4.0f);  // the last occupied bin, not the range
}

TEST(PercentileCalibratorTest, OutOfRangePercentilesAreClamped) {
  AbsHistogram h(10.0f, 10);
  const std::vector<float> values = {2.5f, 2.5f, 7.5f};
  h.add(values);
  EXPECT_EQ(percentile_amax(h, 150.0), 8.0f);  // as 100
  EXPECT_EQ(percentile_amax(h, std::numeric_limits<double>::quiet_NaN()), 8.0f);
  EXPECT_EQ(percentile_amax(h, 0.0), 3.0f);  // as 0+: the first occupied bin
  EXPECT_EQ(percentile_amax(h, -5.0), 3.0f);
}

TEST(PercentileCalibratorTest, ExactlyFlatHistogram) {
  // 2048 equal bins over [0, 2048]: percentile p needs ceil(p / 100 * 2048) bins.
  const AbsHistogram h = exact_uniform(2048.0f, 2048, 3);
  EXPECT_EQ(percentile_amax(h, 99.99), 2048.0f);  // 2047.80 -> 2048
  EXPECT_EQ(percentile_amax(h, 99.0), 2028.0f);   // 2027.52 -> 2028
  EXPECT_EQ(percentile_amax(h, 50.0), 1024.0f);   // exactly 1024
}

TEST(PercentileCalibratorTest, GaussianWithOutliers) {
  // 99.99% of |N(0,1)| lies below 3.89; the two outliers are 2e-6 of the data.
  const AbsHistogram h = gaussian_with_outliers(30.0f);
  const float p9999 = percentile_amax(h, 99.99);
  EXPECT_NEAR(p9999, 3.89f, 0.15f);
  EXPECT_EQ(percentile_amax(h, 100.0), 30.0f);
}

TEST(PercentileCalibratorTest, SingleValue) {
  const AbsHistogram h = single_value(3.0f, 10);
  EXPECT_EQ(percentile_amax(h, 99.99), 3.0f);
  EXPECT_EQ(percentile_amax(h, 1.0), 3.0f);
}

// MSE.

TEST(MseCalibratorTest, FlatHistogramNearAnalyticOptimum) {
  // For uniform data on [0, M], error(t) ~ t * (t/127)^2 / 12 + (M - t)^3 / 3 (per unit
  // density); its derivative vanishes where (M - t) = t / sqrt(12 * 127^2 / 3) = t / 254, so
  // t* = M * 254 / 255 = 2039.97 for M = 2048. Bin edges are 1 apart.
  const AbsHistogram h = exact_uniform(2048.0f, 2048, 5);
  EXPECT_NEAR(mse_amax(h), 2048.0f * 254.0f / 255.0f, 1.5f);
}

TEST(MseCalibratorTest, SingleValueWithinOneBin) {
  // All N samples in the last bin (centre v - w/2). Keeping them all costs the rounding noise
  // N * (v/127)^2 / 12 = 4.7e-5 N; clipping at v - w costs only N * (w/2)^2 = 5.4e-7 N, and
  // every lower edge clips more. So the answer is one bin below v.
  const AbsHistogram h = single_value(3.0f, 1000);
  EXPECT_EQ(mse_amax(h), h.edge(h.bins() - 1));
  EXPECT_NEAR(mse_amax(h), 3.0f, h.bin_width());
}

TEST(MseCalibratorTest, GaussianWithOutliersAnalyticOptimum) {
  // For t well past the bulk, error(t) = 1e6 * t^2 / (12 * 127^2) + 2 * (c - t)^2 with c the
  // outlier bin's centre (30 - w/2 = 29.993); the minimum is t = 2c / (1e6 / 193548 + 2) = 8.37.
  // minmax would keep 30.
  const AbsHistogram h = gaussian_with_outliers(30.0f);
  const double c = 30.0 - h.bin_width() / 2.0;
  const double expected = 2.0 * c / (1e6 / (12.0 * 127 * 127) + 2.0);
  EXPECT_NEAR(expected, 8.37, 0.01);
  EXPECT_NEAR(mse_amax(h), expected, 2.0 * h.bin_width());
}

TEST(MseCalibratorTest, FrequentOutliersAreKept) {
  // 1000 outliers in a million are worth keeping: the same formula gives
  // t = 1000 c / (1e6 / 193548 + 1000) = 0.995 c, just below the range.
  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> values(1'000'000);
  for (float& v : values) v = normal(rng);
  values.insert(values.end(), 1000, 30.0f);
  AbsHistogram h(30.0f);
  h.add(values);
  const double c = 30.0 - h.bin_width() / 2.0;
  const double expected = 1000.0 * c / (1e6 / (12.0 * 127 * 127) + 1000.0);
  EXPECT_NEAR(mse_amax(h), expected, 2.0 * h.bin_width());
}

}  // namespace
}  // namespace qf::quant
