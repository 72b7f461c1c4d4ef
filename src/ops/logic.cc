// Not and Where.
#include <algorithm>
#include <cstddef>

#include "ops/elementwise.h"

namespace qf::ops {
namespace {

Status infer_not(ir::InferContext& ctx) {
  if (!ctx.has_input(0)) return ctx.error("input 0 is required");
  const DType t = ctx.in(0).dtype;
  if (t != DType::kUndefined && t != DType::kBool) {
    return ctx.error("input must be bool, got {}", dtype_tag(t));
  }
  ctx.set_output(0, DType::kBool, ctx.in(0).shape);
  return {};
}

Status Not_reference(ir::KernelContext& ctx) {
  const bool* x = ctx.in(0).data<bool>();
  bool* y = ctx.out(0).data<bool>();
  for (int64_t i = 0; i < ctx.in(0).numel(); ++i) y[i] = !x[i];
  return {};
}

// Where(condition, X, Y): all three inputs broadcast together.
Status infer_where(ir::InferContext& ctx) {
  for (size_t i = 0; i < 3; ++i) {
    if (!ctx.has_input(i)) return ctx.error("expects 3 inputs, input {} is missing", i);
  }
  const DType c = ctx.in(0).dtype;
  if (c != DType::kUndefined && c != DType::kBool) {
    return ctx.error("condition must be bool, got {}", dtype_tag(c));
  }
  const DType a = ctx.in(1).dtype;
  const DType b = ctx.in(2).dtype;
  if (a != DType::kUndefined && b != DType::kUndefined && a != b) {
    return ctx.error("X and Y have different element types ({} and {})", dtype_tag(a),
                     dtype_tag(b));
  }
  QF_ASSIGN_OR_RETURN(auto shape, ir::broadcast_inputs(ctx));
  ctx.set_output(0, a != DType::kUndefined ? a : b, std::move(shape));
  return {};
}

Status Where_reference(ir::KernelContext& ctx) {
  const Tensor& cond = ctx.in(0);
  const Tensor& a = ctx.in(1);
  const Tensor& b = ctx.in(2);
  Tensor& y = ctx.out(0);
  if (cond.dtype() != DType::kBool || a.dtype() != b.dtype()) {
    return ctx.error("condition must be bool and X, Y of one type");
  }
  const bool* pc = cond.data<bool>();
  // Where only moves elements, so copying bytes serves every element type.
  const size_t size = dtype_size(a.dtype());
  const auto* pa = static_cast<const std::byte*>(a.raw());
  const auto* pb = static_cast<const std::byte*>(b.raw());
  auto* py = static_cast<std::byte*>(y.raw());
  for_each_broadcast_n({cond.shape(), a.shape(), b.shape()}, y.shape(),
                       [&](int64_t i, const std::vector<int64_t>& off) {
                         const std::byte* src = pc[off[0]]
                                                    ? pa + off[1] * static_cast<int64_t>(size)
                                                    : pb + off[2] * static_cast<int64_t>(size);
                         std::copy(src, src + size, py + i * static_cast<int64_t>(size));
                       });
  return {};
}

QF_REGISTER_OP({.op_type = "Not", .infer = infer_not, .reference = Not_reference, .min_opset = 1});
QF_REGISTER_OP(
    {.op_type = "Where", .infer = infer_where, .reference = Where_reference, .min_opset = 9});

}  // namespace
}  // namespace qf::ops
