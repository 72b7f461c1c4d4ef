// Model tests: a torchvision model exported by PyTorch, run by the reference executor, must
// reproduce PyTorch's output.
//
// One ctest test per case (model, opset, static or dynamic batch); see CMakeLists.txt next to this
// file. The case's directory comes from the environment, filled by the ctest fixture that runs
// tools/export_torchvision.py:
//   QFORGE_MODEL_DIR            holds model.onnx, input.npy, expected.npy
//   QFORGE_MODEL_DYNAMIC_BATCH  "1" when the model was exported with a dynamic "batch" dimension
//
// Criterion: max|ours - torch| / (max(torch) - min(torch)) < 1e-4, for the reference executor and
// the cpu backend's FP32 engine. The cpu backend's BF16 and INT8 engines (INT8 calibrated with
// the entropy method on random inputs, which is all these tests have) are reported as agreement
// with FP32, and the calibrated model is written as Q/DQ ONNX and checked by libonnx's checker.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include <onnx/checker.h>
#include <onnx/onnx_pb.h>

#include "backends/reference/executor.h"
#include "bench/accuracy.h"
#include "io/npy.h"
#include "ir/op_registry.h"
#include "onnx/exporter.h"
#include "onnx/importer.h"
#include "quant/calibration.h"
#include "quant/qdq_export.h"
#include "runtime/engine.h"
#include "runtime/random_input.h"

namespace qf {
namespace {

namespace fs = std::filesystem;

constexpr double kMaxRelativeError = 1e-4;

std::string env_or_empty(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string();
}

struct Comparison {
  double max_abs_error = 0.0;
  double range = 0.0;
  int64_t worst_index = -1;
  int64_t non_finite = 0;  // elements of ours that are NaN or infinite
  double relative() const { return range > 0.0 ? max_abs_error / range : max_abs_error; }
};

Comparison compare(const Tensor& ours, const Tensor& expected) {
  Comparison c;
  const float* a = ours.data<float>();
  const float* e = expected.data<float>();
  float lo = e[0], hi = e[0];
  for (int64_t i = 0; i < expected.numel(); ++i) {
    lo = std::min(lo, e[i]);
    hi = std::max(hi, e[i]);
    if (!std::isfinite(a[i])) {
      ++c.non_finite;
      continue;
    }
    const double err = std::abs(static_cast<double>(a[i]) - static_cast<double>(e[i]));
    if (err > c.max_abs_error || c.worst_index < 0) {
      c.max_abs_error = err;
      c.worst_index = i;
    }
  }
  c.range = static_cast<double>(hi) - static_cast<double>(lo);
  return c;
}

// The first `batch` items of a tensor whose leading dimension is the batch.
Tensor leading_items(const Tensor& t, int64_t batch) {
  Shape shape = t.shape();
  shape[0] = batch;
  Tensor out(t.dtype(), shape);
  std::memcpy(out.raw(), t.raw(), out.nbytes());
  return out;
}

// Runs `executor` on `input` and checks the single output against `expected`.
void run_and_compare(const reference::Executor& executor, const Tensor& input,
                     const Tensor& expected, const std::string& what) {
  const auto start = std::chrono::steady_clock::now();
  Result<std::vector<Tensor>> outputs = executor.run({input});
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_TRUE(outputs.ok()) << what << ": run failed: " << outputs.status().message();
  ASSERT_EQ(outputs->size(), 1u) << what;
  const Tensor& ours = outputs->front();
  ASSERT_EQ(ours.dtype(), DType::kF32) << what << ": output type " << dtype_tag(ours.dtype());
  ASSERT_EQ(ours.shape(), expected.shape()) << what << ": output shape " << shape_str(ours.shape())
                                            << ", PyTorch " << shape_str(expected.shape());

  const Comparison c = compare(ours, expected);
  std::cout << fmt::format(
      "{}: {:.2f} s, max |ours - torch| = {:.3g}, output range {:.4g}, relative {:.3g}\n", what,
      seconds, c.max_abs_error, c.range, c.relative());
  EXPECT_EQ(c.non_finite, 0) << what << ": " << c.non_finite << " outputs are NaN or infinite";
  EXPECT_LT(c.relative(), kMaxRelativeError)
      << what << ": max |ours - torch| = " << c.max_abs_error << " at flat index " << c.worst_index
      << " (ours " << ours.data<float>()[c.worst_index] << ", torch "
      << expected.data<float>()[c.worst_index] << "), output range " << c.range;
}

// The case directory from the environment, with its files checked.
fs::path case_dir() {
  const std::string dir = env_or_empty("QFORGE_MODEL_DIR");
  if (dir.empty()) {
    ADD_FAILURE() << "QFORGE_MODEL_DIR is not set. Run the model tests through ctest (ctest -L "
                     "models), which exports each model with tools/export_torchvision.py first.";
  }
  return dir;
}

// Calibration samples drawn from N(0, 1), roughly what a normalised image looks like.
class RandomSamples final : public data::SampleSource {
 public:
  RandomSamples(Shape sample_shape, int64_t count) : shape_(std::move(sample_shape)), n_(count) {}
  int64_t size() const override { return n_; }
  Result<std::vector<Tensor>> batch(int64_t begin, int64_t count) override {
    Shape shape = shape_;
    shape.insert(shape.begin(), count);
    std::mt19937_64 rng(static_cast<uint64_t>(begin) + 1);
    QF_ASSIGN_OR_RETURN(Tensor t, runtime::random_tensor(DType::kF32, shape, rng));
    return std::vector<Tensor>{std::move(t)};
  }
  std::string describe() const override { return "random N(0,1) samples"; }

 private:
  Shape shape_;
  int64_t n_;
};

std::unique_ptr<ir::Graph> import_case(const fs::path& dir) {
  Result<onnx_io::ImportedModel> model = onnx_io::load_model(dir / "model.onnx");
  if (!model.ok()) {
    ADD_FAILURE() << "import failed: " << model.status().message();
    return nullptr;
  }
  return std::move(model->graph);
}

Result<Tensor> run_engine(const char* backend_name, std::unique_ptr<ir::Graph> graph,
                          const runtime::BuildOptions& options, const Tensor& input) {
  const runtime::Backend* backend = runtime::find_backend(backend_name);
  if (!backend) return unsupported("no {} backend in this build", backend_name);
  QF_ASSIGN_OR_RETURN(std::unique_ptr<runtime::Engine> engine,
                      backend->build(std::move(graph), options));
  QF_ASSIGN_OR_RETURN(std::vector<Tensor> outputs, engine->run({input}));
  return std::move(outputs.front());
}

Result<Tensor> run_cpu(std::unique_ptr<ir::Graph> graph, const runtime::BuildOptions& options,
                       const Tensor& input) {
  return run_engine("cpu", std::move(graph), options, input);
}

// The FP32 engine's output on `backend` for the case's input, held to the reference executor's
// criterion against PyTorch's expected.npy (printed, and checked with EXPECT).
Result<Tensor> fp32_against_pytorch(const char* backend, const fs::path& dir, const Tensor& input) {
  QF_ASSIGN_OR_RETURN(Tensor expected, io::read_npy(dir / "expected.npy"));
  QF_ASSIGN_OR_RETURN(Tensor fp32, run_engine(backend, import_case(dir),
                                              {.precision = runtime::Precision::kFP32}, input));
  const Comparison c = compare(fp32, expected);
  std::cout << fmt::format("{} {} fp32: max |ours - torch| = {:.3g}, relative {:.3g}\n",
                           dir.filename().string(), backend, c.max_abs_error, c.relative());
  EXPECT_EQ(c.non_finite, 0);
  EXPECT_LT(c.relative(), kMaxRelativeError);
  return fp32;
}

// INT8 build options from entropy calibration on 16 random samples (all these tests have).
Result<runtime::BuildOptions> random_calibration(const fs::path& dir, const Tensor& input) {
  std::unique_ptr<ir::Graph> graph = import_case(dir);
  if (!graph) return internal_error("import failed");
  Shape sample_shape = input.shape();
  sample_shape.erase(sample_shape.begin());
  RandomSamples samples(sample_shape, 16);
  quant::CalibrationOptions copt;
  copt.batch_size = 8;
  QF_ASSIGN_OR_RETURN(quant::CalibrationResult calibration,
                      quant::calibrate(std::move(graph), samples, copt));
  runtime::BuildOptions int8{.precision = runtime::Precision::kINT8};
  int8.activation_scales = calibration.scales;
  int8.calibration = "entropy on random samples";
  return int8;
}

// Prints the agreement and checks the cosine against a floor that only a broken engine misses
// (random inputs make top-1 of these ImageNet models a coin toss, so it is reported, not held).
void report_agreement(const std::string& what, const Tensor& fp32, const Tensor& other,
                      double min_cosine) {
  const bench::Agreement a = bench::compare_outputs(fp32, other);
  std::cout << fmt::format("{}: cosine {:.6f}, SQNR {:.1f} dB, top-1 agreement {:.0f}%\n", what,
                           a.cosine, a.sqnr_db, 100 * a.top1_agreement);
  EXPECT_GT(a.cosine, min_cosine) << what;
}

TEST(TorchvisionModel, CpuEnginesInEveryPrecision) {
  const fs::path dir = case_dir();
  if (dir.empty()) return;
  const std::string name = dir.filename().string();
  if (!runtime::find_backend("cpu")) GTEST_SKIP() << "built without the cpu backend";
  Result<Tensor> input = io::read_npy(dir / "input.npy");
  ASSERT_TRUE(input.ok()) << input.status().message();

  // FP32: the same criterion as the reference executor.
  Result<Tensor> fp32 = fp32_against_pytorch("cpu", dir, *input);
  ASSERT_TRUE(fp32.ok()) << fp32.status().message();

  if (runtime::find_backend("cpu")->supports(runtime::Precision::kBF16)) {
    Result<Tensor> bf16 =
        run_cpu(import_case(dir), {.precision = runtime::Precision::kBF16}, *input);
    ASSERT_TRUE(bf16.ok()) << bf16.status().message();
    report_agreement(name + " cpu bf16 vs fp32", *fp32, *bf16, 0.999);
  }

  // INT8: entropy calibration on 16 random samples must finish, and its engine must run.
  Result<runtime::BuildOptions> int8 = random_calibration(dir, *input);
  ASSERT_TRUE(int8.ok()) << int8.status().message();
  Result<Tensor> quantized = run_cpu(import_case(dir), *int8, *input);
  ASSERT_TRUE(quantized.ok()) << quantized.status().message();
  report_agreement(name + " cpu int8 (entropy, random calibration) vs fp32", *fp32, *quantized,
                   0.95);

  // The same scales as a Q/DQ model that ONNX's checker accepts.
  std::unique_ptr<ir::Graph> qdq = import_case(dir);
  ASSERT_TRUE(qdq);
  quant::QdqExportOptions qdq_options;
  qdq_options.activation_scales = int8->activation_scales;
  Result<quant::QdqExportReport> report = quant::insert_qdq(*qdq, qdq_options);
  ASSERT_TRUE(report.ok()) << report.status().message();
  onnx::ModelProto proto;
  ASSERT_TRUE(onnx_io::export_model(*qdq, &proto).ok());
  EXPECT_NO_THROW(onnx::checker::check_model(proto));
  std::cout << fmt::format("{} Q/DQ: {} nodes and {} weights quantized\n", name,
                           report->quantized_nodes, report->quantized_weights);
  EXPECT_GT(report->quantized_nodes, 0);
}

// The cuda backend in every precision it builds: FP32 (TF32 off) by the same criterion as the
// reference executor; TF32, FP16, BF16 and INT8 (the cpu test's random calibration) reported as
// agreement with FP32, each against a cosine floor only a broken engine misses. Skips without a
// CUDA device (CI has none; scripts/device_pack.sh and the `run` tool run it on a GPU).
TEST(TorchvisionModel, CudaEnginesInEveryPrecision) {
  const fs::path dir = case_dir();
  if (dir.empty()) return;
  const std::string name = dir.filename().string();
  const runtime::Backend* cuda = runtime::find_backend("cuda");
  if (!cuda) GTEST_SKIP() << "built without the cuda backend";
  if (!cuda->supports(runtime::Precision::kFP32)) {
    GTEST_SKIP() << cuda->unsupported_reason(runtime::Precision::kFP32);
  }
  Result<Tensor> input = io::read_npy(dir / "input.npy");
  ASSERT_TRUE(input.ok()) << input.status().message();

  Result<Tensor> fp32 = fp32_against_pytorch("cuda", dir, *input);
  ASSERT_TRUE(fp32.ok()) << fp32.status().message();

  // Floors: tf32 and fp16 keep 10 mantissa bits, bf16 7 (in storage; fp32 accumulation).
  const std::vector<std::pair<runtime::Precision, double>> floats = {
      {runtime::Precision::kTF32, 0.999},
      {runtime::Precision::kFP16, 0.999},
      {runtime::Precision::kBF16, 0.99}};
  for (const auto& [precision, floor] : floats) {
    Result<Tensor> out = run_engine("cuda", import_case(dir), {.precision = precision}, *input);
    ASSERT_TRUE(out.ok()) << runtime::precision_name(precision) << ": " << out.status().message();
    report_agreement(fmt::format("{} cuda {} vs fp32", name, runtime::precision_name(precision)),
                     *fp32, *out, floor);
  }
  Result<runtime::BuildOptions> int8 = random_calibration(dir, *input);
  ASSERT_TRUE(int8.ok()) << int8.status().message();
  Result<Tensor> quantized = run_engine("cuda", import_case(dir), *int8, *input);
  ASSERT_TRUE(quantized.ok()) << quantized.status().message();
  report_agreement(name + " cuda int8 (entropy, random calibration) vs fp32", *fp32, *quantized,
                   0.95);
}

TEST(TorchvisionModel, MatchesPyTorch) {
  const std::string dir_str = env_or_empty("QFORGE_MODEL_DIR");
  ASSERT_FALSE(dir_str.empty())
      << "QFORGE_MODEL_DIR is not set. Run the model tests through ctest (ctest -L models), "
         "which exports each model with tools/export_torchvision.py first.";
  const fs::path dir(dir_str);
  const std::string name = dir.filename().string();
  for (const char* file : {"model.onnx", "input.npy", "expected.npy"}) {
    ASSERT_TRUE(fs::is_regular_file(dir / file))
        << (dir / file).string() << " is missing: the export fixture (ctest test models.export."
        << name << ", tools/export_torchvision.py) did not produce it";
  }

  Result<onnx_io::ImportedModel> model = onnx_io::load_model(dir / "model.onnx");
  ASSERT_TRUE(model.ok()) << "import failed: " << model.status().message();
  const ir::Graph& graph = *model->graph;

  // Every unsupported operator at once, so that one run shows all the work left.
  const std::vector<Status> unsupported = onnx_io::unsupported_nodes(graph);
  if (!unsupported.empty()) {
    std::map<std::string, int> counts;
    for (const auto& n : graph.nodes()) {
      if (!ir::check_supported(*n).ok()) ++counts[n->op_type];
    }
    std::string ops;
    for (const auto& [op, count] : counts) ops += fmt::format(" {} (x{})", op, count);
    FAIL() << name << ": " << unsupported.size() << " node(s) cannot run; operators:" << ops
           << "\nfirst: " << unsupported.front().message();
  }

  ASSERT_EQ(graph.inputs.size(), 1u);
  ASSERT_EQ(graph.outputs.size(), 1u);
  const bool dynamic_batch = env_or_empty("QFORGE_MODEL_DYNAMIC_BATCH") == "1";
  const ir::Value& in = *graph.inputs.front();
  ASSERT_TRUE(in.shape.has_value() && !in.shape->empty()) << "input has no declared shape";
  if (dynamic_batch) {
    EXPECT_FALSE(in.shape->front().is_known()) << "input shape " << ir::sym_shape_str(in.shape);
    EXPECT_EQ(in.shape->front().symbol, "batch") << "input shape " << ir::sym_shape_str(in.shape);
  } else {
    EXPECT_EQ(ir::to_concrete(*in.shape), (Shape{1, 3, 224, 224}))
        << "input shape " << ir::sym_shape_str(in.shape);
  }

  Result<Tensor> input = io::read_npy(dir / "input.npy");
  ASSERT_TRUE(input.ok()) << input.status().message();
  Result<Tensor> expected = io::read_npy(dir / "expected.npy");
  ASSERT_TRUE(expected.ok()) << expected.status().message();
  ASSERT_EQ(expected->dtype(), DType::kF32);

  Result<reference::Executor> executor = reference::Executor::create(graph);
  ASSERT_TRUE(executor.ok()) << executor.status().message();

  run_and_compare(*executor, *input, *expected,
                  fmt::format("{} batch {}", name, input->shape().front()));
  if (dynamic_batch && input->shape().front() > 1) {
    // The same executor must serve another batch size: the first item alone.
    run_and_compare(*executor, leading_items(*input, 1), leading_items(*expected, 1),
                    fmt::format("{} batch 1", name));
  }
}

}  // namespace
}  // namespace qf
