// Model tests: a torchvision model exported by PyTorch, run by the reference executor, must
// reproduce PyTorch's output.
//
// One ctest test per case (model, opset, static or dynamic batch); see CMakeLists.txt next to this
// file. The case's directory comes from the environment, filled by the ctest fixture that runs
// tools/export_torchvision.py:
//   QFORGE_MODEL_DIR            holds model.onnx, input.npy, expected.npy
//   QFORGE_MODEL_DYNAMIC_BATCH  "1" when the model was exported with a dynamic "batch" dimension
//
// Criterion: max|ours - torch| / (max(torch) - min(torch)) < 1e-4.
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
#include <string>
#include <vector>

#include "backends/reference/executor.h"
#include "io/npy.h"
#include "ir/op_registry.h"
#include "onnx/importer.h"

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
