#include "ops/nn_common.h"

#include <cstring>

namespace qf::ops {

namespace {

Result<std::vector<int64_t>> read_positive_list(const ir::Node& node, const char* name, size_t size,
                                                int64_t fallback, int64_t min) {
  std::vector<int64_t> v = node.attrs.get_ints(name, std::vector<int64_t>(size, fallback));
  if (v.size() != size) {
    return invalid_input("{}: attribute '{}' has {} values, expected {}", node.label(), name,
                         v.size(), size);
  }
  for (int64_t x : v) {
    if (x < min) {
      return invalid_input("{}: attribute '{}' has value {}, which must be at least {}",
                           node.label(), name, x, min);
    }
  }
  return v;
}

}  // namespace

Result<WindowAttrs> read_window_attrs(const ir::Node& node, size_t spatial,
                                      const std::vector<int64_t>& kernel_from_weights) {
  WindowAttrs a;
  if (node.attrs.has("kernel_shape")) {
    QF_ASSIGN_OR_RETURN(a.kernel, read_positive_list(node, "kernel_shape", spatial, 1, 1));
    if (!kernel_from_weights.empty() && kernel_from_weights != a.kernel) {
      return invalid_input("{}: kernel_shape [{}] does not match the weights' spatial dims [{}]",
                           node.label(), fmt::join(a.kernel, ", "),
                           fmt::join(kernel_from_weights, ", "));
    }
  } else {
    a.kernel = kernel_from_weights;
  }
  QF_ASSIGN_OR_RETURN(a.strides, read_positive_list(node, "strides", spatial, 1, 1));
  QF_ASSIGN_OR_RETURN(a.dilations, read_positive_list(node, "dilations", spatial, 1, 1));
  QF_ASSIGN_OR_RETURN(a.pads, read_positive_list(node, "pads", 2 * spatial, 0, 0));
  const std::string auto_pad = node.attrs.get_string("auto_pad", "NOTSET");
  if (auto_pad == "NOTSET" || auto_pad.empty()) {
    a.auto_pad = AutoPad::kNotSet;
  } else if (auto_pad == "SAME_UPPER") {
    a.auto_pad = AutoPad::kSameUpper;
  } else if (auto_pad == "SAME_LOWER") {
    a.auto_pad = AutoPad::kSameLower;
  } else if (auto_pad == "VALID") {
    a.auto_pad = AutoPad::kValid;
  } else {
    return invalid_input("{}: auto_pad '{}' is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID",
                         node.label(), auto_pad);
  }
  a.ceil_mode = node.attrs.get_int("ceil_mode", 0) != 0;
  return a;
}

Result<WindowDim> window_dim(const ir::Node& node, const WindowAttrs& a, size_t d, int64_t in) {
  const size_t n = a.strides.size();
  const int64_t s = a.strides[d];
  const int64_t extent = (a.kernel[d] - 1) * a.dilations[d] + 1;
  WindowDim r;
  if (a.auto_pad == AutoPad::kSameUpper || a.auto_pad == AutoPad::kSameLower) {
    r.out = ceil_div(in, s);
    const int64_t total = std::max<int64_t>(0, (r.out - 1) * s + extent - in);
    // SAME_UPPER puts the odd pixel of padding at the end, SAME_LOWER at the beginning.
    r.pad_begin = a.auto_pad == AutoPad::kSameUpper ? total / 2 : total - total / 2;
    r.pad_end = total - r.pad_begin;
    return r;
  }
  if (a.auto_pad == AutoPad::kNotSet) {
    r.pad_begin = a.pads[d];
    r.pad_end = a.pads[d + n];
  }
  const int64_t span = in + r.pad_begin + r.pad_end - extent;
  if (span < 0) {
    return invalid_input(
        "{}: spatial dim {} has size {} (with padding {}), smaller than the kernel's extent {}",
        node.label(), d, in, in + r.pad_begin + r.pad_end, extent);
  }
  r.out = (a.ceil_mode ? ceil_div(span, s) : span / s) + 1;
  // A window that would start in the end padding is dropped (PyTorch and ONNX Runtime agree).
  if (a.ceil_mode && (r.out - 1) * s >= in + r.pad_begin) --r.out;
  return r;
}

Result<ir::SymShape> window_output_dims(const ir::Node& node, const WindowAttrs& a,
                                        const ir::SymShape& in_spatial) {
  ir::SymShape out(in_spatial.size());
  if (a.kernel.size() != in_spatial.size()) return out;  // kernel unknown: dims unknown
  for (size_t d = 0; d < in_spatial.size(); ++d) {
    if (!in_spatial[d].is_known()) continue;
    QF_ASSIGN_OR_RETURN(WindowDim w, window_dim(node, a, d, in_spatial[d].value));
    out[d] = ir::Dim::known(w.out);
  }
  return out;
}

Result<WindowGeometry> window_geometry(const ir::Node& node, const WindowAttrs& a,
                                       const Shape& in_spatial) {
  if (a.kernel.size() != in_spatial.size()) {
    return invalid_input("{}: kernel has {} spatial dims but the input has {}", node.label(),
                         a.kernel.size(), in_spatial.size());
  }
  WindowGeometry g{in_spatial, {}, a.kernel, a.strides, a.dilations, {}, {}};
  for (size_t d = 0; d < in_spatial.size(); ++d) {
    QF_ASSIGN_OR_RETURN(WindowDim w, window_dim(node, a, d, in_spatial[d]));
    g.out.push_back(w.out);
    g.pad_begin.push_back(w.pad_begin);
    g.pad_end.push_back(w.pad_end);
  }
  return g;
}

std::vector<int64_t> unflatten_index(int64_t flat, const Shape& dims) {
  std::vector<int64_t> idx(dims.size(), 0);
  for (size_t d = dims.size(); d-- > 0 && flat > 0;) {
    idx[d] = flat % dims[d];
    flat /= dims[d];
  }
  return idx;
}

Tensor convert_float(const Tensor& t, DType to) {
  Tensor out(to, t.shape());
  visit_dtype(t.dtype(), [&]<typename S>() {
    const S* src = t.data<S>();
    visit_dtype(to, [&]<typename D>() {
      D* dst = out.data<D>();
      for (int64_t i = 0; i < t.numel(); ++i) dst[i] = from_double<D>(to_double(src[i]));
    });
  });
  return out;
}

Status run_half_as_f32(ir::KernelContext& ctx, ir::ReferenceKernelFn kernel) {
  std::vector<Tensor> converted;
  converted.reserve(ctx.inputs.size());  // pointers into it are handed to the kernel
  std::vector<const Tensor*> inputs;
  for (const Tensor* t : ctx.inputs) {
    if (t && is_half(t->dtype())) {
      converted.push_back(convert_float(*t, DType::kF32));
      inputs.push_back(&converted.back());
    } else {
      inputs.push_back(t);
    }
  }
  std::vector<Tensor> outputs(ctx.outputs.size());
  for (size_t i = 0; i < outputs.size(); ++i) {
    const Tensor& o = ctx.outputs[i];
    // Copies share storage, so non-half outputs are written in place.
    outputs[i] = is_half(o.dtype()) ? Tensor(DType::kF32, o.shape()) : o;
  }
  ir::KernelContext sub{ctx.node, inputs, outputs};
  QF_RETURN_IF_ERROR(kernel(sub));
  for (size_t i = 0; i < outputs.size(); ++i) {
    Tensor& o = ctx.outputs[i];
    if (!is_half(o.dtype())) continue;
    const Tensor back = convert_float(outputs[i], o.dtype());
    if (o.nbytes() > 0) std::memcpy(o.raw(), back.raw(), o.nbytes());
  }
  return {};
}

std::vector<int64_t> known_dims_from(const std::optional<ir::SymShape>& shape, size_t from) {
  std::vector<int64_t> dims;
  if (!shape) return dims;
  for (size_t i = from; i < shape->size(); ++i) {
    if (!(*shape)[i].is_known()) return {};
    dims.push_back((*shape)[i].value);
  }
  return dims;
}

std::optional<int64_t> known_numel(const ir::Value* v) {
  if (!v || !v->shape) return std::nullopt;
  auto concrete = ir::to_concrete(*v->shape);
  if (!concrete) return std::nullopt;
  return shape_numel(*concrete);
}

}  // namespace qf::ops
