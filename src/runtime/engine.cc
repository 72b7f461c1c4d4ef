#include "runtime/engine.h"

#include <array>

namespace qf::runtime {

namespace {
constexpr std::array<std::pair<Precision, std::string_view>, 5> kPrecisionNames = {{
    {Precision::kFP32, "fp32"},
    {Precision::kTF32, "tf32"},
    {Precision::kFP16, "fp16"},
    {Precision::kBF16, "bf16"},
    {Precision::kINT8, "int8"},
}};

std::vector<const Backend*>& registry() {
  static std::vector<const Backend*> backends;
  return backends;
}
}  // namespace

std::string_view precision_name(Precision p) {
  for (const auto& [precision, name] : kPrecisionNames) {
    if (precision == p) return name;
  }
  return "?";
}

Result<Precision> parse_precision(std::string_view name) {
  for (const auto& [precision, known] : kPrecisionNames) {
    if (known == name) return precision;
  }
  return usage_error("unknown precision '{}' (expected fp32, tf32, fp16, bf16 or int8)", name);
}

bool register_backend(const Backend* backend) {
  registry().push_back(backend);
  return true;
}

const Backend* find_backend(std::string_view name) {
  for (const Backend* b : registry()) {
    if (b->name() == name) return b;
  }
  return nullptr;
}

std::vector<const Backend*> all_backends() {
  return registry();
}

}  // namespace qf::runtime
