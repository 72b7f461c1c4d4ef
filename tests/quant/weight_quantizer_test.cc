// Weight quantization: the symmetric per-channel quantizer and the variant that keeps the grid
// of weights a Q/DQ graph already quantized (QAT exports), including after a batch-norm factor
// was folded into them.
#include "quant/weight_quantizer.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

namespace qf::quant {
namespace {

// Channel c of a [channels, per_channel] weight holds q[c][i] * scale[c] (* factor[c]).
Tensor dequantized(const std::vector<std::vector<int>>& q, const std::vector<float>& scale,
                   const std::vector<float>& factor = {}) {
  const auto channels = static_cast<int64_t>(q.size());
  const auto per_channel = static_cast<int64_t>(q[0].size());
  Tensor w(DType::kF32, {channels, per_channel});
  for (int64_t c = 0; c < channels; ++c) {
    for (int64_t i = 0; i < per_channel; ++i) {
      float v = static_cast<float>(q[c][i]) * scale[c];
      if (!factor.empty()) v *= factor[c];
      w.data<float>()[c * per_channel + i] = v;
    }
  }
  return w;
}

std::vector<int> row(std::initializer_list<int> v) {
  return v;
}

TEST(WeightQuantizer, KeepsTheGridsOfQuantizedChannels) {
  const std::vector<std::vector<int>> q = {
      row({-128, 5, 127, 0, -3}),    // PyTorch's range: reaches -128
      row({127, -127, 64, 1, 2}),    // symmetric max: reaches 127
      row({-100, 99, 3, -7, 0}),     // stops at 100 (a moving-average amax)
      row({-128, -128, 12, 13, 0}),  // -128 twice
  };
  const std::vector<float> scale = {0.0123f, 0.5f, 0.003f, 1.7e-4f};
  const Tensor w = dequantized(q, scale);
  auto r = quantize_per_channel_keeping_grid(w, 0, "w");
  ASSERT_TRUE(r.ok()) << r.status().message();
  for (size_t c = 0; c < q.size(); ++c) {
    for (size_t i = 0; i < q[c].size(); ++i) {
      EXPECT_EQ(r->values.data<int8_t>()[c * q[c].size() + i], q[c][i]) << c << "," << i;
    }
    // amax / k gives back the scale up to one ulp (amax = k * s rounded once).
    const float got = r->scales.data<float>()[c];
    EXPECT_LE(std::fabs(got - scale[c]), std::nextafter(scale[c], 1.f) - scale[c]) << c;
  }
}

TEST(WeightQuantizer, KeepsTheGridAfterABatchNormFactorWasFoldedIn) {
  // A QAT export's Conv(DQ(q) * ...) followed by a folded batch norm: q * s * f per channel.
  const std::vector<std::vector<int>> q = {row({-128, 77, 127, -1, 9}), row({-99, 99, 50, -3, 4})};
  const std::vector<float> scale = {0.02f, 0.007f};
  const std::vector<float> factor = {1.0000001f, 0.73f};
  auto r = quantize_per_channel_keeping_grid(dequantized(q, scale, factor), 0, "w");
  ASSERT_TRUE(r.ok()) << r.status().message();
  for (size_t c = 0; c < q.size(); ++c) {
    for (size_t i = 0; i < q[c].size(); ++i) {
      EXPECT_EQ(r->values.data<int8_t>()[c * q[c].size() + i], q[c][i]) << c << "," << i;
    }
    EXPECT_NEAR(r->scales.data<float>()[c], scale[c] * factor[c], 1e-6 * scale[c]) << c;
  }
}

TEST(WeightQuantizer, FloatWeightsAreQuantizedSymmetrically) {
  // Random floats are on no grid: the result is quantize_per_channel's, never -128.
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> dist(-1.f, 1.f);
  Tensor w(DType::kF32, {16, 3, 3, 3});
  for (float& v : w.span<float>()) v = dist(rng);
  auto kept = quantize_per_channel_keeping_grid(w, 0, "w");
  auto plain = quantize_per_channel(w, 0, "w");
  ASSERT_TRUE(kept.ok() && plain.ok());
  for (int64_t i = 0; i < w.numel(); ++i) {
    ASSERT_EQ(kept->values.data<int8_t>()[i], plain->values.data<int8_t>()[i]) << i;
  }
  for (int64_t c = 0; c < 16; ++c) {
    EXPECT_EQ(kept->scales.data<float>()[c], plain->scales.data<float>()[c]) << c;
  }
}

TEST(WeightQuantizer, PlusAndMinusAmaxCannotUseTheMinus128Grid) {
  // -amax and +amax both present: q = +128 does not exist, so the channel stays symmetric.
  const Tensor w = Tensor::from_vector<float>({1, 3}, {-1.28f, 1.28f, 0.01f});
  auto r = quantize_per_channel_keeping_grid(w, 0, "w");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->values.data<int8_t>()[0], -127);
  EXPECT_EQ(r->values.data<int8_t>()[1], 127);
  EXPECT_EQ(r->scales.data<float>()[0], 1.28f / 127.f);
}

TEST(WeightQuantizer, ChannelAxisFollowsTheLayout) {
  // A MatMul weight [K, N] quantized per column (axis 1): each column on its own grid.
  const Tensor w =
      Tensor::from_vector<float>({2, 2}, {-128 * 0.5f, 100 * 0.25f, 3 * 0.5f, -7 * 0.25f});
  auto r = quantize_per_channel_keeping_grid(w, 1, "w");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->values.data<int8_t>()[0], -128);
  EXPECT_EQ(r->values.data<int8_t>()[1], 100);
  EXPECT_EQ(r->values.data<int8_t>()[2], 3);
  EXPECT_EQ(r->values.data<int8_t>()[3], -7);
  EXPECT_EQ(r->scales.data<float>()[0], 0.5f);
  EXPECT_EQ(r->scales.data<float>()[1], 0.25f);
}

}  // namespace
}  // namespace qf::quant
