// QuantizeLinear and DequantizeLinear, opsets 10 to 21.
//
//   QuantizeLinear:   y = saturate(round_half_to_even(x / scale) + zero_point)
//   DequantizeLinear: y = (x - zero_point) * scale
//
// The scale (and zero point, same shape) is per tensor (a scalar or one element), per axis (1-D
// along `axis`, opset 13+) or blocked (opset 21 `block_size`: same rank as x, axis dim divided
// into blocks). Arithmetic is done in float like ONNX Runtime (double for f64 data), so results
// on the rounding boundaries match it.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <type_traits>

#include "ops/elementwise.h"

namespace qf::ops {
namespace {

bool is_quantized_type(DType t) {
  return t == DType::kI8 || t == DType::kU8 || t == DType::kI16 || t == DType::kU16;
}

// How a scale tensor maps onto x, seen as (outer, n, inner) around `axis`: which scale element
// the x element at flat index i uses.
struct ScaleLayout {
  enum Kind { kPerTensor, kPerAxis, kBlocked } kind = kPerTensor;
  int64_t n = 1, inner = 1, block_size = 0, blocks = 1;

  int64_t index(int64_t i) const {
    switch (kind) {
      case kPerTensor:
        return 0;
      case kPerAxis:
        return (i / inner) % n;
      case kBlocked: {
        const int64_t o = i / (n * inner);
        const int64_t a = (i / inner) % n;
        return (o * blocks + a / block_size) * inner + i % inner;
      }
    }
    return 0;
  }
};

// Checks scale (input 1) and zero point (input 2) shapes against x and returns the layout.
// `label` names the node; all shapes are concrete.
Result<ScaleLayout> scale_layout(const std::string& label, const ir::Attributes& attrs,
                                 const Shape& x, const Shape& scale, const Shape* zero_point) {
  if (zero_point && *zero_point != scale) {
    return invalid_input("{}: zero point shape {} differs from scale shape {}", label,
                         shape_str(*zero_point), shape_str(scale));
  }
  ScaleLayout l;
  const int64_t block_size = attrs.get_int("block_size", 0);
  if (block_size < 0) return invalid_input("{}: block_size must be >= 0", label);
  if (scale.empty() || (block_size == 0 && shape_numel(scale) == 1 && scale.size() == 1)) {
    return l;  // per tensor
  }
  const auto rank = static_cast<int64_t>(x.size());
  int64_t axis = attrs.get_int("axis", 1);
  if (axis < 0) axis += rank;
  if (axis < 0 || axis >= rank) {
    return invalid_input("{}: axis {} is out of range for input of rank {}", label,
                         attrs.get_int("axis", 1), rank);
  }
  const auto ax = static_cast<size_t>(axis);
  l.n = x[ax];
  for (size_t d = ax + 1; d < x.size(); ++d) l.inner *= x[d];
  if (block_size == 0) {
    if (scale.size() != 1 || scale[0] != x[ax]) {
      return invalid_input("{}: per-axis scale must be 1-D of size {} (axis {}), got {}", label,
                           x[ax], axis, shape_str(scale));
    }
    l.kind = ScaleLayout::kPerAxis;
    return l;
  }
  // Blocked: scale has x's shape except along axis, where it counts blocks.
  Shape want = x;
  want[ax] = (x[ax] + block_size - 1) / block_size;
  if (scale != want) {
    return invalid_input("{}: blocked scale must have shape {} (block_size {}), got {}", label,
                         shape_str(want), block_size, shape_str(scale));
  }
  l.kind = ScaleLayout::kBlocked;
  l.block_size = block_size;
  l.blocks = want[ax];
  return l;
}

// Runs `scale_layout` on the inputs' shapes when all are known (always at run time).
Status check_layout(const ir::InferContext& ctx) {
  const auto concrete = [&](size_t i) -> std::optional<Shape> {
    if (!ctx.has_input(i) || !ctx.in(i).shape) return std::nullopt;
    return ir::to_concrete(*ctx.in(i).shape);
  };
  const auto x = concrete(0);
  const auto scale = concrete(1);
  const auto zp = concrete(2);
  if (!x || !scale || (ctx.has_input(2) && !zp)) return {};
  return scale_layout(ctx.node.label(), ctx.attrs(), *x, *scale, zp ? &*zp : nullptr).status();
}

// ---- QuantizeLinear ----

Status infer_quantize(ir::InferContext& ctx) {
  if (!ctx.has_input(0) || !ctx.has_input(1)) return ctx.error("expects inputs x and y_scale");
  DType out = DType::kU8;  // ONNX's default when there is no zero point
  if (ctx.has_input(2)) {
    out = ctx.in(2).dtype;
  } else if (ctx.attrs().has("output_dtype")) {
    out = dtype_from_onnx(static_cast<int32_t>(ctx.attrs().get_int("output_dtype", 0)));
  }
  if (out != DType::kUndefined && !is_quantized_type(out)) {
    return unsupported("{}: quantizing to {} is not supported (int8, uint8, int16, uint16 only)",
                       ctx.node.label(), dtype_tag(out));
  }
  const DType x = ctx.in(0).dtype;
  if (x != DType::kUndefined && !dtype_is_float(x) && x != DType::kI32) {
    return ctx.error("input must be floating point or int32, got {}", dtype_tag(x));
  }
  QF_RETURN_IF_ERROR(check_layout(ctx));
  ctx.set_output(0, out, ctx.in(0).shape);
  return {};
}

double round_half_to_even(double v) {
  const double fl = std::floor(v);
  const double diff = v - fl;
  if (diff < 0.5) return fl;
  if (diff > 0.5) return fl + 1.0;
  return std::fmod(fl, 2.0) == 0.0 ? fl : fl + 1.0;
}

template <typename X, typename Q>
void quantize_typed(const Tensor& x, const Tensor& scale, const Tensor* zero_point,
                    const ScaleLayout& layout, Tensor& y) {
  // f64 data computes in double; everything else in float, as ONNX Runtime does.
  using C = std::conditional_t<std::is_same_v<X, double>, double, float>;
  const X* px = x.data<X>();
  Q* py = y.data<Q>();
  const double lo = std::numeric_limits<Q>::lowest();
  const double hi = std::numeric_limits<Q>::max();
  for (int64_t i = 0; i < x.numel(); ++i) {
    const int64_t s = layout.index(i);
    const auto sc = static_cast<C>(scale.element_as_double(s));
    const double zp = zero_point ? static_cast<double>(zero_point->data<Q>()[s]) : 0.0;
    const C q = static_cast<C>(to_double(px[i])) / sc;
    double v = round_half_to_even(static_cast<double>(q)) + zp;
    if (std::isnan(v)) v = zp;  // undefined in ONNX; NaN maps to the zero point (real 0)
    py[i] = static_cast<Q>(std::clamp(v, lo, hi));
  }
}

Status QuantizeLinear_reference(ir::KernelContext& ctx) {
  const Tensor& x = ctx.in(0);
  const Tensor& scale = ctx.in(1);
  const Tensor* zp = ctx.has_input(2) ? &ctx.in(2) : nullptr;
  Tensor& y = ctx.out(0);
  QF_ASSIGN_OR_RETURN(const ScaleLayout layout,
                      scale_layout(ctx.node.label(), ctx.attrs(), x.shape(), scale.shape(),
                                   zp ? &zp->shape() : nullptr));
  bool supported = false;
  visit_dtype(x.dtype(), [&]<typename X>() {
    if constexpr (!std::is_integral_v<X> || std::is_same_v<X, int32_t>) {
      visit_dtype(y.dtype(), [&]<typename Q>() {
        if constexpr (std::is_integral_v<Q> && !std::is_same_v<Q, bool> && sizeof(Q) <= 2) {
          supported = true;
          quantize_typed<X, Q>(x, scale, zp, layout, y);
        }
      });
    }
  });
  if (!supported) {
    return ctx.unsupported_here("quantizing {} to {} is not supported", dtype_tag(x.dtype()),
                                dtype_tag(y.dtype()));
  }
  return {};
}

// ---- DequantizeLinear ----

Status infer_dequantize(ir::InferContext& ctx) {
  if (!ctx.has_input(0) || !ctx.has_input(1)) return ctx.error("expects inputs x and x_scale");
  const DType x = ctx.in(0).dtype;
  if (x != DType::kUndefined && !is_quantized_type(x) && x != DType::kI32) {
    return unsupported("{}: dequantizing {} is not supported", ctx.node.label(), dtype_tag(x));
  }
  if (ctx.has_input(2) && x != DType::kUndefined && ctx.in(2).dtype != DType::kUndefined &&
      ctx.in(2).dtype != x) {
    return ctx.error("zero point type {} differs from input type {}", dtype_tag(ctx.in(2).dtype),
                     dtype_tag(x));
  }
  const DType scale = ctx.in(1).dtype;
  if (scale != DType::kUndefined && !dtype_is_float(scale)) {
    return ctx.error("scale must be floating point, got {}", dtype_tag(scale));
  }
  QF_RETURN_IF_ERROR(check_layout(ctx));
  // Before opset 19 the scale is always float32; since then the output takes the scale's type.
  ctx.set_output(0, scale == DType::kUndefined ? DType::kF32 : scale, ctx.in(0).shape);
  return {};
}

template <typename Q, typename Y>
void dequantize_typed(const Tensor& x, const Tensor& scale, const Tensor* zero_point,
                      const ScaleLayout& layout, Tensor& y) {
  using C = std::conditional_t<std::is_same_v<Y, double>, double, float>;
  const Q* px = x.data<Q>();
  Y* py = y.data<Y>();
  for (int64_t i = 0; i < x.numel(); ++i) {
    const int64_t s = layout.index(i);
    const int64_t zp = zero_point ? static_cast<int64_t>(zero_point->data<Q>()[s]) : 0;
    const auto sc = static_cast<C>(scale.element_as_double(s));
    const C v = static_cast<C>(static_cast<int64_t>(px[i]) - zp) * sc;
    py[i] = from_double<Y>(static_cast<double>(v));
  }
}

Status DequantizeLinear_reference(ir::KernelContext& ctx) {
  const Tensor& x = ctx.in(0);
  const Tensor& scale = ctx.in(1);
  const Tensor* zp = ctx.has_input(2) ? &ctx.in(2) : nullptr;
  Tensor& y = ctx.out(0);
  if (zp && zp->dtype() != x.dtype()) return ctx.error("zero point type differs from input type");
  QF_ASSIGN_OR_RETURN(const ScaleLayout layout,
                      scale_layout(ctx.node.label(), ctx.attrs(), x.shape(), scale.shape(),
                                   zp ? &zp->shape() : nullptr));
  bool supported = false;
  visit_dtype(x.dtype(), [&]<typename Q>() {
    if constexpr (std::is_integral_v<Q> && !std::is_same_v<Q, bool> && sizeof(Q) <= 4) {
      visit_dtype(y.dtype(), [&]<typename Y>() {
        if constexpr (!std::is_integral_v<Y>) {
          supported = true;
          dequantize_typed<Q, Y>(x, scale, zp, layout, y);
        }
      });
    }
  });
  if (!supported) {
    return ctx.unsupported_here("dequantizing {} to {} is not supported", dtype_tag(x.dtype()),
                                dtype_tag(y.dtype()));
  }
  return {};
}

QF_REGISTER_OP({.op_type = "QuantizeLinear",
                .infer = infer_quantize,
                .reference = QuantizeLinear_reference,
                .min_opset = 10});
QF_REGISTER_OP({.op_type = "DequantizeLinear",
                .infer = infer_dequantize,
                .reference = DequantizeLinear_reference,
                .min_opset = 10});

}  // namespace
}  // namespace qf::ops
