// The four calibration methods and their names on the command line and in TensorRT caches.
#pragma once

#include <string_view>

#include "qforge/status.h"

namespace qf::quant {

enum class CalibMethod : uint8_t { kEntropy, kMinMax, kPercentile, kMse };

// Command-line names: "entropy", "minmax", "percentile", "mse".
std::string_view calib_method_name(CalibMethod m);
Result<CalibMethod> parse_calib_method(std::string_view name);

// The algorithm word of a calibration cache's first line (`TRT-<version>-<algorithm>`):
// TensorRT's "EntropyCalibration2" and "MinMaxCalibration"; TensorRT has no percentile or MSE
// calibrator, so those are qforge's own words "PercentileCalibration" and "MSECalibration".
std::string_view trt_algorithm_name(CalibMethod m);

}  // namespace qf::quant
