#include "pass_test_util.h"
#include "passes/passes.h"

namespace qf::passes::testing {
namespace {

TEST(DeadNodeEliminationTest, RemovesUnreadChains) {
  ModelBuilder b(13);
  b.input("x", kF32, {2, 5});
  b.output("y", kF32, {2, 5});
  b.node("Relu", {"x"}, {"y"});
  b.node("Neg", {"x"}, {"dead1"});
  b.node("Exp", {"dead1"}, {"dead2"});
  b.node("Add", {"dead2", "dead1"}, {"dead3"});
  auto r = run_pass(b, *make_dead_node_elimination_pass());
  EXPECT_TRUE(r.changed);
  EXPECT_EQ(histogram(*r.after), (Histogram{{"Relu", 1}}));
  expect_same_outputs(*r.before, *r.after);
}

TEST(DeadNodeEliminationTest, DoesNotApplyWhenEveryResultIsUsed) {
  ModelBuilder b(13);
  b.input("x", kF32, {2, 5});
  b.output("y", kF32, {2, 5});
  b.output("n", kF32, {2, 5});
  b.node("Neg", {"x"}, {"n"});  // read by nobody, but a graph output
  b.node("Relu", {"n"}, {"y"});
  auto r = run_pass(b, *make_dead_node_elimination_pass());
  EXPECT_FALSE(r.changed);
  EXPECT_EQ(dump(*r.after), dump(*r.before));
  expect_same_outputs(*r.before, *r.after);
}

}  // namespace
}  // namespace qf::passes::testing
