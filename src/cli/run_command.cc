// qforge run MODEL [--input [NAME=]PATH]... [--output-dir DIR] [--shape NAME=DIMS]...
#include <filesystem>
#include <random>

#include "cli/command.h"
#include "core/file_util.h"
#include "io/npy.h"
#include "io/tensor_file.h"
#include "runtime/engine.h"
#include "runtime/engine_file.h"
#include "runtime/random_input.h"

namespace qf::cli {
namespace {

struct RunOptions {
  std::string model;
  std::vector<std::string> inputs;
  std::vector<std::string> shapes;
  std::string output_dir = ".";
  std::string backend;  // add_engine_options: default_backend()
  std::string precision = "auto";
  bool backend_given = false;  // an engine file fixes both; asking for others is an error
  bool precision_given = false;
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

// Inputs the user did not give get deterministic random data of their declared shape.
Result<Tensor> random_input(const ir::Value& input, std::mt19937_64& rng) {
  if (!input.shape)
    return usage_error("input '{}' has no declared shape; pass --input", input.name);
  auto shape = ir::to_concrete(*input.shape);
  if (!shape) {
    return usage_error("input '{}' has dynamic shape {}: pass --shape {}=DIMS or --input",
                       input.name, ir::sym_shape_str(input.shape), input.name);
  }
  return runtime::random_tensor(input.dtype, *shape, rng);
}

// An engine file (told apart by its magic, not its extension) or an ONNX model built here.
Result<std::unique_ptr<runtime::Engine>> open_model(const RunOptions& opt) {
  QF_ASSIGN_OR_RETURN(auto shapes, parse_shape_options(opt.shapes));
  QF_ASSIGN_OR_RETURN(std::string bytes, read_file_bytes(opt.model));
  if (!runtime::is_engine_file(bytes)) {
    QF_ASSIGN_OR_RETURN(onnx_io::ImportedModel model,
                        onnx_io::import_model_bytes(bytes, opt.model));
    QF_RETURN_IF_ERROR(apply_input_shapes(*model.graph, shapes));
    return build_engine(std::move(model.graph), opt.backend, opt.precision);
  }
  QF_ASSIGN_OR_RETURN(runtime::LoadedEngine loaded, runtime::parse_engine_file(bytes, opt.model));
  const runtime::EngineFileHeader& h = loaded.header;
  if (opt.backend_given && opt.backend != h.backend) {
    return usage_error(
        "{}: the engine was built for the {} backend, not {}; build another with "
        "`qforge build --backend {}`",
        opt.model, h.backend, opt.backend, opt.backend);
  }
  if (opt.precision_given && opt.precision != "auto" &&
      opt.precision != runtime::precision_name(h.precision)) {
    return usage_error(
        "{}: the engine was built for {}, not {}; build another with "
        "`qforge build --precision {}`",
        opt.model, runtime::precision_name(h.precision), opt.precision, opt.precision);
  }
  QF_RETURN_IF_ERROR(apply_input_shapes(*loaded.graph, shapes));
  return runtime::build_loaded_engine(std::move(loaded), opt.model);
}

Status run_model(const RunOptions& opt) {
  QF_ASSIGN_OR_RETURN(std::unique_ptr<runtime::Engine> engine, open_model(opt));
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
  if (ec)
    return invalid_input("{}: cannot create output directory: {}", opt.output_dir, ec.message());
  for (size_t i = 0; i < outputs.size(); ++i) {
    const auto path =
        std::filesystem::path(opt.output_dir) / (sanitize_file_name(g.outputs[i]->name) + ".npy");
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
  cmd->add_option("model", opt->model, "ONNX model or engine file (qforge build)")->required();
  cmd->add_option("-i,--input", opt->inputs,
                  "Input tensor: NAME=PATH or PATH (.npy or TensorProto .pb); repeatable");
  cmd->add_option("-o,--output-dir", opt->output_dir, "Directory for <output>.npy files")
      ->capture_default_str();
  cmd->add_option("--shape", opt->shapes, "Fix a dynamic input shape: NAME=1x3x224x224");
  add_engine_options(*cmd, opt->backend, opt->precision);
  cmd->add_option("--seed", opt->seed, "Seed for generated inputs")->capture_default_str();
  cmd->callback([opt, cmd, &dispatch] {
    opt->backend_given = cmd->count("--backend") > 0;
    opt->precision_given = cmd->count("--precision") > 0;
    dispatch.handler = [opt] { return run_model(*opt); };
  });
}

}  // namespace qf::cli
