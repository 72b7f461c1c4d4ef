// Reductions, ArgMax/ArgMin and TopK: axes attribute -> input canonicalisation, symbolic shape
// inference (including axes only known at run time), noop_with_empty_axes, integer semantics,
// tie-breaking and K validation.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>

#include "data_movement_test_util.h"

namespace qf {
namespace {

using onnx::TensorProto;
using testing::ModelBuilder;
using testing::untyped_output;
using testing::values_of;

TEST(ReduceTest, AxesAttributeBecomesInputBeforeOpset13) {
  ModelBuilder b(11);
  b.input("x", TensorProto::FLOAT, {-1, 3, 4});
  auto& n = b.node("ReduceSum", {"x"}, {"y"});
  testing::set_ints_attr(n, "axes", {-2});
  testing::set_int_attr(n, "keepdims", 0);
  untyped_output(b, "y");
  auto m = testing::import(b);
  ASSERT_TRUE(m.ok()) << m.status().message();
  const ir::Node& node = *m->graph->nodes().front();
  EXPECT_FALSE(node.attrs.has("axes"));
  ASSERT_TRUE(node.has_input(1));
  ASSERT_TRUE(node.inputs[1]->is_constant());
  EXPECT_EQ(node.inputs[1]->constant.to_int64_vector(), (std::vector<int64_t>{-2}));
  EXPECT_EQ(testing::inferred_shape(*m, "y"), "Nx4");
  auto out = testing::run(
      *m, {Tensor::from_vector<float>({1, 3, 4}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12})});
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ(values_of<float>(out->at(0)), (std::vector<float>{15, 18, 21, 24}));
}

TEST(ReduceTest, ReduceMeanKeepsAxesAttributeSemanticsUntilOpset18) {
  ModelBuilder b(17);
  b.input("x", TensorProto::FLOAT, {2, 2});
  testing::set_ints_attr(b.node("ReduceMean", {"x"}, {"y"}), "axes", {0});
  untyped_output(b, "y");
  auto m = testing::import(b);
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(testing::inferred_shape(*m, "y"), "1x2");
  auto out = testing::run(*m, {Tensor::from_vector<float>({2, 2}, {1, 2, 4, 8})});
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ(values_of<float>(out->at(0)), (std::vector<float>{2.5f, 5}));
}

TEST(ReduceTest, RuntimeAxesGiveKnownRankWithKeepdims) {
  ModelBuilder b(18);
  b.input("x", TensorProto::FLOAT, {-1, 1, 4});
  b.input("axes", TensorProto::INT64, {1});
  b.node("ReduceMax", {"x", "axes"}, {"kept"});
  testing::set_int_attr(b.node("ReduceMax", {"x", "axes"}, {"dropped"}), "keepdims", 0);
  untyped_output(b, "kept");
  untyped_output(b, "dropped");
  auto m = testing::import(b);
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(testing::inferred_shape(*m, "kept"), "?x1x?");
  EXPECT_EQ(testing::inferred_shape(*m, "dropped"), "?");
  auto out = testing::run(*m, {Tensor::from_vector<float>({2, 1, 4}, {1, 9, 3, 4, 5, 6, 7, 0}),
                               Tensor::from_vector<int64_t>({1}, {2})});
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ(out->at(0).shape(), (Shape{2, 1, 1}));
  EXPECT_EQ(values_of<float>(out->at(0)), (std::vector<float>{9, 7}));
  EXPECT_EQ(out->at(1).shape(), (Shape{2, 1}));
}

TEST(ReduceTest, EmptyAxesReduceAllUnlessNoop) {
  ModelBuilder b(13);
  b.input("x", TensorProto::FLOAT, {2, 3});
  b.initializer("none", Tensor(DType::kI64, {0}));
  b.node("ReduceSum", {"x", "none"}, {"all"});
  testing::set_int_attr(b.node("ReduceSum", {"x", "none"}, {"same"}), "noop_with_empty_axes", 1);
  untyped_output(b, "all");
  untyped_output(b, "same");
  auto m = testing::import(b);
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(testing::inferred_shape(*m, "all"), "1x1");
  EXPECT_EQ(testing::inferred_shape(*m, "same"), "2x3");
  auto out = testing::run(*m, {Tensor::from_vector<float>({2, 3}, {1, 2, 3, 4, 5, 6})});
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ(values_of<float>(out->at(0)), (std::vector<float>{21}));
  EXPECT_EQ(values_of<float>(out->at(1)), (std::vector<float>{1, 2, 3, 4, 5, 6}));
}

TEST(ReduceTest, IntegerSumIsExactAndMeanTruncates) {
  ModelBuilder b(18);
  b.input("x", TensorProto::INT64, {3});
  b.node("ReduceSum", {"x"}, {"sum"});
  b.node("ReduceMean", {"x"}, {"mean"});
  untyped_output(b, "sum");
  untyped_output(b, "mean");
  auto m = testing::import(b);
  ASSERT_TRUE(m.ok()) << m.status().message();
  const int64_t big = (int64_t{1} << 53) + 1;  // not representable in double
  auto out = testing::run(*m, {Tensor::from_vector<int64_t>({3}, {big, 2, -1})});
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ(values_of<int64_t>(out->at(0)), (std::vector<int64_t>{big + 1}));
  EXPECT_EQ(values_of<int64_t>(out->at(1)), (std::vector<int64_t>{(big + 1) / 3}));
}

TEST(ReduceTest, LogSumExpDoesNotOverflow) {
  ModelBuilder b(18);
  b.input("x", TensorProto::FLOAT, {2});
  b.node("ReduceLogSumExp", {"x"}, {"y"});
  untyped_output(b, "y");
  auto m = testing::import(b);
  ASSERT_TRUE(m.ok()) << m.status().message();
  auto out = testing::run(*m, {Tensor::from_vector<float>({2}, {1000, 1000})});
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_NEAR(values_of<float>(out->at(0))[0], 1000 + std::log(2.0), 1e-3);
}

TEST(ReduceTest, AxisOutOfRangeNamesTheNode) {
  ModelBuilder b(18);
  b.input("x", TensorProto::FLOAT, {2, 3});
  b.initializer("axes", Tensor::from_vector<int64_t>({1}, {2}));
  b.node("ReduceMin", {"x", "axes"}, {"y"}, "rmin");
  untyped_output(b, "y");
  auto m = testing::import(b);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("node 'rmin' (ReduceMin): axis 2 is out of range"),
            std::string::npos);
}

TEST(ArgMaxTest, SymbolicShapeAndLastIndex) {
  ModelBuilder b(13);
  b.input("x", TensorProto::INT64, {-1, 4});
  auto& first = b.node("ArgMax", {"x"}, {"first"});
  testing::set_int_attr(first, "axis", -1);
  testing::set_int_attr(first, "keepdims", 0);
  auto& last = b.node("ArgMin", {"x"}, {"last"});
  testing::set_int_attr(last, "axis", 1);
  testing::set_int_attr(last, "select_last_index", 1);
  untyped_output(b, "first");
  untyped_output(b, "last");
  auto m = testing::import(b);
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(testing::inferred_shape(*m, "first"), "N");
  EXPECT_EQ(testing::inferred_shape(*m, "last"), "Nx1");
  auto out = testing::run(*m, {Tensor::from_vector<int64_t>({2, 4}, {1, 7, 7, 1, 5, 5, 5, 5})});
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ(values_of<int64_t>(out->at(0)), (std::vector<int64_t>{1, 0}));
  EXPECT_EQ(values_of<int64_t>(out->at(1)), (std::vector<int64_t>{3, 3}));
}

TEST(TopKTest, Opset9AttributeKBecomesInput) {
  ModelBuilder b(9);
  b.input("x", TensorProto::FLOAT, {-1, 5});
  testing::set_int_attr(b.node("TopK", {"x"}, {"v", "i"}), "k", 2);
  untyped_output(b, "v");
  untyped_output(b, "i");
  auto m = testing::import(b);
  ASSERT_TRUE(m.ok()) << m.status().message();
  const ir::Node& node = *m->graph->nodes().front();
  EXPECT_FALSE(node.attrs.has("k"));
  ASSERT_TRUE(node.has_input(1));
  EXPECT_EQ(testing::inferred_shape(*m, "v"), "Nx2");
  EXPECT_EQ(m->graph->find_value("i")->dtype, DType::kI64);
  auto out = testing::run(*m, {Tensor::from_vector<float>({1, 5}, {3, 9, 1, 9, 4})});
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ(values_of<float>(out->at(0)), (std::vector<float>{9, 9}));
  // Equal values: the lower index comes first.
  EXPECT_EQ(values_of<int64_t>(out->at(1)), (std::vector<int64_t>{1, 3}));
}

TEST(TopKTest, SmallestAlongAxisZeroAndRuntimeK) {
  ModelBuilder b(11);
  b.input("x", TensorProto::INT32, {3, 2});
  b.input("k", TensorProto::INT64, {1});
  auto& n = b.node("TopK", {"x", "k"}, {"v", "i"}, "topk");
  testing::set_int_attr(n, "axis", 0);
  testing::set_int_attr(n, "largest", 0);
  untyped_output(b, "v");
  untyped_output(b, "i");
  auto m = testing::import(b);
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(testing::inferred_shape(*m, "v"), "?x2");
  const Tensor x = Tensor::from_vector<int32_t>({3, 2}, {5, -1, 2, 8, 7, 0});
  auto out = testing::run(*m, {x, Tensor::from_vector<int64_t>({1}, {2})});
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ(values_of<int32_t>(out->at(0)), (std::vector<int32_t>{2, -1, 5, 0}));
  EXPECT_EQ(values_of<int64_t>(out->at(1)), (std::vector<int64_t>{1, 0, 0, 2}));

  auto too_big = testing::run(*m, {x, Tensor::from_vector<int64_t>({1}, {4})});
  ASSERT_FALSE(too_big.ok());
  EXPECT_NE(too_big.status().message().find("node 'topk' (TopK): K = 4 is out of range"),
            std::string::npos);
}

}  // namespace
}  // namespace qf
