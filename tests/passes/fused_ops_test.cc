// The qforge-domain fused ops themselves (src/ops/fused.cc): shape inference, errors, MACs and
// the reference epilogue.
#include "ops/fused.h"

#include "pass_test_util.h"

namespace qf::passes::testing {
namespace {

// A model whose one node is qforge::`op` with `inputs`; the caller adds inputs/initializers.
onnx::NodeProto& fused_node(ModelBuilder& b, const std::string& op,
                            const std::vector<std::string>& inputs) {
  auto* imp = b.proto().add_opset_import();
  imp->set_domain("qforge");
  imp->set_version(1);
  auto& n = b.node(op, inputs, {"y"}, "fused");
  n.set_domain("qforge");
  return n;
}

TEST(FusedOpsTest, FusedConvInfersSymbolicShapeAndTakesDimsFromZ) {
  ModelBuilder b(13);
  b.input("x", kF32, {-1, 3, 5, 5});
  b.input("z", kF32, {-1, 4, 5, 5});
  b.output("y", kF32, {-1, 4, 5, 5});
  b.initializer("w", random_tensor({4, 3, 3, 3}, 1));
  auto& n = fused_node(b, "FusedConv", {"x", "w", "", "z"});
  set_ints_attr(n, "pads", {1, 1, 1, 1});
  set_string_attr(n, "activation", "Relu");
  auto g = import(b);
  ASSERT_TRUE(g);
  EXPECT_EQ(ir::sym_shape_str(g->find_value("y")->shape), "Nx4x5x5");
  const ir::Node* node = g->nodes().front().get();
  const ir::OpDef* def = ir::OpRegistry::global().find("qforge", "FusedConv", 1);
  ASSERT_TRUE(def && def->macs);
  EXPECT_EQ(def->macs(*node), std::nullopt);  // N unknown
  expect_same_outputs(*g, *g, 1);             // runs on the reference executor
}

TEST(FusedOpsTest, MacsAreThoseOfTheBaseOp) {
  ModelBuilder b(13);
  b.input("x", kF32, {2, 3, 5, 5});
  b.output("y", kF32, {2, 4, 5, 5});
  b.initializer("w", random_tensor({4, 3, 3, 3}, 1));
  set_ints_attr(fused_node(b, "FusedConv", {"x", "w"}), "pads", {1, 1, 1, 1});
  auto g = import(b);
  ASSERT_TRUE(g);
  const ir::OpDef* def = ir::OpRegistry::global().find("qforge", "FusedConv", 1);
  ASSERT_TRUE(def && def->macs);
  EXPECT_EQ(def->macs(*g->nodes().front()), 2 * 4 * 5 * 5 * 3 * 3 * 3);
}

TEST(FusedOpsTest, ResidualOfAnotherShapeIsAnError) {
  ModelBuilder b(13);
  b.input("x", kF32, {1, 3, 5, 5});
  b.input("z", kF32, {1, 4, 3, 3});
  b.output("y", kF32, {1, 4, 5, 5});
  b.initializer("w", random_tensor({4, 3, 3, 3}, 1));
  set_ints_attr(fused_node(b, "FusedConv", {"x", "w", "", "z"}), "pads", {1, 1, 1, 1});
  auto m = onnx_io::import_model_bytes(b.serialize(), "m.onnx");
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find(
                "node 'fused' (FusedConv): residual Z has shape 1x4x3x3 but the output has shape "
                "1x4x5x5"),
            std::string::npos)
      << m.status().message();
}

TEST(FusedOpsTest, UnknownActivationIsAnError) {
  ModelBuilder b(13);
  b.input("a", kF32, {2, 3});
  b.output("y", kF32, {2, 4});
  b.initializer("w", random_tensor({3, 4}, 1));
  set_string_attr(fused_node(b, "FusedMatMul", {"a", "w"}), "activation", "Swish");
  auto m = onnx_io::import_model_bytes(b.serialize(), "m.onnx");
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("unknown activation 'Swish'"), std::string::npos)
      << m.status().message();
}

TEST(FusedOpsTest, MatMulBiasMustMatchTheLastAxis) {
  ModelBuilder b(13);
  b.input("a", kF32, {2, 3});
  b.output("y", kF32, {2, 4});
  b.initializer("w", random_tensor({3, 4}, 1));
  b.initializer("bias", random_tensor({3}, 2));
  fused_node(b, "FusedMatMul", {"a", "w", "bias"});
  auto m = onnx_io::import_model_bytes(b.serialize(), "m.onnx");
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("Bias has shape 3, expected [N] with N = 4"),
            std::string::npos)
      << m.status().message();
}

TEST(FusedOpsTest, ActivationDefaultsAreTheOnnxOnes) {
  ir::Node n;
  n.attrs.set("activation", std::string("LeakyRelu"));
  auto leaky = ops::read_activation(n);
  ASSERT_TRUE(leaky.ok());
  EXPECT_EQ(leaky->alpha, 0.01f);
  n.attrs.set("activation", std::string("HardSigmoid"));
  auto hs = ops::read_activation(n);
  ASSERT_TRUE(hs.ok());
  EXPECT_EQ(hs->alpha, 0.2f);
  EXPECT_EQ(hs->beta, 0.5f);
  n.attrs.set("activation", std::string("Clip"));
  n.attrs.set("activation_beta", 6.0f);
  auto clip = ops::read_activation(n);
  ASSERT_TRUE(clip.ok());
  EXPECT_EQ(clip->alpha, -std::numeric_limits<float>::infinity());
  EXPECT_EQ(ops::apply_activation(*clip, 7.5), 6.0);
  EXPECT_EQ(ops::apply_activation(*clip, -1e30), -1e30);
  EXPECT_EQ(ops::activation_name(ops::Activation::kSiLU), "SiLU");
  EXPECT_EQ(ops::parse_activation(""), ops::Activation::kNone);
}

TEST(FusedOpsTest, FusedGemmEpilogueIsBiasThenResidualThenActivation) {
  // Y = LeakyRelu_0.5(A B + C + Z), worked by hand.
  ModelBuilder b(13);
  b.input("z", kF32, {2, 2});
  b.output("y", kF32, {2, 2});
  b.initializer("a", Tensor::from_vector<float>({2, 3}, {1, 2, 3, 4, 5, 6}));
  b.initializer("w", Tensor::from_vector<float>({3, 2}, {1, -1, 0, 1, -1, -2}));
  b.initializer("c", Tensor::from_vector<float>({2}, {0.5f, -20.0f}));
  auto& n = fused_node(b, "FusedGemm", {"a", "w", "c", "z"});
  set_string_attr(n, "activation", "LeakyRelu");
  set_float_attr(n, "activation_alpha", 0.5f);
  auto g = import(b);
  ASSERT_TRUE(g);
  // A B = [[-2, -5], [-2, -11]]; + C = [[-1.5, -25], [-1.5, -31]]; + Z (all 1).
  Tensor z = Tensor::from_vector<float>({2, 2}, {1, 1, 1, 1});
  const std::vector<Tensor> out = run(*g, {z});
  ASSERT_EQ(out.size(), 1u);
  const std::vector<float> expected = {-0.25f, -12.0f, -0.25f, -15.0f};
  for (size_t i = 0; i < expected.size(); ++i) EXPECT_EQ(out[0].data<float>()[i], expected[i]) << i;
}

}  // namespace
}  // namespace qf::passes::testing
