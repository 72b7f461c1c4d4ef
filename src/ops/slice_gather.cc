// Slice, Gather and GatherElements.
#include <algorithm>
#include <cstring>
#include <limits>

#include "ops/elementwise.h"

namespace qf::ops {
namespace {

using ir::Dim;
using ir::SymShape;

// ---------------------------------------------------------------------------------------------
// Slice. Before opset 10 starts/ends/axes were attributes (and steps did not exist);
// canonicalisation turns them into inputs 1..3.

Status slice_canonicalize(ir::Node& node, ir::Graph& g) {
  if (node.has_input(1) || !node.attrs.has("starts")) return {};
  auto add = [&](const char* name, size_t index) {
    const std::vector<int64_t> v = node.attrs.get_ints(name);
    ir::Value* c = g.add_constant(
        node.name + "_" + name, Tensor::from_vector<int64_t>({static_cast<int64_t>(v.size())}, v));
    g.set_input(&node, index, c);
    node.attrs.erase(name);
  };
  add("starts", 1);
  if (!node.attrs.has("ends"))
    return invalid_input("{}: attribute 'ends' is required", node.label());
  add("ends", 2);
  if (node.attrs.has("axes")) add("axes", 3);
  return {};
}

// One sliced axis after clamping: elements start, start + step, ... (count of them).
struct AxisSlice {
  int64_t start = 0;
  int64_t step = 1;
  int64_t count = 0;
};

// ONNX's clamping rules: negative starts/ends count from the end; starts clamp into [0, dim]
// ([0, dim - 1] for negative steps) and ends into [0, dim] ([-1, dim - 1] for negative steps).
AxisSlice clamp_slice(int64_t start, int64_t end, int64_t step, int64_t dim) {
  if (start < 0) start += dim;
  if (end < 0) end += dim;
  AxisSlice s;
  s.step = step;
  if (dim == 0) return s;
  if (step > 0) {
    start = std::clamp<int64_t>(start, 0, dim);
    end = std::clamp<int64_t>(end, 0, dim);
    s.count = end > start ? (end - start + step - 1) / step : 0;
  } else {
    start = std::clamp<int64_t>(start, 0, dim - 1);
    end = std::clamp<int64_t>(end, -1, dim - 1);
    s.count = start > end ? (start - end + (-step) - 1) / (-step) : 0;
  }
  s.start = start;
  return s;
}

// The parameters of a Slice node as lists of equal length, axes normalised.
struct SliceParams {
  std::vector<int64_t> starts, ends, axes, steps;
};

template <typename Ctx>
Result<SliceParams> slice_params(const Ctx& ctx, std::vector<int64_t> starts,
                                 std::vector<int64_t> ends,
                                 std::optional<std::vector<int64_t>> axes,
                                 std::optional<std::vector<int64_t>> steps, int64_t rank) {
  SliceParams p;
  if (starts.size() != ends.size()) {
    return ctx.error("starts has {} entries but ends has {}", starts.size(), ends.size());
  }
  if (!axes) {
    axes.emplace(starts.size());
    for (size_t i = 0; i < axes->size(); ++i) (*axes)[i] = static_cast<int64_t>(i);
  }
  if (!steps) steps.emplace(starts.size(), 1);
  if (axes->size() != starts.size() || steps->size() != starts.size()) {
    return ctx.error("starts, ends, axes and steps must have the same length ({}, {}, {}, {})",
                     starts.size(), ends.size(), axes->size(), steps->size());
  }
  for (size_t i = 0; i < axes->size(); ++i) {
    QF_ASSIGN_OR_RETURN(int a, ir::dim_axis(ctx, (*axes)[i], rank));
    if (std::find(p.axes.begin(), p.axes.end(), a) != p.axes.end()) {
      return ctx.error("axis {} is sliced twice", a);
    }
    if ((*steps)[i] == 0) return ctx.error("step of axis {} is 0", a);
    p.axes.push_back(a);
  }
  p.starts = std::move(starts);
  p.ends = std::move(ends);
  p.steps = std::move(*steps);
  return p;
}

Status slice_infer(ir::InferContext& ctx) {
  if (!ctx.has_input(0)) return ctx.error("input 0 (data) is required");
  if (!ctx.has_input(1) || !ctx.has_input(2))
    return ctx.error("inputs starts and ends are required");
  const DType dtype = ctx.in(0).dtype;
  const std::optional<SymShape>& in = ctx.in(0).shape;
  if (!in) {
    ctx.set_output(0, dtype, std::nullopt);
    return {};
  }
  const int64_t rank = static_cast<int64_t>(in->size());
  const auto starts = ir::known_ints(ctx, 1);
  const auto ends = ir::known_ints(ctx, 2);
  const auto axes = ir::known_ints(ctx, 3);
  const auto steps = ir::known_ints(ctx, 4);
  if (ctx.has_input(3) && !axes) {
    ctx.set_output(0, dtype, SymShape(in->size()));  // which axes change is unknown
    return {};
  }
  if (!starts || !ends || (ctx.has_input(4) && !steps)) {
    SymShape out = *in;
    if (axes) {
      for (int64_t a : *axes) {
        QF_ASSIGN_OR_RETURN(int n, ir::dim_axis(ctx, a, rank));
        out[static_cast<size_t>(n)] = Dim{};
      }
    } else {
      out = SymShape(in->size());
    }
    ctx.set_output(0, dtype, std::move(out));
    return {};
  }
  QF_ASSIGN_OR_RETURN(SliceParams p, slice_params(ctx, *starts, *ends, axes, steps, rank));
  SymShape out = *in;
  for (size_t i = 0; i < p.axes.size(); ++i) {
    Dim& d = out[static_cast<size_t>(p.axes[i])];
    if (d.is_known()) {
      d = Dim::known(clamp_slice(p.starts[i], p.ends[i], p.steps[i], d.value).count);
    } else if (!(p.starts[i] == 0 && p.steps[i] == 1 &&
                 p.ends[i] >= std::numeric_limits<int32_t>::max())) {
      d = Dim{};  // anything but a whole-axis slice of an unknown dim has an unknown size
    }
  }
  ctx.set_output(0, dtype, std::move(out));
  return {};
}

Status slice_reference(ir::KernelContext& ctx) {
  const Tensor& x = ctx.in(0);
  Tensor& y = ctx.out(0);
  auto ints = [&](size_t i) -> std::optional<std::vector<int64_t>> {
    if (!ctx.has_input(i)) return std::nullopt;
    return ctx.in(i).to_int64_vector();
  };
  QF_ASSIGN_OR_RETURN(SliceParams p,
                      slice_params(ctx, *ints(1), *ints(2), ints(3), ints(4), x.rank()));
  const size_t rank = static_cast<size_t>(x.rank());
  std::vector<AxisSlice> slices(rank);
  for (size_t d = 0; d < rank; ++d) slices[d] = AxisSlice{0, 1, x.shape()[d]};
  for (size_t i = 0; i < p.axes.size(); ++i) {
    const size_t a = static_cast<size_t>(p.axes[i]);
    slices[a] = clamp_slice(p.starts[i], p.ends[i], p.steps[i], x.shape()[a]);
  }
  for (size_t d = 0; d < rank; ++d) {
    if (slices[d].count != y.shape()[d]) return ctx.error("output shape does not match the slice");
  }
  const std::vector<int64_t> in_strides = ir::strides_of(x.shape());
  int64_t base = 0;
  std::vector<int64_t> strides(rank);
  for (size_t d = 0; d < rank; ++d) {
    base += slices[d].start * in_strides[d];
    strides[d] = slices[d].step * in_strides[d];
  }
  return copy_strided_view(ctx, x, y, base, strides);
}

QF_REGISTER_OP({.op_type = "Slice",
                .infer = slice_infer,
                .reference = slice_reference,
                .canonicalize = slice_canonicalize,
                .min_opset = 1});

// ---------------------------------------------------------------------------------------------
// Gather: out[i.., j.., k..] = data[i.., indices[j..], k..]; negative indices count from the end.

Status require_index_type(const ir::InferContext& ctx, size_t i) {
  const DType t = ctx.in(i).dtype;
  if (t != DType::kUndefined && t != DType::kI32 && t != DType::kI64) {
    return ctx.error("indices must be int32 or int64, not {}", dtype_tag(t));
  }
  return {};
}

Status gather_infer(ir::InferContext& ctx) {
  if (!ctx.has_input(0) || !ctx.has_input(1))
    return ctx.error("inputs data and indices are required");
  QF_RETURN_IF_ERROR(require_index_type(ctx, 1));
  const DType dtype = ctx.in(0).dtype;
  const std::optional<SymShape>& data = ctx.in(0).shape;
  const std::optional<SymShape>& indices = ctx.in(1).shape;
  if (!data || !indices) {
    ctx.set_output(0, dtype, std::nullopt);
    return {};
  }
  QF_ASSIGN_OR_RETURN(int axis, ir::dim_axis(ctx, ctx.attrs().get_int("axis", 0),
                                             static_cast<int64_t>(data->size())));
  if (data->empty()) return ctx.error("data must have rank >= 1");
  SymShape out(data->begin(), data->begin() + axis);
  out.insert(out.end(), indices->begin(), indices->end());
  out.insert(out.end(), data->begin() + axis + 1, data->end());
  ctx.set_output(0, dtype, std::move(out));
  return {};
}

Status gather_reference(ir::KernelContext& ctx) {
  const Tensor& x = ctx.in(0);
  const Tensor& ind = ctx.in(1);
  Tensor& y = ctx.out(0);
  QF_ASSIGN_OR_RETURN(int axis, ir::dim_axis(ctx, ctx.attrs().get_int("axis", 0), x.rank()));
  const size_t a = static_cast<size_t>(axis);
  const std::vector<int64_t> indices = ind.to_int64_vector();
  const int64_t dim = x.shape()[a];
  int64_t outer = 1, inner = 1;
  for (size_t i = 0; i < a; ++i) outer *= x.shape()[i];
  for (size_t i = a + 1; i < x.shape().size(); ++i) inner *= x.shape()[i];
  const size_t esize = dtype_size(x.dtype());
  const size_t block = static_cast<size_t>(inner) * esize;
  const auto* src = static_cast<const std::byte*>(x.raw());
  auto* dst = static_cast<std::byte*>(y.raw());
  for (int64_t o = 0; o < outer; ++o) {
    for (size_t j = 0; j < indices.size(); ++j) {
      int64_t k = indices[j];
      if (k < -dim || k >= dim) {
        return ctx.error("index {} is out of range for axis {} of size {}", k, axis, dim);
      }
      if (k < 0) k += dim;
      if (block == 0) continue;
      std::memcpy(dst + (static_cast<size_t>(o) * indices.size() + j) * block,
                  src + static_cast<size_t>(o * dim + k) * block, block);
    }
  }
  return {};
}

QF_REGISTER_OP(
    {.op_type = "Gather", .infer = gather_infer, .reference = gather_reference, .min_opset = 1});

// ---------------------------------------------------------------------------------------------
// GatherElements: out[p] = data[p with its `axis` coordinate replaced by indices[p]].

Status gather_elements_infer(ir::InferContext& ctx) {
  if (!ctx.has_input(0) || !ctx.has_input(1))
    return ctx.error("inputs data and indices are required");
  QF_RETURN_IF_ERROR(require_index_type(ctx, 1));
  const std::optional<SymShape>& data = ctx.in(0).shape;
  const std::optional<SymShape>& indices = ctx.in(1).shape;
  if (data && indices) {
    if (data->size() != indices->size()) {
      return ctx.error("data (rank {}) and indices (rank {}) must have the same rank", data->size(),
                       indices->size());
    }
    QF_RETURN_IF_ERROR(
        ir::dim_axis(ctx, ctx.attrs().get_int("axis", 0), static_cast<int64_t>(data->size()))
            .status());
  }
  ctx.set_output(0, ctx.in(0).dtype, indices);
  return {};
}

Status gather_elements_reference(ir::KernelContext& ctx) {
  const Tensor& x = ctx.in(0);
  const Tensor& ind = ctx.in(1);
  Tensor& y = ctx.out(0);
  QF_ASSIGN_OR_RETURN(int axis, ir::dim_axis(ctx, ctx.attrs().get_int("axis", 0), x.rank()));
  const size_t a = static_cast<size_t>(axis);
  const size_t rank = static_cast<size_t>(x.rank());
  for (size_t d = 0; d < rank; ++d) {
    if (d != a && ind.shape()[d] > x.shape()[d]) {
      return ctx.error("indices {} exceed data {} along axis {}", shape_str(ind.shape()),
                       shape_str(x.shape()), d);
    }
  }
  const std::vector<int64_t> indices = ind.to_int64_vector();
  const std::vector<int64_t> strides = ir::strides_of(x.shape());
  const int64_t dim = x.shape()[a];
  Status status;
  const bool ok = visit_dtype(x.dtype(), [&]<typename T>() {
    const T* src = x.data<T>();
    T* dst = y.data<T>();
    std::vector<int64_t> idx(rank, 0);
    for (size_t i = 0; i < indices.size(); ++i) {
      int64_t k = indices[i];
      if (k < -dim || k >= dim) {
        status = ctx.error("index {} is out of range for axis {} of size {}", k, axis, dim);
        return;
      }
      if (k < 0) k += dim;
      int64_t offset = 0;
      for (size_t d = 0; d < rank; ++d) offset += (d == a ? k : idx[d]) * strides[d];
      dst[i] = src[offset];
      for (size_t d = rank; d-- > 0;) {
        if (++idx[d] < ind.shape()[d]) break;
        idx[d] = 0;
      }
    }
  });
  if (!ok) return ctx.error("input has no element type");
  return status;
}

QF_REGISTER_OP({.op_type = "GatherElements",
                .infer = gather_elements_infer,
                .reference = gather_elements_reference,
                .min_opset = 11});

}  // namespace
}  // namespace qf::ops
