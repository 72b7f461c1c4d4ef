// Ops that change a tensor's shape but not its data, and ops that describe a shape: Shape, Size,
// Reshape, Flatten, Squeeze, Unsqueeze, Expand, Identity, Dropout (inference only).
//
// Their shape functions carry symbolic dims through (Flatten of Nx512x1x1 is Nx512) and Shape
// and Size publish their values when the input shape is fully known, so that static analysis can
// resolve Shape -> Gather -> Concat -> Reshape chains.
#include <algorithm>
#include <cstring>

#include "ops/elementwise.h"

namespace qf::ops {
namespace {

using ir::Dim;
using ir::SymShape;

// The kernel of every op whose output holds input 0's elements in the same order.
Status copy_input(ir::KernelContext& ctx) {
  const Tensor& x = ctx.in(0);
  Tensor& y = ctx.out(0);
  if (x.dtype() != y.dtype() || x.numel() != y.numel()) {
    return ctx.error("output {} {} does not hold the input's {} {} elements", dtype_tag(y.dtype()),
                     shape_str(y.shape()), dtype_tag(x.dtype()), shape_str(x.shape()));
  }
  if (x.nbytes() > 0) std::memcpy(y.raw(), x.raw(), x.nbytes());
  return {};
}

// Product of dims [begin, end): known when every factor is (or one is 0); a single symbolic dim
// among known 1s keeps its symbol (N x 1 x 1 -> N); anything else is unknown.
Dim dims_product(const SymShape& s, size_t begin, size_t end) {
  for (size_t i = begin; i < end; ++i) {
    if (s[i].is_known() && s[i].value == 0) return Dim::known(0);
  }
  int64_t known = 1;
  size_t unknown = 0;
  const Dim* last_unknown = nullptr;
  for (size_t i = begin; i < end; ++i) {
    if (!s[i].is_known()) {
      ++unknown;
      last_unknown = &s[i];
    } else if (__builtin_mul_overflow(known, s[i].value, &known)) {
      return Dim{};  // declared dims too large to multiply: leave the product unknown
    }
  }
  if (unknown == 0) return Dim::known(known);
  if (unknown == 1 && known == 1) return *last_unknown;
  return Dim{};
}

Status require_input(const ir::InferContext& ctx, size_t i, const char* what) {
  if (!ctx.has_input(i)) return ctx.error("input {} ({}) is required", i, what);
  return {};
}

// ---------------------------------------------------------------------------------------------
// Shape (start/end attributes from opset 15) and Size.

// The [start, end) range of dims Shape reports, clamped into [0, rank] as opset 15 specifies.
std::pair<int64_t, int64_t> shape_range(const ir::Attributes& attrs, int64_t rank) {
  auto clamp = [rank](int64_t v) {
    if (v < 0) v += rank;
    return std::clamp<int64_t>(v, 0, rank);
  };
  const int64_t start = clamp(attrs.get_int("start", 0));
  const int64_t end = clamp(attrs.get_int("end", rank));
  return {start, std::max(start, end)};
}

Status shape_infer(ir::InferContext& ctx) {
  QF_RETURN_IF_ERROR(require_input(ctx, 0, "data"));
  const std::optional<SymShape>& s = ctx.in(0).shape;
  if (!s) {
    ctx.set_output(0, DType::kI64, SymShape{Dim{}});
    return {};
  }
  const auto [start, end] = shape_range(ctx.attrs(), static_cast<int64_t>(s->size()));
  ctx.set_output(0, DType::kI64, SymShape{Dim::known(end - start)});
  std::vector<int64_t> dims;
  for (int64_t i = start; i < end; ++i) {
    const Dim& d = (*s)[static_cast<size_t>(i)];
    if (!d.is_known()) return {};
    dims.push_back(d.value);
  }
  ctx.outputs[0].value = Tensor::from_vector<int64_t>({end - start}, dims);
  return {};
}

Status shape_reference(ir::KernelContext& ctx) {
  const Shape& s = ctx.in(0).shape();
  const auto [start, end] = shape_range(ctx.attrs(), static_cast<int64_t>(s.size()));
  int64_t* out = ctx.out(0).data<int64_t>();
  for (int64_t i = start; i < end; ++i) out[i - start] = s[static_cast<size_t>(i)];
  return {};
}

Status size_infer(ir::InferContext& ctx) {
  QF_RETURN_IF_ERROR(require_input(ctx, 0, "data"));
  ctx.set_output(0, DType::kI64, SymShape{});
  const std::optional<SymShape>& s = ctx.in(0).shape;
  if (s) {
    const Dim n = dims_product(*s, 0, s->size());
    if (n.is_known()) ctx.outputs[0].value = Tensor::from_vector<int64_t>({}, {n.value});
  }
  return {};
}

Status size_reference(ir::KernelContext& ctx) {
  ctx.out(0).data<int64_t>()[0] = ctx.in(0).numel();
  return {};
}

QF_REGISTER_OP(
    {.op_type = "Shape", .infer = shape_infer, .reference = shape_reference, .min_opset = 1});
QF_REGISTER_OP(
    {.op_type = "Size", .infer = size_infer, .reference = size_reference, .min_opset = 1});

// ---------------------------------------------------------------------------------------------
// Reshape: 0 copies the input dim (unless allowzero), -1 takes what is left.

// Reshape-1 had the target shape as an attribute; later versions take it as input 1.
Status reshape_canonicalize(ir::Node& node, ir::Graph& g) {
  if (node.has_input(1) || !node.attrs.has("shape")) return {};
  const std::vector<int64_t> shape = node.attrs.get_ints("shape");
  ir::Value* c =
      g.add_constant(node.name + "_shape",
                     Tensor::from_vector<int64_t>({static_cast<int64_t>(shape.size())}, shape));
  g.set_input(&node, 1, c);
  node.attrs.erase("shape");
  return {};
}

// The -1 dim of a reshape, found by cancelling the dims both sides share: NxCxHxW -> [N, -1]
// gives C*H*W when those are known, and [0, 512, -1] of Nx512 gives 1. Unknown when the
// remaining factors are not all known (or one symbol against nothing else).
Result<Dim> infer_minus_one(const ir::InferContext& ctx, const SymShape& in, const SymShape& out,
                            size_t minus_one_at) {
  int64_t in_known = 1, out_known = 1;
  std::vector<std::string> in_symbols, out_symbols;
  for (const Dim& d : in) {
    if (d.is_known()) {
      if (__builtin_mul_overflow(in_known, d.value, &in_known)) return Dim{};
    } else if (d.symbol.empty()) {
      return Dim{};
    } else {
      in_symbols.push_back(d.symbol);
    }
  }
  for (size_t i = 0; i < out.size(); ++i) {
    if (i == minus_one_at) continue;
    const Dim& d = out[i];
    if (d.is_known()) {
      if (__builtin_mul_overflow(out_known, d.value, &out_known)) return Dim{};
    } else if (d.symbol.empty()) {
      return Dim{};
    } else {
      out_symbols.push_back(d.symbol);
    }
  }
  for (const std::string& s : out_symbols) {
    auto it = std::find(in_symbols.begin(), in_symbols.end(), s);
    if (it == in_symbols.end()) return Dim{};
    in_symbols.erase(it);
  }
  if (in_symbols.empty()) {
    if (out_known == 0) {
      if (in_known == 0) return ctx.error("-1 in the target shape is ambiguous with a 0 dim");
      return ctx.error("cannot reshape {} to a shape with a 0 dim", ir::sym_shape_str(in));
    }
    if (in_known % out_known != 0) {
      return ctx.error(
          "cannot reshape {} ({} elements) so that the -1 dim is whole: the other "
          "dims hold {} elements",
          ir::sym_shape_str(in), in_known, out_known);
    }
    return Dim::known(in_known / out_known);
  }
  if (in_symbols.size() == 1 && in_known == out_known) return Dim::symbolic(in_symbols[0]);
  return Dim{};
}

Status reshape_infer(ir::InferContext& ctx) {
  QF_RETURN_IF_ERROR(require_input(ctx, 0, "data"));
  QF_RETURN_IF_ERROR(require_input(ctx, 1, "shape"));
  const DType dtype = ctx.in(0).dtype;
  const std::optional<SymShape>& in = ctx.in(0).shape;
  const bool allowzero = ctx.attrs().get_int("allowzero", 0) != 0;
  const std::optional<std::vector<int64_t>> target = ir::known_ints(ctx, 1);
  if (!target) {
    const std::optional<SymShape>& ts = ctx.in(1).shape;
    if (ts && ts->size() == 1 && (*ts)[0].is_known()) {
      ctx.set_output(0, dtype, SymShape(static_cast<size_t>((*ts)[0].value)));
    } else {
      ctx.set_output(0, dtype, std::nullopt);
    }
    return {};
  }

  SymShape out;
  std::optional<size_t> minus_one_at;
  bool has_zero = false;
  for (size_t i = 0; i < target->size(); ++i) {
    const int64_t v = (*target)[i];
    if (v == -1) {
      if (minus_one_at) return ctx.error("target shape has more than one -1");
      minus_one_at = i;
      out.push_back(Dim{});
    } else if (v == 0 && !allowzero) {
      if (!in) {
        out.push_back(Dim{});
      } else if (i >= in->size()) {
        return ctx.error("target shape copies dim {} (0) but the input {} has rank {}", i,
                         ir::sym_shape_str(in), in->size());
      } else {
        out.push_back((*in)[i]);
      }
    } else if (v < 0) {
      return ctx.error("target shape has invalid dim {}", v);
    } else {
      has_zero = has_zero || v == 0;
      out.push_back(Dim::known(v));
    }
  }
  if (allowzero && has_zero && minus_one_at) {
    return ctx.error("target shape has both 0 and -1 while allowzero is set");
  }
  QF_RETURN_IF_ERROR(ir::check_element_count(ctx, out));
  if (in) {
    if (minus_one_at) {
      QF_ASSIGN_OR_RETURN(out[*minus_one_at], infer_minus_one(ctx, *in, out, *minus_one_at));
    } else {
      const Dim a = dims_product(*in, 0, in->size());
      const Dim b = dims_product(out, 0, out.size());
      if (a.is_known() && b.is_known() && a.value != b.value) {
        return ctx.error("cannot reshape {} ({} elements) to {} ({} elements)",
                         ir::sym_shape_str(in), a.value, ir::sym_shape_str(out), b.value);
      }
    }
  }
  ctx.set_output(0, dtype, std::move(out));
  return {};
}

QF_REGISTER_OP({.op_type = "Reshape",
                .infer = reshape_infer,
                .reference = copy_input,
                .canonicalize = reshape_canonicalize,
                .min_opset = 1});

// ---------------------------------------------------------------------------------------------
// Flatten: [d0 * ... * d(axis-1), d(axis) * ... * d(r-1)].

Status flatten_infer(ir::InferContext& ctx) {
  QF_RETURN_IF_ERROR(require_input(ctx, 0, "input"));
  const std::optional<SymShape>& in = ctx.in(0).shape;
  const int64_t axis = ctx.attrs().get_int("axis", 1);
  if (!in) {
    ctx.set_output(0, ctx.in(0).dtype, SymShape{Dim{}, Dim{}});
    return {};
  }
  const int64_t rank = static_cast<int64_t>(in->size());
  if (axis < -rank || axis > rank) {
    return ctx.error("axis {} is out of range for a tensor of rank {}", axis, rank);
  }
  const size_t a = static_cast<size_t>(axis < 0 ? axis + rank : axis);
  ctx.set_output(0, ctx.in(0).dtype,
                 SymShape{dims_product(*in, 0, a), dims_product(*in, a, in->size())});
  return {};
}

QF_REGISTER_OP(
    {.op_type = "Flatten", .infer = flatten_infer, .reference = copy_input, .min_opset = 1});

// ---------------------------------------------------------------------------------------------
// Squeeze and Unsqueeze. Before opset 13 `axes` was an attribute; canonicalisation makes it
// input 1 so that one shape function serves all versions.

Status axes_attr_to_input(ir::Node& node, ir::Graph& g) {
  if (node.has_input(1) || !node.attrs.has("axes")) return {};
  const std::vector<int64_t> axes = node.attrs.get_ints("axes");
  ir::Value* c = g.add_constant(
      node.name + "_axes", Tensor::from_vector<int64_t>({static_cast<int64_t>(axes.size())}, axes));
  g.set_input(&node, 1, c);
  node.attrs.erase("axes");
  return {};
}

// Normalised, duplicate-free axes for a tensor of rank `rank`.
Result<std::vector<int>> normalize_axes(const ir::InferContext& ctx,
                                        const std::vector<int64_t>& axes, int64_t rank) {
  std::vector<int> out;
  for (int64_t a : axes) {
    QF_ASSIGN_OR_RETURN(int n, ir::dim_axis(ctx, a, rank));
    if (std::find(out.begin(), out.end(), n) != out.end()) {
      return ctx.error("axis {} is given twice", a);
    }
    out.push_back(n);
  }
  return out;
}

// Length of a 1-D input whose values are unknown, or nullopt.
std::optional<int64_t> known_length(const ir::InferContext& ctx, size_t i) {
  const std::optional<SymShape>& s = ctx.in(i).shape;
  if (s && s->size() == 1 && (*s)[0].is_known()) return (*s)[0].value;
  return std::nullopt;
}

Status squeeze_infer(ir::InferContext& ctx) {
  QF_RETURN_IF_ERROR(require_input(ctx, 0, "data"));
  const DType dtype = ctx.in(0).dtype;
  const std::optional<SymShape>& in = ctx.in(0).shape;
  if (!in) {
    ctx.set_output(0, dtype, std::nullopt);
    return {};
  }
  const int64_t rank = static_cast<int64_t>(in->size());
  SymShape out;
  if (!ctx.has_input(1)) {
    // Every dim of size 1 goes; a dim whose size is unknown may or may not be 1.
    for (const Dim& d : *in) {
      if (!d.is_known()) {
        ctx.set_output(0, dtype, std::nullopt);
        return {};
      }
      if (d.value != 1) out.push_back(d);
    }
    ctx.set_output(0, dtype, std::move(out));
    return {};
  }
  const auto axes = ir::known_ints(ctx, 1);
  if (!axes) {
    const auto n = known_length(ctx, 1);
    ctx.set_output(0, dtype,
                   n && *n <= rank
                       ? std::optional<SymShape>(SymShape(static_cast<size_t>(rank - *n)))
                       : std::nullopt);
    return {};
  }
  QF_ASSIGN_OR_RETURN(std::vector<int> norm, normalize_axes(ctx, *axes, rank));
  for (int a : norm) {
    const Dim& d = (*in)[static_cast<size_t>(a)];
    if (d.is_known() && d.value != 1) {
      return ctx.error("cannot squeeze axis {} of {}: its size is {}, not 1", a,
                       ir::sym_shape_str(in), d.value);
    }
  }
  for (size_t i = 0; i < in->size(); ++i) {
    if (std::find(norm.begin(), norm.end(), static_cast<int>(i)) == norm.end()) {
      out.push_back((*in)[i]);
    }
  }
  ctx.set_output(0, dtype, std::move(out));
  return {};
}

Status unsqueeze_infer(ir::InferContext& ctx) {
  QF_RETURN_IF_ERROR(require_input(ctx, 0, "data"));
  QF_RETURN_IF_ERROR(require_input(ctx, 1, "axes"));
  const DType dtype = ctx.in(0).dtype;
  const std::optional<SymShape>& in = ctx.in(0).shape;
  const auto axes = ir::known_ints(ctx, 1);
  if (!in || !axes) {
    const auto n =
        axes ? std::optional<int64_t>(static_cast<int64_t>(axes->size())) : known_length(ctx, 1);
    ctx.set_output(0, dtype,
                   in && n ? std::optional<SymShape>(SymShape(in->size() + static_cast<size_t>(*n)))
                           : std::nullopt);
    return {};
  }
  const int64_t out_rank = static_cast<int64_t>(in->size() + axes->size());
  QF_ASSIGN_OR_RETURN(std::vector<int> norm, normalize_axes(ctx, *axes, out_rank));
  SymShape out;
  size_t next = 0;
  for (int i = 0; i < out_rank; ++i) {
    if (std::find(norm.begin(), norm.end(), i) != norm.end()) {
      out.push_back(Dim::known(1));
    } else {
      out.push_back((*in)[next++]);
    }
  }
  ctx.set_output(0, dtype, std::move(out));
  return {};
}

QF_REGISTER_OP({.op_type = "Squeeze",
                .infer = squeeze_infer,
                .reference = copy_input,
                .canonicalize = axes_attr_to_input,
                .min_opset = 1});
QF_REGISTER_OP({.op_type = "Unsqueeze",
                .infer = unsqueeze_infer,
                .reference = copy_input,
                .canonicalize = axes_attr_to_input,
                .min_opset = 1});

// ---------------------------------------------------------------------------------------------
// Expand: numpy broadcast of the input against the requested shape.

Status expand_infer(ir::InferContext& ctx) {
  QF_RETURN_IF_ERROR(require_input(ctx, 0, "input"));
  QF_RETURN_IF_ERROR(require_input(ctx, 1, "shape"));
  const DType dtype = ctx.in(0).dtype;
  const std::optional<SymShape>& in = ctx.in(0).shape;
  const auto target = ir::known_ints(ctx, 1);
  if (target) {
    for (int64_t d : *target) {
      if (d < 0) return ctx.error("target shape has negative dim {}", d);
    }
  }
  if (!in) {
    ctx.set_output(0, dtype, std::nullopt);
    return {};
  }
  if (target) {
    QF_ASSIGN_OR_RETURN(SymShape out, ir::broadcast_shapes(ctx, *in, ir::to_sym_shape(*target)));
    QF_RETURN_IF_ERROR(ir::check_element_count(ctx, out));
    ctx.set_output(0, dtype, std::move(out));
    return {};
  }
  const auto n = known_length(ctx, 1);
  if (!n) {
    ctx.set_output(0, dtype, std::nullopt);
    return {};
  }
  // The target's values are unknown, but an input dim larger than 1 survives any valid target.
  const size_t rank = std::max(in->size(), static_cast<size_t>(*n));
  SymShape out(rank);
  for (size_t i = 0; i < in->size(); ++i) {
    const Dim& d = (*in)[i];
    if (d.is_known() && d.value != 1) out[rank - in->size() + i] = d;
  }
  ctx.set_output(0, dtype, std::move(out));
  return {};
}

Status expand_reference(ir::KernelContext& ctx) {
  const Tensor& x = ctx.in(0);
  Tensor& y = ctx.out(0);
  const std::vector<int64_t> strides = ir::broadcast_strides(x.shape(), y.shape());
  return copy_strided_view(ctx, x, y, 0, strides);
}

QF_REGISTER_OP(
    {.op_type = "Expand", .infer = expand_infer, .reference = expand_reference, .min_opset = 8});

// ---------------------------------------------------------------------------------------------
// Identity and Dropout. qforge runs inference only: Dropout passes its input through and its
// optional mask output keeps everything.

QF_REGISTER_OP(
    {.op_type = "Identity", .infer = infer_same_as_input, .reference = copy_input, .min_opset = 1});

// Whether input 2 (training_mode, opset 12+) asks for random dropping, when it is known.
std::optional<bool> dropout_training(const Tensor* training_mode, const Tensor* ratio,
                                     const ir::Attributes& attrs) {
  if (!training_mode) return false;
  if (training_mode->numel() != 1) return std::nullopt;
  if (training_mode->element_as_double(0) == 0.0) return false;
  const double r =
      ratio && ratio->numel() == 1 ? ratio->element_as_double(0) : attrs.get_float("ratio", 0.5f);
  return r != 0.0;
}

// Training mode is rejected by the kernel, not here, so that `inspect` still shows the model.
Status dropout_infer(ir::InferContext& ctx) {
  QF_RETURN_IF_ERROR(require_input(ctx, 0, "data"));
  ctx.propagate(0, 0);
  // Dropout-7..9 typed the mask like the data; from opset 10 it is bool.
  if (ctx.outputs.size() > 1) {
    ctx.set_output(1, ctx.node.opset >= 10 ? DType::kBool : ctx.in(0).dtype, ctx.in(0).shape);
  }
  return {};
}

Status dropout_reference(ir::KernelContext& ctx) {
  const Tensor* ratio = ctx.has_input(1) ? &ctx.in(1) : nullptr;
  const Tensor* training = ctx.has_input(2) ? &ctx.in(2) : nullptr;
  if (dropout_training(training, ratio, ctx.attrs()).value_or(true)) {
    return ctx.unsupported_here("training_mode = true (random dropout) is not supported");
  }
  QF_RETURN_IF_ERROR(copy_input(ctx));
  if (ctx.num_outputs() > 1 && ctx.out(1).defined()) {
    Tensor& mask = ctx.out(1);
    visit_dtype(mask.dtype(), [&]<typename T>() {
      T* m = mask.data<T>();
      for (int64_t i = 0; i < mask.numel(); ++i) m[i] = from_double<T>(1.0);
    });
  }
  return {};
}

QF_REGISTER_OP(
    {.op_type = "Dropout", .infer = dropout_infer, .reference = dropout_reference, .min_opset = 1});

}  // namespace
}  // namespace qf::ops
