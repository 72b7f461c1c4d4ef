// Variadic elementwise ops with multidirectional broadcasting over all inputs: Min, Max, Sum,
// Mean. One input is allowed (the output is a copy).
#include <cmath>
#include <cstdint>
#include <type_traits>

#include "ops/elementwise.h"

namespace qf::ops {
namespace {

Status infer_variadic(ir::InferContext& ctx) {
  if (ctx.num_inputs() == 0) return ctx.error("expects at least one input");
  DType t = DType::kUndefined;
  for (size_t i = 0; i < ctx.num_inputs(); ++i) {
    if (!ctx.has_input(i)) return ctx.error("input {} is missing", i);
    const DType ti = ctx.in(i).dtype;
    if (ti == DType::kUndefined) continue;
    if (t != DType::kUndefined && ti != t) {
      return ctx.error("inputs have different element types ({} and {})", dtype_tag(t),
                       dtype_tag(ti));
    }
    t = ti;
  }
  if (t == DType::kBool) return ctx.error("not defined on bool tensors");
  QF_ASSIGN_OR_RETURN(auto shape, ir::broadcast_inputs(ctx));
  ctx.set_output(0, t, std::move(shape));
  return {};
}

// Mean divides, so ONNX defines it on floating-point types only.
Status infer_mean(ir::InferContext& ctx) {
  for (size_t i = 0; i < ctx.num_inputs(); ++i) QF_RETURN_IF_ERROR(require_float(ctx, i));
  return infer_variadic(ctx);
}

// Folds all inputs into the output with `combine(acc, x)`, in input order like ONNX's
// reference, then applies `finish(acc, count)`.
template <typename Combine, typename Finish>
Status variadic_kernel(ir::KernelContext& ctx, Combine combine, Finish finish) {
  Tensor& y = ctx.out(0);
  std::vector<Shape> shapes;
  for (const Tensor* in : ctx.inputs) shapes.push_back(in->shape());
  const DType t = y.dtype();
  for (const Tensor* in : ctx.inputs) {
    if (in->dtype() != t) return ctx.error("inputs have different element types");
  }
  const bool known = visit_dtype(t, [&]<typename T>() {
    if constexpr (!std::is_same_v<T, bool>) {
      std::vector<const T*> data;
      for (const Tensor* in : ctx.inputs) data.push_back(in->data<T>());
      T* py = y.data<T>();
      const auto count = static_cast<int64_t>(data.size());
      for_each_broadcast_n(shapes, y.shape(), [&](int64_t i, const std::vector<int64_t>& off) {
        compute_t<T> acc = to_compute(data[0][off[0]]);
        for (size_t k = 1; k < data.size(); ++k) acc = combine(acc, to_compute(data[k][off[k]]));
        py[i] = from_compute<T>(finish(acc, count));
      });
    }
  });
  if (!known || t == DType::kBool) {
    return ctx.unsupported_here("element type {} is not supported", dtype_tag(t));
  }
  return {};
}

// NaN propagates through Min and Max, as numpy's minimum/maximum (ONNX's reference) do.
template <typename C>
bool is_nan(C v) {
  if constexpr (std::is_floating_point_v<C>) {
    return std::isnan(v);
  } else {
    return false;
  }
}

constexpr auto kKeep = []<typename C>(C acc, int64_t) { return acc; };

Status Max_reference(ir::KernelContext& ctx) {
  return variadic_kernel(
      ctx, []<typename C>(C acc, C x) { return (is_nan(acc) || acc >= x) && !is_nan(x) ? acc : x; },
      kKeep);
}
Status Min_reference(ir::KernelContext& ctx) {
  return variadic_kernel(
      ctx, []<typename C>(C acc, C x) { return (is_nan(acc) || acc <= x) && !is_nan(x) ? acc : x; },
      kKeep);
}
Status Sum_reference(ir::KernelContext& ctx) {
  return variadic_kernel(
      ctx,
      []<typename C>(C acc, C x) -> C {
        if constexpr (std::is_integral_v<C>) {
          return static_cast<C>(static_cast<uint64_t>(acc) + static_cast<uint64_t>(x));
        } else {
          return acc + x;
        }
      },
      kKeep);
}
Status Mean_reference(ir::KernelContext& ctx) {
  return variadic_kernel(
      ctx, []<typename C>(C acc, C x) -> C { return acc + x; },
      []<typename C>(C acc, int64_t count) -> C { return acc / static_cast<C>(count); });
}

QF_REGISTER_OP(
    {.op_type = "Max", .infer = infer_variadic, .reference = Max_reference, .min_opset = 6});
QF_REGISTER_OP(
    {.op_type = "Min", .infer = infer_variadic, .reference = Min_reference, .min_opset = 6});
QF_REGISTER_OP(
    {.op_type = "Sum", .infer = infer_variadic, .reference = Sum_reference, .min_opset = 6});
QF_REGISTER_OP(
    {.op_type = "Mean", .infer = infer_mean, .reference = Mean_reference, .min_opset = 6});

}  // namespace
}  // namespace qf::ops
