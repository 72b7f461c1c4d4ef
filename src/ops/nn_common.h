// Helpers shared by the neural-network op families (Conv, ConvTranspose, pooling, Gemm/MatMul,
// normalization): window attributes and output sizes, N-d index walking, and the one GEMM loop
// nest every matrix-shaped kernel of the reference backend goes through.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include "ir/op_registry.h"
#include "ir/shape_utils.h"

namespace qf::ops {

enum class AutoPad { kNotSet, kSameUpper, kSameLower, kValid };

// Window attributes of Conv, ConvTranspose and the pools, with ONNX defaults filled in.
struct WindowAttrs {
  std::vector<int64_t> kernel;  // empty when neither kernel_shape nor the weights give it
  std::vector<int64_t> strides;
  std::vector<int64_t> dilations;
  std::vector<int64_t> pads;  // 2 * spatial: all begins, then all ends
  AutoPad auto_pad = AutoPad::kNotSet;
  bool ceil_mode = false;
};

// Reads and validates the window attributes of `node` for `spatial` dims. `kernel_from_weights`
// (Conv's W dims, possibly empty) is used when kernel_shape is absent and must agree with it.
Result<WindowAttrs> read_window_attrs(const ir::Node& node, size_t spatial,
                                      const std::vector<int64_t>& kernel_from_weights);

// Output extent of spatial dim `d` for input extent `in` and the padding actually applied
// (auto_pad resolved), for Conv and the pools.
struct WindowDim {
  int64_t out = 0;
  int64_t pad_begin = 0;
  int64_t pad_end = 0;
};
Result<WindowDim> window_dim(const ir::Node& node, const WindowAttrs& a, size_t d, int64_t in);

// Spatial output dims for symbolic input dims: unknown inputs (or an unknown kernel) give
// unknown outputs.
Result<ir::SymShape> window_output_dims(const ir::Node& node, const WindowAttrs& a,
                                        const ir::SymShape& in_spatial);

// Everything a windowed kernel needs about one concrete input.
struct WindowGeometry {
  Shape in, out, kernel;
  std::vector<int64_t> strides, dilations, pad_begin, pad_end;
};
Result<WindowGeometry> window_geometry(const ir::Node& node, const WindowAttrs& a,
                                       const Shape& in_spatial);

// Row-major odometer step over `dims`; false once every index has wrapped back to zero.
inline bool next_index(std::vector<int64_t>& idx, const Shape& dims) {
  for (size_t d = dims.size(); d-- > 0;) {
    if (++idx[d] < dims[d]) return true;
    idx[d] = 0;
  }
  return false;
}

// The row-major multi-index of flat position `flat` in `dims`.
std::vector<int64_t> unflatten_index(int64_t flat, const Shape& dims);

inline int64_t ceil_div(int64_t a, int64_t b) {
  return a >= 0 ? (a + b - 1) / b : -((-a) / b);
}

// Positions p in [0, n) whose image p * stride + offset lies in [0, limit): returns [lo, hi).
inline std::pair<int64_t, int64_t> valid_range(int64_t n, int64_t stride, int64_t offset,
                                               int64_t limit) {
  const int64_t lo = std::min(n, std::max<int64_t>(0, ceil_div(-offset, stride)));
  const int64_t hi = std::max(lo, std::min(n, ceil_div(limit - offset, stride)));
  return {lo, hi};
}

// The strided windows of im2col and col2im. For one kernel position `kidx`, walks the rows
// [row_begin, row_end) of `from` positions (a row spans the last dim, rows are numbered over the
// other dims in row-major order) and maps each position p to to-position
// p * stride + k * dilation - pad_begin. Calls fn(row, to_row_offset, lo, hi, last_offset): the
// row's number, the flat offset of the mapped row in `to` (-1 when it lies in the padding), the
// range [lo, hi) of last-dim positions that map inside `to`, and the offset to add to
// p * stride in the last dim.
template <typename Fn>
void for_each_window_row(const Shape& from, const Shape& to, const std::vector<int64_t>& kidx,
                         const WindowGeometry& g, int64_t row_begin, int64_t row_end, Fn&& fn) {
  const size_t last = from.size() - 1;
  const int64_t last_offset = kidx[last] * g.dilations[last] - g.pad_begin[last];
  const auto [lo, hi] = valid_range(from[last], g.strides[last], last_offset, to[last]);
  const Shape lead(from.begin(), from.end() - 1);
  std::vector<int64_t> idx = unflatten_index(row_begin, lead);
  for (int64_t row = row_begin; row < row_end; ++row) {
    int64_t offset = 0;
    for (size_t d = 0; d < lead.size() && offset >= 0; ++d) {
      const int64_t t = idx[d] * g.strides[d] + kidx[d] * g.dilations[d] - g.pad_begin[d];
      offset = (t < 0 || t >= to[d]) ? -1 : offset * to[d] + t;
    }
    if (offset >= 0) offset *= to[last];
    fn(row, offset, lo, hi, last_offset);
    next_index(idx, lead);
  }
}

namespace detail {
// Four rows of C updated from one row of B: the contiguous, vectorisable heart of the GEMM.
template <typename T>
inline void axpy4(int64_t n, const T* __restrict b, T a0, T a1, T a2, T a3, T* __restrict c0,
                  T* __restrict c1, T* __restrict c2, T* __restrict c3) {
  for (int64_t j = 0; j < n; ++j) {
    const T v = b[j];
    c0[j] += a0 * v;
    c1[j] += a1 * v;
    c2[j] += a2 * v;
    c3[j] += a3 * v;
  }
}
template <typename T>
inline void axpy1(int64_t n, const T* __restrict b, T a0, T* __restrict c0) {
  for (int64_t j = 0; j < n; ++j) c0[j] += a0 * b[j];
}
}  // namespace detail

// C += A * B with C (m x n, row stride ldc), A(i, p) = a[i * a_row + p * a_col] (so a transposed
// A is just other strides) and B (k x n, row stride ldb). The i-k-j order keeps the innermost
// loop on contiguous rows of B and C; blocking keeps a panel of B in cache while four rows of C
// accumulate from it.
template <typename T>
void gemm_accumulate(int64_t m, int64_t n, int64_t k, const T* a, int64_t a_row, int64_t a_col,
                     const T* b, int64_t ldb, T* c, int64_t ldc) {
  constexpr int64_t kBlockN = 512;
  constexpr int64_t kBlockK = 128;
  for (int64_t j0 = 0; j0 < n; j0 += kBlockN) {
    const int64_t nb = std::min(kBlockN, n - j0);
    for (int64_t p0 = 0; p0 < k; p0 += kBlockK) {
      const int64_t p1 = std::min(k, p0 + kBlockK);
      int64_t i = 0;
      for (; i + 4 <= m; i += 4) {
        T* c0 = c + i * ldc + j0;
        const T* ai = a + i * a_row;
        for (int64_t p = p0; p < p1; ++p) {
          const T* ap = ai + p * a_col;
          detail::axpy4(nb, b + p * ldb + j0, ap[0], ap[a_row], ap[2 * a_row], ap[3 * a_row], c0,
                        c0 + ldc, c0 + 2 * ldc, c0 + 3 * ldc);
        }
      }
      for (; i < m; ++i) {
        for (int64_t p = p0; p < p1; ++p) {
          detail::axpy1(nb, b + p * ldb + j0, a[i * a_row + p * a_col], c + i * ldc + j0);
        }
      }
    }
  }
}

// float16 / bfloat16.
inline bool is_half(DType t) {
  return t == DType::kF16 || t == DType::kBF16;
}

// Copy of a floating-point tensor converted to another floating-point type.
Tensor convert_float(const Tensor& t, DType to);

// Runs `kernel` in f32 for half-precision tensors: converts f16/bf16 inputs to f32, runs the
// kernel into f32 outputs and rounds those back. Keeps the typed kernels to float and double.
Status run_half_as_f32(ir::KernelContext& ctx, ir::ReferenceKernelFn kernel);

// Product of the known dims of a value's shape; nullopt if the value, its shape or a dim is
// unknown. For MAC counts.
std::optional<int64_t> known_numel(const ir::Value* v);

// The known dims of `shape` from index `from` on; empty when the rank or any of them is unknown.
std::vector<int64_t> known_dims_from(const std::optional<ir::SymShape>& shape, size_t from);

}  // namespace qf::ops
