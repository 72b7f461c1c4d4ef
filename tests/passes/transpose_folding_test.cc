#include "pass_test_util.h"
#include "passes/passes.h"

namespace qf::passes::testing {
namespace {

// x [N, 2, 3, 4] -> Relu -> Transpose(p1) -> Transpose(p2) -> Neg -> y
ModelBuilder transpose_pair(const std::vector<int64_t>& p1, const std::vector<int64_t>& p2,
                            const std::vector<int64_t>& y_dims, bool neg_after = true) {
  ModelBuilder b(13);
  b.input("x", kF32, {-1, 2, 3, 4});
  b.output("y", kF32, y_dims);
  b.node("Relu", {"x"}, {"r"});
  set_ints_attr(b.node("Transpose", {"r"}, {"t1"}), "perm", p1);
  set_ints_attr(b.node("Transpose", {"t1"}, {neg_after ? "t2" : "y"}), "perm", p2);
  if (neg_after) b.node("Neg", {"t2"}, {"y"});
  return b;
}

TEST(TransposeFoldingTest, CancellingPairDisappears) {
  auto r = run_pass(transpose_pair({0, 2, 3, 1}, {0, 3, 1, 2}, {-1, 2, 3, 4}),
                    *make_transpose_folding_pass());
  EXPECT_TRUE(r.changed);
  EXPECT_EQ(histogram(*r.after), (Histogram{{"Relu", 1}, {"Neg", 1}}));
  expect_same_outputs(*r.before, *r.after);
}

TEST(TransposeFoldingTest, CancellingPairBeforeAGraphOutputKeepsTheOutputName) {
  auto r = run_pass(transpose_pair({0, 2, 3, 1}, {0, 3, 1, 2}, {-1, 2, 3, 4}, false),
                    *make_transpose_folding_pass());
  EXPECT_TRUE(r.changed);
  EXPECT_EQ(histogram(*r.after), (Histogram{{"Relu", 1}}));
  EXPECT_EQ(only_node(*r.after, "Relu")->outputs[0]->name, "y");
  expect_same_outputs(*r.before, *r.after);
}

TEST(TransposeFoldingTest, NonCancellingPairBecomesOneTranspose) {
  // [N,2,3,4] -(0,2,3,1)-> [N,3,4,2] -(1,0,3,2)-> [3,N,2,4]
  auto r = run_pass(transpose_pair({0, 2, 3, 1}, {1, 0, 3, 2}, {3, -1, 2, 4}),
                    *make_transpose_folding_pass());
  EXPECT_TRUE(r.changed);
  EXPECT_EQ(histogram(*r.after), (Histogram{{"Relu", 1}, {"Transpose", 1}, {"Neg", 1}}));
  EXPECT_EQ(only_node(*r.after, "Transpose")->attrs.get_ints("perm"),
            (std::vector<int64_t>{2, 0, 1, 3}));
  expect_same_outputs(*r.before, *r.after);
}

TEST(TransposeFoldingTest, DoesNotApplyWhenTheIntermediateIsAGraphOutput) {
  ModelBuilder b = transpose_pair({0, 2, 3, 1}, {0, 3, 1, 2}, {-1, 2, 3, 4});
  b.output("t1", kF32, {-1, 3, 4, 2});
  auto r = run_pass(b, *make_transpose_folding_pass());
  EXPECT_FALSE(r.changed);
  EXPECT_EQ(dump(*r.after), dump(*r.before));
  expect_same_outputs(*r.before, *r.after);
}

}  // namespace
}  // namespace qf::passes::testing
