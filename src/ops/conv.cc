// Conv: N-d convolution (1-D, 2-D, 3-D ...) with groups, dilations, strides, pads and auto_pad.
// The reference kernel is im2col followed by one GEMM per image and group, so that its inner
// loop runs over contiguous rows of the output.
#include <algorithm>

#include "ops/elementwise.h"
#include "ops/nn_common.h"

namespace qf::ops {
namespace {

Status infer_conv(ir::InferContext& ctx) {
  if (!ctx.has_input(0) || !ctx.has_input(1)) return ctx.error("inputs X and W are required");
  QF_RETURN_IF_ERROR(require_float(ctx, 0));
  const DType dtype = ctx.in(0).dtype;
  if (dtype != DType::kUndefined && ctx.in(1).dtype != DType::kUndefined &&
      ctx.in(1).dtype != dtype) {
    return ctx.error("W has element type {} but X has {}", dtype_tag(ctx.in(1).dtype),
                     dtype_tag(dtype));
  }
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
    const ir::Dim& m = (*ws)[0];
    const ir::Dim& cw = (*ws)[1];
    out[1] = m;
    if (m.is_known() && m.value % group != 0) {
      return ctx.error("W has {} output channels, which group {} does not divide", m.value, group);
    }
    if (xs && (*xs)[1].is_known() && cw.is_known() && (*xs)[1].value != cw.value * group) {
      return ctx.error("X has {} channels but W expects {} ({} per group x {} groups)",
                       (*xs)[1].value, cw.value * group, cw.value, group);
    }
    if (ctx.has_input(2) && ctx.in(2).shape) {
      const ir::SymShape& bs = *ctx.in(2).shape;
      if (bs.size() != 1 || (bs[0].is_known() && m.is_known() && bs[0].value != m.value)) {
        return ctx.error("bias B has shape {}, expected [{}]", ir::sym_shape_str(bs),
                         m.is_known() ? std::to_string(m.value) : "M");
      }
    }
  }
  QF_ASSIGN_OR_RETURN(WindowAttrs a, read_window_attrs(ctx.node, rank - 2, known_dims_from(ws, 2)));
  if (xs) {
    QF_ASSIGN_OR_RETURN(ir::SymShape spatial,
                        window_output_dims(ctx.node, a, ir::SymShape(xs->begin() + 2, xs->end())));
    std::copy(spatial.begin(), spatial.end(), out.begin() + 2);
  }
  ctx.set_output(0, dtype, std::move(out));
  return {};
}

// Unfolds output rows [row_begin, row_end) (a row spans the last spatial dim) of `channels`
// planes of x into col, a (channels * K) x cols matrix where cols counts the output positions of
// those rows: row c * K + k holds, for each of them, the input value under kernel position k
// (0 in the padding).
template <typename T>
void im2col(const T* x, int64_t channels, const WindowGeometry& g, int64_t row_begin,
            int64_t row_end, T* col) {
  const int64_t kernel_size = shape_numel(g.kernel);
  const int64_t in_size = shape_numel(g.in);
  const int64_t row_len = g.out.back();
  const int64_t cols = (row_end - row_begin) * row_len;
  const int64_t stride = g.strides.back();
  std::vector<int64_t> kidx(g.kernel.size(), 0);
  int64_t k = 0;
  do {
    for_each_window_row(g.out, g.in, kidx, g, row_begin, row_end,
                        [&](int64_t row, int64_t offset, int64_t lo, int64_t hi, int64_t last) {
                          for (int64_t c = 0; c < channels; ++c) {
                            T* dst =
                                col + (c * kernel_size + k) * cols + (row - row_begin) * row_len;
                            if (offset < 0) {
                              std::fill(dst, dst + row_len, T(0));
                              continue;
                            }
                            const T* src = x + c * in_size + offset + last;
                            std::fill(dst, dst + lo, T(0));
                            for (int64_t p = lo; p < hi; ++p) dst[p] = src[p * stride];
                            std::fill(dst + hi, dst + row_len, T(0));
                          }
                        });
    ++k;
  } while (next_index(kidx, g.kernel));
}

// Upper bound of im2col's buffer: large images are unfolded a band of output rows at a time.
constexpr int64_t kColumnBufferBytes = int64_t{32} << 20;

template <typename T>
void conv_typed(ir::KernelContext& ctx, const WindowGeometry& g, int64_t group) {
  const Tensor& x = ctx.in(0);
  const Tensor& w = ctx.in(1);
  Tensor& y = ctx.out(0);
  const int64_t batch = x.dim(0), channels = x.dim(1), out_channels = w.dim(0);
  const int64_t cg = channels / group, mg = out_channels / group;
  const int64_t out_size = shape_numel(g.out), in_size = shape_numel(g.in);
  const int64_t depth = cg * shape_numel(g.kernel);  // the GEMM's inner dimension
  const int64_t row_len = g.out.back();
  const int64_t rows = row_len == 0 ? 0 : out_size / row_len;

  // A 1x1 kernel with unit strides and no padding reads X as it is: no im2col copy.
  bool pointwise = g.out == g.in;
  for (size_t d = 0; d < g.in.size(); ++d) {
    pointwise = pointwise && g.kernel[d] == 1 && g.strides[d] == 1 && g.pad_begin[d] == 0;
  }
  const int64_t row_bytes = std::max<int64_t>(1, depth * row_len * static_cast<int64_t>(sizeof(T)));
  const int64_t band =
      std::clamp<int64_t>(kColumnBufferBytes / row_bytes, 1, std::max<int64_t>(rows, 1));
  std::vector<T> col(pointwise ? 0 : static_cast<size_t>(depth * band * row_len));
  const T* bias = ctx.has_input(2) ? ctx.in(2).data<T>() : nullptr;
  for (int64_t n = 0; n < batch; ++n) {
    for (int64_t grp = 0; grp < group; ++grp) {
      const T* xg = x.data<T>() + (n * channels + grp * cg) * in_size;
      const T* wg = w.data<T>() + grp * mg * depth;
      T* yg = y.data<T>() + (n * out_channels + grp * mg) * out_size;
      for (int64_t m = 0; m < mg; ++m) {
        std::fill(yg + m * out_size, yg + (m + 1) * out_size, bias ? bias[grp * mg + m] : T(0));
      }
      if (pointwise) {
        gemm_accumulate<T>(mg, out_size, depth, wg, depth, 1, xg, out_size, yg, out_size);
        continue;
      }
      for (int64_t r0 = 0; r0 < rows; r0 += band) {
        const int64_t r1 = std::min(rows, r0 + band);
        const int64_t cols = (r1 - r0) * row_len;
        im2col(xg, cg, g, r0, r1, col.data());
        gemm_accumulate<T>(mg, cols, depth, wg, depth, 1, col.data(), cols, yg + r0 * row_len,
                           out_size);
      }
    }
  }
}

Status conv_reference(ir::KernelContext& ctx) {
  const DType dtype = ctx.in(0).dtype();
  if (is_half(dtype)) return run_half_as_f32(ctx, conv_reference);
  if (ctx.in(1).dtype() != dtype || (ctx.has_input(2) && ctx.in(2).dtype() != dtype)) {
    return ctx.error("X, W and B must have the same element type");
  }
  const Tensor& x = ctx.in(0);
  const Tensor& w = ctx.in(1);
  const Shape kernel(w.shape().begin() + 2, w.shape().end());
  QF_ASSIGN_OR_RETURN(WindowAttrs a, read_window_attrs(ctx.node, kernel.size(), kernel));
  QF_ASSIGN_OR_RETURN(WindowGeometry g,
                      window_geometry(ctx.node, a, Shape(x.shape().begin() + 2, x.shape().end())));
  const int64_t group = ctx.attrs().get_int("group", 1);
  if (dtype == DType::kF32) {
    conv_typed<float>(ctx, g, group);
  } else if (dtype == DType::kF64) {
    conv_typed<double>(ctx, g, group);
  } else {
    return ctx.unsupported_here("element type {} is not supported", dtype_tag(dtype));
  }
  return {};
}

// N * M * prod(output spatial) * (C / group) * prod(kernel) = numel(Y) * prod(W dims 1..).
std::optional<int64_t> conv_macs(const ir::Node& node) {
  if (!node.has_input(1) || !node.has_output(0)) return std::nullopt;
  const auto out = known_numel(node.outputs[0]);
  const auto w = known_dims_from(node.inputs[1]->shape, 1);
  if (!out || w.empty()) return std::nullopt;
  return *out * shape_numel(w);
}

QF_REGISTER_OP({.op_type = "Conv",
                .infer = infer_conv,
                .reference = conv_reference,
                .macs = conv_macs,
                .min_opset = 1});

}  // namespace
}  // namespace qf::ops
