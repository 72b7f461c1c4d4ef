// qforge quantize MODEL.onnx --calib DATA [--calib-method M] [--exclude NODE_OR_OP]...
//                 [--calib-cache FILE] [--calib-cache-out FILE] -o MODEL.qdq.onnx:
// calibrates (or reads a TensorRT cache) and writes the model with Q/DQ nodes placed by
// TensorRT's explicit-quantization rules (quant/qdq_export.h), checked by ONNX's checker.
#include <onnx/checker.h>
#include <onnx/onnx_pb.h>

#include <filesystem>
#include <set>

#include "cli/calibration_options.h"
#include "cli/command.h"
#include "core/file_util.h"
#include "onnx/exporter.h"
#include "quant/qdq_export.h"

#ifndef QFORGE_VERSION
#define QFORGE_VERSION "dev"
#endif

namespace qf::cli {
namespace {

struct QuantizeOptions {
  std::string model;
  std::string output;
  std::vector<std::string> exclude;
  std::vector<std::string> shapes;
  std::string cache_out;
  CalibrationCliOptions calibration;
};

// The serialized Q/DQ model, refused unless ONNX's own checker accepts it: a file TensorRT or
// ONNX Runtime would reject must not be written.
Result<std::string> export_checked(const ir::Graph& graph, const std::string& output) {
  onnx::ModelProto proto;
  onnx_io::ExportOptions options;
  options.producer_version = QFORGE_VERSION;
  options.doc_string = "Q/DQ model written by qforge quantize";
  QF_RETURN_IF_ERROR(onnx_io::export_model(graph, &proto, options));
  try {
    onnx::checker::check_model(proto);
  } catch (const std::exception& e) {
    return internal_error("{}: the Q/DQ model fails ONNX's checker: {}", output, e.what());
  }
  std::string bytes;
  if (!proto.SerializeToString(&bytes)) {
    return internal_error("{}: cannot serialize the Q/DQ model", output);
  }
  return bytes;
}

Status quantize_model(QuantizeOptions opt) {
  if (opt.output.empty()) {
    std::filesystem::path out(opt.model);
    opt.output = out.replace_extension(".qdq.onnx").string();
  }
  if (std::filesystem::path(opt.output) == std::filesystem::path(opt.model)) {
    return usage_error("-o {}: would overwrite the model", opt.output);
  }
  QF_ASSIGN_OR_RETURN(quant::CalibMethod method, quant::parse_calib_method(opt.calibration.method));
  QF_ASSIGN_OR_RETURN(auto shapes, parse_shape_options(opt.shapes));
  QF_ASSIGN_OR_RETURN(std::string bytes, read_file_bytes(opt.model));
  QF_ASSIGN_OR_RETURN(Int8Scales scales,
                      obtain_int8_scales(opt.calibration, method, bytes, opt.model, shapes));

  // The written model keeps the source's input shapes: --shape only fixes calibration batches.
  QF_ASSIGN_OR_RETURN(onnx_io::ImportedModel model, onnx_io::import_model_bytes(bytes, opt.model));
  quant::QdqExportOptions qopt;
  qopt.activation_scales = scales.cache.scales;
  qopt.exclude = std::set<std::string>(opt.exclude.begin(), opt.exclude.end());
  QF_ASSIGN_OR_RETURN(quant::QdqExportReport report, quant::insert_qdq(*model.graph, qopt));
  QF_ASSIGN_OR_RETURN(std::string qdq, export_checked(*model.graph, opt.output));

  QF_RETURN_IF_ERROR(write_file_atomic(opt.output, qdq));
  if (!opt.cache_out.empty()) {
    QF_RETURN_IF_ERROR(quant::write_calibration_cache(opt.cache_out, scales.cache));
  }
  fmt::print("Quantized {} -> {} ({} bytes)\n", opt.model, opt.output, qdq.size());
  fmt::print("  scales:      {}\n", scales.description);
  fmt::print("  int8 nodes:  {} (Q/DQ on their inputs), {} excluded\n", report.quantized_nodes,
             report.excluded_nodes);
  fmt::print("  int8 weights: {} (per output channel)\n", report.quantized_weights);
  if (!opt.cache_out.empty()) fmt::print("  cache:       {}\n", opt.cache_out);
  return {};
}

}  // namespace

void add_quantize_command(CLI::App& app, Dispatch& dispatch) {
  auto opt = std::make_shared<QuantizeOptions>();
  CLI::App* cmd = app.add_subcommand(
      "quantize", "Calibrate and write a Q/DQ ONNX model (TensorRT/ONNX Runtime explicit INT8)");
  cmd->add_option("model", opt->model, "FP32 ONNX model")->required();
  cmd->add_option("-o,--output", opt->output, "Q/DQ model to write (default: MODEL.qdq.onnx)");
  cmd->add_option("--exclude", opt->exclude, "Node name or op type to leave in float")
      ->delimiter(',');
  cmd->add_option("--shape", opt->shapes, "Fix a dynamic input shape for calibration");
  cmd->add_option("--calib-cache-out", opt->cache_out,
                  "Also write the scales as a TensorRT calibration cache");
  add_calibration_options(*cmd, opt->calibration);
  cmd->callback([opt, &dispatch] { dispatch.handler = [opt] { return quantize_model(*opt); }; });
}

}  // namespace qf::cli
