// Conv/Gemm/MatMul + Add(y, z) with z a computed tensor of y's shape (a ResNet shortcut) ->
// Fused*(..., Z = z): the backend adds z while the output is still in registers.
//
// The new node reads z, which may be computed after the Conv in the current order; the pipeline
// re-sorts. It cannot create a cycle: z cannot depend on y, whose only reader is the Add.
#include "passes/passes.h"
#include "passes/rewrite.h"

namespace qf::passes {
namespace {

class FuseResidualAdd final : public Rule {
 public:
  std::string_view name() const override { return "Add(residual)"; }
  Result<bool> apply(Rewriter& rw, ir::Node& add) const override {
    if (!is_onnx_op(add, "Add") || add.inputs.size() != 2 || !add.has_output(0)) return false;
    ir::Graph& g = rw.graph();
    for (size_t k = 0; k < 2; ++k) {
      ir::Value* y = add.inputs[k];
      ir::Value* z = add.inputs[1 - k];
      if (!y || !z || y == z || z->is_constant()) continue;
      ir::Node* p = y->producer;
      if (!p || sole_consumer(g, y) != &add || !is_fusable_linear(*p) || has_residual(*p) ||
          has_activation(*p) || z->dtype != y->dtype || !same_shape(y, z) ||
          !same_shape(y, add.outputs[0])) {
        continue;
      }
      make_fused(g, *p);
      g.set_input(p, ops::kFusedResidualInput, z);
      take_output(rw, *p, 0, add.outputs[0], {&add});
      return true;
    }
    return false;
  }
};

}  // namespace

std::unique_ptr<Pass> make_residual_fusion_pass() {
  std::vector<std::unique_ptr<Rule>> rules;
  rules.push_back(std::make_unique<FuseResidualAdd>());
  return std::make_unique<RulePass>("residual-fusion", std::move(rules));
}

}  // namespace qf::passes
