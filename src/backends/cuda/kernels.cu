// The cuda backend's own kernels: layout/type conversion, epilogues, elementwise ops, pooling
// and softmax. Storage is f32, f16 or bf16; arithmetic is fp32 in registers, so that an fp16
// engine differs from fp32 only by the rounding of what is stored.
//
// Deliberately plain grid-stride kernels, one file, few template instances: CI compiles this for
// four architectures on two cores, and these kernels are memory-bound anyway (the heavy lifting
// is cuDNN's and cuBLASLt's).
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "backends/cuda/kernels.h"

namespace qf::cuda {
namespace {

__device__ __forceinline__ float load(const float* p, int64_t i) {
  return p[i];
}
__device__ __forceinline__ float load(const __half* p, int64_t i) {
  return __half2float(p[i]);
}
__device__ __forceinline__ float load(const __nv_bfloat16* p, int64_t i) {
  return __bfloat162float(p[i]);
}
__device__ __forceinline__ void store(float* p, int64_t i, float v) {
  p[i] = v;
}
__device__ __forceinline__ void store(__half* p, int64_t i, float v) {
  p[i] = __float2half_rn(v);
}
__device__ __forceinline__ void store(__nv_bfloat16* p, int64_t i, float v) {
  p[i] = __float2bfloat16_rn(v);
}

// The same formulas as ops::apply_activation (there in double; fp32 here).
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

constexpr int kThreads = 256;

int blocks_for(int64_t n) {
  const int64_t b = (n + kThreads - 1) / kThreads;
  return static_cast<int>(b < 65535 * 8 ? (b > 0 ? b : 1) : 65535 * 8);
}

#define QF_GRID_STRIDE(i, n)                                                             \
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < (n); \
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)

// Offset of dense element i of dims `s.dims` under the strides `s.strides`.
__device__ __forceinline__ int64_t strided_offset(const StridedShape& s, int64_t i) {
  int64_t off = 0;
  for (int d = s.rank - 1; d >= 0; --d) {
    const int64_t idx = i % s.dims[d];
    i /= s.dims[d];
    off += idx * s.strides[d];
  }
  return off;
}

int64_t numel(const StridedShape& s) {
  int64_t n = 1;
  for (int d = 0; d < s.rank; ++d) n *= s.dims[d];
  return n;
}

template <typename S, typename D>
__global__ void strided_copy_kernel(const S* src, StridedShape view, D* dst, int64_t n,
                                    bool dense_dst, StridedShape dst_view) {
  QF_GRID_STRIDE(i, n) {
    store(dst, dense_dst ? i : strided_offset(dst_view, i), load(src, strided_offset(view, i)));
  }
}

template <typename T>
__global__ void epilogue_kernel(T* y, int64_t n, const T* bias, int64_t channels, const T* z,
                                ActParams act) {
  QF_GRID_STRIDE(i, n) {
    float v = load(y, i);
    if (bias) v += load(bias, i % channels);
    if (z) v += load(z, i);
    store(y, i, activate(act, v));
  }
}

template <typename T>
__global__ void unary_kernel(const T* in, T* out, int64_t n, ActParams act) {
  QF_GRID_STRIDE(i, n) {
    store(out, i, activate(act, load(in, i)));
  }
}

template <typename T>
__global__ void binary_kernel(BinaryOp op, const T* a, StridedShape av, const T* b, StridedShape bv,
                              T* out, int64_t n) {
  QF_GRID_STRIDE(i, n) {
    const float x = load(a, strided_offset(av, i));
    const float y = load(b, strided_offset(bv, i));
    float r = 0.f;
    switch (op) {
      case BinaryOp::kAdd:
        r = x + y;
        break;
      case BinaryOp::kSub:
        r = x - y;
        break;
      case BinaryOp::kMul:
        r = x * y;
        break;
      case BinaryOp::kDiv:
        r = x / y;
        break;
      case BinaryOp::kMax:
        r = (x != x || y != y) ? x + y : fmaxf(x, y);  // NaN propagates, as in the reference
        break;
      case BinaryOp::kMin:
        r = (x != x || y != y) ? x + y : fminf(x, y);
        break;
      case BinaryOp::kPow:
        r = powf(x, y);
        break;
    }
    store(out, i, r);
  }
}

// One thread per output element (n, oh, ow, c): consecutive threads read consecutive channels.
template <typename T>
__global__ void pool2d_kernel(const T* in, T* out, Pool2d p, int64_t total) {
  QF_GRID_STRIDE(i, total) {
    const int64_t c = i % p.c;
    int64_t r = i / p.c;
    const int64_t ow = r % p.ow;
    r /= p.ow;
    const int64_t oh = r % p.oh;
    const int64_t n = r / p.oh;
    const int64_t h0 = oh * p.sh - p.pad_top;
    const int64_t w0 = ow * p.sw - p.pad_left;
    float acc = p.max ? -INFINITY : 0.f;
    int64_t count = 0;
    bool nan = false;
    for (int64_t kh = 0; kh < p.kh; ++kh) {
      const int64_t h = h0 + kh * p.dh;
      if (h < 0 || h >= p.h) continue;
      for (int64_t kw = 0; kw < p.kw; ++kw) {
        const int64_t w = w0 + kw * p.dw;
        if (w < 0 || w >= p.w) continue;
        const float v = load(in, ((n * p.h + h) * p.w + w) * p.c + c);
        nan = nan || v != v;
        acc = p.max ? fmaxf(acc, v) : acc + v;
        ++count;
      }
    }
    if (!p.max) {
      int64_t divisor = count;
      if (p.count_include_pad) {
        // The window clipped to the padded input (ceil_mode windows may reach past it).
        const int64_t h_end = min(h0 + (p.kh - 1) * p.dh + 1, p.h + p.pad_bottom);
        const int64_t w_end = min(w0 + (p.kw - 1) * p.dw + 1, p.w + p.pad_right);
        const int64_t hs = (h_end - h0 + p.dh - 1) / p.dh;
        const int64_t ws = (w_end - w0 + p.dw - 1) / p.dw;
        divisor = hs * ws;
      }
      acc = divisor > 0 ? acc / static_cast<float>(divisor) : 0.f;
    }
    if (nan) acc = NAN;
    store(out, i, acc);
  }
}

// Sum of `v` over the block (kThreads threads); every thread gets the result.
__device__ float block_sum(float v, float* red) {
  red[threadIdx.x] = v;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s /= 2) {
    if (threadIdx.x < s) red[threadIdx.x] += red[threadIdx.x + s];
    __syncthreads();
  }
  const float total = red[0];
  __syncthreads();
  return total;
}

// One block per row; two passes over the row (mean, then the centred variance) for accuracy.
template <typename T>
__global__ void layer_norm_kernel(const T* in, T* out, int64_t rows, int64_t inner,
                                  const float* scale, const float* bias, float eps) {
  __shared__ float red[kThreads];
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const int64_t base = row * inner;
    float s = 0.f;
    for (int64_t k = threadIdx.x; k < inner; k += blockDim.x) s += load(in, base + k);
    const float mean = block_sum(s, red) / static_cast<float>(inner);
    float v = 0.f;
    for (int64_t k = threadIdx.x; k < inner; k += blockDim.x) {
      const float d = load(in, base + k) - mean;
      v += d * d;
    }
    const float inv = rsqrtf(block_sum(v, red) / static_cast<float>(inner) + eps);
    for (int64_t k = threadIdx.x; k < inner; k += blockDim.x) {
      const float y = (load(in, base + k) - mean) * inv * (scale ? scale[k] : 1.f);
      store(out, base + k, y + (bias ? bias[k] : 0.f));
    }
  }
}

// One block per (outer, inner) row; the block's threads stride over the axis.
template <typename T>
__global__ void softmax_kernel(const T* in, T* out, int64_t outer, int64_t axis, int64_t inner,
                               bool log) {
  __shared__ float red[kThreads];
  for (int64_t row = blockIdx.x; row < outer * inner; row += gridDim.x) {
    const int64_t base = (row / inner) * axis * inner + row % inner;
    float m = -INFINITY;
    for (int64_t k = threadIdx.x; k < axis; k += blockDim.x)
      m = fmaxf(m, load(in, base + k * inner));
    red[threadIdx.x] = m;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s /= 2) {
      if (threadIdx.x < s) red[threadIdx.x] = fmaxf(red[threadIdx.x], red[threadIdx.x + s]);
      __syncthreads();
    }
    m = red[0];
    __syncthreads();
    float sum = 0.f;
    for (int64_t k = threadIdx.x; k < axis; k += blockDim.x)
      sum += expf(load(in, base + k * inner) - m);
    red[threadIdx.x] = sum;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s /= 2) {
      if (threadIdx.x < s) red[threadIdx.x] += red[threadIdx.x + s];
      __syncthreads();
    }
    sum = red[0];
    __syncthreads();
    for (int64_t k = threadIdx.x; k < axis; k += blockDim.x) {
      const float x = load(in, base + k * inner) - m;
      store(out, base + k * inner, log ? x - logf(sum) : expf(x) / sum);
    }
  }
}

// Calls fn with a null pointer of the storage type of `t` (f32, f16 or bf16).
template <typename Fn>
int dispatch(DType t, Fn&& fn) {
  switch (t) {
    case DType::kF32:
      return fn(static_cast<float*>(nullptr));
    case DType::kF16:
      return fn(static_cast<__half*>(nullptr));
    case DType::kBF16:
      return fn(static_cast<__nv_bfloat16*>(nullptr));
    default:
      return static_cast<int>(cudaErrorInvalidValue);
  }
}

int last_error() {
  return static_cast<int>(cudaGetLastError());
}

}  // namespace

int launch_strided_copy(const void* src, DType src_type, const StridedShape& view, void* dst,
                        DType dst_type, cudaStream_t stream, const StridedShape* dst_strides) {
  StridedShape dst_view = dst_strides ? *dst_strides : StridedShape{};
  for (int d = 0; d < view.rank; ++d) dst_view.dims[d] = view.dims[d];
  dst_view.rank = view.rank;
  const int64_t n = numel(view);
  if (n == 0) return 0;
  return dispatch(src_type, [&](auto* s) {
    return dispatch(dst_type, [&](auto* d) {
      using S = std::remove_pointer_t<decltype(s)>;
      using D = std::remove_pointer_t<decltype(d)>;
      strided_copy_kernel<<<blocks_for(n), kThreads, 0, stream>>>(static_cast<const S*>(src), view,
                                                                  static_cast<D*>(dst), n,
                                                                  dst_strides == nullptr, dst_view);
      return last_error();
    });
  });
}

int launch_epilogue(void* y, DType type, int64_t n, const void* bias, int64_t channels,
                    const void* z, ActParams act, cudaStream_t stream) {
  if (n == 0) return 0;
  return dispatch(type, [&](auto* t) {
    using T = std::remove_pointer_t<decltype(t)>;
    epilogue_kernel<<<blocks_for(n), kThreads, 0, stream>>>(
        static_cast<T*>(y), n, static_cast<const T*>(bias), channels > 0 ? channels : 1,
        static_cast<const T*>(z), act);
    return last_error();
  });
}

int launch_unary(const void* in, void* out, DType type, int64_t n, ActParams act,
                 cudaStream_t stream) {
  if (n == 0) return 0;
  return dispatch(type, [&](auto* t) {
    using T = std::remove_pointer_t<decltype(t)>;
    unary_kernel<<<blocks_for(n), kThreads, 0, stream>>>(static_cast<const T*>(in),
                                                         static_cast<T*>(out), n, act);
    return last_error();
  });
}

int launch_binary(BinaryOp op, const void* a, const StridedShape& a_view, const void* b,
                  const StridedShape& b_view, void* out, DType type, cudaStream_t stream) {
  const int64_t n = numel(a_view);
  if (n == 0) return 0;
  return dispatch(type, [&](auto* t) {
    using T = std::remove_pointer_t<decltype(t)>;
    binary_kernel<<<blocks_for(n), kThreads, 0, stream>>>(op, static_cast<const T*>(a), a_view,
                                                          static_cast<const T*>(b), b_view,
                                                          static_cast<T*>(out), n);
    return last_error();
  });
}

int launch_pool2d(const void* in, void* out, DType type, const Pool2d& p, cudaStream_t stream) {
  const int64_t n = p.n * p.oh * p.ow * p.c;
  if (n == 0) return 0;
  return dispatch(type, [&](auto* t) {
    using T = std::remove_pointer_t<decltype(t)>;
    pool2d_kernel<<<blocks_for(n), kThreads, 0, stream>>>(static_cast<const T*>(in),
                                                          static_cast<T*>(out), p, n);
    return last_error();
  });
}

int launch_layer_norm(const void* in, void* out, DType type, int64_t rows, int64_t inner,
                      const float* scale, const float* bias, float eps, cudaStream_t stream) {
  if (rows == 0 || inner == 0) return 0;
  return dispatch(type, [&](auto* t) {
    using T = std::remove_pointer_t<decltype(t)>;
    const int grid = static_cast<int>(rows < 65535 * 4 ? rows : 65535 * 4);
    layer_norm_kernel<<<grid, kThreads, 0, stream>>>(
        static_cast<const T*>(in), static_cast<T*>(out), rows, inner, scale, bias, eps);
    return last_error();
  });
}

int launch_softmax(const void* in, void* out, DType type, int64_t outer, int64_t axis,
                   int64_t inner, bool log, cudaStream_t stream) {
  const int64_t rows = outer * inner;
  if (rows == 0 || axis == 0) return 0;
  return dispatch(type, [&](auto* t) {
    using T = std::remove_pointer_t<decltype(t)>;
    const int grid = static_cast<int>(rows < 65535 * 4 ? rows : 65535 * 4);
    softmax_kernel<<<grid, kThreads, 0, stream>>>(static_cast<const T*>(in), static_cast<T*>(out),
                                                  outer, axis, inner, log);
    return last_error();
  });
}

}  // namespace qf::cuda
