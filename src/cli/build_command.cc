// qforge build MODEL.onnx [--backend B] [--precision P] [--threads N] [--shape NAME=DIMS]...
//              [--calib DATA] [--calib-method M] [--calib-cache FILE] [-o MODEL.engine]:
// builds an engine (INT8 with calibrated or cached scales) and saves it (runtime/engine_file.h).
#include <fmt/ranges.h>

#include <algorithm>
#include <filesystem>
#include <map>

#include "cli/calibration_options.h"
#include "cli/command.h"
#include "cli/timing_cache_option.h"
#include "core/file_util.h"
#include "quant/qdq_import.h"
#include "runtime/engine_file.h"

#ifndef QFORGE_VERSION
#define QFORGE_VERSION "dev"
#endif

namespace qf::cli {
namespace {

struct BuildCommandOptions {
  std::string model;
  std::string output;
  std::string backend;
  std::string precision = "auto";
  int threads = 0;
  std::vector<std::string> shapes;
  std::string timing_cache;
  CalibrationCliOptions calibration;
};

std::string human_bytes(int64_t n) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(n);
  int u = 0;
  while (v >= 1024.0 && u < 4) {
    v /= 1024.0;
    ++u;
  }
  return u == 0 ? fmt::format("{} B", n) : fmt::format("{:.1f} {} ({} bytes)", v, units[u], n);
}

void print_summary(const BuildCommandOptions& opt, const runtime::EngineInfo& info,
                   const runtime::EngineFileHeader& header, size_t file_bytes) {
  fmt::print("Built {} -> {} ({} bytes)\n", opt.model, opt.output, file_bytes);
  fmt::print("  backend:     {}\n", info.backend);
  fmt::print("  precision:   {}\n", runtime::precision_name(info.precision));
  fmt::print("  compute:     {}\n", info.compute);
  fmt::print("  ISA:         {}\n", info.isa);
  if (!info.calibration.empty()) fmt::print("  calibration: {}\n", info.calibration);
  fmt::print("  threads:     {}\n",
             header.threads > 0 ? std::to_string(header.threads) : "all cores");
  fmt::print("  weights:     {}\n", human_bytes(info.weights_bytes));
  fmt::print("  activations: {}\n",
             info.activation_bytes > 0 ? human_bytes(info.activation_bytes) : "not planned");
  fmt::print("  model hash:  fnv1a64:{:016x}\n", header.model_hash);

  std::map<std::string, int> histogram;
  for (const runtime::KernelInfo& k : info.kernels) ++histogram[k.impl];
  std::vector<std::pair<std::string, int>> rows(histogram.begin(), histogram.end());
  std::stable_sort(rows.begin(), rows.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  size_t width = 0;
  for (const auto& row : rows) width = std::max(width, row.first.size());
  fmt::print("  kernels:     {}\n", info.kernels.size());
  for (const auto& [impl, count] : rows) fmt::print("    {:<{}}  {}\n", impl, width, count);
}

Status build_model(BuildCommandOptions opt) {
  if (opt.backend.empty()) opt.backend = default_backend();
  if (opt.threads < 0)
    return usage_error("--threads {}: must be 0 (all cores) or more", opt.threads);
  if (opt.output.empty()) {
    opt.output = std::filesystem::path(opt.model).replace_extension(".engine").string();
  }
  if (std::filesystem::path(opt.output) == std::filesystem::path(opt.model)) {
    return usage_error("-o {}: would overwrite the model", opt.output);
  }

  if (opt.precision != "auto") QF_RETURN_IF_ERROR(runtime::parse_precision(opt.precision).status());
  QF_ASSIGN_OR_RETURN(quant::CalibMethod method, quant::parse_calib_method(opt.calibration.method));
  QF_ASSIGN_OR_RETURN(auto shapes, parse_shape_options(opt.shapes));
  QF_ASSIGN_OR_RETURN(std::string bytes, read_file_bytes(opt.model));
  if (runtime::is_engine_file(bytes)) {
    return usage_error("{}: is already an engine file; build takes an ONNX model", opt.model);
  }
  QF_ASSIGN_OR_RETURN(onnx_io::ImportedModel model, onnx_io::import_model_bytes(bytes, opt.model));
  QF_RETURN_IF_ERROR(apply_input_shapes(*model.graph, shapes));
  // Calibration data asks for INT8 by itself; "auto" is INT8 for a Q/DQ model, else FP32.
  const bool calibrated = !opt.calibration.data.empty() || !opt.calibration.cache.empty();
  const std::string requested = calibrated && opt.precision == "auto" ? "int8" : opt.precision;
  QF_ASSIGN_OR_RETURN(runtime::Precision precision,
                      resolve_precision(requested, *model.graph, opt.backend));
  QF_ASSIGN_OR_RETURN(const runtime::Backend* backend, find_backend_for(opt.backend, precision));
  if (calibrated && precision != runtime::Precision::kINT8) {
    return usage_error("--calib/--calib-cache are for --precision int8, not {}",
                       runtime::precision_name(precision));
  }
  if (calibrated && quant::has_qdq(*model.graph)) {
    return usage_error("{}: the model carries its own Q/DQ scales; build it without --calib",
                       opt.model);
  }
  runtime::BuildOptions build_options{precision, opt.threads};
  QF_ASSIGN_OR_RETURN(build_options.timing_cache, timing_cache_for(*backend, opt.timing_cache));
  // Without --calib or --calib-cache an int8 build calibrates synthetically, loudly (trtexec's
  // convention), so INT8 speed can be measured before data exists.
  if (calibrated) {
    QF_ASSIGN_OR_RETURN(Int8Scales scales,
                        obtain_int8_scales(opt.calibration, method, bytes, opt.model, shapes));
    build_options.activation_scales = std::move(scales.cache.scales);
    build_options.calibration = std::move(scales.description);
  }
  QF_ASSIGN_OR_RETURN(std::unique_ptr<runtime::Engine> engine,
                      backend->build(std::move(model.graph), build_options));

  runtime::EngineFileHeader header = runtime::header_for(*engine);
  header.producer = "qforge " QFORGE_VERSION;
  header.model_name = std::filesystem::path(opt.model).filename().string();
  header.model_size = bytes.size();
  header.model_hash = runtime::fnv1a64(bytes);
  header.threads = opt.threads;
  for (const auto& [name, shape] : shapes)
    header.options.emplace_back("shape:" + name, shape_str(shape));

  QF_ASSIGN_OR_RETURN(std::string file, runtime::serialize_engine(header, engine->graph()));
  QF_RETURN_IF_ERROR(write_file_atomic(opt.output, file));
  print_summary(opt, engine->info(), header, file.size());
  return {};
}

}  // namespace

void add_build_command(CLI::App& app, Dispatch& dispatch) {
  auto opt = std::make_shared<BuildCommandOptions>();
  CLI::App* cmd = app.add_subcommand("build", "Build an engine from an ONNX model and save it");
  cmd->add_option("model", opt->model, "ONNX model")->required();
  cmd->add_option("-o,--output", opt->output, "Engine file to write (default: MODEL with .engine)");
  std::vector<std::string> names;
  for (const runtime::Backend* b : runtime::all_backends()) names.emplace_back(b->name());
  cmd->add_option(
      "--backend", opt->backend,
      fmt::format("Backend: {} (default: {})", fmt::join(names, ", "), default_backend()));
  cmd->add_option("--precision", opt->precision,
                  "Precision: auto (int8 for a Q/DQ model, else fp32), fp32, tf32, fp16, bf16, "
                  "int8")
      ->capture_default_str();
  cmd->add_option("--threads", opt->threads, "Threads the engine runs with (0: all cores)")
      ->capture_default_str();
  cmd->add_option("--shape", opt->shapes, "Fix a dynamic input shape: NAME=1x3x224x224");
  add_timing_cache_option(*cmd, opt->timing_cache);
  add_calibration_options(*cmd, opt->calibration);
  cmd->callback([opt, &dispatch] { dispatch.handler = [opt] { return build_model(*opt); }; });
}

}  // namespace qf::cli
