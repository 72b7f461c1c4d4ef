// Identity and inference-mode Dropout pass their input through: splice them out.
#include "passes/passes.h"
#include "passes/rewrite.h"

namespace qf::passes {
namespace {

class EliminateIdentity final : public Rule {
 public:
  std::string_view name() const override { return "Identity"; }
  Result<bool> apply(Rewriter& rw, ir::Node& node) const override {
    if (!is_onnx_op(node, "Identity") || !node.has_input(0) || !node.has_output(0)) return false;
    return forward_value(rw, {&node}, node.outputs[0], node.inputs[0]);
  }
};

// qforge runs inference only, so Dropout is the identity unless training_mode is a constant true
// (or not a constant at all); its mask output, if anyone reads it, keeps it in the graph.
class EliminateDropout final : public Rule {
 public:
  std::string_view name() const override { return "Dropout"; }
  Result<bool> apply(Rewriter& rw, ir::Node& node) const override {
    if (!is_onnx_op(node, "Dropout") || !node.has_input(0) || !node.has_output(0)) return false;
    if (node.has_input(2)) {
      const ir::Value* training = node.inputs[2];
      if (!training->is_constant() || training->constant.numel() != 1 ||
          training->constant.element_as_double(0) != 0.0) {
        return false;
      }
    }
    if (!other_outputs_unused(rw.graph(), node, 0)) return false;
    return forward_value(rw, {&node}, node.outputs[0], node.inputs[0]);
  }
};

}  // namespace

std::unique_ptr<Pass> make_identity_elimination_pass() {
  std::vector<std::unique_ptr<Rule>> rules;
  rules.push_back(std::make_unique<EliminateIdentity>());
  rules.push_back(std::make_unique<EliminateDropout>());
  return std::make_unique<RulePass>("identity-elimination", std::move(rules));
}

}  // namespace qf::passes
