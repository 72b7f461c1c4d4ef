// The calibration driver: which tensors it observes, that methods see the same data, and that
// the result does not depend on how the data is batched (the histograms' ranges come from a
// first pass over everything, and counts and maxima are order-free).
#include "quant/calibration.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <random>

#include "io/npy.h"
#include "onnx/importer.h"
#include "testing/model_builder.h"

namespace qf::quant {
namespace {

using testing::ModelBuilder;
constexpr int32_t kF32 = onnx::TensorProto::FLOAT;

// x [N, 4] -> Sub(mean) -> MatMul(W) -> Relu -> y: one preprocessing step, one layer.
std::unique_ptr<ir::Graph> small_model() {
  ModelBuilder m(13);
  m.input("x", kF32, {-1, 4}).output("y", kF32, {-1, 3});
  m.initializer("mean", Tensor::from_vector<float>({4}, {0.5f, 0.5f, 0.5f, 0.5f}));
  m.initializer(
      "W", Tensor::from_vector<float>({4, 3}, {1, -2, 0.5f, 3, 1, -1, -0.5f, 2, 1, 0.25f, -1, 2}));
  m.node("Sub", {"x", "mean"}, {"centred"}, "sub");
  m.node("MatMul", {"centred", "W"}, {"h"}, "mm");
  m.node("Relu", {"h"}, {"y"}, "relu");
  auto imported = onnx_io::import_model_bytes(m.serialize(), "small.onnx");
  EXPECT_TRUE(imported.ok()) << imported.status().message();
  return imported.ok() ? std::move(imported->graph) : nullptr;
}

// 203 samples (a prime, so no batch size divides it) with a long tail.
std::filesystem::path write_samples() {
  std::mt19937 gen(7);
  std::exponential_distribution<float> tail(3.f);
  std::vector<float> values(203 * 4);
  for (float& v : values) v = tail(gen);
  const auto path = std::filesystem::path(::testing::TempDir()) / "calibration_samples.npy";
  EXPECT_TRUE(io::write_npy(path, Tensor::from_vector<float>({203, 4}, values)).ok());
  return path;
}

Result<CalibrationResult> calibrate_with(CalibMethod method, int64_t batch_size) {
  std::unique_ptr<ir::Graph> graph = small_model();
  QF_ASSIGN_OR_RETURN(std::vector<data::InputSpec> specs, sample_specs(*graph));
  QF_ASSIGN_OR_RETURN(std::unique_ptr<data::SampleSource> samples,
                      data::open_samples(write_samples(), specs));
  CalibrationOptions options;
  options.method = method;
  options.batch_size = batch_size;
  return calibrate(std::move(graph), *samples, options);
}

TEST(CalibrationTest, ObservesEveryInputDependentFloatTensor) {
  std::unique_ptr<ir::Graph> graph = small_model();
  ASSERT_TRUE(graph);
  EXPECT_EQ(calibrated_tensor_names(*graph), (std::set<std::string>{"x", "centred", "h", "y"}));
}

TEST(CalibrationTest, ScalesDoNotDependOnTheBatchSize) {
  for (CalibMethod method :
       {CalibMethod::kEntropy, CalibMethod::kMinMax, CalibMethod::kPercentile, CalibMethod::kMse}) {
    auto a = calibrate_with(method, 7);
    auto b = calibrate_with(method, 64);
    ASSERT_TRUE(a.ok()) << a.status().message();
    ASSERT_TRUE(b.ok()) << b.status().message();
    EXPECT_EQ(a->samples, 203);  // the last, smaller batch is used: the batch dim is dynamic
    EXPECT_EQ(b->samples, 203);
    EXPECT_EQ(a->dropped, 0);
    // Bit-for-bit: the same floats, not merely close ones.
    EXPECT_EQ(a->scales, b->scales) << calib_method_name(method);
  }
}

TEST(CalibrationTest, InputsAndPreprocessingGetMinMaxWhateverTheMethod) {
  auto minmax = calibrate_with(CalibMethod::kMinMax, 32);
  auto entropy = calibrate_with(CalibMethod::kEntropy, 32);
  ASSERT_TRUE(minmax.ok() && entropy.ok());
  EXPECT_EQ(entropy->amax.at("x"), minmax->amax.at("x"));
  EXPECT_EQ(entropy->amax.at("centred"), minmax->amax.at("centred"));
  // The layer's output is calibrated by the method itself: the entropy threshold clips the
  // exponential tail, so it lies below the maximum.
  EXPECT_LT(entropy->amax.at("h"), minmax->amax.at("h"));
  for (const auto& [name, scale] : minmax->scales) {
    EXPECT_FLOAT_EQ(scale, minmax->amax.at(name) / 127.f) << name;
  }
}

TEST(CalibrationTest, MaxBatchesLimitsTheSamplesAndBadOptionsAreRefused) {
  std::unique_ptr<ir::Graph> graph = small_model();
  ASSERT_TRUE(graph);
  auto specs = sample_specs(*graph);
  ASSERT_TRUE(specs.ok());
  auto samples = data::open_samples(write_samples(), *specs);
  ASSERT_TRUE(samples.ok());
  CalibrationOptions options;
  options.batch_size = 10;
  options.max_batches = 3;
  auto limited = calibrate(small_model(), **samples, options);
  ASSERT_TRUE(limited.ok()) << limited.status().message();
  EXPECT_EQ(limited->samples, 30);
  EXPECT_EQ(limited->dropped, 0);  // the user's choice, not a loss

  options.method = CalibMethod::kPercentile;
  options.percentile = 0;
  EXPECT_EQ(calibrate(small_model(), **samples, options).status().code(), StatusCode::kUsage);
}

}  // namespace
}  // namespace qf::quant
