#include "pass_test_util.h"
#include "passes/passes.h"

namespace qf::passes::testing {
namespace {

// A ResNet shortcut: y = Conv(x) + Relu(x) (shapes equal), the Add's operands in either order.
ModelBuilder conv_shortcut(bool conv_first) {
  ModelBuilder b(13);
  b.input("x", kF32, {-1, 4, 5, 5});
  b.output("y", kF32, {-1, 4, 5, 5});
  b.initializer("w", random_tensor({4, 4, 3, 3}, 1));
  b.initializer("b", random_tensor({4}, 2));
  set_ints_attr(b.node("Conv", {"x", "w", "b"}, {"c"}), "pads", {1, 1, 1, 1});
  b.node("Relu", {"x"}, {"shortcut"});
  b.node("Add",
         conv_first ? std::vector<std::string>{"c", "shortcut"}
                    : std::vector<std::string>{"shortcut", "c"},
         {"y"});
  return b;
}

TEST(ResidualFusionTest, ConvPlusShortcutBecomesFusedConvWithZ) {
  for (bool conv_first : {true, false}) {
    auto r = run_pass(conv_shortcut(conv_first), *make_residual_fusion_pass());
    EXPECT_TRUE(r.changed);
    EXPECT_EQ(histogram(*r.after), (Histogram{{"Relu", 1}, {"qforge::FusedConv", 1}}));
    const ir::Node* fused = only_node(*r.after, "FusedConv");
    ASSERT_TRUE(fused);
    EXPECT_EQ(fused->inputs[3]->name, "shortcut");
    EXPECT_EQ(fused->outputs[0]->name, "y");
    EXPECT_EQ(fused->attrs.get_string("activation", ""), "");
    // The shortcut comes after the Conv in the model; the fused node must run after it.
    EXPECT_EQ(r.after->nodes().back().get(), fused);
    expect_same_outputs(*r.before, *r.after);
  }
}

TEST(ResidualFusionTest, GemmAndMatMulTakeAResidualToo) {
  for (const char* op : {"Gemm", "MatMul"}) {
    SCOPED_TRACE(op);
    ModelBuilder b(13);
    b.input("x", kF32, {3, 6});
    b.input("z", kF32, {3, 4});
    b.output("y", kF32, {3, 4});
    b.initializer("w", random_tensor({6, 4}, 1));
    b.node(op, {"x", "w"}, {"m"});
    b.node("Add", {"m", "z"}, {"y"});
    auto r = run_pass(b, *make_residual_fusion_pass());
    EXPECT_TRUE(r.changed);
    EXPECT_EQ(histogram(*r.after), (Histogram{{std::string("qforge::Fused") + op, 1}}));
    expect_same_outputs(*r.before, *r.after);
  }
}

TEST(ResidualFusionTest, DoesNotApplyWhenConvOutputHasTwoReaders) {
  ModelBuilder b = conv_shortcut(true);
  b.output("n", kF32, {-1, 4, 5, 5});
  b.node("Neg", {"c"}, {"n"});
  auto r = run_pass(b, *make_residual_fusion_pass());
  EXPECT_FALSE(r.changed);
  EXPECT_EQ(dump(*r.after), dump(*r.before));
  expect_same_outputs(*r.before, *r.after);
}

TEST(ResidualFusionTest, DoesNotApplyToBroadcastingAdd) {
  ModelBuilder b(13);
  b.input("x", kF32, {2, 3, 4, 4});
  b.input("z", kF32, {1, 3, 4, 4});  // broadcasts along the batch: not Y's shape
  b.output("y", kF32, {2, 3, 4, 4});
  b.initializer("w", random_tensor({3, 3, 1, 1}, 1));
  b.node("Conv", {"x", "w"}, {"c"});
  b.node("Add", {"c", "z"}, {"y"});
  auto r = run_pass(b, *make_residual_fusion_pass());
  EXPECT_FALSE(r.changed);
  EXPECT_EQ(dump(*r.after), dump(*r.before));
}

}  // namespace
}  // namespace qf::passes::testing
