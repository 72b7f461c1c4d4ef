#include "passes/pass.h"

namespace qf::passes {

void Rewriter::remove(ir::Node* node) {
  removed_.insert(node);
  graph_.remove_node(node);
}

Result<bool> RulePass::run(ir::Graph& graph) const {
  Rewriter rw(graph);
  std::vector<ir::Node*> snapshot;
  for (const auto& n : graph.nodes()) snapshot.push_back(n.get());
  bool changed = false;
  for (ir::Node* node : snapshot) {
    for (const auto& rule : rules_) {
      if (rw.removed(node)) break;
      QF_ASSIGN_OR_RETURN(const bool applied, rule->apply(rw, *node));
      changed = changed || applied;
    }
  }
  return changed;
}

}  // namespace qf::passes
