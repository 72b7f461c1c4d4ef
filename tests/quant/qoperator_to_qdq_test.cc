// QOperator -> Q/DQ rewrite: the structure it writes, outputs equal to the QLinear kernels'
// within one quantization step, and the nodes and graphs it must leave alone.
#include "quant/qoperator_to_qdq.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "backends/reference/executor.h"
#include "onnx/exporter.h"
#include "onnx/importer.h"
#include "testing/model_builder.h"
#include "testing/quant_test_util.h"

namespace qf::quant {
namespace {

using onnx::TensorProto;
using qf::testing::count_op;
using qf::testing::ModelBuilder;
using qf::testing::only;
using qf::testing::random_floats;
using qf::testing::random_q;
using qf::testing::random_zero_points;
using qf::testing::set_int_attr;
using qf::testing::set_ints_attr;

template <typename T>
Tensor scalar(T v) {
  return Tensor::from_vector<T>({}, {v});
}

std::unique_ptr<ir::Graph> import(const ModelBuilder& b) {
  auto m = onnx_io::import_model_bytes(b.serialize(), "t.onnx");
  if (!m.ok()) {
    ADD_FAILURE() << m.status().message();
    return nullptr;
  }
  return std::move(m->graph);
}

std::vector<Tensor> run(const ir::Graph& g, const std::vector<Tensor>& inputs) {
  auto e = reference::Executor::create(g);
  if (!e.ok()) {
    ADD_FAILURE() << e.status().message();
    return {};
  }
  auto out = e->run(inputs);
  if (!out.ok()) {
    ADD_FAILURE() << out.status().message();
    return {};
  }
  return *out;
}

int rewrite(ir::Graph& g) {
  auto r = qoperator_to_qdq(g);
  EXPECT_TRUE(r.ok()) << r.status().message();
  return r.ok() ? *r : -1;
}

// The Q/DQ form accumulates dequantized values in float, QLinear exactly in int32: values within
// float error of a rounding boundary may round either way, so one step apart is allowed.
void expect_within_one_step(const Tensor& got, const Tensor& want) {
  ASSERT_EQ(got.dtype(), want.dtype());
  ASSERT_EQ(got.shape(), want.shape());
  int differing = 0;
  for (int64_t i = 0; i < got.numel(); ++i) {
    const double d = std::abs(got.element_as_double(i) - want.element_as_double(i));
    ASSERT_LE(d, 1.0) << "element " << i;
    differing += d != 0.0 ? 1 : 0;
  }
  EXPECT_LE(differing * 100, got.numel()) << differing << " of " << got.numel() << " differ";
}

// QLinearConv with 6 input channels in 2 groups, 8 output channels with per-channel scales and
// zero points, stride 2, padding and a bias; its output is a graph output and is read by a
// DequantizeLinear that must keep reading it.
ModelBuilder conv_model(std::mt19937& rng, int opset, bool per_channel) {
  ModelBuilder b(opset);
  b.input("x", TensorProto::UINT8, {2, 6, 9, 7});
  const Shape param = per_channel ? Shape{8} : Shape{};
  b.initializer("xs", scalar(0.02f));
  b.initializer("xz", scalar<uint8_t>(120));
  b.initializer("w", random_q(DType::kI8, {8, 3, 3, 3}, rng));
  b.initializer("ws", random_floats(param, 0.004f, 0.01f, rng));
  b.initializer("wz", random_zero_points(DType::kI8, param, rng));
  b.initializer("ys", scalar(0.35f));
  b.initializer("yz", scalar<uint8_t>(131));
  Tensor bias(DType::kI32, {8});
  std::uniform_int_distribution<int32_t> d(-20000, 20000);
  for (int32_t& v : bias.span<int32_t>()) v = d(rng);
  b.initializer("bias", bias);
  auto& n =
      b.node("QLinearConv", {"x", "xs", "xz", "w", "ws", "wz", "ys", "yz", "bias"}, {"y"}, "qconv");
  set_int_attr(n, "group", 2);
  set_ints_attr(n, "strides", {2, 2});
  set_ints_attr(n, "pads", {1, 1, 1, 1});
  b.node("DequantizeLinear", {"y", "ys", "yz"}, {"y_real"}, "reader");
  b.output("y", TensorProto::UINT8, {2, 8, 5, 4});
  b.output("y_real", TensorProto::FLOAT, {2, 8, 5, 4});
  return b;
}

TEST(QoperatorToQdqTest, QLinearConvBecomesDequantizeConvQuantize) {
  std::mt19937 rng(3);
  const ModelBuilder b = conv_model(rng, 13, true);
  auto original = import(b);
  auto g = import(b);
  ASSERT_TRUE(original && g);
  EXPECT_EQ(rewrite(*g), 1);

  EXPECT_EQ(count_op(*g, "QLinearConv"), 0);
  EXPECT_EQ(count_op(*g, "DequantizeLinear"), 4);  // x, w, bias and the reader
  const ir::Node* conv = only(*g, "Conv");
  const ir::Node* q = only(*g, "QuantizeLinear");
  ASSERT_TRUE(conv && q);
  EXPECT_EQ(conv->attrs.get_int("group", 1), 2);
  EXPECT_EQ(conv->attrs.get_ints("strides"), (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(conv->attrs.get_ints("pads"), (std::vector<int64_t>{1, 1, 1, 1}));

  // The output keeps its value: a graph output, read by the same reader, now written by Q.
  const ir::Value* y = g->find_value("y");
  ASSERT_NE(y, nullptr);
  EXPECT_EQ(y->producer, q);
  EXPECT_EQ(y->dtype, DType::kU8);
  ASSERT_EQ(g->outputs.size(), 2u);
  EXPECT_EQ(g->outputs[0], y);
  EXPECT_EQ(g->outputs[1]->name, "y_real");
  ASSERT_EQ(y->consumers.size(), 1u);
  EXPECT_EQ(y->consumers[0]->name, "reader");
  EXPECT_EQ(q->inputs[0], conv->outputs[0]);
  EXPECT_EQ(q->inputs[1]->name, "ys");
  EXPECT_EQ(q->inputs[2]->name, "yz");

  ASSERT_EQ(conv->inputs.size(), 3u);
  const ir::Node* dq_x = conv->inputs[0]->producer;
  const ir::Node* dq_w = conv->inputs[1]->producer;
  const ir::Node* dq_b = conv->inputs[2]->producer;
  ASSERT_TRUE(dq_x && dq_w && dq_b);
  for (const ir::Node* dq : {dq_x, dq_w, dq_b}) EXPECT_EQ(dq->op_type, "DequantizeLinear");
  EXPECT_EQ(dq_x->inputs[0]->name, "x");
  EXPECT_FALSE(dq_x->attrs.has("axis"));
  EXPECT_EQ(dq_w->inputs[0]->name, "w");
  EXPECT_EQ(dq_w->inputs[1]->name, "ws");
  EXPECT_EQ(dq_w->attrs.get_int("axis", -1), 0);
  EXPECT_EQ(dq_b->inputs[0]->name, "bias");
  EXPECT_EQ(dq_b->attrs.get_int("axis", -1), 0);
  // Bias scale: x_scale * w_scale[c] in float32; zero point: int32 zeros of the same shape.
  const Tensor& ws = g->find_value("ws")->constant;
  const Tensor& bias_scale = dq_b->inputs[1]->constant;
  const Tensor& bias_zp = dq_b->inputs[2]->constant;
  ASSERT_EQ(bias_scale.shape(), (Shape{8}));
  ASSERT_EQ(bias_zp.shape(), (Shape{8}));
  ASSERT_EQ(bias_zp.dtype(), DType::kI32);
  for (int64_t c = 0; c < 8; ++c) {
    EXPECT_EQ(bias_scale.data<float>()[c], 0.02f * ws.data<float>()[c]) << c;
    EXPECT_EQ(bias_zp.data<int32_t>()[c], 0);
  }

  for (int trial = 0; trial < 3; ++trial) {
    const Tensor x = random_q(DType::kU8, {2, 6, 9, 7}, rng);
    const std::vector<Tensor> want = run(*original, {x});
    const std::vector<Tensor> got = run(*g, {x});
    ASSERT_EQ(got.size(), 2u);
    ASSERT_EQ(want.size(), 2u);
    expect_within_one_step(got[0], want[0]);
  }
}

struct MatMulCase {
  Shape a, b, a_scale, b_scale;
  int64_t a_axis, b_axis;  // -1: per tensor (no axis)
};

TEST(QoperatorToQdqTest, QLinearMatMulBecomesDequantizeMatMulQuantize) {
  std::mt19937 rng(11);
  const std::vector<MatMulCase> cases = {
      {{7, 13}, {13, 5}, {}, {}, -1, -1},
      {{3, 5, 17}, {17, 6}, {5}, {6}, 1, 1},
      {{2, 4, 9}, {2, 9, 3}, {1}, {3}, -1, 2},
  };
  for (const MatMulCase& c : cases) {
    ModelBuilder b(13);
    b.input("a", TensorProto::INT8, c.a);
    b.initializer("as", random_floats(c.a_scale, 0.01f, 0.03f, rng));
    b.initializer("az", random_zero_points(DType::kI8, c.a_scale, rng));
    b.initializer("b", random_q(DType::kU8, c.b, rng));
    b.initializer("bs", random_floats(c.b_scale, 0.002f, 0.01f, rng));
    b.initializer("bz", random_zero_points(DType::kU8, c.b_scale, rng));
    b.initializer("ys", scalar(0.1f));
    b.initializer("yz", scalar<int8_t>(-7));
    b.node("QLinearMatMul", {"a", "as", "az", "b", "bs", "bz", "ys", "yz"}, {"y"});
    b.proto().mutable_graph()->add_output()->set_name("y");
    auto original = import(b);
    auto g = import(b);
    ASSERT_TRUE(original && g);
    EXPECT_EQ(rewrite(*g), 1);
    EXPECT_EQ(count_op(*g, "QLinearMatMul"), 0);
    const ir::Node* mm = only(*g, "MatMul");
    ASSERT_NE(mm, nullptr);
    const ir::Node* dq_a = mm->inputs[0]->producer;
    const ir::Node* dq_b = mm->inputs[1]->producer;
    ASSERT_TRUE(dq_a && dq_b);
    EXPECT_EQ(dq_a->inputs[0]->name, "a");
    EXPECT_EQ(dq_b->inputs[0]->name, "b");
    EXPECT_EQ(dq_a->attrs.get_int("axis", -1), c.a_axis);
    EXPECT_EQ(dq_b->attrs.get_int("axis", -1), c.b_axis);
    EXPECT_EQ(g->find_value("y")->producer, only(*g, "QuantizeLinear"));
    EXPECT_EQ(g->outputs.at(0)->name, "y");

    // Sums of about sqrt(K) * 74 * 74 * as * bs: a few tens of steps of 0.1.
    const Tensor a = random_q(DType::kI8, c.a, rng);
    const std::vector<Tensor> want = run(*original, {a});
    const std::vector<Tensor> got = run(*g, {a});
    ASSERT_EQ(got.size(), 1u);
    ASSERT_EQ(want.size(), 1u);
    expect_within_one_step(got[0], want[0]);
  }
}

TEST(QoperatorToQdqTest, GraphWithoutQOperatorNodesIsUnchanged) {
  ModelBuilder b(13);
  b.input("x", TensorProto::FLOAT, {1, 3, 8, 8});
  b.initializer("w", Tensor(DType::kF32, {4, 3, 3, 3}));
  b.initializer("s", scalar(0.1f));
  b.initializer("z", scalar<int8_t>(0));
  b.node("QuantizeLinear", {"x", "s", "z"}, {"q"});
  b.node("DequantizeLinear", {"q", "s", "z"}, {"dq"});
  b.node("Conv", {"dq", "w"}, {"c"});
  b.node("Relu", {"c"}, {"y"});
  b.output("y", TensorProto::FLOAT, {1, 4, 6, 6});
  auto g = import(b);
  ASSERT_TRUE(g);
  auto before = onnx_io::export_model_bytes(*g);
  ASSERT_TRUE(before.ok()) << before.status().message();
  const size_t values = g->num_values();
  EXPECT_EQ(rewrite(*g), 0);
  auto after = onnx_io::export_model_bytes(*g);
  ASSERT_TRUE(after.ok()) << after.status().message();
  EXPECT_EQ(*after, *before);
  EXPECT_EQ(g->num_values(), values);
}

TEST(QoperatorToQdqTest, NodesItCannotExpressAreLeftAsTheyAre) {
  std::mt19937 rng(5);
  {
    // A scale computed at run time: not a constant.
    ModelBuilder b = conv_model(rng, 13, false);
    b.proto().mutable_graph()->mutable_initializer(0)->set_name("unused");
    b.input("xs", TensorProto::FLOAT, {});
    auto g = import(b);
    ASSERT_TRUE(g);
    EXPECT_EQ(rewrite(*g), 0);
    EXPECT_EQ(count_op(*g, "QLinearConv"), 1);
  }
  {
    // Per-channel weights need DequantizeLinear's axis (opset 13); per tensor works at 10.
    auto per_channel = import(conv_model(rng, 10, true));
    ASSERT_TRUE(per_channel);
    EXPECT_EQ(rewrite(*per_channel), 0);
    EXPECT_EQ(count_op(*per_channel, "QLinearConv"), 1);
    auto per_tensor = import(conv_model(rng, 10, false));
    ASSERT_TRUE(per_tensor);
    EXPECT_EQ(rewrite(*per_tensor), 1);
    EXPECT_EQ(count_op(*per_tensor, "Conv"), 1);
  }
  {
    // An N-D per-row scale of a ([batch, M, 1]) has no DequantizeLinear axis.
    ModelBuilder b(13);
    b.input("a", TensorProto::UINT8, {2, 5, 3});
    b.initializer("as", random_floats({2, 5, 1}, 0.01f, 0.02f, rng));
    b.initializer("az", random_q(DType::kU8, {2, 5, 1}, rng));
    b.initializer("b", random_q(DType::kU8, {3, 4}, rng));
    b.initializer("bs", scalar(0.01f));
    b.initializer("bz", scalar<uint8_t>(128));
    b.initializer("ys", scalar(0.5f));
    b.initializer("yz", scalar<uint8_t>(128));
    b.node("QLinearMatMul", {"a", "as", "az", "b", "bs", "bz", "ys", "yz"}, {"y"});
    b.proto().mutable_graph()->add_output()->set_name("y");
    auto g = import(b);
    ASSERT_TRUE(g);
    EXPECT_EQ(rewrite(*g), 0);
    EXPECT_EQ(count_op(*g, "QLinearMatMul"), 1);
  }
}

}  // namespace
}  // namespace qf::quant
