// Conv/Gemm/MatMul (with or without bias/residual) followed by an activation -> Fused* with that
// activation. Activations are recognised by small pattern objects, from single ops (Relu, Clip
// with constant bounds ...) to the exporters' spellings of SiLU (x * Sigmoid(x)), HardSwish
// (x * HardSigmoid(x) before opset 14) and exact GELU (x * 0.5 * (1 + Erf(x / sqrt 2))).
#include <algorithm>
#include <cmath>
#include <limits>

#include "passes/passes.h"
#include "passes/rewrite.h"

namespace qf::passes {
namespace {

// An activation found on value x: its parameters, the nodes computing it and their result.
struct ActivationMatch {
  ops::ActivationSpec spec;
  std::vector<ir::Node*> nodes;
  ir::Value* output = nullptr;
};

class ActivationPattern {
 public:
  virtual ~ActivationPattern() = default;
  // The activation computed from x by x's readers, if they compute one. Whether the match's
  // intermediate values leak out of it is checked by the caller.
  virtual std::optional<ActivationMatch> match(const ir::Graph& g, ir::Value* x) const = 0;
};

bool close_to(std::optional<double> v, double target) {
  return v && std::fabs(*v - target) <= 1e-4 * std::fabs(target);
}

// The single-output node of `op_type` that reads x as input `slot` among x's readers.
ir::Node* reader(const ir::Value* x, std::string_view op_type, size_t slot = 0) {
  for (ir::Node* c : x->consumers) {
    if (is_onnx_op(*c, op_type) && c->inputs.size() > slot && c->inputs[slot] == x &&
        c->outputs.size() == 1 && c->has_output(0)) {
      return c;
    }
  }
  return nullptr;
}

// The single-output node of `op_type` reading x through either input of two.
ir::Node* binary_reader(const ir::Value* x, std::string_view op_type) {
  for (ir::Node* c : x->consumers) {
    if (is_onnx_op(*c, op_type) && other_input(*c, x) && c->outputs.size() == 1 &&
        c->has_output(0)) {
      return c;
    }
  }
  return nullptr;
}

// Relu, Sigmoid, Tanh, HardSwish; LeakyRelu and HardSigmoid with their attributes.
class UnaryActivation final : public ActivationPattern {
 public:
  UnaryActivation(std::string_view op_type, ops::Activation kind)
      : op_type_(op_type), kind_(kind) {}
  std::optional<ActivationMatch> match(const ir::Graph&, ir::Value* x) const override {
    ir::Node* n = reader(x, op_type_);
    if (!n || n->inputs.size() != 1) return std::nullopt;
    ops::ActivationSpec spec{kind_};
    if (kind_ == ops::Activation::kLeakyRelu) spec.alpha = n->attrs.get_float("alpha", 0.01f);
    if (kind_ == ops::Activation::kHardSigmoid) {
      spec.alpha = n->attrs.get_float("alpha", 0.2f);
      spec.beta = n->attrs.get_float("beta", 0.5f);
    }
    return ActivationMatch{spec, {n}, n->outputs[0]};
  }

 private:
  std::string_view op_type_;
  ops::Activation kind_;
};

// Clip with constant (or absent) bounds: alpha = min, beta = max (infinite when absent).
class ClipActivation final : public ActivationPattern {
 public:
  std::optional<ActivationMatch> match(const ir::Graph&, ir::Value* x) const override {
    ir::Node* n = reader(x, "Clip");
    if (!n || n->inputs.size() > 3) return std::nullopt;
    constexpr double kInf = std::numeric_limits<double>::infinity();
    double bounds[2] = {-kInf, kInf};
    for (size_t i = 1; i < 3; ++i) {
      if (!n->has_input(i)) continue;
      const std::optional<double> b = scalar_constant(n->inputs[i]);
      if (!b) return std::nullopt;
      bounds[i - 1] = *b;
    }
    ops::ActivationSpec spec{ops::Activation::kClip, static_cast<float>(bounds[0]),
                             static_cast<float>(bounds[1])};
    return ActivationMatch{spec, {n}, n->outputs[0]};
  }
};

// x * gate(x): SiLU with gate Sigmoid, HardSwish with gate HardSigmoid(alpha 1/6, beta 1/2).
class GatedActivation final : public ActivationPattern {
 public:
  GatedActivation(std::string_view gate_op, ops::Activation kind)
      : gate_op_(gate_op), kind_(kind) {}
  std::optional<ActivationMatch> match(const ir::Graph&, ir::Value* x) const override {
    ir::Node* gate = reader(x, gate_op_);
    if (!gate || gate->inputs.size() != 1) return std::nullopt;
    if (kind_ == ops::Activation::kHardSwish &&
        (!close_to(gate->attrs.get_float("alpha", 0.2f), 1.0 / 6.0) ||
         !close_to(gate->attrs.get_float("beta", 0.5f), 0.5))) {
      return std::nullopt;
    }
    ir::Node* mul = binary_reader(x, "Mul");
    if (!mul || other_input(*mul, x) != gate->outputs[0]) return std::nullopt;
    return ActivationMatch{{kind_}, {gate, mul}, mul->outputs[0]};
  }

 private:
  std::string_view gate_op_;
  ops::Activation kind_;
};

// Exact GELU as exporters write it: e = Erf(x / sqrt2) (or Erf(x * (1/sqrt2))), a = e + 1, then
// one of ((x * a) * 0.5), ((x * 0.5) * a) or (x * (a * 0.5)).
class GeluActivation final : public ActivationPattern {
 public:
  std::optional<ActivationMatch> match(const ir::Graph&, ir::Value* x) const override {
    ir::Node* scale = reader(x, "Div");
    if (scale) {
      if (!close_to(scalar_constant(scale->inputs[1]), std::sqrt(2.0))) scale = nullptr;
    }
    if (!scale) {
      scale = binary_reader(x, "Mul");
      if (scale && !close_to(scalar_constant(other_input(*scale, x)), 1.0 / std::sqrt(2.0))) {
        scale = nullptr;
      }
    }
    if (!scale) return std::nullopt;
    ir::Node* erf = only_reader(scale->outputs[0], "Erf");
    if (!erf) return std::nullopt;
    ir::Node* plus_one = only_reader(erf->outputs[0], "Add");
    if (!plus_one || !close_to(scalar_constant(other_input(*plus_one, erf->outputs[0])), 1.0)) {
      return std::nullopt;
    }
    ir::Value* a = plus_one->outputs[0];
    std::vector<ir::Node*> nodes = {scale, erf, plus_one};
    ir::Node* next = only_reader(a, "Mul");
    if (!next) return std::nullopt;
    const ir::Value* other = other_input(*next, a);
    ir::Node* last = nullptr;
    if (other == x) {  // (x * a) * 0.5
      last = only_reader(next->outputs[0], "Mul");
      if (!last || !is_one_half(other_input(*last, next->outputs[0]))) return std::nullopt;
      nodes.insert(nodes.end(), {next, last});
    } else if (is_one_half(other)) {  // x * (a * 0.5)
      last = only_reader(next->outputs[0], "Mul");
      if (!last || other_input(*last, next->outputs[0]) != x) return std::nullopt;
      nodes.insert(nodes.end(), {next, last});
    } else if (other && other->producer && is_onnx_op(*other->producer, "Mul") &&
               other_input(*other->producer, x) && is_one_half(other_input(*other->producer, x))) {
      last = next;  // (x * 0.5) * a
      nodes.insert(nodes.end(), {other->producer, next});
    } else {
      return std::nullopt;
    }
    return ActivationMatch{{ops::Activation::kGELU}, std::move(nodes), last->outputs[0]};
  }

 private:
  static bool is_one_half(const ir::Value* v) { return close_to(scalar_constant(v), 0.5); }
  // The node reading v when it is v's only reader (the caller checks v does not leak).
  static ir::Node* only_reader(const ir::Value* v, std::string_view op_type) {
    if (!v || v->consumers.size() != 1) return nullptr;
    ir::Node* c = v->consumers.front();
    if (!is_onnx_op(*c, op_type) || c->outputs.size() != 1 || !c->has_output(0)) return nullptr;
    return c;
  }
};

// Whether the match is self-contained: x and every intermediate value are read only by the
// match's nodes and are no graph outputs, so removing the nodes loses nothing.
bool is_closed(const ir::Graph& g, const ir::Value* x, const ActivationMatch& m) {
  if (!used_only_by(g, x, m.nodes)) return false;
  for (const ir::Node* n : m.nodes) {
    for (const ir::Value* out : n->outputs) {
      if (out && out != m.output && !used_only_by(g, out, m.nodes)) return false;
    }
  }
  return m.output && m.output->producer &&
         std::find(m.nodes.begin(), m.nodes.end(), m.output->producer) != m.nodes.end();
}

class FuseActivation final : public Rule {
 public:
  FuseActivation() {
    using ops::Activation;
    patterns_.push_back(std::make_unique<UnaryActivation>("Relu", Activation::kRelu));
    patterns_.push_back(std::make_unique<UnaryActivation>("LeakyRelu", Activation::kLeakyRelu));
    patterns_.push_back(std::make_unique<UnaryActivation>("Tanh", Activation::kTanh));
    patterns_.push_back(std::make_unique<UnaryActivation>("HardSwish", Activation::kHardSwish));
    patterns_.push_back(std::make_unique<ClipActivation>());
    // The gated forms first: their gate alone would also match as a plain activation.
    patterns_.push_back(std::make_unique<GatedActivation>("Sigmoid", Activation::kSiLU));
    patterns_.push_back(std::make_unique<GatedActivation>("HardSigmoid", Activation::kHardSwish));
    patterns_.push_back(std::make_unique<UnaryActivation>("Sigmoid", Activation::kSigmoid));
    patterns_.push_back(std::make_unique<UnaryActivation>("HardSigmoid", Activation::kHardSigmoid));
    patterns_.push_back(std::make_unique<GeluActivation>());
  }

  std::string_view name() const override { return "activation"; }

  Result<bool> apply(Rewriter& rw, ir::Node& node) const override {
    if (!is_fusable_linear(node) || has_activation(node)) return false;
    ir::Graph& g = rw.graph();
    ir::Value* x = node.outputs[0];
    if (is_graph_output(g, x) || x->consumers.empty()) return false;
    for (const auto& pattern : patterns_) {
      std::optional<ActivationMatch> m = pattern->match(g, x);
      if (!m || !is_closed(g, x, *m) || m->output->dtype != x->dtype) continue;
      make_fused(g, node);
      node.attrs.set("activation", std::string(ops::activation_name(m->spec.kind)));
      node.attrs.set("activation_alpha", m->spec.alpha);
      node.attrs.set("activation_beta", m->spec.beta);
      take_output(rw, node, 0, m->output, m->nodes);
      return true;
    }
    return false;
  }

 private:
  std::vector<std::unique_ptr<ActivationPattern>> patterns_;
};

}  // namespace

std::unique_ptr<Pass> make_activation_fusion_pass() {
  std::vector<std::unique_ptr<Rule>> rules;
  rules.push_back(std::make_unique<FuseActivation>());
  return std::make_unique<RulePass>("activation-fusion", std::move(rules));
}

}  // namespace qf::passes
