// ArgMax, ArgMin and TopK.
//
// TopK's `k` was an attribute before opset 10 and is input 1 since; canonicalisation turns the
// attribute into that input. NaN counts as larger than every number (numpy's argmax/sort order),
// which also keeps the sort comparator a strict weak ordering.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <type_traits>
#include <utility>

#include "ops/elementwise.h"

namespace qf::ops {
namespace {

// Splits `shape` around `axis` into (outer, n, inner) with n = shape[axis].
struct AxisBlocks {
  int64_t outer = 1, n = 1, inner = 1;
};
AxisBlocks blocks_around(const Shape& shape, int axis) {
  AxisBlocks b;
  for (size_t d = 0; d < shape.size(); ++d) {
    const auto a = static_cast<size_t>(axis);
    if (d < a) {
      b.outer *= shape[d];
    } else if (d == a) {
      b.n = shape[d];
    } else {
      b.inner *= shape[d];
    }
  }
  return b;
}

// a > b with NaN above everything (two NaNs compare equal).
bool greater_nan_high(double a, double b) {
  if (std::isnan(a)) return !std::isnan(b);
  if (std::isnan(b)) return false;
  return a > b;
}

// ---- ArgMax / ArgMin ----

Status infer_arg(ir::InferContext& ctx) {
  if (!ctx.has_input(0)) return ctx.error("input 0 is required");
  if (ctx.in(0).dtype == DType::kBool) return ctx.error("not defined on bool tensors");
  const auto& shape = ctx.in(0).shape;
  if (!shape) {
    ctx.set_output(0, DType::kI64, std::nullopt);
    return {};
  }
  QF_ASSIGN_OR_RETURN(const int axis, ir::normalize_axis(ctx, ctx.attrs().get_int("axis", 0),
                                                         static_cast<int64_t>(shape->size())));
  const bool keepdims = ctx.attrs().get_int("keepdims", 1) != 0;
  ir::SymShape out = *shape;
  if (keepdims) {
    out[static_cast<size_t>(axis)] = ir::Dim::known(1);
  } else {
    out.erase(out.begin() + axis);
  }
  ctx.set_output(0, DType::kI64, std::move(out));
  return {};
}

Status arg_kernel(ir::KernelContext& ctx, bool find_max) {
  const Tensor& x = ctx.in(0);
  QF_ASSIGN_OR_RETURN(const int axis,
                      ir::normalize_axis(ctx, ctx.attrs().get_int("axis", 0), x.rank()));
  const bool last = ctx.attrs().get_int("select_last_index", 0) != 0;
  const AxisBlocks b = blocks_around(x.shape(), axis);
  if (b.n == 0)
    return ctx.error("cannot take the arg{} of an empty axis", find_max ? "max" : "min");
  int64_t* py = ctx.out(0).data<int64_t>();
  const bool known = visit_dtype(x.dtype(), [&]<typename T>() {
    // (better, tie) of v against the best so far. Integers compare natively so that 64-bit
    // values stay exact; for floats NaN wins both searches, as numpy's argmax/argmin return the
    // first NaN.
    auto compare = [&](T v, T best) -> std::pair<bool, bool> {
      if constexpr (std::is_integral_v<T>) {
        return {find_max ? v > best : v < best, v == best};
      } else {
        const double a = to_double(v);
        const double c = to_double(best);
        const bool tie = !greater_nan_high(a, c) && !greater_nan_high(c, a);
        if (std::isnan(a) || std::isnan(c)) return {greater_nan_high(a, c), tie};
        return {find_max ? a > c : a < c, tie};
      }
    };
    const T* px = x.data<T>();
    for (int64_t o = 0; o < b.outer; ++o) {
      for (int64_t i = 0; i < b.inner; ++i) {
        const T* row = px + o * b.n * b.inner + i;
        int64_t best_k = 0;
        for (int64_t k = 1; k < b.n; ++k) {
          const auto [better, tie] = compare(row[k * b.inner], row[best_k * b.inner]);
          if (better || (last && tie)) best_k = k;
        }
        py[o * b.inner + i] = best_k;
      }
    }
  });
  if (!known) return ctx.error("input has no element type");
  return {};
}

Status ArgMax_reference(ir::KernelContext& ctx) {
  return arg_kernel(ctx, true);
}
Status ArgMin_reference(ir::KernelContext& ctx) {
  return arg_kernel(ctx, false);
}

// ---- TopK ----

Status canonicalize_topk(ir::Node& node, ir::Graph& g) {
  if (node.opset >= 10) return {};
  if (!node.attrs.has("k")) return invalid_input("{}: attribute 'k' is required", node.label());
  const int64_t k = node.attrs.get_int("k", 0);
  g.set_input(&node, 1, g.add_constant(node.name + "_k", Tensor::from_vector<int64_t>({1}, {k})));
  node.attrs.erase("k");
  return {};
}

Status infer_topk(ir::InferContext& ctx) {
  if (!ctx.has_input(0) || !ctx.has_input(1)) return ctx.error("expects inputs X and K");
  const DType t = ctx.in(0).dtype;
  if (t == DType::kBool) return ctx.error("not defined on bool tensors");
  const auto& shape = ctx.in(0).shape;
  if (!shape) {
    ctx.set_output(0, t, std::nullopt);
    ctx.set_output(1, DType::kI64, std::nullopt);
    return {};
  }
  QF_ASSIGN_OR_RETURN(const int axis, ir::normalize_axis(ctx, ctx.attrs().get_int("axis", -1),
                                                         static_cast<int64_t>(shape->size())));
  ir::SymShape out = *shape;
  ir::Dim& d = out[static_cast<size_t>(axis)];
  if (auto k = ir::known_ints(ctx, 1)) {
    if (k->size() != 1) return ctx.error("K must hold exactly one value, got {}", k->size());
    const int64_t kv = (*k)[0];
    if (kv < 0 || (d.is_known() && kv > d.value)) {
      return ctx.error("K = {} is out of range for axis {} of size {}", kv, axis,
                       ir::sym_shape_str(ir::SymShape{d}));
    }
    d = ir::Dim::known(kv);
  } else {
    d = ir::Dim{};
  }
  ctx.set_output(0, t, out);
  ctx.set_output(1, DType::kI64, out);
  return {};
}

Status TopK_reference(ir::KernelContext& ctx) {
  const Tensor& x = ctx.in(0);
  QF_ASSIGN_OR_RETURN(const int axis,
                      ir::normalize_axis(ctx, ctx.attrs().get_int("axis", -1), x.rank()));
  const int64_t k = ctx.in(1).to_int64_vector().at(0);
  const bool largest = ctx.attrs().get_int("largest", 1) != 0;
  const AxisBlocks b = blocks_around(x.shape(), axis);
  Tensor& values = ctx.out(0);
  int64_t* indices = ctx.out(1).data<int64_t>();
  const bool known = visit_dtype(x.dtype(), [&]<typename T>() {
    const T* px = x.data<T>();
    T* pv = values.data<T>();
    std::vector<int64_t> order(static_cast<size_t>(b.n));
    for (int64_t o = 0; o < b.outer; ++o) {
      for (int64_t i = 0; i < b.inner; ++i) {
        const T* row = px + o * b.n * b.inner + i;
        auto before = [&](int64_t p, int64_t q) {
          // Native comparison keeps 64-bit integers exact; floats go through the NaN order.
          if constexpr (std::is_integral_v<T>) {
            return largest ? row[p * b.inner] > row[q * b.inner]
                           : row[p * b.inner] < row[q * b.inner];
          } else {
            const double a = to_double(row[p * b.inner]);
            const double c = to_double(row[q * b.inner]);
            return largest ? greater_nan_high(a, c) : greater_nan_high(c, a);
          }
        };
        // Stable: equal values keep the lower index first, as ONNX specifies. sorted=0 allows
        // any order, so sorted output serves both.
        std::iota(order.begin(), order.end(), int64_t{0});
        std::stable_sort(order.begin(), order.end(), before);
        for (int64_t j = 0; j < k; ++j) {
          const int64_t src = order[static_cast<size_t>(j)];
          const int64_t dst = o * k * b.inner + j * b.inner + i;
          pv[dst] = row[src * b.inner];
          indices[dst] = src;
        }
      }
    }
  });
  if (!known) return ctx.error("input has no element type");
  return {};
}

QF_REGISTER_OP(
    {.op_type = "ArgMax", .infer = infer_arg, .reference = ArgMax_reference, .min_opset = 1});
QF_REGISTER_OP(
    {.op_type = "ArgMin", .infer = infer_arg, .reference = ArgMin_reference, .min_opset = 1});
QF_REGISTER_OP({.op_type = "TopK",
                .infer = infer_topk,
                .reference = TopK_reference,
                .canonicalize = canonicalize_topk,
                .min_opset = 1});

}  // namespace
}  // namespace qf::ops
