// Gemm / MatMul and their fused forms: cuBLASLt, with C, the bias and ReLU in its epilogue where
// it has one and the epilogue kernel for the rest.
#include <fmt/format.h>

#include <algorithm>
#include <memory>
#include <utility>

#include "backends/cuda/lowering.h"
#include "ops/fused.h"

namespace qf::cuda {

namespace {

cudaDataType_t blas_type(DType t) {
  return t == DType::kF16 ? CUDA_R_16F : t == DType::kBF16 ? CUDA_R_16BF : CUDA_R_32F;
}

// RAII holder for the cuBLASLt descriptors a step keeps.
struct LtMatmul {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr, d = nullptr;
  cublasLtMatmulAlgo_t algo{};
  int64_t workspace = 0;
  ~LtMatmul() {
    if (desc) cublasLtMatmulDescDestroy(desc);
    if (a) cublasLtMatrixLayoutDestroy(a);
    if (b) cublasLtMatrixLayoutDestroy(b);
    if (c) cublasLtMatrixLayoutDestroy(c);
    if (d) cublasLtMatrixLayoutDestroy(d);
  }
};

}  // namespace

Result<bool> Builder::lower_gemm(const ir::Node& node, std::string* why) {
  const bool is_gemm = node.op_type == "Gemm" || node.op_type == "FusedGemm";
  const bool fused = node.domain == ops::kFusedDomain;
  const ir::Value* a = node.inputs[0];
  const ir::Value* bv = node.inputs[1];
  const ir::Value* y = node.outputs[0];
  if (!float_value(a) || !float_value(bv)) {
    *why = "only f32 matrix products run in cuBLASLt here";
    return false;
  }
  const Shape& as = shape(a);
  const Shape& bs = shape(bv);
  const Shape& ys = shape(y);
  bool trans_a = false, trans_b = false;
  float alpha = 1.f, beta = 1.f;
  int64_t m = 0, n = 0, k = 0, batch = 1;
  if (is_gemm) {
    trans_a = node.attrs.get_int("transA", 0) != 0;
    trans_b = node.attrs.get_int("transB", 0) != 0;
    alpha = node.attrs.get_float("alpha", 1.f);
    beta = node.attrs.get_float("beta", 1.f);
    if (as.size() != 2 || bs.size() != 2) {
      *why = "Gemm operands must be 2-D";
      return false;
    }
    m = trans_a ? as[1] : as[0];
    k = trans_a ? as[0] : as[1];
    n = trans_b ? bs[0] : bs[1];
  } else {
    if (as.size() < 2 || bs.size() < 2) {
      *why = "1-D MatMul operands";
      return false;
    }
    k = as.back();
    n = bs.back();
    if (bs.size() == 2) {
      m = shape_numel(as) / k;  // a 2-D B applies to every row of every batch of A
    } else if (as.size() == bs.size() && std::equal(as.begin(), as.end() - 2, bs.begin())) {
      m = as[as.size() - 2];
      batch = shape_numel(as) / (m * k);
    } else {
      *why = "MatMul with broadcast batch dims";
      return false;
    }
  }
  // Where C, Bias and the residual Z go: cuBLASLt's bias vector (length N), its C matrix (beta),
  // or the epilogue kernel.
  const ir::Value* bias = nullptr;
  const ir::Value* cmat = nullptr;
  float bias_scale = 1.f;
  if (node.has_input(2)) {
    const ir::Value* cv = node.inputs[2];
    const Shape& cs = shape(cv);
    if (!float_value(cv)) {
      *why = "a non-f32 bias";
      return false;
    }
    const bool vector = shape_numel(cs) == n && (cs.size() == 1 || (cs.size() == 2 && cs[0] == 1));
    if (!is_gemm || (vector && (beta == 1.f || known(cv)))) {
      if (!is_gemm && !(cs.size() == 1 && cs[0] == n)) {
        *why = "a MatMul bias that is not a vector of N";
        return false;
      }
      bias = cv;
      bias_scale = is_gemm ? beta : 1.f;
    } else if (cs == Shape{m, n} && batch == 1) {
      cmat = cv;
    } else {
      *why = fmt::format("Gemm's C of shape {} (only [N], [1, N] and [M, N] are lowered)",
                         shape_str(cs));
      return false;
    }
  }
  const ir::Value* z = fused && node.has_input(ops::kFusedResidualInput)
                           ? node.inputs[ops::kFusedResidualInput]
                           : nullptr;
  ops::ActivationSpec act;
  if (fused) {
    QF_ASSIGN_OR_RETURN(act, ops::read_activation(node));
  }
  float c_beta = cmat ? beta : 0.f;
  bool z_in_epilogue = false;
  if (z && !cmat) {
    cmat = z;  // the residual is cuBLASLt's C matrix, added before its bias and ReLU
    c_beta = 1.f;
  } else if (z) {
    z_in_epilogue = true;
  }
  const bool lt_relu = act.kind == ops::Activation::kRelu && !z_in_epilogue;
  const bool own_epilogue = z_in_epilogue || (act.kind != ops::Activation::kNone && !lt_relu);

  const DType t = cdt();
  auto mm = std::make_shared<LtMatmul>();
  const cublasComputeType_t compute = ctx_.precision == runtime::Precision::kTF32
                                          ? CUBLAS_COMPUTE_32F_FAST_TF32
                                          : CUBLAS_COMPUTE_32F;
  QF_CUBLAS_RETURN(cublasLtMatmulDescCreate(&mm->desc, compute, CUDA_R_32F));
  // Row-major Y[M,N] = A B is column-major Y^T[N,M] = B^T A^T: cuBLASLt's A is our B.
  const cublasOperation_t op_a = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_b = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  QF_CUBLAS_RETURN(
      cublasLtMatmulDescSetAttribute(mm->desc, CUBLASLT_MATMUL_DESC_TRANSA, &op_a, sizeof(op_a)));
  QF_CUBLAS_RETURN(
      cublasLtMatmulDescSetAttribute(mm->desc, CUBLASLT_MATMUL_DESC_TRANSB, &op_b, sizeof(op_b)));
  cublasLtEpilogue_t epi = bias ? (lt_relu ? CUBLASLT_EPILOGUE_RELU_BIAS : CUBLASLT_EPILOGUE_BIAS)
                                : (lt_relu ? CUBLASLT_EPILOGUE_RELU : CUBLASLT_EPILOGUE_DEFAULT);
  QF_CUBLAS_RETURN(
      cublasLtMatmulDescSetAttribute(mm->desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof(epi)));
  const cudaDataType_t bt = blas_type(t);
  auto u64 = [](int64_t v) { return static_cast<uint64_t>(v); };
  if (trans_b) {
    QF_CUBLAS_RETURN(cublasLtMatrixLayoutCreate(&mm->a, bt, u64(k), u64(n), k));
  } else {
    QF_CUBLAS_RETURN(cublasLtMatrixLayoutCreate(&mm->a, bt, u64(n), u64(k), n));
  }
  if (trans_a) {
    QF_CUBLAS_RETURN(cublasLtMatrixLayoutCreate(&mm->b, bt, u64(m), u64(k), m));
  } else {
    QF_CUBLAS_RETURN(cublasLtMatrixLayoutCreate(&mm->b, bt, u64(k), u64(m), k));
  }
  QF_CUBLAS_RETURN(cublasLtMatrixLayoutCreate(&mm->c, bt, u64(n), u64(m), n));
  QF_CUBLAS_RETURN(cublasLtMatrixLayoutCreate(&mm->d, bt, u64(n), u64(m), n));
  if (batch > 1) {
    const int32_t count = static_cast<int32_t>(batch);
    const int64_t sa = n * k, sb = m * k, sd = m * n;
    const std::pair<cublasLtMatrixLayout_t, int64_t> layouts[] = {
        {mm->a, sa}, {mm->b, sb}, {mm->c, sd}, {mm->d, sd}};
    for (const auto& [l, stride] : layouts) {
      QF_CUBLAS_RETURN(cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT,
                                                        &count, sizeof(count)));
      QF_CUBLAS_RETURN(cublasLtMatrixLayoutSetAttribute(
          l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride, sizeof(stride)));
    }
  }
  cublasLtMatmulPreference_t pref = nullptr;
  QF_CUBLAS_RETURN(cublasLtMatmulPreferenceCreate(&pref));
  const uint64_t max_ws = static_cast<uint64_t>(kGemmWorkspace);
  cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &max_ws,
                                       sizeof(max_ws));
  cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  const cublasStatus_t hs = cublasLtMatmulAlgoGetHeuristic(ctx_.cublaslt, mm->desc, mm->a, mm->b,
                                                           mm->c, mm->d, pref, 1, &result, &found);
  cublasLtMatmulPreferenceDestroy(pref);
  if (hs != CUBLAS_STATUS_SUCCESS || found == 0) {
    *why = fmt::format("cuBLASLt has no algorithm for it ({})", cublasLtGetStatusString(hs));
    return false;
  }
  mm->algo = result.algo;
  mm->workspace = static_cast<int64_t>(result.workspaceSize);
  need_workspace(mm->workspace);

  QF_ASSIGN_OR_RETURN(const int ab, request_device(a, Layout::kPlain, t));
  QF_ASSIGN_OR_RETURN(const int bb, request_device(bv, Layout::kPlain, t));
  int biasb = -1, cb = -1, zb = -1;
  if (bias) {
    if (bias_scale != 1.f) {
      Tensor scaled = known(bias)->clone();
      for (float& v : scaled.span<float>()) v *= bias_scale;
      QF_ASSIGN_OR_RETURN(biasb, upload_weight(bias, scaled, Layout::kPlain, t,
                                               fmt::format("scaled {}", bias_scale)));
    } else {
      QF_ASSIGN_OR_RETURN(biasb, request_device(bias, Layout::kPlain, t));
    }
  }
  if (cmat) {
    QF_ASSIGN_OR_RETURN(cb, request_device(cmat, Layout::kPlain, t));
  }
  if (z_in_epilogue) {
    QF_ASSIGN_OR_RETURN(zb, request_device(z, Layout::kPlain, t));
  }
  const int yb = new_arena(t, ys, Layout::kPlain);
  info(y).buffers.push_back(yb);
  const ActParams ap = lt_relu ? ActParams{} : to_act(act);
  const int64_t count = shape_numel(ys);
  add_step(node.label(), {ab, bb, biasb, cb, zb, yb, plan_->workspace},
           [=](Plan& p, DeviceContext& c) -> Status {
             if (biasb >= 0) {
               void* bp = p.ptr(biasb);
               QF_CUBLAS_RETURN(cublasLtMatmulDescSetAttribute(
                   mm->desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bp, sizeof(bp)));
             }
             const void* cp = cb >= 0 ? p.ptr(cb) : p.ptr(yb);
             QF_CUBLAS_RETURN(cublasLtMatmul(c.cublaslt, mm->desc, &alpha, p.ptr(bb), mm->a,
                                             p.ptr(ab), mm->b, &c_beta, cp, mm->c, p.ptr(yb), mm->d,
                                             &mm->algo, p.ptr(p.workspace),
                                             static_cast<size_t>(mm->workspace), c.stream));
             if (!own_epilogue) return {};
             return launch_status(
                 launch_epilogue(p.ptr(yb), t, count, nullptr, 1, p.ptr(zb), ap, c.stream),
                 "the GEMM epilogue");
           });
  std::string impl = fmt::format("cublaslt_{}_{}{} [cuda]", is_gemm ? "gemm" : "matmul", dt(t),
                                 ctx_.precision == runtime::Precision::kTF32 ? "_tf32" : "");
  if (bias || lt_relu) impl += lt_relu ? " +bias_relu_epilogue" : " +bias_epilogue";
  if (own_epilogue) impl += " + epilogue_kernel";
  std::string op = is_gemm ? "Gemm" : "MatMul";
  if (z) op += "+Add";
  if (act.kind != ops::Activation::kNone) op += "+" + std::string(ops::activation_name(act.kind));
  add_kernel(node, op, impl);
  return true;
}

}  // namespace qf::cuda
