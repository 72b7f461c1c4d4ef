// qforge run MODEL [--input [NAME=]PATH]... [--output-dir DIR] [--shape NAME=DIMS]...
#include <filesystem>
#include <random>

#include "cli/command.h"
#include "io/npy.h"
#include "io/tensor_file.h"
#include "runtime/engine.h"

namespace qf::cli {
namespace {

struct RunOptions {
  std::string model;
  std::vector<std::string> inputs;
  std::vector<std::string> shapes;
  std::string output_dir = ".";
  std::string backend = "reference";
  std::string precision = "fp32";
  uint64_t seed = 0;
};

// Output names become file names: anything outside [A-Za-z0-9._-] turns into '_'.
std::string sanitize_file_name(const std::string& name) {
  std::string out = name;
  for (char& c : out) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) c = '_';
  }
  return out.empty() ? "_" : out;
}

int input_index(const ir::Graph& g, const std::string& name) {
  for (size_t i = 0; i < g.inputs.size(); ++i) {
    if (g.inputs[i]->name == name) return static_cast<int>(i);
  }
  return -1;
}

// Binds `--input` options to graph inputs: NAME=PATH by name, a .pb by its stored name, and
// any other bare PATH to the next unbound input in declaration order.
Result<std::vector<Tensor>> bind_inputs(const ir::Graph& g, const std::vector<std::string>& specs) {
  std::vector<Tensor> bound(g.inputs.size());
  std::vector<io::LoadedTensor> positional;
  for (const std::string& spec : specs) {
    const size_t eq = spec.find('=');
    int index = eq == std::string::npos ? -1 : input_index(g, spec.substr(0, eq));
    const std::string path = index >= 0 ? spec.substr(eq + 1) : spec;
    QF_ASSIGN_OR_RETURN(io::LoadedTensor loaded, io::load_tensor_file(path));
    if (index < 0 && !loaded.name.empty()) index = input_index(g, loaded.name);
    if (index < 0) {
      positional.push_back(std::move(loaded));
      continue;
    }
    if (bound[static_cast<size_t>(index)].defined()) {
      return usage_error("input '{}' is given twice", g.inputs[static_cast<size_t>(index)]->name);
    }
    bound[static_cast<size_t>(index)] = std::move(loaded.tensor);
  }
  size_t next = 0;
  for (io::LoadedTensor& p : positional) {
    while (next < bound.size() && bound[next].defined()) ++next;
    if (next == bound.size()) {
      return usage_error("more --input files than model inputs ({})", g.inputs.size());
    }
    bound[next] = std::move(p.tensor);
  }
  return bound;
}

// Deterministic random data for inputs the user did not give: uniform in [-1, 1] for floats,
// small non-negative integers for integer inputs (indices stay in range for typical models).
Result<Tensor> random_input(const ir::Value& input, std::mt19937_64& rng) {
  if (!input.shape) return usage_error("input '{}' has no declared shape; pass --input", input.name);
  auto shape = ir::to_concrete(*input.shape);
  if (!shape) {
    return usage_error("input '{}' has dynamic shape {}: pass --shape {}=DIMS or --input",
                       input.name, ir::sym_shape_str(input.shape), input.name);
  }
  Tensor t(input.dtype, *shape);
  std::uniform_real_distribution<double> uniform(-1.0, 1.0);
  const bool ok = visit_dtype(input.dtype, [&]<typename T>() {
    T* p = t.data<T>();
    for (int64_t i = 0; i < t.numel(); ++i) {
      const double u = uniform(rng);
      p[i] = dtype_is_float(input.dtype) ? from_double<T>(u)
                                         : from_double<T>(std::floor((u + 1.0) * 2.0));
    }
  });
  if (!ok) return unsupported("input '{}' has no element type", input.name);
  return t;
}

Status run_model(const RunOptions& opt) {
  QF_ASSIGN_OR_RETURN(onnx_io::ImportedModel model, onnx_io::load_model(opt.model));
  QF_ASSIGN_OR_RETURN(auto shapes, parse_shape_options(opt.shapes));
  QF_RETURN_IF_ERROR(apply_input_shapes(*model.graph, shapes));
  QF_ASSIGN_OR_RETURN(std::unique_ptr<runtime::Engine> engine,
                      build_engine(std::move(model.graph), opt.backend, opt.precision));
  const ir::Graph& g = engine->graph();

  QF_ASSIGN_OR_RETURN(std::vector<Tensor> inputs, bind_inputs(g, opt.inputs));
  std::mt19937_64 rng(opt.seed);
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!inputs[i].defined()) {
      QF_ASSIGN_OR_RETURN(inputs[i], random_input(*g.inputs[i], rng));
    }
  }
  QF_ASSIGN_OR_RETURN(std::vector<Tensor> outputs, engine->run(inputs));

  // Everything is computed before the first byte is written: a failure leaves no partial output.
  std::error_code ec;
  std::filesystem::create_directories(opt.output_dir, ec);
  if (ec) return invalid_input("{}: cannot create output directory: {}", opt.output_dir, ec.message());
  for (size_t i = 0; i < outputs.size(); ++i) {
    const auto path = std::filesystem::path(opt.output_dir) / (sanitize_file_name(g.outputs[i]->name) + ".npy");
    QF_RETURN_IF_ERROR(io::write_npy(path, outputs[i]));
    fmt::print("{}: {} {} -> {}\n", g.outputs[i]->name, dtype_tag(outputs[i].dtype()),
               shape_str(outputs[i].shape()), path.string());
  }
  return {};
}

}  // namespace

void add_run_command(CLI::App& app, Dispatch& dispatch) {
  auto opt = std::make_shared<RunOptions>();
  CLI::App* cmd = app.add_subcommand("run", "Run a model and write its outputs as .npy files");
  cmd->add_option("model", opt->model, "ONNX model")->required();
  cmd->add_option("-i,--input", opt->inputs,
                  "Input tensor: NAME=PATH or PATH (.npy or TensorProto .pb); repeatable");
  cmd->add_option("-o,--output-dir", opt->output_dir, "Directory for <output>.npy files")
      ->capture_default_str();
  cmd->add_option("--shape", opt->shapes, "Fix a dynamic input shape: NAME=1x3x224x224");
  add_engine_options(*cmd, opt->backend, opt->precision);
  cmd->add_option("--seed", opt->seed, "Seed for generated inputs")->capture_default_str();
  cmd->callback([opt, &dispatch] { dispatch.handler = [opt] { return run_model(*opt); }; });
}

}  // namespace qf::cli
