#include "bench/json_report.h"

#include <gtest/gtest.h>

namespace qf::bench {
namespace {

TEST(JsonReportTest, SchemaOneFieldsArePresent) {
  BenchReport report;
  report.qforge_version = "0.1.0";
  report.model_path = "m.onnx";
  report.backend = "cpu";
  report.cpu = "Some CPU";
  BenchRow fp32;
  fp32.precision = "fp32";
  fp32.backend = "cpu";
  fp32.batch = 8;
  fp32.latency_ms = compute_stats({1, 2, 3, 4}, {90, 95, 99});
  fp32.throughput_qps = 100;
  BenchRow int8 = fp32;
  int8.precision = "int8";
  int8.calib_method = "entropy";
  int8.vs_fp32 = Agreement{0.99, 30.0, 0.5, 0.98};
  report.rows = {fp32, int8};

  const nlohmann::json j = to_json(report);
  EXPECT_EQ(j["schema"], 1);
  EXPECT_EQ(j["device"]["cpu"], "Some CPU");
  EXPECT_TRUE(j["device"]["gpu"].is_null());
  ASSERT_EQ(j["results"].size(), 2u);
  const auto& r0 = j["results"][0];
  for (const char* key : {"min", "max", "mean", "median", "p90", "p95", "p99"}) {
    EXPECT_TRUE(r0["latency_ms"].contains(key)) << key;
  }
  EXPECT_EQ(r0["latency_ms"]["median"], 2.5);
  EXPECT_EQ(r0["throughput_samples_per_s"], 800.0);  // batch x qps
  EXPECT_TRUE(r0["calib_method"].is_null());
  const auto& r1 = j["results"][1];
  EXPECT_EQ(r1["calib_method"], "entropy");
  EXPECT_EQ(r1["accuracy"]["top1_vs_fp32"], 0.98);
  EXPECT_EQ(r1["accuracy"]["sqnr_db"], 30.0);
}

TEST(JsonReportTest, ExactMatchSqnrIsNull) {
  BenchReport report;
  BenchRow row;
  row.precision = "bf16";
  row.latency_ms = compute_stats({1}, {});
  row.vs_fp32 = Agreement{1.0, std::numeric_limits<double>::infinity(), 0, 1};
  report.rows = {row};
  EXPECT_TRUE(to_json(report)["results"][0]["accuracy"]["sqnr_db"].is_null());
}

TEST(JsonReportTest, LabelAccuracyCalibTimeAndProfile) {
  BenchReport report;
  BenchRow fp32;
  fp32.precision = "fp32";
  fp32.latency_ms = compute_stats({1, 2}, {99});
  fp32.vs_labels = LabelAccuracy{0.875, 0.99, 1000};
  BenchRow int8 = fp32;
  int8.precision = "int8";
  int8.calib_method = "minmax";
  int8.vs_fp32 = Agreement{0.999, 35.0, 0.1, 0.97};
  int8.vs_labels = LabelAccuracy{0.86, 0.985, 1000};
  int8.calib_s = 1.25;
  int8.profile = {{"conv1", "qforge::FusedConv", "brgconv:avx512_core_vnni", 0.5},
                  {"fc", "Gemm", "reference", 0.125}};
  report.rows = {fp32, int8};

  const nlohmann::json j = to_json(report);
  const auto& r0 = j["results"][0];
  // The fp32 row has no agreement with itself but does have label accuracy.
  EXPECT_FALSE(r0["accuracy"].contains("top1_vs_fp32"));
  EXPECT_EQ(r0["accuracy"]["top1"], 0.875);
  EXPECT_EQ(r0["accuracy"]["top5"], 0.99);
  EXPECT_EQ(r0["accuracy"]["eval_samples"], 1000);
  EXPECT_EQ(r0["calib_s"], 0.0);
  EXPECT_FALSE(r0.contains("profile"));  // only profiled rows carry one

  const auto& r1 = j["results"][1];
  EXPECT_EQ(r1["accuracy"]["top1_vs_fp32"], 0.97);  // existing fields stay
  EXPECT_EQ(r1["accuracy"]["top1"], 0.86);
  EXPECT_EQ(r1["accuracy"]["top5"], 0.985);
  EXPECT_EQ(r1["calib_s"], 1.25);
  ASSERT_EQ(r1["profile"].size(), 2u);
  EXPECT_EQ(r1["profile"][0]["name"], "conv1");
  EXPECT_EQ(r1["profile"][0]["op"], "qforge::FusedConv");
  EXPECT_EQ(r1["profile"][0]["impl"], "brgconv:avx512_core_vnni");
  EXPECT_EQ(r1["profile"][0]["ms"], 0.5);
  EXPECT_EQ(r1["profile"][1]["ms"], 0.125);
}

TEST(JsonReportTest, NoLabelsMeansNoLabelFields) {
  BenchReport report;
  BenchRow row;
  row.precision = "fp32";
  row.latency_ms = compute_stats({1}, {});
  report.rows = {row};
  const nlohmann::json j = to_json(report);
  EXPECT_TRUE(j["results"][0]["accuracy"].empty());  // schema 1: empty for fp32
}

}  // namespace
}  // namespace qf::bench
