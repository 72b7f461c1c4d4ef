// qforge ops: the operators this build supports, from the op table, with their opset ranges.
#include <fmt/ranges.h>

#include <algorithm>
#include <map>

#include "cli/command.h"
#include "ir/op_registry.h"

namespace qf::cli {
namespace {

Status list_ops() {
  // Several definitions of one op cover disjoint opset ranges: show the union.
  std::map<std::string, std::pair<int, int>> ranges;
  for (const ir::OpDef& def : ir::OpRegistry::global().all()) {
    if (!def.reference) continue;
    const std::string name = def.domain.empty() ? std::string(def.op_type)
                                                : fmt::format("{}:{}", def.domain, def.op_type);
    auto [it, inserted] = ranges.emplace(name, std::make_pair(def.min_opset, def.max_opset));
    if (!inserted) {
      it->second.first = std::min(it->second.first, def.min_opset);
      it->second.second = std::max(it->second.second, def.max_opset);
    }
  }
  for (const auto& [name, range] : ranges) {
    fmt::print("{:<28} opset {}-{}\n", name, range.first, range.second);
  }
  fmt::print("{} operators\n", ranges.size());
  return {};
}

}  // namespace

void add_ops_command(CLI::App& app, Dispatch& dispatch) {
  CLI::App* cmd = app.add_subcommand("ops", "List the supported ONNX operators and opsets");
  cmd->callback([&dispatch] { dispatch.handler = [] { return list_ops(); }; });
}

}  // namespace qf::cli
