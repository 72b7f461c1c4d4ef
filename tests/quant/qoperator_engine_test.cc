// QOperator models on the cpu INT8 engine: QLinearConv rewritten to Q/DQ form
// (quant/qoperator_to_qdq.h), folded, and run in int8.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "backends/cpu/cpu_test_util.h"

namespace qf::quant {
namespace {

using onnx::TensorProto;
using qf::testing::ModelBuilder;

// ONNX Runtime's QOperator form around a float model: QuantizeLinear -> QLinearConv (uint8
// activations with zero point 0, per-channel int8 weights) -> DequantizeLinear. The cpu INT8
// engine rewrites it, runs the convolution in int8 and stays within one output step of the
// QLinearConv reference kernel.
TEST(QoperatorToQdqTest, CpuInt8EngineRunsQLinearConvInInt8) {
  QF_REQUIRE_CPU_BACKEND();
  if (!qf::testing::cpu_backend()->supports(runtime::Precision::kINT8)) GTEST_SKIP();
  std::mt19937 rng(31);
  ModelBuilder b(13);
  b.input("x", TensorProto::FLOAT, {1, 5, 11, 9});
  b.initializer("xs", Tensor::from_vector<float>({}, {0.01f}));
  b.initializer("z8", Tensor(DType::kU8, {}));
  Tensor w(DType::kI8, {7, 5, 3, 3});
  std::uniform_int_distribution<int> q(-127, 127);
  for (int8_t& v : w.span<int8_t>()) v = static_cast<int8_t>(q(rng));
  b.initializer("w", w);
  b.initializer("ws", qf::testing::random_tensor({7}, 32, 0.002f, 0.006f));
  b.initializer("wz", Tensor(DType::kI8, {7}));
  b.initializer("ys", Tensor::from_vector<float>({}, {0.05f}));
  b.node("QuantizeLinear", {"x", "xs", "z8"}, {"xq"});
  b.node("QLinearConv", {"xq", "xs", "z8", "w", "ws", "wz", "ys", "z8"}, {"yq"}, "qconv");
  b.node("DequantizeLinear", {"yq", "ys", "z8"}, {"y"});
  b.output("y", TensorProto::FLOAT, {1, 7, 9, 7});
  const std::vector<Tensor> inputs = {qf::testing::random_tensor({1, 5, 11, 9}, 33, 0.f, 2.5f)};

  auto engine = qf::testing::run_on(b.serialize(), "cpu", runtime::Precision::kINT8, inputs);
  ASSERT_TRUE(engine.ok()) << engine.status().message();
  // The rewritten convolution keeps the QLinearConv's name in its own.
  std::string conv_kernel;
  for (const runtime::KernelInfo& k : engine->info.kernels) {
    if (k.op.starts_with("Conv")) conv_kernel = k.node + ": " + k.impl;
  }
  EXPECT_NE(conv_kernel.find("qconv"), std::string::npos) << conv_kernel;
  EXPECT_NE(conv_kernel.find("u8s8_s32_"), std::string::npos) << conv_kernel;
  auto reference =
      qf::testing::run_on(b.serialize(), "reference", runtime::Precision::kFP32, inputs);
  ASSERT_TRUE(reference.ok()) << reference.status().message();
  // In steps of the output scale: the engine accumulates exactly as QLinearConv does, but
  // requantizes in float after adding the bias.
  const Tensor& got = engine->outputs[0];
  const Tensor& want = reference->outputs[0];
  ASSERT_EQ(got.shape(), want.shape());
  for (int64_t i = 0; i < got.numel(); ++i) {
    ASSERT_LE(std::abs(got.data<float>()[i] - want.data<float>()[i]), 0.05f * 1.001f) << i;
  }
}

}  // namespace
}  // namespace qf::quant
