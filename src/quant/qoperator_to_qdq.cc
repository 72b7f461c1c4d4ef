// Every decision about a node is made by a planning step that only reads the graph; the rewrite
// of a planned node cannot fail, so a node is either rewritten completely or left as it was.
#include "quant/qoperator_to_qdq.h"

#include <cmath>
#include <cstring>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "ir/op_registry.h"

namespace qf::quant {
namespace {

constexpr int64_t kPerAxisOpset = 13;  // DequantizeLinear's `axis`

// A scale or zero point as a Q/DQ node will read it: an existing value, or a constant to add
// (the original given the shape the node needs). Neither: no input (an omitted zero point).
struct Param {
  ir::Value* value = nullptr;
  Tensor constant;
};

struct QuantParams {
  Param scale, zero_point;
  std::optional<int64_t> axis;
};

// The input's float32 constant data when every element is a usable scale (positive, finite).
const Tensor* constant_scale(const ir::Value* v) {
  if (!v || !v->is_constant() || v->constant.dtype() != DType::kF32) return nullptr;
  for (float s : v->constant.span<float>()) {
    if (!(std::isfinite(s) && s > 0.0f)) return nullptr;
  }
  return &v->constant;
}

std::optional<Shape> known_shape(const ir::Value* v) {
  return v && v->shape ? ir::to_concrete(*v->shape) : std::nullopt;
}

// `t`'s single element repeated over `shape`.
Tensor broadcast_one(const Tensor& t, const Shape& shape) {
  Tensor out(t.dtype(), shape);
  const size_t size = dtype_size(t.dtype());
  for (int64_t i = 0; i < out.numel(); ++i) {
    std::memcpy(static_cast<std::byte*>(out.raw()) + static_cast<size_t>(i) * size, t.raw(), size);
  }
  return out;
}

// Scale and zero point for a Q/DQ node, both of the shape it needs: [n] along `axis`, or for
// one value per tensor [] ([1] when a non-constant zero point has that shape; the scale is a
// constant and can follow). nullopt when a non-constant zero point has another shape.
std::optional<QuantParams> params_for(ir::Value* scale, ir::Value* zero_point,
                                      std::optional<int64_t> axis, int64_t n) {
  const Tensor& s = scale->constant;
  const std::optional<Shape> zp_shape = known_shape(zero_point);
  Shape shape = axis ? Shape{n} : Shape{};
  if (!axis && zero_point && !zero_point->is_constant() && zp_shape == Shape{1}) shape = {1};
  QuantParams p;
  p.axis = axis;
  if (s.shape() == shape) {
    p.scale.value = scale;
  } else {
    p.scale.constant = s.reshaped(shape);
  }
  if (!zero_point) return p;
  if (zp_shape == shape) {
    p.zero_point.value = zero_point;
  } else if (zero_point->is_constant() && zero_point->constant.numel() == shape_numel(shape)) {
    p.zero_point.constant = zero_point->constant.reshaped(shape);
  } else if (zero_point->is_constant() && zero_point->constant.numel() == 1) {
    p.zero_point.constant = broadcast_one(zero_point->constant, shape);
  } else {
    return std::nullopt;
  }
  return p;
}

ir::Value* input(const ir::Node& n, size_t i) {
  return n.has_input(i) ? n.inputs[i] : nullptr;
}

// What replaces one node: each operand's DequantizeLinear (the Conv bias last), the float op
// and the output's QuantizeLinear.
struct NodePlan {
  ir::Node* node;
  std::string float_op;
  std::vector<ir::Value*> operands;
  std::vector<QuantParams> dequantize;
  QuantParams quantize;
};

// The output's parameters: y_scale and y_zero_point, one value each.
std::optional<QuantParams> output_params(const ir::Node& n) {
  ir::Value* ys = input(n, 6);
  const Tensor* s = constant_scale(ys);
  if (!s || s->numel() != 1) return std::nullopt;
  return params_for(ys, input(n, 7), std::nullopt, 1);
}

std::optional<NodePlan> plan_qlinear_conv(const ir::Graph& g, ir::Node& n) {
  ir::Value* x = input(n, 0);
  ir::Value* w = input(n, 3);
  ir::Value* bias = input(n, 8);
  const Tensor* xs = constant_scale(input(n, 1));
  const Tensor* ws = constant_scale(input(n, 4));
  if (!x || !w || !xs || !ws || xs->numel() != 1 || !n.has_output(0)) return std::nullopt;
  std::optional<int64_t> axis;
  const int64_t m = ws->numel();
  if (m != 1) {
    const std::optional<Shape> w_shape = known_shape(w);
    if (ws->rank() != 1 || !w_shape || w_shape->empty() || (*w_shape)[0] != m ||
        g.opset() < kPerAxisOpset) {
      return std::nullopt;
    }
    axis = 0;
  }
  auto x_params = params_for(input(n, 1), input(n, 2), std::nullopt, 1);
  auto w_params = params_for(input(n, 4), input(n, 5), axis, m);
  auto y_params = output_params(n);
  if (!x_params || !w_params || !y_params) return std::nullopt;
  NodePlan plan{&n, "Conv", {x, w}, {*x_params, *w_params}, *y_params};
  if (bias) {
    if (bias->dtype != DType::kI32) return std::nullopt;
    // The bias's real value is bias * x_scale * w_scale[c]: a float32 product, see the header.
    QuantParams b;
    b.axis = axis;
    b.scale.constant = Tensor(DType::kF32, axis ? Shape{m} : Shape{});
    for (int64_t c = 0; c < m; ++c) {
      b.scale.constant.data<float>()[c] = xs->data<float>()[0] * ws->data<float>()[c];
    }
    b.zero_point.constant = Tensor(DType::kI32, b.scale.constant.shape());
    plan.operands.push_back(bias);
    plan.dequantize.push_back(std::move(b));
  }
  return plan;
}

// One operand of QLinearMatMul: per tensor, or a 1-D scale along a's rows (axis rank - 2) or
// b's columns (axis rank - 1) of an operand whose rank is known.
std::optional<QuantParams> matmul_operand_params(const ir::Graph& g, const ir::Node& n, size_t data,
                                                 bool is_a) {
  const Tensor* s = constant_scale(input(n, data + 1));
  ir::Value* v = input(n, data);
  if (!v || !s) return std::nullopt;
  if (s->numel() == 1) return params_for(input(n, data + 1), input(n, data + 2), std::nullopt, 1);
  if (s->rank() != 1 || !v->shape || v->shape->size() < 2 || g.opset() < kPerAxisOpset) {
    return std::nullopt;
  }
  const auto rank = static_cast<int64_t>(v->shape->size());
  const int64_t axis = is_a ? rank - 2 : rank - 1;
  const ir::Dim& dim = (*v->shape)[static_cast<size_t>(axis)];
  if (dim.is_known() && dim.value != s->numel()) return std::nullopt;
  return params_for(input(n, data + 1), input(n, data + 2), axis, s->numel());
}

std::optional<NodePlan> plan_qlinear_matmul(const ir::Graph& g, ir::Node& n) {
  auto a = matmul_operand_params(g, n, 0, true);
  auto b = matmul_operand_params(g, n, 3, false);
  auto y = output_params(n);
  if (!a || !b || !y || !n.has_output(0)) return std::nullopt;
  return NodePlan{&n, "MatMul", {input(n, 0), input(n, 3)}, {*a, *b}, *y};
}

class Rewriter {
 public:
  explicit Rewriter(ir::Graph& g) : graph_(g) {
    for (const auto& n : g.nodes()) node_names_.insert(n->name);
  }

  void rewrite(const NodePlan& plan) {
    ir::Node& n = *plan.node;
    ir::Value* y = n.outputs[0];
    const std::string base = n.name.empty() ? y->name : n.name;
    const ir::Attributes attrs = n.attrs;
    graph_.remove_node(&n);

    static constexpr const char* kOperandNames[] = {"x", "w", "bias"};
    std::vector<ir::Value*> float_inputs;
    for (size_t i = 0; i < plan.operands.size(); ++i) {
      const std::string what =
          plan.float_op == "Conv" ? kOperandNames[i] : std::string(i == 0 ? "a" : "b");
      ir::Value* in = plan.operands[i];
      const QuantParams& q = plan.dequantize[i];
      ir::Value* out = new_value(in->name + "_dequantized", in->shape);
      ir::Node* dq =
          graph_.add_node("DequantizeLinear", node_name(base + "_DequantizeLinear_" + what),
                          {in, param(q.scale, base + "_" + what + "_scale"),
                           param(q.zero_point, base + "_" + what + "_zero_point")},
                          {out});
      if (q.axis) dq->attrs.set("axis", *q.axis);
      float_inputs.push_back(out);
    }
    ir::Value* y_float = new_value(y->name + "_float", y->shape);
    ir::Node* op = graph_.add_node(plan.float_op, node_name(base + "_" + plan.float_op),
                                   std::move(float_inputs), {y_float});
    op->attrs = attrs;  // QLinearConv's attributes are Conv's; QLinearMatMul has none
    graph_.add_node("QuantizeLinear", node_name(base + "_QuantizeLinear"),
                    {y_float, param(plan.quantize.scale, base + "_y_scale"),
                     param(plan.quantize.zero_point, base + "_y_zero_point")},
                    {y});
  }

 private:
  ir::Value* param(const Param& p, const std::string& hint) {
    if (p.value) return p.value;
    return p.constant.defined() ? graph_.add_constant(hint, p.constant) : nullptr;
  }

  ir::Value* new_value(const std::string& hint, std::optional<ir::SymShape> shape) {
    std::string name = hint;
    for (int i = 1; graph_.find_value(name); ++i) name = fmt::format("{}_{}", hint, i);
    ir::Value* v = graph_.get_or_add_value(name);
    v->dtype = DType::kF32;
    v->shape = std::move(shape);
    return v;
  }

  std::string node_name(const std::string& hint) {
    std::string name = hint;
    for (int i = 1; node_names_.count(name); ++i) name = fmt::format("{}_{}", hint, i);
    node_names_.insert(name);
    return name;
  }

  ir::Graph& graph_;
  std::set<std::string> node_names_;
};

}  // namespace

Result<int> qoperator_to_qdq(ir::Graph& graph) {
  std::vector<NodePlan> plans;
  for (const auto& n : graph.nodes()) {
    if (!n->domain.empty()) continue;
    std::optional<NodePlan> plan;
    if (n->op_type == "QLinearConv") {
      plan = plan_qlinear_conv(graph, *n);
    } else if (n->op_type == "QLinearMatMul") {
      plan = plan_qlinear_matmul(graph, *n);
    }
    if (plan) plans.push_back(std::move(*plan));
  }
  if (plans.empty()) return 0;
  Rewriter rewriter(graph);
  for (const NodePlan& p : plans) rewriter.rewrite(p);
  graph.remove_unused_values();  // zero points and scales replaced by reshaped constants
  QF_RETURN_IF_ERROR(graph.sort_topologically());
  QF_RETURN_IF_ERROR(ir::infer_shapes(graph));
  return static_cast<int>(plans.size());
}

}  // namespace qf::quant
