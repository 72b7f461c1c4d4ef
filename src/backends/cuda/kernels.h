// The cuda backend's own kernels (kernels.cu), behind plain C++ launchers so that the rest of
// the backend compiles as ordinary C++ and needs no nvcc.
//
// Storage types are f32, f16 and bf16 (DType tags), plus s8/u8 where a launcher says so;
// arithmetic is always fp32 in registers.
// Every launcher enqueues on `stream` and returns the launch's cudaError_t (as int, so this
// header needs no CUDA include), which the caller checks.
#pragma once

#include <cstdint>

#include "qforge/dtype.h"

typedef struct CUstream_st* cudaStream_t;

namespace qf::cuda {

// The activations of qforge::Fused* (same numbering as ops::Activation) plus the unary ops.
enum class Act : int {
  kNone,
  kRelu,
  kLeakyRelu,
  kClip,
  kSigmoid,
  kTanh,
  kHardSigmoid,
  kHardSwish,
  kSiLU,
  kGELU,
  // Unary math ops (no fused-op counterpart).
  kExp,
  kLog,
  kSqrt,
  kErf,
  kAbs,
  kNeg,
  kReciprocal,
};

struct ActParams {
  Act kind = Act::kNone;
  float alpha = 0.f;
  float beta = 0.f;
};

// Up to this many dims in the strided kernels (binary broadcasting, transposes).
inline constexpr int kMaxDims = 6;

struct StridedShape {
  int rank = 0;
  int64_t dims[kMaxDims] = {};
  int64_t strides[kMaxDims] = {};  // in elements; 0 along broadcast dims
};

// The grid of an 8-bit storage type (s8/u8) of a float value: real = scale * (q - zero_point).
// Float storage types ignore it.
struct Grid {
  float scale = 1.f;
  int32_t zero_point = 0;
  // (Written out: the .cu files are C++17.)
  bool operator==(const Grid& o) const { return scale == o.scale && zero_point == o.zero_point; }
};

// Copies (and converts) every element of the index space `src_view.dims`: element idx reads
// src at sum(idx[d] * src_view.strides[d]) and writes dst densely, or, with `dst_strides`, at
// sum(idx[d] * dst_strides[d]). Transposes, layout conversions and concatenation all are this.
// Storage types are f32, f16, bf16, s8 and u8: an s8/u8 source is dequantized on `src_grid`, an
// s8/u8 destination quantized onto `dst_grid` (round half to even, saturated), so the same
// kernel quantizes, dequantizes and requantizes.
int launch_strided_copy(const void* src, DType src_type, const StridedShape& src_view, void* dst,
                        DType dst_type, cudaStream_t stream,
                        const StridedShape* dst_strides = nullptr, Grid src_grid = {},
                        Grid dst_grid = {});

// NCHW <-> NHWC of a 4-D tensor [n, c, h, w] (hw = h * w), converting types as
// launch_strided_copy does, with 32-bit index arithmetic (n * hw * nhwc_c < 2^31) and one
// thread per pixel: the fast path for thin tensors (an image network's 3-channel input). The
// NHWC side has `nhwc_c` >= c channels; those beyond c are real 0 (the 8-bit zero point).
int launch_nchw_nhwc(const void* src, DType src_type, Grid src_grid, void* dst, DType dst_type,
                     Grid dst_grid, int64_t n, int64_t c, int64_t hw, int64_t nhwc_c, bool to_nhwc,
                     cudaStream_t stream);

// y = act(y + bias[channel] + z): the epilogue of convolutions and GEMMs. bias (may be null) has
// `channels` entries and the channel of element i is i % channels (NHWC and row-major GEMM
// outputs both keep the channel innermost); z (may be null) has y's layout. bias/z in y's type.
int launch_epilogue(void* y, DType type, int64_t n, const void* bias, int64_t channels,
                    const void* z, ActParams act, cudaStream_t stream);

// out = act(in) elementwise (any layout).
int launch_unary(const void* in, void* out, DType type, int64_t n, ActParams act,
                 cudaStream_t stream);

enum class BinaryOp : int { kAdd, kSub, kMul, kDiv, kMax, kMin, kPow };

// out (dense, dims `a.dims`) = op(a, b) with a and b read through their strides (0 along
// broadcast dims).
int launch_binary(BinaryOp op, const void* a, const StridedShape& a_view, const void* b,
                  const StridedShape& b_view, void* out, DType type, cudaStream_t stream);

struct Pool2d {
  int64_t n = 0, c = 0, h = 0, w = 0;  // input, NHWC
  int64_t oh = 0, ow = 0;
  int64_t kh = 1, kw = 1, sh = 1, sw = 1, dh = 1, dw = 1;
  int64_t pad_top = 0, pad_left = 0, pad_bottom = 0, pad_right = 0;
  bool max = true;
  bool count_include_pad = false;
};

// NHWC pooling; global pooling is a window of the whole image. Also s8/u8, where input and output
// share one grid: max pooling is exact, an average is rounded half to even (the caller refuses
// averages that would count padding under a nonzero zero point).
int launch_pool2d(const void* in, void* out, DType type, const Pool2d& p, cudaStream_t stream);

// LayerNormalization of each of `rows` dense rows of `inner` elements: (x - mean) / sqrt(var +
// eps) * scale + bias, statistics in fp32; scale and bias (may be null) are fp32 of `inner`.
int launch_layer_norm(const void* in, void* out, DType type, int64_t rows, int64_t inner,
                      const float* scale, const float* bias, float eps, cudaStream_t stream);

// Softmax (or LogSoftmax) over the middle dim of [outer, axis, inner], dense.
int launch_softmax(const void* in, void* out, DType type, int64_t outer, int64_t axis,
                   int64_t inner, bool log, cudaStream_t stream);

}  // namespace qf::cuda
