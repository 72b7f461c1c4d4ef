// Reductions: ReduceSum, ReduceMean, ReduceMax, ReduceMin, ReduceProd, ReduceSumSquare,
// ReduceL1, ReduceL2, ReduceLogSum, ReduceLogSumExp.
//
// `axes` moved from an attribute to an optional input (ReduceSum at opset 13, the others at 18).
// Canonicalisation turns the attribute into that input, so the shape function and kernel only
// know the new form: input 1 absent or empty means "all axes" unless noop_with_empty_axes is set.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "ops/elementwise.h"

namespace qf::ops {
namespace {

enum class Reduce { kSum, kMean, kMax, kMin, kProd, kSumSquare, kL1, kL2, kLogSum, kLogSumExp };

int axes_input_opset(const std::string& op_type) {
  return op_type == "ReduceSum" ? 13 : 18;
}

Status canonicalize_reduce(ir::Node& node, ir::Graph& g) {
  if (node.opset >= axes_input_opset(node.op_type) || !node.attrs.has("axes")) return {};
  const std::vector<int64_t> axes = node.attrs.get_ints("axes");
  ir::Value* c = g.add_constant(
      node.name + "_axes", Tensor::from_vector<int64_t>({static_cast<int64_t>(axes.size())}, axes));
  g.set_input(&node, 1, c);
  node.attrs.erase("axes");
  return {};
}

// Which axes of a rank-`rank` tensor are reduced; an empty result with `noop` set means none.
template <typename Ctx>
Result<std::vector<bool>> reduced_axes(const Ctx& ctx, const std::vector<int64_t>& axes,
                                       int64_t rank) {
  const bool noop = ctx.attrs().get_int("noop_with_empty_axes", 0) != 0;
  std::vector<bool> reduced(static_cast<size_t>(rank), axes.empty() && !noop);
  for (int64_t a : axes) {
    QF_ASSIGN_OR_RETURN(const int axis, ir::normalize_axis(ctx, a, rank));
    reduced[static_cast<size_t>(axis)] = true;
  }
  return reduced;
}

Status infer_reduce(ir::InferContext& ctx) {
  if (!ctx.has_input(0)) return ctx.error("input 0 is required");
  const DType t = ctx.in(0).dtype;
  if (t == DType::kBool && ctx.node.op_type != "ReduceMax" && ctx.node.op_type != "ReduceMin") {
    return ctx.error("not defined on bool tensors");
  }
  const bool keepdims = ctx.attrs().get_int("keepdims", 1) != 0;
  const auto& in_shape = ctx.in(0).shape;
  std::optional<std::vector<int64_t>> axes = std::vector<int64_t>{};
  if (ctx.has_input(1)) axes = ir::known_ints(ctx, 1);
  if (!in_shape) {
    ctx.set_output(0, t, std::nullopt);
    return {};
  }
  if (!axes) {
    // Axes computed at run time: with keepdims the rank is known, but not which dims become 1.
    std::optional<ir::SymShape> out;
    if (keepdims) {
      out = ir::SymShape{};
      for (const ir::Dim& d : *in_shape) {
        out->push_back(d.is_known() && d.value == 1 ? d : ir::Dim{});
      }
    }
    ctx.set_output(0, t, std::move(out));
    return {};
  }
  QF_ASSIGN_OR_RETURN(const std::vector<bool> reduced,
                      reduced_axes(ctx, *axes, static_cast<int64_t>(in_shape->size())));
  ir::SymShape out;
  for (size_t d = 0; d < in_shape->size(); ++d) {
    if (!reduced[d]) {
      out.push_back((*in_shape)[d]);
    } else if (keepdims) {
      out.push_back(ir::Dim::known(1));
    }
  }
  ctx.set_output(0, t, std::move(out));
  return {};
}

template <Reduce K>
constexpr bool is_extremum = K == Reduce::kMax || K == Reduce::kMin;
// Reductions that integer types compute exactly in wrapping 64-bit arithmetic.
template <Reduce K>
constexpr bool is_integer_exact = K == Reduce::kSum || K == Reduce::kMean || K == Reduce::kProd ||
                                  K == Reduce::kSumSquare || K == Reduce::kL1;

// Reduces x (read through `px`) into `out_n` accumulators. `visit(fn)` calls fn(x_index,
// out_index) for every input element.
template <Reduce K, typename T, typename Visit>
void reduce_typed(const T* px, T* py, int64_t out_n, int64_t count, Visit visit) {
  const auto n = static_cast<size_t>(out_n);
  if constexpr (std::is_integral_v<T> && is_extremum<K>) {
    using A = std::conditional_t<std::is_same_v<T, bool>, uint8_t, T>;  // no vector<bool>
    std::vector<A> acc(n, static_cast<A>(K == Reduce::kMax ? std::numeric_limits<T>::lowest()
                                                           : std::numeric_limits<T>::max()));
    visit([&](int64_t i, int64_t o) {
      A& a = acc[static_cast<size_t>(o)];
      const auto v = static_cast<A>(px[i]);
      a = K == Reduce::kMax ? std::max(a, v) : std::min(a, v);
    });
    for (size_t o = 0; o < n; ++o) py[o] = static_cast<T>(acc[o]);
  } else if constexpr (std::is_integral_v<T> && is_integer_exact<K>) {
    // Two's-complement wrap-around in uint64 is exact for every integer type up to 64 bits.
    std::vector<uint64_t> acc(n, K == Reduce::kProd ? 1u : 0u);
    visit([&](int64_t i, int64_t o) {
      uint64_t& a = acc[static_cast<size_t>(o)];
      T v = px[i];
      if constexpr (K == Reduce::kL1 && std::is_signed_v<T>) v = v < 0 ? static_cast<T>(-v) : v;
      const auto u = static_cast<uint64_t>(v);
      if constexpr (K == Reduce::kProd) {
        a *= u;
      } else if constexpr (K == Reduce::kSumSquare) {
        a += u * u;
      } else {
        a += u;
      }
    });
    for (size_t o = 0; o < n; ++o) {
      if constexpr (K == Reduce::kMean) {
        if (count == 0) {
          py[o] = T{0};
        } else if constexpr (std::is_signed_v<T>) {
          py[o] = static_cast<T>(static_cast<int64_t>(acc[o]) / count);
        } else {
          py[o] = static_cast<T>(acc[o] / static_cast<uint64_t>(count));
        }
      } else {
        py[o] = static_cast<T>(acc[o]);
      }
    }
  } else {
    // Floating point (and integer L2/LogSum/LogSumExp) accumulate in double.
    constexpr double kInf = std::numeric_limits<double>::infinity();
    double init = 0.0;
    if constexpr (K == Reduce::kProd) init = 1.0;
    if constexpr (K == Reduce::kMax || K == Reduce::kLogSumExp) init = -kInf;
    if constexpr (K == Reduce::kMin) init = kInf;
    std::vector<double> acc(n, init);
    visit([&](int64_t i, int64_t o) {
      double& a = acc[static_cast<size_t>(o)];
      const double v = to_double(px[i]);
      if constexpr (K == Reduce::kMax || K == Reduce::kLogSumExp) {
        a = (std::isnan(a) || a >= v) ? a : v;  // NaN propagates, as in numpy's max
      } else if constexpr (K == Reduce::kMin) {
        a = (std::isnan(a) || a <= v) ? a : v;
      } else if constexpr (K == Reduce::kProd) {
        a *= v;
      } else if constexpr (K == Reduce::kSumSquare || K == Reduce::kL2) {
        a += v * v;
      } else if constexpr (K == Reduce::kL1) {
        a += std::fabs(v);
      } else {
        a += v;
      }
    });
    if constexpr (K == Reduce::kLogSumExp) {
      // Second pass: sum exp(x - max) so that large inputs do not overflow.
      std::vector<double> sum(n, 0.0);
      visit([&](int64_t i, int64_t o) {
        sum[static_cast<size_t>(o)] += std::exp(to_double(px[i]) - acc[static_cast<size_t>(o)]);
      });
      for (size_t o = 0; o < n; ++o) {
        if (!std::isinf(acc[o])) acc[o] += std::log(sum[o]);
      }
    }
    for (size_t o = 0; o < n; ++o) {
      double r = acc[o];
      if constexpr (K == Reduce::kMean) r /= static_cast<double>(count);
      if constexpr (K == Reduce::kL2) r = std::sqrt(r);
      if constexpr (K == Reduce::kLogSum) r = std::log(r);
      if constexpr (std::is_integral_v<T>) {
        py[o] = saturating_cast<T>(r);
      } else {
        py[o] = from_double<T>(r);
      }
    }
  }
}

template <Reduce K>
Status reduce_reference(ir::KernelContext& ctx) {
  const Tensor& x = ctx.in(0);
  Tensor& y = ctx.out(0);
  const std::vector<int64_t> axes =
      ctx.has_input(1) ? ctx.in(1).to_int64_vector() : std::vector<int64_t>{};
  QF_ASSIGN_OR_RETURN(const std::vector<bool> reduced, reduced_axes(ctx, axes, x.rank()));
  // The output with reduced dims kept as 1: reading it with broadcast strides maps each input
  // element to its output element.
  Shape kept = x.shape();
  int64_t count = 1;
  for (size_t d = 0; d < kept.size(); ++d) {
    if (reduced[d]) {
      count *= kept[d];
      kept[d] = 1;
    }
  }
  if (shape_numel(kept) != y.numel()) return internal_error("{}: output size", ctx.node.label());
  auto visit = [&](auto&& fn) {
    for_each_broadcast(x.shape(), kept, x.shape(),
                       [&](int64_t i, int64_t, int64_t o) { fn(i, o); });
  };
  bool supported = true;
  const bool known = visit_dtype(x.dtype(), [&]<typename T>() {
    if constexpr (std::is_same_v<T, bool> && !is_extremum<K>) {
      supported = false;
    } else {
      reduce_typed<K, T>(x.data<T>(), y.data<T>(), y.numel(), count, visit);
    }
  });
  if (!known || !supported) {
    return ctx.unsupported_here("element type {} is not supported", dtype_tag(x.dtype()));
  }
  return {};
}

#define QF_REDUCE_OP(NAME, KIND)                               \
  QF_REGISTER_OP({.op_type = #NAME,                            \
                  .infer = infer_reduce,                       \
                  .reference = reduce_reference<Reduce::KIND>, \
                  .canonicalize = canonicalize_reduce,         \
                  .min_opset = 1});

QF_REDUCE_OP(ReduceSum, kSum)
QF_REDUCE_OP(ReduceMean, kMean)
QF_REDUCE_OP(ReduceMax, kMax)
QF_REDUCE_OP(ReduceMin, kMin)
QF_REDUCE_OP(ReduceProd, kProd)
QF_REDUCE_OP(ReduceSumSquare, kSumSquare)
QF_REDUCE_OP(ReduceL1, kL1)
QF_REDUCE_OP(ReduceL2, kL2)
QF_REDUCE_OP(ReduceLogSum, kLogSum)
QF_REDUCE_OP(ReduceLogSumExp, kLogSumExp)

#undef QF_REDUCE_OP

}  // namespace
}  // namespace qf::ops
