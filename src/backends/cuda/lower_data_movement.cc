// Ops that only rearrange data: Transpose and Concat as strided copies, Reshape-like ops as
// aliases of their input's bytes.
#include <fmt/format.h>

#include <cstddef>
#include <utility>

#include "backends/cuda/lowering.h"

namespace qf::cuda {

// Transpose: one strided copy reading the input through permuted strides.
Result<bool> Builder::lower_transpose(const ir::Node& node, std::string* why) {
  const ir::Value* x = node.inputs[0];
  const Shape& xs = shape(x);
  if (!float_value(x) || xs.empty() || xs.size() > static_cast<size_t>(kMaxDims)) {
    *why = "only f32 tensors of rank 1 to 6 are transposed on the device";
    return false;
  }
  std::vector<int64_t> perm = node.attrs.get_ints("perm", {});
  if (perm.empty()) {
    for (size_t d = xs.size(); d-- > 0;) perm.push_back(static_cast<int64_t>(d));
  }
  const DType t = cdt();
  QF_ASSIGN_OR_RETURN(const int xb, request_device(x, Layout::kPlain, t));
  const std::vector<int64_t> st = dense_strides(xs);
  StridedShape view;
  view.rank = static_cast<int>(xs.size());
  for (size_t k = 0; k < xs.size(); ++k) {
    const size_t from = static_cast<size_t>(perm[k] < 0 ? perm[k] + view.rank : perm[k]);
    view.dims[k] = xs[from];
    view.strides[k] = st[from];
  }
  const int yb = new_arena(t, shape(node.outputs[0]), Layout::kPlain);
  info(node.outputs[0]).buffers.push_back(yb);
  add_step(node.label(), {xb, yb}, [=](Plan& p, DeviceContext& c) {
    return launch_status(launch_strided_copy(p.ptr(xb), t, view, p.ptr(yb), t, c.stream),
                         "Transpose");
  });
  add_kernel(node, node.op_type, fmt::format("strided_copy_{} [cuda]", dt(t)));
  return true;
}

// Concat: each input is one strided copy into its slice of the output.
Result<bool> Builder::lower_concat(const ir::Node& node, std::string* why) {
  const Shape& ys = shape(node.outputs[0]);
  if (!float_value(node.outputs[0]) || ys.empty() || ys.size() > static_cast<size_t>(kMaxDims)) {
    *why = "only f32 tensors of rank 1 to 6 are concatenated on the device";
    return false;
  }
  int64_t axis = node.attrs.get_int("axis", 0);
  if (axis < 0) axis += static_cast<int64_t>(ys.size());
  const DType t = cdt();
  const std::vector<int64_t> out_strides = dense_strides(ys);
  std::vector<int> ins;
  std::vector<std::pair<StridedShape, int64_t>> copies;  // (source view, output offset)
  int64_t offset = 0;
  for (const ir::Value* in : node.inputs) {
    if (!in || !float_value(in)) {
      *why = "a non-f32 input";
      return false;
    }
    const Shape& s = shape(in);
    if (shape_numel(s) == 0) continue;
    QF_ASSIGN_OR_RETURN(const int b, request_device(in, Layout::kPlain, t));
    ins.push_back(b);
    const std::vector<int64_t> st = dense_strides(s);
    StridedShape view;
    view.rank = static_cast<int>(s.size());
    for (size_t d = 0; d < s.size(); ++d) {
      view.dims[d] = s[d];
      view.strides[d] = st[d];
    }
    copies.emplace_back(view, offset);
    offset += s[static_cast<size_t>(axis)] * out_strides[static_cast<size_t>(axis)];
  }
  const int yb = new_arena(t, ys, Layout::kPlain);
  info(node.outputs[0]).buffers.push_back(yb);
  StridedShape dst;
  dst.rank = static_cast<int>(ys.size());
  for (size_t d = 0; d < ys.size(); ++d) dst.strides[d] = out_strides[d];
  std::vector<int> touched = ins;
  touched.push_back(yb);
  const size_t es = dtype_size(t);
  add_step(node.label(), touched, [=](Plan& p, DeviceContext& c) -> Status {
    for (size_t i = 0; i < ins.size(); ++i) {
      auto* out = static_cast<std::byte*>(p.ptr(yb)) + copies[i].second * static_cast<int64_t>(es);
      QF_RETURN_IF_ERROR(launch_status(
          launch_strided_copy(p.ptr(ins[i]), t, copies[i].first, out, t, c.stream, &dst),
          "Concat"));
    }
    return {};
  });
  add_kernel(node, node.op_type, fmt::format("strided_copy_{} x{} [cuda]", dt(t), ins.size()));
  return true;
}

// Reshape-like ops move no data: the output is another shape over the input's plain bytes.
Result<bool> Builder::lower_reshape(const ir::Node& node) {
  const ir::Value* x = node.inputs[0];
  const ir::Value* y = node.outputs[0];
  const ValueInfo& xi = info(x);
  int src = -1;
  // An INT8 engine's 8-bit tensor stays 8-bit through a reshape: its plain bytes (an NHWC tensor
  // of 1x1 pixels has them already; others are copied into plain order, on the same grid).
  if (const int x8 = int8_buffer(x); x8 >= 0) {
    const Shape& xs = plan_->buf(x8).shape;
    if (plan_->buf(x8).layout == Layout::kPlain || (xs.size() == 4 && xs[2] * xs[3] == 1)) {
      src = x8;
    } else {
      QF_ASSIGN_OR_RETURN(src, request_int8(x, Layout::kPlain));
    }
  }
  for (int b : xi.buffers) {
    if (src < 0 && plan_->buf(b).on_device() && plan_->buf(b).layout == Layout::kPlain) src = b;
  }
  if (src < 0 && float_value(x) && native_layout(x) == Layout::kNHWC) {
    QF_ASSIGN_OR_RETURN(src, request_device(x, Layout::kPlain, cdt()));
  }
  if (src < 0) {
    QF_ASSIGN_OR_RETURN(const int h, request_host(x));
    Buffer b = plan_->buf(h);
    b.shape = shape(y);
    b.host = b.host.reshaped(shape(y));
    info(y).buffers.push_back(add_buffer(std::move(b)));
    add_kernel(node, node.op_type, "alias (no copy) [host]");
    return true;
  }
  Buffer b;
  b.kind = Buffer::Kind::kAlias;
  b.root = plan_->root_of(src);
  b.dtype = plan_->buf(src).dtype;
  b.grid = plan_->buf(src).grid;
  b.shape = shape(y);
  b.layout = Layout::kPlain;
  b.bytes = plan_->buf(src).bytes;
  info(y).buffers.push_back(add_buffer(std::move(b)));
  add_kernel(node, node.op_type, "alias (no copy) [cuda]");
  return true;
}

}  // namespace qf::cuda
