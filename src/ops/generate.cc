// Ops that generate data from small inputs: Range and Tile.
#include <cmath>

#include "ops/elementwise.h"

namespace qf::ops {
namespace {

using ir::Dim;
using ir::SymShape;

// ---------------------------------------------------------------------------------------------
// Range: start, start + delta, ... up to (excluding) limit.

// Number of elements, max(ceil((limit - start) / delta), 0), computed in the element type so
// that float32 ranges end where ONNX's (numpy's float32) reference ends them.
template <typename T>
Result<int64_t> range_count(T start, T limit, T delta) {
  if (delta == T(0)) return invalid_input("delta is 0");
  if constexpr (std::is_integral_v<T>) {
    int64_t span = 0;
    if (__builtin_sub_overflow(static_cast<int64_t>(limit), static_cast<int64_t>(start), &span)) {
      return invalid_input("limit - start overflows int64");
    }
    const int64_t d = static_cast<int64_t>(delta);
    if ((span > 0) != (d > 0) || span == 0) return int64_t{0};
    return (span + d + (d > 0 ? -1 : 1)) / d;
  } else {
    const T n = std::ceil((limit - start) / delta);
    if (!(static_cast<double>(n) < 9007199254740992.0)) {  // 2^53; also catches NaN and inf
      return invalid_input("the range has too many elements ({})", static_cast<double>(n));
    }
    return n > T(0) ? static_cast<int64_t>(n) : int64_t{0};
  }
}

bool range_type(DType t) {
  return t == DType::kF32 || t == DType::kF64 || t == DType::kI16 || t == DType::kI32 ||
         t == DType::kI64;
}

// Runs `fn(start, limit, delta)` with the three scalars as the element type's C++ type.
template <typename Fn>
Status with_range_args(DType t, const Tensor& s, const Tensor& l, const Tensor& d, Fn&& fn) {
  Status status;
  visit_dtype(t, [&]<typename T>() {
    if constexpr (std::is_arithmetic_v<T> && !std::is_same_v<T, bool>) {
      status = fn(s.data<T>()[0], l.data<T>()[0], d.data<T>()[0]);
    }
  });
  return status;
}

Status range_infer(ir::InferContext& ctx) {
  for (size_t i = 0; i < 3; ++i) {
    if (!ctx.has_input(i)) return ctx.error("inputs start, limit and delta are required");
    const ir::InferInput& in = ctx.in(i);
    if (in.dtype != DType::kUndefined && in.dtype != ctx.in(0).dtype) {
      return ctx.error("start, limit and delta must have the same element type");
    }
    if (in.shape && ir::to_concrete(*in.shape) && shape_numel(*ir::to_concrete(*in.shape)) != 1) {
      return ctx.error("input {} must be a scalar, not {}", i, ir::sym_shape_str(in.shape));
    }
  }
  const DType t = ctx.in(0).dtype;
  if (t != DType::kUndefined && !range_type(t)) {
    return unsupported(
        "{}: element type {} is not supported (float, double, int16, int32, "
        "int64)",
        ctx.node.label(), dtype_tag(t));
  }
  SymShape out{Dim{}};
  if (ctx.in(0).value && ctx.in(1).value && ctx.in(2).value && t != DType::kUndefined) {
    QF_RETURN_IF_ERROR(with_range_args(t, *ctx.in(0).value, *ctx.in(1).value, *ctx.in(2).value,
                                       [&](auto s, auto l, auto d) -> Status {
                                         auto n = range_count(s, l, d);
                                         if (!n.ok()) return ctx.error("{}", n.status().message());
                                         out[0] = Dim::known(*n);
                                         return {};
                                       }));
  }
  ctx.set_output(0, t, std::move(out));
  return {};
}

Status range_reference(ir::KernelContext& ctx) {
  Tensor& y = ctx.out(0);
  return with_range_args(y.dtype(), ctx.in(0), ctx.in(1), ctx.in(2),
                         [&](auto s, auto, auto d) -> Status {
                           using T = decltype(s);
                           T* out = y.data<T>();
                           for (int64_t i = 0; i < y.numel(); ++i) {
                             out[i] = static_cast<T>(s + static_cast<T>(i) * d);
                           }
                           return {};
                         });
}

QF_REGISTER_OP(
    {.op_type = "Range", .infer = range_infer, .reference = range_reference, .min_opset = 11});

// ---------------------------------------------------------------------------------------------
// Tile: out dim i = in dim i * repeats[i]; out[p] = in[p mod in shape].

Status tile_infer(ir::InferContext& ctx) {
  if (!ctx.has_input(0) || !ctx.has_input(1))
    return ctx.error("inputs input and repeats are required");
  const DType dtype = ctx.in(0).dtype;
  const std::optional<SymShape>& in = ctx.in(0).shape;
  const auto repeats = ir::known_ints(ctx, 1);
  if (!in) {
    ctx.set_output(0, dtype, repeats ? std::optional(SymShape(repeats->size())) : std::nullopt);
    return {};
  }
  if (!repeats) {
    ctx.set_output(0, dtype, SymShape(in->size()));
    return {};
  }
  if (repeats->size() != in->size()) {
    return ctx.error("repeats has {} entries but the input has rank {}", repeats->size(),
                     in->size());
  }
  SymShape out = *in;
  for (size_t i = 0; i < out.size(); ++i) {
    const int64_t r = (*repeats)[i];
    if (r < 0) return ctx.error("repeats has negative entry {}", r);
    if (out[i].is_known()) {
      int64_t n = 0;
      if (__builtin_mul_overflow(out[i].value, r, &n)) {
        return ctx.error("repeats {} of axis {} overflow", r, i);
      }
      out[i] = Dim::known(n);
    } else if (r == 0) {
      out[i] = Dim::known(0);
    } else if (r != 1) {
      out[i] = Dim{};
    }
  }
  QF_RETURN_IF_ERROR(ir::check_element_count(ctx, out));
  ctx.set_output(0, dtype, std::move(out));
  return {};
}

Status tile_reference(ir::KernelContext& ctx) {
  const Tensor& x = ctx.in(0);
  Tensor& y = ctx.out(0);
  const size_t rank = static_cast<size_t>(x.rank());
  const std::vector<int64_t> strides = ir::strides_of(x.shape());
  const Shape& out_shape = y.shape();
  const bool ok = visit_dtype(x.dtype(), [&]<typename T>() {
    const T* src = x.data<T>();
    T* dst = y.data<T>();
    std::vector<int64_t> idx(rank, 0);
    for (int64_t i = 0; i < y.numel(); ++i) {
      int64_t offset = 0;
      for (size_t d = 0; d < rank; ++d) offset += (idx[d] % x.shape()[d]) * strides[d];
      dst[i] = src[offset];
      for (size_t d = rank; d-- > 0;) {
        if (++idx[d] < out_shape[d]) break;
        idx[d] = 0;
      }
    }
  });
  if (!ok) return ctx.error("input has no element type");
  return {};
}

QF_REGISTER_OP(
    {.op_type = "Tile", .infer = tile_infer, .reference = tile_reference, .min_opset = 6});

}  // namespace
}  // namespace qf::ops
