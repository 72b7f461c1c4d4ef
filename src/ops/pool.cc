// Pooling over N-d spatial dims: MaxPool (with the optional Indices output), AveragePool,
// GlobalMaxPool and GlobalAveragePool.
#include <algorithm>
#include <limits>

#include "ops/elementwise.h"
#include "ops/nn_common.h"

namespace qf::ops {
namespace {

bool is_max_pool(const ir::Node& node) {
  return node.op_type == "MaxPool";
}

Status check_pool_type(const ir::InferContext& ctx) {
  const DType t = ctx.in(0).dtype;
  // MaxPool also takes 8-bit integers (ONNX's test_maxpool_2d_uint8); averages are float only.
  if (is_max_pool(ctx.node) && (t == DType::kI8 || t == DType::kU8)) return {};
  return require_float(ctx, 0);
}

Status infer_pool(ir::InferContext& ctx) {
  if (!ctx.has_input(0)) return ctx.error("input X is required");
  QF_RETURN_IF_ERROR(check_pool_type(ctx));
  const DType dtype = ctx.in(0).dtype;
  const std::optional<ir::SymShape>& xs = ctx.in(0).shape;
  if (is_max_pool(ctx.node)) {
    const int64_t order = ctx.attrs().get_int("storage_order", 0);
    if (order != 0 && order != 1) return ctx.error("storage_order must be 0 or 1, got {}", order);
  }
  if (!ctx.attrs().has("kernel_shape")) return ctx.error("attribute kernel_shape is required");
  std::optional<ir::SymShape> out;
  if (xs) {
    if (xs->size() < 3) {
      return ctx.error("X must have rank >= 3 (N, C, spatial dims), got {}", xs->size());
    }
    QF_ASSIGN_OR_RETURN(WindowAttrs a, read_window_attrs(ctx.node, xs->size() - 2, {}));
    QF_ASSIGN_OR_RETURN(ir::SymShape spatial,
                        window_output_dims(ctx.node, a, ir::SymShape(xs->begin() + 2, xs->end())));
    out = ir::SymShape{(*xs)[0], (*xs)[1]};
    out->insert(out->end(), spatial.begin(), spatial.end());
  }
  ctx.set_output(0, dtype, out);
  if (is_max_pool(ctx.node)) ctx.set_output(1, DType::kI64, out);
  return {};
}

// The input positions under every window of one (n, c) plane, in CSR form: window o reads the
// plane offsets taps[begin[o] .. begin[o + 1]) and covers `padded[o]` positions of the padded
// input (what count_include_pad divides by). Planes share it, so it is computed once.
struct PoolWindows {
  std::vector<int64_t> taps;
  std::vector<int64_t> begin;
  std::vector<int64_t> padded;
};

PoolWindows plan_windows(const WindowGeometry& g) {
  const size_t n = g.in.size();
  const std::vector<int64_t> in_strides = ir::strides_of(g.in);
  // Offsets of the kernel's taps from the window's first position, for windows fully inside.
  std::vector<int64_t> interior;
  std::vector<int64_t> kidx(n, 0);
  do {
    int64_t off = 0;
    for (size_t d = 0; d < n; ++d) off += kidx[d] * g.dilations[d] * in_strides[d];
    interior.push_back(off);
  } while (next_index(kidx, g.kernel));

  PoolWindows w;
  const int64_t out_size = shape_numel(g.out);
  w.begin.reserve(static_cast<size_t>(out_size) + 1);
  w.padded.reserve(static_cast<size_t>(out_size));
  std::vector<int64_t> o(n, 0), start(n);
  for (int64_t i = 0; i < out_size; ++i) {
    w.begin.push_back(static_cast<int64_t>(w.taps.size()));
    int64_t base = 0;
    bool inside = true;
    for (size_t d = 0; d < n; ++d) {
      start[d] = o[d] * g.strides[d] - g.pad_begin[d];
      base += start[d] * in_strides[d];
      inside = inside && start[d] >= 0 && start[d] + (g.kernel[d] - 1) * g.dilations[d] < g.in[d];
    }
    if (inside) {
      for (int64_t off : interior) w.taps.push_back(base + off);
      w.padded.push_back(static_cast<int64_t>(interior.size()));
    } else {
      int64_t padded = 0;
      std::fill(kidx.begin(), kidx.end(), 0);
      do {
        bool valid = true, in_padded = true;
        int64_t off = 0;
        for (size_t d = 0; d < n; ++d) {
          const int64_t p = start[d] + kidx[d] * g.dilations[d];
          valid = valid && p >= 0 && p < g.in[d];
          in_padded = in_padded && p >= -g.pad_begin[d] && p < g.in[d] + g.pad_end[d];
          off += p * in_strides[d];
        }
        if (valid) w.taps.push_back(off);
        if (in_padded) ++padded;
      } while (next_index(kidx, g.kernel));
      w.padded.push_back(padded);
    }
    next_index(o, g.out);
  }
  w.begin.push_back(static_cast<int64_t>(w.taps.size()));
  return w;
}

// Flat index of a plane offset in column-major order of the spatial dims (storage_order = 1).
int64_t column_major(int64_t offset, const Shape& dims) {
  std::vector<int64_t> coord(dims.size());
  for (size_t d = dims.size(); d-- > 0;) {
    coord[d] = offset % dims[d];
    offset /= dims[d];
  }
  int64_t index = 0;
  for (size_t d = dims.size(); d-- > 0;) index = index * dims[d] + coord[d];
  return index;
}

template <typename T>
void max_pool_typed(ir::KernelContext& ctx, const WindowGeometry& g, const PoolWindows& w) {
  const Tensor& x = ctx.in(0);
  const int64_t planes = x.dim(0) * x.dim(1);
  const int64_t in_size = shape_numel(g.in), out_size = shape_numel(g.out);
  const bool want_indices = ctx.node.has_output(1) && ctx.num_outputs() > 1;
  const bool column = ctx.attrs().get_int("storage_order", 0) == 1;
  int64_t* indices = want_indices ? ctx.out(1).data<int64_t>() : nullptr;
  for (int64_t pl = 0; pl < planes; ++pl) {
    const T* src = x.data<T>() + pl * in_size;
    T* dst = ctx.out(0).data<T>() + pl * out_size;
    for (int64_t o = 0; o < out_size; ++o) {
      // A window wholly inside the padding has no input: it yields the type's lowest value.
      T best = std::numeric_limits<T>::lowest();
      int64_t arg = -1;
      for (int64_t t = w.begin[o]; t < w.begin[o + 1]; ++t) {
        const T v = src[w.taps[t]];
        if (arg < 0 || v > best) {
          best = v;
          arg = w.taps[t];
        }
      }
      dst[o] = best;
      if (indices) {
        const int64_t local = arg < 0 ? 0 : (column ? column_major(arg, g.in) : arg);
        indices[pl * out_size + o] = pl * in_size + local;
      }
    }
  }
}

template <typename T>
void average_pool_typed(ir::KernelContext& ctx, const WindowGeometry& g, const PoolWindows& w) {
  const Tensor& x = ctx.in(0);
  const int64_t planes = x.dim(0) * x.dim(1);
  const int64_t in_size = shape_numel(g.in), out_size = shape_numel(g.out);
  const bool include_pad = ctx.attrs().get_int("count_include_pad", 0) != 0;
  for (int64_t pl = 0; pl < planes; ++pl) {
    const T* src = x.data<T>() + pl * in_size;
    T* dst = ctx.out(0).data<T>() + pl * out_size;
    for (int64_t o = 0; o < out_size; ++o) {
      double sum = 0;
      for (int64_t t = w.begin[o]; t < w.begin[o + 1]; ++t) sum += src[w.taps[t]];
      const int64_t count = include_pad ? w.padded[o] : w.begin[o + 1] - w.begin[o];
      dst[o] = static_cast<T>(count > 0 ? sum / static_cast<double>(count) : 0.0);
    }
  }
}

Status pool_reference(ir::KernelContext& ctx) {
  const Tensor& x = ctx.in(0);
  if (is_half(x.dtype())) return run_half_as_f32(ctx, pool_reference);
  const Shape spatial(x.shape().begin() + 2, x.shape().end());
  QF_ASSIGN_OR_RETURN(WindowAttrs a, read_window_attrs(ctx.node, spatial.size(), {}));
  QF_ASSIGN_OR_RETURN(WindowGeometry g, window_geometry(ctx.node, a, spatial));
  const PoolWindows w = plan_windows(g);
  if (is_max_pool(ctx.node)) {
    switch (x.dtype()) {
      case DType::kF32:
        max_pool_typed<float>(ctx, g, w);
        return {};
      case DType::kF64:
        max_pool_typed<double>(ctx, g, w);
        return {};
      case DType::kI8:
        max_pool_typed<int8_t>(ctx, g, w);
        return {};
      case DType::kU8:
        max_pool_typed<uint8_t>(ctx, g, w);
        return {};
      default:
        break;
    }
  } else {
    switch (x.dtype()) {
      case DType::kF32:
        average_pool_typed<float>(ctx, g, w);
        return {};
      case DType::kF64:
        average_pool_typed<double>(ctx, g, w);
        return {};
      default:
        break;
    }
  }
  return ctx.unsupported_here("element type {} is not supported", dtype_tag(x.dtype()));
}

Status infer_global_pool(ir::InferContext& ctx) {
  if (!ctx.has_input(0)) return ctx.error("input X is required");
  QF_RETURN_IF_ERROR(require_float(ctx, 0));
  std::optional<ir::SymShape> out = ctx.in(0).shape;
  if (out) {
    if (out->size() < 2) return ctx.error("X must have rank >= 2 (N, C, ...), got {}", out->size());
    std::fill(out->begin() + 2, out->end(), ir::Dim::known(1));
  }
  ctx.set_output(0, ctx.in(0).dtype, out);
  return {};
}

template <typename T>
void global_pool_typed(ir::KernelContext& ctx, bool max) {
  const Tensor& x = ctx.in(0);
  const int64_t planes = x.rank() >= 2 ? x.dim(0) * x.dim(1) : 1;
  const int64_t size = planes == 0 ? 0 : x.numel() / planes;
  for (int64_t pl = 0; pl < planes; ++pl) {
    const T* src = x.data<T>() + pl * size;
    T* dst = ctx.out(0).data<T>() + pl;
    if (max) {
      *dst = size > 0 ? *std::max_element(src, src + size) : std::numeric_limits<T>::lowest();
    } else {
      double sum = 0;
      for (int64_t i = 0; i < size; ++i) sum += src[i];
      *dst = static_cast<T>(size > 0 ? sum / static_cast<double>(size) : 0.0);
    }
  }
}

Status global_pool_reference(ir::KernelContext& ctx) {
  const DType t = ctx.in(0).dtype();
  const bool max = ctx.node.op_type == "GlobalMaxPool";
  if (is_half(t)) return run_half_as_f32(ctx, global_pool_reference);
  if (t == DType::kF32) {
    global_pool_typed<float>(ctx, max);
  } else if (t == DType::kF64) {
    global_pool_typed<double>(ctx, max);
  } else {
    return ctx.unsupported_here("element type {} is not supported", dtype_tag(t));
  }
  return {};
}

QF_REGISTER_OP(
    {.op_type = "MaxPool", .infer = infer_pool, .reference = pool_reference, .min_opset = 1});
QF_REGISTER_OP(
    {.op_type = "AveragePool", .infer = infer_pool, .reference = pool_reference, .min_opset = 1});
QF_REGISTER_OP({.op_type = "GlobalMaxPool",
                .infer = infer_global_pool,
                .reference = global_pool_reference,
                .min_opset = 1});
QF_REGISTER_OP({.op_type = "GlobalAveragePool",
                .infer = infer_global_pool,
                .reference = global_pool_reference,
                .min_opset = 1});

}  // namespace
}  // namespace qf::ops
