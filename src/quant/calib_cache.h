// TensorRT calibration caches, read and written.
//
// Text, one header line `TRT-<version>-<algorithm>` (e.g. `TRT-8601-EntropyCalibration2`),
// then one line per tensor `<name>: <8 hex digits>`, the digits being the IEEE-754 float32 bit
// pattern of scale = amax / 127 (`3c010204` is 1/127). Names are ONNX tensor names of the
// source model (before any fusion). qforge writes the tensors sorted by name and version 100300
// (the TensorRT 10.3 number, so TensorRT 10 and 11 read it).
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <string_view>

#include "qforge/status.h"

namespace qf::quant {

struct CalibrationCache {
  std::string version = "100300";  // the digits between "TRT-" and the next '-'
  std::string algorithm = "EntropyCalibration2";
  std::map<std::string, float> scales;  // tensor name -> scale (amax / 127)
};

// The file's text. Parsing errors name `source` and the 1-based line.
Result<CalibrationCache> parse_calibration_cache(std::string_view text, std::string_view source);
std::string format_calibration_cache(const CalibrationCache& cache);

Result<CalibrationCache> read_calibration_cache(const std::filesystem::path& path);
Status write_calibration_cache(const std::filesystem::path& path, const CalibrationCache& cache);

}  // namespace qf::quant
