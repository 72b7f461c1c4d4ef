#include "runtime/input_check.h"

#include <map>

namespace qf::runtime {

Status check_inputs(const ir::Graph& graph, const std::vector<Tensor>& inputs) {
  if (inputs.size() != graph.inputs.size()) {
    return invalid_input("the model has {} input(s) but {} were given", graph.inputs.size(),
                         inputs.size());
  }
  std::map<std::string, std::pair<int64_t, std::string>> symbols;  // symbol -> (size, input)
  for (size_t i = 0; i < inputs.size(); ++i) {
    const ir::Value& decl = *graph.inputs[i];
    const Tensor& t = inputs[i];
    if (decl.dtype != DType::kUndefined && t.dtype() != decl.dtype) {
      return invalid_input("input '{}': expected element type {}, got {}", decl.name,
                           dtype_tag(decl.dtype), dtype_tag(t.dtype()));
    }
    if (!decl.shape) continue;
    const ir::SymShape& want = *decl.shape;
    if (static_cast<size_t>(t.rank()) != want.size()) {
      return invalid_input("input '{}': expected shape {} (rank {}), got {} (rank {})", decl.name,
                           ir::sym_shape_str(want), want.size(), shape_str(t.shape()), t.rank());
    }
    for (size_t d = 0; d < want.size(); ++d) {
      const int64_t got = t.shape()[d];
      if (want[d].is_known() && want[d].value != got) {
        return invalid_input("input '{}': expected shape {}, got {} (dimension {} differs)",
                             decl.name, ir::sym_shape_str(want), shape_str(t.shape()), d);
      }
      if (!want[d].is_known() && !want[d].symbol.empty()) {
        auto [it, inserted] = symbols.emplace(want[d].symbol, std::make_pair(got, decl.name));
        if (!inserted && it->second.first != got) {
          return invalid_input("input '{}': dimension '{}' is {} here but {} in input '{}'",
                               decl.name, want[d].symbol, got, it->second.first, it->second.second);
        }
      }
    }
  }
  return {};
}

}  // namespace qf::runtime
