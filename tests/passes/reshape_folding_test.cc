#include "pass_test_util.h"
#include "passes/passes.h"

namespace qf::passes::testing {
namespace {

TEST(ReshapeFoldingTest, ReshapeOfFlattenReadsTheOriginal) {
  ModelBuilder b(13);
  b.input("x", kF32, {-1, 2, 3, 4});
  b.output("y", kF32, {-1, 6, 4});
  b.initializer("shape", ints({-1, 6, 4}));
  b.node("Relu", {"x"}, {"r"});
  b.node("Flatten", {"r"}, {"f"});
  b.node("Reshape", {"f", "shape"}, {"y"});
  auto r = run_pass(b, *make_reshape_folding_pass());
  EXPECT_TRUE(r.changed);
  EXPECT_EQ(histogram(*r.after), (Histogram{{"Relu", 1}, {"Reshape", 1}}));
  EXPECT_EQ(only_node(*r.after, "Reshape")->inputs[0]->name, "r");
  expect_same_outputs(*r.before, *r.after);
}

TEST(ReshapeFoldingTest, ZeroInTheSecondShapeBecomesTheIntermediateDim) {
  ModelBuilder b(13);
  b.input("x", kF32, {2, 3, 4});
  b.output("y", kF32, {6, 2, 2});
  b.initializer("s1", ints({6, 4}));
  b.initializer("s2", ints({0, 2, -1}));  // 0 copies the 6 of the intermediate [6, 4]
  b.node("Reshape", {"x", "s1"}, {"m"});
  b.node("Reshape", {"m", "s2"}, {"y"});
  auto r = run_pass(b, *make_reshape_folding_pass());
  EXPECT_TRUE(r.changed);
  EXPECT_EQ(histogram(*r.after), (Histogram{{"Reshape", 1}}));
  const ir::Node* reshape = only_node(*r.after, "Reshape");
  ASSERT_TRUE(reshape);
  EXPECT_EQ(reshape->inputs[0]->name, "x");
  EXPECT_EQ(reshape->inputs[1]->constant.to_int64_vector(), (std::vector<int64_t>{6, 2, -1}));
  expect_same_outputs(*r.before, *r.after);
}

TEST(ReshapeFoldingTest, RemovesReshapeThatKeepsTheShape) {
  ModelBuilder b(13);
  b.input("x", kF32, {-1, 8});
  b.output("y", kF32, {-1, 8});
  b.node("Relu", {"x"}, {"r"});
  b.node("Flatten", {"r"}, {"f"});  // [N, 8] stays [N, 8]
  b.node("Neg", {"f"}, {"y"});
  auto r = run_pass(b, *make_reshape_folding_pass());
  EXPECT_TRUE(r.changed);
  EXPECT_EQ(histogram(*r.after), (Histogram{{"Relu", 1}, {"Neg", 1}}));
  expect_same_outputs(*r.before, *r.after);
}

TEST(ReshapeFoldingTest, DoesNotApplyWhenTheIntermediateHasAnotherReader) {
  ModelBuilder b(13);
  b.input("x", kF32, {2, 3, 4});
  b.output("y", kF32, {4, 6});
  b.output("z", kF32, {6, 4});
  b.initializer("s1", ints({6, 4}));
  b.initializer("s2", ints({4, 6}));
  b.node("Reshape", {"x", "s1"}, {"m"});
  b.node("Reshape", {"m", "s2"}, {"y"});
  b.node("Relu", {"m"}, {"z"});
  auto r = run_pass(b, *make_reshape_folding_pass());
  EXPECT_FALSE(r.changed);
  EXPECT_EQ(dump(*r.after), dump(*r.before));
  expect_same_outputs(*r.before, *r.after);
}

}  // namespace
}  // namespace qf::passes::testing
