// Tactic selection for cuDNN convolutions, as TensorRT's builder does it: every algorithm cuDNN
// offers for the layer (within the workspace limit) is run in the form the step will run it —
// the fused convolution+bias+activation call where that algorithm fuses, else the convolution
// and our epilogue kernel — and the fastest is kept. cuDNN's heuristic order alone picked
// algorithms that could not fuse, or slow ones for thin inputs; cudnnFind times each candidate
// once, cold, and without the epilogue.
#include <fmt/format.h>

#include <cstdio>
#include <cstdlib>
#include <limits>

#include "backends/cuda/lowering.h"
#include "backends/cuda/tactic_timer.h"

namespace qf::cuda {

namespace {

std::string tactic_name(const ConvCandidate& c) {
  return fmt::format("cudnn algo {} math {}", static_cast<int>(c.algo), static_cast<int>(c.math));
}

}  // namespace

Result<ConvChoice> Builder::choose_conv_tactic(const ir::Node& node,
                                               const std::vector<ConvCandidate>& candidates,
                                               const std::string& signature,
                                               const std::function<Result<float>(size_t)>& time) {
  if (candidates.size() == 1) return ConvChoice{0, "only candidate"};
  // Every choice among several is recorded, so that an engine file rebuilds the same kernels.
  auto chosen = [&](size_t i, std::string how) {
    ctx_.chosen_tactics[signature] = tactic_name(candidates[i]);
    return ConvChoice{i, std::move(how)};
  };
  // A choice fixed in advance (an engine file's); one this cuDNN no longer offers is timed anew.
  if (auto it = ctx_.fixed_tactics.find(signature); it != ctx_.fixed_tactics.end()) {
    for (size_t i = 0; i < candidates.size(); ++i) {
      if (tactic_name(candidates[i]) == it->second) {
        ++ctx_.fixed_tactic_hits;
        return chosen(i, "engine file");
      }
    }
  }
  // QFORGE_CUDA_NO_TIMING=1: cuDNN's first choice, untimed (a quick build, or a comparison).
  static const bool no_timing = std::getenv("QFORGE_CUDA_NO_TIMING") != nullptr;
  if (no_timing) return chosen(0, "heuristic, untimed");
  runtime::TimingCache* cache = ctx_.timing_cache;
  if (cache) {
    if (const std::optional<std::string> tactic = cache->find(signature)) {
      for (size_t i = 0; i < candidates.size(); ++i) {
        if (tactic_name(candidates[i]) == *tactic) return chosen(i, "timing cache");
      }
      // A tactic this cuDNN no longer offers for the layer: timed again and replaced below.
    }
  }
  size_t best = candidates.size();
  float best_ms = std::numeric_limits<float>::infinity();
  int timed = 0;
  for (size_t i = 0; i < candidates.size(); ++i) {
    Result<float> ms = time(i);
    cudaGetLastError();  // a candidate's refusal is not an error of the build
    if (!ms.ok()) {
      if (verbose()) {
        std::fprintf(stderr, "qforge cuda: %s: %s refused while timing: %s\n", node.label().c_str(),
                     tactic_name(candidates[i]).c_str(), ms.status().message().c_str());
      }
      continue;
    }
    ++timed;
    if (*ms < best_ms) {
      best_ms = *ms;
      best = i;
    }
  }
  if (best == candidates.size()) {
    return internal_error("{}: every cuDNN algorithm failed when timed", node.label());
  }
  if (cache) cache->put(signature, tactic_name(candidates[best]));
  return chosen(best, fmt::format("fastest of {} timed", timed));
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
