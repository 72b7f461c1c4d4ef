#include "runtime/gpu_isa.h"

#include <fmt/format.h>

namespace qf::runtime {

std::string format_gpu_isa(const GpuIsa& gpu) {
  return fmt::format("{} (sm_{}{})", gpu.name, gpu.major, gpu.minor);
}

std::optional<GpuIsa> parse_gpu_isa(std::string_view isa) {
  constexpr std::string_view kOpen = " (sm_";
  const size_t open = isa.rfind(kOpen);
  if (open == std::string_view::npos || open == 0 || !isa.ends_with(')')) return std::nullopt;
  const std::string_view digits =
      isa.substr(open + kOpen.size(), isa.size() - open - kOpen.size() - 1);
  // The minor version is one digit (CUDA's compute capabilities run x.0 to x.9), so "sm_120" is
  // 12.0 and "sm_86" is 8.6.
  if (digits.size() < 2 || digits.size() > 4) return std::nullopt;
  for (const char c : digits) {
    if (c < '0' || c > '9') return std::nullopt;
  }
  GpuIsa gpu;
  gpu.name = std::string(isa.substr(0, open));
  for (size_t i = 0; i + 1 < digits.size(); ++i) gpu.major = gpu.major * 10 + (digits[i] - '0');
  gpu.minor = digits.back() - '0';
  return gpu;
}

}  // namespace qf::runtime
