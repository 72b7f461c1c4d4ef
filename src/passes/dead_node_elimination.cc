// Nodes whose results nobody reads (no consumer, not a graph output) are removed; ONNX ops have
// no side effects, so nothing else can depend on them.
#include "passes/passes.h"
#include "passes/rewrite.h"

namespace qf::passes {
namespace {

bool is_dead(const ir::Graph& g, const ir::Node& node) {
  for (const ir::Value* out : node.outputs) {
    if (out && (!out->consumers.empty() || is_graph_output(g, out))) return false;
  }
  return true;
}

class EliminateDeadNodes final : public Pass {
 public:
  std::string_view name() const override { return "dead-node-elimination"; }

  Result<bool> run(ir::Graph& graph) const override {
    bool changed = false;
    // Walking backwards, a node's readers are gone by the time it is looked at, so a dead chain
    // goes in one sweep; another sweep catches what an unsorted graph leaves behind.
    for (bool again = true; again;) {
      again = false;
      std::vector<ir::Node*> snapshot;
      for (const auto& n : graph.nodes()) snapshot.push_back(n.get());
      for (auto it = snapshot.rbegin(); it != snapshot.rend(); ++it) {
        if (!is_dead(graph, **it)) continue;
        graph.remove_node(*it);
        again = changed = true;
      }
    }
    return changed;
  }
};

}  // namespace

std::unique_ptr<Pass> make_dead_node_elimination_pass() {
  return std::make_unique<EliminateDeadNodes>();
}

}  // namespace qf::passes
