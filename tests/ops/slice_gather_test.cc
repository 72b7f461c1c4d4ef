// Slice, Gather, GatherElements: opset canonicalisation (Slice-1 attributes), symbolic shapes,
// negative steps and indices, errors.
#include <gtest/gtest.h>

#include <limits>

#include "data_movement_test_util.h"

namespace qf {
namespace {

using onnx::TensorProto;
using testing::ModelBuilder;
using testing::untyped_output;

constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
constexpr int64_t kMin = std::numeric_limits<int64_t>::min();

// Slice before opset 10 takes starts/ends/axes as attributes; import makes them inputs 1..3.
TEST(SliceTest, OldAttributesBecomeInputs) {
  ModelBuilder b(9);
  b.input("x", TensorProto::FLOAT, {3, 4});
  auto& n = b.node("Slice", {"x"}, {"y"});
  testing::set_ints_attr(n, "starts", {1});
  testing::set_ints_attr(n, "ends", {1000});
  testing::set_ints_attr(n, "axes", {1});
  untyped_output(b, "y");
  auto m = testing::import(b);
  ASSERT_TRUE(m.ok()) << m.status().message();
  const ir::Node& node = *m->graph->nodes().front();
  ASSERT_EQ(node.inputs.size(), 4u);
  for (size_t i = 1; i < 4; ++i) EXPECT_TRUE(node.inputs[i]->is_constant());
  EXPECT_TRUE(node.attrs.all().empty());
  EXPECT_EQ(testing::inferred_shape(*m, "y"), "3x3");
  auto out = testing::run(
      *m, {Tensor::from_vector<float>({3, 4}, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11})});
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ(testing::values_of<float>(out->at(0)),
            (std::vector<float>{1, 2, 3, 5, 6, 7, 9, 10, 11}));
}

TEST(SliceTest, NegativeStepReversesAnyElementType) {
  ModelBuilder b(13);
  b.input("x", TensorProto::INT32, {2, 3});
  b.initializer("starts", Tensor::from_vector<int64_t>({1}, {-1}));
  b.initializer("ends", Tensor::from_vector<int64_t>({1}, {kMin}));
  b.initializer("axes", Tensor::from_vector<int64_t>({1}, {-1}));
  b.initializer("steps", Tensor::from_vector<int64_t>({1}, {-2}));
  b.node("Slice", {"x", "starts", "ends", "axes", "steps"}, {"y"});
  untyped_output(b, "y");
  auto m = testing::import(b);
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(testing::inferred_shape(*m, "y"), "2x2");
  auto out = testing::run(*m, {Tensor::from_vector<int32_t>({2, 3}, {1, 2, 3, 4, 5, 6})});
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ(testing::values_of<int32_t>(out->at(0)), (std::vector<int32_t>{3, 1, 6, 4}));
}

TEST(SliceTest, SymbolicDims) {
  ModelBuilder b(13);
  b.input("x", TensorProto::FLOAT, {-1, 10});
  b.input("rt_starts", TensorProto::INT64, {1});
  b.initializer("starts", Tensor::from_vector<int64_t>({2}, {0, 2}));
  b.initializer("ends", Tensor::from_vector<int64_t>({2}, {kMax, 5}));
  b.initializer("axes", Tensor::from_vector<int64_t>({2}, {0, 1}));
  b.initializer("axis1", Tensor::from_vector<int64_t>({1}, {1}));
  b.initializer("end1", Tensor::from_vector<int64_t>({1}, {1}));
  b.node("Slice", {"x", "starts", "ends", "axes"}, {"whole_batch"});
  b.node("Slice", {"x", "end1", "ends", "axes"}, {"part_batch"});
  b.node("Slice", {"x", "rt_starts", "end1", "axis1"}, {"runtime"});
  for (const char* o : {"whole_batch", "part_batch", "runtime"}) untyped_output(b, o);
  auto m = testing::import(b);
  ASSERT_FALSE(m.ok());  // "part_batch": starts has 1 entry, ends 2
  EXPECT_NE(m.status().message().find("starts has 1 entries but ends has 2"), std::string::npos)
      << m.status().message();

  ModelBuilder c(13);
  c.input("x", TensorProto::FLOAT, {-1, 10});
  c.input("rt_starts", TensorProto::INT64, {1});
  c.initializer("starts", Tensor::from_vector<int64_t>({2}, {0, 2}));
  c.initializer("starts1", Tensor::from_vector<int64_t>({2}, {1, 2}));
  c.initializer("ends", Tensor::from_vector<int64_t>({2}, {kMax, 5}));
  c.initializer("axes", Tensor::from_vector<int64_t>({2}, {0, 1}));
  c.initializer("axis1", Tensor::from_vector<int64_t>({1}, {1}));
  c.initializer("end1", Tensor::from_vector<int64_t>({1}, {1}));
  c.node("Slice", {"x", "starts", "ends", "axes"}, {"whole_batch"});
  c.node("Slice", {"x", "starts1", "ends", "axes"}, {"part_batch"});
  c.node("Slice", {"x", "rt_starts", "end1", "axis1"}, {"runtime"});
  for (const char* o : {"whole_batch", "part_batch", "runtime"}) untyped_output(c, o);
  auto n = testing::import(c);
  ASSERT_TRUE(n.ok()) << n.status().message();
  EXPECT_EQ(testing::inferred_shape(*n, "whole_batch"), "Nx3");
  EXPECT_EQ(testing::inferred_shape(*n, "part_batch"), "?x3");
  EXPECT_EQ(testing::inferred_shape(*n, "runtime"), "Nx?");
}

TEST(SliceTest, ZeroStepIsAnError) {
  ModelBuilder b(13);
  b.input("x", TensorProto::FLOAT, {4});
  b.initializer("s", Tensor::from_vector<int64_t>({1}, {0}));
  b.initializer("e", Tensor::from_vector<int64_t>({1}, {4}));
  b.initializer("a", Tensor::from_vector<int64_t>({1}, {0}));
  b.initializer("step", Tensor::from_vector<int64_t>({1}, {0}));
  b.node("Slice", {"x", "s", "e", "a", "step"}, {"y"}, "sl");
  untyped_output(b, "y");
  auto m = testing::import(b);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("node 'sl' (Slice): step of axis 0 is 0"), std::string::npos)
      << m.status().message();
}

TEST(GatherTest, OutputShapeSplicesIndicesIntoData) {
  ModelBuilder b(13);
  b.input("x", TensorProto::FLOAT, {-1, 5, 4});
  b.input("idx", TensorProto::INT64, {2, 3});
  b.initializer("scalar", Tensor::from_vector<int64_t>({}, {-1}));
  testing::set_int_attr(b.node("Gather", {"x", "idx"}, {"y"}), "axis", 1);
  testing::set_int_attr(b.node("Gather", {"x", "scalar"}, {"z"}), "axis", -2);
  untyped_output(b, "y");
  untyped_output(b, "z");
  auto m = testing::import(b);
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(testing::inferred_shape(*m, "y"), "Nx2x3x4");
  EXPECT_EQ(testing::inferred_shape(*m, "z"), "Nx4");
}

TEST(GatherTest, NegativeIndicesOnBytesAndOutOfRangeError) {
  ModelBuilder b(13);
  b.input("x", TensorProto::UINT8, {2, 3});
  b.input("idx", TensorProto::INT32, {2});
  testing::set_int_attr(b.node("Gather", {"x", "idx"}, {"y"}, "g"), "axis", -1);
  untyped_output(b, "y");
  auto m = testing::import(b);
  ASSERT_TRUE(m.ok()) << m.status().message();
  const Tensor x = Tensor::from_vector<uint8_t>({2, 3}, {10, 11, 12, 20, 21, 22});
  auto out = testing::run(*m, {x, Tensor::from_vector<int32_t>({2}, {-1, 0})});
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ(testing::values_of<uint8_t>(out->at(0)), (std::vector<uint8_t>{12, 10, 22, 20}));
  auto bad = testing::run(*m, {x, Tensor::from_vector<int32_t>({2}, {0, 3})});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidInput);
  EXPECT_NE(bad.status().message().find("node 'g' (Gather): index 3 is out of range for axis 1 "
                                        "of size 3"),
            std::string::npos)
      << bad.status().message();
}

TEST(GatherTest, FloatIndicesAreRejected) {
  ModelBuilder b(13);
  b.input("x", TensorProto::FLOAT, {3});
  b.input("idx", TensorProto::FLOAT, {1});
  b.node("Gather", {"x", "idx"}, {"y"});
  untyped_output(b, "y");
  auto m = testing::import(b);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("indices must be int32 or int64"), std::string::npos);
}

TEST(GatherElementsTest, PicksAlongTheAxis) {
  ModelBuilder b(13);
  b.input("x", TensorProto::INT64, {2, 2});
  b.input("idx", TensorProto::INT64, {2, 2});
  testing::set_int_attr(b.node("GatherElements", {"x", "idx"}, {"y"}), "axis", 1);
  untyped_output(b, "y");
  auto m = testing::import(b);
  ASSERT_TRUE(m.ok()) << m.status().message();
  auto out = testing::run(*m, {Tensor::from_vector<int64_t>({2, 2}, {1, 2, 3, 4}),
                               Tensor::from_vector<int64_t>({2, 2}, {0, 0, -1, 0})});
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ(testing::values_of<int64_t>(out->at(0)), (std::vector<int64_t>{1, 1, 4, 3}));
}

}  // namespace
}  // namespace qf
