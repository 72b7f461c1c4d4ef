// The platform an engine file records and what loading does with it: another ISA (for the cuda
// backend, another GPU model or compute capability) is refused naming both, other driver and
// library versions only warn. Pure functions and the reference backend: no GPU needed.
#include <gtest/gtest.h>

#include <filesystem>

#include "onnx/importer.h"
#include "runtime/engine_file.h"
#include "runtime/gpu_isa.h"

namespace qf::runtime {
namespace {

std::filesystem::path fashion_mnist_model() {
  return std::filesystem::path(__FILE__).parent_path().parent_path().parent_path() / "models" /
         "fashion_mnist_cnn.onnx";
}

using Facts = std::vector<std::pair<std::string, std::string>>;

const Facts kH100 = {{"GPU", "NVIDIA H100 80GB HBM3"},
                     {"compute capability", "9.0"},
                     {"CUDA driver", "13.0 (580.95.05)"},
                     {"CUDA runtime", "13.0"},
                     {"cuDNN", "9.13.0"},
                     {"cuBLASLt", "13.1.0"}};

EngineFileHeader cuda_header(const std::string& isa, const Facts& facts) {
  EngineFileHeader h;
  h.backend = "cuda";
  h.isa = isa;
  for (const auto& [k, v] : facts) h.options.emplace_back(std::string(kPlatformKeyPrefix) + k, v);
  return h;
}

TEST(GpuIsaTest, FormatsAndParsesNameAndComputeCapability) {
  EXPECT_EQ(format_gpu_isa({"NVIDIA H100 80GB HBM3", 9, 0}), "NVIDIA H100 80GB HBM3 (sm_90)");
  auto h100 = parse_gpu_isa("NVIDIA H100 80GB HBM3 (sm_90)");
  ASSERT_TRUE(h100.has_value());
  EXPECT_EQ(h100->name, "NVIDIA H100 80GB HBM3");
  EXPECT_EQ(h100->major, 9);
  EXPECT_EQ(h100->minor, 0);
  auto ampere = parse_gpu_isa("NVIDIA GeForce RTX 3080 (sm_86)");
  ASSERT_TRUE(ampere.has_value());
  EXPECT_EQ(ampere->major, 8);
  EXPECT_EQ(ampere->minor, 6);
  auto blackwell = parse_gpu_isa(format_gpu_isa({"NVIDIA RTX PRO 6000 (x)", 12, 0}));
  ASSERT_TRUE(blackwell.has_value());
  EXPECT_EQ(blackwell->name, "NVIDIA RTX PRO 6000 (x)");  // a name may hold parentheses
  EXPECT_EQ(blackwell->major, 12);
  EXPECT_EQ(blackwell->minor, 0);
  for (const char* other :
       {"", "avx512_core_amx", "portable", "(sm_90)", "GPU (sm_9)", "GPU (sm_9x)", "GPU (sm_90"}) {
    EXPECT_FALSE(parse_gpu_isa(other).has_value()) << other;
  }
}

TEST(CheckIsaTest, SameOrPortableLoads) {
  const EngineFileHeader h = cuda_header("NVIDIA H100 80GB HBM3 (sm_90)", kH100);
  EXPECT_TRUE(check_isa(h, "NVIDIA H100 80GB HBM3 (sm_90)", "m.engine").ok());
  EXPECT_TRUE(check_isa(h, "", "m.engine").ok());
}

TEST(CheckIsaTest, AnotherGpuModelIsRefusedNamingBoth) {
  const EngineFileHeader h = cuda_header("NVIDIA H100 80GB HBM3 (sm_90)", kH100);
  const Status s = check_isa(h, "NVIDIA H200 (sm_90)", "m.engine");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kInvalidInput);
  EXPECT_EQ(s.message(),
            "m.engine: the engine was built on GPU 'NVIDIA H100 80GB HBM3' (compute capability "
            "9.0) but this machine's GPU is 'NVIDIA H200' (compute capability 9.0); cuda engines "
            "run only on the GPU model they were built on: rebuild it here with `qforge build`");
}

TEST(CheckIsaTest, AnotherComputeCapabilityIsRefused) {
  const EngineFileHeader h = cuda_header("NVIDIA A100-SXM4-80GB (sm_80)", {});
  const Status s = check_isa(h, "NVIDIA H100 80GB HBM3 (sm_90)", "a.engine");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kInvalidInput);
  EXPECT_NE(s.message().find("'NVIDIA A100-SXM4-80GB' (compute capability 8.0)"), std::string::npos)
      << s.message();
  EXPECT_NE(s.message().find("'NVIDIA H100 80GB HBM3' (compute capability 9.0)"), std::string::npos)
      << s.message();
}

TEST(CheckIsaTest, CpuIsasKeepTheirWording) {
  EngineFileHeader h;
  h.backend = "cpu";
  h.isa = "avx512_core_amx";
  const Status s = check_isa(h, "avx2", "c.engine");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kInvalidInput);
  EXPECT_EQ(s.message(),
            "c.engine: the engine was built for ISA 'avx512_core_amx' but the cpu backend uses "
            "'avx2' on this machine; rebuild it here with `qforge build`");
}

TEST(PlatformWarningTest, SameVersionsOrNoRecordSayNothing) {
  EXPECT_EQ(platform_warning(cuda_header("x", kH100), kH100, "m.engine"), "");
  // Files written before the platform was recorded load silently.
  EXPECT_EQ(platform_warning(cuda_header("x", {}), kH100, "m.engine"), "");
}

TEST(PlatformWarningTest, OtherVersionsWarnNamingBothAndWhatTensorRtDoes) {
  Facts here = kH100;
  here[2].second = "13.0 (580.65.06)";
  here[4].second = "9.10.2";
  const std::string w = platform_warning(cuda_header("x", kH100), here, "m.engine");
  EXPECT_EQ(w,
            "m.engine: the engine was built with CUDA driver 13.0 (580.95.05), cuDNN 9.13.0 but "
            "this machine has CUDA driver 13.0 (580.65.06), cuDNN 9.10.2; it runs, but its "
            "algorithms were chosen under the other versions, so its speed may differ (TensorRT "
            "likewise only warns about other cuDNN/cuBLAS versions; it refuses another TensorRT "
            "version or compute capability)");
  // A fact this machine does not report reads "unknown".
  const std::string missing = platform_warning(cuda_header("x", kH100), {}, "m.engine");
  EXPECT_NE(missing.find("this machine has GPU unknown"), std::string::npos) << missing;
}

// An engine that reports platform facts, around a real reference engine: header_for records
// them, the file keeps them, and loading (here with the reference backend, which reports none)
// warns without refusing.
class FactsEngine final : public Engine {
 public:
  FactsEngine(std::unique_ptr<Engine> inner, Facts facts)
      : inner_(std::move(inner)), facts_(std::move(facts)) {}
  const EngineInfo& info() const override { return inner_->info(); }
  const ir::Graph& graph() const override { return inner_->graph(); }
  Result<std::vector<Tensor>> run(const std::vector<Tensor>& inputs) override {
    return inner_->run(inputs);
  }
  Facts platform() const override { return facts_; }

 private:
  std::unique_ptr<Engine> inner_;
  Facts facts_;
};

TEST(EnginePlatformTest, FileRecordsThePlatformAndLoadingOnlyWarnsAboutIt) {
  auto model = onnx_io::load_model(fashion_mnist_model());
  ASSERT_TRUE(model.ok()) << model.status().message();
  auto built = find_backend("reference")->build(std::move(model->graph), BuildOptions{});
  ASSERT_TRUE(built.ok()) << built.status().message();
  FactsEngine engine(std::move(built).value(), kH100);

  const EngineFileHeader header = header_for(engine);
  EXPECT_EQ(recorded_platform(header), kH100);
  auto bytes = serialize_engine(header, engine.graph());
  ASSERT_TRUE(bytes.ok()) << bytes.status().message();
  auto loaded = parse_engine_file(*bytes, "m.engine");
  ASSERT_TRUE(loaded.ok()) << loaded.status().message();
  EXPECT_EQ(recorded_platform(loaded->header), kH100);

  std::string warning;
  auto rebuilt = build_loaded_engine(std::move(loaded).value(), "m.engine", std::nullopt, &warning);
  ASSERT_TRUE(rebuilt.ok()) << rebuilt.status().message();
  EXPECT_NE(warning.find("m.engine: the engine was built with GPU NVIDIA H100 80GB HBM3"),
            std::string::npos)
      << warning;
  EXPECT_NE(warning.find("cuDNN unknown"), std::string::npos) << warning;
}

// Engines without a device keep Engine's defaults: every GPU switch is refused with a reason,
// and there is no split, no device-resident rerun and no platform record.
TEST(EngineRunOptionsTest, DefaultsRefuseGpuSwitchesAndMeasureNothing) {
  auto model = onnx_io::load_model(fashion_mnist_model());
  ASSERT_TRUE(model.ok()) << model.status().message();
  auto built = find_backend("reference")->build(std::move(model->graph), BuildOptions{});
  ASSERT_TRUE(built.ok()) << built.status().message();
  Engine& e = **built;

  EXPECT_TRUE(e.set_run_options({}).ok());
  RunOptions graph;
  graph.cuda_graph = false;
  const Status g = e.set_run_options(graph);
  EXPECT_EQ(g.code(), StatusCode::kUnsupported);
  EXPECT_EQ(g.message(), "the reference backend has no CUDA graphs");
  RunOptions spin;
  spin.spin_wait = true;
  EXPECT_EQ(e.set_run_options(spin).message(), "the reference backend waits for no device");
  EXPECT_FALSE(e.run_options().cuda_graph.has_value());
  EXPECT_FALSE(e.run_options().spin_wait.has_value());

  EXPECT_TRUE(e.set_timing_breakdown(false).ok());
  EXPECT_EQ(e.set_timing_breakdown(true).code(), StatusCode::kUnsupported);
  EXPECT_FALSE(e.last_run_timing().has_value());
  EXPECT_EQ(e.run_on_device().code(), StatusCode::kUnsupported);
  EXPECT_TRUE(e.platform().empty());
}

}  // namespace
}  // namespace qf::runtime
