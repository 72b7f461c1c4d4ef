// The Mul/Div-by-a-per-channel-constant folding (src/passes/channel_scale_folding.cc), and the
// PyTorch QAT Conv -> Div -> BatchNormalization -> Relu pattern it unlocks in the optimizer.
#include <limits>

#include "pass_test_util.h"
#include "passes/passes.h"

namespace qf::passes::testing {
namespace {

// How the scale is applied: Mul(y, c), Mul(c, y) or Div(y, c).
enum class Form { kMulRight, kMulLeft, kDiv };

std::string form_str(Form f) {
  switch (f) {
    case Form::kMulRight:
      return "y*c";
    case Form::kMulLeft:
      return "c*y";
    case Form::kDiv:
      return "y/c";
  }
  return "?";
}

// The scale node reading `in` and constant (or input) `c`, writing `out`.
void add_scale(ModelBuilder& b, Form f, const std::string& in, const std::string& c,
               const std::string& out) {
  switch (f) {
    case Form::kMulRight:
      b.node("Mul", {in, c}, {out});
      break;
    case Form::kMulLeft:
      b.node("Mul", {c, in}, {out});
      break;
    case Form::kDiv:
      b.node("Div", {in, c}, {out});
      break;
  }
}

// Scale values away from zero (either sign), so that Div is well conditioned.
Tensor scale_tensor(const Shape& shape, uint32_t seed) {
  Tensor t = random_tensor(shape, seed, 0.5f, 2.0f);
  float* p = t.data<float>();
  for (int64_t i = 0; i < t.numel(); i += 3) p[i] = -p[i];
  return t;
}

// x [N, 4, 6, 6] -> Conv (6 out channels, 3x3, pad 1, `group`, optional bias) -> scale `c` of
// `c_shape` -> y.
ModelBuilder conv_scale(const Shape& c_shape, Form form, bool conv_bias, int64_t group = 1,
                        int64_t in_channels = 4, int64_t out_channels = 6) {
  ModelBuilder b(13);
  b.input("x", kF32, {-1, in_channels, 6, 6});
  b.output("y", kF32, {-1, out_channels, 6, 6});
  b.initializer("w", random_tensor({out_channels, in_channels / group, 3, 3}, 1));
  std::vector<std::string> inputs = {"x", "w"};
  if (conv_bias) {
    b.initializer("b", random_tensor({out_channels}, 2));
    inputs.push_back("b");
  }
  auto& conv = b.node("Conv", inputs, {"c"});
  set_ints_attr(conv, "pads", {1, 1, 1, 1});
  set_int_attr(conv, "group", group);
  b.initializer("s", scale_tensor(c_shape, 3));
  add_scale(b, form, "c", "s", "y");
  return b;
}

// The pass applied: one node of `op` left, writing y, reading new weights (and a bias exactly
// when it had one); outputs unchanged.
void expect_folded(const ModelBuilder& b, const std::string& op, bool has_bias) {
  auto r = run_pass(b, *make_channel_scale_folding_pass());
  EXPECT_TRUE(r.changed);
  ASSERT_EQ(r.after->nodes().size(), 1u);
  const ir::Node* n = r.after->nodes().front().get();
  EXPECT_EQ(n->op_type, op);
  EXPECT_EQ(n->outputs[0]->name, "y");
  ASSERT_TRUE(n->has_input(1));
  EXPECT_TRUE(n->inputs[1]->is_constant());
  EXPECT_NE(n->inputs[1]->name, "w");
  EXPECT_EQ(n->has_input(2), has_bias);
  if (has_bias) {
    EXPECT_TRUE(n->inputs[2]->is_constant());
  }
  expect_same_outputs(*r.before, *r.after);
}

// The pass did not apply and left the graph as it was.
void expect_untouched(const ModelBuilder& b) {
  auto r = run_pass(b, *make_channel_scale_folding_pass());
  EXPECT_FALSE(r.changed);
  EXPECT_EQ(dump(*r.after), dump(*r.before));
  expect_same_outputs(*r.before, *r.after);
}

TEST(ChannelScaleFoldingTest, FoldsPerChannelScaleIntoConv) {
  for (const Shape& shape : {Shape{1, 6, 1, 1}, Shape{6, 1, 1}, Shape{}, Shape{1}}) {
    for (Form form : {Form::kMulRight, Form::kMulLeft, Form::kDiv}) {
      for (bool bias : {false, true}) {
        SCOPED_TRACE(shape_str(shape) + " " + form_str(form) + (bias ? " with B" : ""));
        expect_folded(conv_scale(shape, form, bias), "Conv", bias);
      }
    }
  }
}

TEST(ChannelScaleFoldingTest, FoldsIntoGroupedAndDepthwiseConv) {
  for (Form form : {Form::kMulLeft, Form::kDiv}) {
    for (bool bias : {false, true}) {
      SCOPED_TRACE(form_str(form) + (bias ? " with B" : ""));
      {
        SCOPED_TRACE("2 groups");
        expect_folded(conv_scale({1, 6, 1, 1}, form, bias, 2), "Conv", bias);
      }
      {
        SCOPED_TRACE("depthwise");
        expect_folded(conv_scale({6, 1, 1}, form, bias, 6, 6, 6), "Conv", bias);
      }
    }
  }
}

TEST(ChannelScaleFoldingTest, FoldsIntoConv1d) {
  ModelBuilder b(13);
  b.input("x", kF32, {2, 3, 9});
  b.output("y", kF32, {2, 5, 7});
  b.initializer("w", random_tensor({5, 3, 3}, 1));
  b.initializer("s", scale_tensor({5, 1}, 2));
  b.node("Conv", {"x", "w"}, {"c"});
  b.node("Div", {"c", "s"}, {"y"});
  expect_folded(b, "Conv", false);
}

// Div divides each weight in the weights' type (w / c, not w * (1 / c)).
TEST(ChannelScaleFoldingTest, DivisionIsDoneInTheWeightsType) {
  auto r = run_pass(conv_scale({1, 6, 1, 1}, Form::kDiv, true), *make_channel_scale_folding_pass());
  ASSERT_TRUE(r.changed);
  const ir::Node* conv = only_node(*r.after, "Conv");
  ASSERT_TRUE(conv);
  const Tensor w = random_tensor({6, 4, 3, 3}, 1), b = random_tensor({6}, 2);
  const Tensor s = scale_tensor({1, 6, 1, 1}, 3);
  const float* nw = conv->inputs[1]->constant.data<float>();
  const float* nb = conv->inputs[2]->constant.data<float>();
  for (int64_t i = 0; i < w.numel(); ++i) {
    ASSERT_EQ(nw[i], w.data<float>()[i] / s.data<float>()[i / 36]) << "weight " << i;
  }
  for (int64_t m = 0; m < 6; ++m) {
    EXPECT_EQ(nb[m], b.data<float>()[m] / s.data<float>()[m]) << "bias " << m;
  }
  EXPECT_EQ(conv->inputs[1]->constant.shape(), (Shape{6, 4, 3, 3}));
  EXPECT_EQ(conv->inputs[2]->constant.shape(), (Shape{6}));
}

TEST(ChannelScaleFoldingTest, FoldsIntoConvTransposeWithAndWithoutGroups) {
  for (int64_t group : {1, 2}) {
    for (bool bias : {false, true}) {
      for (Form form : {Form::kMulRight, Form::kDiv}) {
        SCOPED_TRACE(std::to_string(group) + " groups " + form_str(form) + (bias ? " with B" : ""));
        ModelBuilder b(13);
        b.input("x", kF32, {1, 4, 5, 5});
        b.output("y", kF32, {1, 6, 10, 10});
        // [C, M / group, k, k], M = 6: with 2 groups, output channel 3 + j is fed by W[2..3, j].
        b.initializer("w", random_tensor({4, 6 / group, 2, 2}, 3));
        std::vector<std::string> inputs = {"x", "w"};
        if (bias) {
          b.initializer("b", random_tensor({6}, 4));
          inputs.push_back("b");
        }
        auto& ct = b.node("ConvTranspose", inputs, {"c"});
        set_ints_attr(ct, "strides", {2, 2});
        set_int_attr(ct, "group", group);
        b.initializer("s", scale_tensor({6, 1, 1}, 5));
        add_scale(b, form, "c", "s", "y");
        expect_folded(b, "ConvTranspose", bias);
      }
    }
  }
}

// x [N, 8] -> Gemm (5 columns; transB, alpha, beta, C of `c_shape` or none) -> scale -> y.
ModelBuilder gemm_scale(bool trans_b, const std::optional<Shape>& c_shape, const Shape& s_shape,
                        Form form, bool alpha_beta, int64_t rows = -1) {
  ModelBuilder b(13);
  b.input("x", kF32, {rows, 8});
  b.output("y", kF32, {rows, 5});
  b.initializer("w", random_tensor(trans_b ? Shape{5, 8} : Shape{8, 5}, 1));
  std::vector<std::string> inputs = {"x", "w"};
  if (c_shape) {
    b.initializer("cb", random_tensor(*c_shape, 2));
    inputs.push_back("cb");
  }
  auto& gemm = b.node("Gemm", inputs, {"g"});
  set_int_attr(gemm, "transB", trans_b ? 1 : 0);
  if (alpha_beta) {
    set_float_attr(gemm, "alpha", 0.5f);
    set_float_attr(gemm, "beta", 2.0f);
  }
  b.initializer("s", scale_tensor(s_shape, 3));
  add_scale(b, form, "g", "s", "y");
  return b;
}

TEST(ChannelScaleFoldingTest, FoldsPerColumnScaleIntoGemm) {
  const std::vector<std::optional<Shape>> c_shapes = {std::nullopt, Shape{5}, Shape{1, 5}, Shape{1},
                                                      Shape{}};
  for (bool trans_b : {false, true}) {
    for (const auto& c_shape : c_shapes) {
      for (const Shape& s_shape : {Shape{5}, Shape{1, 5}, Shape{}}) {
        for (Form form : {Form::kMulRight, Form::kMulLeft, Form::kDiv}) {
          for (bool alpha_beta : {false, true}) {
            SCOPED_TRACE(std::string(trans_b ? "transB " : "") + "C " +
                         (c_shape ? shape_str(*c_shape) : "none") + " scale " + shape_str(s_shape) +
                         " " + form_str(form) + (alpha_beta ? " alpha/beta" : ""));
            expect_folded(gemm_scale(trans_b, c_shape, s_shape, form, alpha_beta), "Gemm",
                          c_shape.has_value());
          }
        }
      }
    }
  }
}

TEST(ChannelScaleFoldingTest, FoldsIntoGemmWithFullC) {
  for (bool trans_b : {false, true}) {
    SCOPED_TRACE(trans_b ? "transB" : "B");
    expect_folded(gemm_scale(trans_b, Shape{3, 5}, {5}, Form::kDiv, true, 3), "Gemm", true);
  }
}

// A one-element C under a per-column scale becomes one value per column.
TEST(ChannelScaleFoldingTest, WidensOneElementGemmC) {
  auto r = run_pass(gemm_scale(false, Shape{1, 1}, {5}, Form::kMulRight, true),
                    *make_channel_scale_folding_pass());
  ASSERT_TRUE(r.changed);
  const ir::Node* gemm = only_node(*r.after, "Gemm");
  ASSERT_TRUE(gemm);
  EXPECT_EQ(gemm->inputs[2]->constant.shape(), (Shape{5}));
  EXPECT_EQ(gemm->attrs.get_float("beta", 1.0f), 2.0f);
  EXPECT_EQ(gemm->attrs.get_float("alpha", 1.0f), 0.5f);
  expect_same_outputs(*r.before, *r.after);
}

// A qforge::FusedConv with no epilogue is a Conv; with an activation the scale does not commute.
TEST(ChannelScaleFoldingTest, FoldsIntoFusedConvOnlyWithoutEpilogue) {
  for (bool relu : {false, true}) {
    SCOPED_TRACE(relu ? "with Relu" : "plain");
    ModelBuilder b(13);
    auto* imp = b.proto().add_opset_import();
    imp->set_domain("qforge");
    imp->set_version(1);
    b.input("x", kF32, {1, 3, 5, 5});
    b.output("y", kF32, {1, 4, 5, 5});
    b.initializer("w", random_tensor({4, 3, 3, 3}, 1));
    b.initializer("b", random_tensor({4}, 2));
    b.initializer("s", scale_tensor({4, 1, 1}, 3));
    auto& n = b.node("FusedConv", {"x", "w", "b"}, {"c"});
    n.set_domain("qforge");
    set_ints_attr(n, "pads", {1, 1, 1, 1});
    if (relu) set_string_attr(n, "activation", "Relu");
    b.node("Div", {"c", "s"}, {"y"});
    if (relu) {
      expect_untouched(b);
    } else {
      expect_folded(b, "FusedConv", true);
    }
  }
}

TEST(ChannelScaleFoldingTest, DoesNotApplyToScaleVaryingOffTheChannelAxis) {
  // Along W (6 elements, as many as the channels), along H and W, along channels and H.
  for (const Shape& shape : {Shape{6}, Shape{1, 1, 6, 6}, Shape{1, 6, 6, 1}}) {
    SCOPED_TRACE(shape_str(shape));
    expect_untouched(conv_scale(shape, Form::kMulRight, true));
  }
  {
    SCOPED_TRACE("rank 5: broadcasts the output up a dim");
    ModelBuilder b(13);
    b.input("x", kF32, {2, 4, 6, 6});
    b.output("y", kF32, {1, 2, 6, 6, 6});
    b.initializer("w", random_tensor({6, 4, 3, 3}, 1));
    set_ints_attr(b.node("Conv", {"x", "w"}, {"c"}), "pads", {1, 1, 1, 1});
    b.initializer("s", scale_tensor({1, 1, 6, 1, 1}, 3));
    b.node("Mul", {"c", "s"}, {"y"});
    expect_untouched(b);
  }
  // Gemm: a scale per row, or a per-column scale of a C that varies by row.
  expect_untouched(gemm_scale(false, std::nullopt, {3, 1}, Form::kMulRight, false, 3));
  expect_untouched(gemm_scale(true, Shape{3, 1}, {5}, Form::kDiv, false, 3));
}

TEST(ChannelScaleFoldingTest, DoesNotApplyToRuntimeScaleOrWeights) {
  {
    SCOPED_TRACE("scale is a graph input");
    ModelBuilder b(13);
    b.input("x", kF32, {1, 3, 4, 4});
    b.input("s", kF32, {1, 5, 1, 1});
    b.output("y", kF32, {1, 5, 4, 4});
    b.initializer("w", random_tensor({5, 3, 1, 1}, 1));
    b.node("Conv", {"x", "w"}, {"c"});
    b.node("Mul", {"c", "s"}, {"y"});
    expect_untouched(b);
  }
  {
    SCOPED_TRACE("weights are a graph input");
    ModelBuilder b(13);
    b.input("x", kF32, {1, 3, 4, 4});
    b.input("w", kF32, {5, 3, 1, 1});
    b.output("y", kF32, {1, 5, 4, 4});
    b.initializer("s", scale_tensor({1, 5, 1, 1}, 2));
    b.node("Conv", {"x", "w"}, {"c"});
    b.node("Div", {"c", "s"}, {"y"});
    expect_untouched(b);
  }
}

TEST(ChannelScaleFoldingTest, DoesNotApplyWhenConvOutputHasAnotherReader) {
  ModelBuilder b = conv_scale({1, 6, 1, 1}, Form::kDiv, true);
  b.output("r", kF32, {-1, 6, 6, 6});
  b.node("Relu", {"c"}, {"r"});
  expect_untouched(b);

  ModelBuilder b2 = conv_scale({1, 6, 1, 1}, Form::kMulRight, false);
  b2.output("c", kF32, {-1, 6, 6, 6});  // the Conv's output is also a graph output
  expect_untouched(b2);
}

TEST(ChannelScaleFoldingTest, DoesNotApplyToConstantDividend) {
  ModelBuilder b(13);
  b.input("x", kF32, {1, 3, 4, 4});
  b.output("y", kF32, {1, 5, 4, 4});
  b.initializer("w", random_tensor({5, 3, 1, 1}, 1));
  b.initializer("s", scale_tensor({1, 5, 1, 1}, 2));
  b.node("Conv", {"x", "w"}, {"c"});
  b.node("Div", {"s", "c"}, {"y"});  // s / Conv(x): not linear in the Conv
  auto r = run_pass(b, *make_channel_scale_folding_pass());
  EXPECT_FALSE(r.changed);
  EXPECT_EQ(dump(*r.after), dump(*r.before));
}

TEST(ChannelScaleFoldingTest, DoesNotApplyToZeroOrNonFiniteScale) {
  const float inf = std::numeric_limits<float>::infinity();
  for (const auto& [form, bad] : std::vector<std::pair<Form, float>>{
           {Form::kDiv, 0.0f}, {Form::kDiv, -0.0f}, {Form::kDiv, inf}, {Form::kMulRight, inf}}) {
    SCOPED_TRACE(form_str(form) + " " + std::to_string(bad));
    ModelBuilder b(13);
    b.input("x", kF32, {1, 3, 4, 4});
    b.output("y", kF32, {1, 4, 4, 4});
    b.initializer("w", random_tensor({4, 3, 1, 1}, 1));
    b.initializer("s", Tensor::from_vector<float>({4, 1, 1}, {1.0f, 2.0f, bad, 0.5f}));
    b.node("Conv", {"x", "w"}, {"c"});
    add_scale(b, form, "c", "s", "y");
    auto r = run_pass(b, *make_channel_scale_folding_pass());
    EXPECT_FALSE(r.changed);
    EXPECT_EQ(dump(*r.after), dump(*r.before));
  }
}

// PyTorch's QAT export of a fused Conv+BN (torch.ao.nn.intrinsic.qat.ConvBn2d): the weights are
// pre-multiplied by the BN factor f = gamma / sqrt(var + eps), a Div by f undoes it, then the BN
// and the Relu. The whole optimizer should leave one FusedConv with a Relu.
ModelBuilder qat_conv_bn_relu(bool bias_add) {
  ModelBuilder b(13);
  const int64_t c = 3, m = 8;
  b.input("x", kF32, {-1, c, 8, 8});
  b.output("y", kF32, {-1, m, 8, 8});
  const Tensor gamma = random_tensor({m}, 10, 0.5f, 1.5f);
  const Tensor var = random_tensor({m}, 13, 0.25f, 2.0f);
  b.initializer("bn.scale", gamma);
  b.initializer("bn.bias", random_tensor({m}, 11));
  b.initializer("bn.mean", random_tensor({m}, 12));
  b.initializer("bn.var", var);
  Tensor f(DType::kF32, {1, m, 1, 1});
  for (int64_t i = 0; i < m; ++i) {
    f.data<float>()[i] = gamma.data<float>()[i] / std::sqrt(var.data<float>()[i] + 1e-5f);
  }
  Tensor w = random_tensor({m, c, 3, 3}, 1);
  for (int64_t i = 0; i < w.numel(); ++i) w.data<float>()[i] *= f.data<float>()[i / (c * 9)];
  b.initializer("w_scaled", w);
  b.initializer("f", f);
  std::vector<std::string> conv_inputs = {"x", "w_scaled"};
  if (bias_add) {
    // With a conv bias the export passes zeros to the Conv and adds the bias after the Div.
    b.initializer("zero_bias", Tensor(DType::kF32, {m}));
    b.initializer("bias", random_tensor({1, m, 1, 1}, 2));
    conv_inputs.push_back("zero_bias");
  }
  set_ints_attr(b.node("Conv", conv_inputs, {"conv"}), "pads", {1, 1, 1, 1});
  b.node("Div", {"conv", "f"}, {"orig"});
  std::string bn_in = "orig";
  if (bias_add) {
    b.node("Add", {"orig", "bias"}, {"biased"});
    bn_in = "biased";
  }
  b.node("BatchNormalization", {bn_in, "bn.scale", "bn.bias", "bn.mean", "bn.var"}, {"bn"});
  b.node("Relu", {"bn"}, {"y"});
  return b;
}

TEST(ChannelScaleFoldingTest, QatConvDivBatchNormReluBecomesOneFusedConv) {
  for (bool bias_add : {false, true}) {
    SCOPED_TRACE(bias_add ? "with bias Add" : "without bias");
    auto r = run_optimize(qat_conv_bn_relu(bias_add));
    EXPECT_EQ(histogram(*r.after), (Histogram{{"qforge::FusedConv", 1}}));
    const ir::Node* conv = only_node(*r.after, "FusedConv");
    ASSERT_TRUE(conv);
    EXPECT_EQ(conv->attrs.get_string("activation", ""), "Relu");
    EXPECT_EQ(conv->outputs[0]->name, "y");
    expect_same_outputs(*r.before, *r.after);

    // The scale folding is what lets the BN fold.
    auto g = import(qat_conv_bn_relu(bias_add));
    ASSERT_TRUE(g);
    auto counts = run_passes(*g, standard_passes());
    ASSERT_TRUE(counts.ok()) << counts.status().message();
    PassCounts rounds = *counts;
    EXPECT_EQ(rounds["channel-scale-folding"], 1);
    EXPECT_EQ(rounds["batch-norm-folding"], 1);
  }
}

}  // namespace
}  // namespace qf::passes::testing
