// Normalization layers: BatchNormalization (inference: running statistics), InstanceNormalization
// and LayerNormalization. Statistics are computed in double so that the reference stays an
// accurate oracle for the float kernels measured against it.
#include <cmath>
#include <cstring>

#include "ops/elementwise.h"
#include "ops/nn_common.h"

namespace qf::ops {
namespace {

// Shape [C] expected of a per-channel parameter; checked where both sides are known.
Status check_channel_param(const ir::InferContext& ctx, size_t input, const char* name,
                           const ir::Dim& channels) {
  if (!ctx.has_input(input) || !ctx.in(input).shape) return {};
  const ir::SymShape& s = *ctx.in(input).shape;
  if (s.size() != 1 || (s[0].is_known() && channels.is_known() && s[0].value != channels.value)) {
    return ctx.error("{} has shape {}, expected [{}] (one value per channel)", name,
                     ir::sym_shape_str(s),
                     channels.is_known() ? std::to_string(channels.value) : "C");
  }
  return {};
}

std::vector<double> as_doubles(const Tensor& t) {
  std::vector<double> v(static_cast<size_t>(t.numel()));
  for (int64_t i = 0; i < t.numel(); ++i) v[static_cast<size_t>(i)] = t.element_as_double(i);
  return v;
}

// Copies `from` into `to` (same shape), converting between floating-point types if needed.
void copy_into(const Tensor& from, Tensor& to) {
  const Tensor src = from.dtype() == to.dtype() ? from : convert_float(from, to.dtype());
  if (to.nbytes() > 0) std::memcpy(to.raw(), src.raw(), to.nbytes());
}

// ---------------------------------------------------------------------------------------------
// BatchNormalization

Status infer_batch_norm(ir::InferContext& ctx) {
  for (size_t i = 0; i < 5; ++i) {
    if (!ctx.has_input(i)) return ctx.error("inputs X, scale, B, mean and var are all required");
  }
  QF_RETURN_IF_ERROR(require_float(ctx, 0));
  if (ctx.attrs().get_int("training_mode", 0) != 0) {
    return unsupported("{}: training_mode=1 is not supported (inference only)", ctx.node.label());
  }
  const std::optional<ir::SymShape>& xs = ctx.in(0).shape;
  if (xs && xs->size() < 2) {
    return ctx.error("X must have rank >= 2 (N, C, ...), got {}", xs->size());
  }
  // Opsets 7-8 with spatial=0 take parameters per activation ([C, D1, ...]); checked at run time.
  if (ctx.attrs().get_int("spatial", 1) != 0) {
    const ir::Dim channels = xs ? (*xs)[1] : ir::Dim{};
    const char* names[] = {"", "scale", "B", "mean", "var"};
    for (size_t i = 1; i < 5; ++i)
      QF_RETURN_IF_ERROR(check_channel_param(ctx, i, names[i], channels));
  }
  ctx.propagate(0, 0);
  // Training outputs (running or saved mean and var) may be declared; inference passes the
  // running statistics through unchanged. Odd outputs are means, even ones variances.
  for (size_t i = 1; i < ctx.outputs.size(); ++i) ctx.propagate(i, i % 2 == 1 ? 3 : 4);
  return {};
}

template <typename T>
void batch_norm_typed(const Tensor& x, Tensor& y, const std::vector<double>& a,
                      const std::vector<double>& b, int64_t inner) {
  const int64_t channels = x.dim(1);
  const int64_t per_sample = channels * inner;
  const bool per_channel = static_cast<int64_t>(a.size()) == channels;
  const T* src = x.data<T>();
  T* dst = y.data<T>();
  for (int64_t n = 0; n < x.dim(0); ++n) {
    for (int64_t c = 0; c < channels; ++c) {
      const int64_t base = n * per_sample + c * inner;
      for (int64_t i = 0; i < inner; ++i) {
        const size_t p = static_cast<size_t>(per_channel ? c : c * inner + i);
        dst[base + i] = static_cast<T>(static_cast<double>(src[base + i]) * a[p] + b[p]);
      }
    }
  }
}

Status batch_norm_reference(ir::KernelContext& ctx) {
  const Tensor& x = ctx.in(0);
  if (is_half(x.dtype())) return run_half_as_f32(ctx, batch_norm_reference);
  const int64_t channels = x.dim(1);
  const int64_t inner = shape_numel(Shape(x.shape().begin() + 2, x.shape().end()));
  const std::vector<double> scale = as_doubles(ctx.in(1)), bias = as_doubles(ctx.in(2));
  const std::vector<double> mean = as_doubles(ctx.in(3)), var = as_doubles(ctx.in(4));
  const int64_t count = static_cast<int64_t>(scale.size());
  if (count != channels && count != channels * inner) {
    return ctx.error("parameters have {} values, expected {} (per channel) or {} (per activation)",
                     count, channels, channels * inner);
  }
  for (const auto* p : {&bias, &mean, &var}) {
    if (static_cast<int64_t>(p->size()) != count) {
      return ctx.error("scale, B, mean and var must have the same number of values");
    }
  }
  // y = (x - mean) / sqrt(var + eps) * scale + B, folded into y = x * a + b.
  const double eps = ctx.attrs().get_float("epsilon", 1e-5f);
  std::vector<double> a(scale.size()), b(scale.size());
  for (size_t i = 0; i < a.size(); ++i) {
    a[i] = scale[i] / std::sqrt(var[i] + eps);
    b[i] = bias[i] - mean[i] * a[i];
  }
  if (x.dtype() == DType::kF32) {
    batch_norm_typed<float>(x, ctx.out(0), a, b, inner);
  } else if (x.dtype() == DType::kF64) {
    batch_norm_typed<double>(x, ctx.out(0), a, b, inner);
  } else {
    return ctx.unsupported_here("element type {} is not supported", dtype_tag(x.dtype()));
  }
  for (size_t i = 1; i < ctx.num_outputs(); ++i) {
    if (ctx.out(i).defined()) copy_into(ctx.in(i % 2 == 1 ? 3 : 4), ctx.out(i));
  }
  return {};
}

// ---------------------------------------------------------------------------------------------
// InstanceNormalization

Status infer_instance_norm(ir::InferContext& ctx) {
  for (size_t i = 0; i < 3; ++i) {
    if (!ctx.has_input(i)) return ctx.error("inputs input, scale and B are all required");
  }
  QF_RETURN_IF_ERROR(require_float(ctx, 0));
  const std::optional<ir::SymShape>& xs = ctx.in(0).shape;
  if (xs && xs->size() < 3) {
    return ctx.error("input must have rank >= 3 (N, C, spatial dims), got {}", xs->size());
  }
  const ir::Dim channels = xs ? (*xs)[1] : ir::Dim{};
  QF_RETURN_IF_ERROR(check_channel_param(ctx, 1, "scale", channels));
  QF_RETURN_IF_ERROR(check_channel_param(ctx, 2, "B", channels));
  ctx.propagate(0, 0);
  return {};
}

// Normalizes each row of `inner` values to zero mean and unit variance, then applies the
// per-element affine `scale`/`bias` (indexed by `param(row, i)`). Returns the statistics of each
// row through `on_row(row, mean, inv_std)`.
template <typename T, typename Param, typename OnRow>
void normalize_rows(const T* src, T* dst, int64_t rows, int64_t inner, double eps, Param&& param,
                    OnRow&& on_row) {
  for (int64_t r = 0; r < rows; ++r) {
    const T* x = src + r * inner;
    T* y = dst + r * inner;
    double sum = 0;
    for (int64_t i = 0; i < inner; ++i) sum += static_cast<double>(x[i]);
    const double mean = inner > 0 ? sum / static_cast<double>(inner) : 0.0;
    double sq = 0;
    for (int64_t i = 0; i < inner; ++i) {
      const double d = static_cast<double>(x[i]) - mean;
      sq += d * d;
    }
    const double var = inner > 0 ? sq / static_cast<double>(inner) : 0.0;
    const double inv_std = 1.0 / std::sqrt(var + eps);
    for (int64_t i = 0; i < inner; ++i) {
      const auto [scale, bias] = param(r, i);
      y[i] = static_cast<T>((static_cast<double>(x[i]) - mean) * inv_std * scale + bias);
    }
    on_row(r, mean, inv_std);
  }
}

Status instance_norm_reference(ir::KernelContext& ctx) {
  const Tensor& x = ctx.in(0);
  if (is_half(x.dtype())) return run_half_as_f32(ctx, instance_norm_reference);
  const int64_t channels = x.dim(1);
  const int64_t rows = x.dim(0) * channels;
  const int64_t inner = rows == 0 ? 0 : x.numel() / rows;
  const std::vector<double> scale = as_doubles(ctx.in(1)), bias = as_doubles(ctx.in(2));
  const double eps = ctx.attrs().get_float("epsilon", 1e-5f);
  auto param = [&](int64_t row, int64_t) {
    const size_t c = static_cast<size_t>(row % channels);
    return std::pair{scale[c], bias[c]};
  };
  auto ignore = [](int64_t, double, double) {};
  if (x.dtype() == DType::kF32) {
    normalize_rows(x.data<float>(), ctx.out(0).data<float>(), rows, inner, eps, param, ignore);
  } else if (x.dtype() == DType::kF64) {
    normalize_rows(x.data<double>(), ctx.out(0).data<double>(), rows, inner, eps, param, ignore);
  } else {
    return ctx.unsupported_here("element type {} is not supported", dtype_tag(x.dtype()));
  }
  return {};
}

// ---------------------------------------------------------------------------------------------
// LayerNormalization

// Type of the Mean and InvStdDev outputs (stash_type, float unless the model says otherwise).
Result<DType> stash_type(const ir::Node& node) {
  const int64_t onnx_type = node.attrs.get_int("stash_type", 1);
  const DType t = dtype_from_onnx(static_cast<int32_t>(onnx_type));
  if (!dtype_is_float(t)) {
    return invalid_input("{}: stash_type {} is not a floating-point type", node.label(), onnx_type);
  }
  return t;
}

Status check_broadcast_to(const ir::InferContext& ctx, size_t input, const char* name,
                          const ir::SymShape& target) {
  if (!ctx.has_input(input) || !ctx.in(input).shape) return {};
  const ir::SymShape& s = *ctx.in(input).shape;
  bool ok = s.size() <= target.size();
  for (size_t i = 0; ok && i < s.size(); ++i) {
    const ir::Dim& t = target[target.size() - s.size() + i];
    ok = !s[i].is_known() || s[i].value == 1 || !t.is_known() || s[i].value == t.value;
  }
  if (!ok) {
    return ctx.error("{} of shape {} cannot be broadcast to the normalized shape {}", name,
                     ir::sym_shape_str(s), ir::sym_shape_str(target));
  }
  return {};
}

Status infer_layer_norm(ir::InferContext& ctx) {
  if (!ctx.has_input(0) || !ctx.has_input(1)) return ctx.error("inputs X and Scale are required");
  QF_RETURN_IF_ERROR(require_float(ctx, 0));
  QF_ASSIGN_OR_RETURN(DType stats_type, stash_type(ctx.node));
  const std::optional<ir::SymShape>& xs = ctx.in(0).shape;
  ctx.propagate(0, 0);
  std::optional<ir::SymShape> stats;
  if (xs) {
    const int64_t rank = static_cast<int64_t>(xs->size());
    QF_ASSIGN_OR_RETURN(int axis, ir::normalize_axis(ctx, ctx.attrs().get_int("axis", -1), rank));
    const ir::SymShape normalized(xs->begin() + axis, xs->end());
    QF_RETURN_IF_ERROR(check_broadcast_to(ctx, 1, "Scale", normalized));
    QF_RETURN_IF_ERROR(check_broadcast_to(ctx, 2, "B", normalized));
    stats = ir::SymShape(xs->begin(), xs->begin() + axis);
    stats->resize(xs->size(), ir::Dim::known(1));
  }
  ctx.set_output(1, stats_type, stats);
  ctx.set_output(2, stats_type, stats);
  return {};
}

// `param` (Scale or B) broadcast to the normalized shape, flattened.
std::vector<double> expand_param(const Tensor* param, const Shape& normalized, double fallback) {
  std::vector<double> out(static_cast<size_t>(shape_numel(normalized)), fallback);
  if (!param) return out;
  for_each_broadcast(param->shape(), param->shape(), normalized,
                     [&](int64_t i, int64_t p, int64_t) {
                       out[static_cast<size_t>(i)] = param->element_as_double(p);
                     });
  return out;
}

template <typename T>
void layer_norm_typed(ir::KernelContext& ctx, int axis) {
  const Tensor& x = ctx.in(0);
  const Shape normalized(x.shape().begin() + axis, x.shape().end());
  const int64_t inner = shape_numel(normalized);
  const int64_t rows = inner == 0 ? 0 : x.numel() / inner;
  const std::vector<double> scale = expand_param(&ctx.in(1), normalized, 1.0);
  const std::vector<double> bias =
      expand_param(ctx.has_input(2) ? &ctx.in(2) : nullptr, normalized, 0.0);
  const double eps = ctx.attrs().get_float("epsilon", 1e-5f);
  Tensor* mean_out = ctx.num_outputs() > 1 && ctx.out(1).defined() ? &ctx.out(1) : nullptr;
  Tensor* inv_out = ctx.num_outputs() > 2 && ctx.out(2).defined() ? &ctx.out(2) : nullptr;
  auto param = [&](int64_t, int64_t i) {
    return std::pair{scale[static_cast<size_t>(i)], bias[static_cast<size_t>(i)]};
  };
  auto on_row = [&](int64_t r, double mean, double inv_std) {
    for (auto [out, v] : {std::pair{mean_out, mean}, std::pair{inv_out, inv_std}}) {
      if (!out) continue;
      visit_dtype(out->dtype(),
                  [&]<typename S>() { out->template data<S>()[r] = from_double<S>(v); });
    }
  };
  normalize_rows(x.data<T>(), ctx.out(0).data<T>(), rows, inner, eps, param, on_row);
}

Status layer_norm_reference(ir::KernelContext& ctx) {
  const Tensor& x = ctx.in(0);
  if (is_half(x.dtype())) return run_half_as_f32(ctx, layer_norm_reference);
  QF_ASSIGN_OR_RETURN(int axis, ir::normalize_axis(ctx, ctx.attrs().get_int("axis", -1), x.rank()));
  if (x.dtype() == DType::kF32) {
    layer_norm_typed<float>(ctx, axis);
  } else if (x.dtype() == DType::kF64) {
    layer_norm_typed<double>(ctx, axis);
  } else {
    return ctx.unsupported_here("element type {} is not supported", dtype_tag(x.dtype()));
  }
  return {};
}

QF_REGISTER_OP({.op_type = "BatchNormalization",
                .infer = infer_batch_norm,
                .reference = batch_norm_reference,
                .min_opset = 1});
QF_REGISTER_OP({.op_type = "InstanceNormalization",
                .infer = infer_instance_norm,
                .reference = instance_norm_reference,
                .min_opset = 1});
QF_REGISTER_OP({.op_type = "LayerNormalization",
                .infer = infer_layer_norm,
                .reference = layer_norm_reference,
                .min_opset = 17});

}  // namespace
}  // namespace qf::ops
