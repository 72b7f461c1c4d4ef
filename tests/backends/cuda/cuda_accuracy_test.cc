// The accuracy bar on the GPU: the embedded Fashion-MNIST CNN calibrated (entropy, 1000
// training images) and built as a cuda INT8 engine keeps top-1 on the 10,000 test images within
// half a point of the cuda FP32 engine. Skips without a device or without the data set; the
// GPU machine has no /usr/share/datasets, so QFORGE_FASHION_MNIST_DIR names a folder with the
// same file names there.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include "backends/cuda/cuda_test_util.h"
#include "bench/evaluation.h"
#include "data/dataset.h"
#include "onnx/importer.h"
#include "quant/calibration.h"

namespace qf {
namespace {

namespace fs = std::filesystem;
using runtime::Precision;

fs::path data_dir() {
  const char* env = std::getenv("QFORGE_FASHION_MNIST_DIR");
  return env ? fs::path(env) : fs::path("/usr/share/datasets/fashion-mnist");
}

// The embedded model, found from the source tree or, where the tests run from a copy of the
// repository elsewhere (the GPU machine), from the working directory.
fs::path model_path() {
  const fs::path in_tree = testing::repo_root() / "models" / "fashion_mnist_cnn.onnx";
  return fs::exists(in_tree) ? in_tree : fs::path("models") / "fashion_mnist_cnn.onnx";
}

Result<std::unique_ptr<ir::Graph>> load_graph() {
  QF_ASSIGN_OR_RETURN(onnx_io::ImportedModel m, onnx_io::load_model(model_path()));
  return std::move(m.graph);
}

// Top-1 accuracy of `engine` over the test set.
double top1(runtime::Engine& engine, const std::vector<data::InputSpec>& specs,
            const Tensor& labels) {
  auto test = data::open_samples(data_dir() / "t10k-images-idx3-ubyte.gz", specs);
  EXPECT_TRUE(test.ok()) << test.status().message();
  if (!test.ok()) return 0;
  bench::EvalOptions options;
  options.labels = &labels;
  auto outcome = bench::evaluate(engine, **test, options);
  EXPECT_TRUE(outcome.ok()) << outcome.status().message();
  if (!outcome.ok() || outcome->samples == 0) return 0;
  EXPECT_EQ(outcome->samples, 10000);
  return static_cast<double>(outcome->top1) / static_cast<double>(outcome->samples);
}

TEST(CudaAccuracyTest, FashionMnistInt8WithinHalfAPointOfFp32) {
  QF_REQUIRE_CUDA_DEVICE();
  if (!fs::exists(data_dir() / "t10k-images-idx3-ubyte.gz")) {
    GTEST_SKIP() << data_dir() << " has no Fashion-MNIST (set QFORGE_FASHION_MNIST_DIR)";
  }
  auto graph = load_graph();
  ASSERT_TRUE(graph.ok()) << graph.status().message();
  auto specs = quant::sample_specs(**graph);
  ASSERT_TRUE(specs.ok()) << specs.status().message();
  auto labels = data::load_labels(data_dir() / "t10k-labels-idx1-ubyte.gz");
  ASSERT_TRUE(labels.ok()) << labels.status().message();

  // Entropy calibration on the first 1000 training images, as scripts/demo.sh does.
  auto train = data::open_samples(data_dir() / "train-images-idx3-ubyte.gz", *specs);
  ASSERT_TRUE(train.ok()) << train.status().message();
  quant::CalibrationOptions calib;
  calib.batch_size = 100;
  calib.max_batches = 10;
  calib.backend = testing::cpu_backend() ? "cpu" : "reference";
  auto calibrated = quant::calibrate(std::move(graph).value(), **train, calib);
  ASSERT_TRUE(calibrated.ok()) << calibrated.status().message();
  EXPECT_EQ(calibrated->samples, 1000);

  auto fp32_graph = load_graph();
  auto int8_graph = load_graph();
  ASSERT_TRUE(fp32_graph.ok() && int8_graph.ok());
  auto fp32 = testing::cuda_backend()->build(std::move(fp32_graph).value(),
                                             runtime::BuildOptions{Precision::kFP32});
  ASSERT_TRUE(fp32.ok()) << fp32.status().message();
  auto int8 = testing::cuda_backend()->build(
      std::move(int8_graph).value(),
      runtime::BuildOptions{Precision::kINT8, 0, calibrated->scales});
  ASSERT_TRUE(int8.ok()) << int8.status().message();
  // The convolutions really run in int8 on the GPU, not in a float fallback.
  int int8_kernels = 0;
  for (const runtime::KernelInfo& k : (*int8)->info().kernels) {
    if (k.impl.find("int8 tensor cores") != std::string::npos) ++int8_kernels;
  }
  EXPECT_GE(int8_kernels, 2);

  const double a32 = top1(**fp32, *specs, *labels);
  const double a8 = top1(**int8, *specs, *labels);
  EXPECT_GT(a32, 0.9);
  EXPECT_NEAR(a8, a32, 0.005) << "fp32 " << a32 << ", int8 " << a8;
  std::printf("fashion-mnist on the cuda backend: fp32 top-1 %.2f%%, int8 (entropy) %.2f%%\n",
              100 * a32, 100 * a8);
}

}  // namespace
}  // namespace qf
