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

}  // namespace
}  // namespace qf::bench
