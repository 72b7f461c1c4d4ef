// Broadcasting binary ops: arithmetic (Add, Sub, Mul, Div, Pow, PRelu), comparisons (Equal,
// Greater, Less, GreaterOrEqual, LessOrEqual) and logic (And, Or, Xor).
//
// Integer arithmetic wraps around like the two's-complement hardware every runtime uses (signed
// overflow would be undefined behaviour in C++); integer Div truncates toward zero.
#include <cmath>
#include <cstdint>
#include <optional>
#include <type_traits>

#include "ops/elementwise.h"

namespace qf::ops {
namespace {

Status require_inputs(const ir::InferContext& ctx, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (!ctx.has_input(i)) return ctx.error("expects {} inputs, input {} is missing", n, i);
  }
  return {};
}

// The known element type of two inputs that ONNX requires to match (kUndefined if neither is
// known yet).
Result<DType> common_type(const ir::InferContext& ctx) {
  const DType a = ctx.in(0).dtype;
  const DType b = ctx.in(1).dtype;
  if (a != DType::kUndefined && b != DType::kUndefined && a != b) {
    return ctx.error("inputs have different element types ({} and {})", dtype_tag(a), dtype_tag(b));
  }
  return a != DType::kUndefined ? a : b;
}

Status infer_arithmetic(ir::InferContext& ctx) {
  QF_RETURN_IF_ERROR(require_inputs(ctx, 2));
  QF_ASSIGN_OR_RETURN(const DType t, common_type(ctx));
  if (t == DType::kBool) return ctx.error("arithmetic on bool tensors is not defined");
  QF_ASSIGN_OR_RETURN(auto shape, ir::broadcast_inputs(ctx));
  ctx.set_output(0, t, std::move(shape));
  return {};
}

Status infer_comparison(ir::InferContext& ctx) {
  QF_RETURN_IF_ERROR(require_inputs(ctx, 2));
  QF_RETURN_IF_ERROR(common_type(ctx).status());
  QF_ASSIGN_OR_RETURN(auto shape, ir::broadcast_inputs(ctx));
  ctx.set_output(0, DType::kBool, std::move(shape));
  return {};
}

Status infer_logical(ir::InferContext& ctx) {
  QF_RETURN_IF_ERROR(require_inputs(ctx, 2));
  for (size_t i = 0; i < 2; ++i) {
    const DType t = ctx.in(i).dtype;
    if (t != DType::kUndefined && t != DType::kBool) {
      return ctx.error("input {} must be bool, got {}", i, dtype_tag(t));
    }
  }
  QF_ASSIGN_OR_RETURN(auto shape, ir::broadcast_inputs(ctx));
  ctx.set_output(0, DType::kBool, std::move(shape));
  return {};
}

// Base and exponent may have different types since Pow-12; the result has the base's type.
Status infer_pow(ir::InferContext& ctx) {
  QF_RETURN_IF_ERROR(require_inputs(ctx, 2));
  for (size_t i = 0; i < 2; ++i) {
    if (ctx.in(i).dtype == DType::kBool) return ctx.error("Pow is not defined on bool tensors");
  }
  QF_ASSIGN_OR_RETURN(auto shape, ir::broadcast_inputs(ctx));
  ctx.set_output(0, ctx.in(0).dtype, std::move(shape));
  return {};
}

// PRelu broadcasts the slope to X's shape (one direction only), so the output is X's shape.
Status infer_prelu(ir::InferContext& ctx) {
  QF_RETURN_IF_ERROR(require_inputs(ctx, 2));
  QF_ASSIGN_OR_RETURN(const DType t, common_type(ctx));
  if (t == DType::kBool) return ctx.error("PRelu is not defined on bool tensors");
  const auto& x = ctx.in(0).shape;
  const auto& slope = ctx.in(1).shape;
  if (x && slope) {
    bool ok = slope->size() <= x->size();
    for (size_t i = 0; ok && i < slope->size(); ++i) {
      const ir::Dim& ds = (*slope)[slope->size() - 1 - i];
      const ir::Dim& dx = (*x)[x->size() - 1 - i];
      ok = !ds.is_known() || !dx.is_known() || ds.value == 1 || ds.value == dx.value;
    }
    if (!ok) {
      return ctx.error("slope of shape {} cannot be broadcast to input shape {}",
                       ir::sym_shape_str(slope), ir::sym_shape_str(x));
    }
  }
  ctx.set_output(0, t, x);
  return {};
}

// The shape of `v` when the importer knows it completely.
std::optional<Shape> known_shape(const ir::Value* v) {
  if (!v || !v->shape) return std::nullopt;
  return ir::to_concrete(*v->shape);
}

// Gives constant input `i` of `node` the shape `shape` (same element count) through a new
// constant, leaving other users of the original untouched.
void reshape_constant_input(ir::Node& node, ir::Graph& g, size_t i, Shape shape) {
  const ir::Value* old = node.inputs[i];
  g.set_input(&node, i, g.add_constant(old->name + "_reshaped", old->constant.reshaped(shape)));
}

// Before opset 7, binary ops broadcast only with `broadcast=1`, aligning B's dims with A's from
// `axis` on (default: trailing, which is numpy's rule). Other alignments become numpy
// broadcasting by padding a constant B with trailing 1s.
Status canonicalize_legacy_broadcast(ir::Node& node, ir::Graph& g) {
  if (node.opset >= 7) return {};
  const bool broadcast = node.attrs.get_int("broadcast", 0) != 0;
  const bool has_axis = node.attrs.has("axis");
  const int64_t axis = node.attrs.get_int("axis", 0);
  node.attrs.erase("broadcast");
  node.attrs.erase("axis");
  node.attrs.erase("consumed_inputs");
  if (!broadcast || !has_axis || !node.has_input(0) || !node.has_input(1)) return {};
  const ir::Value* a = node.inputs[0];
  const ir::Value* b = node.inputs[1];
  if (a->shape && b->shape) {
    const auto rank_a = static_cast<int64_t>(a->shape->size());
    const int64_t start = axis < 0 ? axis + rank_a : axis;
    const auto rank_b = static_cast<int64_t>(b->shape->size());
    if (start + rank_b == rank_a) return {};  // already trailing-aligned
    if (b->is_constant() && start >= 0 && start + rank_b < rank_a) {
      Shape shape = b->constant.shape();
      shape.resize(static_cast<size_t>(rank_a - start), 1);
      reshape_constant_input(node, g, 1, shape);
      return {};
    }
  }
  return unsupported(
      "{}: legacy broadcasting with axis={} needs known ranks and a constant "
      "second input",
      node.label(), axis);
}

// PRelu before opset 7 applies a 1-D slope of size C along the channel axis (1).
Status canonicalize_legacy_prelu(ir::Node& node, ir::Graph& g) {
  if (node.opset >= 7 || !node.has_input(0) || !node.has_input(1)) return {};
  node.attrs.erase("consumed_inputs");
  const ir::Value* x = node.inputs[0];
  const ir::Value* slope = node.inputs[1];
  const auto slope_shape = known_shape(slope);
  if (slope_shape && shape_numel(*slope_shape) == 1) return {};  // shared slope broadcasts
  if (x->shape && slope_shape && slope_shape->size() == 1 && slope->is_constant()) {
    if (x->shape->size() <= 2) return {};  // [N, C]: the channel axis is already trailing
    Shape shape(x->shape->size() - 1, 1);
    shape[0] = (*slope_shape)[0];
    reshape_constant_input(node, g, 1, shape);
    return {};
  }
  return unsupported("{}: legacy per-channel PRelu needs a known input rank and a constant slope",
                     node.label());
}

template <typename C>
C wrap_add(C a, C b) {
  if constexpr (std::is_integral_v<C>) {
    return static_cast<C>(static_cast<uint64_t>(a) + static_cast<uint64_t>(b));
  } else {
    return a + b;
  }
}
template <typename C>
C wrap_sub(C a, C b) {
  if constexpr (std::is_integral_v<C>) {
    return static_cast<C>(static_cast<uint64_t>(a) - static_cast<uint64_t>(b));
  } else {
    return a - b;
  }
}
template <typename C>
C wrap_mul(C a, C b) {
  if constexpr (std::is_integral_v<C>) {
    return static_cast<C>(static_cast<uint64_t>(a) * static_cast<uint64_t>(b));
  } else {
    return a * b;
  }
}

// Applies `op(a, b) -> compute_t<T>` over the broadcast inputs, for every non-bool type. `op`
// returns false through `*ok` to report an invalid element (integer division by zero).
template <typename Op>
Status arithmetic_kernel(ir::KernelContext& ctx, Op op) {
  const Tensor& a = ctx.in(0);
  const Tensor& b = ctx.in(1);
  Tensor& y = ctx.out(0);
  bool ok = true;
  const bool known = visit_dtype(a.dtype(), [&]<typename T>() {
    if constexpr (!std::is_same_v<T, bool>) {
      const T* pa = a.data<T>();
      const T* pb = b.data<T>();
      T* py = y.data<T>();
      for_each_broadcast(a.shape(), b.shape(), y.shape(), [&](int64_t i, int64_t ia, int64_t ib) {
        py[i] = from_compute<T>(op(to_compute(pa[ia]), to_compute(pb[ib]), &ok));
      });
    }
  });
  if (!known || a.dtype() == DType::kBool) {
    return ctx.unsupported_here("element type {} is not supported", dtype_tag(a.dtype()));
  }
  if (!ok) return ctx.error("integer division by zero");
  return {};
}

Status Add_reference(ir::KernelContext& ctx) {
  return arithmetic_kernel(ctx, []<typename C>(C a, C b, bool*) { return wrap_add(a, b); });
}
Status Sub_reference(ir::KernelContext& ctx) {
  return arithmetic_kernel(ctx, []<typename C>(C a, C b, bool*) { return wrap_sub(a, b); });
}
Status Mul_reference(ir::KernelContext& ctx) {
  return arithmetic_kernel(ctx, []<typename C>(C a, C b, bool*) { return wrap_mul(a, b); });
}
Status Div_reference(ir::KernelContext& ctx) {
  return arithmetic_kernel(ctx, []<typename C>(C a, C b, bool* ok) -> C {
    if constexpr (std::is_integral_v<C>) {
      if (b == 0) {
        *ok = false;
        return 0;
      }
      // The one overflowing signed quotient: lowest / -1 wraps to lowest.
      if constexpr (std::is_signed_v<C>) {
        if (b == -1) return wrap_sub(C{0}, a);
      }
      return static_cast<C>(a / b);
    } else {
      return a / b;
    }
  });
}

Status PRelu_reference(ir::KernelContext& ctx) {
  return arithmetic_kernel(ctx, []<typename C>(C x, C slope, bool*) -> C {
    if constexpr (std::is_unsigned_v<C>) {
      return x;
    } else {
      return x < C{0} ? wrap_mul(slope, x) : x;
    }
  });
}

// Integer power by squaring, wrapping on overflow. Negative exponents follow 1 / base^-e
// truncated toward zero: only bases 1 and -1 give a non-zero result.
int64_t integer_pow(int64_t base, int64_t exponent) {
  if (exponent < 0) {
    if (base == 1) return 1;
    if (base == -1) return (exponent % 2 == 0) ? 1 : -1;
    return 0;
  }
  uint64_t result = 1;
  uint64_t b = static_cast<uint64_t>(base);
  for (uint64_t e = static_cast<uint64_t>(exponent); e != 0; e >>= 1) {
    if (e & 1u) result *= b;
    b *= b;
  }
  return static_cast<int64_t>(result);
}

Status Pow_reference(ir::KernelContext& ctx) {
  const Tensor& base = ctx.in(0);
  const Tensor& exponent = ctx.in(1);
  Tensor& y = ctx.out(0);
  bool supported = true;
  const bool known = visit_dtype(base.dtype(), [&]<typename T>() {
    visit_dtype(exponent.dtype(), [&]<typename U>() {
      if constexpr (std::is_same_v<T, bool> || std::is_same_v<U, bool>) {
        supported = false;
      } else {
        const T* pb = base.data<T>();
        const U* pe = exponent.data<U>();
        T* py = y.data<T>();
        for_each_broadcast(
            base.shape(), exponent.shape(), y.shape(), [&](int64_t i, int64_t ib, int64_t ie) {
              if constexpr (std::is_integral_v<T> && std::is_integral_v<U>) {
                py[i] = static_cast<T>(
                    integer_pow(static_cast<int64_t>(pb[ib]), static_cast<int64_t>(pe[ie])));
              } else if constexpr (std::is_integral_v<T>) {
                py[i] = saturating_cast<T>(std::pow(to_double(pb[ib]), to_double(pe[ie])));
              } else {
                py[i] = from_double<T>(std::pow(to_double(pb[ib]), to_double(pe[ie])));
              }
            });
      }
    });
  });
  if (!known || !supported) {
    return ctx.unsupported_here("Pow of {} by {} is not supported", dtype_tag(base.dtype()),
                                dtype_tag(exponent.dtype()));
  }
  return {};
}

// Applies `pred(a, b) -> bool` over the broadcast inputs.
template <typename Pred>
Status predicate_kernel(ir::KernelContext& ctx, Pred pred) {
  const Tensor& a = ctx.in(0);
  const Tensor& b = ctx.in(1);
  Tensor& y = ctx.out(0);
  bool* py = y.data<bool>();
  const bool known = visit_dtype(a.dtype(), [&]<typename T>() {
    const T* pa = a.data<T>();
    const T* pb = b.data<T>();
    for_each_broadcast(a.shape(), b.shape(), y.shape(), [&](int64_t i, int64_t ia, int64_t ib) {
      py[i] = pred(to_compute(pa[ia]), to_compute(pb[ib]));
    });
  });
  if (!known) return ctx.error("input has no element type");
  return {};
}

#define QF_PREDICATE_OP(NAME, INFER, MIN_OPSET, EXPR)                          \
  Status NAME##_reference(ir::KernelContext& ctx) {                            \
    return predicate_kernel(ctx, [](auto a, auto b) -> bool { return EXPR; }); \
  }                                                                            \
  QF_REGISTER_OP({.op_type = #NAME,                                            \
                  .infer = INFER,                                              \
                  .reference = NAME##_reference,                               \
                  .canonicalize = canonicalize_legacy_broadcast,               \
                  .min_opset = MIN_OPSET});

QF_PREDICATE_OP(Equal, infer_comparison, 1, a == b)
QF_PREDICATE_OP(Greater, infer_comparison, 1, a > b)
QF_PREDICATE_OP(Less, infer_comparison, 1, a < b)
QF_PREDICATE_OP(GreaterOrEqual, infer_comparison, 12, a >= b)
QF_PREDICATE_OP(LessOrEqual, infer_comparison, 12, a <= b)
QF_PREDICATE_OP(And, infer_logical, 1, a&& b)
QF_PREDICATE_OP(Or, infer_logical, 1, a || b)
QF_PREDICATE_OP(Xor, infer_logical, 1, a != b)

#undef QF_PREDICATE_OP

#define QF_ARITHMETIC_OP(NAME, INFER, CANONICALIZE) \
  QF_REGISTER_OP({.op_type = #NAME,                 \
                  .infer = INFER,                   \
                  .reference = NAME##_reference,    \
                  .canonicalize = CANONICALIZE,     \
                  .min_opset = 1});

QF_ARITHMETIC_OP(Add, infer_arithmetic, canonicalize_legacy_broadcast)
QF_ARITHMETIC_OP(Sub, infer_arithmetic, canonicalize_legacy_broadcast)
QF_ARITHMETIC_OP(Mul, infer_arithmetic, canonicalize_legacy_broadcast)
QF_ARITHMETIC_OP(Div, infer_arithmetic, canonicalize_legacy_broadcast)
QF_ARITHMETIC_OP(Pow, infer_pow, canonicalize_legacy_broadcast)
QF_ARITHMETIC_OP(PRelu, infer_prelu, canonicalize_legacy_prelu)

#undef QF_ARITHMETIC_OP

}  // namespace
}  // namespace qf::ops
