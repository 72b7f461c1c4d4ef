#include "ir/run_time_values.h"

#include <algorithm>
#include <array>
#include <string_view>

namespace qf::ir {
namespace {

// Ops whose outputs are not functions of their inputs.
constexpr std::array<std::string_view, 6> kRandomOps = {"RandomNormal",     "RandomUniform",
                                                        "RandomNormalLike", "RandomUniformLike",
                                                        "Multinomial",      "Bernoulli"};

bool is_random(const Node& n) {
  return n.domain.empty() &&
         std::find(kRandomOps.begin(), kRandomOps.end(), n.op_type) != kRandomOps.end();
}

}  // namespace

std::unordered_set<const Value*> run_time_values(const Graph& graph) {
  std::unordered_set<const Value*> values(graph.inputs.begin(), graph.inputs.end());
  // Nodes are in execution order, so one pass sees every producer before its consumers.
  for (const auto& n : graph.nodes()) {
    const bool depends =
        is_random(*n) || std::any_of(n->inputs.begin(), n->inputs.end(),
                                     [&](const Value* v) { return v && values.count(v); });
    if (!depends) continue;
    for (const Value* v : n->outputs) {
      if (v) values.insert(v);
    }
  }
  return values;
}

}  // namespace qf::ir
