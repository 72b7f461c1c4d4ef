// Reshape-like ops only relabel dims of row-major data, so a Reshape to a constant shape does not
// care which of them came before it, and one that keeps the shape does nothing.
#include <array>

#include "passes/passes.h"
#include "passes/rewrite.h"

namespace qf::passes {
namespace {

constexpr std::array<std::string_view, 4> kReshapeLike = {"Reshape", "Flatten", "Squeeze",
                                                          "Unsqueeze"};

bool is_reshape_like(const ir::Node& node) {
  for (std::string_view op : kReshapeLike) {
    if (is_onnx_op(node, op)) return true;
  }
  return false;
}

// Reshape(ReshapeLike(x), shape) -> Reshape(x, shape). A 0 in `shape` (without allowzero) copies a
// dim of the intermediate tensor, so it is replaced by that dim's size, which must be known.
class ReshapeOfReshape final : public Rule {
 public:
  std::string_view name() const override { return "Reshape(Reshape)"; }
  Result<bool> apply(Rewriter& rw, ir::Node& node) const override {
    if (!is_onnx_op(node, "Reshape") || !node.has_input(0) || !node.has_input(1)) return false;
    ir::Value* y = node.inputs[0];
    ir::Node* first = y->producer;
    if (!first || !is_reshape_like(*first) || !first->has_input(0) ||
        sole_consumer(rw.graph(), y) != &node) {
      return false;
    }
    std::optional<std::vector<int64_t>> shape = int64_constant(node.inputs[1]);
    if (!shape) return false;
    bool rewritten = false;
    if (node.attrs.get_int("allowzero", 0) == 0) {
      for (size_t i = 0; i < shape->size(); ++i) {
        if ((*shape)[i] != 0) continue;
        if (!y->shape || i >= y->shape->size() || !(*y->shape)[i].is_known()) return false;
        (*shape)[i] = (*y->shape)[i].value;
        rewritten = true;
      }
    }
    ir::Graph& g = rw.graph();
    if (rewritten) {
      const auto rank = static_cast<int64_t>(shape->size());
      g.set_input(
          &node, 1,
          g.add_constant(node.inputs[1]->name, Tensor::from_vector<int64_t>({rank}, *shape)));
    }
    g.set_input(&node, 0, first->inputs[0]);
    rw.remove(first);
    return true;
  }
};

// A reshape-like op whose output has its input's shape (known dims or the same symbols).
class NoOpReshape final : public Rule {
 public:
  std::string_view name() const override { return "no-op reshape"; }
  Result<bool> apply(Rewriter& rw, ir::Node& node) const override {
    if (!is_reshape_like(node) || !node.has_input(0) || node.outputs.size() != 1 ||
        !node.has_output(0) || !same_shape(node.inputs[0], node.outputs[0])) {
      return false;
    }
    return forward_value(rw, {&node}, node.outputs[0], node.inputs[0]);
  }
};

}  // namespace

std::unique_ptr<Pass> make_reshape_folding_pass() {
  std::vector<std::unique_ptr<Rule>> rules;
  rules.push_back(std::make_unique<ReshapeOfReshape>());
  rules.push_back(std::make_unique<NoOpReshape>());
  return std::make_unique<RulePass>("reshape-folding", std::move(rules));
}

}  // namespace qf::passes
