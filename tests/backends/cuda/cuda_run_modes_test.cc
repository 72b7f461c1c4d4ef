// The cuda engine's measurement side: the timing breakdown (H2D, compute, D2H, enqueue), runs
// without data transfers, the CUDA graph switch, spin-waiting, and the platform facts engine
// files record. Every test skips without a CUDA device (CI has none).
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <cstdio>
#include <cstring>
#include <fstream>

#include "backends/cuda/cuda_test_util.h"
#include "runtime/engine_file.h"
#include "runtime/gpu_isa.h"
#include "runtime/timing_cache.h"

namespace qf {
namespace {

using onnx::TensorProto;
using runtime::Precision;
using testing::cuda_backend;
using testing::ModelBuilder;
using testing::note_of;

// conv -> relu -> flatten -> gemm: every node on the device, so the plan can be a CUDA graph.
// With `host_op`, an Elu (no CUDA kernel) runs on the host in between.
std::unique_ptr<runtime::Engine> small_cnn(Precision p, bool host_op,
                                           const std::string& timing_cache = "") {
  ModelBuilder b(17);
  b.input("x", TensorProto::FLOAT, {2, 3, 10, 10});
  b.initializer("w", testing::layer_weights({8, 3, 3, 3}, 1));
  b.initializer("b", testing::random_tensor({8}, 2));
  auto& conv = b.node("Conv", {"x", "w", "b"}, {"c"}, "conv");
  testing::set_ints_attr(conv, "pads", {1, 1, 1, 1});
  b.node("Relu", {"c"}, {"r"}, "relu");
  std::string last = "r";
  if (host_op) {
    b.node("Elu", {"r"}, {"e"}, "elu");
    last = "e";
  }
  auto& flat = b.node("Flatten", {last}, {"f"}, "flatten");
  testing::set_int_attr(flat, "axis", 1);
  b.initializer("wf", testing::layer_weights({5, 8 * 10 * 10}, 3));
  auto& gemm = b.node("Gemm", {"f", "wf"}, {"y"}, "fc");
  testing::set_int_attr(gemm, "transB", 1);
  testing::untyped_output(b, "y");
  auto model = onnx_io::import_model_bytes(b.serialize(), "cnn.onnx");
  EXPECT_TRUE(model.ok()) << model.status().message();
  if (!model.ok()) return nullptr;
  runtime::BuildOptions options;
  options.precision = p;
  options.timing_cache = timing_cache;
  auto engine = cuda_backend()->build(std::move(model->graph), options);
  EXPECT_TRUE(engine.ok()) << engine.status().message();
  return engine.ok() ? std::move(engine).value() : nullptr;
}

std::vector<Tensor> cnn_input(uint32_t seed) {
  return {testing::random_tensor({2, 3, 10, 10}, seed)};
}

// The same plan, kernels and algorithms on the same inputs: equal up to rounding (a library
// may reduce in another order between launch modes).
void expect_same(const Tensor& a, const Tensor& b, const std::string& what) {
  ASSERT_EQ(a.shape(), b.shape()) << what;
  EXPECT_LE(testing::relative_error(a, b), 1e-5) << what;
}

TEST(CudaRunModesTest, TimingBreakdownSplitsEveryRun) {
  QF_REQUIRE_CUDA_DEVICE();
  auto engine = small_cnn(Precision::kFP16, false);
  ASSERT_TRUE(engine);
  EXPECT_FALSE(engine->last_run_timing().has_value());  // off until asked for
  ASSERT_TRUE(engine->set_timing_breakdown(true).ok());
  ASSERT_TRUE(engine->run(cnn_input(1)).ok());
  const auto t = engine->last_run_timing();
  ASSERT_TRUE(t.has_value());
  ASSERT_TRUE(t->h2d_ms.has_value());
  ASSERT_TRUE(t->d2h_ms.has_value());
  EXPECT_GT(*t->h2d_ms, 0.0);
  EXPECT_GT(t->compute_ms, 0.0);
  EXPECT_GT(*t->d2h_ms, 0.0);
  EXPECT_GT(t->enqueue_ms, 0.0);
  EXPECT_LT(t->compute_ms, 1000.0);
  ASSERT_TRUE(engine->set_timing_breakdown(false).ok());
  EXPECT_FALSE(engine->last_run_timing().has_value());
}

TEST(CudaRunModesTest, RunOnDeviceRepeatsTheComputeWithoutCopies) {
  QF_REQUIRE_CUDA_DEVICE();
  auto engine = small_cnn(Precision::kFP32, false);
  ASSERT_TRUE(engine);
  const Status before = engine->run_on_device();  // nothing on the device yet
  EXPECT_EQ(before.code(), StatusCode::kInvalidInput) << before.message();
  ASSERT_TRUE(engine->set_timing_breakdown(true).ok());
  auto first = engine->run(cnn_input(7));
  ASSERT_TRUE(first.ok()) << first.status().message();
  for (int i = 0; i < 3; ++i) {
    const Status s = engine->run_on_device();
    ASSERT_TRUE(s.ok()) << s.message();
    const auto t = engine->last_run_timing();
    ASSERT_TRUE(t.has_value());
    EXPECT_FALSE(t->h2d_ms.has_value());
    EXPECT_FALSE(t->d2h_ms.has_value());
    EXPECT_GT(t->compute_ms, 0.0);
  }
  // The reruns left the uploaded inputs and the weights intact: a normal run agrees exactly.
  auto again = engine->run(cnn_input(7));
  ASSERT_TRUE(again.ok()) << again.status().message();
  expect_same((*again)[0], (*first)[0], "after runs on the device");
}

TEST(CudaRunModesTest, CudaGraphSwitchesAndAgreesWithEagerLaunches) {
  QF_REQUIRE_CUDA_DEVICE();
  auto engine = small_cnn(Precision::kFP16, false);
  ASSERT_TRUE(engine);
  auto graphed = engine->run(cnn_input(3));
  ASSERT_TRUE(graphed.ok()) << graphed.status().message();
  ASSERT_TRUE(engine->run_options().cuda_graph.has_value());
  EXPECT_TRUE(*engine->run_options().cuda_graph) << "on by default (QFORGE_CUDA_NO_GRAPH unset?)";

  runtime::RunOptions off;
  off.cuda_graph = false;
  ASSERT_TRUE(engine->set_run_options(off).ok());
  auto eager = engine->run(cnn_input(3));
  ASSERT_TRUE(eager.ok()) << eager.status().message();
  EXPECT_FALSE(*engine->run_options().cuda_graph);
  expect_same((*eager)[0], (*graphed)[0], "eager vs graph");

  runtime::RunOptions on;
  on.cuda_graph = true;
  ASSERT_TRUE(engine->set_run_options(on).ok());
  ASSERT_TRUE(engine->run(cnn_input(3)).ok());
  EXPECT_TRUE(*engine->run_options().cuda_graph);
}

// Profiling launches eagerly (no graph replay) and times every step of the plan on the device.
TEST(CudaRunModesTest, ProfilingTimesEveryStepEagerly) {
  QF_REQUIRE_CUDA_DEVICE();
  auto engine = small_cnn(Precision::kFP16, false);
  ASSERT_TRUE(engine);
  EXPECT_TRUE(engine->profile().empty());  // nothing profiled yet
  ASSERT_TRUE(engine->set_profiling(true).ok());
  auto profiled = engine->run(cnn_input(5));
  ASSERT_TRUE(profiled.ok()) << profiled.status().message();
  EXPECT_FALSE(*engine->run_options().cuda_graph);
  const std::vector<runtime::LayerProfile> layers = engine->profile();
  ASSERT_FALSE(layers.empty());
  bool conv = false;
  for (const runtime::LayerProfile& l : layers) {
    EXPECT_GE(l.ms, 0.0) << l.name;
    conv = conv || l.name.find("conv") != std::string::npos;
  }
  EXPECT_TRUE(conv) << "no step names the convolution";
  ASSERT_TRUE(engine->set_profiling(false).ok());
  auto replayed = engine->run(cnn_input(5));
  ASSERT_TRUE(replayed.ok()) << replayed.status().message();
  EXPECT_TRUE(*engine->run_options().cuda_graph);
  expect_same(profiled->front(), replayed->front(), "profiled vs graph replay");
}

// Tactics: the first build times the convolution's candidate algorithms and writes the timing
// cache; a second build takes the choice from it, times nothing, and computes the same.
TEST(CudaRunModesTest, TimingCacheIsWrittenThenReused) {
  QF_REQUIRE_CUDA_DEVICE();
  const std::string file = ::testing::TempDir() + "qf_cuda_timing.cache";
  std::remove(file.c_str());
  auto first = small_cnn(Precision::kFP16, false, file);
  ASSERT_TRUE(first);
  const std::string timed = note_of(first->info(), "conv");
  EXPECT_NE(timed.find("timed"), std::string::npos) << timed;
  auto cache = runtime::TimingCache::load(file, "unused");
  ASSERT_FALSE(cache.ok()) << "the cache names its device, which is not 'unused'";
  std::ifstream in(file);
  std::string magic;
  std::getline(in, magic);
  EXPECT_EQ(magic, "qforge-timing-cache 1");

  auto second = small_cnn(Precision::kFP16, false, file);
  ASSERT_TRUE(second);
  const std::string cached = note_of(second->info(), "conv");
  EXPECT_NE(cached.find("timing cache"), std::string::npos) << cached;
  EXPECT_EQ(testing::kernel_of(second->info(), "conv"), testing::kernel_of(first->info(), "conv"));
  bool noted = false;
  for (const std::string& n : second->info().notes) {
    noted = noted ||
            n.find("1 convolution(s) took their tactic from it, 0 were timed") != std::string::npos;
  }
  EXPECT_TRUE(noted) << "no note of the cache hit";
  auto a = first->run(cnn_input(7));
  auto b = second->run(cnn_input(7));
  ASSERT_TRUE(a.ok() && b.ok());
  expect_same(a->front(), b->front(), "timed vs cached tactic");
  std::remove(file.c_str());
}

// An engine file records each layer's tactic; its rebuild takes them as they were, times
// nothing, and computes exactly what the built engine computed.
TEST(CudaRunModesTest, EngineFilesKeepTheirTactics) {
  QF_REQUIRE_CUDA_DEVICE();
  auto built = small_cnn(Precision::kFP16, false);
  ASSERT_TRUE(built);
  ASSERT_FALSE(built->info().tactics.empty()) << "the convolution had one candidate only";
  auto bytes = runtime::serialize_engine(runtime::header_for(*built), built->graph());
  ASSERT_TRUE(bytes.ok()) << bytes.status().message();
  auto parsed = runtime::parse_engine_file(*bytes, "cnn.engine");
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  auto loaded = runtime::build_loaded_engine(std::move(parsed).value(), "cnn.engine");
  ASSERT_TRUE(loaded.ok()) << loaded.status().message();
  EXPECT_EQ((*loaded)->info().tactics, built->info().tactics);
  EXPECT_NE(note_of((*loaded)->info(), "conv").find("engine file"), std::string::npos)
      << note_of((*loaded)->info(), "conv");
  auto a = built->run(cnn_input(9));
  auto b = (*loaded)->run(cnn_input(9));
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_EQ(a->front().shape(), b->front().shape());
  EXPECT_EQ(std::memcmp(a->front().raw(), b->front().raw(), a->front().nbytes()), 0)
      << "same kernels on the same inputs must give the same bits";
}

TEST(CudaRunModesTest, HostFallbackPlansRunEagerEvenWithGraphsOn) {
  QF_REQUIRE_CUDA_DEVICE();
  auto engine = small_cnn(Precision::kFP32, true);
  ASSERT_TRUE(engine);
  ASSERT_TRUE(engine->set_timing_breakdown(true).ok());
  ASSERT_TRUE(engine->run(cnn_input(4)).ok());
  EXPECT_FALSE(*engine->run_options().cuda_graph);  // what ran, not what was asked
  ASSERT_TRUE(engine->run_on_device().ok());        // host steps read the staged inputs still
  const auto t = engine->last_run_timing();
  ASSERT_TRUE(t.has_value());
  EXPECT_GT(t->compute_ms, 0.0);
}

TEST(CudaRunModesTest, SpinWaitGivesTheSameResults) {
  QF_REQUIRE_CUDA_DEVICE();
  auto engine = small_cnn(Precision::kBF16, false);
  ASSERT_TRUE(engine);
  auto blocking = engine->run(cnn_input(5));
  ASSERT_TRUE(blocking.ok()) << blocking.status().message();
  EXPECT_FALSE(*engine->run_options().spin_wait);
  runtime::RunOptions spin;
  spin.spin_wait = true;
  ASSERT_TRUE(engine->set_run_options(spin).ok());
  EXPECT_TRUE(*engine->run_options().spin_wait);
  for (int i = 0; i < 3; ++i) {
    auto spun = engine->run(cnn_input(5));
    ASSERT_TRUE(spun.ok()) << spun.status().message();
    expect_same((*spun)[0], (*blocking)[0], "spin-wait");
  }
  ASSERT_TRUE(engine->run_on_device().ok());
}

TEST(CudaRunModesTest, EngineFilesRecordThePlatformAndRefuseAnotherGpu) {
  QF_REQUIRE_CUDA_DEVICE();
  auto engine = small_cnn(Precision::kFP16, false);
  ASSERT_TRUE(engine);
  const auto facts = engine->platform();
  std::vector<std::string> keys;
  for (const auto& [k, v] : facts) {
    keys.push_back(k);
    EXPECT_FALSE(v.empty()) << k;
  }
  const std::vector<std::string> want = {
      "GPU", "compute capability", "CUDA driver", "CUDA runtime", "cuDNN", "cuBLASLt"};
  EXPECT_EQ(keys, want);
  // The recorded GPU and compute capability are the ISA's, which decides whether a file loads.
  const auto isa = runtime::parse_gpu_isa(engine->info().isa);
  ASSERT_TRUE(isa.has_value()) << engine->info().isa;
  EXPECT_EQ(isa->name, facts[0].second);
  EXPECT_EQ(fmt::format("{}.{}", isa->major, isa->minor), facts[1].second);

  runtime::EngineFileHeader header = runtime::header_for(*engine);
  EXPECT_EQ(runtime::recorded_platform(header), facts);
  EXPECT_TRUE(runtime::check_isa(header, cuda_backend()->current_isa(), "m.engine").ok());
  EXPECT_EQ(runtime::platform_warning(header, facts, "m.engine"), "");

  // The same file on another GPU model: refused, both named.
  header.isa = "NVIDIA Imaginary GPU (sm_90)";
  const Status s = runtime::check_isa(header, cuda_backend()->current_isa(), "m.engine");
  EXPECT_EQ(s.code(), StatusCode::kInvalidInput);
  EXPECT_NE(s.message().find("'NVIDIA Imaginary GPU'"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("'" + facts[0].second + "'"), std::string::npos) << s.message();

  // Saved and loaded here: it loads without a warning and runs like the original.
  header = runtime::header_for(*engine);
  auto bytes = runtime::serialize_engine(header, engine->graph());
  ASSERT_TRUE(bytes.ok()) << bytes.status().message();
  auto loaded = runtime::parse_engine_file(*bytes, "m.engine");
  ASSERT_TRUE(loaded.ok()) << loaded.status().message();
  std::string warning = "unset";
  auto rebuilt =
      runtime::build_loaded_engine(std::move(loaded).value(), "m.engine", std::nullopt, &warning);
  ASSERT_TRUE(rebuilt.ok()) << rebuilt.status().message();
  EXPECT_EQ(warning, "");
  auto want_out = engine->run(cnn_input(9));
  auto got_out = (*rebuilt)->run(cnn_input(9));
  ASSERT_TRUE(want_out.ok() && got_out.ok());
  expect_same((*got_out)[0], (*want_out)[0], "loaded engine");
}

}  // namespace
}  // namespace qf
