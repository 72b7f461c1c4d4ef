#include "quant/calib_method.h"

#include <array>
#include <utility>

namespace qf::quant {
namespace {

// One table so names, parsing and the error message's list of valid names cannot drift apart.
constexpr std::array<std::pair<CalibMethod, std::string_view>, 4> kNames = {{
    {CalibMethod::kEntropy, "entropy"},
    {CalibMethod::kMinMax, "minmax"},
    {CalibMethod::kPercentile, "percentile"},
    {CalibMethod::kMse, "mse"},
}};

}  // namespace

std::string_view calib_method_name(CalibMethod m) {
  for (const auto& [method, name] : kNames) {
    if (method == m) return name;
  }
  return "unknown";
}

Result<CalibMethod> parse_calib_method(std::string_view name) {
  for (const auto& [method, method_name] : kNames) {
    if (method_name == name) return method;
  }
  return usage_error("unknown calibration method '{}' (valid: entropy, minmax, percentile, mse)",
                     name);
}

std::string_view trt_algorithm_name(CalibMethod m) {
  switch (m) {
    case CalibMethod::kEntropy:
      return "EntropyCalibration2";
    case CalibMethod::kMinMax:
      return "MinMaxCalibration";
    case CalibMethod::kPercentile:
      return "PercentileCalibration";
    case CalibMethod::kMse:
      return "MSECalibration";
  }
  return "UnknownCalibration";
}

}  // namespace qf::quant
