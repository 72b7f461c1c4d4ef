// ConvTranspose: the gradient of Conv with respect to its input, N-d, with groups, strides,
// dilations, pads, output_padding, output_shape and auto_pad. The reference kernel is one GEMM
// (W^T * X) per image and group, followed by col2im, which scatters the columns into the output.
#include <algorithm>

#include "ops/elementwise.h"
#include "ops/nn_common.h"

namespace qf::ops {
namespace {

struct TransposeAttrs {
  WindowAttrs window;
  std::vector<int64_t> output_padding;
  std::vector<int64_t> output_shape;  // spatial dims only; empty when not given
};

Result<TransposeAttrs> read_transpose_attrs(const ir::Node& node, size_t spatial,
                                            const std::vector<int64_t>& kernel_from_weights) {
  TransposeAttrs t;
  QF_ASSIGN_OR_RETURN(t.window, read_window_attrs(node, spatial, kernel_from_weights));
  t.output_padding = node.attrs.get_ints("output_padding", std::vector<int64_t>(spatial, 0));
  if (t.output_padding.size() != spatial) {
    return invalid_input("{}: attribute 'output_padding' has {} values, expected {}", node.label(),
                         t.output_padding.size(), spatial);
  }
  for (size_t d = 0; d < spatial; ++d) {
    const int64_t op = t.output_padding[d];
    if (op < 0 || op >= std::max(t.window.strides[d], t.window.dilations[d])) {
      return invalid_input(
          "{}: output_padding {} must be >= 0 and below its dim's stride or dilation", node.label(),
          op);
    }
  }
  t.output_shape = node.attrs.get_ints("output_shape");
  // Some exporters write the full output shape (N, C, spatial...): keep the spatial part.
  if (t.output_shape.size() == spatial + 2) {
    t.output_shape.erase(t.output_shape.begin(), t.output_shape.begin() + 2);
  }
  if (!t.output_shape.empty() && t.output_shape.size() != spatial) {
    return invalid_input("{}: attribute 'output_shape' has {} values, expected {}", node.label(),
                         t.output_shape.size(), spatial);
  }
  for (int64_t d : t.output_shape) {
    if (d < 1) return invalid_input("{}: output_shape has a dim of {}", node.label(), d);
  }
  return t;
}

// Output extent of spatial dim d and the padding it implies, for input extent `in`.
Result<WindowDim> transpose_dim(const ir::Node& node, const TransposeAttrs& t, size_t d,
                                int64_t in) {
  const WindowAttrs& a = t.window;
  const size_t n = a.strides.size();
  const int64_t s = a.strides[d];
  const int64_t extent = (a.kernel[d] - 1) * a.dilations[d] + 1;
  const int64_t full = s * (in - 1) + t.output_padding[d] + extent;  // output before any padding
  WindowDim r;
  const bool same = a.auto_pad == AutoPad::kSameUpper || a.auto_pad == AutoPad::kSameLower;
  if (!t.output_shape.empty() || same) {
    r.out = t.output_shape.empty() ? in * s : t.output_shape[d];
    // A negative total (output_shape beyond what the strides reach) pads the end implicitly.
    // As the ONNX spec words it: SAME_UPPER puts the odd pixel of padding at the end, every
    // other mode (SAME_LOWER, or NOTSET with output_shape) at the beginning.
    const int64_t total = full - r.out;
    const int64_t split = std::max<int64_t>(total, 0);
    r.pad_begin = a.auto_pad == AutoPad::kSameUpper ? split / 2 : split - split / 2;
    r.pad_end = total - r.pad_begin;
    return r;
  }
  if (a.auto_pad == AutoPad::kNotSet) {
    r.pad_begin = a.pads[d];
    r.pad_end = a.pads[d + n];
  }
  r.out = full - r.pad_begin - r.pad_end;
  if (r.out <= 0) {
    return invalid_input("{}: pads {} + {} leave no output in spatial dim {} (size {})",
                         node.label(), r.pad_begin, r.pad_end, d, full);
  }
  return r;
}

Status infer_conv_transpose(ir::InferContext& ctx) {
  if (!ctx.has_input(0) || !ctx.has_input(1)) return ctx.error("inputs X and W are required");
  QF_RETURN_IF_ERROR(require_float(ctx, 0));
  const DType dtype = ctx.in(0).dtype;
  const std::optional<ir::SymShape>& xs = ctx.in(0).shape;
  const std::optional<ir::SymShape>& ws = ctx.in(1).shape;
  if (!xs && !ws) {
    ctx.set_output(0, dtype, std::nullopt);
    return {};
  }
  const size_t rank = xs ? xs->size() : ws->size();
  if (rank < 3) return ctx.error("X must have rank >= 3 (N, C, spatial dims), got {}", rank);
  if (xs && ws && xs->size() != ws->size()) {
    return ctx.error("X has rank {} but W has rank {}", xs->size(), ws->size());
  }
  const int64_t group = ctx.attrs().get_int("group", 1);
  if (group < 1) return ctx.error("group must be positive, got {}", group);
  ir::SymShape out(rank);
  if (xs) out[0] = (*xs)[0];
  if (ws) {
    const ir::Dim& c = (*ws)[0];
    const ir::Dim& mg = (*ws)[1];
    if (mg.is_known()) out[1] = ir::Dim::known(mg.value * group);
    if (xs && (*xs)[1].is_known() && c.is_known() && (*xs)[1].value != c.value) {
      return ctx.error("X has {} channels but W has {} input channels", (*xs)[1].value, c.value);
    }
    if (c.is_known() && c.value % group != 0) {
      return ctx.error("W has {} input channels, which group {} does not divide", c.value, group);
    }
  }
  if (ctx.has_input(2) && ctx.in(2).shape) {
    const ir::SymShape& bs = *ctx.in(2).shape;
    if (bs.size() != 1 || (bs[0].is_known() && out[1].is_known() && bs[0].value != out[1].value)) {
      return ctx.error("bias B has shape {}, expected [{}]", ir::sym_shape_str(bs),
                       out[1].is_known() ? std::to_string(out[1].value) : "M");
    }
  }
  QF_ASSIGN_OR_RETURN(TransposeAttrs t,
                      read_transpose_attrs(ctx.node, rank - 2, known_dims_from(ws, 2)));
  for (size_t d = 0; d + 2 < rank; ++d) {
    if (!t.output_shape.empty()) {
      out[d + 2] = ir::Dim::known(t.output_shape[d]);
    }
    if (xs && (*xs)[d + 2].is_known() && t.window.kernel.size() == rank - 2) {
      QF_ASSIGN_OR_RETURN(WindowDim w, transpose_dim(ctx.node, t, d, (*xs)[d + 2].value));
      out[d + 2] = ir::Dim::known(w.out);
    }
  }
  ctx.set_output(0, dtype, std::move(out));
  return {};
}

template <typename T>
void conv_transpose_typed(ir::KernelContext& ctx, const WindowGeometry& g, int64_t group) {
  const Tensor& x = ctx.in(0);
  const Tensor& w = ctx.in(1);
  Tensor& y = ctx.out(0);
  const int64_t batch = x.dim(0), channels = x.dim(1), out_channels = y.dim(1);
  const int64_t cg = channels / group, mg = out_channels / group;
  const int64_t kernel_size = shape_numel(g.kernel);
  const int64_t in_size = shape_numel(g.in), out_size = shape_numel(g.out);
  const int64_t rows = mg * kernel_size;  // columns per input position, per group
  const int64_t in_row = g.in.back(), stride = g.strides.back();
  const int64_t in_rows = in_row == 0 ? 0 : in_size / in_row;
  std::vector<T> col(static_cast<size_t>(rows * in_size));
  const T* bias = ctx.has_input(2) ? ctx.in(2).data<T>() : nullptr;
  for (int64_t n = 0; n < batch; ++n) {
    for (int64_t grp = 0; grp < group; ++grp) {
      // col = W_g^T * X_g, where W_g is the group's cg x (mg * K) slice of W.
      std::fill(col.begin(), col.end(), T(0));
      const T* wg = w.data<T>() + grp * cg * rows;
      const T* xg = x.data<T>() + (n * channels + grp * cg) * in_size;
      gemm_accumulate<T>(rows, in_size, cg, wg, 1, rows, xg, in_size, col.data(), in_size);

      T* yg = y.data<T>() + (n * out_channels + grp * mg) * out_size;
      for (int64_t m = 0; m < mg; ++m) {
        std::fill(yg + m * out_size, yg + (m + 1) * out_size, bias ? bias[grp * mg + m] : T(0));
      }
      std::vector<int64_t> kidx(g.kernel.size(), 0);
      int64_t k = 0;
      do {
        for_each_window_row(g.in, g.out, kidx, g, 0, in_rows,
                            [&](int64_t row, int64_t offset, int64_t lo, int64_t hi, int64_t last) {
                              if (offset < 0) return;
                              for (int64_t m = 0; m < mg; ++m) {
                                const T* src =
                                    col.data() + (m * kernel_size + k) * in_size + row * in_row;
                                T* dst = yg + m * out_size + offset + last;
                                for (int64_t p = lo; p < hi; ++p) dst[p * stride] += src[p];
                              }
                            });
        ++k;
      } while (next_index(kidx, g.kernel));
    }
  }
}

Status conv_transpose_reference(ir::KernelContext& ctx) {
  const DType dtype = ctx.in(0).dtype();
  if (is_half(dtype)) return run_half_as_f32(ctx, conv_transpose_reference);
  if (ctx.in(1).dtype() != dtype || (ctx.has_input(2) && ctx.in(2).dtype() != dtype)) {
    return ctx.error("X, W and B must have the same element type");
  }
  const Tensor& x = ctx.in(0);
  const Tensor& w = ctx.in(1);
  const Shape kernel(w.shape().begin() + 2, w.shape().end());
  QF_ASSIGN_OR_RETURN(TransposeAttrs t, read_transpose_attrs(ctx.node, kernel.size(), kernel));
  WindowGeometry g{Shape(x.shape().begin() + 2, x.shape().end()),
                   Shape(ctx.out(0).shape().begin() + 2, ctx.out(0).shape().end()),
                   kernel,
                   t.window.strides,
                   t.window.dilations,
                   {},
                   {}};
  for (size_t d = 0; d < kernel.size(); ++d) {
    QF_ASSIGN_OR_RETURN(WindowDim wd, transpose_dim(ctx.node, t, d, g.in[d]));
    g.pad_begin.push_back(wd.pad_begin);
    g.pad_end.push_back(wd.pad_end);
  }
  const int64_t group = ctx.attrs().get_int("group", 1);
  if (dtype == DType::kF32) {
    conv_transpose_typed<float>(ctx, g, group);
  } else if (dtype == DType::kF64) {
    conv_transpose_typed<double>(ctx, g, group);
  } else {
    return ctx.unsupported_here("element type {} is not supported", dtype_tag(dtype));
  }
  return {};
}

// Every input element meets (M / group) * prod(kernel) weights: numel(X) * prod(W dims 1..).
std::optional<int64_t> conv_transpose_macs(const ir::Node& node) {
  if (!node.has_input(0) || !node.has_input(1)) return std::nullopt;
  const auto in = known_numel(node.inputs[0]);
  const auto w = known_dims_from(node.inputs[1]->shape, 1);
  if (!in || w.empty()) return std::nullopt;
  return *in * shape_numel(w);
}

QF_REGISTER_OP({.op_type = "ConvTranspose",
                .infer = infer_conv_transpose,
                .reference = conv_transpose_reference,
                .macs = conv_transpose_macs,
                .min_opset = 1});

}  // namespace
}  // namespace qf::ops
