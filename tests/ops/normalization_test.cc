// BatchNormalization, InstanceNormalization and LayerNormalization: training mode rejected,
// declared training outputs, per-activation parameters (opset 7 spatial=0), LayerNormalization's
// statistics outputs on symbolic shapes, and errors.
#include <gtest/gtest.h>

#include <cmath>

#include "data_movement_test_util.h"

namespace qf {
namespace {

using onnx::TensorProto;
using testing::ModelBuilder;
using testing::untyped_output;
using testing::values_of;

void add_bn_params(ModelBuilder& b, Shape shape, float mean, float var) {
  const int64_t n = shape_numel(shape);
  b.initializer("scale", Tensor::from_vector<float>(shape, std::vector<float>(n, 2.0f)));
  b.initializer("bias", Tensor::from_vector<float>(shape, std::vector<float>(n, 1.0f)));
  b.initializer("mean", Tensor::from_vector<float>(shape, std::vector<float>(n, mean)));
  b.initializer("var", Tensor::from_vector<float>(shape, std::vector<float>(n, var)));
}

TEST(BatchNormTest, TrainingModeIsUnsupported) {
  ModelBuilder b(15);
  b.input("x", TensorProto::FLOAT, {1, 2, 3});
  add_bn_params(b, {2}, 0, 1);
  auto& n = b.node("BatchNormalization", {"x", "scale", "bias", "mean", "var"}, {"y"}, "bn");
  testing::set_int_attr(n, "training_mode", 1);
  untyped_output(b, "y");
  auto m = testing::import(b);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(m.status().message().find("node 'bn' (BatchNormalization): training_mode=1"),
            std::string::npos)
      << m.status().message();
}

TEST(BatchNormTest, DeclaredTrainingOutputsPassTheRunningStatisticsThrough) {
  ModelBuilder b(9);
  b.input("x", TensorProto::FLOAT, {-1, 2, 2});
  add_bn_params(b, {2}, 3, 0.25f);
  b.node("BatchNormalization", {"x", "scale", "bias", "mean", "var"}, {"y", "rm", "rv"});
  untyped_output(b, "y");
  untyped_output(b, "rm");
  untyped_output(b, "rv");
  auto m = testing::import(b);
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(testing::inferred_shape(*m, "y"), "Nx2x2");
  EXPECT_EQ(testing::inferred_shape(*m, "rm"), "2");
  auto out = testing::run(*m, {Tensor::from_vector<float>({1, 2, 2}, {3, 4, 2, 3})});
  ASSERT_TRUE(out.ok()) << out.status().message();
  // (x - 3) / sqrt(0.25 + 1e-5) * 2 + 1, so about 4 (x - 3) + 1.
  const std::vector<float> y = values_of<float>(out->at(0));
  const std::vector<float> want = {1, 5, -3, 1};
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(y[i], want[i], 1e-3) << i;
  EXPECT_EQ(values_of<float>(out->at(1)), (std::vector<float>{3, 3}));
  EXPECT_EQ(values_of<float>(out->at(2)), (std::vector<float>{0.25f, 0.25f}));
}

TEST(BatchNormTest, Opset7SpatialZeroTakesParametersPerActivation) {
  ModelBuilder b(7);
  b.input("x", TensorProto::FLOAT, {2, 1, 2});
  b.initializer("scale", Tensor::from_vector<float>({1, 2}, {1, 10}));
  b.initializer("bias", Tensor::from_vector<float>({1, 2}, {0, 0}));
  b.initializer("mean", Tensor::from_vector<float>({1, 2}, {0, 1}));
  b.initializer("var", Tensor::from_vector<float>({1, 2}, {1, 1}));
  auto& n = b.node("BatchNormalization", {"x", "scale", "bias", "mean", "var"}, {"y"});
  testing::set_int_attr(n, "spatial", 0);
  testing::set_float_attr(n, "epsilon", 0.0f);
  untyped_output(b, "y");
  auto m = testing::import(b);
  ASSERT_TRUE(m.ok()) << m.status().message();
  auto out = testing::run(*m, {Tensor::from_vector<float>({2, 1, 2}, {1, 2, 3, 4})});
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ(values_of<float>(out->at(0)), (std::vector<float>{1, 10, 3, 30}));
}

TEST(BatchNormTest, ParameterShapeMismatchIsAnError) {
  ModelBuilder b(15);
  b.input("x", TensorProto::FLOAT, {1, 3, 4});
  add_bn_params(b, {2}, 0, 1);
  b.node("BatchNormalization", {"x", "scale", "bias", "mean", "var"}, {"y"});
  untyped_output(b, "y");
  auto m = testing::import(b);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("scale has shape 2, expected [3]"), std::string::npos)
      << m.status().message();
}

TEST(InstanceNormTest, NormalizesEachChannelOfEachImage) {
  ModelBuilder b(6);
  b.input("x", TensorProto::FLOAT, {2, 1, 2});
  b.initializer("s", Tensor::from_vector<float>({1}, {3}));
  b.initializer("b", Tensor::from_vector<float>({1}, {1}));
  testing::set_float_attr(b.node("InstanceNormalization", {"x", "s", "b"}, {"y"}), "epsilon", 0);
  untyped_output(b, "y");
  auto m = testing::import(b);
  ASSERT_TRUE(m.ok()) << m.status().message();
  auto out = testing::run(*m, {Tensor::from_vector<float>({2, 1, 2}, {0, 2, 10, 30})});
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ(values_of<float>(out->at(0)), (std::vector<float>{-2, 4, -2, 4}));

  ModelBuilder c(6);
  c.input("x", TensorProto::FLOAT, {2, 1});
  c.initializer("s", Tensor::from_vector<float>({1}, {3}));
  c.initializer("b", Tensor::from_vector<float>({1}, {1}));
  c.node("InstanceNormalization", {"x", "s", "b"}, {"y"});
  untyped_output(c, "y");
  auto bad = testing::import(c);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("rank >= 3"), std::string::npos);
}

TEST(LayerNormTest, StatisticsOutputsKeepTheLeadingDimsAndUseTheStashType) {
  ModelBuilder b(17);
  b.input("x", TensorProto::FLOAT16, {-1, 4, 6});
  b.input("scale", TensorProto::FLOAT16, {6});
  testing::set_int_attr(b.node("LayerNormalization", {"x", "scale"}, {"y", "mean", "inv"}), "axis",
                        1);
  untyped_output(b, "y");
  untyped_output(b, "mean");
  untyped_output(b, "inv");
  auto m = testing::import(b);
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(testing::inferred_shape(*m, "y"), "Nx4x6");
  EXPECT_EQ(m->graph->find_value("y")->dtype, DType::kF16);
  EXPECT_EQ(testing::inferred_shape(*m, "mean"), "Nx1x1");
  EXPECT_EQ(m->graph->find_value("mean")->dtype, DType::kF32);
  EXPECT_EQ(m->graph->find_value("inv")->dtype, DType::kF32);
}

TEST(LayerNormTest, ValuesAndStatistics) {
  ModelBuilder b(17);
  b.input("x", TensorProto::FLOAT, {2, 2});
  b.initializer("scale", Tensor::from_vector<float>({2}, {1, 2}));
  b.initializer("bias", Tensor::from_vector<float>({2}, {0, 1}));
  testing::set_float_attr(
      b.node("LayerNormalization", {"x", "scale", "bias"}, {"y", "mean", "inv"}), "epsilon", 0);
  untyped_output(b, "y");
  untyped_output(b, "mean");
  untyped_output(b, "inv");
  auto m = testing::import(b);
  ASSERT_TRUE(m.ok()) << m.status().message();
  auto out = testing::run(*m, {Tensor::from_vector<float>({2, 2}, {1, 3, 10, 0})});
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ(values_of<float>(out->at(0)), (std::vector<float>{-1, 3, 1, -1}));
  EXPECT_EQ(values_of<float>(out->at(1)), (std::vector<float>{2, 5}));
  EXPECT_EQ(values_of<float>(out->at(2)), (std::vector<float>{1, 0.2f}));
}

TEST(LayerNormTest, ScaleThatDoesNotBroadcastIsAnError) {
  ModelBuilder b(17);
  b.input("x", TensorProto::FLOAT, {2, 3, 4});
  b.input("scale", TensorProto::FLOAT, {3});
  b.node("LayerNormalization", {"x", "scale"}, {"y"}, "ln");
  untyped_output(b, "y");
  auto m = testing::import(b);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find(
                "node 'ln' (LayerNormalization): Scale of shape 3 cannot be broadcast to the "
                "normalized shape 4"),
            std::string::npos)
      << m.status().message();
}

}  // namespace
}  // namespace qf
