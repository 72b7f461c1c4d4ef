// qforge inspect MODEL [--shape NAME=DIMS]... [--precision P [--backend B]]: what a model is made
// of and what it costs; with a precision (or for an engine file), also the engine it builds:
// which nodes run in int8 and which in float, and why.
#include <fmt/ranges.h>

#include <algorithm>
#include <map>

#include "cli/command.h"
#include "core/file_util.h"
#include "ir/op_registry.h"
#include "runtime/engine_file.h"

namespace qf::cli {
namespace {

struct InspectOptions {
  std::string model;
  std::vector<std::string> shapes;
  bool layers = true;
  std::string backend;
  std::string precision;  // empty: the model only, no engine
};

std::string human_count(double n) {
  const char* units[] = {"", "K", "M", "G", "T"};
  int u = 0;
  while (n >= 1000.0 && u < 4) {
    n /= 1000.0;
    ++u;
  }
  return u == 0 ? fmt::format("{:.0f}", n) : fmt::format("{:.2f}{}", n, units[u]);
}

std::string value_line(const ir::Value& v) {
  return fmt::format("{} {} {}", v.name, dtype_tag(v.dtype), ir::sym_shape_str(v.shape));
}

// "0.00787 (int8, zero point 0)" or "per-axis 1: 64 scales in [0.001, 0.02] (int8)".
std::string scale_words(const ir::Node& n) {
  const ir::Value* scale = n.has_input(1) ? n.inputs[1] : nullptr;
  const ir::Value* zero = n.has_input(2) ? n.inputs[2] : nullptr;
  const std::string type =
      zero && zero->dtype != DType::kUndefined ? std::string(dtype_tag(zero->dtype)) : "u8";
  if (!scale || !scale->is_constant() || scale->constant.dtype() != DType::kF32) {
    return "scale computed at run time";
  }
  const auto values = scale->constant.span<float>();
  if (values.size() == 1) {
    const double zp = zero && zero->is_constant() && zero->constant.numel() == 1
                          ? zero->constant.element_as_double(0)
                          : 0.0;
    return fmt::format("scale {:.6g}, zero point {:g} ({})", values[0], zp, type);
  }
  const auto [lo, hi] = std::minmax_element(values.begin(), values.end());
  return fmt::format("per-axis {}: {} scales in [{:.3g}, {:.3g}] ({})", n.attrs.get_int("axis", 1),
                     values.size(), *lo, *hi, type);
}

// The quantization a Q/DQ (explicitly quantized) model carries, per tensor, as the graph says.
void print_qdq(const ir::Graph& g) {
  std::vector<const ir::Node*> qdq;
  for (const auto& n : g.nodes()) {
    if (n->domain.empty() && (n->op_type == "QuantizeLinear" || n->op_type == "DequantizeLinear")) {
      qdq.push_back(n.get());
    }
  }
  if (qdq.empty()) return;
  fmt::print("Quantization (from the graph's Q/DQ nodes, {}):\n", qdq.size());
  for (const ir::Node* n : qdq) {
    const ir::Value* x = n->has_input(0) ? n->inputs[0] : nullptr;
    const char* what = n->op_type == "QuantizeLinear" ? "Q " : "DQ";
    const bool weight = x && x->is_constant();
    fmt::print("  {} {:<40} {}{}\n", what, x ? x->name : "?", scale_words(*n),
               weight ? " [weight]" : "");
  }
}

// Dynamic input dims are fixed to 1 (or --shape) so that per-layer costs can be counted.
Result<std::vector<std::string>> fix_dynamic_inputs(ir::Graph& g,
                                                    const std::vector<std::string>& specs) {
  QF_ASSIGN_OR_RETURN(auto shapes, parse_shape_options(specs));
  std::vector<std::string> assumed;
  for (ir::Value* in : g.inputs) {
    if (shapes.count(in->name) || !in->shape || ir::to_concrete(*in->shape)) continue;
    Shape s;
    for (const ir::Dim& d : *in->shape) s.push_back(d.is_known() ? d.value : 1);
    assumed.push_back(fmt::format("{}={}", in->name, shape_str(s)));
    shapes[in->name] = s;
  }
  QF_RETURN_IF_ERROR(apply_input_shapes(g, shapes));
  return assumed;
}

// An engine file: its header and the kernels it runs once loaded here.
Status inspect_engine_file(const InspectOptions& opt, const std::string& bytes) {
  if (!opt.backend.empty() || !opt.precision.empty()) {
    return usage_error("{}: an engine file has its backend and precision; drop --backend and "
                       "--precision",
                       opt.model);
  }
  QF_ASSIGN_OR_RETURN(runtime::LoadedEngine loaded, runtime::parse_engine_file(bytes, opt.model));
  fmt::print("Engine file: {}\n", opt.model);
  fmt::print("  built from: {} ({} bytes, fnv1a64:{:016x}) by {}\n", loaded.header.model_name,
             loaded.header.model_size, loaded.header.model_hash, loaded.header.producer);
  fmt::print("  backend: {}   precision: {}   ISA: {}\n", loaded.header.backend,
             runtime::precision_name(loaded.header.precision), loaded.header.isa);
  QF_ASSIGN_OR_RETURN(std::unique_ptr<runtime::Engine> engine,
                      runtime::build_loaded_engine(std::move(loaded), opt.model));
  print_engine_plan(engine->info());
  return {};
}

Status inspect_model(const InspectOptions& opt) {
  QF_ASSIGN_OR_RETURN(std::string bytes, read_file_bytes(opt.model));
  if (runtime::is_engine_file(bytes)) return inspect_engine_file(opt, bytes);
  QF_ASSIGN_OR_RETURN(onnx_io::ImportedModel model, onnx_io::import_model_bytes(bytes, opt.model));
  ir::Graph& g = *model.graph;
  fmt::print("Model: {}\n", opt.model);
  fmt::print("  producer: {}   IR version: {}   opset: {}\n",
             model.producer.empty() ? "unknown" : model.producer, model.ir_version, g.opset());
  for (const auto& [domain, version] : g.opset_imports) {
    if (!domain.empty()) fmt::print("  opset import: {} {}\n", domain, version);
  }
  fmt::print("Inputs ({}):\n", g.inputs.size());
  for (const ir::Value* v : g.inputs) fmt::print("  {}\n", value_line(*v));
  fmt::print("Outputs ({}):\n", g.outputs.size());
  for (const ir::Value* v : g.outputs) fmt::print("  {}\n", value_line(*v));

  int64_t params = 0, param_bytes = 0;
  for (const ir::Value* c : g.constants()) {
    params += c->constant.numel();
    param_bytes += static_cast<int64_t>(c->constant.nbytes());
  }
  fmt::print("Parameters: {} ({} bytes in {} initializers)\n", human_count(double(params)),
             param_bytes, g.constants().size());

  std::map<std::string, int> histogram;
  for (const auto& n : g.nodes()) ++histogram[n->op_type];
  fmt::print("Nodes: {}\n", g.nodes().size());
  for (const auto& [op, count] : histogram) fmt::print("  {:<24} {}\n", op, count);

  print_qdq(g);

  QF_ASSIGN_OR_RETURN(std::vector<std::string> assumed, fix_dynamic_inputs(g, opt.shapes));
  fmt::print("Layers (MACs counted for {}):\n",
             assumed.empty() ? "the declared shapes" : fmt::format("{}", fmt::join(assumed, ", ")));
  int64_t total_macs = 0;
  bool complete = true;
  for (const auto& n : g.nodes()) {
    const ir::OpDef* def = ir::OpRegistry::global().find(n->domain, n->op_type, n->opset);
    if (!def || !def->macs) continue;
    const std::optional<int64_t> macs = def->macs(*n);
    if (!macs) complete = false;
    total_macs += macs.value_or(0);
    if (opt.layers) {
      const ir::Value* out = n->outputs.empty() ? nullptr : n->outputs[0];
      fmt::print("  {:<40} {:<14} {:>10} MACs  -> {}\n", n->name.empty() ? n->label() : n->name,
                 n->op_type, macs ? human_count(double(*macs)) : "?",
                 out ? ir::sym_shape_str(out->shape) : "");
    }
  }
  fmt::print("Total: {} MACs, {} FLOPs (2 per MAC; Conv/Gemm/MatMul only){}\n",
             human_count(double(total_macs)), human_count(2.0 * double(total_macs)),
             complete ? "" : " - incomplete: some shapes are unknown");

  const std::vector<Status> unsupported = onnx_io::unsupported_nodes(g);
  if (unsupported.empty()) {
    fmt::print("Unsupported ops: none\n");
  } else {
    fmt::print("Unsupported ops ({}):\n", unsupported.size());
    for (const Status& s : unsupported) fmt::print("  {}\n", s.message());
  }
  if (opt.precision.empty()) return {};
  // The engine is built from a fresh import: the summary above fixed dynamic dims in place.
  QF_ASSIGN_OR_RETURN(onnx_io::ImportedModel fresh, onnx_io::import_model_bytes(bytes, opt.model));
  QF_ASSIGN_OR_RETURN(auto shapes, parse_shape_options(opt.shapes));
  QF_RETURN_IF_ERROR(apply_input_shapes(*fresh.graph, shapes));
  const std::string backend = opt.backend.empty() ? default_backend() : opt.backend;
  QF_ASSIGN_OR_RETURN(std::unique_ptr<runtime::Engine> engine,
                      build_engine(std::move(fresh.graph), backend, opt.precision));
  print_engine_plan(engine->info());
  return {};
}

}  // namespace

void add_inspect_command(CLI::App& app, Dispatch& dispatch) {
  auto opt = std::make_shared<InspectOptions>();
  CLI::App* cmd = app.add_subcommand(
      "inspect", "Show a model's inputs, ops, parameters and MACs, or an engine's kernels");
  cmd->add_option("model", opt->model, "ONNX model or engine file")->required();
  cmd->add_option("--shape", opt->shapes, "Fix a dynamic input shape: NAME=1x3x224x224");
  cmd->add_flag("!--no-layers", opt->layers, "Omit the per-layer table");
  cmd->add_option("--precision", opt->precision,
                  "Also build the engine (auto, fp32, bf16, int8 ...) and list what each node "
                  "runs as, and why");
  cmd->add_option("--backend", opt->backend, "Backend for --precision (default: cpu when built)");
  cmd->callback([opt, &dispatch] { dispatch.handler = [opt] { return inspect_model(*opt); }; });
}

}  // namespace qf::cli
