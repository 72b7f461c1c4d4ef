// The cuda backend's INT8 convolution kernels (int8_kernels.cu), behind a plain C++ launcher.
//
// Why our own kernels and not cuDNN or cuBLASLt (measured on an H200, see docs/ARCHITECTURE.md
// "CUDA backend"): an INT8 layer needs y = requantize(act(acc * sx * sw[c] + bias[c] + z)) with
// a scale per output channel c. cuDNN's legacy int8 convolutions take one scalar alpha, so per-
// channel weight scales need a float output and a second kernel; cuBLASLt's int8 GEMM has a per-
// row alpha vector but reads only s8 (no u8 activations after a ReLU, no zero points) and needs
// an im2col copy for every convolution that is not 1x1. One implicit-GEMM kernel on the tensor
// cores (mma.sync m16n8k32, s8/u8 x s8 -> s32) with the whole requantization in its epilogue
// does every convolution, Gemm and MatMul with constant weights in one launch, reading u8 or s8
// activations on any grid (zero points included) and writing s8, u8 or f32.
//
// Layouts: activations NHWC (a GEMM's [rows, K] is the same with H = rows, W = 1, C = K), the
// channel of a pixel innermost; weights [groups][cout_pad][k_pad] s8 with k = (ky * kw + kx) *
// cin_g + ci, zero beyond the real cout_g x k (so the kernel never bounds-checks weights).
#pragma once

#include <cstdint>
#include <vector>

#include "backends/cuda/kernels.h"

namespace qf::cuda {

// The tile shapes of the implicit-GEMM kernel (rows = output pixels x columns = output channels
// of one group); the builder times them per layer (int8_launch_candidates, int8_tactics.cc).
enum class Int8Tile : int {
  k128x128,  // 8 warps: large layers at large batches
  k128x64,   // 8 warps: 64-channel layers, or too few 128x128 tiles to fill the GPU
  k64x64,    // 4 warps: small layers (batch 1)
  kDirect,   // no tensor cores: one thread per output (depthwise, < 16 channels per group)
};

struct Int8Conv {
  // Input: NHWC, `c` channels per pixel (all groups), u8 or s8 on the grid (scale, zero point)
  // whose zero point fills the padding (real 0).
  const void* x = nullptr;
  bool x_unsigned = false;
  int x_zero_point = 0;
  int64_t n = 1, h = 1, w = 1, c = 1;
  // Output geometry: NHWC [n, oh, ow, out_c].
  int64_t oh = 1, ow = 1, out_c = 1;
  int kh = 1, kw = 1, sh = 1, sw = 1, ph = 0, pw = 0, dh = 1, dw = 1;
  int groups = 1, cin_g = 1, cout_g = 1;
  // Weights (see the file comment): k = kh * kw * cin_g real columns of k_pad, cout_pad rows.
  const int8_t* weights = nullptr;
  int k = 1, k_pad = 64, cout_pad = 64;
  // Epilogue, per output channel co: v = acc * mult[co] + offset[co] (offset holds the bias and,
  // for the tensor-core tiles, the input zero point's correction -zp * sum(w[co]) * mult[co];
  // the direct kernel subtracts the zero point from each value it reads instead), v += z,
  // v = act(v), then y = v (f32) or
  // saturate(round_half_even(v * y_inv_scale) + y_zero_point) (s8/u8).
  const float* mult = nullptr;
  const float* offset = nullptr;
  const void* z = nullptr;  // the residual, NHWC like y; nullptr: none
  DType z_type = DType::kF32;
  float z_scale = 1.f;  // int8 residuals: real = z_scale * (q - z_zero_point)
  int z_zero_point = 0;
  void* y = nullptr;
  DType y_type = DType::kF32;  // kF32, kI8 or kU8
  float y_inv_scale = 1.f;
  int y_zero_point = 0;
  ActParams act;
  // Split-K (int8_split_k): `splits` slices of the K loop add their partial sums into
  // `split_sums` (int32 per tile element) and the last one to finish a tile (counted in
  // `split_counters`) runs the epilogue and zeroes both again for the next launch.
  int splits = 1;
  int32_t* split_sums = nullptr;
  int32_t* split_counters = nullptr;
  Int8Tile tile = Int8Tile::k128x128;
  // Set by launch_int8_conv: y (and z, if any) are 8-bit and 16-byte aligned in whole 16-channel
  // pieces, so that the epilogue moves 16 channels per thread.
  bool out16 = false;
};

// Rows and columns of one tile (1 x 1 for kDirect).
int int8_tile_rows(Int8Tile t);
int int8_tile_cols(Int8Tile t);
// The K granularity of the weights (k_pad is a multiple of it): one pipeline stage.
inline constexpr int kInt8TileK = 128;

// The shape heuristic's tile for a layer of `m` output pixels, `cout_g` channels per group,
// `groups`, K padded to `k_pad`, on a GPU with `sms` multiprocessors and `max_smem` bytes of
// shared memory per block (opt-in), and the split-K factor (1: none).
struct Int8Launch {
  Int8Tile tile = Int8Tile::k128x128;
  int splits = 1;
  bool operator==(const Int8Launch& o) const { return tile == o.tile && splits == o.splits; }
};
Int8Launch int8_launch_for(int64_t m, int cout_g, int groups, int k_pad, int sms, int max_smem);
// The launches worth timing for such a layer (the builder's tactics), int8_launch_for's first:
// every tile shape that fits, each without split-K and, where its tiles leave multiprocessors
// idle, split 2, 4, 8 or 16 ways (each slice at least 2 K steps long).
std::vector<Int8Launch> int8_launch_candidates(int64_t m, int cout_g, int groups, int k_pad,
                                               int sms, int max_smem);
// Weight rows (output channels per group) padded to a multiple of this serve every tile shape.
inline constexpr int kInt8WeightRowUnit = 128;
// Bytes of split_sums and entries of split_counters a launch with these needs (0 without split).
int64_t int8_split_sum_bytes(const Int8Conv& p);
int64_t int8_split_counter_count(const Int8Conv& p);

// Opts the kernel `p` will launch in to its shared memory (once per process; call it when the
// plan is built, with p.x null or any aligned address). Returns a cudaError_t (as int).
int prepare_int8_conv(const Int8Conv& p);

// Enqueues the convolution; returns the launch's cudaError_t (as int).
int launch_int8_conv(const Int8Conv& p, cudaStream_t stream);

}  // namespace qf::cuda
