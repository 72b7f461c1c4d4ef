// Clip. Before opset 11 the bounds are float attributes `min`/`max`; canonicalisation turns them
// into the optional inputs 1 and 2 of Clip-11+, so one shape function and kernel serve all.
#include <cmath>
#include <limits>
#include <type_traits>

#include "ops/elementwise.h"

namespace qf::ops {
namespace {

Status canonicalize_clip(ir::Node& node, ir::Graph& g) {
  if (node.opset >= 11) return {};
  // The element type may not be known before shape inference; f32 bounds are converted to the
  // input's type by the kernel, so they serve every type.
  const DType t = node.has_input(0) && dtype_is_float(node.inputs[0]->dtype) ? node.inputs[0]->dtype
                                                                             : DType::kF32;
  const char* names[] = {"min", "max"};
  for (size_t k = 0; k < 2; ++k) {
    if (!node.attrs.has(names[k])) continue;
    const double bound = node.attrs.get_float(names[k], 0.0f);
    Tensor value(t, {});
    visit_dtype(t, [&]<typename T>() { value.data<T>()[0] = from_double<T>(bound); });
    ir::Value* c = g.add_constant(node.name + "_" + names[k], std::move(value));
    g.set_input(&node, 1 + k, c);
    node.attrs.erase(names[k]);
  }
  return {};
}

Status infer_clip(ir::InferContext& ctx) {
  if (!ctx.has_input(0)) return ctx.error("input 0 is required");
  if (ctx.in(0).dtype == DType::kBool) return ctx.error("Clip is not defined on bool tensors");
  for (size_t i = 1; i < 3; ++i) {
    if (!ctx.has_input(i) || !ctx.in(i).shape) continue;
    const auto n = ir::to_concrete(*ctx.in(i).shape);
    if (n && shape_numel(*n) != 1) {
      return ctx.error("{} must be a scalar, got shape {}", i == 1 ? "min" : "max",
                       ir::sym_shape_str(ctx.in(i).shape));
    }
  }
  ctx.propagate(0, 0);
  return {};
}

Status Clip_reference(ir::KernelContext& ctx) {
  const Tensor& x = ctx.in(0);
  Tensor& y = ctx.out(0);
  for (size_t i = 1; i < 3; ++i) {
    if (ctx.has_input(i) && ctx.in(i).numel() != 1) {
      return ctx.error("{} must be a scalar", i == 1 ? "min" : "max");
    }
  }
  const bool known = visit_dtype(x.dtype(), [&]<typename T>() {
    using C = compute_t<T>;
    // Absent bounds are the type's extremes (infinities for floats).
    C lo = std::numeric_limits<C>::has_infinity ? -std::numeric_limits<C>::infinity()
                                                : std::numeric_limits<C>::lowest();
    C hi = std::numeric_limits<C>::has_infinity ? std::numeric_limits<C>::infinity()
                                                : std::numeric_limits<C>::max();
    // Bounds normally have x's type (Clip-11+); the attribute-derived ones are float, which
    // `element_as_double` reads as well.
    auto bound = [&](size_t i, C fallback) -> C {
      if (!ctx.has_input(i)) return fallback;
      if (ctx.in(i).dtype() == x.dtype()) return to_compute(ctx.in(i).data<T>()[0]);
      const double v = ctx.in(i).element_as_double(0);
      if constexpr (std::is_integral_v<C>) {
        return saturating_cast<C>(v);
      } else {
        return static_cast<C>(v);
      }
    };
    lo = bound(1, lo);
    hi = bound(2, hi);
    const T* px = x.data<T>();
    T* py = y.data<T>();
    for (int64_t i = 0; i < x.numel(); ++i) {
      // max-then-min like numpy.clip: min > max gives max everywhere, and NaN stays NaN
      // (comparisons with NaN are false, so the NaN operand is kept).
      C v = to_compute(px[i]);
      v = v < lo ? lo : v;
      v = hi < v ? hi : v;
      py[i] = from_compute<T>(v);
    }
  });
  if (!known) return ctx.error("input has no element type");
  return {};
}

QF_REGISTER_OP({.op_type = "Clip",
                .infer = infer_clip,
                .reference = Clip_reference,
                .canonicalize = canonicalize_clip,
                .min_opset = 6});

}  // namespace
}  // namespace qf::ops
