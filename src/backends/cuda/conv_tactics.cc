// The candidates of a cuDNN convolution's tactic choice (tactic_choice.cc): every algorithm cuDNN
// offers for the layer (within the workspace limit), each timed in the form the step will run it
// — the fused convolution+bias+activation call where that algorithm fuses, else the convolution
// and our epilogue kernel. cuDNN's heuristic order alone picked algorithms that could not fuse,
// or slow ones for thin inputs; cudnnFind times each candidate once, cold, and without the
// epilogue.
#include <fmt/format.h>

#include "backends/cuda/lowering.h"
#include "backends/cuda/tactic_timer.h"

namespace qf::cuda {

std::string cudnn_tactic_name(const ConvCandidate& c) {
  return fmt::format("cudnn algo {} math {}", static_cast<int>(c.algo), static_cast<int>(c.math));
}

Result<float> Builder::time_conv_candidate(const ConvCandidate& c, const Shape& xs, const Shape& ys,
                                           DType t, int wb, int bb, int fb, bool with_z,
                                           const ConvEnqueue& run) {
  const int64_t elem = static_cast<int64_t>(dtype_size(t));
  // Scratch operands of the layer's shapes; the inputs are zeros (the time of tensor-core
  // kernels does not depend on the values).
  QF_ASSIGN_OR_RETURN(auto x, DeviceMemory::allocate(shape_numel(xs) * elem));
  QF_ASSIGN_OR_RETURN(auto y, DeviceMemory::allocate(shape_numel(ys) * elem));
  QF_CUDA_RETURN(cudaMemset(x->ptr, 0, static_cast<size_t>(x->bytes)));
  std::shared_ptr<DeviceMemory> z, workspace, bias;
  if (with_z) {
    QF_ASSIGN_OR_RETURN(z, DeviceMemory::allocate(shape_numel(ys) * elem));
    QF_CUDA_RETURN(cudaMemset(z->ptr, 0, static_cast<size_t>(z->bytes)));
  }
  if (c.workspace > 0) {
    QF_ASSIGN_OR_RETURN(workspace, DeviceMemory::allocate(c.workspace));
  }
  // A bias computed by the graph has no device memory before the plan runs: scratch instead.
  const void* bias_ptr = bb >= 0 ? plan_->buf(bb).ptr : nullptr;
  if (bb >= 0 && !bias_ptr) {
    QF_ASSIGN_OR_RETURN(bias, DeviceMemory::allocate(ys[1] * elem));
    QF_CUDA_RETURN(cudaMemset(bias->ptr, 0, static_cast<size_t>(bias->bytes)));
    bias_ptr = bias->ptr;
  }
  const void* fused_bias = fb >= 0 ? plan_->buf(fb).ptr : nullptr;
  return time_tactic(ctx_.stream, [&] {
    return run(x->ptr, plan_->buf(wb).ptr, bias_ptr, fused_bias, z ? z->ptr : nullptr, y->ptr,
               workspace ? workspace->ptr : nullptr, c.workspace, ctx_.cudnn, ctx_.stream);
  });
}

}  // namespace qf::cuda
