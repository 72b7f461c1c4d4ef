// Softmax and LogSoftmax.
//
// The semantics changed at opset 13: before, the input is flattened to 2-D at `axis` (default 1)
// and normalised over the whole second dimension; from 13 on, normalisation runs along the single
// axis `axis` (default -1). Both are the same loop over (outer, axis, inner) blocks: only how the
// dims are grouped differs.
#include <algorithm>
#include <cmath>
#include <limits>

#include "ops/elementwise.h"

namespace qf::ops {
namespace {

int64_t default_axis(const ir::Node& node) {
  return node.opset >= 13 ? -1 : 1;
}

Status infer_softmax(ir::InferContext& ctx) {
  if (!ctx.has_input(0)) return ctx.error("input 0 is required");
  QF_RETURN_IF_ERROR(require_float(ctx, 0));
  if (const auto& shape = ctx.in(0).shape) {
    const auto rank = static_cast<int64_t>(shape->size());
    const int64_t axis = ctx.attrs().get_int("axis", default_axis(ctx.node));
    // Opsets before 13 accept axis == rank (everything in the outer group).
    const bool flat = ctx.node.opset < 13;
    if (!(flat && axis == rank)) QF_RETURN_IF_ERROR(ir::normalize_axis(ctx, axis, rank).status());
  }
  ctx.propagate(0, 0);
  return {};
}

// Normalises `n` elements spaced `stride` apart, starting at x/y. Works in double, subtracting
// the maximum first so that large inputs do not overflow exp().
void normalize(const double* x, double* y, int64_t n, int64_t stride, bool log) {
  double max = -std::numeric_limits<double>::infinity();
  for (int64_t k = 0; k < n; ++k) max = std::max(max, x[k * stride]);
  double sum = 0;
  for (int64_t k = 0; k < n; ++k) sum += std::exp(x[k * stride] - max);
  const double log_sum = std::log(sum);
  for (int64_t k = 0; k < n; ++k) {
    const double shifted = x[k * stride] - max;
    y[k * stride] = log ? shifted - log_sum : std::exp(shifted) / sum;
  }
}

Status softmax_kernel(ir::KernelContext& ctx, bool log) {
  const Tensor& x = ctx.in(0);
  Tensor& y = ctx.out(0);
  const Shape& shape = x.shape();
  const auto rank = static_cast<int64_t>(shape.size());
  int64_t axis = ctx.attrs().get_int("axis", default_axis(ctx.node));
  const bool flat = ctx.node.opset < 13;
  if (!(flat && axis == rank)) {
    QF_ASSIGN_OR_RETURN(axis, ir::normalize_axis(ctx, axis, rank));
  }
  // Blocks of (outer, n, inner): n is the normalised group, inner its stride.
  int64_t outer = 1, n = 1, inner = 1;
  for (int64_t d = 0; d < rank; ++d) {
    const int64_t s = shape[static_cast<size_t>(d)];
    if (d < axis) {
      outer *= s;
    } else if (d == axis || flat) {
      n *= s;
    } else {
      inner *= s;
    }
  }

  std::vector<double> in(static_cast<size_t>(x.numel()));
  std::vector<double> out(in.size());
  const bool known = visit_dtype(x.dtype(), [&]<typename T>() {
    const T* px = x.data<T>();
    for (size_t i = 0; i < in.size(); ++i) in[i] = to_double(px[i]);
  });
  if (!known) return ctx.error("input has no element type");
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t i = 0; i < inner; ++i) {
      const int64_t base = o * n * inner + i;
      normalize(in.data() + base, out.data() + base, n, inner, log);
    }
  }
  visit_dtype(y.dtype(), [&]<typename T>() {
    T* py = y.data<T>();
    for (size_t i = 0; i < out.size(); ++i) py[i] = from_double<T>(out[i]);
  });
  return {};
}

Status Softmax_reference(ir::KernelContext& ctx) {
  return softmax_kernel(ctx, false);
}
Status LogSoftmax_reference(ir::KernelContext& ctx) {
  return softmax_kernel(ctx, true);
}

QF_REGISTER_OP(
    {.op_type = "Softmax", .infer = infer_softmax, .reference = Softmax_reference, .min_opset = 1});
QF_REGISTER_OP({.op_type = "LogSoftmax",
                .infer = infer_softmax,
                .reference = LogSoftmax_reference,
                .min_opset = 1});

}  // namespace
}  // namespace qf::ops
