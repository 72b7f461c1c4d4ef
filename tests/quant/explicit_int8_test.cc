// quant::prepare_build, the build preparation the cpu and cuda backends share: Q/DQ import at
// INT8 only, the optimizer at every precision, synthetic scales (loudly) when an INT8 build has
// none, and the checks of given scales.
#include "quant/explicit_int8.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "backends/cpu/cpu_test_util.h"
#include "onnx/importer.h"

namespace qf::quant {
namespace {

using onnx::TensorProto;
using runtime::Precision;
using testing::ModelBuilder;

std::unique_ptr<ir::Graph> conv_relu() {
  ModelBuilder b(17);
  b.input("x", TensorProto::FLOAT, {1, 3, 6, 6});
  b.initializer("w", testing::layer_weights({4, 3, 3, 3}, 1));
  b.node("Conv", {"x", "w"}, {"c"}, "conv");
  b.node("Relu", {"c"}, {"y"}, "relu");
  testing::untyped_output(b, "y");
  auto m = onnx_io::import_model_bytes(b.serialize(), "t.onnx");
  EXPECT_TRUE(m.ok()) << m.status().message();
  return m.ok() ? std::move(m->graph) : nullptr;
}

int fused_convs(const ir::Graph& g) {
  int n = 0;
  for (const auto& node : g.nodes()) n += node->op_type == "FusedConv" ? 1 : 0;
  return n;
}

TEST(PrepareBuildTest, OtherPrecisionsAreOnlyOptimized) {
  auto g = conv_relu();
  ASSERT_TRUE(g);
  runtime::BuildOptions options;
  options.precision = Precision::kFP16;
  options.activation_scales = {{"x", 0.f}};  // not an INT8 build: left alone
  auto p = prepare_build(*g, options);
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_EQ(fused_convs(*g), 1);
  EXPECT_EQ(p->options.activation_scales.at("x"), 0.f);
  EXPECT_TRUE(p->notes.empty());
}

TEST(PrepareBuildTest, Int8WithoutScalesCalibratesSyntheticallyAndSaysSo) {
  auto g = conv_relu();
  ASSERT_TRUE(g);
  runtime::BuildOptions options;
  options.precision = Precision::kINT8;
  ::testing::internal::CaptureStderr();
  auto p = prepare_build(*g, options);
  const std::string err = ::testing::internal::GetCapturedStderr();
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_NE(err.find("WARNING: int8 without calibration scales"), std::string::npos) << err;
  EXPECT_NE(p->options.calibration.find("synthetic"), std::string::npos);
  // The graph input and the fused convolution's output, named as in the optimized graph.
  EXPECT_TRUE(p->options.activation_scales.count("x"));
  EXPECT_TRUE(p->options.activation_scales.count("y"));
  for (const auto& [name, s] : p->options.activation_scales) EXPECT_GT(s, 0.f) << name;
}

TEST(PrepareBuildTest, Int8ScalesAreCheckedAndZeroBecomesOneStep) {
  auto g = conv_relu();
  ASSERT_TRUE(g);
  runtime::BuildOptions options;
  options.precision = Precision::kINT8;
  options.activation_scales = {{"x", 0.f}, {"y", 0.5f}};
  options.calibration = "given";
  auto p = prepare_build(*g, options);
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_EQ(p->options.activation_scales.at("x"), 1.f / 127.f);
  EXPECT_EQ(p->options.activation_scales.at("y"), 0.5f);
  EXPECT_EQ(p->options.calibration, "given");

  auto g2 = conv_relu();
  options.activation_scales = {{"x", -1.f}};
  auto bad = prepare_build(*g2, options);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidInput);
  options.activation_scales = {{"x", NAN}};
  auto g3 = conv_relu();
  EXPECT_FALSE(prepare_build(*g3, options).ok());
}

TEST(PrepareBuildTest, QdqGraphsBringTheirOwnScalesAndGrids) {
  const std::filesystem::path file =
      testing::repo_root() / "tests" / "fixtures" / "qat" / "fmnist_qat_int8_opset13.onnx";
  auto m = onnx_io::load_model(file);
  ASSERT_TRUE(m.ok()) << m.status().message();
  runtime::BuildOptions options;
  options.precision = Precision::kINT8;
  auto p = prepare_build(*m->graph, options);
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_NE(p->options.calibration.find("scales from the model's Q/DQ nodes"), std::string::npos)
      << p->options.calibration;
  EXPECT_GE(p->options.activation_scales.size(), 7u);
  EXPECT_FALSE(p->options.activation_grids.empty());

  // At FP32 the same file keeps its Q/DQ nodes (fake quantization) and gets no scales.
  auto m32 = onnx_io::load_model(file);
  ASSERT_TRUE(m32.ok());
  auto p32 = prepare_build(*m32->graph, runtime::BuildOptions{});
  ASSERT_TRUE(p32.ok()) << p32.status().message();
  EXPECT_TRUE(p32->options.activation_scales.empty());
}

}  // namespace
}  // namespace qf::quant
