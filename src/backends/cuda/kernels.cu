// The cuda backend's own kernels: layout/type conversion (and int8 quantization), epilogues,
// elementwise ops, pooling and softmax. Storage is f32, f16 or bf16 (s8/u8 for conversions and
// pooling); arithmetic is fp32 in registers, so that an fp16 engine differs from fp32 only by
// the rounding of what is stored.
//
// Deliberately plain grid-stride kernels, one file, few template instances: CI compiles this for
// four architectures on two cores, and these kernels are memory-bound anyway (the heavy lifting
// is cuDNN's and cuBLASLt's).
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <initializer_list>
#include <type_traits>

#include "backends/cuda/activation.cuh"
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
__device__ __forceinline__ float load(const int8_t* p, int64_t i) {
  return static_cast<float>(p[i]);
}
__device__ __forceinline__ float load(const uint8_t* p, int64_t i) {
  return static_cast<float>(p[i]);
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
// 8-bit stores take the value already on the integer grid: rounded half to even (oneDNN's and
// TensorRT's rounding) and saturated; NaN becomes 0.
__device__ __forceinline__ void store(int8_t* p, int64_t i, float v) {
  const float q = fminf(fmaxf(rintf(v), -128.f), 127.f);
  p[i] = static_cast<int8_t>(q == q ? q : 0.f);
}
__device__ __forceinline__ void store(uint8_t* p, int64_t i, float v) {
  const float q = fminf(fmaxf(rintf(v), 0.f), 255.f);
  p[i] = static_cast<uint8_t>(q == q ? q : 0.f);
}

template <typename T>
constexpr bool kIs8Bit = std::is_same_v<T, int8_t> || std::is_same_v<T, uint8_t>;

constexpr int kThreads = 256;

int blocks_for(int64_t n) {
  const int64_t b = (n + kThreads - 1) / kThreads;
  return static_cast<int>(b < 65535 * 8 ? (b > 0 ? b : 1) : 65535 * 8);
}

// Index arithmetic in I: int32_t whenever every index and offset fits (fits_int32), since 64-bit
// division is a long software sequence on the GPU (a ResNet-50 input's NCHW -> NHWC conversion at
// batch 256 took 4.6 ms with it); int64_t otherwise.
#define QF_GRID_STRIDE(I, i, n)                                                              \
  for (I i = static_cast<I>(blockIdx.x) * static_cast<I>(blockDim.x) + threadIdx.x; i < (n); \
       i += static_cast<I>(gridDim.x) * static_cast<I>(blockDim.x))

// Offset of dense element i of dims `s.dims` under the strides `s.strides`.
template <typename I>
__device__ __forceinline__ I strided_offset(const StridedShape& s, I i) {
  I off = 0;
  for (int d = s.rank - 1; d >= 0; --d) {
    const I dim = static_cast<I>(s.dims[d]);
    const I idx = i % dim;
    i /= dim;
    off += idx * static_cast<I>(s.strides[d]);
  }
  return off;
}

constexpr int64_t kInt32Limit = int64_t{1} << 31;

// Whether n elements and every offset of `views` stay below 2^31.
bool fits_int32(int64_t n, std::initializer_list<const StridedShape*> views) {
  if (n >= kInt32Limit) return false;
  for (const StridedShape* v : views) {
    if (!v) continue;
    int64_t extent = 1;
    for (int d = 0; d < v->rank; ++d)
      extent += (v->dims[d] - 1) * (v->strides[d] < 0 ? -v->strides[d] : v->strides[d]);
    if (extent >= kInt32Limit) return false;
  }
  return true;
}

int64_t numel(const StridedShape& s) {
  int64_t n = 1;
  for (int d = 0; d < s.rank; ++d) n *= s.dims[d];
  return n;
}

template <typename I, typename S, typename D>
__global__ void strided_copy_kernel(const S* src, StridedShape view, D* dst, I n, bool dense_dst,
                                    StridedShape dst_view, Grid src_grid, float dst_inv_scale,
                                    float dst_zero_point) {
  QF_GRID_STRIDE(I, i, n) {
    float v = load(src, strided_offset(view, i));
    if constexpr (kIs8Bit<S>) v = (v - static_cast<float>(src_grid.zero_point)) * src_grid.scale;
    if constexpr (kIs8Bit<D>) v = v * dst_inv_scale + dst_zero_point;
    store(dst, dense_dst ? i : strided_offset(dst_view, i), v);
  }
}

template <typename I, typename T>
__global__ void epilogue_kernel(T* y, I n, const T* bias, I channels, const T* z, ActParams act) {
  QF_GRID_STRIDE(I, i, n) {
    float v = load(y, i);
    if (bias) v += load(bias, i % channels);
    if (z) v += load(z, i);
    store(y, i, activate(act, v));
  }
}

template <typename T>
__global__ void unary_kernel(const T* in, T* out, int64_t n, ActParams act) {
  QF_GRID_STRIDE(int64_t, i, n) {
    store(out, i, activate(act, load(in, i)));
  }
}

__device__ __forceinline__ float apply_binary(BinaryOp op, float x, float y) {
  switch (op) {
    case BinaryOp::kAdd:
      return x + y;
    case BinaryOp::kSub:
      return x - y;
    case BinaryOp::kMul:
      return x * y;
    case BinaryOp::kDiv:
      return x / y;
    case BinaryOp::kMax:
      return (x != x || y != y) ? x + y : fmaxf(x, y);  // NaN propagates, as in the reference
    case BinaryOp::kMin:
      return (x != x || y != y) ? x + y : fminf(x, y);
    case BinaryOp::kPow:
      return powf(x, y);
  }
  return 0.f;
}

template <typename I, typename T>
__global__ void binary_kernel(BinaryOp op, const T* a, StridedShape av, const T* b, StridedShape bv,
                              T* out, I n) {
  QF_GRID_STRIDE(I, i, n) {
    store(out, i, apply_binary(op, load(a, strided_offset(av, i)), load(b, strided_offset(bv, i))));
  }
}

// The same over a view collapsed to [rows, mid, inner] (collapse_binary): blockIdx.y is the row,
// and one 32-bit division per element finds (mid, inner). The general kernel's per-dimension
// division and modulo for both operands made EfficientNet-B0's squeeze-excitation products
// (x [n, h, w, c] times s [n, 1, 1, c]) take 32 of its 43 ms at batch 256 in fp16 on an H200.
template <typename T>
__global__ void binary_rows_kernel(BinaryOp op, const T* a, int3 as, const T* b, int3 bs, T* out,
                                   int mid, int inner) {
  const int row = static_cast<int>(blockIdx.y);
  const int per_row = mid * inner;
  const T* ar = a + static_cast<int64_t>(row) * as.x;
  const T* br = b + static_cast<int64_t>(row) * bs.x;
  T* o = out + static_cast<int64_t>(row) * per_row;
  for (int j = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x); j < per_row;
       j += static_cast<int>(gridDim.x * blockDim.x)) {
    const int m = j / inner;
    const int k = j - m * inner;
    store(o, j, apply_binary(op, load(ar, m * as.y + k * as.z), load(br, m * bs.y + k * bs.z)));
  }
}

// One thread per output element (n, oh, ow, c): consecutive threads read consecutive channels.
template <typename I, typename T>
__global__ void pool2d_kernel(const T* in, T* out, Pool2d p, I total) {
  QF_GRID_STRIDE(I, i, total) {
    const I c = i % static_cast<I>(p.c);
    I r = i / static_cast<I>(p.c);
    const I ow = r % static_cast<I>(p.ow);
    r /= static_cast<I>(p.ow);
    const I oh = r % static_cast<I>(p.oh);
    const I n = r / static_cast<I>(p.oh);
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
        const float v = load(in, static_cast<I>(((n * p.h + h) * p.w + w) * p.c + c));
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

// N consecutive elements, loaded and stored as one aligned vector.
template <typename T, int N>
struct alignas(sizeof(T) * N) Pack {
  T v[N];
};

// NHWC pooling of N channels per thread (c % N == 0, N * sizeof(T) up to 16 bytes): one vector
// load per window element and one vector store, so that a warp reads and writes whole sectors.
// The element-wise kernel took 1.08 ms (fp16) and the 4-byte 8-bit one 0.32 ms for ResNet-50's
// max pool at batch 256 on an H200. Same arithmetic as pool2d_kernel, NaN propagating.
template <typename T, int N>
__global__ void pool2d_nhwc_vec_kernel(const T* in, T* out, Pool2d p, int total_vec) {
  const int cv = static_cast<int>(p.c / N);
  QF_GRID_STRIDE(int, i, total_vec) {
    const int c = (i % cv) * N;
    int r = i / cv;
    const int ow = r % static_cast<int>(p.ow);
    r /= static_cast<int>(p.ow);
    const int oh = r % static_cast<int>(p.oh);
    const int n = r / static_cast<int>(p.oh);
    const int h0 = oh * static_cast<int>(p.sh) - static_cast<int>(p.pad_top);
    const int w0 = ow * static_cast<int>(p.sw) - static_cast<int>(p.pad_left);
    float acc[N];
#pragma unroll
    for (int j = 0; j < N; ++j) acc[j] = p.max ? -INFINITY : 0.f;
    int count = 0;
    for (int kh = 0; kh < p.kh; ++kh) {
      const int h = h0 + kh * static_cast<int>(p.dh);
      if (h < 0 || h >= p.h) continue;
      for (int kw = 0; kw < p.kw; ++kw) {
        const int w = w0 + kw * static_cast<int>(p.dw);
        if (w < 0 || w >= p.w) continue;
        const Pack<T, N> pack = *reinterpret_cast<const Pack<T, N>*>(
            in +
            ((static_cast<int>(n * p.h) + h) * static_cast<int>(p.w) + w) * static_cast<int>(p.c) +
            c);
#pragma unroll
        for (int j = 0; j < N; ++j) {
          const float v = load(pack.v, j);
          // A NaN wins a max (v != v), and stays once there (v > NaN is false).
          acc[j] = p.max ? (v > acc[j] || v != v ? v : acc[j]) : acc[j] + v;
        }
        ++count;
      }
    }
    int divisor = count;
    if (!p.max && p.count_include_pad) {
      const int h_end =
          min(h0 + static_cast<int>((p.kh - 1) * p.dh) + 1, static_cast<int>(p.h + p.pad_bottom));
      const int w_end =
          min(w0 + static_cast<int>((p.kw - 1) * p.dw) + 1, static_cast<int>(p.w + p.pad_right));
      divisor = ((h_end - h0 + static_cast<int>(p.dh) - 1) / static_cast<int>(p.dh)) *
                ((w_end - w0 + static_cast<int>(p.dw) - 1) / static_cast<int>(p.dw));
    }
    Pack<T, N> result;
#pragma unroll
    for (int j = 0; j < N; ++j) {
      store(result.v, j,
            p.max ? acc[j] : (divisor > 0 ? acc[j] / static_cast<float>(divisor) : 0.f));
    }
    *reinterpret_cast<Pack<T, N>*>(out + static_cast<int64_t>(i) * N) = result;
  }
}

// Global pooling of NHWC [n, h, w, c] to [n, c]: one block per image and 32 channels, its 8 warps
// striding over the pixels (each warp reads 32 consecutive channels of a pixel) and combining
// in shared memory. One thread per output summed a whole image serially: EfficientNet-B0's
// first squeeze-excitation pool (32 channels of 112x112) took 3 ms at batch 1 on an H200.
constexpr int kGlobalPoolRows = 8;

template <typename T>
__global__ void global_pool_nhwc_kernel(const T* in, T* out, int hw, int c, bool max) {
  __shared__ float partial[kGlobalPoolRows][32];
  const int ch = blockIdx.x * 32 + threadIdx.x;
  const int64_t image = blockIdx.y;
  float acc = max ? -INFINITY : 0.f;
  if (ch < c) {
    for (int i = threadIdx.y; i < hw; i += kGlobalPoolRows) {
      const float v = load(in, (image * hw + i) * c + ch);
      // A NaN wins a max (v != v), and stays once there (v > NaN is false).
      acc = max ? (v > acc || v != v ? v : acc) : acc + v;
    }
  }
  partial[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
  if (threadIdx.y != 0 || ch >= c) return;
  for (int r = 1; r < kGlobalPoolRows; ++r) {
    const float v = partial[r][threadIdx.x];
    acc = max ? (v > acc || v != v ? v : acc) : acc + v;
  }
  store(out, image * c + ch, max ? acc : acc / static_cast<float>(hw));
}

// The real value of channel `ch` of pixel x of image img in an NCHW tensor of c channels (an
// 8-bit one on `grid`); 0 for the padding channels past c.
template <typename S>
__device__ __forceinline__ float nchw_value(const S* src, int img, int c, int ch, int hw, int x,
                                            Grid grid) {
  if (ch >= c) return 0.f;
  const float v = load(src, (img * c + ch) * hw + x);
  if constexpr (kIs8Bit<S>) {
    return (v - static_cast<float>(grid.zero_point)) * grid.scale;
  } else {
    return v;
  }
}

// NCHW -> NHWC (to_nhwc) or back, one thread per pixel walking its channels: reads (or writes)
// coalesced across the warp's pixels, with 32-bit index arithmetic. The NHWC side may have more
// channels than c (`nhwc_c`, e.g. 3 padded to 4), which get real 0 (an 8-bit grid's zero point).
template <typename S, typename D>
__global__ void nchw_nhwc_kernel(const S* src, D* dst, int n, int c, int hw, int nhwc_c,
                                 bool to_nhwc, Grid src_grid, float dst_inv_scale,
                                 float dst_zero_point) {
  const int pixels = n * hw;
  QF_GRID_STRIDE(int, p, pixels) {
    const int img = p / hw;
    const int x = p - img * hw;
    if constexpr (kIs8Bit<D>) {
      // 8-bit NHWC pixels of 4k channels: whole 32-bit words, so that a warp's stores fill whole
      // 32-byte sectors (a partly written sector costs the H200 a read of it first: byte-wise
      // stores of a ResNet-50 input at batch 256 took 2.9 ms).
      if (to_nhwc && nhwc_c % 4 == 0) {
        for (int ch0 = 0; ch0 < nhwc_c; ch0 += 4) {
          uint32_t word = 0;
#pragma unroll
          for (int j = 0; j < 4; ++j) {
            const int ch = ch0 + j;
            const float v = nchw_value(src, img, c, ch, hw, x, src_grid);
            D q[1];
            store(q, 0, v * dst_inv_scale + dst_zero_point);
            word |= static_cast<uint32_t>(static_cast<uint8_t>(q[0])) << (8 * j);
          }
          *reinterpret_cast<uint32_t*>(dst + static_cast<int64_t>(p) * nhwc_c + ch0) = word;
        }
        continue;
      }
    } else {
      // 16- and 32-bit NHWC pixels (a thin input padded to 8 fp16 or 4 fp32 channels) in whole
      // 16-byte vectors, for the same reason: channel by channel, 2-byte stores 16 bytes apart,
      // ResNet-50's fp16 input conversion took 0.47 ms at batch 256 on an H200.
      constexpr int kVec = 16 / static_cast<int>(sizeof(D));
      if (to_nhwc && nhwc_c % kVec == 0) {
        for (int ch0 = 0; ch0 < nhwc_c; ch0 += kVec) {
          Pack<D, kVec> pack;
#pragma unroll
          for (int j = 0; j < kVec; ++j) {
            const int ch = ch0 + j;
            const float v = nchw_value(src, img, c, ch, hw, x, src_grid);
            store(pack.v, j, v);
          }
          *reinterpret_cast<Pack<D, kVec>*>(dst + static_cast<int64_t>(p) * nhwc_c + ch0) = pack;
        }
        continue;
      }
    }
    for (int ch = 0; ch < nhwc_c; ++ch) {
      const int nchw = (img * c + ch) * hw + x;
      const int nhwc = p * nhwc_c + ch;
      if (!to_nhwc && ch >= c) break;
      float v = 0.f;
      if (ch < c) {
        v = load(src, to_nhwc ? nchw : nhwc);
        if constexpr (kIs8Bit<S>) {
          v = (v - static_cast<float>(src_grid.zero_point)) * src_grid.scale;
        }
      }
      if constexpr (kIs8Bit<D>) v = v * dst_inv_scale + dst_zero_point;
      store(dst, to_nhwc ? nhwc : nchw, v);
    }
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

// dispatch() plus the 8-bit storage types, for the launchers that move or pool stored values.
template <typename Fn>
int dispatch_storage(DType t, Fn&& fn) {
  switch (t) {
    case DType::kI8:
      return fn(static_cast<int8_t*>(nullptr));
    case DType::kU8:
      return fn(static_cast<uint8_t*>(nullptr));
    default:
      return dispatch(t, fn);
  }
}

int last_error() {
  return static_cast<int>(cudaGetLastError());
}

}  // namespace

int launch_strided_copy(const void* src, DType src_type, const StridedShape& view, void* dst,
                        DType dst_type, cudaStream_t stream, const StridedShape* dst_strides,
                        Grid src_grid, Grid dst_grid) {
  StridedShape dst_view = dst_strides ? *dst_strides : StridedShape{};
  for (int d = 0; d < view.rank; ++d) dst_view.dims[d] = view.dims[d];
  dst_view.rank = view.rank;
  const int64_t n = numel(view);
  if (n == 0) return 0;
  const float inv = 1.f / dst_grid.scale;
  const float zp = static_cast<float>(dst_grid.zero_point);
  const bool small = fits_int32(n, {&view, dst_strides ? &dst_view : nullptr});
  return dispatch_storage(src_type, [&](auto* s) {
    return dispatch_storage(dst_type, [&](auto* d) {
      using S = std::remove_pointer_t<decltype(s)>;
      using D = std::remove_pointer_t<decltype(d)>;
      if (small) {
        strided_copy_kernel<int32_t><<<blocks_for(n), kThreads, 0, stream>>>(
            static_cast<const S*>(src), view, static_cast<D*>(dst), static_cast<int32_t>(n),
            dst_strides == nullptr, dst_view, src_grid, inv, zp);
      } else {
        strided_copy_kernel<int64_t><<<blocks_for(n), kThreads, 0, stream>>>(
            static_cast<const S*>(src), view, static_cast<D*>(dst), n, dst_strides == nullptr,
            dst_view, src_grid, inv, zp);
      }
      return last_error();
    });
  });
}

int launch_nchw_nhwc(const void* src, DType src_type, Grid src_grid, void* dst, DType dst_type,
                     Grid dst_grid, int64_t n, int64_t c, int64_t hw, int64_t nhwc_c, bool to_nhwc,
                     cudaStream_t stream) {
  const int64_t pixels = n * hw;
  if (pixels == 0 || nhwc_c == 0) return 0;
  if (pixels * nhwc_c >= kInt32Limit || nhwc_c < c) return static_cast<int>(cudaErrorInvalidValue);
  const float inv = 1.f / dst_grid.scale;
  const float zp = static_cast<float>(dst_grid.zero_point);
  return dispatch_storage(src_type, [&](auto* s) {
    return dispatch_storage(dst_type, [&](auto* d) {
      using S = std::remove_pointer_t<decltype(s)>;
      using D = std::remove_pointer_t<decltype(d)>;
      nchw_nhwc_kernel<<<blocks_for(pixels), kThreads, 0, stream>>>(
          static_cast<const S*>(src), static_cast<D*>(dst), static_cast<int>(n),
          static_cast<int>(c), static_cast<int>(hw), static_cast<int>(nhwc_c), to_nhwc, src_grid,
          inv, zp);
      return last_error();
    });
  });
}

int launch_epilogue(void* y, DType type, int64_t n, const void* bias, int64_t channels,
                    const void* z, ActParams act, cudaStream_t stream) {
  if (n == 0) return 0;
  return dispatch(type, [&](auto* t) {
    using T = std::remove_pointer_t<decltype(t)>;
    const int64_t ch = channels > 0 ? channels : 1;
    if (n < kInt32Limit) {
      epilogue_kernel<int32_t><<<blocks_for(n), kThreads, 0, stream>>>(
          static_cast<T*>(y), static_cast<int32_t>(n), static_cast<const T*>(bias),
          static_cast<int32_t>(ch), static_cast<const T*>(z), act);
    } else {
      epilogue_kernel<int64_t><<<blocks_for(n), kThreads, 0, stream>>>(
          static_cast<T*>(y), n, static_cast<const T*>(bias), ch, static_cast<const T*>(z), act);
    }
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

// a and b with every run of adjacent dimensions merged where both operands step through it as
// through one dimension (stride[d] == stride[d + 1] * dims[d + 1]; broadcast runs have stride 0
// in both). The output is dense, so it always merges.
void collapse_binary(StridedShape& a, StridedShape& b) {
  StridedShape ca, cb;
  for (int d = 0; d < a.rank; ++d) {
    if (a.dims[d] == 1) continue;  // any stride: never stepped through
    const int last = ca.rank - 1;
    if (last >= 0 && ca.strides[last] == a.strides[d] * a.dims[d] &&
        cb.strides[last] == b.strides[d] * a.dims[d]) {
      ca.dims[last] *= a.dims[d];
      cb.dims[last] = ca.dims[last];
      ca.strides[last] = a.strides[d];
      cb.strides[last] = b.strides[d];
      continue;
    }
    ca.dims[ca.rank] = cb.dims[cb.rank] = a.dims[d];
    ca.strides[ca.rank++] = a.strides[d];
    cb.strides[cb.rank++] = b.strides[d];
  }
  a = ca;
  b = cb;
}

int launch_binary(BinaryOp op, const void* a, const StridedShape& a_view, const void* b,
                  const StridedShape& b_view, void* out, DType type, cudaStream_t stream) {
  const int64_t n = numel(a_view);
  if (n == 0) return 0;
  const bool small = fits_int32(n, {&a_view, &b_view});
  StridedShape av = a_view, bv = b_view;
  collapse_binary(av, bv);
  // [rows, mid, inner] with leading 1s where fewer dimensions remain.
  const int shift = 3 - av.rank;
  auto dim = [&](const StridedShape& v, int d) { return d < shift ? 1 : v.dims[d - shift]; };
  auto stride = [&](const StridedShape& v, int d) {
    return d < shift ? 0 : static_cast<int>(v.strides[d - shift]);
  };
  const bool rows = small && av.rank <= 3 && dim(av, 0) <= 65535;
  return dispatch(type, [&](auto* t) {
    using T = std::remove_pointer_t<decltype(t)>;
    if (rows) {
      const int per_row = static_cast<int>(dim(av, 1) * dim(av, 2));
      const int blocks =
          static_cast<int>(std::min<int64_t>((per_row + kThreads - 1) / kThreads, 4096));
      binary_rows_kernel<<<dim3(static_cast<unsigned>(blocks), static_cast<unsigned>(dim(av, 0))),
                           kThreads, 0, stream>>>(
          op, static_cast<const T*>(a), make_int3(stride(av, 0), stride(av, 1), stride(av, 2)),
          static_cast<const T*>(b), make_int3(stride(bv, 0), stride(bv, 1), stride(bv, 2)),
          static_cast<T*>(out), static_cast<int>(dim(av, 1)), static_cast<int>(dim(av, 2)));
    } else if (small) {
      binary_kernel<int32_t><<<blocks_for(n), kThreads, 0, stream>>>(
          op, static_cast<const T*>(a), a_view, static_cast<const T*>(b), b_view,
          static_cast<T*>(out), static_cast<int32_t>(n));
    } else {
      binary_kernel<int64_t><<<blocks_for(n), kThreads, 0, stream>>>(
          op, static_cast<const T*>(a), a_view, static_cast<const T*>(b), b_view,
          static_cast<T*>(out), n);
    }
    return last_error();
  });
}

int launch_pool2d(const void* in, void* out, DType type, const Pool2d& p, cudaStream_t stream) {
  const int64_t n = p.n * p.oh * p.ow * p.c;
  if (n == 0) return 0;
  const bool small = n < kInt32Limit && p.n * p.h * p.w * p.c < kInt32Limit;
  const auto aligned = [&](size_t bytes) {
    return reinterpret_cast<uintptr_t>(in) % bytes == 0 &&
           reinterpret_cast<uintptr_t>(out) % bytes == 0;
  };
  // A window over the whole unpadded image (GlobalAveragePool, GlobalMaxPool, or an
  // AveragePool/MaxPool shaped like one): the reduction kernel.
  const bool global = p.oh == 1 && p.ow == 1 && p.kh == p.h && p.kw == p.w && p.pad_top == 0 &&
                      p.pad_left == 0 && p.pad_bottom == 0 && p.pad_right == 0 && p.n < 65536 &&
                      small;
  return dispatch_storage(type, [&](auto* t) {
    using T = std::remove_pointer_t<decltype(t)>;
    if (global) {
      const dim3 grid(static_cast<unsigned>((p.c + 31) / 32), static_cast<unsigned>(p.n));
      global_pool_nhwc_kernel<<<grid, dim3(32, kGlobalPoolRows), 0, stream>>>(
          static_cast<const T*>(in), static_cast<T*>(out), static_cast<int>(p.h * p.w),
          static_cast<int>(p.c), p.max);
      return last_error();
    }
    // As many channels per thread as fill 16 bytes, else 4, where channels and addresses allow.
    constexpr int kWide = static_cast<int>(16 / sizeof(T));
    if (small && p.c % kWide == 0 && aligned(16)) {
      const int total = static_cast<int>(n / kWide);
      pool2d_nhwc_vec_kernel<T, kWide><<<blocks_for(total), kThreads, 0, stream>>>(
          static_cast<const T*>(in), static_cast<T*>(out), p, total);
    } else if (small && p.c % 4 == 0 && aligned(4 * sizeof(T))) {
      const int total = static_cast<int>(n / 4);
      pool2d_nhwc_vec_kernel<T, 4><<<blocks_for(total), kThreads, 0, stream>>>(
          static_cast<const T*>(in), static_cast<T*>(out), p, total);
    } else if (small) {
      pool2d_kernel<int32_t><<<blocks_for(n), kThreads, 0, stream>>>(
          static_cast<const T*>(in), static_cast<T*>(out), p, static_cast<int32_t>(n));
    } else {
      pool2d_kernel<int64_t><<<blocks_for(n), kThreads, 0, stream>>>(static_cast<const T*>(in),
                                                                     static_cast<T*>(out), p, n);
    }
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
