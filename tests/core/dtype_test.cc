#include "qforge/dtype.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <limits>

namespace qf {
namespace {

TEST(DTypeTest, HalfRoundTripsEveryBitPattern) {
  for (uint32_t bits = 0; bits < 0x10000; ++bits) {
    const f16_t h{static_cast<uint16_t>(bits)};
    const float f = f16_to_f32(h);
    if (std::isnan(f)) continue;
    EXPECT_EQ(f32_to_f16(f).bits, h.bits) << "bits " << bits;
  }
}

TEST(DTypeTest, HalfRoundsToNearestEven) {
  // 1 + 2^-11 lies exactly between 1 and 1 + 2^-10: ties go to the even mantissa (1.0).
  EXPECT_EQ(f32_to_f16(1.0f + std::ldexp(1.0f, -11)).bits, 0x3c00);
  // 1 + 3 * 2^-11 lies between 1 + 2^-10 (odd) and 1 + 2^-9 (even): rounds up to even.
  EXPECT_EQ(f32_to_f16(1.0f + 3 * std::ldexp(1.0f, -11)).bits, 0x3c02);
  EXPECT_EQ(f32_to_f16(65504.0f).bits, 0x7bff);               // largest finite
  EXPECT_EQ(f32_to_f16(65520.0f).bits, 0x7c00);               // rounds to +inf
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -24)).bits, 0x0001);  // smallest subnormal
  EXPECT_EQ(f32_to_f16(-0.0f).bits, 0x8000);
}

TEST(DTypeTest, BFloat16KeepsTopBitsWithRounding) {
  EXPECT_EQ(f32_to_bf16(1.0f).bits, 0x3f80);
  EXPECT_EQ(bf16_to_f32(bf16_t{0x3f80}), 1.0f);
  // 1 + 2^-8 is a tie between 1 and 1 + 2^-7: rounds to even (1.0).
  EXPECT_EQ(f32_to_bf16(1.0f + std::ldexp(1.0f, -8)).bits, 0x3f80);
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(std::numeric_limits<float>::quiet_NaN()))));
}

TEST(DTypeTest, OnnxTypeMapping) {
  EXPECT_EQ(dtype_from_onnx(1), DType::kF32);
  EXPECT_EQ(dtype_from_onnx(7), DType::kI64);
  EXPECT_EQ(dtype_from_onnx(8), DType::kUndefined);  // STRING
  EXPECT_EQ(dtype_to_onnx(DType::kBF16), 16);
  EXPECT_EQ(dtype_tag(DType::kI8), "s8");
}

}  // namespace
}  // namespace qf
