// A constant bias added right after Conv / Gemm / MatMul becomes the op's own bias: Conv's B
// (one value per output channel), Gemm's C (one per column), FusedMatMul's Bias (one per column).
// Each rule is anchored at the Add and accepts the constant on either side.
#include "passes/passes.h"
#include "passes/rewrite.h"

namespace qf::passes {
namespace {

// Shared anchoring: Add(y, c) or Add(c, y) where y is the only output of a node the subclass
// accepts, read by this Add alone, and c a floating-point constant of y's element type.
class FoldBiasAdd : public Rule {
 public:
  Result<bool> apply(Rewriter& rw, ir::Node& add) const override {
    if (!is_onnx_op(add, "Add") || add.inputs.size() != 2 || !add.has_output(0)) return false;
    for (size_t k = 0; k < 2; ++k) {
      ir::Value* y = add.inputs[k];
      ir::Value* c = add.inputs[1 - k];
      if (!y || !c || !c->is_constant() || y->is_constant()) continue;
      ir::Node* p = y->producer;
      if (!p || sole_consumer(rw.graph(), y) != &add || !is_fusable_linear(*p) ||
          c->constant.dtype() != y->dtype || !y->shape) {
        continue;
      }
      if (!fold(rw.graph(), *p, *y->shape, c->constant)) continue;
      take_output(rw, *p, 0, add.outputs[0], {&add});
      return true;
    }
    return false;
  }

 protected:
  // Folds constant `c` into p (whose output has shape `out`), or returns false having changed
  // nothing.
  virtual bool fold(ir::Graph& g, ir::Node& p, const ir::SymShape& out, const Tensor& c) const = 0;
};

// Conv + Add of [M, 1, 1], [1, M, 1, 1], a scalar ...: B += c.
class FoldConvBias final : public FoldBiasAdd {
 public:
  std::string_view name() const override { return "Conv+Add(bias)"; }

 protected:
  bool fold(ir::Graph& g, ir::Node& p, const ir::SymShape& out, const Tensor& c) const override {
    const bool conv = is_onnx_op(p, "Conv") ||
                      (p.op_type == "FusedConv" && !has_residual(p) && !has_activation(p));
    if (!conv || out.size() < 3 || !out[1].is_known()) return false;
    const int64_t channels = out[1].value;
    const std::optional<int64_t> extent = extent_along(c.shape(), out.size(), 1);
    if (!extent || (*extent != channels && *extent != 1)) return false;
    std::vector<double> bias(static_cast<size_t>(channels), 0.0);
    if (p.has_input(2)) {
      auto old = float_constant(p.inputs[2]);
      if (!old || static_cast<int64_t>(old->size()) != channels) return false;
      bias = *old;
    }
    const std::vector<double> add = per_channel(elements(c), channels);
    for (size_t m = 0; m < bias.size(); ++m) bias[m] += add[m];
    g.set_input(&p, 2,
                g.add_constant(p.outputs[0]->name + "_bias",
                               tensor_from_doubles(c.dtype(), {channels}, bias)));
    return true;
  }
};

// Gemm + Add of [N], [1, N] or a scalar: C = beta * C + c, beta = 1. A C with rows ([M, N])
// stays as it is: the sum would need the batch dim.
class FoldGemmBias final : public FoldBiasAdd {
 public:
  std::string_view name() const override { return "Gemm+Add(bias)"; }

 protected:
  bool fold(ir::Graph& g, ir::Node& p, const ir::SymShape& out, const Tensor& c) const override {
    const bool gemm = is_onnx_op(p, "Gemm") ||
                      (p.op_type == "FusedGemm" && !has_residual(p) && !has_activation(p));
    if (!gemm || out.size() != 2 || !out[1].is_known()) return false;
    const int64_t n = out[1].value;
    const std::optional<int64_t> extent = extent_along(c.shape(), 2, 1);
    if (!extent || (*extent != n && *extent != 1)) return false;
    std::vector<double> bias(static_cast<size_t>(n), 0.0);
    const double beta = p.attrs.get_float("beta", 1.0f);
    if (p.has_input(2) && beta != 0.0) {
      const ir::Value* old = p.inputs[2];
      if (!old->is_constant() || old->constant.dtype() != c.dtype()) return false;
      const std::optional<int64_t> old_extent = extent_along(old->constant.shape(), 2, 1);
      if (!old_extent || (*old_extent != n && *old_extent != 1)) return false;
      bias = per_channel(elements(old->constant), n);
      for (double& b : bias) b *= beta;
    }
    const std::vector<double> add = per_channel(elements(c), n);
    for (size_t j = 0; j < bias.size(); ++j) bias[j] += add[j];
    g.set_input(
        &p, 2,
        g.add_constant(p.outputs[0]->name + "_bias", tensor_from_doubles(c.dtype(), {n}, bias)));
    p.attrs.set("beta", 1.0f);
    return true;
  }
};

// MatMul + Add of [N], [1, ..., 1, N] or a scalar -> FusedMatMul with Bias [N]. B must have an N
// axis (rank >= 2).
class FoldMatMulBias final : public FoldBiasAdd {
 public:
  std::string_view name() const override { return "MatMul+Add(bias)"; }

 protected:
  bool fold(ir::Graph& g, ir::Node& p, const ir::SymShape& out, const Tensor& c) const override {
    const bool matmul = is_onnx_op(p, "MatMul") ||
                        (p.op_type == "FusedMatMul" && !p.has_input(ops::kFusedBiasInput) &&
                         !has_residual(p) && !has_activation(p));
    if (!matmul || out.empty() || !out.back().is_known() || !p.has_input(1)) return false;
    const auto& bs = p.inputs[1]->shape;
    if (!bs || bs->size() < 2) return false;
    const int64_t n = out.back().value;
    const std::optional<int64_t> extent = extent_along(c.shape(), out.size(), out.size() - 1);
    if (!extent || (*extent != n && *extent != 1)) return false;
    make_fused(g, p);
    g.set_input(&p, ops::kFusedBiasInput,
                g.add_constant(p.outputs[0]->name + "_bias",
                               tensor_from_doubles(c.dtype(), {n}, per_channel(elements(c), n))));
    return true;
  }
};

}  // namespace

std::unique_ptr<Pass> make_bias_add_folding_pass() {
  std::vector<std::unique_ptr<Rule>> rules;
  rules.push_back(std::make_unique<FoldConvBias>());
  rules.push_back(std::make_unique<FoldGemmBias>());
  rules.push_back(std::make_unique<FoldMatMulBias>());
  return std::make_unique<RulePass>("bias-add-folding", std::move(rules));
}

}  // namespace qf::passes
