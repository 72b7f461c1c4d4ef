#include "pass_test_util.h"
#include "passes/passes.h"

namespace qf::passes::testing {
namespace {

// BatchNormalization parameters for `c` channels (var positive), named prefix.scale etc.
void add_bn_params(ModelBuilder& b, const std::string& prefix, int64_t c, uint32_t seed) {
  b.initializer(prefix + ".scale", random_tensor({c}, seed, 0.5f, 1.5f));
  b.initializer(prefix + ".bias", random_tensor({c}, seed + 1));
  b.initializer(prefix + ".mean", random_tensor({c}, seed + 2));
  b.initializer(prefix + ".var", random_tensor({c}, seed + 3, 0.25f, 2.0f));
}

onnx::NodeProto& add_bn(ModelBuilder& b, const std::string& prefix, const std::string& in,
                        const std::string& out) {
  auto& n =
      b.node("BatchNormalization",
             {in, prefix + ".scale", prefix + ".bias", prefix + ".mean", prefix + ".var"}, {out});
  set_float_attr(n, "epsilon", 1e-3f);
  return n;
}

// x [N, 3, 7, 7] -> Conv (4 out channels, 3x3, pad 1, optional bias, groups) -> BN -> y.
ModelBuilder conv_bn(bool conv_bias, int64_t group = 1) {
  ModelBuilder b(13);
  const int64_t c = 4, m = 4;
  b.input("x", kF32, {-1, c, 7, 7});
  b.output("y", kF32, {-1, m, 7, 7});
  b.initializer("w", random_tensor({m, c / group, 3, 3}, 1));
  std::vector<std::string> inputs = {"x", "w"};
  if (conv_bias) {
    b.initializer("b", random_tensor({m}, 2));
    inputs.push_back("b");
  }
  auto& conv = b.node("Conv", inputs, {"c"});
  set_ints_attr(conv, "pads", {1, 1, 1, 1});
  set_int_attr(conv, "group", group);
  add_bn_params(b, "bn", m, 10);
  add_bn(b, "bn", "c", "y");
  return b;
}

TEST(BatchNormFoldingTest, FoldsIntoConvWithoutBias) {
  auto r = run_pass(conv_bn(false), *make_batch_norm_folding_pass());
  EXPECT_TRUE(r.changed);
  EXPECT_EQ(histogram(*r.after), (Histogram{{"Conv", 1}}));
  const ir::Node* conv = only_node(*r.after, "Conv");
  ASSERT_TRUE(conv);
  EXPECT_TRUE(conv->has_input(2) && conv->inputs[2]->is_constant());
  EXPECT_EQ(conv->outputs[0]->name, "y");
  expect_same_outputs(*r.before, *r.after);
}

TEST(BatchNormFoldingTest, FoldsIntoConvWithBiasAndGroups) {
  auto r = run_pass(conv_bn(true, 2), *make_batch_norm_folding_pass());
  EXPECT_TRUE(r.changed);
  EXPECT_EQ(histogram(*r.after), (Histogram{{"Conv", 1}}));
  expect_same_outputs(*r.before, *r.after);
}

TEST(BatchNormFoldingTest, FoldsIntoGroupedConvTranspose) {
  ModelBuilder b(13);
  b.input("x", kF32, {1, 4, 5, 5});
  b.output("y", kF32, {1, 6, 10, 10});
  b.initializer("w", random_tensor({4, 3, 2, 2}, 3));  // [C, M / group, k, k], M = 6
  b.initializer("b", random_tensor({6}, 4));
  auto& ct = b.node("ConvTranspose", {"x", "w", "b"}, {"c"});
  set_ints_attr(ct, "strides", {2, 2});
  set_int_attr(ct, "group", 2);
  add_bn_params(b, "bn", 6, 20);
  add_bn(b, "bn", "c", "y");
  auto r = run_pass(b, *make_batch_norm_folding_pass());
  EXPECT_TRUE(r.changed);
  EXPECT_EQ(histogram(*r.after), (Histogram{{"ConvTranspose", 1}}));
  expect_same_outputs(*r.before, *r.after);
}

TEST(BatchNormFoldingTest, FoldsIntoGemmWithTransposedBAndBias) {
  ModelBuilder b(13);
  b.input("x", kF32, {-1, 8});
  b.output("y", kF32, {-1, 5});
  b.initializer("w", random_tensor({5, 8}, 5));
  b.initializer("c", random_tensor({5}, 6));
  auto& gemm = b.node("Gemm", {"x", "w", "c"}, {"g"});
  set_int_attr(gemm, "transB", 1);
  set_float_attr(gemm, "alpha", 0.5f);
  set_float_attr(gemm, "beta", 2.0f);
  add_bn_params(b, "bn", 5, 30);
  add_bn(b, "bn", "g", "y");
  auto r = run_pass(b, *make_batch_norm_folding_pass());
  EXPECT_TRUE(r.changed);
  EXPECT_EQ(histogram(*r.after), (Histogram{{"Gemm", 1}}));
  expect_same_outputs(*r.before, *r.after);
}

TEST(BatchNormFoldingTest, FoldsIntoGemmWithoutBias) {
  ModelBuilder b(13);
  b.input("x", kF32, {3, 8});
  b.output("y", kF32, {3, 5});
  b.initializer("w", random_tensor({8, 5}, 7));
  b.node("Gemm", {"x", "w"}, {"g"});
  add_bn_params(b, "bn", 5, 40);
  add_bn(b, "bn", "g", "y");
  auto r = run_pass(b, *make_batch_norm_folding_pass());
  EXPECT_TRUE(r.changed);
  EXPECT_EQ(histogram(*r.after), (Histogram{{"Gemm", 1}}));
  expect_same_outputs(*r.before, *r.after);
}

TEST(BatchNormFoldingTest, DoesNotApplyWhenConvOutputHasAnotherReader) {
  ModelBuilder b = conv_bn(false);
  b.output("c", kF32, {-1, 4, 7, 7});  // the Conv's output is also a graph output
  auto r = run_pass(b, *make_batch_norm_folding_pass());
  EXPECT_FALSE(r.changed);
  EXPECT_EQ(dump(*r.after), dump(*r.before));

  ModelBuilder b2 = conv_bn(false);
  b2.output("r", kF32, {-1, 4, 7, 7});
  b2.node("Relu", {"c"}, {"r"});  // a second reader of the Conv's output
  auto r2 = run_pass(b2, *make_batch_norm_folding_pass());
  EXPECT_FALSE(r2.changed);
  EXPECT_EQ(dump(*r2.after), dump(*r2.before));
  expect_same_outputs(*r2.before, *r2.after);
}

TEST(BatchNormFoldingTest, DoesNotApplyWithRuntimeParameters) {
  ModelBuilder b(13);
  b.input("x", kF32, {1, 3, 5, 5});
  b.input("scale", kF32, {4});  // not a constant
  b.output("y", kF32, {1, 4, 5, 5});
  b.initializer("w", random_tensor({4, 3, 1, 1}, 1));
  b.initializer("bn.bias", random_tensor({4}, 2));
  b.initializer("bn.mean", random_tensor({4}, 3));
  b.initializer("bn.var", random_tensor({4}, 4, 0.5f, 1.0f));
  b.node("Conv", {"x", "w"}, {"c"});
  b.node("BatchNormalization", {"c", "scale", "bn.bias", "bn.mean", "bn.var"}, {"y"});
  auto r = run_pass(b, *make_batch_norm_folding_pass());
  EXPECT_FALSE(r.changed);
  EXPECT_EQ(dump(*r.after), dump(*r.before));
}

}  // namespace
}  // namespace qf::passes::testing
