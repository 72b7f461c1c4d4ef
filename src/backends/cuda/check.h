// Error checks for the cuda backend's host code: a CUDA runtime, cuDNN or cuBLASLt call (or a
// kernel launch) that fails returns a Status naming the call and the library's message.
#pragma once

#include <cublasLt.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <string>

#include "qforge/status.h"

#define QF_CUDA_RETURN(expr)                                                            \
  do {                                                                                  \
    const cudaError_t qf_err_ = (expr);                                                 \
    if (qf_err_ != cudaSuccess) {                                                       \
      return internal_error("CUDA: {} failed: {}", #expr, cudaGetErrorString(qf_err_)); \
    }                                                                                   \
  } while (0)
#define QF_CUDNN_RETURN(expr)                                                            \
  do {                                                                                   \
    const cudnnStatus_t qf_st_ = (expr);                                                 \
    if (qf_st_ != CUDNN_STATUS_SUCCESS) {                                                \
      return internal_error("cuDNN: {} failed: {}", #expr, cudnnGetErrorString(qf_st_)); \
    }                                                                                    \
  } while (0)
#define QF_CUBLAS_RETURN(expr)                                                                  \
  do {                                                                                          \
    const cublasStatus_t qf_st_ = (expr);                                                       \
    if (qf_st_ != CUBLAS_STATUS_SUCCESS) {                                                      \
      return internal_error("cuBLASLt: {} failed: {}", #expr, cublasLtGetStatusString(qf_st_)); \
    }                                                                                           \
  } while (0)

namespace qf::cuda {

inline Status launch_status(int err, const std::string& what) {
  if (err == 0) return {};
  return internal_error("CUDA: launching {} failed: {}", what,
                        cudaGetErrorString(static_cast<cudaError_t>(err)));
}

}  // namespace qf::cuda
