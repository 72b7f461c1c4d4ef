// Building blocks for elementwise kernels, shared by the op families under src/ops/.
#pragma once

#include <cmath>
#include <limits>
#include <type_traits>
#include <utility>
#include <vector>

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

// Visits every element of a broadcast n-ary operation (Where, variadic Min/Max/Sum/Mean):
// `fn(out_index, offsets)` where offsets[k] is the element of input k. Shapes must already be
// broadcast-compatible with `out`.
template <typename Fn>
void for_each_broadcast_n(const std::vector<Shape>& inputs, const Shape& out, Fn&& fn) {
  const size_t n_in = inputs.size();
  std::vector<std::vector<int64_t>> strides;
  for (const Shape& s : inputs) strides.push_back(ir::broadcast_strides(s, out));
  const int64_t n = shape_numel(out);
  const size_t rank = out.size();
  std::vector<int64_t> idx(rank, 0);
  std::vector<int64_t> offsets(n_in, 0);
  for (int64_t i = 0; i < n; ++i) {
    fn(i, std::as_const(offsets));
    for (size_t d = rank; d-- > 0;) {
      ++idx[d];
      for (size_t k = 0; k < n_in; ++k) offsets[k] += strides[k][d];
      if (idx[d] < out[d]) break;
      for (size_t k = 0; k < n_in; ++k) offsets[k] -= strides[k][d] * out[d];
      idx[d] = 0;
    }
  }
}

// The type arithmetic on T is done in: half types compute in float (and round once when
// stored), every other type in itself, so f32 results match numpy/ONNX Runtime bit for bit.
template <typename T>
struct compute_type {
  using type = T;
};
template <>
struct compute_type<f16_t> {
  using type = float;
};
template <>
struct compute_type<bf16_t> {
  using type = float;
};
template <typename T>
using compute_t = typename compute_type<T>::type;

template <typename T>
compute_t<T> to_compute(T v) {
  if constexpr (std::is_same_v<T, f16_t>) {
    return f16_to_f32(v);
  } else if constexpr (std::is_same_v<T, bf16_t>) {
    return bf16_to_f32(v);
  } else {
    return v;
  }
}
template <typename T>
T from_compute(compute_t<T> v) {
  if constexpr (std::is_same_v<T, f16_t>) {
    return f32_to_f16(v);
  } else if constexpr (std::is_same_v<T, bf16_t>) {
    return f32_to_bf16(v);
  } else {
    return v;
  }
}

// Integer T from a double, truncating toward zero. Out-of-range values saturate and NaN gives 0,
// because a plain static_cast is undefined behaviour there.
template <typename T>
T saturating_cast(double v) {
  static_assert(std::is_integral_v<T>);
  if constexpr (std::is_same_v<T, bool>) {
    return v != 0.0;
  } else {
    if (std::isnan(v)) return T{0};
    // Both limits are powers of two (or zero) and therefore exact in double.
    const double lo = static_cast<double>(std::numeric_limits<T>::lowest());
    const double hi_exclusive = static_cast<double>(std::numeric_limits<T>::max() / 2 + 1) * 2.0;
    if (v <= lo) return std::numeric_limits<T>::lowest();
    if (v >= hi_exclusive) return std::numeric_limits<T>::max();
    return static_cast<T>(std::trunc(v));
  }
}

// Copies the strided view of `x` that starts at element `base` and steps `strides[d]` elements
// along output dim d into the contiguous `y`. Transpose (permuted strides), Slice (scaled strides
// from an offset) and Expand (zero strides) are this one copy.
Status copy_strided_view(const ir::KernelContext& ctx, const Tensor& x, Tensor& y, int64_t base,
                         const std::vector<int64_t>& strides);

// Shape function for ops whose single output has the type and shape of input 0.
Status infer_same_as_input(ir::InferContext& ctx);

// Float-only type check used by math ops: error naming the node for other element types.
Status require_float(const ir::InferContext& ctx, size_t input);

}  // namespace qf::ops
