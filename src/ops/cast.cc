// Cast and CastLike between all qforge element types.
//
// Conversions follow C/numpy where those are defined: float -> integer truncates toward zero,
// integer -> integer wraps (two's complement), anything -> bool is "!= 0". Where C leaves the
// result undefined (a float out of the integer type's range, NaN), the result saturates (NaN
// gives 0) — ONNX leaves these cases undefined too. Float -> half types round to nearest even
// exactly once, also from double.
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "ops/elementwise.h"

namespace qf::ops {
namespace {

// double -> float rounded to odd: narrowing that to a half type then rounds correctly, where
// double -> float (nearest) -> half could round twice.
float to_float_round_to_odd(double v) {
  const float f = static_cast<float>(v);
  if (std::isnan(v) || static_cast<double>(f) == v) return f;
  if ((std::bit_cast<uint32_t>(f) & 1u) != 0) return f;
  // f is the even neighbour of v; the odd one lies on v's other side.
  return static_cast<double>(f) > v ? std::nextafter(f, -std::numeric_limits<float>::infinity())
                                    : std::nextafter(f, std::numeric_limits<float>::infinity());
}

template <typename D, typename S>
D convert(S s) {
  if constexpr (std::is_same_v<D, S>) {
    return s;
  } else if constexpr (std::is_same_v<D, bool>) {
    return to_double(s) != 0.0;  // NaN is true, as in C and numpy
  } else if constexpr (std::is_integral_v<S>) {
    if constexpr (std::is_integral_v<D>) {
      return static_cast<D>(s);  // wraps (C++20 defines this as modular)
    } else if constexpr (std::is_same_v<D, f16_t>) {
      return f32_to_f16(to_float_round_to_odd(static_cast<double>(s)));
    } else if constexpr (std::is_same_v<D, bf16_t>) {
      return f32_to_bf16(to_float_round_to_odd(static_cast<double>(s)));
    } else {
      return static_cast<D>(s);
    }
  } else {  // S is floating point
    const double v = to_double(s);
    if constexpr (std::is_integral_v<D>) {
      return saturating_cast<D>(v);
    } else if constexpr (std::is_same_v<D, f16_t>) {
      return f32_to_f16(to_float_round_to_odd(v));
    } else if constexpr (std::is_same_v<D, bf16_t>) {
      return f32_to_bf16(to_float_round_to_odd(v));
    } else {
      return static_cast<D>(v);
    }
  }
}

Status cast_tensor(ir::KernelContext& ctx, const Tensor& x, Tensor& y) {
  const bool known = visit_dtype(x.dtype(), [&]<typename S>() {
    visit_dtype(y.dtype(), [&]<typename D>() {
      const S* px = x.data<S>();
      D* py = y.data<D>();
      for (int64_t i = 0; i < x.numel(); ++i) py[i] = convert<D>(px[i]);
    });
  });
  if (!known || y.dtype() == DType::kUndefined) return ctx.error("cast between unknown types");
  return {};
}

Status infer_cast(ir::InferContext& ctx) {
  if (!ctx.has_input(0)) return ctx.error("input 0 is required");
  if (!ctx.attrs().has("to")) return ctx.error("attribute 'to' is required");
  const auto to = static_cast<int32_t>(ctx.attrs().get_int("to", 0));
  const DType t = dtype_from_onnx(to);
  if (t == DType::kUndefined) {
    return unsupported("{}: cast to {} is not supported", ctx.node.label(), onnx_type_name(to));
  }
  ctx.set_output(0, t, ctx.in(0).shape);
  return {};
}

Status Cast_reference(ir::KernelContext& ctx) {
  return cast_tensor(ctx, ctx.in(0), ctx.out(0));
}

// CastLike(input, target_type): only the element type of the second input matters.
Status infer_castlike(ir::InferContext& ctx) {
  if (!ctx.has_input(0) || !ctx.has_input(1)) return ctx.error("expects 2 inputs");
  ctx.set_output(0, ctx.in(1).dtype, ctx.in(0).shape);
  return {};
}

// Cast-1 named the target type by string; qforge starts at Cast-6.
QF_REGISTER_OP(
    {.op_type = "Cast", .infer = infer_cast, .reference = Cast_reference, .min_opset = 6});
QF_REGISTER_OP(
    {.op_type = "CastLike", .infer = infer_castlike, .reference = Cast_reference, .min_opset = 15});

}  // namespace
}  // namespace qf::ops
