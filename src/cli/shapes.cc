#include <charconv>

#include "cli/command.h"
#include "ir/op_registry.h"

namespace qf::cli {

Result<std::map<std::string, Shape>> parse_shape_options(const std::vector<std::string>& specs) {
  std::map<std::string, Shape> out;
  for (const std::string& spec : specs) {
    const size_t eq = spec.rfind('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == spec.size()) {
      return usage_error("--shape '{}': expected NAME=DIMS, e.g. input=1x3x224x224", spec);
    }
    Shape shape;
    std::string_view dims(spec.data() + eq + 1, spec.size() - eq - 1);
    while (!dims.empty()) {
      int64_t d = 0;
      auto [ptr, ec] = std::from_chars(dims.data(), dims.data() + dims.size(), d);
      if (ec != std::errc() || d < 0) {
        return usage_error("--shape '{}': dimensions must be non-negative integers joined by 'x'",
                           spec);
      }
      shape.push_back(d);
      dims.remove_prefix(static_cast<size_t>(ptr - dims.data()));
      if (!dims.empty()) {
        if (dims.front() != 'x' || dims.size() == 1) {
          return usage_error("--shape '{}': dimensions must be joined by 'x'", spec);
        }
        dims.remove_prefix(1);
      }
    }
    out[spec.substr(0, eq)] = shape;
  }
  return out;
}

Status apply_input_shapes(ir::Graph& graph, const std::map<std::string, Shape>& shapes) {
  for (const auto& [name, shape] : shapes) {
    ir::Value* input = nullptr;
    for (ir::Value* v : graph.inputs) {
      if (v->name == name) input = v;
    }
    if (!input) return usage_error("--shape: the model has no input named '{}'", name);
    if (input->shape) {
      const ir::SymShape& declared = *input->shape;
      bool fits = declared.size() == shape.size();
      for (size_t i = 0; fits && i < shape.size(); ++i) {
        fits = !declared[i].is_known() || declared[i].value == shape[i];
      }
      if (!fits) {
        return invalid_input("--shape {}={}: input '{}' is declared as {}", name, shape_str(shape),
                             name, ir::sym_shape_str(declared));
      }
    }
    input->shape = ir::to_sym_shape(shape);
  }
  return ir::infer_shapes(graph);
}

}  // namespace qf::cli
