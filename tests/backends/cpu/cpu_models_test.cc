// Whole models on the cpu backend: the Fashion-MNIST CNN (always) and the torchvision models the
// model tests export (when present), in fp32 against the reference backend / PyTorch, and with
// a check that their convolutions really run in oneDNN.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include "backends/cpu/cpu_test_util.h"
#include "io/npy.h"

namespace qf {
namespace {

namespace fs = std::filesystem;
using runtime::Precision;

// max |a - b| / (max(want) - min(want)): the model tests' criterion.
double error_over_range(const Tensor& got, const Tensor& want) {
  const float* g = got.data<float>();
  const float* w = want.data<float>();
  float lo = w[0], hi = w[0];
  double err = 0;
  for (int64_t i = 0; i < want.numel(); ++i) {
    lo = std::min(lo, w[i]);
    hi = std::max(hi, w[i]);
    err = std::max(err, std::abs(static_cast<double>(g[i]) - w[i]));
  }
  return hi > lo ? err / (static_cast<double>(hi) - lo) : err;
}

int64_t argmax_row(const Tensor& t, int64_t row) {
  const int64_t n = t.shape().back();
  const float* p = t.data<float>() + row * n;
  return std::max_element(p, p + n) - p;
}

// Every convolution (plain or fused) of the engine runs a oneDNN primitive.
void expect_convolutions_in_onednn(const runtime::EngineInfo& info, const std::string& what) {
  int convs = 0;
  for (const runtime::KernelInfo& k : info.kernels) {
    if (k.op.rfind("Conv", 0) != 0) continue;
    ++convs;
    EXPECT_NE(k.impl.find("[onednn "), std::string::npos)
        << what << ": " << k.node << " (" << k.op << ") runs " << k.impl;
    EXPECT_EQ(k.impl.find("reference"), std::string::npos) << k.impl;
  }
  EXPECT_GT(convs, 0) << what << ": no convolution in the engine's kernels";
}

Result<std::string> fashion_mnist_bytes() {
  return read_file_bytes(testing::repo_root() / "models" / "fashion_mnist_cnn.onnx");
}

TEST(CpuModelsTest, FashionMnistFp32MatchesReferenceAtSeveralBatchSizes) {
  QF_REQUIRE_CPU_BACKEND();
  auto bytes = fashion_mnist_bytes();
  ASSERT_TRUE(bytes.ok()) << bytes.status().message();
  for (int64_t batch : {1, 3}) {
    const Tensor x = testing::random_tensor({batch, 1, 28, 28}, 17, 0.f, 1.f);
    auto ref = testing::run_on(*bytes, "reference", Precision::kFP32, {x});
    auto cpu = testing::run_on(*bytes, "cpu", Precision::kFP32, {x});
    ASSERT_TRUE(ref.ok()) << ref.status().message();
    ASSERT_TRUE(cpu.ok()) << cpu.status().message();
    EXPECT_LE(error_over_range(cpu->outputs[0], ref->outputs[0]), 1e-4) << "batch " << batch;
    expect_convolutions_in_onednn(cpu->info, "fashion_mnist");
    EXPECT_GT(cpu->info.weights_bytes, 0);
    EXPECT_GT(cpu->info.activation_bytes, 0);
  }
}

TEST(CpuModelsTest, FashionMnistBf16AgreesWithFp32) {
  QF_REQUIRE_BF16();
  auto bytes = fashion_mnist_bytes();
  ASSERT_TRUE(bytes.ok()) << bytes.status().message();
  const Tensor x = testing::random_tensor({8, 1, 28, 28}, 23, 0.f, 1.f);
  auto ref = testing::run_on(*bytes, "reference", Precision::kFP32, {x});
  auto bf16 = testing::run_on(*bytes, "cpu", Precision::kBF16, {x});
  ASSERT_TRUE(ref.ok()) << ref.status().message();
  ASSERT_TRUE(bf16.ok()) << bf16.status().message();
  EXPECT_LE(error_over_range(bf16->outputs[0], ref->outputs[0]), 2e-2);
  expect_convolutions_in_onednn(bf16->info, "fashion_mnist bf16");
  for (const runtime::KernelInfo& k : bf16->info.kernels) {
    if (k.op.rfind("Conv", 0) == 0) {
      EXPECT_NE(k.impl.find("_bf16"), std::string::npos) << k.impl;
    }
  }
  EXPECT_EQ(bf16->info.precision, Precision::kBF16);
}

// The torchvision exports of the model tests (tools/export_torchvision.py), from
// $QFORGE_MODELS_DIR or the default build tree's models/ directory.
fs::path torchvision_dir() {
  if (const char* d = std::getenv("QFORGE_MODELS_DIR")) return d;
  return testing::repo_root() / "build" / "models";
}

std::vector<fs::path> torchvision_cases() {
  std::vector<fs::path> cases;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(torchvision_dir(), ec)) {
    const fs::path d = entry.path();
    if (fs::exists(d / "model.onnx") && fs::exists(d / "input.npy") &&
        fs::exists(d / "expected.npy")) {
      cases.push_back(d);
    }
  }
  std::sort(cases.begin(), cases.end());
  return cases;
}

TEST(CpuModelsTest, TorchvisionModelsFp32MatchPyTorch) {
  QF_REQUIRE_CPU_BACKEND();
  const std::vector<fs::path> cases = torchvision_cases();
  if (cases.empty()) GTEST_SKIP() << "no exported models under " << torchvision_dir();
  for (const fs::path& dir : cases) {
    const std::string name = dir.filename().string();
    auto bytes = read_file_bytes(dir / "model.onnx");
    auto input = io::read_npy(dir / "input.npy");
    auto expected = io::read_npy(dir / "expected.npy");
    ASSERT_TRUE(bytes.ok() && input.ok() && expected.ok()) << name;
    auto cpu = testing::run_on(*bytes, "cpu", Precision::kFP32, {*input});
    ASSERT_TRUE(cpu.ok()) << name << ": " << cpu.status().message();
    // PyTorch's output is what the reference backend is held to (model tests, same criterion).
    EXPECT_LE(error_over_range(cpu->outputs[0], *expected), 1e-4) << name;
    expect_convolutions_in_onednn(cpu->info, name);
  }
}

TEST(CpuModelsTest, Resnet18Fp32MatchesTheReferenceBackendAndBf16KeepsTop1) {
  QF_REQUIRE_CPU_BACKEND();
  const fs::path dir = torchvision_dir() / "resnet18_op13";
  if (!fs::exists(dir / "model.onnx")) GTEST_SKIP() << "no " << dir;
  auto bytes = read_file_bytes(dir / "model.onnx");
  auto input = io::read_npy(dir / "input.npy");
  ASSERT_TRUE(bytes.ok() && input.ok());
  auto ref = testing::run_on(*bytes, "reference", Precision::kFP32, {*input});
  auto cpu = testing::run_on(*bytes, "cpu", Precision::kFP32, {*input});
  ASSERT_TRUE(ref.ok()) << ref.status().message();
  ASSERT_TRUE(cpu.ok()) << cpu.status().message();
  EXPECT_LE(error_over_range(cpu->outputs[0], ref->outputs[0]), 1e-4);
  if (!testing::cpu_backend()->supports(Precision::kBF16)) return;
  auto bf16 = testing::run_on(*bytes, "cpu", Precision::kBF16, {*input});
  ASSERT_TRUE(bf16.ok()) << bf16.status().message();
  const double err = error_over_range(bf16->outputs[0], ref->outputs[0]);
  std::cout << "resnet18 bf16: max error / output range = " << err << "\n";
  EXPECT_LE(err, 5e-2);
  EXPECT_EQ(argmax_row(bf16->outputs[0], 0), argmax_row(ref->outputs[0], 0));
}

}  // namespace
}  // namespace qf
