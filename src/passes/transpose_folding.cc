// Transposes compose: Transpose(Transpose(x, p1), p2) is Transpose(x, q) with q[i] = p1[p2[i]],
// and nothing at all when q is the identity (e.g. NCHW -> NHWC -> NCHW around a layout-agnostic
// op that a previous rewrite removed).
#include <numeric>

#include "passes/passes.h"
#include "passes/rewrite.h"

namespace qf::passes {
namespace {

// The node's permutation with negative entries resolved; ONNX's default (reversed dims) needs
// the rank, from the input's shape. nullopt when unknown or invalid.
std::optional<std::vector<int64_t>> permutation(const ir::Node& node) {
  std::vector<int64_t> perm;
  if (node.attrs.has("perm")) {
    perm = node.attrs.get_ints("perm");
  } else {
    const ir::Value* x = node.inputs[0];
    if (!x->shape) return std::nullopt;
    perm.resize(x->shape->size());
    std::iota(perm.rbegin(), perm.rend(), 0);
  }
  const auto rank = static_cast<int64_t>(perm.size());
  std::vector<bool> seen(perm.size(), false);
  for (int64_t& p : perm) {
    if (p < 0) p += rank;
    if (p < 0 || p >= rank || seen[static_cast<size_t>(p)]) return std::nullopt;
    seen[static_cast<size_t>(p)] = true;
  }
  return perm;
}

bool is_identity(const std::vector<int64_t>& perm) {
  for (size_t i = 0; i < perm.size(); ++i) {
    if (perm[i] != static_cast<int64_t>(i)) return false;
  }
  return true;
}

bool is_transpose(const ir::Node& node) {
  return is_onnx_op(node, "Transpose") && node.has_input(0) && node.outputs.size() == 1 &&
         node.has_output(0);
}

class TransposeOfTranspose final : public Rule {
 public:
  std::string_view name() const override { return "Transpose(Transpose)"; }
  Result<bool> apply(Rewriter& rw, ir::Node& node) const override {
    if (!is_transpose(node)) return false;
    ir::Value* y = node.inputs[0];
    ir::Node* first = y->producer;
    if (!first || !is_transpose(*first) || sole_consumer(rw.graph(), y) != &node) return false;
    const auto p1 = permutation(*first);
    const auto p2 = permutation(node);
    if (!p1 || !p2 || p1->size() != p2->size()) return false;
    std::vector<int64_t> q(p2->size());
    for (size_t i = 0; i < q.size(); ++i) q[i] = (*p1)[static_cast<size_t>((*p2)[i])];
    ir::Value* x = first->inputs[0];
    if (is_identity(q)) return forward_value(rw, {first, &node}, node.outputs[0], x);
    node.attrs.set("perm", q);
    rw.graph().set_input(&node, 0, x);
    rw.remove(first);
    return true;
  }
};

class IdentityTranspose final : public Rule {
 public:
  std::string_view name() const override { return "identity Transpose"; }
  Result<bool> apply(Rewriter& rw, ir::Node& node) const override {
    if (!is_transpose(node)) return false;
    const auto perm = permutation(node);
    if (!perm || !is_identity(*perm)) return false;
    return forward_value(rw, {&node}, node.outputs[0], node.inputs[0]);
  }
};

}  // namespace

std::unique_ptr<Pass> make_transpose_folding_pass() {
  std::vector<std::unique_ptr<Rule>> rules;
  rules.push_back(std::make_unique<TransposeOfTranspose>());
  rules.push_back(std::make_unique<IdentityTranspose>());
  return std::make_unique<RulePass>("transpose-folding", std::move(rules));
}

}  // namespace qf::passes
