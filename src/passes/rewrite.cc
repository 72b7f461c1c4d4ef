#include "passes/rewrite.h"

#include <algorithm>

namespace qf::passes {

namespace {

bool contains(const std::vector<ir::Node*>& nodes, const ir::Node* n) {
  return std::find(nodes.begin(), nodes.end(), n) != nodes.end();
}

}  // namespace

bool is_graph_input(const ir::Graph& g, const ir::Value* v) {
  return std::find(g.inputs.begin(), g.inputs.end(), v) != g.inputs.end();
}

bool is_graph_output(const ir::Graph& g, const ir::Value* v) {
  return std::find(g.outputs.begin(), g.outputs.end(), v) != g.outputs.end();
}

bool is_onnx_op(const ir::Node& node, std::string_view op_type) {
  return node.op_type == op_type && (node.domain.empty() || node.domain == "ai.onnx");
}

ir::Node* sole_consumer(const ir::Graph& g, const ir::Value* v) {
  if (!v || v->consumers.size() != 1 || is_graph_output(g, v)) return nullptr;
  return v->consumers.front();
}

bool used_only_by(const ir::Graph& g, const ir::Value* v, const std::vector<ir::Node*>& nodes) {
  if (!v || is_graph_output(g, v)) return false;
  return std::all_of(v->consumers.begin(), v->consumers.end(),
                     [&](const ir::Node* c) { return contains(nodes, c); });
}

bool other_outputs_unused(const ir::Graph& g, const ir::Node& node, size_t keep) {
  for (size_t i = 0; i < node.outputs.size(); ++i) {
    const ir::Value* out = node.outputs[i];
    if (i == keep || !out) continue;
    if (!out->consumers.empty() || is_graph_output(g, out)) return false;
  }
  return true;
}

bool forward_value(Rewriter& rw, const std::vector<ir::Node*>& nodes, ir::Value* y, ir::Value* x) {
  ir::Graph& g = rw.graph();
  if (!is_graph_output(g, y)) {
    for (ir::Node* n : nodes) rw.remove(n);
    g.replace_all_uses(y, x);
    return true;
  }
  ir::Node* producer = x->producer;
  if (!producer || contains(nodes, producer) || is_graph_output(g, x) || is_graph_input(g, x) ||
      x->is_constant()) {
    return false;
  }
  for (ir::Node* n : nodes) rw.remove(n);
  g.replace_all_uses(x, y);
  for (ir::Value*& out : producer->outputs) {
    if (out == x) out = y;
  }
  y->producer = producer;
  x->producer = nullptr;
  return true;
}

void take_output(Rewriter& rw, ir::Node& node, size_t index, ir::Value* y,
                 const std::vector<ir::Node*>& absorbed) {
  for (ir::Node* n : absorbed) rw.remove(n);
  ir::Value* old = node.outputs.at(index);
  node.outputs[index] = y;
  y->producer = &node;
  if (old && old != y && old->producer == &node) old->producer = nullptr;
}

ir::Value* other_input(const ir::Node& node, const ir::Value* v) {
  if (node.inputs.size() != 2 || !node.inputs[0] || !node.inputs[1]) return nullptr;
  if (node.inputs[0] == v && node.inputs[1] != v) return node.inputs[1];
  if (node.inputs[1] == v && node.inputs[0] != v) return node.inputs[0];
  return nullptr;
}

std::optional<std::vector<double>> float_constant(const ir::Value* v) {
  if (!v || !v->is_constant() || !dtype_is_float(v->constant.dtype())) return std::nullopt;
  std::vector<double> out(static_cast<size_t>(v->constant.numel()));
  for (size_t i = 0; i < out.size(); ++i) {
    out[i] = v->constant.element_as_double(static_cast<int64_t>(i));
  }
  return out;
}

std::optional<double> scalar_constant(const ir::Value* v) {
  if (!v || !v->is_constant() || v->constant.numel() != 1) return std::nullopt;
  auto values = float_constant(v);
  if (!values) return std::nullopt;
  return values->front();
}

std::optional<std::vector<int64_t>> int64_constant(const ir::Value* v) {
  if (!v || !v->is_constant() || v->constant.dtype() != DType::kI64) return std::nullopt;
  return v->constant.to_int64_vector();
}

Tensor tensor_from_doubles(DType dtype, Shape shape, const std::vector<double>& values) {
  Tensor t(dtype, std::move(shape));
  visit_dtype(dtype, [&]<typename T>() {
    T* p = t.data<T>();
    for (size_t i = 0; i < values.size() && i < static_cast<size_t>(t.numel()); ++i) {
      p[i] = from_double<T>(values[i]);
    }
  });
  return t;
}

std::vector<double> elements(const Tensor& t) {
  std::vector<double> v(static_cast<size_t>(t.numel()));
  for (int64_t i = 0; i < t.numel(); ++i) v[static_cast<size_t>(i)] = t.element_as_double(i);
  return v;
}

std::optional<int64_t> extent_along(const Shape& c, size_t rank, size_t axis) {
  if (c.size() > rank) return std::nullopt;
  int64_t extent = 1;
  for (size_t j = 0; j < c.size(); ++j) {
    const size_t out_axis = rank - c.size() + j;
    if (out_axis == axis) {
      extent = c[j];
    } else if (c[j] != 1) {
      return std::nullopt;
    }
  }
  return extent;
}

std::vector<double> per_channel(const std::vector<double>& c, int64_t channels) {
  if (c.size() == 1) return std::vector<double>(static_cast<size_t>(channels), c[0]);
  return c;
}

bool same_shape(const ir::Value* a, const ir::Value* b) {
  if (!a || !b || !a->shape || !b->shape || a->shape->size() != b->shape->size()) return false;
  for (size_t i = 0; i < a->shape->size(); ++i) {
    if (!((*a->shape)[i] == (*b->shape)[i])) return false;
  }
  return true;
}

bool is_fusable_linear(const ir::Node& node) {
  const bool onnx =
      is_onnx_op(node, "Conv") || is_onnx_op(node, "Gemm") || is_onnx_op(node, "MatMul");
  const bool fused =
      node.domain == ops::kFusedDomain &&
      (node.op_type == "FusedConv" || node.op_type == "FusedGemm" || node.op_type == "FusedMatMul");
  if (!onnx && !fused) return false;
  if (node.outputs.size() != 1 || !node.outputs[0]) return false;
  return dtype_is_float(node.outputs[0]->dtype);
}

bool has_residual(const ir::Node& node) {
  return node.domain == ops::kFusedDomain && node.has_input(ops::kFusedResidualInput);
}

bool has_activation(const ir::Node& node) {
  return node.domain == ops::kFusedDomain && !node.attrs.get_string("activation", "").empty();
}

void make_fused(ir::Graph& g, ir::Node& node) {
  g.opset_imports[std::string(ops::kFusedDomain)] = ops::kFusedOpset;
  if (node.domain == ops::kFusedDomain) return;
  node.op_type = "Fused" + node.op_type;
  node.domain = std::string(ops::kFusedDomain);
  node.opset = ops::kFusedOpset;
}

}  // namespace qf::passes
