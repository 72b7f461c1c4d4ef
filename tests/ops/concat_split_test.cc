// Concat and Split: symbolic dims, opset canonicalisation (Split-11 attribute, Split-18
// num_outputs) and errors.
#include <gtest/gtest.h>

#include "data_movement_test_util.h"

namespace qf {
namespace {

using onnx::TensorProto;
using testing::ModelBuilder;
using testing::untyped_output;

TEST(ConcatTest, KnownAxisKeepsTheBatchSymbol) {
  ModelBuilder b(13);
  b.input("a", TensorProto::FLOAT, {-1, 2, 5});
  b.input("c", TensorProto::FLOAT, {-1, 3, 5});
  testing::set_int_attr(b.node("Concat", {"a", "c"}, {"y"}), "axis", -2);
  testing::set_int_attr(b.node("Concat", {"a", "a"}, {"z"}), "axis", 0);
  untyped_output(b, "y");
  untyped_output(b, "z");
  auto m = testing::import(b);
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(testing::inferred_shape(*m, "y"), "Nx5x5");
  EXPECT_EQ(testing::inferred_shape(*m, "z"), "?x2x5");  // N + N is no single symbol
}

TEST(ConcatTest, RunsOnInt64AndEmptyInputs) {
  ModelBuilder b(13);
  b.input("a", TensorProto::INT64, {2, 1});
  b.input("e", TensorProto::INT64, {2, 0});
  b.input("c", TensorProto::INT64, {2, 2});
  testing::set_int_attr(b.node("Concat", {"a", "e", "c"}, {"y"}), "axis", 1);
  untyped_output(b, "y");
  auto m = testing::import(b);
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(testing::inferred_shape(*m, "y"), "2x3");
  auto out =
      testing::run(*m, {Tensor::from_vector<int64_t>({2, 1}, {1, 2}), Tensor(DType::kI64, {2, 0}),
                        Tensor::from_vector<int64_t>({2, 2}, {3, 4, 5, 6})});
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ(testing::values_of<int64_t>(out->at(0)), (std::vector<int64_t>{1, 3, 4, 2, 5, 6}));
}

TEST(ConcatTest, MismatchedDimsAreAnError) {
  ModelBuilder b(13);
  b.input("a", TensorProto::FLOAT, {2, 3});
  b.input("c", TensorProto::FLOAT, {4, 3});
  testing::set_int_attr(b.node("Concat", {"a", "c"}, {"y"}, "cat"), "axis", 1);
  untyped_output(b, "y");
  auto m = testing::import(b);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("node 'cat' (Concat): inputs disagree on dim 0 (2 vs 4)"),
            std::string::npos)
      << m.status().message();
}

TEST(ConcatTest, MissingAxisIsAnError) {
  ModelBuilder b(13);
  b.input("a", TensorProto::FLOAT, {2, 3});
  b.node("Concat", {"a", "a"}, {"y"}, "cat");
  untyped_output(b, "y");
  auto m = testing::import(b);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("'axis' is required"), std::string::npos);
}

TEST(ConcatTest, ScalarsHaveNoAxisToJoin) {
  ModelBuilder b(13);
  b.input("a", TensorProto::FLOAT, {});
  testing::set_int_attr(b.node("Concat", {"a", "a"}, {"y"}, "cat"), "axis", 0);
  untyped_output(b, "y");
  auto m = testing::import(b);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("node 'cat' (Concat): axis 0 given for a scalar"),
            std::string::npos)
      << m.status().message();
}

// Split-11 gives the sizes as an attribute; import makes them input 1.
TEST(SplitTest, OldSplitAttributeBecomesAnInput) {
  ModelBuilder b(11);
  b.input("x", TensorProto::FLOAT, {-1, 6});
  auto& n = b.node("Split", {"x"}, {"p", "q"});
  testing::set_int_attr(n, "axis", 1);
  testing::set_ints_attr(n, "split", {2, 4});
  untyped_output(b, "p");
  untyped_output(b, "q");
  auto m = testing::import(b);
  ASSERT_TRUE(m.ok()) << m.status().message();
  const ir::Node& node = *m->graph->nodes().front();
  ASSERT_EQ(node.inputs.size(), 2u);
  EXPECT_TRUE(node.inputs[1]->is_constant());
  EXPECT_FALSE(node.attrs.has("split"));
  EXPECT_EQ(testing::inferred_shape(*m, "p"), "Nx2");
  EXPECT_EQ(testing::inferred_shape(*m, "q"), "Nx4");
  auto out = testing::run(*m, {Tensor::from_vector<float>({1, 6}, {0, 1, 2, 3, 4, 5})});
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ(testing::values_of<float>(out->at(0)), (std::vector<float>{0, 1}));
  EXPECT_EQ(testing::values_of<float>(out->at(1)), (std::vector<float>{2, 3, 4, 5}));
}

// Split-18's num_outputs splits into ceil(dim / n) parts with a smaller last one.
TEST(SplitTest, NumOutputsLeavesAShorterLastChunk) {
  ModelBuilder b(18);
  b.input("x", TensorProto::INT32, {7});
  testing::set_int_attr(b.node("Split", {"x"}, {"a", "c", "d"}), "num_outputs", 3);
  for (const char* o : {"a", "c", "d"}) untyped_output(b, o);
  auto m = testing::import(b);
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(testing::inferred_shape(*m, "a"), "3");
  EXPECT_EQ(testing::inferred_shape(*m, "d"), "1");
  auto out = testing::run(*m, {Tensor::from_vector<int32_t>({7}, {1, 2, 3, 4, 5, 6, 7})});
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ(testing::values_of<int32_t>(out->at(1)), (std::vector<int32_t>{4, 5, 6}));
  EXPECT_EQ(testing::values_of<int32_t>(out->at(2)), (std::vector<int32_t>{7}));
}

TEST(SplitTest, UnevenSplitWithoutSizesIsAnErrorBeforeOpset18) {
  ModelBuilder b(13);
  b.input("x", TensorProto::FLOAT, {7});
  b.node("Split", {"x"}, {"a", "c"}, "sp");
  untyped_output(b, "a");
  untyped_output(b, "c");
  auto m = testing::import(b);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("cannot split an axis of size 7 evenly into 2 outputs"),
            std::string::npos)
      << m.status().message();
}

TEST(SplitTest, SizesThatDoNotAddUpAreAnError) {
  ModelBuilder b(13);
  b.input("x", TensorProto::FLOAT, {2, 5});
  b.initializer("split", Tensor::from_vector<int64_t>({2}, {2, 2}));
  testing::set_int_attr(b.node("Split", {"x", "split"}, {"a", "c"}, "sp"), "axis", 1);
  untyped_output(b, "a");
  untyped_output(b, "c");
  auto m = testing::import(b);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("add up to 4 but the axis has size 5"), std::string::npos)
      << m.status().message();
}

TEST(SplitTest, SymbolicAxisWithRuntimeSizesKeepsOtherDims) {
  ModelBuilder b(13);
  b.input("x", TensorProto::FLOAT, {-1, 4});
  b.input("split", TensorProto::INT64, {2});
  b.node("Split", {"x", "split"}, {"a", "c"});
  untyped_output(b, "a");
  untyped_output(b, "c");
  auto m = testing::import(b);
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(testing::inferred_shape(*m, "a"), "?x4");
  auto out =
      testing::run(*m, {Tensor(DType::kF32, {3, 4}), Tensor::from_vector<int64_t>({2}, {1, 2})});
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ(out->at(0).shape(), (Shape{1, 4}));
  EXPECT_EQ(out->at(1).shape(), (Shape{2, 4}));
}

}  // namespace
}  // namespace qf
