// `qforge bench`: a short real run on the embedded model, its JSON, and bad options.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "testing/cli_runner.h"

namespace qf {
namespace {

namespace fs = std::filesystem;
using testing::run_qforge;

std::string model() {
  return testing::fashion_mnist_model();
}

TEST(BenchCliTest, ShortRunWritesSchemaOneJson) {
  const fs::path json = fs::temp_directory_path() / "qforge_bench_cli_test.json";
  fs::remove(json);
  const auto r = run_qforge("bench " + model() +
                            " --backend reference --batch 1,4 --warmup 10 --duration 0.05 "
                            "--iterations 3 --json " +
                            json.string());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("samples/s"), std::string::npos) << r.out;
  std::ifstream in(json);
  const nlohmann::json j = nlohmann::json::parse(in);
  fs::remove(json);
  EXPECT_EQ(j["schema"], 1);
  ASSERT_EQ(j["results"].size(), 2u);
  EXPECT_EQ(j["results"][1]["batch"], 4);
  EXPECT_GE(j["results"][0]["queries"].get<int>(), 3);
  const double qps = j["results"][1]["throughput_qps"];
  EXPECT_DOUBLE_EQ(j["results"][1]["throughput_samples_per_s"].get<double>(), 4 * qps);
}

TEST(BenchCliTest, StreamsRunConcurrentEnginesAndCountEveryQuery) {
  const fs::path json = fs::temp_directory_path() / "qforge_bench_streams_test.json";
  fs::remove(json);
  const auto r = run_qforge("bench " + model() +
                            " --precisions fp32 --streams 2 --batch 2 --warmup 0 --duration 0 "
                            "--iterations 3 --json " +
                            json.string());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  std::ifstream in(json);
  const nlohmann::json j = nlohmann::json::parse(in);
  fs::remove(json);
  ASSERT_EQ(j["results"].size(), 1u);
  EXPECT_EQ(j["results"][0]["streams"], 2);
  // Each of the two streams times at least 3 queries.
  EXPECT_GE(j["results"][0]["queries"].get<int>(), 6);
  EXPECT_EQ(run_qforge("bench " + model() + " --streams 0").exit_code, 1);
}

TEST(BenchCliTest, BadOptionsAreUsageErrors) {
  auto r = run_qforge("bench " + model() + " --batch 0");
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("--batch 0: batch sizes must be positive"), std::string::npos) << r.out;
  r = run_qforge("bench " + model() + " --precisions fp64");
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("unknown precision 'fp64'"), std::string::npos) << r.out;
  r = run_qforge("bench " + model() + " --backend reference --precisions int8");
  EXPECT_EQ(r.exit_code, 3) << r.out;
  r = run_qforge("bench " + model() + " --percentile ninety");
  EXPECT_EQ(r.exit_code, 1) << r.out;
}

// trtexec's GPU switches are refused on a backend without a device, one line and exit code 1
// (a usage error: the flags contradict --backend), before anything is timed.
TEST(BenchCliTest, GpuSwitchesAreRefusedOnTheCpuBackend) {
  const std::string base = "bench " + model() + " --precisions fp32 --warmup 0 --duration 0 ";
  auto r = run_qforge(base + "--cuda-graph on");
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("qforge: error: --cuda-graph on: the cpu backend has no CUDA graphs; it "
                       "applies to --backend cuda"),
            std::string::npos)
      << r.out;
  EXPECT_EQ(r.out.find("samples/s"), std::string::npos) << "nothing is timed: " << r.out;
  r = run_qforge(base + "--cuda-graph off");
  EXPECT_EQ(r.exit_code, 1) << r.out;
  r = run_qforge(base + "--spin-wait");
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("--spin-wait: the cpu backend waits for no device"), std::string::npos)
      << r.out;
  r = run_qforge(base + "--no-data-transfers");
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("--no-data-transfers: the cpu backend keeps no inputs on a device"),
            std::string::npos)
      << r.out;
  r = run_qforge(base + "--timing-cache /tmp/qf_never_written.cache");
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("--timing-cache /tmp/qf_never_written.cache: the cpu backend times no "
                       "tactics"),
            std::string::npos)
      << r.out;
  EXPECT_FALSE(std::filesystem::exists("/tmp/qf_never_written.cache"));
  r = run_qforge(base + "--cuda-graph maybe");
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("--cuda-graph maybe: expected on or off"), std::string::npos) << r.out;
}

// Without a device the split is n/a, said once, and the JSON has nulls rather than numbers.
TEST(BenchCliTest, CpuRowsHaveNoLatencySplit) {
  const fs::path json = fs::temp_directory_path() / "qforge_bench_split_test.json";
  fs::remove(json);
  const auto r = run_qforge("bench " + model() +
                            " --precisions fp32 --warmup 0 --duration 0 --iterations 2 --json " +
                            json.string());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("Latency split (H2D, GPU compute, D2H, enqueue): n/a, the cpu backend "
                       "does not measure it."),
            std::string::npos)
      << r.out;
  std::ifstream in(json);
  const nlohmann::json j = nlohmann::json::parse(in);
  fs::remove(json);
  const auto& row = j["results"][0];
  EXPECT_TRUE(row["latency_split_ms"].is_null());
  EXPECT_TRUE(row["cuda_graph"].is_null());
  EXPECT_TRUE(row["spin_wait"].is_null());
  EXPECT_EQ(row["data_transfers"], true);
}

}  // namespace
}  // namespace qf
