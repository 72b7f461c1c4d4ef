// QuantizeLinear / DequantizeLinear: rounding, saturation, default output type, per-axis and
// blocked scales, int32 dequantization and shape validation.
#include <gtest/gtest.h>

#include <cstdint>

#include "data_movement_test_util.h"

namespace qf {
namespace {

using onnx::TensorProto;
using testing::ModelBuilder;
using testing::untyped_output;
using testing::values_of;

TEST(QuantizeTest, RoundsHalfToEvenAndSaturates) {
  ModelBuilder b(13);
  b.input("x", TensorProto::FLOAT, {8});
  b.initializer("scale", Tensor::from_vector<float>({}, {0.5f}));
  b.initializer("zp", Tensor::from_vector<int8_t>({}, {1}));
  b.node("QuantizeLinear", {"x", "scale", "zp"}, {"q"});
  untyped_output(b, "q");
  auto m = testing::import(b);
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(m->graph->find_value("q")->dtype, DType::kI8);
  // x / 0.5 = 0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 1000, -1000
  auto out = testing::run(*m, {Tensor::from_vector<float>(
                                  {8}, {0.25f, 0.75f, 1.25f, -0.25f, -0.75f, -1.25f, 500, -500})});
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ(values_of<int8_t>(out->at(0)), (std::vector<int8_t>{1, 3, 3, 1, -1, -1, 127, -128}));
}

TEST(QuantizeTest, NoZeroPointMeansUint8) {
  ModelBuilder b(10);
  b.input("x", TensorProto::FLOAT, {-1});
  b.initializer("scale", Tensor::from_vector<float>({}, {2.0f}));
  b.node("QuantizeLinear", {"x", "scale"}, {"q"});
  untyped_output(b, "q");
  auto m = testing::import(b);
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(m->graph->find_value("q")->dtype, DType::kU8);
  EXPECT_EQ(testing::inferred_shape(*m, "q"), "N");
  auto out = testing::run(*m, {Tensor::from_vector<float>({4}, {-3, 3, 5, 1000})});
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ(values_of<uint8_t>(out->at(0)), (std::vector<uint8_t>{0, 2, 2, 255}));
}

TEST(QuantizeTest, PerAxisWithNegativeAxis) {
  ModelBuilder b(13);
  b.input("x", TensorProto::FLOAT, {2, 3});
  b.initializer("scale", Tensor::from_vector<float>({3}, {1, 2, 4}));
  b.initializer("zp", Tensor::from_vector<uint8_t>({3}, {0, 10, 100}));
  testing::set_int_attr(b.node("QuantizeLinear", {"x", "scale", "zp"}, {"q"}), "axis", -1);
  testing::set_int_attr(b.node("DequantizeLinear", {"q", "scale", "zp"}, {"y"}), "axis", -1);
  untyped_output(b, "q");
  untyped_output(b, "y");
  auto m = testing::import(b);
  ASSERT_TRUE(m.ok()) << m.status().message();
  auto out = testing::run(*m, {Tensor::from_vector<float>({2, 3}, {4, 4, 4, -8, -8, -8})});
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ(values_of<uint8_t>(out->at(0)), (std::vector<uint8_t>{4, 12, 101, 0, 6, 98}));
  EXPECT_EQ(values_of<float>(out->at(1)), (std::vector<float>{4, 4, 4, 0, -8, -8}));
}

TEST(QuantizeTest, PerAxisScaleMustMatchTheAxis) {
  ModelBuilder b(13);
  b.input("x", TensorProto::FLOAT, {2, 3});
  b.initializer("scale", Tensor::from_vector<float>({2}, {1, 2}));
  b.node("QuantizeLinear", {"x", "scale"}, {"q"}, "quant");
  untyped_output(b, "q");
  auto m = testing::import(b);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), StatusCode::kInvalidInput);
  EXPECT_NE(m.status().message().find("node 'quant' (QuantizeLinear): per-axis scale must be "
                                      "1-D of size 3"),
            std::string::npos);
}

TEST(QuantizeTest, BlockedScalesOpset21) {
  ModelBuilder b(21);
  b.input("x", TensorProto::INT8, {2, 5});
  // Blocks of 2 along axis 1: 3 blocks per row, the last one partial.
  b.initializer("scale", Tensor::from_vector<float>({2, 3}, {1, 10, 100, 2, 20, 200}));
  auto& n = b.node("DequantizeLinear", {"x", "scale"}, {"y"});
  testing::set_int_attr(n, "axis", 1);
  testing::set_int_attr(n, "block_size", 2);
  untyped_output(b, "y");
  auto m = testing::import(b);
  ASSERT_TRUE(m.ok()) << m.status().message();
  auto out =
      testing::run(*m, {Tensor::from_vector<int8_t>({2, 5}, {1, 1, 1, 1, 1, 1, 1, 1, 1, 1})});
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ(values_of<float>(out->at(0)),
            (std::vector<float>{1, 1, 10, 10, 100, 2, 2, 20, 20, 200}));
}

TEST(DequantizeTest, Int32InputAndTypeChecks) {
  ModelBuilder b(13);
  b.input("x", TensorProto::INT32, {3});
  b.initializer("scale", Tensor::from_vector<float>({}, {0.5f}));
  b.node("DequantizeLinear", {"x", "scale"}, {"y"});
  untyped_output(b, "y");
  auto m = testing::import(b);
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(m->graph->find_value("y")->dtype, DType::kF32);
  auto out = testing::run(*m, {Tensor::from_vector<int32_t>({3}, {-1000000, 0, 3})});
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ(values_of<float>(out->at(0)), (std::vector<float>{-500000, 0, 1.5f}));

  ModelBuilder c(13);
  c.input("x", TensorProto::UINT8, {3});
  c.initializer("scale", Tensor::from_vector<float>({}, {0.5f}));
  c.initializer("zp", Tensor::from_vector<int8_t>({}, {0}));
  c.node("DequantizeLinear", {"x", "scale", "zp"}, {"y"});
  untyped_output(c, "y");
  auto bad = testing::import(c);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("zero point type s8 differs from input type u8"),
            std::string::npos);
}

}  // namespace
}  // namespace qf
