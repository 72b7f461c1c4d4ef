// Concat and Split. Both move contiguous blocks: for every index of the dims before `axis`, one
// block per input (Concat) or output (Split) of (its size along axis) x (inner dims) elements.
#include <cstring>

#include "ops/elementwise.h"

namespace qf::ops {
namespace {

using ir::Dim;
using ir::SymShape;

// Elements in the dims after `axis`, and index combinations of the dims before it.
int64_t inner_size(const Shape& s, size_t axis) {
  int64_t n = 1;
  for (size_t i = axis + 1; i < s.size(); ++i) n *= s[i];
  return n;
}
int64_t outer_size(const Shape& s, size_t axis) {
  int64_t n = 1;
  for (size_t i = 0; i < axis; ++i) n *= s[i];
  return n;
}

// ---------------------------------------------------------------------------------------------
// Concat

int64_t concat_axis(const ir::Node& node) {
  return node.attrs.get_int("axis", node.opset < 4 ? 1 : 0);
}

Status concat_infer(ir::InferContext& ctx) {
  if (ctx.num_inputs() == 0) return ctx.error("needs at least one input");
  if (ctx.node.opset >= 4 && !ctx.attrs().has("axis")) {
    return ctx.error("attribute 'axis' is required");
  }
  DType dtype = DType::kUndefined;
  std::optional<size_t> rank;
  for (size_t i = 0; i < ctx.num_inputs(); ++i) {
    if (!ctx.has_input(i)) return ctx.error("input {} is missing", i);
    const ir::InferInput& in = ctx.in(i);
    if (in.dtype != DType::kUndefined) {
      if (dtype != DType::kUndefined && in.dtype != dtype) {
        return ctx.error("inputs have different element types ({} and {})", dtype_tag(dtype),
                         dtype_tag(in.dtype));
      }
      dtype = in.dtype;
    }
    if (in.shape) {
      if (rank && *rank != in.shape->size()) {
        return ctx.error("inputs have different ranks ({} and {})", *rank, in.shape->size());
      }
      rank = in.shape->size();
    }
  }
  if (!rank) {
    ctx.set_output(0, dtype, std::nullopt);
    return {};
  }
  QF_ASSIGN_OR_RETURN(int axis,
                      ir::dim_axis(ctx, concat_axis(ctx.node), static_cast<int64_t>(*rank)));
  SymShape out(*rank);
  int64_t axis_sum = 0;
  bool axis_known = true;
  for (size_t i = 0; i < ctx.num_inputs(); ++i) {
    const std::optional<SymShape>& s = ctx.in(i).shape;
    if (!s) {
      axis_known = false;
      continue;
    }
    for (size_t d = 0; d < *rank; ++d) {
      const Dim& dim = (*s)[d];
      if (static_cast<int>(d) == axis) {
        if (dim.is_known()) {
          axis_sum += dim.value;
        } else {
          axis_known = false;
        }
        continue;
      }
      // The other dims must agree: take the most informative one and reject known mismatches.
      Dim& o = out[d];
      if (dim.is_known()) {
        if (o.is_known() && o.value != dim.value) {
          return ctx.error("inputs disagree on dim {} ({} vs {})", d, o.value, dim.value);
        }
        o = dim;
      } else if (!o.is_known() && o.symbol.empty()) {
        o = dim;
      }
    }
  }
  out[static_cast<size_t>(axis)] = axis_known ? Dim::known(axis_sum) : Dim{};
  // One input with an unknown axis dim: the sum is that symbol only if all others add 0.
  if (!axis_known && ctx.num_inputs() == 1 && ctx.in(0).shape) {
    out[static_cast<size_t>(axis)] = (*ctx.in(0).shape)[static_cast<size_t>(axis)];
  }
  ctx.set_output(0, dtype, std::move(out));
  return {};
}

Status concat_reference(ir::KernelContext& ctx) {
  Tensor& y = ctx.out(0);
  const size_t rank = y.shape().size();
  QF_ASSIGN_OR_RETURN(int axis,
                      ir::dim_axis(ctx, concat_axis(ctx.node), static_cast<int64_t>(rank)));
  const size_t a = static_cast<size_t>(axis);
  const size_t esize = dtype_size(y.dtype());
  const int64_t outer = outer_size(y.shape(), a);
  const size_t out_block = static_cast<size_t>(y.shape()[a] * inner_size(y.shape(), a)) * esize;
  auto* dst = static_cast<std::byte*>(y.raw());
  size_t offset = 0;  // bytes into each output block
  for (size_t i = 0; i < ctx.inputs.size(); ++i) {
    const Tensor& x = ctx.in(i);
    if (x.dtype() != y.dtype()) return ctx.error("inputs have different element types");
    const size_t block = static_cast<size_t>(x.shape()[a] * inner_size(x.shape(), a)) * esize;
    const auto* src = static_cast<const std::byte*>(x.raw());
    for (int64_t o = 0; o < outer; ++o) {
      if (block > 0) {
        std::memcpy(dst + static_cast<size_t>(o) * out_block + offset,
                    src + static_cast<size_t>(o) * block, block);
      }
    }
    offset += block;
  }
  return {};
}

QF_REGISTER_OP(
    {.op_type = "Concat", .infer = concat_infer, .reference = concat_reference, .min_opset = 1});

// ---------------------------------------------------------------------------------------------
// Split. Before opset 13 the sizes were the `split` attribute; canonicalisation makes them
// input 1. Without sizes the dim splits evenly into one part per output, or at opset 18 into
// `num_outputs` parts of ceil(dim / n) with a smaller last part.

Status split_canonicalize(ir::Node& node, ir::Graph& g) {
  if (node.has_input(1) || !node.attrs.has("split")) return {};
  const std::vector<int64_t> split = node.attrs.get_ints("split");
  ir::Value* c =
      g.add_constant(node.name + "_split",
                     Tensor::from_vector<int64_t>({static_cast<int64_t>(split.size())}, split));
  g.set_input(&node, 1, c);
  node.attrs.erase("split");
  return {};
}

// Sizes of the parts along the axis of length `dim`, or an error naming the node.
template <typename Ctx>
Result<std::vector<int64_t>> split_sizes(const Ctx& ctx, const std::vector<int64_t>* given,
                                         int64_t dim, size_t num_outputs) {
  if (given) {
    if (given->size() != num_outputs) {
      return ctx.error("'split' has {} entries but the node has {} outputs", given->size(),
                       num_outputs);
    }
    int64_t sum = 0;
    for (int64_t s : *given) {
      if (s < 0) return ctx.error("'split' has negative size {}", s);
      if (s > dim) return ctx.error("'split' size {} exceeds the axis size {}", s, dim);
      sum += s;
    }
    if (sum != dim) {
      return ctx.error("'split' sizes add up to {} but the axis has size {}", sum, dim);
    }
    return *given;
  }
  const int64_t n = static_cast<int64_t>(num_outputs);
  if (n == 0) return ctx.error("has no outputs");
  if (ctx.attrs().has("num_outputs")) {
    if (ctx.attrs().get_int("num_outputs", 0) != n) {
      return ctx.error("num_outputs is {} but the node has {} outputs",
                       ctx.attrs().get_int("num_outputs", 0), n);
    }
    const int64_t chunk = (dim + n - 1) / n;
    std::vector<int64_t> sizes(num_outputs, chunk);
    sizes.back() = dim - chunk * (n - 1);
    if (sizes.back() < 0) {
      return ctx.error("cannot split an axis of size {} into {} parts of {}", dim, n, chunk);
    }
    return sizes;
  }
  if (dim % n != 0) {
    return ctx.error("cannot split an axis of size {} evenly into {} outputs", dim, n);
  }
  return std::vector<int64_t>(num_outputs, dim / n);
}

Status split_infer(ir::InferContext& ctx) {
  if (!ctx.has_input(0)) return ctx.error("input 0 (input) is required");
  const DType dtype = ctx.in(0).dtype;
  const std::optional<SymShape>& in = ctx.in(0).shape;
  const size_t n = ctx.outputs.size();
  if (!in) {
    for (size_t i = 0; i < n; ++i) ctx.set_output(i, dtype, std::nullopt);
    return {};
  }
  QF_ASSIGN_OR_RETURN(int axis, ir::dim_axis(ctx, ctx.attrs().get_int("axis", 0),
                                             static_cast<int64_t>(in->size())));
  const Dim& dim = (*in)[static_cast<size_t>(axis)];
  const auto given = ctx.has_input(1) ? ir::known_ints(ctx, 1) : std::nullopt;
  std::vector<Dim> parts(n);
  if (ctx.has_input(1) && !given) {
    // sizes unknown: the parts' dims along the axis stay unknown
  } else if (dim.is_known()) {
    QF_ASSIGN_OR_RETURN(std::vector<int64_t> sizes,
                        split_sizes(ctx, given ? &*given : nullptr, dim.value, n));
    for (size_t i = 0; i < n; ++i) parts[i] = Dim::known(sizes[i]);
  } else if (given) {
    for (size_t i = 0; i < n && i < given->size(); ++i) parts[i] = Dim::known((*given)[i]);
  } else if (n == 1) {
    parts[0] = dim;
  }
  for (size_t i = 0; i < n; ++i) {
    SymShape s = *in;
    s[static_cast<size_t>(axis)] = parts[i];
    ctx.set_output(i, dtype, std::move(s));
  }
  return {};
}

Status split_reference(ir::KernelContext& ctx) {
  const Tensor& x = ctx.in(0);
  QF_ASSIGN_OR_RETURN(int axis, ir::dim_axis(ctx, ctx.attrs().get_int("axis", 0), x.rank()));
  const size_t a = static_cast<size_t>(axis);
  const size_t esize = dtype_size(x.dtype());
  const int64_t outer = outer_size(x.shape(), a);
  const int64_t inner = inner_size(x.shape(), a);
  const size_t in_block = static_cast<size_t>(x.shape()[a] * inner) * esize;
  const auto* src = static_cast<const std::byte*>(x.raw());
  size_t offset = 0;
  for (size_t i = 0; i < ctx.num_outputs(); ++i) {
    Tensor& y = ctx.out(i);
    if (!y.defined()) continue;  // omitted optional output: nothing to write
    if (y.rank() != x.rank()) return ctx.error("output {} has the wrong rank", i);
    const size_t block = static_cast<size_t>(y.shape()[a] * inner) * esize;
    if (offset + block > in_block) return ctx.error("outputs exceed the input along the axis");
    auto* dst = static_cast<std::byte*>(y.raw());
    for (int64_t o = 0; o < outer; ++o) {
      if (block > 0) {
        std::memcpy(dst + static_cast<size_t>(o) * block,
                    src + static_cast<size_t>(o) * in_block + offset, block);
      }
    }
    offset += block;
  }
  return {};
}

QF_REGISTER_OP({.op_type = "Split",
                .infer = split_infer,
                .reference = split_reference,
                .canonicalize = split_canonicalize,
                .min_opset = 1});

}  // namespace
}  // namespace qf::ops
