#include "ops/elementwise.h"

namespace qf::ops {

Status infer_same_as_input(ir::InferContext& ctx) {
  if (!ctx.has_input(0)) return ctx.error("input 0 is required");
  ctx.propagate(0, 0);
  return {};
}

Status copy_strided_view(const ir::KernelContext& ctx, const Tensor& x, Tensor& y, int64_t base,
                         const std::vector<int64_t>& strides) {
  const Shape& out_shape = y.shape();
  const size_t rank = out_shape.size();
  const bool ok = visit_dtype(x.dtype(), [&]<typename T>() {
    const T* src = x.data<T>();
    T* dst = y.data<T>();
    std::vector<int64_t> idx(rank, 0);
    int64_t offset = base;
    for (int64_t i = 0; i < y.numel(); ++i) {
      dst[i] = src[offset];
      for (size_t d = rank; d-- > 0;) {  // odometer step, moving the source offset along
        ++idx[d];
        offset += strides[d];
        if (idx[d] < out_shape[d]) break;
        offset -= strides[d] * out_shape[d];
        idx[d] = 0;
      }
    }
  });
  if (!ok) return ctx.error("input has no element type");
  return {};
}

Status require_float(const ir::InferContext& ctx, size_t input) {
  const DType t = ctx.in(input).dtype;
  if (t != DType::kUndefined && !dtype_is_float(t)) {
    return unsupported("{}: element type {} is not supported (floating point only)",
                       ctx.node.label(), dtype_tag(t));
  }
  return {};
}

}  // namespace qf::ops
