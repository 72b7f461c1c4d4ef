// Constant (value / value_float(s) / value_int(s) attributes) and ConstantOfShape.
#include <cstring>

#include "ops/elementwise.h"

namespace qf::ops {
namespace {

using ir::Dim;
using ir::SymShape;

// The tensor a Constant node stands for, from whichever of its value attributes is set.
Result<Tensor> constant_value(const ir::Node& node) {
  const ir::Attributes& a = node.attrs;
  if (const Tensor* t = a.get_tensor("value")) return *t;
  if (a.has("value_float")) return Tensor::from_vector<float>({}, {a.get_float("value_float", 0)});
  if (a.has("value_floats")) {
    const std::vector<float> v = a.get_floats("value_floats");
    return Tensor::from_vector<float>({static_cast<int64_t>(v.size())}, v);
  }
  if (a.has("value_int")) return Tensor::from_vector<int64_t>({}, {a.get_int("value_int", 0)});
  if (a.has("value_ints")) {
    const std::vector<int64_t> v = a.get_ints("value_ints");
    return Tensor::from_vector<int64_t>({static_cast<int64_t>(v.size())}, v);
  }
  for (const char* name : {"value_string", "value_strings"}) {
    if (a.has(name)) {
      return unsupported("{}: string constants ({}) are not supported", node.label(), name);
    }
  }
  if (a.has("sparse_value")) {
    return unsupported("{}: sparse constants are not supported", node.label());
  }
  return invalid_input("{}: Constant has no value attribute", node.label());
}

Status constant_infer(ir::InferContext& ctx) {
  QF_ASSIGN_OR_RETURN(Tensor value, constant_value(ctx.node));
  ctx.set_output(0, value.dtype(), ir::to_sym_shape(value.shape()));
  ctx.outputs[0].value = std::move(value);
  return {};
}

Status constant_reference(ir::KernelContext& ctx) {
  QF_ASSIGN_OR_RETURN(Tensor value, constant_value(ctx.node));
  Tensor& y = ctx.out(0);
  if (value.nbytes() != y.nbytes()) return ctx.error("output does not match the constant");
  if (y.nbytes() > 0) std::memcpy(y.raw(), value.raw(), y.nbytes());
  return {};
}

QF_REGISTER_OP({.op_type = "Constant",
                .infer = constant_infer,
                .reference = constant_reference,
                .min_opset = 1});

// ---------------------------------------------------------------------------------------------
// ConstantOfShape: a tensor of the shape given by input 0, filled with the one-element `value`
// attribute (float 0 by default).

Result<Tensor> fill_value(const ir::Node& node) {
  const Tensor* t = node.attrs.get_tensor("value");
  if (!t) return Tensor::from_vector<float>({}, {0.0f});
  if (t->numel() != 1) {
    return invalid_input("{}: attribute 'value' must hold one element, not {}", node.label(),
                         t->numel());
  }
  return *t;
}

Status constant_of_shape_infer(ir::InferContext& ctx) {
  if (!ctx.has_input(0)) return ctx.error("input 0 (shape) is required");
  QF_ASSIGN_OR_RETURN(Tensor fill, fill_value(ctx.node));
  if (const auto dims = ir::known_ints(ctx, 0)) {
    for (int64_t d : *dims) {
      if (d < 0) return ctx.error("shape has negative dim {}", d);
    }
    const SymShape out = ir::to_sym_shape(*dims);
    QF_RETURN_IF_ERROR(ir::check_element_count(ctx, out));
    ctx.set_output(0, fill.dtype(), out);
    return {};
  }
  const std::optional<SymShape>& s = ctx.in(0).shape;
  if (s && s->size() == 1 && (*s)[0].is_known()) {
    ctx.set_output(0, fill.dtype(), SymShape(static_cast<size_t>((*s)[0].value)));
  } else {
    ctx.set_output(0, fill.dtype(), std::nullopt);
  }
  return {};
}

Status constant_of_shape_reference(ir::KernelContext& ctx) {
  QF_ASSIGN_OR_RETURN(Tensor fill, fill_value(ctx.node));
  Tensor& y = ctx.out(0);
  const size_t esize = dtype_size(y.dtype());
  if (fill.dtype() != y.dtype()) return ctx.error("output type does not match 'value'");
  auto* dst = static_cast<std::byte*>(y.raw());
  for (int64_t i = 0; i < y.numel(); ++i) {
    std::memcpy(dst + static_cast<size_t>(i) * esize, fill.raw(), esize);
  }
  return {};
}

QF_REGISTER_OP({.op_type = "ConstantOfShape",
                .infer = constant_of_shape_infer,
                .reference = constant_of_shape_reference,
                .min_opset = 9});

}  // namespace
}  // namespace qf::ops
