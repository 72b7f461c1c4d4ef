// Elementwise binary, variadic and logic ops, and Clip: symbolic broadcasting, integer
// semantics, legacy (opset < 7) broadcasting, Clip-6 attribute canonicalisation and errors.
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

const ir::Node& only_node(const onnx_io::ImportedModel& m) {
  return *m.graph->nodes().front();
}

TEST(BinaryTest, BroadcastKeepsSymbolicDims) {
  ModelBuilder b(14);
  b.input("a", TensorProto::FLOAT, {-1, 1, 4});
  b.input("b", TensorProto::FLOAT, {3, 1});
  b.node("Add", {"a", "b"}, {"sum"});
  b.node("Less", {"a", "b"}, {"lt"});
  untyped_output(b, "sum");
  untyped_output(b, "lt");
  auto m = testing::import(b);
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(testing::inferred_shape(*m, "sum"), "Nx3x4");
  EXPECT_EQ(m->graph->find_value("sum")->dtype, DType::kF32);
  EXPECT_EQ(testing::inferred_shape(*m, "lt"), "Nx3x4");
  EXPECT_EQ(m->graph->find_value("lt")->dtype, DType::kBool);
}

TEST(BinaryTest, IncompatibleShapesAndTypesAreRejected) {
  ModelBuilder b(14);
  b.input("a", TensorProto::FLOAT, {2, 3});
  b.input("b", TensorProto::FLOAT, {4});
  b.node("Mul", {"a", "b"}, {"y"}, "mul1");
  untyped_output(b, "y");
  auto m = testing::import(b);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), StatusCode::kInvalidInput);
  EXPECT_NE(m.status().message().find("node 'mul1' (Mul)"), std::string::npos);
  EXPECT_NE(m.status().message().find("cannot be broadcast"), std::string::npos);

  ModelBuilder c(14);
  c.input("a", TensorProto::FLOAT, {2});
  c.input("b", TensorProto::INT32, {2});
  c.node("Sub", {"a", "b"}, {"y"});
  untyped_output(c, "y");
  auto m2 = testing::import(c);
  ASSERT_FALSE(m2.ok());
  EXPECT_NE(m2.status().message().find("different element types"), std::string::npos);
}

TEST(BinaryTest, IntegerDivisionTruncatesAndWraps) {
  ModelBuilder b(14);
  b.input("a", TensorProto::INT32, {5});
  b.input("b", TensorProto::INT32, {5});
  b.node("Div", {"a", "b"}, {"q"});
  b.node("Add", {"a", "b"}, {"s"});
  untyped_output(b, "q");
  untyped_output(b, "s");
  auto m = testing::import(b);
  ASSERT_TRUE(m.ok()) << m.status().message();
  const int32_t lo = std::numeric_limits<int32_t>::lowest();
  const int32_t hi = std::numeric_limits<int32_t>::max();
  auto out = testing::run(*m, {Tensor::from_vector<int32_t>({5}, {7, -7, 7, lo, hi}),
                               Tensor::from_vector<int32_t>({5}, {2, 2, -2, -1, 1})});
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ(values_of<int32_t>(out->at(0)), (std::vector<int32_t>{3, -3, -3, lo, hi}));
  EXPECT_EQ(values_of<int32_t>(out->at(1)), (std::vector<int32_t>{9, -5, 5, hi, lo}));
}

TEST(BinaryTest, IntegerDivisionByZeroIsAnError) {
  ModelBuilder b(14);
  b.input("a", TensorProto::INT64, {2});
  b.input("b", TensorProto::INT64, {2});
  b.node("Div", {"a", "b"}, {"q"}, "div0");
  untyped_output(b, "q");
  auto m = testing::import(b);
  ASSERT_TRUE(m.ok()) << m.status().message();
  auto out = testing::run(
      *m, {Tensor::from_vector<int64_t>({2}, {1, 2}), Tensor::from_vector<int64_t>({2}, {1, 0})});
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), StatusCode::kInvalidInput);
  EXPECT_NE(out.status().message().find("node 'div0' (Div): integer division by zero"),
            std::string::npos);
}

TEST(BinaryTest, PowMixesBaseAndExponentTypes) {
  ModelBuilder b(15);
  b.input("i", TensorProto::INT32, {3});
  b.input("f", TensorProto::FLOAT, {3});
  b.input("e", TensorProto::INT64, {3});
  b.node("Pow", {"i", "f"}, {"int_by_float"});
  b.node("Pow", {"f", "e"}, {"float_by_int"});
  b.node("Pow", {"i", "e"}, {"int_by_int"});
  untyped_output(b, "int_by_float");
  untyped_output(b, "float_by_int");
  untyped_output(b, "int_by_int");
  auto m = testing::import(b);
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(m->graph->find_value("int_by_float")->dtype, DType::kI32);
  EXPECT_EQ(m->graph->find_value("float_by_int")->dtype, DType::kF32);
  auto out = testing::run(*m, {Tensor::from_vector<int32_t>({3}, {2, 3, -2}),
                               Tensor::from_vector<float>({3}, {0.5f, 2.0f, 3.0f}),
                               Tensor::from_vector<int64_t>({3}, {3, -1, 0})});
  ASSERT_TRUE(out.ok()) << out.status().message();
  // 2^0.5 = 1.41 truncates to 1.
  EXPECT_EQ(values_of<int32_t>(out->at(0)), (std::vector<int32_t>{1, 9, -8}));
  EXPECT_EQ(values_of<float>(out->at(1)), (std::vector<float>{0.125f, 0.5f, 1.0f}));
  // 3^-1 truncates to 0 like 1 / 3.
  EXPECT_EQ(values_of<int32_t>(out->at(2)), (std::vector<int32_t>{8, 0, 1}));
}

TEST(BinaryTest, LegacyBroadcastWithAxisAlignsConstantB) {
  ModelBuilder b(6);
  b.input("a", TensorProto::FLOAT, {2, 3});
  b.initializer("b", Tensor::from_vector<float>({2}, {10.0f, 20.0f}));
  auto& add = b.node("Add", {"a", "b"}, {"y"});
  testing::set_int_attr(add, "broadcast", 1);
  testing::set_int_attr(add, "axis", 0);
  untyped_output(b, "y");
  auto m = testing::import(b);
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_FALSE(only_node(*m).attrs.has("axis"));
  EXPECT_EQ(testing::inferred_shape(*m, "y"), "2x3");
  auto out = testing::run(*m, {Tensor::from_vector<float>({2, 3}, {1, 2, 3, 4, 5, 6})});
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ(values_of<float>(out->at(0)), (std::vector<float>{11, 12, 13, 24, 25, 26}));
}

TEST(BinaryTest, LegacyPReluSlopeIsPerChannel) {
  ModelBuilder b(6);
  b.input("x", TensorProto::FLOAT, {1, 2, 2});
  b.initializer("slope", Tensor::from_vector<float>({2}, {0.5f, 0.25f}));
  b.node("PRelu", {"x", "slope"}, {"y"});
  untyped_output(b, "y");
  auto m = testing::import(b);
  ASSERT_TRUE(m.ok()) << m.status().message();
  auto out = testing::run(*m, {Tensor::from_vector<float>({1, 2, 2}, {-4, 4, -4, 4})});
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ(values_of<float>(out->at(0)), (std::vector<float>{-2, 4, -1, 4}));
}

TEST(BinaryTest, PReluSlopeMustBroadcastToX) {
  ModelBuilder b(16);
  b.input("x", TensorProto::FLOAT, {2, 3});
  b.input("slope", TensorProto::FLOAT, {2});
  b.node("PRelu", {"x", "slope"}, {"y"});
  untyped_output(b, "y");
  auto m = testing::import(b);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("cannot be broadcast to input shape 2x3"), std::string::npos);
}

TEST(VariadicTest, MaxBroadcastsThreeInputsAndPropagatesNaN) {
  ModelBuilder b(13);
  b.input("a", TensorProto::FLOAT, {2, 1});
  b.input("b", TensorProto::FLOAT, {3});
  b.input("c", TensorProto::FLOAT, {1, 1});
  b.node("Max", {"a", "b", "c"}, {"y"});
  untyped_output(b, "y");
  auto m = testing::import(b);
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(testing::inferred_shape(*m, "y"), "2x3");
  const float nan = std::numeric_limits<float>::quiet_NaN();
  auto out = testing::run(
      *m, {Tensor::from_vector<float>({2, 1}, {1, nan}), Tensor::from_vector<float>({3}, {0, 5, 2}),
           Tensor::from_vector<float>({1, 1}, {1.5f})});
  ASSERT_TRUE(out.ok()) << out.status().message();
  const std::vector<float> y = values_of<float>(out->at(0));
  EXPECT_EQ(std::vector<float>(y.begin(), y.begin() + 3), (std::vector<float>{1.5f, 5, 2}));
  for (size_t i = 3; i < 6; ++i) EXPECT_TRUE(std::isnan(y[i])) << i;
}

TEST(VariadicTest, MeanRejectsIntegers) {
  ModelBuilder b(13);
  b.input("a", TensorProto::INT32, {2});
  b.node("Mean", {"a", "a"}, {"y"});
  untyped_output(b, "y");
  auto m = testing::import(b);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), StatusCode::kUnsupported);
}

TEST(LogicTest, WhereBroadcastsAllThreeInputs) {
  ModelBuilder b(16);
  b.input("c", TensorProto::BOOL, {2, 1});
  b.input("x", TensorProto::INT64, {3});
  b.input("y", TensorProto::INT64, {});
  b.node("Where", {"c", "x", "y"}, {"w"});
  b.node("Not", {"c"}, {"n"});
  untyped_output(b, "w");
  untyped_output(b, "n");
  auto m = testing::import(b);
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(testing::inferred_shape(*m, "w"), "2x3");
  auto out = testing::run(
      *m, {Tensor::from_vector<bool>({2, 1}, {true, false}),
           Tensor::from_vector<int64_t>({3}, {1, 2, 3}), Tensor::from_vector<int64_t>({}, {-1})});
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ(values_of<int64_t>(out->at(0)), (std::vector<int64_t>{1, 2, 3, -1, -1, -1}));
  EXPECT_EQ(values_of<bool>(out->at(1)), (std::vector<bool>{false, true}));
}

TEST(ClipTest, Opset6AttributesBecomeInputs) {
  ModelBuilder b(6);
  b.input("x", TensorProto::FLOAT, {-1, 4});
  testing::set_float_attr(b.node("Clip", {"x"}, {"y"}), "max", 1.0f);
  untyped_output(b, "y");
  auto m = testing::import(b);
  ASSERT_TRUE(m.ok()) << m.status().message();
  const ir::Node& clip = only_node(*m);
  EXPECT_FALSE(clip.attrs.has("max"));
  ASSERT_EQ(clip.inputs.size(), 3u);
  EXPECT_EQ(clip.inputs[1], nullptr);  // no min: unbounded below
  ASSERT_NE(clip.inputs[2], nullptr);
  EXPECT_TRUE(clip.inputs[2]->is_constant());
  EXPECT_EQ(testing::inferred_shape(*m, "y"), "Nx4");
  auto out = testing::run(*m, {Tensor::from_vector<float>({1, 4}, {-1e30f, 0.5f, 1.5f, 1.0f})});
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ(values_of<float>(out->at(0)), (std::vector<float>{-1e30f, 0.5f, 1.0f, 1.0f}));
}

TEST(ClipTest, IntegersAndMinAboveMax) {
  ModelBuilder b(13);
  b.input("x", TensorProto::INT8, {4});
  b.initializer("lo", Tensor::from_vector<int8_t>({}, {5}));
  b.initializer("hi", Tensor::from_vector<int8_t>({}, {2}));
  b.node("Clip", {"x", "", "hi"}, {"upper"});
  b.node("Clip", {"x", "lo", "hi"}, {"crossed"});
  untyped_output(b, "upper");
  untyped_output(b, "crossed");
  auto m = testing::import(b);
  ASSERT_TRUE(m.ok()) << m.status().message();
  auto out = testing::run(*m, {Tensor::from_vector<int8_t>({4}, {-128, 0, 3, 127})});
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ(values_of<int8_t>(out->at(0)), (std::vector<int8_t>{-128, 0, 2, 2}));
  // numpy.clip semantics: min > max gives max everywhere.
  EXPECT_EQ(values_of<int8_t>(out->at(1)), (std::vector<int8_t>{2, 2, 2, 2}));
}

}  // namespace
}  // namespace qf
