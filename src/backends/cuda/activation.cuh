// Device-side activation functions shared by the backend's .cu files (kernels.cu, the int8
// kernels' epilogue): the same formulas as ops::apply_activation (there in double; fp32 here).
#pragma once

#include <cuda_runtime.h>

#include "backends/cuda/kernels.h"

namespace qf::cuda {

__device__ __forceinline__ float activate(const ActParams& a, float x) {
  switch (a.kind) {
    case Act::kNone:
      return x;
    case Act::kRelu:
      return x > 0.f ? x : (x == x ? 0.f : x);
    case Act::kLeakyRelu:
      return x >= 0.f ? x : x * a.alpha;
    case Act::kClip: {
      const float v = x < a.alpha ? a.alpha : x;
      return a.beta < v ? a.beta : v;
    }
    case Act::kSigmoid:
      return 1.f / (1.f + expf(-x));
    case Act::kTanh:
      return tanhf(x);
    case Act::kHardSigmoid:
      return fmaxf(0.f, fminf(1.f, a.alpha * x + a.beta));
    case Act::kHardSwish:
      return x * fmaxf(0.f, fminf(1.f, x / 6.f + 0.5f));
    case Act::kSiLU:
      return x / (1.f + expf(-x));
    case Act::kGELU:
      return 0.5f * x * (1.f + erff(x * 0.70710678118654752f));
    case Act::kExp:
      return expf(x);
    case Act::kLog:
      return logf(x);
    case Act::kSqrt:
      return sqrtf(x);
    case Act::kErf:
      return erff(x);
    case Act::kAbs:
      return fabsf(x);
    case Act::kNeg:
      return -x;
    case Act::kReciprocal:
      return 1.f / x;
  }
  return x;
}

}  // namespace qf::cuda
