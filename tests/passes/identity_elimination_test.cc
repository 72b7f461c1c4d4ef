#include "pass_test_util.h"
#include "passes/passes.h"

namespace qf::passes::testing {
namespace {

TEST(IdentityEliminationTest, RemovesIdentityAndInferenceDropout) {
  ModelBuilder b(13);
  b.input("x", kF32, {-1, 6});
  b.output("y", kF32, {-1, 6});
  b.initializer("ratio", scalar(0.3f));
  b.node("Relu", {"x"}, {"a"});
  b.node("Identity", {"a"}, {"b"});
  b.node("Dropout", {"b", "ratio"}, {"c"});
  b.node("Neg", {"c"}, {"y"});
  auto r = run_pass(b, *make_identity_elimination_pass());
  EXPECT_TRUE(r.changed);
  EXPECT_EQ(histogram(*r.after), (Histogram{{"Relu", 1}, {"Neg", 1}}));
  EXPECT_EQ(only_node(*r.after, "Neg")->inputs[0]->name, "a");
  expect_same_outputs(*r.before, *r.after);
}

TEST(IdentityEliminationTest, IdentityProducingAGraphOutputIsRewiredTheOtherWay) {
  ModelBuilder b(13);
  b.input("x", kF32, {3, 4});
  b.output("y", kF32, {3, 4});
  b.output("z", kF32, {3, 4});
  b.node("Relu", {"x"}, {"a"});
  b.node("Identity", {"a"}, {"y"});
  b.node("Neg", {"a"}, {"z"});  // another reader of the Identity's input
  auto r = run_pass(b, *make_identity_elimination_pass());
  EXPECT_TRUE(r.changed);
  EXPECT_EQ(histogram(*r.after), (Histogram{{"Relu", 1}, {"Neg", 1}}));
  // Relu now writes "y" itself, and Neg reads it.
  EXPECT_EQ(only_node(*r.after, "Relu")->outputs[0]->name, "y");
  EXPECT_EQ(only_node(*r.after, "Neg")->inputs[0]->name, "y");
  expect_same_outputs(*r.before, *r.after);
}

TEST(IdentityEliminationTest, IdentitiesOfASharedWeightLeaveOneConstant) {
  // PyTorch shares deduplicated initializers through Identity; the pipeline must not copy them.
  ModelBuilder b(13);
  b.input("x", kF32, {2, 3});
  b.output("y", kF32, {2, 3});
  b.initializer("bias", random_tensor({3}, 1));
  b.node("Identity", {"bias"}, {"bias1"});
  b.node("Identity", {"bias"}, {"bias2"});
  b.node("Add", {"x", "bias1"}, {"a"});
  b.node("Mul", {"a", "bias2"}, {"y"});
  auto r = run_optimize(b);
  EXPECT_EQ(histogram(*r.after), (Histogram{{"Add", 1}, {"Mul", 1}}));
  ASSERT_EQ(r.after->constants().size(), 1u);
  EXPECT_EQ(r.after->constants()[0]->name, "bias");
  EXPECT_EQ(r.after->constants()[0]->consumers.size(), 2u);
  expect_same_outputs(*r.before, *r.after);
}

TEST(IdentityEliminationTest, DoesNotApplyBetweenGraphInputAndOutput) {
  ModelBuilder b(13);
  b.input("x", kF32, {3});
  b.output("y", kF32, {3});
  b.node("Identity", {"x"}, {"y"});  // both names must survive: nothing to splice
  auto r = run_pass(b, *make_identity_elimination_pass());
  EXPECT_FALSE(r.changed);
  EXPECT_EQ(dump(*r.after), dump(*r.before));
  expect_same_outputs(*r.before, *r.after);
}

TEST(IdentityEliminationTest, DoesNotApplyToDropoutWhoseMaskIsRead) {
  ModelBuilder b(13);
  b.input("x", kF32, {3});
  b.output("y", kF32, {3});
  b.output("mask", onnx::TensorProto::BOOL, {3});
  b.node("Dropout", {"x"}, {"d", "mask"});
  b.node("Relu", {"d"}, {"y"});
  auto r = run_pass(b, *make_identity_elimination_pass());
  EXPECT_FALSE(r.changed);
  EXPECT_EQ(dump(*r.after), dump(*r.before));
}

TEST(IdentityEliminationTest, DoesNotApplyToDropoutInTrainingMode) {
  ModelBuilder b(13);
  b.input("x", kF32, {3});
  b.input("training", onnx::TensorProto::BOOL, {});
  b.output("y", kF32, {3});
  b.node("Dropout", {"x", "", "training"}, {"d"});
  b.node("Relu", {"d"}, {"y"});
  auto r = run_pass(b, *make_identity_elimination_pass());
  EXPECT_FALSE(r.changed);
  EXPECT_EQ(dump(*r.after), dump(*r.before));
}

}  // namespace
}  // namespace qf::passes::testing
