// Building blocks for elementwise kernels, shared by the op families under src/ops/.
#pragma once

#include <cmath>
#include <type_traits>

#include "ir/op_registry.h"
#include "ir/shape_utils.h"

namespace qf::ops {

// Applies `fn(double) -> double` to every element of input 0, writing output 0 of the same type.
// Works for every numeric type; half types compute in double and round once at the end.
template <typename Fn>
Status map_unary(ir::KernelContext& ctx, Fn&& fn) {
  const Tensor& x = ctx.in(0);
  Tensor& y = ctx.out(0);
  const bool ok = visit_dtype(x.dtype(), [&]<typename T>() {
    const T* src = x.data<T>();
    T* dst = y.data<T>();
    for (int64_t i = 0; i < x.numel(); ++i) dst[i] = from_double<T>(fn(to_double(src[i])));
  });
  if (!ok) return ctx.error("input has no element type");
  return {};
}

// Visits every element of a broadcast binary operation: `fn(out_index, a_index, b_index)`.
// Shapes must already be broadcast-compatible (checked by the shape function).
template <typename Fn>
void for_each_broadcast(const Shape& a, const Shape& b, const Shape& out, Fn&& fn) {
  const std::vector<int64_t> sa = ir::broadcast_strides(a, out);
  const std::vector<int64_t> sb = ir::broadcast_strides(b, out);
  const int64_t n = shape_numel(out);
  const size_t rank = out.size();
  std::vector<int64_t> idx(rank, 0);
  int64_t ia = 0, ib = 0;
  for (int64_t i = 0; i < n; ++i) {
    fn(i, ia, ib);
    for (size_t d = rank; d-- > 0;) {  // odometer increment, updating offsets incrementally
      ++idx[d];
      ia += sa[d];
      ib += sb[d];
      if (idx[d] < out[d]) break;
      ia -= sa[d] * out[d];
      ib -= sb[d] * out[d];
      idx[d] = 0;
    }
  }
}

// Shape function for ops whose single output has the type and shape of input 0.
Status infer_same_as_input(ir::InferContext& ctx);

// Float-only type check used by math ops: error naming the node for other element types.
Status require_float(const ir::InferContext& ctx, size_t input);

}  // namespace qf::ops
