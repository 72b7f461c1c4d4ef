// Softmax and LogSoftmax: the opset-13 change from "flatten to 2-D at axis" to "one axis",
// numerical stability, symbolic shapes and type errors.
#include <gtest/gtest.h>

#include <cmath>

#include "data_movement_test_util.h"

namespace qf {
namespace {

using onnx::TensorProto;
using testing::ModelBuilder;
using testing::untyped_output;
using testing::values_of;

// Runs one Softmax-family node with `axis` on x of shape 1x2x2 holding {0, 1, 2, 3}.
std::vector<float> run_on_2x2(int opset, const std::string& op, int64_t axis) {
  ModelBuilder b(opset);
  b.input("x", TensorProto::FLOAT, {1, 2, 2});
  testing::set_int_attr(b.node(op, {"x"}, {"y"}), "axis", axis);
  untyped_output(b, "y");
  auto m = testing::import(b);
  EXPECT_TRUE(m.ok()) << m.status().message();
  if (!m.ok()) return {};
  auto out = testing::run(*m, {Tensor::from_vector<float>({1, 2, 2}, {0, 1, 2, 3})});
  EXPECT_TRUE(out.ok()) << out.status().message();
  return out.ok() ? values_of<float>(out->at(0)) : std::vector<float>{};
}

TEST(SoftmaxTest, BeforeOpset13AxisFlattensTheTrailingDims) {
  // Opset 11, axis 1: one distribution over all four elements.
  const std::vector<float> y = run_on_2x2(11, "Softmax", 1);
  ASSERT_EQ(y.size(), 4u);
  const double z = 1 + std::exp(1.0) + std::exp(2.0) + std::exp(3.0);
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(y[i], std::exp(i) / z, 1e-6) << i;
}

TEST(SoftmaxTest, FromOpset13AxisIsOneDimension) {
  // Opset 13, axis 1: distributions over {0, 2} and {1, 3}.
  const std::vector<float> y = run_on_2x2(13, "Softmax", 1);
  ASSERT_EQ(y.size(), 4u);
  const double lo = 1 / (1 + std::exp(2.0));
  EXPECT_NEAR(y[0], lo, 1e-6);
  EXPECT_NEAR(y[1], lo, 1e-6);
  EXPECT_NEAR(y[2], 1 - lo, 1e-6);
  EXPECT_NEAR(y[3], 1 - lo, 1e-6);
}

TEST(SoftmaxTest, LogSoftmaxOldOpsetAndLargeInputs) {
  const std::vector<float> y = run_on_2x2(9, "LogSoftmax", 2);
  ASSERT_EQ(y.size(), 4u);
  const double l = std::log(1 + std::exp(1.0));
  EXPECT_NEAR(y[0], -l, 1e-6);
  EXPECT_NEAR(y[1], 1 - l, 1e-6);

  ModelBuilder b(13);
  b.input("x", TensorProto::FLOAT, {3});
  b.node("Softmax", {"x"}, {"y"});
  untyped_output(b, "y");
  auto m = testing::import(b);
  ASSERT_TRUE(m.ok()) << m.status().message();
  auto out = testing::run(*m, {Tensor::from_vector<float>({3}, {1e4f, 1e4f, -1e4f})});
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ(values_of<float>(out->at(0)), (std::vector<float>{0.5f, 0.5f, 0.0f}));
}

TEST(SoftmaxTest, SymbolicShapePassesThroughAndIntegersAreRejected) {
  ModelBuilder b(13);
  b.input("x", TensorProto::FLOAT, {-1, 10});
  b.node("Softmax", {"x"}, {"y"});
  untyped_output(b, "y");
  auto m = testing::import(b);
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(testing::inferred_shape(*m, "y"), "Nx10");

  ModelBuilder c(13);
  c.input("x", TensorProto::INT32, {2});
  c.node("Softmax", {"x"}, {"y"});
  untyped_output(c, "y");
  auto bad = testing::import(c);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kUnsupported);
}

TEST(SoftmaxTest, AxisOutOfRangeIsAnError) {
  ModelBuilder b(13);
  b.input("x", TensorProto::FLOAT, {2, 3});
  testing::set_int_attr(b.node("Softmax", {"x"}, {"y"}, "sm"), "axis", 2);
  untyped_output(b, "y");
  auto m = testing::import(b);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("node 'sm' (Softmax): axis 2 is out of range"),
            std::string::npos);
}

}  // namespace
}  // namespace qf
