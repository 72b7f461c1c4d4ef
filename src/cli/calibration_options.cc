#include "cli/calibration_options.h"

#include <fmt/core.h>
#include <fmt/ranges.h>

#include <filesystem>

#include "cli/command.h"
#include "cli/progress.h"
#include "data/calibration_data.h"
#include "onnx/importer.h"
#include "quant/calibration.h"

namespace qf::cli {
namespace {

// A cache is for this model when it holds a scale for every tensor an INT8 engine may need.
Status check_cache_names(const quant::CalibrationCache& cache, const ir::Graph& graph,
                         const std::string& path) {
  std::vector<std::string> missing;
  for (const std::string& name : quant::calibrated_tensor_names(graph)) {
    if (!cache.scales.count(name)) missing.push_back(name);
  }
  if (missing.empty()) return {};
  constexpr size_t kShown = 8;
  const size_t count = missing.size();
  if (count > kShown) missing.resize(kShown);
  return invalid_input(
      "{}: calibration cache lacks {} of the model's tensors: {}{}; is it for "
      "another model?",
      path, count, fmt::join(missing, ", "), count > kShown ? ", ..." : "");
}

Result<std::unique_ptr<ir::Graph>> import_with_shapes(const std::string& bytes,
                                                      const std::string& path,
                                                      const std::map<std::string, Shape>& shapes) {
  QF_ASSIGN_OR_RETURN(onnx_io::ImportedModel model, onnx_io::import_model_bytes(bytes, path));
  QF_RETURN_IF_ERROR(apply_input_shapes(*model.graph, shapes));
  return std::move(model.graph);
}

}  // namespace

void add_calibration_options(CLI::App& cmd, CalibrationCliOptions& opt, bool with_method) {
  cmd.add_option("--calib", opt.data,
                 "Calibration data: .npy, .npz, IDX(.gz), or a folder of .npy/.pb or images");
  if (with_method) {
    cmd.add_option("--calib-method", opt.method, "entropy, minmax, percentile or mse")
        ->capture_default_str();
  }
  // bench's --percentile is about latency, so there the calibration one is only the long name.
  cmd.add_option(with_method ? "--percentile,--calib-percentile" : "--calib-percentile",
                 opt.percentile, "Percentile of |x| kept by --calib-method percentile")
      ->capture_default_str();
  cmd.add_option("--calib-batch-size", opt.batch_size,
                 "Samples per calibration batch when the batch dimension is dynamic")
      ->capture_default_str();
  cmd.add_option("--calib-batches", opt.batches, "Calibrate on at most N batches (0: all)")
      ->capture_default_str();
  cmd.add_option("--calib-cache", opt.cache,
                 "TensorRT calibration cache: read when it exists (no calibration), else written");
  cmd.add_option("--preprocess", opt.preprocess,
                 "Image preprocessing: imagenet, none, or key=value list (see README)")
      ->capture_default_str();
}

Result<Int8Scales> obtain_int8_scales(const CalibrationCliOptions& opt, quant::CalibMethod method,
                                      const std::string& model_bytes, const std::string& model_path,
                                      const std::map<std::string, Shape>& shapes) {
  QF_ASSIGN_OR_RETURN(std::unique_ptr<ir::Graph> graph,
                      import_with_shapes(model_bytes, model_path, shapes));
  if (!opt.cache.empty() && std::filesystem::exists(opt.cache)) {
    QF_ASSIGN_OR_RETURN(quant::CalibrationCache cache, quant::read_calibration_cache(opt.cache));
    QF_RETURN_IF_ERROR(check_cache_names(cache, *graph, opt.cache));
    if (!opt.data.empty()) {
      fmt::print(stderr, "qforge: using the scales in {}; --calib {} is not read\n", opt.cache,
                 opt.data);
    }
    return Int8Scales{cache, fmt::format("calibration cache {} (TRT-{}-{})", opt.cache,
                                         cache.version, cache.algorithm)};
  }
  if (opt.data.empty()) {
    return usage_error("int8 needs calibration data: --calib DATA or an existing --calib-cache");
  }
  QF_ASSIGN_OR_RETURN(std::vector<data::InputSpec> specs, quant::sample_specs(*graph));
  QF_ASSIGN_OR_RETURN(data::ImagePreprocess preprocess,
                      data::parse_image_preprocess(opt.preprocess));
  QF_ASSIGN_OR_RETURN(std::unique_ptr<data::SampleSource> samples,
                      data::open_samples(opt.data, specs, preprocess));

  quant::CalibrationOptions copt;
  copt.method = method;
  copt.percentile = opt.percentile;
  copt.batch_size = opt.batch_size;
  copt.max_batches = opt.batches;
  ProgressBar bar(fmt::format("calibrating ({})", quant::calib_method_name(method)));
  copt.progress = [&bar](std::string_view phase, int64_t done, int64_t total) {
    bar.update(phase, done, total);
  };
  QF_ASSIGN_OR_RETURN(quant::CalibrationResult result,
                      quant::calibrate(std::move(graph), *samples, copt));

  Int8Scales out;
  out.cache.algorithm = std::string(quant::trt_algorithm_name(method));
  out.cache.scales = std::move(result.scales);
  out.description = fmt::format("{} calibration on {} samples of {}",
                                quant::calib_method_name(method), result.samples, opt.data);
  if (result.dropped > 0) {
    fmt::print(stderr,
               "qforge: note: {} samples left out of calibration: the model's batch size {} "
               "does not divide {}\n",
               result.dropped, result.batch_size, samples->size());
  }
  if (!opt.cache.empty()) {
    QF_RETURN_IF_ERROR(quant::write_calibration_cache(opt.cache, out.cache));
  }
  return out;
}

}  // namespace qf::cli
