// Q/DQ export: placement, int8 weights, ONNX validity (libonnx's checker plus strict shape
// inference, which is what the Python checker's full_check adds), and numerics on the reference
// backend against the FP32 model with error bounds derived from the scales.
#include "quant/qdq_export.h"

#include <gtest/gtest.h>
#include <onnx/checker.h>
#include <onnx/defs/schema.h>
#include <onnx/onnx_pb.h>
#include <onnx/shape_inference/implementation.h>

#include <cmath>
#include <exception>
#include <set>

#include "onnx/exporter.h"
#include "onnx/tensor_proto.h"
#include "passes/pass_test_util.h"
#include "quant/weight_quantizer.h"

namespace qf::quant {
namespace {

using passes::testing::histogram;
using passes::testing::import;
using passes::testing::ints;
using passes::testing::random_tensor;
using passes::testing::run;
using passes::testing::scalar;
using qf::testing::ModelBuilder;
using qf::testing::set_float_attr;
using qf::testing::set_int_attr;
using qf::testing::set_ints_attr;

constexpr int32_t kF32 = onnx::TensorProto::FLOAT;
constexpr float kUnitScale = 1.0f / 127.0f;  // amax 1: inputs are uniform in [-1, 1)

// ---- helpers ------------------------------------------------------------------------------------

const ir::Node* node_named(const ir::Graph& g, const std::string& name) {
  for (const auto& n : g.nodes()) {
    if (n->name == name) return n.get();
  }
  return nullptr;
}

// The node's input `i`, which must come out of a DequantizeLinear.
const ir::Node* dq_feeding(const ir::Graph& g, const std::string& node, size_t i) {
  const ir::Node* n = node_named(g, node);
  if (!n || !n->has_input(i) || !n->inputs[i]->producer) return nullptr;
  const ir::Node* p = n->inputs[i]->producer;
  return p->op_type == "DequantizeLinear" ? p : nullptr;
}

float scalar_value(const ir::Value* v) {
  EXPECT_TRUE(v && v->is_constant() && v->constant.numel() == 1);
  return v && v->is_constant() ? v->constant.data<float>()[0] : NAN;
}

QdqExportReport quantize(ir::Graph& g, const std::map<std::string, float>& scales,
                         std::set<std::string> exclude = {}) {
  QdqExportOptions options;
  options.activation_scales = scales;
  options.exclude = std::move(exclude);
  auto r = insert_qdq(g, options);
  EXPECT_TRUE(r.ok()) << r.status().message();
  return r.ok() ? *r : QdqExportReport{-1, -1, -1};
}

// Exports the graph and runs libonnx's checker and strict, type-checking shape inference over
// it (onnx.checker.check_model(full_check=True) in Python). Returns the serialized model.
std::string expect_valid_onnx(const ir::Graph& g) {
  onnx::ModelProto model;
  const Status s = onnx_io::export_model(g, &model);
  EXPECT_TRUE(s.ok()) << s.message();
  try {
    onnx::checker::check_model(model);
    onnx::shape_inference::InferShapes(model, onnx::OpSchemaRegistry::Instance(),
                                       onnx::ShapeInferenceOptions(true, 1, false));
  } catch (const std::exception& e) {
    ADD_FAILURE() << "ONNX check failed: " << e.what();
  }
  return model.SerializeAsString();
}

// Every output of `actual` within `bound` of `expected` (same shapes).
void expect_close(const Tensor& expected, const Tensor& actual, double bound) {
  ASSERT_EQ(expected.shape(), actual.shape());
  int bad = 0;
  double worst = 0;
  for (int64_t i = 0; i < expected.numel(); ++i) {
    const double d = std::fabs(static_cast<double>(expected.data<float>()[i]) -
                               static_cast<double>(actual.data<float>()[i]));
    worst = std::max(worst, d);
    if (d > bound && bad++ < 3) {
      ADD_FAILURE() << "element " << i << ": " << actual.data<float>()[i] << " vs "
                    << expected.data<float>()[i] << " (bound " << bound << ")";
    }
  }
  EXPECT_EQ(bad, 0) << "worst error " << worst << ", bound " << bound;
}

void expect_identical(const Tensor& a, const Tensor& b) {
  ASSERT_EQ(a.shape(), b.shape());
  for (int64_t i = 0; i < a.numel(); ++i) {
    ASSERT_EQ(a.data<float>()[i], b.data<float>()[i]) << "element " << i;
  }
}

float max_abs(const Tensor& t) {
  float m = 0;
  for (float v : t.span<float>()) m = std::max(m, std::fabs(v));
  return m;
}

// Worst-case error of a length-k dot product whose inputs are off by at most `in_err` and
// bounded by `in_amax` (after quantization), with weights bounded by `w_amax` and quantized with
// step `w_step` (error <= w_step / 2): sum |dx| |w| + |x^| |dw|. Plus float rounding.
double dot_error_bound(int64_t k, double in_err, double in_amax, double w_amax, double w_step) {
  return static_cast<double>(k) * (in_err * w_amax + in_amax * w_step / 2) + 1e-5;
}

// Exported bytes, imported again: the model must still run and give the same outputs.
void expect_reimport_runs(const std::string& bytes, const std::vector<Tensor>& inputs,
                          const std::vector<Tensor>& expected) {
  auto m = onnx_io::import_model_bytes(bytes, "qdq.onnx");
  ASSERT_TRUE(m.ok()) << m.status().message();
  const std::vector<Tensor> out = run(*m->graph, inputs);
  ASSERT_EQ(out.size(), expected.size());
  for (size_t i = 0; i < out.size(); ++i) expect_identical(expected[i], out[i]);
}

// ---- weight quantizer ---------------------------------------------------------------------------

TEST(WeightQuant, PerChannelScalesAndRoundsHalfToEven) {
  // Channel 0: amax 1 -> scale 1/127; 0.5 * 127 = 63.5 -> 64, 0.25 * 127 = 31.75 -> 32.
  // Channel 1: amax 127 -> scale exactly 1, so 2.5, -2.5 and 3.5 are exact ties -> 2, -2, 4.
  const Tensor w =
      Tensor::from_vector<float>({2, 4}, {0.5f, -1.0f, 0.0f, 0.25f, 127.0f, 2.5f, -2.5f, 3.5f});
  auto q = quantize_per_channel(w, 0, "w");
  ASSERT_TRUE(q.ok()) << q.status().message();
  ASSERT_EQ(q->axis, std::optional<int64_t>(0));
  ASSERT_EQ(q->scales.shape(), Shape({2}));
  EXPECT_EQ(q->scales.data<float>()[0], 1.0f / 127.0f);
  EXPECT_EQ(q->scales.data<float>()[1], 1.0f);
  ASSERT_EQ(q->values.dtype(), DType::kI8);
  ASSERT_EQ(q->values.shape(), Shape({2, 4}));
  const std::vector<int8_t> expected = {64, -127, 0, 32, 127, 2, -2, 4};
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(q->values.data<int8_t>()[i], expected[i]) << i;
  }
  ASSERT_EQ(q->zero_points.dtype(), DType::kI8);
  ASSERT_EQ(q->zero_points.shape(), Shape({2}));
  EXPECT_EQ(q->zero_points.data<int8_t>()[0], 0);
  EXPECT_EQ(q->zero_points.data<int8_t>()[1], 0);
}

TEST(WeightQuant, LastAxisAndZeroChannel) {
  // Columns: [127, -63.5] (scale 1, -63.5 ties to -64), [0, 0] (all zero: scale 1, zeros),
  // [-254, 1] (scale 2, 0.5 ties to 0).
  const Tensor w = Tensor::from_vector<float>({2, 3}, {127.0f, 0.0f, -254.0f, -63.5f, 0.0f, 1.0f});
  auto q = quantize_per_channel(w, -1, "w");
  ASSERT_TRUE(q.ok()) << q.status().message();
  EXPECT_EQ(q->axis, std::optional<int64_t>(1));
  ASSERT_EQ(q->scales.shape(), Shape({3}));
  EXPECT_EQ(q->scales.data<float>()[0], 1.0f);
  EXPECT_EQ(q->scales.data<float>()[1], 1.0f);
  EXPECT_EQ(q->scales.data<float>()[2], 2.0f);
  const std::vector<int8_t> expected = {127, 0, -127, -64, 0, 0};
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(q->values.data<int8_t>()[i], expected[i]) << i;
  }
}

TEST(WeightQuant, PerTensor) {
  // amax 254 -> scale 2: 254 -> 127, -127 -> -63.5 -> -64, 1 -> 0.5 -> 0, 3 -> 1.5 -> 2.
  const Tensor w = Tensor::from_vector<float>({2, 2}, {254.0f, -127.0f, 1.0f, 3.0f});
  auto q = quantize_per_tensor(w, "w");
  ASSERT_TRUE(q.ok()) << q.status().message();
  EXPECT_FALSE(q->axis.has_value());
  EXPECT_EQ(q->scales.rank(), 0);
  EXPECT_EQ(q->scales.data<float>()[0], 2.0f);
  EXPECT_EQ(q->zero_points.rank(), 0);
  const std::vector<int8_t> expected = {127, -64, 0, 2};
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(q->values.data<int8_t>()[i], expected[i]) << i;
  }
  auto zero = quantize_per_tensor(Tensor(DType::kF32, {3}), "zero");
  ASSERT_TRUE(zero.ok());
  EXPECT_EQ(zero->scales.data<float>()[0], 1.0f);
  // 1e-38 / 127 is denormal: treated as zero, so the value quantizes to 0 with scale 1.
  auto tiny = quantize_per_tensor(Tensor::from_vector<float>({1}, {1e-38f}), "tiny");
  ASSERT_TRUE(tiny.ok());
  EXPECT_EQ(tiny->scales.data<float>()[0], 1.0f);
  EXPECT_EQ(tiny->values.data<int8_t>()[0], 0);
}

TEST(WeightQuant, Rejections) {
  auto f64 = quantize_per_tensor(Tensor(DType::kF64, {2}), "w64");
  ASSERT_FALSE(f64.ok());
  EXPECT_EQ(f64.status().code(), StatusCode::kUnsupported);
  auto nan = quantize_per_channel(Tensor::from_vector<float>({2}, {1.0f, NAN}), 0, "wnan");
  ASSERT_FALSE(nan.ok());
  EXPECT_EQ(nan.status().code(), StatusCode::kInvalidInput);
  EXPECT_NE(nan.status().message().find("wnan"), std::string::npos);
  auto axis = quantize_per_channel(Tensor(DType::kF32, {2, 2}), 2, "w");
  EXPECT_FALSE(axis.ok());
}

// ---- Conv ---------------------------------------------------------------------------------------

ModelBuilder conv_relu_model(const Tensor& w, const Tensor& b) {
  ModelBuilder m;
  m.input("X", kF32, {1, 2, 5, 5}).output("Z", kF32, {1, 3, 5, 5});
  m.initializer("W", w).initializer("B", b);
  auto& conv = m.node("Conv", {"X", "W", "B"}, {"Y"}, "conv");
  set_ints_attr(conv, "pads", {1, 1, 1, 1});
  m.node("Relu", {"Y"}, {"Z"}, "relu");
  return m;
}

TEST(QdqExport, ConvReluStructureValidityAndAccuracy) {
  const Tensor w = random_tensor({3, 2, 3, 3}, 11, -0.5f, 0.5f);
  const Tensor b = random_tensor({3}, 12);
  const ModelBuilder model = conv_relu_model(w, b);
  auto fp32 = import(model);
  auto g = import(model);
  ASSERT_TRUE(fp32 && g);

  const QdqExportReport report = quantize(*g, {{"X", kUnitScale}, {"Y", 0.1f}, {"Z", 0.1f}});
  EXPECT_EQ(report.quantized_nodes, 1);
  EXPECT_EQ(report.excluded_nodes, 0);
  EXPECT_EQ(report.quantized_weights, 1);
  EXPECT_EQ(histogram(*g),
            (passes::testing::Histogram{
                {"QuantizeLinear", 1}, {"DequantizeLinear", 2}, {"Conv", 1}, {"Relu", 1}}));
  EXPECT_EQ(g->opset(), 17);  // already >= 13: unchanged

  // X -> X_QuantizeLinear -> X_DequantizeLinear -> conv, int8 zero point so the Q output is s8.
  const ir::Node* q = node_named(*g, "X_QuantizeLinear");
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(q->op_type, "QuantizeLinear");
  EXPECT_EQ(q->inputs[0]->name, "X");
  EXPECT_EQ(scalar_value(q->inputs[1]), kUnitScale);
  EXPECT_EQ(q->inputs[2]->dtype, DType::kI8);
  EXPECT_EQ(q->outputs[0]->name, "X_quantized");
  EXPECT_EQ(q->outputs[0]->dtype, DType::kI8);
  const ir::Node* dqx = dq_feeding(*g, "conv", 0);
  ASSERT_NE(dqx, nullptr);
  EXPECT_EQ(dqx->name, "X_DequantizeLinear");
  EXPECT_EQ(dqx->inputs[0], q->outputs[0]);
  EXPECT_EQ(dqx->outputs[0]->dtype, DType::kF32);

  // W -> int8 initializer W_quantized -> W_DequantizeLinear (axis 0, 3 scales) -> conv.
  const ir::Node* dqw = dq_feeding(*g, "conv", 1);
  ASSERT_NE(dqw, nullptr);
  EXPECT_EQ(dqw->name, "W_DequantizeLinear");
  EXPECT_EQ(dqw->attrs.get_int("axis", -1), 0);
  const ir::Value* wq = dqw->inputs[0];
  EXPECT_EQ(wq->name, "W_quantized");
  ASSERT_TRUE(wq->is_constant());
  EXPECT_EQ(wq->constant.dtype(), DType::kI8);
  EXPECT_EQ(wq->constant.shape(), Shape({3, 2, 3, 3}));
  ASSERT_TRUE(dqw->inputs[1]->is_constant());
  EXPECT_EQ(dqw->inputs[1]->constant.shape(), Shape({3}));
  EXPECT_EQ(dqw->inputs[2]->constant.shape(), Shape({3}));
  EXPECT_EQ(g->find_value("W"), nullptr) << "the float weight is gone";
  // The bias stays float and untouched.
  const ir::Node* conv = node_named(*g, "conv");
  EXPECT_EQ(conv->inputs[2]->name, "B");
  EXPECT_EQ(conv->inputs[2]->constant.dtype(), DType::kF32);
  // Relu is not a quantized op: it reads the float conv output.
  EXPECT_EQ(node_named(*g, "relu")->inputs[0]->name, "Y");

  const std::string bytes = expect_valid_onnx(*g);

  // Each output within the worst case of an 18-term dot product with both operands quantized.
  const double w_amax = max_abs(w);
  const double bound = dot_error_bound(18, kUnitScale / 2, 1.0, w_amax, w_amax / 127);
  for (uint32_t seed : {1u, 2u, 3u}) {
    const std::vector<Tensor> in = {random_tensor({1, 2, 5, 5}, seed)};
    const std::vector<Tensor> expected = run(*fp32, in);
    const std::vector<Tensor> actual = run(*g, in);
    ASSERT_EQ(actual.size(), 1u);
    expect_close(expected[0], actual[0], bound);
    expect_reimport_runs(bytes, in, actual);
  }
}

TEST(QdqExport, SingleConvEqualsManualFakeQuantization) {
  // X [1,2,4,4] (x scale 0.02), W [2,2,3,3] per output channel, no padding -> Y [1,2,2,2].
  const Tensor w = random_tensor({2, 2, 3, 3}, 21);
  const Tensor b = Tensor::from_vector<float>({2}, {0.25f, -0.5f});
  ModelBuilder m;
  m.input("X", kF32, {1, 2, 4, 4}).output("Y", kF32, {1, 2, 2, 2});
  m.initializer("W", w).initializer("B", b);
  m.node("Conv", {"X", "W", "B"}, {"Y"}, "conv");
  auto g = import(m);
  ASSERT_TRUE(g);
  const float sx = 0.02f;
  quantize(*g, {{"X", sx}});
  expect_valid_onnx(*g);

  const Tensor x = random_tensor({1, 2, 4, 4}, 22);
  const std::vector<Tensor> out = run(*g, {x});
  ASSERT_EQ(out.size(), 1u);

  // Fake quantization by hand: ONNX's float division, round half to even (the default rounding
  // mode of nearbyint), multiplication back.
  auto fq = [](float v, float s) { return std::nearbyint(v / s) * s; };
  std::vector<float> wscale(2);
  for (int c = 0; c < 2; ++c) {
    float amax = 0;
    for (int i = 0; i < 18; ++i) amax = std::max(amax, std::fabs(w.data<float>()[c * 18 + i]));
    wscale[static_cast<size_t>(c)] = amax / 127.0f;
  }
  for (int co = 0; co < 2; ++co) {
    for (int oy = 0; oy < 2; ++oy) {
      for (int ox = 0; ox < 2; ++ox) {
        double acc = b.data<float>()[co];
        for (int ci = 0; ci < 2; ++ci) {
          for (int ky = 0; ky < 3; ++ky) {
            for (int kx = 0; kx < 3; ++kx) {
              const float xv = x.data<float>()[(ci * 4 + oy + ky) * 4 + ox + kx];
              const float wv = w.data<float>()[((co * 2 + ci) * 3 + ky) * 3 + kx];
              acc += static_cast<double>(fq(xv, sx)) *
                     static_cast<double>(fq(wv, wscale[static_cast<size_t>(co)]));
            }
          }
        }
        const float got = out[0].data<float>()[(co * 2 + oy) * 2 + ox];
        EXPECT_NEAR(got, acc, 1e-5) << "co " << co << " y " << oy << " x " << ox;
      }
    }
  }
}

TEST(QdqExport, ConvTransposePerOutputChannelAndGroupedPerTensor) {
  for (int64_t group : {1, 2}) {
    SCOPED_TRACE(group);
    // W is [C_in, C_out / group, kH, kW]: [4, 3, 2, 2] for group 1, [4, 1, 2, 2] for group 2.
    const int64_t per_group = group == 1 ? 3 : 1;
    const Tensor w = random_tensor({4, per_group, 2, 2}, 31);
    ModelBuilder m;
    m.input("X", kF32, {1, 4, 3, 3}).output("Y", kF32, {1, per_group * group, 4, 4});
    m.initializer("W", w);
    auto& ct = m.node("ConvTranspose", {"X", "W"}, {"Y"}, "deconv");
    set_int_attr(ct, "group", group);
    auto fp32 = import(m);
    auto g = import(m);
    ASSERT_TRUE(fp32 && g);
    quantize(*g, {{"X", kUnitScale}});
    const ir::Node* dqw = dq_feeding(*g, "deconv", 1);
    ASSERT_NE(dqw, nullptr);
    if (group == 1) {
      EXPECT_EQ(dqw->attrs.get_int("axis", -1), 1);
      EXPECT_EQ(dqw->inputs[1]->constant.shape(), Shape({3}));
    } else {
      EXPECT_FALSE(dqw->attrs.has("axis"));
      EXPECT_EQ(dqw->inputs[1]->constant.rank(), 0);
    }
    expect_valid_onnx(*g);
    // Each output sums at most C_in/group * kH * kW = 16 / group products.
    const double w_amax = max_abs(w);
    const double bound = dot_error_bound(16 / group, kUnitScale / 2, 1.0, w_amax, w_amax / 127);
    const std::vector<Tensor> in = {random_tensor({1, 4, 3, 3}, 32)};
    expect_close(run(*fp32, in)[0], run(*g, in)[0], bound);
  }
}

// ---- Gemm and MatMul ----------------------------------------------------------------------------

TEST(QdqExport, GemmWeightAxisFollowsTransB) {
  for (int64_t trans_b : {0, 1}) {
    SCOPED_TRACE(trans_b);
    const Tensor w = random_tensor(trans_b ? Shape{3, 4} : Shape{4, 3}, 41);
    ModelBuilder m;
    m.input("A", kF32, {2, 4}).output("Y", kF32, {2, 3});
    m.initializer("Wt", w).initializer("C", random_tensor({3}, 42));
    auto& gemm = m.node("Gemm", {"A", "Wt", "C"}, {"Y"}, "fc");
    set_int_attr(gemm, "transB", trans_b);
    set_float_attr(gemm, "alpha", 1.0f);
    auto fp32 = import(m);
    auto g = import(m);
    ASSERT_TRUE(fp32 && g);
    const QdqExportReport r = quantize(*g, {{"A", kUnitScale}});
    EXPECT_EQ(r.quantized_nodes, 1);
    EXPECT_EQ(r.quantized_weights, 1);
    ASSERT_NE(dq_feeding(*g, "fc", 0), nullptr);
    const ir::Node* dqw = dq_feeding(*g, "fc", 1);
    ASSERT_NE(dqw, nullptr);
    EXPECT_EQ(dqw->attrs.get_int("axis", -1), trans_b ? 0 : 1) << "output dim of B";
    EXPECT_EQ(dqw->inputs[1]->constant.shape(), Shape({3}));
    EXPECT_EQ(node_named(*g, "fc")->inputs[2]->name, "C") << "C stays float";
    expect_valid_onnx(*g);
    const double w_amax = max_abs(w);
    const std::vector<Tensor> in = {random_tensor({2, 4}, 43)};
    expect_close(run(*fp32, in)[0], run(*g, in)[0],
                 dot_error_bound(4, kUnitScale / 2, 1.0, w_amax, w_amax / 127));
  }
}

TEST(QdqExport, MatMulWeightsAndActivations) {
  // X @ W2 (2-D weight: axis 1), X @ W3 (3-D weight: per tensor), X @ Yt (two activations).
  const Tensor w2 = random_tensor({4, 5}, 51);
  const Tensor w3 = random_tensor({2, 4, 5}, 52);
  ModelBuilder m;
  m.input("X", kF32, {2, 3, 4}).input("Yt", kF32, {2, 4, 3});
  m.output("P", kF32, {2, 3, 5}).output("Q", kF32, {2, 3, 5}).output("R", kF32, {2, 3, 3});
  m.initializer("W2", w2).initializer("W3", w3);
  m.node("MatMul", {"X", "W2"}, {"P"}, "mm2");
  m.node("MatMul", {"X", "W3"}, {"Q"}, "mm3");
  m.node("MatMul", {"X", "Yt"}, {"R"}, "mmxy");
  auto fp32 = import(m);
  auto g = import(m);
  ASSERT_TRUE(fp32 && g);
  const QdqExportReport r = quantize(*g, {{"X", kUnitScale}, {"Yt", kUnitScale}});
  EXPECT_EQ(r.quantized_nodes, 3);
  EXPECT_EQ(r.quantized_weights, 2);
  // One Q/DQ pair for X shared by the three MatMuls, one for Yt.
  EXPECT_EQ(histogram(*g)["QuantizeLinear"], 2);
  EXPECT_EQ(dq_feeding(*g, "mm2", 0), dq_feeding(*g, "mm3", 0));
  EXPECT_EQ(dq_feeding(*g, "mm2", 0), dq_feeding(*g, "mmxy", 0));
  ASSERT_NE(dq_feeding(*g, "mmxy", 1), nullptr);
  EXPECT_EQ(dq_feeding(*g, "mmxy", 1)->name, "Yt_DequantizeLinear");
  const ir::Node* dq2 = dq_feeding(*g, "mm2", 1);
  ASSERT_NE(dq2, nullptr);
  EXPECT_EQ(dq2->attrs.get_int("axis", -1), 1);
  EXPECT_EQ(dq2->inputs[1]->constant.shape(), Shape({5}));
  const ir::Node* dq3 = dq_feeding(*g, "mm3", 1);
  ASSERT_NE(dq3, nullptr);
  EXPECT_FALSE(dq3->attrs.has("axis"));
  EXPECT_EQ(dq3->inputs[1]->constant.rank(), 0);
  const std::string bytes = expect_valid_onnx(*g);

  const std::vector<Tensor> in = {random_tensor({2, 3, 4}, 53), random_tensor({2, 4, 3}, 54)};
  const std::vector<Tensor> expected = run(*fp32, in);
  const std::vector<Tensor> actual = run(*g, in);
  ASSERT_EQ(actual.size(), 3u);
  expect_close(expected[0], actual[0],
               dot_error_bound(4, kUnitScale / 2, 1.0, max_abs(w2), max_abs(w2) / 127));
  expect_close(expected[1], actual[1],
               dot_error_bound(4, kUnitScale / 2, 1.0, max_abs(w3), max_abs(w3) / 127));
  expect_close(expected[2], actual[2], dot_error_bound(4, kUnitScale / 2, 1.0, 1.0, kUnitScale));
  expect_reimport_runs(bytes, in, actual);
}

TEST(QdqExport, SharedWeightIsQuantizedOnce) {
  ModelBuilder m;
  m.input("X1", kF32, {2, 4}).input("X2", kF32, {2, 4});
  m.output("Y1", kF32, {2, 3}).output("Y2", kF32, {2, 3});
  m.initializer("W", random_tensor({4, 3}, 61));
  m.node("MatMul", {"X1", "W"}, {"Y1"}, "a");
  m.node("MatMul", {"X2", "W"}, {"Y2"}, "b");
  auto g = import(m);
  ASSERT_TRUE(g);
  const QdqExportReport r = quantize(*g, {{"X1", kUnitScale}, {"X2", kUnitScale}});
  EXPECT_EQ(r.quantized_weights, 1);
  ASSERT_NE(dq_feeding(*g, "a", 1), nullptr);
  EXPECT_EQ(dq_feeding(*g, "a", 1), dq_feeding(*g, "b", 1));
  expect_valid_onnx(*g);
}

TEST(QdqExport, WeightsComputedFromConstantsAreFolded) {
  // W = Transpose(Wt) and a Constant node's weight: neither is an initializer, neither depends
  // on the input, so both become int8 initializers and the nodes computing them go away.
  const Tensor wt = random_tensor({5, 4}, 71);
  const Tensor wc = random_tensor({5, 2}, 72);
  ModelBuilder m;
  m.input("X", kF32, {3, 4}).output("Y", kF32, {3, 2});
  m.initializer("Wt", wt);
  m.node("Transpose", {"Wt"}, {"W"}, "transpose");
  auto& c = m.node("Constant", {}, {"Wc"}, "const");
  auto* a = c.add_attribute();
  a->set_name("value");
  a->set_type(onnx::AttributeProto::TENSOR);
  onnx_io::tensor_to_proto(wc, "", a->mutable_t());
  m.node("MatMul", {"X", "W"}, {"H"}, "mm1");
  m.node("MatMul", {"H", "Wc"}, {"Y"}, "mm2");
  auto fp32 = import(m);
  auto g = import(m);
  ASSERT_TRUE(fp32 && g);
  const QdqExportReport r = quantize(*g, {{"X", kUnitScale}, {"H", 0.05f}});
  EXPECT_EQ(r.quantized_weights, 2);
  EXPECT_EQ(node_named(*g, "transpose"), nullptr);
  EXPECT_EQ(node_named(*g, "const"), nullptr);
  const ir::Node* dq = dq_feeding(*g, "mm1", 1);
  ASSERT_NE(dq, nullptr);
  EXPECT_EQ(dq->inputs[0]->name, "W_quantized");
  EXPECT_EQ(dq->inputs[0]->constant.shape(), Shape({4, 5}));
  // W[k][n] = Wt[n][k]; check one column's int8 values against the per-column scale.
  float amax = 0;
  for (int k = 0; k < 4; ++k) amax = std::max(amax, std::fabs(wt.data<float>()[2 * 4 + k]));
  for (int k = 0; k < 4; ++k) {
    const float v = wt.data<float>()[2 * 4 + k];
    EXPECT_EQ(dq->inputs[0]->constant.data<int8_t>()[k * 5 + 2],
              static_cast<int8_t>(std::nearbyint(v / (amax / 127.0f))));
  }
  expect_valid_onnx(*g);
  const std::vector<Tensor> in = {random_tensor({3, 4}, 73)};
  const Tensor expected = run(*fp32, in)[0];
  const Tensor actual = run(*g, in)[0];
  // H is off by at most e1 = dot(4) and bounded by 4 * max|Wt|; then quantized with step 0.05.
  const double e1 = dot_error_bound(4, kUnitScale / 2, 1.0, max_abs(wt), max_abs(wt) / 127);
  const double h_amax = 4 * max_abs(wt) + e1;
  ASSERT_LT(h_amax, 127 * 0.05) << "the test's H scale must not clip";
  expect_close(expected, actual,
               dot_error_bound(5, e1 + 0.05 / 2, h_amax, max_abs(wc), max_abs(wc) / 127));
}

// ---- residual block, exclusion, errors ----------------------------------------------------------

// X -> c1 (Conv) -> R1 (Relu) -> c2 (Conv) -> C2; Add(C2, X) -> S -> Relu -> Y.
ModelBuilder residual_model(const Tensor& w1, const Tensor& w2) {
  ModelBuilder m;
  m.input("X", kF32, {1, 4, 5, 5}).output("Y", kF32, {1, 4, 5, 5});
  m.initializer("W1", w1).initializer("W2", w2);
  set_ints_attr(m.node("Conv", {"X", "W1"}, {"C1"}, "c1"), "pads", {1, 1, 1, 1});
  m.node("Relu", {"C1"}, {"R1"}, "r1");
  set_ints_attr(m.node("Conv", {"R1", "W2"}, {"C2"}, "c2"), "pads", {1, 1, 1, 1});
  m.node("Add", {"C2", "X"}, {"S"}, "add");
  m.node("Relu", {"S"}, {"Y"}, "out");
  return m;
}

TEST(QdqExport, ResidualBlockQuantizesBothAddInputs) {
  const Tensor w1 = random_tensor({4, 4, 3, 3}, 81, -0.3f, 0.3f);
  const Tensor w2 = random_tensor({4, 4, 3, 3}, 82, -0.3f, 0.3f);
  const ModelBuilder model = residual_model(w1, w2);
  auto fp32 = import(model);
  auto g = import(model);
  ASSERT_TRUE(fp32 && g);

  // Scales that cannot clip: |C1| <= K * max|W1| (|x^| <= 1), |C2| <= K * max|W2| * A1.
  const int64_t k = 36;
  const double wa1 = max_abs(w1), wa2 = max_abs(w2);
  const double a1 = static_cast<double>(k) * wa1;
  const double a2 = static_cast<double>(k) * wa2 * a1;
  const auto s1 = static_cast<float>(a1 / 127), s2 = static_cast<float>(a2 / 127);
  const QdqExportReport r = quantize(*g, {{"X", kUnitScale}, {"R1", s1}, {"C2", s2}});
  EXPECT_EQ(r.quantized_nodes, 3);
  EXPECT_EQ(r.quantized_weights, 2);
  EXPECT_EQ(histogram(*g)["QuantizeLinear"], 3);
  EXPECT_EQ(histogram(*g)["DequantizeLinear"], 5);
  // X has one Q/DQ pair, shared by c1 and the Add; the Add's other input is C2's pair.
  const ir::Node* dqx = dq_feeding(*g, "c1", 0);
  ASSERT_NE(dqx, nullptr);
  EXPECT_EQ(dq_feeding(*g, "add", 1), dqx);
  const ir::Node* dqc2 = dq_feeding(*g, "add", 0);
  ASSERT_NE(dqc2, nullptr);
  EXPECT_EQ(dqc2->name, "C2_DequantizeLinear");
  EXPECT_EQ(dq_feeding(*g, "c2", 0)->name, "R1_DequantizeLinear");
  EXPECT_EQ(node_named(*g, "out")->inputs[0]->name, "S");
  const std::string bytes = expect_valid_onnx(*g);

  // Error chain: C1 off by e1; R1^ off by e1 + s1/2 and bounded by a1; C2 off by e2; the Add's
  // inputs add s2/2 and sx/2.
  const double e1 = dot_error_bound(k, kUnitScale / 2, 1.0, wa1, wa1 / 127);
  const double e2 = dot_error_bound(k, e1 + s1 / 2.0, a1, wa2, wa2 / 127);
  const double bound = e2 + s2 / 2.0 + kUnitScale / 2.0;
  for (uint32_t seed : {5u, 6u}) {
    const std::vector<Tensor> in = {random_tensor({1, 4, 5, 5}, seed)};
    const std::vector<Tensor> actual = run(*g, in);
    expect_close(run(*fp32, in)[0], actual[0], bound);
    expect_reimport_runs(bytes, in, actual);
  }
}

TEST(QdqExport, ExcludeByNodeName) {
  auto g = import(residual_model(random_tensor({4, 4, 3, 3}, 91), random_tensor({4, 4, 3, 3}, 92)));
  ASSERT_TRUE(g);
  // c2 stays float, so R1 needs no scale.
  const QdqExportReport r = quantize(*g, {{"X", kUnitScale}, {"C2", 0.1f}}, {"c2"});
  EXPECT_EQ(r.quantized_nodes, 2);
  EXPECT_EQ(r.excluded_nodes, 1);
  EXPECT_EQ(r.quantized_weights, 1);
  const ir::Node* c2 = node_named(*g, "c2");
  EXPECT_EQ(c2->inputs[0]->name, "R1");
  EXPECT_EQ(c2->inputs[1]->name, "W2");
  EXPECT_EQ(c2->inputs[1]->constant.dtype(), DType::kF32);
  EXPECT_NE(dq_feeding(*g, "c1", 1), nullptr);
  EXPECT_NE(dq_feeding(*g, "add", 0), nullptr);
  expect_valid_onnx(*g);
}

TEST(QdqExport, ExcludeByOpType) {
  auto g = import(residual_model(random_tensor({4, 4, 3, 3}, 93), random_tensor({4, 4, 3, 3}, 94)));
  ASSERT_TRUE(g);
  const QdqExportReport r = quantize(*g, {{"X", kUnitScale}, {"C2", 0.1f}}, {"Conv"});
  EXPECT_EQ(r.quantized_nodes, 1);  // the Add
  EXPECT_EQ(r.excluded_nodes, 2);
  EXPECT_EQ(r.quantized_weights, 0);
  EXPECT_EQ(histogram(*g)["QuantizeLinear"], 2);
  EXPECT_EQ(dq_feeding(*g, "c1", 0), nullptr);
  EXPECT_NE(dq_feeding(*g, "add", 0), nullptr);
  EXPECT_NE(dq_feeding(*g, "add", 1), nullptr);
  expect_valid_onnx(*g);

  auto g2 =
      import(residual_model(random_tensor({4, 4, 3, 3}, 93), random_tensor({4, 4, 3, 3}, 94)));
  const QdqExportReport r2 = quantize(*g2, {{"X", kUnitScale}, {"R1", 0.1f}}, {"Add"});
  EXPECT_EQ(r2.quantized_nodes, 2);
  EXPECT_EQ(r2.excluded_nodes, 1);
  EXPECT_EQ(node_named(*g2, "add")->inputs[0]->name, "C2");
  EXPECT_EQ(node_named(*g2, "add")->inputs[1]->name, "X");
}

TEST(QdqExport, MissingScaleNamesTensorAndNodeAndLeavesGraphAlone) {
  auto g = import(residual_model(random_tensor({4, 4, 3, 3}, 95), random_tensor({4, 4, 3, 3}, 96)));
  ASSERT_TRUE(g);
  const std::string before = passes::testing::dump(*g);
  QdqExportOptions options;
  options.activation_scales = {{"X", kUnitScale}, {"C2", 0.1f}};  // R1 missing
  auto r = insert_qdq(*g, options);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidInput);
  EXPECT_NE(r.status().message().find("'R1'"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("node 'c2' (Conv)"), std::string::npos)
      << r.status().message();
  EXPECT_EQ(passes::testing::dump(*g), before);
  EXPECT_NE(g->find_value("W1"), nullptr);

  options.activation_scales = {};
  auto all = insert_qdq(*g, options);
  ASSERT_FALSE(all.ok());
  EXPECT_NE(all.status().message().find("2 more tensors"), std::string::npos)
      << all.status().message();
}

TEST(QdqExport, RejectsBadScalesAndOptions) {
  auto g = import(conv_relu_model(random_tensor({3, 2, 3, 3}, 1), random_tensor({3}, 2)));
  ASSERT_TRUE(g);
  QdqExportOptions options;
  options.activation_scales = {{"X", -0.5f}};
  auto negative = insert_qdq(*g, options);
  ASSERT_FALSE(negative.ok());
  EXPECT_EQ(negative.status().code(), StatusCode::kInvalidInput);
  EXPECT_NE(negative.status().message().find("'X'"), std::string::npos);
  options.activation_scales = {{"X", NAN}};
  EXPECT_FALSE(insert_qdq(*g, options).ok());
  options.activation_scales = {{"X", kUnitScale}};
  options.opset = 12;
  auto old = insert_qdq(*g, options);
  ASSERT_FALSE(old.ok());
  EXPECT_EQ(old.status().code(), StatusCode::kUsage);
  EXPECT_EQ(histogram(*g)["QuantizeLinear"], 0);
}

TEST(QdqExport, ZeroScaleBecomesOne) {
  auto g = import(conv_relu_model(random_tensor({3, 2, 3, 3}, 1), random_tensor({3}, 2)));
  ASSERT_TRUE(g);
  quantize(*g, {{"X", 0.0f}});
  EXPECT_EQ(scalar_value(node_named(*g, "X_QuantizeLinear")->inputs[1]), 1.0f);
  expect_valid_onnx(*g);
}

TEST(QdqExport, RejectsAlreadyQuantizedModel) {
  auto g = import(conv_relu_model(random_tensor({3, 2, 3, 3}, 1), random_tensor({3}, 2)));
  ASSERT_TRUE(g);
  quantize(*g, {{"X", kUnitScale}});
  QdqExportOptions options;
  options.activation_scales = {{"X", kUnitScale}};
  auto again = insert_qdq(*g, options);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), StatusCode::kUnsupported);
}

TEST(QdqExport, NewNamesAvoidExistingOnes) {
  // The model already uses X_quantized (a tensor) and X_QuantizeLinear (a node).
  ModelBuilder m;
  m.input("X", kF32, {1, 2, 5, 5}).output("Y", kF32, {1, 3, 5, 5});
  m.initializer("W", random_tensor({3, 2, 1, 1}, 3));
  m.node("Relu", {"X"}, {"X_quantized"}, "X_QuantizeLinear");
  m.node("Conv", {"X_quantized", "W"}, {"Y"}, "conv");
  auto g = import(m);
  ASSERT_TRUE(g);
  quantize(*g, {{"X_quantized", kUnitScale}});
  const ir::Node* dq = dq_feeding(*g, "conv", 0);
  ASSERT_NE(dq, nullptr);
  const ir::Node* q = dq->inputs[0]->producer;
  EXPECT_EQ(q->name, "X_quantized_QuantizeLinear");
  EXPECT_EQ(q->outputs[0]->name, "X_quantized_quantized");
  std::set<std::string> names;
  for (const auto& n : g->nodes()) EXPECT_TRUE(names.insert(n->name).second) << n->name;
  expect_valid_onnx(*g);
}

// ---- opset
// ----------------------------------------------------------------------------------------

TEST(QdqExport, RaisesOpset11ModelTo13) {
  // Squeeze-11 (axes attribute), Dropout-11 (ratio attribute) and Softmax-11 over a 2-D input
  // all mean the same at opset 13 once written in their opset-13 forms.
  const Tensor w = random_tensor({3, 4}, 101);
  ModelBuilder m(11);
  m.input("X", kF32, {2, 4, 1}).output("Y", kF32, {2, 3});
  m.initializer("W", w).initializer("C", random_tensor({3}, 102));
  set_ints_attr(m.node("Squeeze", {"X"}, {"Xs"}, "squeeze"), "axes", {2});
  auto& gemm = m.node("Gemm", {"Xs", "W", "C"}, {"G"}, "fc");
  set_int_attr(gemm, "transB", 1);
  set_float_attr(m.node("Dropout", {"G"}, {"D"}, "dropout"), "ratio", 0.25f);
  m.node("Softmax", {"D"}, {"Y"}, "softmax");
  auto fp32 = import(m);
  auto g = import(m);
  ASSERT_TRUE(fp32 && g);
  quantize(*g, {{"Xs", kUnitScale}});
  EXPECT_EQ(g->opset(), 13);
  for (const auto& n : g->nodes()) EXPECT_EQ(n->opset, 13) << n->label();
  const ir::Node* softmax = node_named(*g, "softmax");
  EXPECT_EQ(softmax->attrs.get_int("axis", -1), 1);
  const ir::Node* dropout = node_named(*g, "dropout");
  EXPECT_FALSE(dropout->attrs.has("ratio"));
  ASSERT_TRUE(dropout->has_input(1));
  EXPECT_EQ(scalar_value(dropout->inputs[1]), 0.25f);
  const std::string bytes = expect_valid_onnx(*g);
  // Softmax's Jacobian has infinity norm <= 1/2, so the Gemm's bound covers the output.
  const std::vector<Tensor> in = {random_tensor({2, 4, 1}, 103)};
  const std::vector<Tensor> actual = run(*g, in);
  expect_close(run(*fp32, in)[0], actual[0],
               dot_error_bound(4, kUnitScale / 2, 1.0, max_abs(w), max_abs(w) / 127));
  expect_reimport_runs(bytes, in, actual);
}

TEST(QdqExport, RefusesOpsetRaiseThatChangesSoftmax) {
  // Softmax-11 with axis 1 on [1, 3, 5, 5] normalises over 75 values; Softmax-13 over 3.
  ModelBuilder m(11);
  m.input("X", kF32, {1, 2, 5, 5}).output("Y", kF32, {1, 3, 5, 5});
  m.initializer("W", random_tensor({3, 2, 1, 1}, 111));
  m.node("Conv", {"X", "W"}, {"C"}, "conv");
  m.node("Softmax", {"C"}, {"Y"}, "softmax");
  auto g = import(m);
  ASSERT_TRUE(g);
  const std::string before = passes::testing::dump(*g);
  QdqExportOptions options;
  options.activation_scales = {{"X", kUnitScale}};
  auto r = insert_qdq(*g, options);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(r.status().message().find("node 'softmax' (Softmax)"), std::string::npos)
      << r.status().message();
  EXPECT_NE(r.status().message().find("re-export"), std::string::npos);
  EXPECT_EQ(g->opset(), 11);
  EXPECT_EQ(passes::testing::dump(*g), before);
}

TEST(QdqExport, RefusesOpsetRaiseForInvalidNodeForms) {
  // Resize-10 has no opset-13 equivalent of its nearest rounding.
  ModelBuilder m(10);
  m.input("X", kF32, {1, 2, 3, 3}).output("Y", kF32, {1, 3, 6, 6});
  m.initializer("W", random_tensor({3, 2, 1, 1}, 121));
  m.initializer("S", Tensor::from_vector<float>({4}, {1, 1, 2, 2}));
  m.node("Conv", {"X", "W"}, {"C"}, "conv");
  m.node("Resize", {"C", "S"}, {"Y"}, "resize");
  auto g = import(m);
  ASSERT_TRUE(g);
  QdqExportOptions options;
  options.activation_scales = {{"X", kUnitScale}};
  auto r = insert_qdq(*g, options);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(r.status().message().find("node 'resize' (Resize)"), std::string::npos)
      << r.status().message();
}

TEST(QdqExport, NeverWritesNodesOnnxRejects) {
  // The importer turns ReduceMean's `axes` attribute into an input, which ONNX allows only from
  // opset 18; the exporter must write it back as an attribute at opset 13, and the Q/DQ model
  // built on such a graph must pass the checker.
  ModelBuilder m(13);
  m.input("X", kF32, {2, 4}).output("Y", kF32, {2, 1});
  m.initializer("W", random_tensor({4, 4}, 131));
  m.node("MatMul", {"X", "W"}, {"H"}, "mm");
  set_ints_attr(m.node("ReduceMean", {"H"}, {"Y"}, "mean"), "axes", {1});
  auto g = import(m);
  ASSERT_TRUE(g);
  expect_valid_onnx(*g);
  QdqExportOptions options;
  options.activation_scales = {{"X", kUnitScale}};
  auto r = insert_qdq(*g, options);
  ASSERT_TRUE(r.ok()) << r.status().message();
  expect_valid_onnx(*g);
}

}  // namespace
}  // namespace qf::quant
