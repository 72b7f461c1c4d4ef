// Gemm (alpha * A' * B' + beta * C) and MatMul (numpy matmul: batched, broadcast, 1-D operands).
// Both run through gemm_accumulate, whose i-k-j loop order keeps the inner loop on contiguous
// rows of B and the output.
#include <algorithm>

#include "ops/elementwise.h"
#include "ops/nn_common.h"

namespace qf::ops {
namespace {

bool is_matmul_type(DType t) {
  return dtype_is_float(t) || t == DType::kI32 || t == DType::kI64 || t == DType::kU32 ||
         t == DType::kU64;
}

Status check_operand_types(const ir::InferContext& ctx) {
  const DType a = ctx.in(0).dtype, b = ctx.in(1).dtype;
  for (DType t : {a, b}) {
    if (t != DType::kUndefined && !is_matmul_type(t)) {
      return unsupported("{}: element type {} is not supported", ctx.node.label(), dtype_tag(t));
    }
  }
  if (a != DType::kUndefined && b != DType::kUndefined && a != b) {
    return ctx.error("A has element type {} but B has {}", dtype_tag(a), dtype_tag(b));
  }
  return {};
}

// Calls fn.template operator()<T>() for the types the typed kernels are instantiated for.
template <typename Fn>
bool visit_matmul_type(DType t, Fn&& fn) {
  switch (t) {
    case DType::kF32:
      fn.template operator()<float>();
      return true;
    case DType::kF64:
      fn.template operator()<double>();
      return true;
    case DType::kI32:
      fn.template operator()<int32_t>();
      return true;
    case DType::kI64:
      fn.template operator()<int64_t>();
      return true;
    case DType::kU32:
      fn.template operator()<uint32_t>();
      return true;
    case DType::kU64:
      fn.template operator()<uint64_t>();
      return true;
    default:
      return false;
  }
}

// ---------------------------------------------------------------------------------------------
// MatMul

// numpy's promotion of 1-D operands: A [K] reads as [1, K], B [K] as [K, 1]; the added dims are
// dropped from the result.
template <typename DimT>
std::vector<DimT> as_matrix(std::vector<DimT> s, bool is_a, DimT one) {
  if (s.size() == 1) s.insert(is_a ? s.begin() : s.end(), one);
  return s;
}

Status infer_matmul(ir::InferContext& ctx) {
  if (!ctx.has_input(0) || !ctx.has_input(1)) return ctx.error("inputs A and B are required");
  QF_RETURN_IF_ERROR(check_operand_types(ctx));
  const DType dtype = ctx.in(0).dtype;
  const std::optional<ir::SymShape>& as = ctx.in(0).shape;
  const std::optional<ir::SymShape>& bs = ctx.in(1).shape;
  if (!as || !bs) {
    ctx.set_output(0, dtype, std::nullopt);
    return {};
  }
  if (as->empty() || bs->empty()) return ctx.error("MatMul does not take scalar operands");
  const ir::SymShape a = as_matrix(*as, true, ir::Dim::known(1));
  const ir::SymShape b = as_matrix(*bs, false, ir::Dim::known(1));
  const ir::Dim& ka = a[a.size() - 1];
  const ir::Dim& kb = b[b.size() - 2];
  if (ka.is_known() && kb.is_known() && ka.value != kb.value) {
    return ctx.error("inner dimensions differ: A is {} and B is {}", ir::sym_shape_str(as),
                     ir::sym_shape_str(bs));
  }
  QF_ASSIGN_OR_RETURN(ir::SymShape out,
                      ir::broadcast_shapes(ctx, ir::SymShape(a.begin(), a.end() - 2),
                                           ir::SymShape(b.begin(), b.end() - 2)));
  if (as->size() > 1) out.push_back(a[a.size() - 2]);
  if (bs->size() > 1) out.push_back(b[b.size() - 1]);
  ctx.set_output(0, dtype, std::move(out));
  return {};
}

template <typename T>
void matmul_typed(ir::KernelContext& ctx) {
  const Shape a = as_matrix<int64_t>(ctx.in(0).shape(), true, 1);
  const Shape b = as_matrix<int64_t>(ctx.in(1).shape(), false, 1);
  const int64_t m = a[a.size() - 2], k = a.back(), n = b.back();
  const Shape a_batch(a.begin(), a.end() - 2), b_batch(b.begin(), b.end() - 2);
  const Shape batch = ir::broadcast_concrete(a_batch, b_batch);
  const T* pa = ctx.in(0).data<T>();
  const T* pb = ctx.in(1).data<T>();
  T* py = ctx.out(0).data<T>();
  std::fill(py, py + ctx.out(0).numel(), T(0));
  for_each_broadcast(a_batch, b_batch, batch, [&](int64_t i, int64_t ia, int64_t ib) {
    gemm_accumulate<T>(m, n, k, pa + ia * m * k, k, 1, pb + ib * k * n, n, py + i * m * n, n);
  });
}

Status matmul_reference(ir::KernelContext& ctx) {
  const DType t = ctx.in(0).dtype();
  if (is_half(t)) return run_half_as_f32(ctx, matmul_reference);
  if (ctx.in(1).dtype() != t) return ctx.error("A and B must have the same element type");
  if (!visit_matmul_type(t, [&]<typename T>() { matmul_typed<T>(ctx); })) {
    return ctx.unsupported_here("element type {} is not supported", dtype_tag(t));
  }
  return {};
}

// Every output element is a K-long dot product.
std::optional<int64_t> matmul_macs(const ir::Node& node) {
  if (!node.has_input(0) || !node.has_output(0)) return std::nullopt;
  const auto out = known_numel(node.outputs[0]);
  const auto& as = node.inputs[0]->shape;
  if (!out || !as || as->empty() || !as->back().is_known()) return std::nullopt;
  return *out * as->back().value;
}

// ---------------------------------------------------------------------------------------------
// Gemm

Status infer_gemm(ir::InferContext& ctx) {
  if (!ctx.has_input(0) || !ctx.has_input(1)) return ctx.error("inputs A and B are required");
  QF_RETURN_IF_ERROR(check_operand_types(ctx));
  const DType dtype = ctx.in(0).dtype;
  const std::optional<ir::SymShape>& as = ctx.in(0).shape;
  const std::optional<ir::SymShape>& bs = ctx.in(1).shape;
  if ((as && as->size() != 2) || (bs && bs->size() != 2)) {
    return ctx.error("A and B must be matrices, got shapes {} and {}", ir::sym_shape_str(as),
                     ir::sym_shape_str(bs));
  }
  const bool trans_a = ctx.attrs().get_int("transA", 0) != 0;
  const bool trans_b = ctx.attrs().get_int("transB", 0) != 0;
  ir::SymShape out(2);
  ir::Dim ka, kb;
  if (as) {
    out[0] = (*as)[trans_a ? 1 : 0];
    ka = (*as)[trans_a ? 0 : 1];
  }
  if (bs) {
    out[1] = (*bs)[trans_b ? 0 : 1];
    kb = (*bs)[trans_b ? 1 : 0];
  }
  if (ka.is_known() && kb.is_known() && ka.value != kb.value) {
    return ctx.error("inner dimensions differ: A' is {}x{} and B' is {}x{} (transA={}, transB={})",
                     out[0].is_known() ? std::to_string(out[0].value) : "?", ka.value, kb.value,
                     out[1].is_known() ? std::to_string(out[1].value) : "?", trans_a, trans_b);
  }
  // C is broadcast one way, to [M, N].
  if (ctx.has_input(2) && ctx.in(2).shape) {
    const ir::SymShape& cs = *ctx.in(2).shape;
    bool ok = cs.size() <= 2;
    for (size_t i = 0; ok && i < cs.size(); ++i) {
      const ir::Dim& c = cs[i];
      const ir::Dim& target = out[2 - cs.size() + i];
      ok = !c.is_known() || c.value == 1 || !target.is_known() || c.value == target.value;
    }
    if (!ok) {
      return ctx.error("C of shape {} cannot be broadcast to the output {}", ir::sym_shape_str(cs),
                       ir::sym_shape_str(out));
    }
  }
  ctx.set_output(0, dtype, std::move(out));
  return {};
}

template <typename T>
void gemm_typed(ir::KernelContext& ctx) {
  const Tensor& a = ctx.in(0);
  const Tensor& b = ctx.in(1);
  Tensor& y = ctx.out(0);
  const bool trans_a = ctx.attrs().get_int("transA", 0) != 0;
  const bool trans_b = ctx.attrs().get_int("transB", 0) != 0;
  const int64_t m = y.dim(0), n = y.dim(1), k = a.dim(trans_a ? 0 : 1);
  // gemm_accumulate reads A through strides but wants rows of B: transpose B once if needed.
  std::vector<T> b_t;
  const T* pb = b.data<T>();
  if (trans_b) {
    b_t.resize(static_cast<size_t>(k * n));
    for (int64_t j = 0; j < n; ++j) {
      for (int64_t p = 0; p < k; ++p) b_t[static_cast<size_t>(p * n + j)] = pb[j * k + p];
    }
    pb = b_t.data();
  }
  T* py = y.data<T>();
  std::fill(py, py + y.numel(), T(0));
  gemm_accumulate<T>(m, n, k, a.data<T>(), trans_a ? 1 : k, trans_a ? m : 1, pb, n, py, n);

  const double alpha = ctx.attrs().get_float("alpha", 1.0f);
  const double beta = ctx.attrs().get_float("beta", 1.0f);
  if (alpha != 1.0) {
    for (int64_t i = 0; i < y.numel(); ++i) py[i] = from_double<T>(alpha * to_double(py[i]));
  }
  if (ctx.has_input(2) && beta != 0.0) {
    const Tensor& c = ctx.in(2);
    const T* pc = c.data<T>();
    const std::vector<int64_t> cs = ir::broadcast_strides(c.shape(), y.shape());
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t j = 0; j < n; ++j) {
        py[i * n + j] =
            from_double<T>(to_double(py[i * n + j]) + beta * to_double(pc[i * cs[0] + j * cs[1]]));
      }
    }
  }
}

Status gemm_reference(ir::KernelContext& ctx) {
  const DType t = ctx.in(0).dtype();
  if (is_half(t)) return run_half_as_f32(ctx, gemm_reference);
  if (ctx.in(1).dtype() != t || (ctx.has_input(2) && ctx.in(2).dtype() != t)) {
    return ctx.error("A, B and C must have the same element type");
  }
  if (!visit_matmul_type(t, [&]<typename T>() { gemm_typed<T>(ctx); })) {
    return ctx.unsupported_here("element type {} is not supported", dtype_tag(t));
  }
  return {};
}

std::optional<int64_t> gemm_macs(const ir::Node& node) {
  if (!node.has_input(0) || !node.has_output(0)) return std::nullopt;
  const auto out = known_numel(node.outputs[0]);
  const auto& as = node.inputs[0]->shape;
  if (!out || !as || as->size() != 2) return std::nullopt;
  const ir::Dim& k = (*as)[node.attrs.get_int("transA", 0) != 0 ? 0 : 1];
  if (!k.is_known()) return std::nullopt;
  return *out * k.value;
}

QF_REGISTER_OP({.op_type = "MatMul",
                .infer = infer_matmul,
                .reference = matmul_reference,
                .macs = matmul_macs,
                .min_opset = 1});
// Gemm before opset 11 requires C and has a `broadcast` flag; one-way broadcasting of C covers
// both of its settings.
QF_REGISTER_OP({.op_type = "Gemm",
                .infer = infer_gemm,
                .reference = gemm_reference,
                .macs = gemm_macs,
                .min_opset = 1});

}  // namespace
}  // namespace qf::ops
