// INT8 end to end through the CLI on the embedded Fashion-MNIST model: calibration from IDX
// data, TensorRT calibration caches, int8 engine files, `qforge quantize` Q/DQ models and
// `qforge bench` rows per calibration method with accuracy on the labelled test set.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "testing/cli_runner.h"

namespace qf {
namespace {

namespace fs = std::filesystem;
using testing::run_qforge;

const std::string kData = "/usr/share/datasets/fashion-mnist/";
const std::string kTrainImages = kData + "train-images-idx3-ubyte.gz";
const std::string kTestImages = kData + "t10k-images-idx3-ubyte.gz";
const std::string kTestLabels = kData + "t10k-labels-idx1-ubyte.gz";

std::string model() {
  return testing::fashion_mnist_model();
}

class QuantizeCliTest : public testing::ScratchDirTest {
 protected:
};

std::string first_line(const std::string& file) {
  std::ifstream in(file);
  std::string line;
  std::getline(in, line);
  return line;
}

TEST_F(QuantizeCliTest, BuildCalibratesWritesCacheAndRebuildsFromIt) {
  const std::string cache = path("fmnist.cache");
  auto r = run_qforge("build " + model() + " --precision int8 --calib " + kTrainImages +
                      " --calib-batch-size 64 --calib-batches 3 --calib-cache " + cache + " -o " +
                      path("a.engine"));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("entropy calibration on 192 samples"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("WARNING"), std::string::npos) << r.out;
  EXPECT_EQ(first_line(cache), "TRT-100300-EntropyCalibration2");

  // An existing cache is read instead of calibrating; the engine records where scales came from.
  r = run_qforge("build " + model() + " --precision int8 --calib-cache " + cache + " -o " +
                 path("b.engine"));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("calibration cache " + cache), std::string::npos) << r.out;

  // The int8 engine file carries its scales: loading it neither warns nor recalibrates, and it
  // computes exactly what the engine built from the same cache computes.
  r = run_qforge("run " + path("b.engine") + " --shape input=2x1x28x28 --seed 3 --output-dir " +
                 path("out_b"));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(r.out.find("WARNING"), std::string::npos) << r.out;
  r = run_qforge("run " + path("a.engine") + " --shape input=2x1x28x28 --seed 3 --output-dir " +
                 path("out_a"));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  std::ifstream a(path("out_a") + "/logits.npy", std::ios::binary);
  std::ifstream b(path("out_b") + "/logits.npy", std::ios::binary);
  const std::string bytes_a((std::istreambuf_iterator<char>(a)), {});
  const std::string bytes_b((std::istreambuf_iterator<char>(b)), {});
  ASSERT_FALSE(bytes_a.empty());
  EXPECT_EQ(bytes_a, bytes_b);
}

TEST_F(QuantizeCliTest, CacheOfAnotherModelIsRefusedWithTheMissingTensors) {
  const std::string cache = path("other.cache");
  std::ofstream(cache) << "TRT-8601-EntropyCalibration2\nsome_other_tensor: 3c010204\n";
  const auto r = run_qforge("build " + model() + " --precision int8 --calib-cache " + cache +
                            " -o " + path("x.engine"));
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_NE(r.out.find("calibration cache lacks"), std::string::npos) << r.out;
  EXPECT_FALSE(fs::exists(path("x.engine")));
}

TEST_F(QuantizeCliTest, CalibrationOptionsNeedInt8AndData) {
  auto r = run_qforge("build " + model() + " --precision fp32 --calib " + kTrainImages + " -o " +
                      path("x.engine"));
  EXPECT_EQ(r.exit_code, 1) << r.out;
  r = run_qforge("quantize " + model() + " -o " + path("x.onnx"));
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("--calib DATA"), std::string::npos) << r.out;
  r = run_qforge("quantize " + model() + " --calib " + kTrainImages + " --calib-method kl -o " +
                 path("x.onnx"));
  EXPECT_EQ(r.exit_code, 1) << r.out;
  r = run_qforge("quantize " + model() + " --calib " + path("missing.npy") + " -o " +
                 path("x.onnx"));
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_FALSE(fs::exists(path("x.onnx")));
}

TEST_F(QuantizeCliTest, QuantizeWritesACheckedQdqModelThatRuns) {
  const std::string qdq = path("fmnist.qdq.onnx");
  const std::string cache = path("minmax.cache");
  auto r = run_qforge("quantize " + model() + " --calib " + kTrainImages +
                      " --calib-method minmax --calib-batches 2 --calib-cache-out " + cache +
                      " -o " + qdq);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(first_line(cache), "TRT-100300-MinMaxCalibration");
  r = run_qforge("inspect " + qdq);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("QuantizeLinear"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("DequantizeLinear"), std::string::npos) << r.out;
  // inspect lists each Q/DQ with the scale the graph carries; weights are per output channel.
  EXPECT_NE(r.out.find("Quantization (from the graph's Q/DQ nodes"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("conv1.weight_quantized"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("per-axis 0: 16 scales"), std::string::npos) << r.out;
  r = run_qforge("run " + qdq + " --backend reference --shape input=1x1x28x28 --output-dir " +
                 path("out"));
  EXPECT_EQ(r.exit_code, 0) << r.out;
}

// A Q/DQ model carries its scales: `build` makes it INT8 by itself and refuses calibration
// data, and `bench --compare` adds it as an INT8 row next to the calibrated engine.
TEST_F(QuantizeCliTest, QdqModelsBuildAsInt8WithTheirOwnScales) {
  const std::string qdq = path("fmnist.qdq.onnx");
  auto r = run_qforge("quantize " + model() + " --calib " + kTrainImages +
                      " --calib-batches 2 -o " + qdq);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  r = run_qforge("build " + qdq + " -o " + path("qdq.engine"));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("precision:   int8"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("scales from the model's Q/DQ nodes"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("WARNING"), std::string::npos) << r.out;
  r = run_qforge("build " + qdq + " --calib " + kTrainImages + " -o " + path("x.engine"));
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("carries its own Q/DQ scales"), std::string::npos) << r.out;

  const std::string json = path("compare.json");
  r = run_qforge("bench " + model() + " --precisions fp32 --compare " + qdq + " --eval " +
                 kTestImages + " --labels " + kTestLabels +
                 " --eval-limit 300 --warmup 0 --duration 0 --iterations 2 --json " + json);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  std::ifstream in(json);
  const nlohmann::json j = nlohmann::json::parse(in);
  ASSERT_EQ(j["results"].size(), 2u);
  EXPECT_EQ(j["results"][1]["precision"], "int8");
  EXPECT_EQ(j["results"][1]["calib_method"], "qdq");
  EXPECT_EQ(j["results"][1]["source"], qdq);
  EXPECT_GT(j["results"][1]["accuracy"]["top1"].get<double>(), 0.8);
}

TEST_F(QuantizeCliTest, BenchRowsPerMethodWithLabelAccuracyAndReport) {
  const std::string json = path("bench.json");
  const auto r = run_qforge("bench " + model() + " --precisions int8 --calib " + kTrainImages +
                            " --calib-batches 2 --calib-method entropy,minmax --eval " +
                            kTestImages + " --labels " + kTestLabels +
                            " --eval-limit 500 --warmup 0 --duration 0 --iterations 2 --json " +
                            json + " --report " + path("report"));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  std::ifstream in(json);
  const nlohmann::json j = nlohmann::json::parse(in);
  ASSERT_EQ(j["results"].size(), 3u);  // fp32 baseline, int8/entropy, int8/minmax
  EXPECT_EQ(j["results"][0]["precision"], "fp32");
  EXPECT_EQ(j["results"][1]["calib_method"], "entropy");
  EXPECT_EQ(j["results"][2]["calib_method"], "minmax");
  for (const auto& row : j["results"]) {
    EXPECT_EQ(row["accuracy"]["eval_samples"], 500);
    EXPECT_GT(row["accuracy"]["top1"].get<double>(), 0.5) << row.dump();
  }
  EXPECT_TRUE(fs::exists(path("report") + "/report.html"));
  EXPECT_TRUE(fs::exists(path("report") + "/report.md"));
}

TEST_F(QuantizeCliTest, BenchInt8WithoutCalibrationOrWithBadLabelsIsAUsageError) {
  auto r = run_qforge("bench " + model() + " --precisions int8 --iterations 1 --duration 0");
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("needs calibration"), std::string::npos) << r.out;
  r = run_qforge("bench " + model() + " --eval " + kTestImages + " --iterations 1");
  EXPECT_EQ(r.exit_code, 1) << r.out;
  r = run_qforge("bench " + model() + " --eval " + kTestImages + " --labels " + kData +
                 "train-labels-idx1-ubyte.gz --iterations 1");
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("labels"), std::string::npos) << r.out;
}

// The product's promise on the default model: INT8 from 1000 training images keeps top-1 on the
// 10,000 test images within half a point of FP32 (the acceptance bar) for the entropy
// and percentile calibrators.
TEST_F(QuantizeCliTest, Int8AccuracyOnTheTestSetIsWithinHalfAPointOfFp32) {
  const std::string json = path("accuracy.json");
  const auto r = run_qforge("bench " + model() + " --precisions int8 --calib " + kTrainImages +
                            " --calib-batch-size 100 --calib-batches 10 --calib-method "
                            "entropy,percentile --eval " +
                            kTestImages + " --labels " + kTestLabels +
                            " --warmup 0 --duration 0 --iterations 1 --json " + json);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  std::ifstream in(json);
  const nlohmann::json j = nlohmann::json::parse(in);
  ASSERT_EQ(j["results"].size(), 3u);
  const double fp32 = j["results"][0]["accuracy"]["top1"];
  EXPECT_GT(fp32, 0.9);
  for (int i = 1; i < 3; ++i) {
    const double int8 = j["results"][i]["accuracy"]["top1"];
    EXPECT_NEAR(int8, fp32, 0.005) << j["results"][i]["calib_method"];
  }
}

}  // namespace
}  // namespace qf
