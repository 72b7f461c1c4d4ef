// INT8 on the cpu backend: u8/s8 activations with per-tensor scales, s8 weights with
// per-output-channel scales. Scales come from the reference run itself (max |value| / 127 of
// each named value), so the only error left is quantization's: a few steps of the output's
// scale, checked as a fraction of the output's magnitude.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include "backends/cpu/cpu_test_util.h"

namespace qf {
namespace {

using onnx::TensorProto;
using runtime::Precision;
using testing::ModelBuilder;

#define QF_REQUIRE_INT8()                                      \
  do {                                                         \
    QF_REQUIRE_CPU_BACKEND();                                  \
    if (!testing::cpu_backend()->supports(Precision::kINT8)) { \
      GTEST_SKIP() << "no int8 (VNNI) on this CPU";            \
    }                                                          \
  } while (0)

runtime::EngineInfo expect_int8_close(const ModelBuilder& b, const std::vector<Tensor>& inputs,
                                      const std::vector<std::string>& values, double tol,
                                      const std::string& what) {
  const testing::Calibrated c = testing::calibrate(b, inputs, values);
  auto cpu = testing::run_on(b.serialize(), "cpu", Precision::kINT8, inputs, 0, c.scales);
  EXPECT_TRUE(cpu.ok()) << what << ": " << cpu.status().message();
  if (!cpu.ok() || c.reference.empty()) return {};
  for (size_t i = 0; i < c.reference.size(); ++i) {
    const double err = testing::relative_error(cpu->outputs[i], c.reference[i]);
    EXPECT_LE(err, tol) << what << " output " << i;
  }
  return cpu->info;
}

TEST(CpuInt8Test, ConvolutionsWithEveryEpilogueStayWithinQuantizationError) {
  QF_REQUIRE_INT8();
  int seed = 3000;
  for (const std::string act : {"", "Relu"}) {
    for (int residual = 0; residual < 3; ++residual) {  // none, in place, from a graph input
      ModelBuilder b(17);
      b.input("x", TensorProto::FLOAT, {1, 19, 9, 9});
      std::vector<Tensor> inputs = {testing::random_tensor({1, 19, 9, 9}, ++seed)};
      b.initializer("w", testing::layer_weights({24, 19, 3, 3}, ++seed));
      b.initializer("bias", testing::random_tensor({24}, ++seed, -0.5f, 0.5f));
      std::vector<std::string> ins = {"x", "w", "bias"};
      std::vector<std::string> values = {"y"};
      if (residual == 1) {
        b.initializer("wz", testing::layer_weights({24, 19, 1, 1}, ++seed));
        b.node("Conv", {"x", "wz"}, {"z"}, "convz");
        ins.push_back("z");
        values.push_back("z");
      } else if (residual == 2) {
        b.input("z", TensorProto::FLOAT, {1, 24, 9, 9});
        inputs.push_back(testing::random_tensor({1, 24, 9, 9}, ++seed));
        ins.push_back("z");
      }
      auto& n = testing::fused_node(b, "FusedConv", ins, {"y"}, "fused");
      testing::set_ints_attr(n, "pads", {1, 1, 1, 1});
      testing::set_string_attr(n, "activation", act);
      // A consumer that keeps y in int8, and a graph output that dequantizes it.
      b.initializer("w2", testing::layer_weights({8, 24, 1, 1}, ++seed));
      b.node("Conv", {"y", "w2"}, {"y2"}, "conv2");
      values.push_back("y2");
      testing::untyped_output(b, "y2");
      const std::string what = fmt::format("FusedConv '{}' residual {}", act, residual);
      const runtime::EngineInfo info = expect_int8_close(b, inputs, values, 4e-2, what);
      const std::string impl = testing::kernel_of(info, "fused");
      EXPECT_NE(impl.find("s8_s32_"), std::string::npos) << what << ": " << impl;
      EXPECT_NE(impl.find(act == "Relu" ? "_s32_u8" : "_s32_s8"), std::string::npos)
          << what << ": " << impl;
      EXPECT_NE(
          testing::kernel_of(info, "conv2").find(act == "Relu" ? "conv2d_u8s8" : "conv2d_s8s8"),
          std::string::npos)
          << testing::kernel_of(info, "conv2");
    }
  }
}

TEST(CpuInt8Test, PoolingAndGemmKeepInt8AndMatchReference) {
  QF_REQUIRE_INT8();
  ModelBuilder b(17);
  testing::pooling_classifier(b, /*average_pool=*/false);
  const runtime::EngineInfo info =
      expect_int8_close(b, {testing::random_tensor({2, 8, 12, 12}, 4)},
                        {"c", "m", "g", "f", "logits"}, 4e-2, "conv-pool-gap-gemm");
  EXPECT_NE(testing::kernel_of(info, "maxpool").find("maxpool2d_u8"), std::string::npos)
      << testing::kernel_of(info, "maxpool");
  EXPECT_NE(testing::kernel_of(info, "gap").find("avgpool2d_u8"), std::string::npos)
      << testing::kernel_of(info, "gap");
  EXPECT_NE(testing::kernel_of(info, "fc").find("gemm_u8s8_s32_f32"), std::string::npos)
      << testing::kernel_of(info, "fc");
}

TEST(CpuInt8Test, WithoutScalesItCalibratesSyntheticallyAndSaysSo) {
  QF_REQUIRE_INT8();
  ModelBuilder b(17);
  b.input("x", TensorProto::FLOAT, {1, 4, 6, 6});
  b.initializer("w", testing::layer_weights({6, 4, 3, 3}, 5));
  b.node("Conv", {"x", "w"}, {"y"}, "conv");
  testing::untyped_output(b, "y");
  auto cpu = testing::run_on(b.serialize(), "cpu", Precision::kINT8,
                             {testing::random_tensor({1, 4, 6, 6}, 6)});
  ASSERT_TRUE(cpu.ok()) << cpu.status().message();
  EXPECT_NE(cpu->info.compute.find("synthetic calibration"), std::string::npos)
      << cpu->info.compute;
  EXPECT_NE(testing::kernel_of(cpu->info, "conv").find("conv2d_s8s8_s32_f32"), std::string::npos)
      << testing::kernel_of(cpu->info, "conv");
}

}  // namespace
}  // namespace qf
