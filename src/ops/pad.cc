// Pad: constant, reflect, edge and wrap modes; negative pads crop.
//
// Before opset 11 the pads (`paddings` at opset 1) and the fill value were attributes;
// canonicalisation turns them into inputs 1 and 2. The fill value is read through double, so the
// canonical f32 constant serves inputs of any element type. Opset 18 added `axes` (input 3).
#include <algorithm>

#include "ops/elementwise.h"

namespace qf::ops {
namespace {

using ir::Dim;
using ir::SymShape;

Status pad_canonicalize(ir::Node& node, ir::Graph& g) {
  if (node.has_input(1)) return {};
  const char* name = node.attrs.has("pads") ? "pads" : "paddings";
  if (!node.attrs.has(name)) return invalid_input("{}: attribute 'pads' is required", node.label());
  const std::vector<int64_t> pads = node.attrs.get_ints(name);
  g.set_input(&node, 1,
              g.add_constant(node.name + "_pads", Tensor::from_vector<int64_t>(
                                                      {static_cast<int64_t>(pads.size())}, pads)));
  node.attrs.erase(name);
  if (node.attrs.has("value")) {
    const float value = node.attrs.get_float("value", 0.0f);
    g.set_input(&node, 2,
                g.add_constant(node.name + "_value", Tensor::from_vector<float>({}, {value})));
    node.attrs.erase("value");
  }
  return {};
}

enum class PadMode { kConstant, kReflect, kEdge, kWrap };

template <typename Ctx>
Result<PadMode> pad_mode(const Ctx& ctx) {
  const std::string mode = ctx.attrs().get_string("mode", "constant");
  if (mode == "constant") return PadMode::kConstant;
  if (mode == "reflect") return PadMode::kReflect;
  if (mode == "edge") return PadMode::kEdge;
  if (mode == "wrap") return PadMode::kWrap;
  return ctx.error("unknown mode '{}' (expected constant, reflect, edge or wrap)", mode);
}

// Begin and end pads for every dim of a rank-`rank` tensor, from the pads list (begins of all
// listed axes, then ends) and the optional axes list.
template <typename Ctx>
Result<std::pair<std::vector<int64_t>, std::vector<int64_t>>> full_pads(
    const Ctx& ctx, const std::vector<int64_t>& pads,
    const std::optional<std::vector<int64_t>>& axes, int64_t rank) {
  std::vector<int64_t> axis_list;
  if (axes) {
    axis_list = *axes;
  } else {
    for (int64_t i = 0; i < rank; ++i) axis_list.push_back(i);
  }
  const size_t n = axis_list.size();
  if (pads.size() != 2 * n) {
    return ctx.error("pads has {} entries; {} axes need {}", pads.size(), n, 2 * n);
  }
  std::vector<int64_t> begin(static_cast<size_t>(rank), 0), end(static_cast<size_t>(rank), 0);
  std::vector<bool> seen(static_cast<size_t>(rank), false);
  for (size_t i = 0; i < n; ++i) {
    QF_ASSIGN_OR_RETURN(int a, ir::dim_axis(ctx, axis_list[i], rank));
    if (seen[static_cast<size_t>(a)]) return ctx.error("axis {} is padded twice", a);
    seen[static_cast<size_t>(a)] = true;
    begin[static_cast<size_t>(a)] = pads[i];
    end[static_cast<size_t>(a)] = pads[n + i];
  }
  return std::make_pair(begin, end);
}

Status pad_infer(ir::InferContext& ctx) {
  if (!ctx.has_input(0) || !ctx.has_input(1)) return ctx.error("inputs data and pads are required");
  QF_RETURN_IF_ERROR(pad_mode(ctx).status());
  const DType dtype = ctx.in(0).dtype;
  const std::optional<SymShape>& in = ctx.in(0).shape;
  const auto pads = ir::known_ints(ctx, 1);
  const auto axes = ir::known_ints(ctx, 3);
  if (!in) {
    ctx.set_output(0, dtype, std::nullopt);
    return {};
  }
  if (!pads || (ctx.has_input(3) && !axes)) {
    ctx.set_output(0, dtype, SymShape(in->size()));
    return {};
  }
  QF_ASSIGN_OR_RETURN(auto be, full_pads(ctx, *pads, axes, static_cast<int64_t>(in->size())));
  SymShape out = *in;
  for (size_t d = 0; d < out.size(); ++d) {
    int64_t extra = 0, size = 0;
    if (__builtin_add_overflow(be.first[d], be.second[d], &extra) ||
        (out[d].is_known() && __builtin_add_overflow(out[d].value, extra, &size))) {
      return ctx.error("pads {} and {} of axis {} overflow", be.first[d], be.second[d], d);
    }
    if (out[d].is_known()) {
      if (size < 0) {
        return ctx.error("pads {} and {} crop more than the {} elements of axis {}", be.first[d],
                         be.second[d], out[d].value, d);
      }
      out[d] = Dim::known(size);
    } else if (extra != 0) {
      out[d] = Dim{};
    }
  }
  QF_RETURN_IF_ERROR(ir::check_element_count(ctx, out));
  ctx.set_output(0, dtype, std::move(out));
  return {};
}

// Index into an axis of size n for position i, which may lie outside [0, n).
int64_t reflect_index(int64_t i, int64_t n) {
  if (n == 1) return 0;
  const int64_t period = 2 * (n - 1);
  i %= period;
  if (i < 0) i += period;
  return i < n ? i : period - i;
}

Status pad_reference(ir::KernelContext& ctx) {
  const Tensor& x = ctx.in(0);
  Tensor& y = ctx.out(0);
  QF_ASSIGN_OR_RETURN(PadMode mode, pad_mode(ctx));
  const std::optional<std::vector<int64_t>> axes =
      ctx.has_input(3) ? std::optional(ctx.in(3).to_int64_vector()) : std::nullopt;
  QF_ASSIGN_OR_RETURN(auto be, full_pads(ctx, ctx.in(1).to_int64_vector(), axes, x.rank()));
  const std::vector<int64_t>& begin = be.first;
  double value = 0.0;
  if (ctx.has_input(2) && ctx.in(2).numel() > 0) value = ctx.in(2).element_as_double(0);
  const size_t rank = static_cast<size_t>(x.rank());
  for (size_t d = 0; d < rank; ++d) {
    if (x.shape()[d] == 0 && y.shape()[d] > 0 && mode != PadMode::kConstant) {
      return ctx.error("cannot pad the empty axis {} in a mode that copies input elements", d);
    }
  }
  const std::vector<int64_t> strides = ir::strides_of(x.shape());
  const Shape& out_shape = y.shape();
  const bool ok = visit_dtype(x.dtype(), [&]<typename T>() {
    const T* src = x.data<T>();
    T* dst = y.data<T>();
    const T fill = from_double<T>(value);
    std::vector<int64_t> idx(rank, 0);
    for (int64_t i = 0; i < y.numel(); ++i) {
      int64_t offset = 0;
      bool inside = true;
      for (size_t d = 0; d < rank && inside; ++d) {
        const int64_t n = x.shape()[d];
        int64_t j = idx[d] - begin[d];
        if (j < 0 || j >= n) {
          switch (mode) {
            case PadMode::kConstant:
              inside = false;
              break;
            case PadMode::kEdge:
              j = std::clamp<int64_t>(j, 0, n - 1);
              break;
            case PadMode::kReflect:
              j = reflect_index(j, n);
              break;
            case PadMode::kWrap:
              j = ((j % n) + n) % n;
              break;
          }
        }
        offset += j * strides[d];
      }
      dst[i] = inside ? src[offset] : fill;
      for (size_t d = rank; d-- > 0;) {
        if (++idx[d] < out_shape[d]) break;
        idx[d] = 0;
      }
    }
  });
  if (!ok) return ctx.error("input has no element type");
  return {};
}

QF_REGISTER_OP({.op_type = "Pad",
                .infer = pad_infer,
                .reference = pad_reference,
                .canonicalize = pad_canonicalize,
                .min_opset = 1});

}  // namespace
}  // namespace qf::ops
