// Tactic selection, as TensorRT's builder does it: each layer's candidate implementations (cuDNN
// algorithms for a convolution, tile shapes and split-K factors for our int8 kernel) are timed in
// the form the step will run them and the fastest is kept; an engine file's recorded choice or
// the timing cache's, where there is one, is taken without timing.
#include <fmt/format.h>

#include <cstdio>
#include <cstdlib>
#include <limits>

#include "backends/cuda/lowering.h"

namespace qf::cuda {

Result<TacticChoice> Builder::choose_tactic(const ir::Node& node,
                                            const std::vector<std::string>& candidates,
                                            const std::string& signature,
                                            const std::function<Result<float>(size_t)>& time) {
  if (candidates.size() == 1) return TacticChoice{0, "only candidate"};
  // Every choice among several is recorded, so that an engine file rebuilds the same kernels.
  auto chosen = [&](size_t i, std::string how) {
    ctx_.chosen_tactics[signature] = candidates[i];
    return TacticChoice{i, std::move(how)};
  };
  auto index_of = [&](const std::string& name) {
    for (size_t i = 0; i < candidates.size(); ++i) {
      if (candidates[i] == name) return i;
    }
    return candidates.size();
  };
  // A choice fixed in advance (an engine file's); one no longer offered is timed anew.
  if (auto it = ctx_.fixed_tactics.find(signature); it != ctx_.fixed_tactics.end()) {
    if (const size_t i = index_of(it->second); i < candidates.size()) {
      ++ctx_.fixed_tactic_hits;
      return chosen(i, "engine file");
    }
  }
  // QFORGE_CUDA_NO_TIMING=1: the heuristic's first choice, untimed (a quick build, or a
  // comparison).
  static const bool no_timing = std::getenv("QFORGE_CUDA_NO_TIMING") != nullptr;
  if (no_timing) return chosen(0, "heuristic, untimed");
  runtime::TimingCache* cache = ctx_.timing_cache;
  if (cache) {
    if (const std::optional<std::string> tactic = cache->find(signature)) {
      // A tactic no longer offered for the layer is timed again and replaced below.
      if (const size_t i = index_of(*tactic); i < candidates.size()) {
        return chosen(i, "timing cache");
      }
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
                     candidates[i].c_str(), ms.status().message().c_str());
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
    return internal_error("{}: every candidate implementation failed when timed", node.label());
  }
  if (cache) cache->put(signature, candidates[best]);
  return chosen(best, fmt::format("fastest of {} timed", timed));
}

}  // namespace qf::cuda
