// Explicit quantization end to end on PyTorch's own QAT exports (tests/fixtures/qat, made by
// tools/make_qat_fixtures.py): a Fashion-MNIST CNN fine-tuned with fake quantization, exported
// as the fake-quant graph and as the converted int8 graph, each at opsets 13 and 17. The cpu
// INT8 engine built from each must agree with PyTorch's fake-quant model on the first 1000
// test images (top-1 on at least 99.5%, every logit within two output quantization steps), keep
// the graph's activation scales bit for bit and really run its convolutions in int8.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "backends/cpu/cpu_test_util.h"
#include "data/idx.h"
#include "io/npy.h"
#include "quant/qdq_import.h"
#include "runtime/engine.h"

namespace qf::quant {
namespace {

namespace fs = std::filesystem;
using runtime::Precision;

constexpr int64_t kImages = 1000;
const fs::path kTestImages = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz";

fs::path fixture_dir() {
  const fs::path here = fs::path(__FILE__).lexically_normal();
  return here.parent_path().parent_path() / "fixtures" / "qat";
}

nlohmann::json fixture_facts() {
  std::ifstream in(fixture_dir() / "fixtures.json");
  return nlohmann::json::parse(in);
}

// The first 1000 test images as float32 N x 1 x 28 x 28 in [0, 1], as the fixture script fed
// them to PyTorch.
Tensor test_images() {
  auto raw = data::read_idx(kTestImages);
  EXPECT_TRUE(raw.ok()) << raw.status().message();
  if (!raw.ok()) return {};
  Tensor x(DType::kF32, {kImages, 1, 28, 28});
  const uint8_t* src = raw->data<uint8_t>();
  for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = static_cast<float>(src[i]) / 255.f;
  return x;
}

int64_t argmax_row(const float* row, int64_t n) {
  return std::max_element(row, row + n) - row;
}

class QatFixture : public ::testing::TestWithParam<std::string> {};

TEST_P(QatFixture, Int8EngineMatchesPyTorchFakeQuantization) {
  QF_REQUIRE_CPU_BACKEND();
  if (!qf::testing::cpu_backend()->supports(Precision::kINT8)) GTEST_SKIP() << "no int8 here";
  if (!fs::exists(kTestImages)) GTEST_SKIP() << kTestImages << " missing (scripts/deps.sh)";
  const std::string file = GetParam();
  const nlohmann::json facts = fixture_facts();
  const nlohmann::json& about = facts["files"][file];

  std::ifstream in(fixture_dir() / file, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto model = onnx_io::import_model_bytes(bytes, file);
  ASSERT_TRUE(model.ok()) << model.status().message();
  runtime::BuildOptions options;
  options.precision = Precision::kINT8;
  auto engine = qf::testing::cpu_backend()->build(std::move(model->graph), options);
  ASSERT_TRUE(engine.ok()) << engine.status().message();
  const runtime::EngineInfo& info = (*engine)->info();

  // The graph's grids, bit for bit: every quantized activation is stored on its scale and
  // zero point (uint8 here, zero points 73, 114 and 0).
  int exact = 0;
  for (const auto& [tensor, q] : about["activation_quantization"].items()) {
    auto it = info.int8_grids.find(tensor);
    if (it == info.int8_grids.end()) continue;  // the logits' Q/DQ: a graph output, kept
    ASSERT_EQ(q["dtype"], "uint8") << tensor;
    EXPECT_EQ(it->second.type, DType::kU8) << tensor;
    EXPECT_EQ(it->second.scale, static_cast<float>(q["scale"].get<double>())) << tensor;
    EXPECT_EQ(it->second.zero_point, q["zero_point"].get<int>()) << tensor;
    ++exact;
  }
  EXPECT_GE(exact, 7) << "every activation but the logits keeps its grid";

  // Every convolution and fully connected layer runs with int8 inputs and s32 accumulation.
  int int8_layers = 0;
  for (const runtime::KernelInfo& k : info.kernels) {
    if (k.op.find("Conv") == std::string::npos && k.op.find("Gemm") == std::string::npos &&
        k.op.find("MatMul") == std::string::npos) {
      continue;
    }
    EXPECT_NE(k.impl.find("_s32_"), std::string::npos) << k.node << " " << k.op << ": " << k.impl;
    ++int8_layers;
  }
  EXPECT_EQ(int8_layers, 6) << "4 convolutions and 2 fully connected layers";

  const Tensor images = test_images();
  ASSERT_TRUE(images.defined());
  auto got = (*engine)->run({images});
  ASSERT_TRUE(got.ok()) << got.status().message();
  auto want = io::read_npy(fixture_dir() / "expected_fakequant_logits.npy");
  ASSERT_TRUE(want.ok()) << want.status().message();
  const Tensor& y = (*got)[0];
  ASSERT_EQ(y.shape(), want->shape());

  const auto step = static_cast<float>(about["output_quantization"]["scale"].get<double>());
  int64_t same_top1 = 0, beyond_two_steps = 0;
  float worst = 0;
  for (int64_t i = 0; i < kImages; ++i) {
    const float* a = y.data<float>() + i * 10;
    const float* b = want->data<float>() + i * 10;
    same_top1 += argmax_row(a, 10) == argmax_row(b, 10) ? 1 : 0;
    for (int64_t j = 0; j < 10; ++j) {
      const float d = std::fabs(a[j] - b[j]);
      worst = std::max(worst, d);
      beyond_two_steps += d > 2 * step * 1.0001f ? 1 : 0;
    }
  }
  EXPECT_GE(same_top1, 995) << file;
  EXPECT_EQ(beyond_two_steps, 0) << file << ": worst " << worst / step << " steps";
  std::printf("%s: top-1 agreement %lld/1000, worst logit difference %.2f output steps\n",
              file.c_str(), static_cast<long long>(same_top1), worst / step);
}

INSTANTIATE_TEST_SUITE_P(PyTorchExports, QatFixture,
                         ::testing::Values("fmnist_qat_fakequant_opset13.onnx",
                                           "fmnist_qat_fakequant_opset17.onnx",
                                           "fmnist_qat_int8_opset13.onnx",
                                           "fmnist_qat_int8_opset17.onnx"),
                         [](const auto& info) {
                           std::string name = info.param.substr(11);  // after "fmnist_qat_"
                           name = name.substr(0, name.find('.'));
                           return name;
                         });

}  // namespace
}  // namespace qf::quant
