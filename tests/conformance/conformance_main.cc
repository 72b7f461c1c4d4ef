// Runs ONNX's own conformance data (Debian package libonnx-testdata) through the reference
// executor. Every case whose ops qforge supports must match the suite's expected outputs with
// its tolerances (rtol 1e-3, atol 1e-7) or be listed in expected_failures.txt with a reason;
// a listed case that starts passing is also an error, so the list stays true.
//
// Cases are discovered from the data directory and the op registry: supporting a new op makes
// its cases run without touching this file.
#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "backends/reference/executor.h"
#include "onnx/importer.h"
#include "onnx/tensor_proto.h"

namespace fs = std::filesystem;
using qf::Result;
using qf::Status;
using qf::Tensor;

namespace {

constexpr double kRtol = 1e-3;
constexpr double kAtol = 1e-7;
constexpr const char* kSuites[] = {"node", "pytorch-converted", "pytorch-operator", "simple"};

enum class Outcome { kPass, kFail, kNotCovered };

struct CaseResult {
  Outcome outcome;
  std::string detail;
};

// Files input_0.pb, input_1.pb ... in index order (a plain sort would put 10 before 2).
std::vector<fs::path> numbered_files(const fs::path& dir, const std::string& prefix) {
  std::vector<fs::path> out;
  for (int i = 0;; ++i) {
    fs::path p = dir / fmt::format("{}_{}.pb", prefix, i);
    if (!fs::exists(p)) break;
    out.push_back(p);
  }
  return out;
}

std::string compare(const Tensor& got, const Tensor& want, const std::string& name) {
  if (got.dtype() != want.dtype()) {
    return fmt::format("output '{}': type {} but expected {}", name, qf::dtype_tag(got.dtype()),
                       qf::dtype_tag(want.dtype()));
  }
  if (got.shape() != want.shape()) {
    return fmt::format("output '{}': shape {} but expected {}", name, qf::shape_str(got.shape()),
                       qf::shape_str(want.shape()));
  }
  const bool exact = !qf::dtype_is_float(want.dtype());
  for (int64_t i = 0; i < want.numel(); ++i) {
    const double g = got.element_as_double(i);
    const double w = want.element_as_double(i);
    if (std::isnan(w) && std::isnan(g)) continue;
    if (std::isinf(w) && g == w) continue;
    const bool ok = exact ? g == w : std::fabs(g - w) <= kAtol + kRtol * std::fabs(w);
    if (!ok) {
      return fmt::format("output '{}': element {} is {} but expected {}", name, i, g, w);
    }
  }
  return {};
}

// The suite stores bfloat16 data as UINT16 tensors (numpy has no bfloat16): reinterpret the
// bits when the graph declares bf16 there.
Tensor as_declared(Tensor t, qf::DType declared) {
  if (declared != qf::DType::kBF16 || t.dtype() != qf::DType::kU16) return t;
  Tensor out(qf::DType::kBF16, t.shape());
  std::memcpy(out.raw(), t.raw(), t.nbytes());
  return out;
}

CaseResult run_case(const fs::path& case_dir) {
  auto model = qf::onnx_io::load_model(case_dir / "model.onnx");
  if (!model.ok()) {
    // Unsupported element types or attribute kinds mean the case is outside our scope; any
    // other import error on the suite's valid models is a bug.
    if (model.status().code() == qf::StatusCode::kUnsupported) {
      return {Outcome::kNotCovered, model.status().message()};
    }
    return {Outcome::kFail, model.status().message()};
  }
  const qf::ir::Graph& g = *model->graph;
  if (auto unsupported = qf::onnx_io::unsupported_nodes(g); !unsupported.empty()) {
    return {Outcome::kNotCovered, unsupported.front().message()};
  }
  auto executor = qf::reference::Executor::create(g);
  if (!executor.ok()) return {Outcome::kFail, executor.status().message()};

  int datasets = 0;
  for (int set = 0;; ++set) {
    const fs::path data = case_dir / fmt::format("test_data_set_{}", set);
    if (!fs::is_directory(data)) break;
    ++datasets;
    std::vector<Tensor> inputs;
    for (const fs::path& p : numbered_files(data, "input")) {
      auto t = qf::onnx_io::read_tensor_pb(p);
      if (!t.ok()) return {Outcome::kNotCovered, t.status().message()};
      const size_t index = inputs.size();
      const qf::DType declared =
          index < g.inputs.size() ? g.inputs[index]->dtype : qf::DType::kUndefined;
      inputs.push_back(as_declared(t->tensor, declared));
    }
    auto outputs = executor->run(inputs);
    if (!outputs.ok()) {
      const auto outcome = outputs.status().code() == qf::StatusCode::kUnsupported
                               ? Outcome::kNotCovered
                               : Outcome::kFail;
      return {outcome, outputs.status().message()};
    }
    const std::vector<fs::path> expected = numbered_files(data, "output");
    if (expected.size() > outputs->size()) {
      return {Outcome::kFail,
              fmt::format("{} outputs, expected {}", outputs->size(), expected.size())};
    }
    for (size_t i = 0; i < expected.size(); ++i) {
      auto want = qf::onnx_io::read_tensor_pb(expected[i]);
      if (!want.ok()) return {Outcome::kNotCovered, want.status().message()};
      const Tensor expected_tensor = as_declared(want->tensor, g.outputs[i]->dtype);
      std::string mismatch = compare((*outputs)[i], expected_tensor, g.outputs[i]->name);
      if (!mismatch.empty()) return {Outcome::kFail, fmt::format("data set {}: {}", set, mismatch)};
    }
  }
  if (datasets == 0) return {Outcome::kNotCovered, "no test data"};
  return {Outcome::kPass, {}};
}

// "suite/case  reason" per line; '#' starts a comment.
std::map<std::string, std::string> read_expected_failures(const fs::path& path) {
  std::map<std::string, std::string> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    const size_t space = line.find_first_of(" \t");
    const std::string key = line.substr(0, space);
    const size_t reason = space == std::string::npos ? space : line.find_first_not_of(" \t", space);
    out[key] = reason == std::string::npos ? "" : line.substr(reason);
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  fs::path root = "/usr/share/libonnx-testdata/data";
  fs::path expected_path;
  std::string filter;
  bool verbose = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--data" && i + 1 < argc)
      root = argv[++i];
    else if (arg == "--expected-failures" && i + 1 < argc)
      expected_path = argv[++i];
    else if (arg == "--filter" && i + 1 < argc)
      filter = argv[++i];
    else if (arg == "-v" || arg == "--verbose")
      verbose = true;
    else {
      fmt::print(stderr, "usage: {} [--data DIR] [--expected-failures FILE] [--filter TEXT] [-v]\n",
                 argv[0]);
      return 1;
    }
  }
  if (!fs::is_directory(root / "node")) {
    fmt::print(stderr, "conformance: no ONNX test data at {} (install libonnx-testdata)\n",
               root.string());
    return 1;
  }
  const auto expected_failures = read_expected_failures(expected_path);

  int passed = 0, known = 0, not_covered = 0, failed = 0, total = 0;
  std::set<std::string> seen;
  for (const char* suite : kSuites) {
    std::vector<fs::path> cases;
    for (const auto& entry : fs::directory_iterator(root / suite)) {
      if (fs::exists(entry.path() / "model.onnx")) cases.push_back(entry.path());
    }
    std::sort(cases.begin(), cases.end());
    for (const fs::path& dir : cases) {
      const std::string key = fmt::format("{}/{}", suite, dir.filename().string());
      if (!filter.empty() && key.find(filter) == std::string::npos) continue;
      seen.insert(key);
      ++total;
      const CaseResult r = run_case(dir);
      const auto listed = expected_failures.find(key);
      switch (r.outcome) {
        case Outcome::kNotCovered:
          ++not_covered;
          if (verbose) fmt::print("SKIP {}: {}\n", key, r.detail);
          break;
        case Outcome::kPass:
          if (listed != expected_failures.end()) {
            ++failed;
            fmt::print("UNEXPECTED PASS {} (listed as: {}): remove it from the list\n", key,
                       listed->second);
          } else {
            ++passed;
            if (verbose) fmt::print("PASS {}\n", key);
          }
          break;
        case Outcome::kFail:
          if (listed != expected_failures.end()) {
            ++known;
            if (verbose) fmt::print("KNOWN {}: {} ({})\n", key, r.detail, listed->second);
          } else {
            ++failed;
            fmt::print("FAIL {}: {}\n", key, r.detail);
          }
          break;
      }
    }
  }
  const int covered = passed + known + failed;
  fmt::print(
      "conformance: {}/{} supported cases pass, {} known failures listed, {} failing; "
      "{} of {} cases use unsupported ops or types\n",
      passed, covered, known, failed, not_covered, total);
  return failed == 0 ? 0 : 1;
}
