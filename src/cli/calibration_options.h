// The calibration options `build`, `quantize` and `bench` share, and how they become INT8
// scales: read from a TensorRT calibration cache, or calibrated on data (then cached).
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <map>
#include <string>

#include "qforge/status.h"
#include "qforge/tensor.h"
#include "quant/calib_cache.h"
#include "quant/calib_method.h"

namespace qf::cli {

struct CalibrationCliOptions {
  std::string data;                 // --calib
  std::string method = "entropy";   // --calib-method
  double percentile = 99.99;        // --percentile (build, quantize), --calib-percentile
  int64_t batch_size = 32;          // --calib-batch-size (dynamic batch dims only)
  int64_t batches = 0;              // --calib-batches (0: all)
  std::string cache;                // --calib-cache: read when it exists, else written
  std::string preprocess = "none";  // --preprocess (image folders)
};

// `with_method`: whether --calib-method is a single method (bench takes a list itself, and
// has its own --percentile for latency).
void add_calibration_options(CLI::App& cmd, CalibrationCliOptions& opt, bool with_method = true);

struct Int8Scales {
  quant::CalibrationCache cache;  // scales by tensor name, with the cache header's words
  std::string description;        // "entropy calibration on 1000 samples of DATA", for humans
};

// The scales for the model in `model_bytes` (read from `model_path`, --shape `shapes` applied):
// from --calib-cache when that file exists (its names are checked against the model), else
// calibrated on --calib with `method` and written to --calib-cache when given.
Result<Int8Scales> obtain_int8_scales(const CalibrationCliOptions& opt, quant::CalibMethod method,
                                      const std::string& model_bytes, const std::string& model_path,
                                      const std::map<std::string, Shape>& shapes);

}  // namespace qf::cli
