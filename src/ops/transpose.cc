// Transpose: output dim i is input dim perm[i] (reversed dims when perm is absent).
#include <algorithm>

#include "ops/elementwise.h"

namespace qf::ops {
namespace {

using ir::SymShape;

std::vector<int64_t> default_perm(size_t rank) {
  std::vector<int64_t> perm(rank);
  for (size_t i = 0; i < rank; ++i) perm[i] = static_cast<int64_t>(rank - 1 - i);
  return perm;
}

// The permutation, validated against `rank`; negative entries count from the end.
template <typename Ctx>
Result<std::vector<int64_t>> permutation(const Ctx& ctx, size_t rank) {
  if (!ctx.attrs().has("perm")) return default_perm(rank);
  std::vector<int64_t> perm = ctx.attrs().get_ints("perm");
  if (perm.size() != rank) {
    return ctx.error("perm has {} entries but the input has rank {}", perm.size(), rank);
  }
  std::vector<bool> seen(rank, false);
  for (int64_t& p : perm) {
    const int64_t r = static_cast<int64_t>(rank);
    if (p < -r || p >= r) return ctx.error("perm entry {} is out of range for rank {}", p, rank);
    if (p < 0) p += r;
    if (seen[static_cast<size_t>(p)]) return ctx.error("perm repeats axis {}", p);
    seen[static_cast<size_t>(p)] = true;
  }
  return perm;
}

Status transpose_infer(ir::InferContext& ctx) {
  if (!ctx.has_input(0)) return ctx.error("input 0 (data) is required");
  const std::optional<SymShape>& in = ctx.in(0).shape;
  if (!in) {
    const size_t n = ctx.attrs().get_ints("perm").size();
    ctx.set_output(0, ctx.in(0).dtype, n > 0 ? std::optional<SymShape>(SymShape(n)) : std::nullopt);
    return {};
  }
  QF_ASSIGN_OR_RETURN(std::vector<int64_t> perm, permutation(ctx, in->size()));
  SymShape out;
  for (int64_t p : perm) out.push_back((*in)[static_cast<size_t>(p)]);
  ctx.set_output(0, ctx.in(0).dtype, std::move(out));
  return {};
}

Status transpose_reference(ir::KernelContext& ctx) {
  const Tensor& x = ctx.in(0);
  Tensor& y = ctx.out(0);
  QF_ASSIGN_OR_RETURN(std::vector<int64_t> perm, permutation(ctx, x.shape().size()));
  // Walking the output in order, the input offset advances by the stride of the permuted dim.
  const std::vector<int64_t> in_strides = ir::strides_of(x.shape());
  const size_t rank = y.shape().size();
  std::vector<int64_t> strides(rank);
  for (size_t i = 0; i < rank; ++i) strides[i] = in_strides[static_cast<size_t>(perm[i])];
  return copy_strided_view(ctx, x, y, 0, strides);
}

QF_REGISTER_OP({.op_type = "Transpose",
                .infer = transpose_infer,
                .reference = transpose_reference,
                .min_opset = 1});

}  // namespace
}  // namespace qf::ops
