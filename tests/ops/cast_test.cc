// Cast and CastLike: float -> integer truncation with saturation, integer wrap-around, exact
// 64-bit integers, single rounding to half types, bool, and unsupported target types.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>

#include "data_movement_test_util.h"

namespace qf {
namespace {

using onnx::TensorProto;
using testing::ModelBuilder;
using testing::untyped_output;
using testing::values_of;

// Casts `x` to ONNX type `to` through a one-node model.
Result<Tensor> cast(const Tensor& x, int32_t to) {
  ModelBuilder b(13);
  b.input("x", dtype_to_onnx(x.dtype()), x.shape());
  testing::set_int_attr(b.node("Cast", {"x"}, {"y"}), "to", to);
  untyped_output(b, "y");
  QF_ASSIGN_OR_RETURN(auto m, testing::import(b));
  QF_ASSIGN_OR_RETURN(auto out, testing::run(m, {x}));
  return out.at(0);
}

TEST(CastTest, FloatToIntTruncatesAndSaturates) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const Tensor x = Tensor::from_vector<float>({6}, {1.9f, -1.9f, 3e9f, -3e9f, nan, -0.5f});
  auto s32 = cast(x, TensorProto::INT32);
  ASSERT_TRUE(s32.ok()) << s32.status().message();
  EXPECT_EQ(values_of<int32_t>(*s32),
            (std::vector<int32_t>{1, -1, std::numeric_limits<int32_t>::max(),
                                  std::numeric_limits<int32_t>::lowest(), 0, 0}));
  auto u8 = cast(x, TensorProto::UINT8);
  ASSERT_TRUE(u8.ok()) << u8.status().message();
  EXPECT_EQ(values_of<uint8_t>(*u8), (std::vector<uint8_t>{1, 0, 255, 0, 0, 0}));
  auto s64 = cast(Tensor::from_vector<double>({2}, {1e300, -9.3e18}), TensorProto::INT64);
  ASSERT_TRUE(s64.ok()) << s64.status().message();
  EXPECT_EQ(values_of<int64_t>(*s64),
            (std::vector<int64_t>{std::numeric_limits<int64_t>::max(),
                                  std::numeric_limits<int64_t>::lowest()}));
}

TEST(CastTest, IntegersWrapAndStayExact) {
  auto u8 = cast(Tensor::from_vector<int32_t>({3}, {300, -1, 255}), TensorProto::UINT8);
  ASSERT_TRUE(u8.ok()) << u8.status().message();
  EXPECT_EQ(values_of<uint8_t>(*u8), (std::vector<uint8_t>{44, 255, 255}));
  // 2^53 + 1 does not survive a trip through double.
  const int64_t big = (int64_t{1} << 53) + 1;
  auto u64 = cast(Tensor::from_vector<int64_t>({1}, {big}), TensorProto::UINT64);
  ASSERT_TRUE(u64.ok()) << u64.status().message();
  EXPECT_EQ(values_of<uint64_t>(*u64), (std::vector<uint64_t>{static_cast<uint64_t>(big)}));
}

TEST(CastTest, HalfTypesRoundOnceToNearestEven) {
  // Just above the midpoint between f16 1.0 and its successor: via float it would become the
  // exact midpoint and round down to 1.0.
  const double above_mid = 1.0 + std::ldexp(1.0, -11) + std::ldexp(1.0, -40);
  auto f16 = cast(Tensor::from_vector<double>({2}, {above_mid, 65520.0}), TensorProto::FLOAT16);
  ASSERT_TRUE(f16.ok()) << f16.status().message();
  EXPECT_EQ(f16->data<f16_t>()[0].bits, 0x3C01);
  EXPECT_EQ(f16->data<f16_t>()[1].bits, 0x7C00);  // rounds to infinity
  // bf16: exact midpoint 1 + 2^-8 ties to even (1.0), just above it rounds up.
  auto bf16 =
      cast(Tensor::from_vector<float>({2}, {1.00390625f, std::nextafter(1.00390625f, 2.0f)}),
           TensorProto::BFLOAT16);
  ASSERT_TRUE(bf16.ok()) << bf16.status().message();
  EXPECT_EQ(bf16->data<bf16_t>()[0].bits, 0x3F80);
  EXPECT_EQ(bf16->data<bf16_t>()[1].bits, 0x3F81);
}

TEST(CastTest, BoolConversions) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  auto b = cast(Tensor::from_vector<float>({4}, {0.0f, -0.0f, 0.25f, nan}), TensorProto::BOOL);
  ASSERT_TRUE(b.ok()) << b.status().message();
  EXPECT_EQ(values_of<bool>(*b), (std::vector<bool>{false, false, true, true}));
  auto f = cast(Tensor::from_vector<bool>({2}, {true, false}), TensorProto::DOUBLE);
  ASSERT_TRUE(f.ok()) << f.status().message();
  EXPECT_EQ(values_of<double>(*f), (std::vector<double>{1.0, 0.0}));
}

TEST(CastTest, StringTargetIsUnsupported) {
  auto s = cast(Tensor::from_vector<float>({1}, {1.0f}), TensorProto::STRING);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(s.status().message().find("cast to STRING is not supported"), std::string::npos);
}

TEST(CastTest, CastLikeTakesTheSecondInputsType) {
  ModelBuilder b(15);
  b.input("x", TensorProto::FLOAT, {-1});
  b.input("like", TensorProto::INT16, {1});
  b.node("CastLike", {"x", "like"}, {"y"});
  untyped_output(b, "y");
  auto m = testing::import(b);
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(m->graph->find_value("y")->dtype, DType::kI16);
  EXPECT_EQ(testing::inferred_shape(*m, "y"), "N");
  auto out = testing::run(*m, {Tensor::from_vector<float>({2}, {-2.7f, 40000.0f}),
                               Tensor::from_vector<int16_t>({1}, {0})});
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ(values_of<int16_t>(out->at(0)), (std::vector<int16_t>{-2, 32767}));
}

}  // namespace
}  // namespace qf
