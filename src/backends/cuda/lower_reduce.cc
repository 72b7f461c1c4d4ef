// Reductions over windows and rows on the backend's own kernels: 2-D pooling (NHWC),
// (Log)Softmax and LayerNormalization.
#include <fmt/format.h>

#include <algorithm>

#include "backends/cuda/lowering.h"
#include "ops/nn_common.h"

namespace qf::cuda {

Result<bool> Builder::lower_pool(const ir::Node& node, std::string* why) {
  const ir::Value* x = node.inputs[0];
  const Shape& xs = shape(x);
  if (!float_value(x) || xs.size() != 4 || node.outputs.size() > 1) {
    *why = "only 2-D f32 pooling without indices runs on the device";
    return false;
  }
  const Shape& ys = shape(node.outputs[0]);
  Pool2d p;
  p.n = xs[0];
  p.c = xs[1];
  p.h = xs[2];
  p.w = xs[3];
  p.oh = ys[2];
  p.ow = ys[3];
  p.max = node.op_type == "MaxPool" || node.op_type == "GlobalMaxPool";
  if (node.op_type == "GlobalAveragePool" || node.op_type == "GlobalMaxPool") {
    p.kh = xs[2];
    p.kw = xs[3];
  } else {
    if (node.attrs.get_int("storage_order", 0) != 0) {
      *why = "storage_order";
      return false;
    }
    QF_ASSIGN_OR_RETURN(ops::WindowAttrs wa, ops::read_window_attrs(node, 2, {}));
    QF_ASSIGN_OR_RETURN(ops::WindowGeometry g, ops::window_geometry(node, wa, {xs[2], xs[3]}));
    if (g.out != Shape{ys[2], ys[3]}) {
      return internal_error("{}: pooling geometry disagrees with shape inference", node.label());
    }
    p.kh = g.kernel[0];
    p.kw = g.kernel[1];
    p.sh = g.strides[0];
    p.sw = g.strides[1];
    p.dh = g.dilations[0];
    p.dw = g.dilations[1];
    p.pad_top = g.pad_begin[0];
    p.pad_left = g.pad_begin[1];
    p.pad_bottom = g.pad_end[0];
    p.pad_right = g.pad_end[1];
    p.count_include_pad = node.attrs.get_int("count_include_pad", 0) != 0;
  }
  // INT8 engines pool a tensor stored in 8 bits in 8 bits, on its grid (max pooling is exact,
  // an average rounds once); only an average that counts padding under a nonzero zero point
  // (padding is q = 0, not real 0) dequantizes first.
  DType t = cdt();
  Grid grid;
  int xb = -1;
  if (const int x8 = int8_engine() ? int8_buffer(x) : -1; x8 >= 0) {
    const bool pads = p.pad_top || p.pad_left || p.pad_bottom || p.pad_right;
    if (p.max || !p.count_include_pad || !pads || plan_->buf(x8).grid.zero_point == 0) {
      QF_ASSIGN_OR_RETURN(xb, request_int8(x, Layout::kNHWC));
      t = plan_->buf(xb).dtype;
      grid = plan_->buf(xb).grid;
    }
  }
  if (xb < 0) {
    QF_ASSIGN_OR_RETURN(xb, request_device(x, Layout::kNHWC, t));
  }
  const int yb = new_arena(t, ys, Layout::kNHWC);
  plan_->buf(yb).grid = grid;
  info(node.outputs[0]).buffers.push_back(yb);
  const std::string name = node.op_type;
  add_step(node.label(), {xb, yb}, [=](Plan& pl, DeviceContext& c) {
    return launch_status(launch_pool2d(pl.ptr(xb), pl.ptr(yb), t, p, c.stream), name);
  });
  add_kernel(node, node.op_type, fmt::format("pool2d_nhwc_{} [cuda]", dt(t)));
  return true;
}

Result<bool> Builder::lower_softmax(const ir::Node& node, bool log, std::string* why) {
  const ir::Value* x = node.inputs[0];
  if (!float_value(x)) {
    *why = "a non-f32 input";
    return false;
  }
  const Shape& xs = shape(x);
  const int64_t r = static_cast<int64_t>(xs.size());
  int64_t axis = node.attrs.get_int("axis", node.opset >= 13 ? -1 : 1);
  if (axis < 0) axis += r;
  if (axis < 0 || axis >= std::max<int64_t>(r, 1)) return false;
  int64_t outer = 1, len = 1, inner = 1;
  for (int64_t d = 0; d < r; ++d) {
    const int64_t e = xs[static_cast<size_t>(d)];
    if (d < axis) {
      outer *= e;
    } else if (d == axis || node.opset < 13) {
      len *= e;  // before opset 13 the input is coerced to 2-D at `axis`
    } else {
      inner *= e;
    }
  }
  const DType t = cdt();
  QF_ASSIGN_OR_RETURN(const int xb, request_device(x, Layout::kPlain, t));
  const int yb = new_arena(t, shape(node.outputs[0]), Layout::kPlain);
  info(node.outputs[0]).buffers.push_back(yb);
  const std::string name = node.op_type;
  add_step(node.label(), {xb, yb}, [=](Plan& p, DeviceContext& c) {
    return launch_status(launch_softmax(p.ptr(xb), p.ptr(yb), t, outer, len, inner, log, c.stream),
                         name);
  });
  add_kernel(node, node.op_type, fmt::format("softmax_{} [cuda]", dt(t)));
  return true;
}

// LayerNormalization (Y only) with constant Scale and B of the normalized size.
Result<bool> Builder::lower_layer_norm(const ir::Node& node, std::string* why) {
  const ir::Value* x = node.inputs[0];
  const Shape& xs = shape(x);
  if (!float_value(x) || node.has_output(1) || node.has_output(2) || xs.empty()) {
    *why = "only f32 LayerNormalization without the Mean/InvStdDev outputs runs on the device";
    return false;
  }
  int64_t axis = node.attrs.get_int("axis", -1);
  if (axis < 0) axis += static_cast<int64_t>(xs.size());
  int64_t inner = 1;
  for (size_t d = static_cast<size_t>(axis); d < xs.size(); ++d) inner *= xs[d];
  const int64_t rows = inner == 0 ? 0 : shape_numel(xs) / inner;
  int params[2] = {-1, -1};
  for (size_t i = 1; i < 3; ++i) {
    if (!node.has_input(i)) continue;
    const Tensor* p = known(node.inputs[i]);
    if (!p || p->dtype() != DType::kF32 || p->numel() != inner) {
      *why = "Scale or B not constant f32 of the normalized size";
      return false;
    }
    // fp32 at every precision: two small vectors, read by every row.
    QF_ASSIGN_OR_RETURN(
        params[i - 1], upload_weight(node.inputs[i], *p, Layout::kPlain, DType::kF32, "layernorm"));
  }
  const float eps = node.attrs.get_float("epsilon", 1e-5f);
  const DType t = cdt();
  QF_ASSIGN_OR_RETURN(const int xb, request_device(x, Layout::kPlain, t));
  const int yb = new_arena(t, xs, Layout::kPlain);
  info(node.outputs[0]).buffers.push_back(yb);
  const int sb = params[0], bb = params[1];
  add_step(node.label(), {xb, yb, sb, bb}, [=](Plan& p, DeviceContext& c) {
    return launch_status(launch_layer_norm(p.ptr(xb), p.ptr(yb), t, rows, inner,
                                           static_cast<const float*>(p.ptr(sb)),
                                           static_cast<const float*>(p.ptr(bb)), eps, c.stream),
                         "LayerNormalization");
  });
  add_kernel(node, node.op_type, fmt::format("layer_norm_{} [cuda]", dt(t)));
  return true;
}

}  // namespace qf::cuda
