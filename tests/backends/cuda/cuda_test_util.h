// What every cuda backend test starts with: finding the backend and skipping cleanly where this
// build has no cuda backend or the machine has no usable device (CI has none).
#pragma once

#include <gtest/gtest.h>

#include "backends/cpu/cpu_test_util.h"

namespace qf::testing {

inline const runtime::Backend* cuda_backend() {
  return runtime::find_backend("cuda");
}

inline bool have_cuda_device() {
  return cuda_backend() && cuda_backend()->supports(runtime::Precision::kFP32);
}

// The note of the kernel that runs `node` (how its tactic was chosen, for instance).
inline std::string note_of(const runtime::EngineInfo& info, const std::string& node) {
  for (const runtime::KernelInfo& k : info.kernels) {
    if (k.node == node) return k.note;
  }
  return "no kernel for " + node;
}

}  // namespace qf::testing

#define QF_REQUIRE_CUDA_DEVICE()                                                         \
  do {                                                                                   \
    if (!::qf::testing::cuda_backend()) GTEST_SKIP() << "no cuda backend in this build"; \
    if (!::qf::testing::have_cuda_device()) {                                            \
      GTEST_SKIP() << "no usable CUDA device: "                                          \
                   << ::qf::testing::cuda_backend()->unsupported_reason(                 \
                          ::qf::runtime::Precision::kFP32);                              \
    }                                                                                    \
  } while (0)
