// INT8 convolutions (and Gemm/MatMul as 1x1 convolutions) on the tensor cores: an implicit GEMM
// with mma.sync m16n8k32 (s8/u8 x s8 -> s32), the requantization fused in its epilogue. See
// int8_kernels.h for why this and not cuDNN or cuBLASLt, and for the layouts.
//
// GEMM view of a convolution, per group: rows m = output pixels (n, oy, ox), columns = output
// channels of the group, K = (ky, kx, ci) of the receptive field. Each CTA computes a BM x BN
// tile; its K loop stages 128-byte slices of the A rows (gathered from the input: the implicit
// im2col) and of the weights into shared memory, 3 stages deep with cp.async, and the warps
// multiply them with ldmatrix + mma.sync. Shared-memory rows are 144 bytes (128 + 16 of
// padding): the 8 rows an ldmatrix reads then fall into 8 different 16-byte bank groups. Each
// thread walks the receptive field incrementally (no divisions in the K loop).
//
// Pixels outside the input (padding) and K beyond the real receptive field read the input's
// zero point, so that they contribute real 0 after the zero-point correction in `offset`
// (weights are 0 there anyway). The epilogue computes v = acc * mult[c] + offset[c] into an fp32
// tile in shared memory, then walks it row by row so that the residual is read and the output
// written in whole 4- or 16-byte pieces of contiguous channels (NHWC rows): it adds the
// residual, applies the activation and rounds half to even onto the output grid, saturating, as
// oneDNN does on the cpu backend. (The first version stored straight from the mma fragments, 2
// bytes at 8 rows per warp instruction; on an H200 its time followed the output's size, about
// 14 us per MB, and made it slower than cuDNN's fp16 kernels on memory-heavy layers.)
//
// Layers with fewer than 16 output channels per group (depthwise) waste a tensor-core tile
// almost entirely: they run a direct kernel on the CUDA cores (one thread per output element,
// exact int32 accumulation), still in int8, and say so in their kernel name.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "backends/cuda/activation.cuh"
#include "backends/cuda/int8_kernels.h"

namespace qf::cuda {
namespace {

constexpr int kBK = kInt8TileK;  // bytes (= int8 elements) of K per stage
constexpr int kRowBytes = kBK + 16;
constexpr int kStages = 3;

// ---- PTX wrappers (sm_80+) ----

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

__device__ __forceinline__ void cp_async16(uint32_t dst, const void* src) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(dst), "l"(src));
}

__device__ __forceinline__ void cp_async4(uint32_t dst, const void* src) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4;\n" ::"r"(dst), "l"(src));
}

__device__ __forceinline__ void cp_async_commit() {
  asm volatile("cp.async.commit_group;\n" ::);
}

template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}

template <bool kUnsignedA>
__device__ __forceinline__ void mma_16832(int (&d)[4], const uint32_t (&a)[4], uint32_t b0,
                                          uint32_t b1) {
  if constexpr (kUnsignedA) {
    asm volatile(
        "mma.sync.aligned.m16n8k32.row.col.s32.u8.s8.s32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
        "{%8, %9}, {%0, %1, %2, %3};\n"
        : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  } else {
    asm volatile(
        "mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
        "{%8, %9}, {%0, %1, %2, %3};\n"
        : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
}

// ---- the epilogue, shared by both kernels ----

__device__ __forceinline__ float load_residual(const Int8Conv& p, int64_t i) {
  switch (p.z_type) {
    case DType::kI8:
      return p.z_scale * static_cast<float>(static_cast<const int8_t*>(p.z)[i] - p.z_zero_point);
    case DType::kU8:
      return p.z_scale * static_cast<float>(static_cast<const uint8_t*>(p.z)[i] - p.z_zero_point);
    default:
      return static_cast<const float*>(p.z)[i];
  }
}

// The epilogue's value of output element i (channel co) from its int32 accumulator.
__device__ __forceinline__ float epilogue_value(const Int8Conv& p, int64_t i, int co, int acc) {
  float v = static_cast<float>(acc) * p.mult[co] + p.offset[co];
  if (p.z) v += load_residual(p, i);
  return activate(p.act, v);
}

// The output's 8-bit grid as the epilogue applies it: the type's range is taken relative to the
// zero point, so that clamping before adding it cannot overflow.
struct OutGrid {
  float inv_scale;
  int lo, hi, zero_point;
};

__device__ __forceinline__ OutGrid out_grid(const Int8Conv& p) {
  const int lo = p.y_type == DType::kU8 ? 0 : -128;
  const int hi = p.y_type == DType::kU8 ? 255 : 127;
  return {p.y_inv_scale, lo - p.y_zero_point, hi - p.y_zero_point, p.y_zero_point};
}

// v on the output's 8-bit grid: rounded half to even and saturated, as oneDNN does on the cpu
// backend. cvt.rni to s32 (__float2int_rn) also saturates out-of-range values and turns NaN,
// which has no grid point, into 0: the zero point, real 0. Integer min/max after one conversion
// cost fewer instructions than rounding, clamping and checking in float: in layers with many
// output channels and a short K the epilogue's instructions are what the time is spent on.
__device__ __forceinline__ uint32_t quantize_byte(const OutGrid& g, float v) {
  const int q = min(max(__float2int_rn(v * g.inv_scale), g.lo), g.hi) + g.zero_point;
  return static_cast<uint32_t>(q) & 0xffu;
}

__device__ __forceinline__ uint32_t quantize_out(const Int8Conv& p, float v) {
  return quantize_byte(out_grid(p), v);
}

// The activation with its kind fixed at compile time (kAct an Act value), or read from `a` at
// run time (kAct < 0): a switch per element costs as much as the rest of an int8 epilogue.
template <int kAct>
__device__ __forceinline__ float activate_as(const ActParams& a, float x) {
  if constexpr (kAct < 0) {
    return activate(a, x);
  } else {
    ActParams fixed = a;
    fixed.kind = static_cast<Act>(kAct);
    return activate(fixed, x);
  }
}

__device__ __forceinline__ void store_value(const Int8Conv& p, int64_t i, float v) {
  if (p.y_type == DType::kF32) {
    static_cast<float*>(p.y)[i] = v;
  } else {
    static_cast<uint8_t*>(p.y)[i] = static_cast<uint8_t>(quantize_out(p, v));
  }
}

// Output element (pixel m, channel co) from its int32 accumulator.
__device__ __forceinline__ void store_output(const Int8Conv& p, int64_t m, int co, int acc) {
  const int64_t i = m * p.out_c + co;
  store_value(p, i, epilogue_value(p, i, co, acc));
}

// ---- the implicit-GEMM tensor-core kernel ----

// Shared memory of a tile configuration: the pipeline's stages, reused after the K loop as the
// fp32 staging tile of the epilogue ([BM][BN + 4]).
constexpr int smem_bytes(int bm, int bn) {
  const int stages = kStages * (bm + bn) * kRowBytes;
  const int staging = bm * (bn + 4) * 4;
  return stages > staging ? stages : staging;
}

// The residual of 4 neighbouring channels from element i on (`valid` of them real): one 4- or
// 16-byte load when aligned.
__device__ __forceinline__ float4 load_residual4(const Int8Conv& p, int64_t i, int valid) {
  float a[4] = {0.f, 0.f, 0.f, 0.f};
  if (valid == 4 && i % 4 == 0) {
    if (p.z_type == DType::kF32) {
      return *reinterpret_cast<const float4*>(static_cast<const float*>(p.z) + i);
    }
    const uint32_t z = *reinterpret_cast<const uint32_t*>(static_cast<const uint8_t*>(p.z) + i);
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const uint32_t b = (z >> (8 * j)) & 0xffu;
      const int q =
          p.z_type == DType::kI8 ? static_cast<int>(static_cast<int8_t>(b)) : static_cast<int>(b);
      a[j] = p.z_scale * static_cast<float>(q - p.z_zero_point);
    }
  } else {
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      if (j < valid) a[j] = load_residual(p, i + j);  // unrolled: `a` stays in registers
    }
  }
  return make_float4(a[0], a[1], a[2], a[3]);
}

// The epilogue's last step for 4 neighbouring channels from element i on (v: acc * mult +
// offset + residual): activation, requantization, one 4- or 16-byte store when aligned.
__device__ __forceinline__ void finish4(const Int8Conv& p, int64_t i, float4 v, int valid) {
  float a[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
  for (int j = 0; j < 4; ++j) a[j] = activate(p.act, a[j]);
  if (valid == 4 && i % 4 == 0) {
    if (p.y_type == DType::kF32) {
      *reinterpret_cast<float4*>(static_cast<float*>(p.y) + i) =
          make_float4(a[0], a[1], a[2], a[3]);
    } else {
      *reinterpret_cast<uint32_t*>(static_cast<uint8_t*>(p.y) + i) =
          quantize_out(p, a[0]) | (quantize_out(p, a[1]) << 8) | (quantize_out(p, a[2]) << 16) |
          (quantize_out(p, a[3]) << 24);
    }
    return;
  }
#pragma unroll
  for (int j = 0; j < 4; ++j) {
    if (j < valid) store_value(p, i + j, a[j]);
  }
}

// The epilogue's second half where the output and any residual are 8-bit and 16 channels line
// up in memory (Int8Conv::out16): each thread finishes 16 neighbouring channels of a row with
// one 16-byte residual load and one 16-byte store, kUnroll rows in flight. The 4-channel path
// kept a quarter of the bytes in flight per thread and left memory-bound layers (1x1 with a
// residual) waiting on latency. The staging tile is read in float4s rotated by the thread's
// column, so that the 8 threads of a shared-memory phase fall on different banks.
template <int BM, int BN, int kThreads, int kAct>
__device__ __forceinline__ void finish_rows16(const Int8Conv& p, const float* staging, int64_t m0,
                                              int n0, int group, int64_t rows) {
  constexpr int kStride = BN + 4;
  constexpr int kColThreads = BN / 16;
  constexpr int kRowsPerPass = kThreads / kColThreads;
  constexpr int kUnroll = 4;
  const int tid = threadIdx.x;
  const int col = tid % kColThreads;
  const int c16 = col * 16;
  if (n0 + c16 >= p.cout_g) return;  // cout_g is a multiple of 16
  const int co = group * p.cout_g + n0 + c16;
  const OutGrid grid = out_grid(p);
  const bool signed_z = p.z_type == DType::kI8;
  // Residual z = z_scale * q - z_scale * zero point.
  const float z_offset = -p.z_scale * static_cast<float>(p.z_zero_point);
  for (int r = tid / kColThreads; r < BM; r += kRowsPerPass * kUnroll) {
    uint4 z[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int row = r + u * kRowsPerPass;
      const int64_t m = m0 + row;
      z[u] = make_uint4(0, 0, 0, 0);
      if (p.z && row < BM && m < rows) {
        z[u] = *reinterpret_cast<const uint4*>(static_cast<const uint8_t*>(p.z) + m * p.out_c + co);
      }
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int row = r + u * kRowsPerPass;
      const int64_t m = m0 + row;
      if (row >= BM || m >= rows) break;
      const float* src = staging + row * kStride + c16;
      const uint32_t zw[4] = {z[u].x, z[u].y, z[u].z, z[u].w};
      uint32_t out[4];
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const int q4 = (j + col) & 3;  // rotated: see above
        const float4 v4 = *reinterpret_cast<const float4*>(src + 4 * q4);
        float v[4] = {v4.x, v4.y, v4.z, v4.w};
        uint32_t word = 0;
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          if (p.z) {
            const uint32_t b = (zw[q4] >> (8 * e)) & 0xffu;
            const int q = signed_z ? static_cast<int>(static_cast<int8_t>(b)) : static_cast<int>(b);
            v[e] += fmaf(p.z_scale, static_cast<float>(q), z_offset);
          }
          word |= quantize_byte(grid, activate_as<kAct>(p.act, v[e])) << (8 * e);
        }
        out[q4] = word;
      }
      *reinterpret_cast<uint4*>(static_cast<uint8_t*>(p.y) + m * p.out_c + co) =
          make_uint4(out[0], out[1], out[2], out[3]);
    }
  }
}

// kVec: the bytes of K one cp.async moves. 16: every 16-byte slice of K lies in one pixel's
// channels and is 16-byte aligned (cin_g % 16 == 0 and c % 16 == 0); 4: the same for 4-byte
// slices (cin_g % 4 == 0 and c % 4 == 0: an image's 3 channels padded to 4); 1: bytes gathered
// one by one through registers (any other channel count).
template <int BM, int BN, int WM, int WN, int kVec, bool kUnsignedA>
__global__ void __launch_bounds__(WM* WN * 32) imma_conv_kernel(const Int8Conv p) {
  constexpr int kThreads = WM * WN * 32;
  constexpr int TM = BM / WM;  // warp tile
  constexpr int TN = BN / WN;
  constexpr int MT = TM / 16;  // mma tiles per warp
  constexpr int NT = TN / 8;
  constexpr int kChunks = kBK / 16;                 // 16-byte chunks of a row per stage
  constexpr int kAIters = BM * kChunks / kThreads;  // A chunks per thread per stage
  constexpr int kBIters = BN * kChunks / kThreads;
  constexpr int kRowStep = kThreads / kChunks;  // rows between a thread's chunks
  static_assert(kAIters >= 1 && kBIters >= 1 && NT % 2 == 0, "tile shape");
  constexpr int kAStage = BM * kRowBytes;
  constexpr int kBStage = BN * kRowBytes;

  extern __shared__ __align__(16) unsigned char smem[];
  unsigned char* const a_smem = smem;
  unsigned char* const b_smem = smem + kStages * kAStage;

  const int tid = threadIdx.x;
  const int lane = tid & 31;
  const int warp = tid >> 5;
  const int wm = warp / WN;
  const int wn = warp % WN;
  const int group = blockIdx.z / p.splits;
  const int split = blockIdx.z % p.splits;
  const int64_t m0 = static_cast<int64_t>(blockIdx.x) * BM;
  const int n0 = blockIdx.y * BN;
  const int64_t rows = p.n * p.oh * p.ow;
  const int k_tiles = p.k_pad / kBK;
  const int kt_begin = static_cast<int>(static_cast<int64_t>(k_tiles) * split / p.splits);
  const int kt_end = static_cast<int>(static_cast<int64_t>(k_tiles) * (split + 1) / p.splits);

  // Each thread loads the same 16-byte K slice (kc) of kAIters rows in every stage.
  const int kc = tid % kChunks;
  const int row0 = tid / kChunks;
  const unsigned char* const x = static_cast<const unsigned char*>(p.x);
  int64_t a_base[kAIters];  // offset of the row's image plus the group's first channel
  int a_iy0[kAIters], a_ix0[kAIters];
#pragma unroll
  for (int i = 0; i < kAIters; ++i) {
    const int64_t m = m0 + row0 + i * kRowStep;
    if (m < rows) {
      // 32-bit division: rows < 2^31 (int8_launch_for's caller checks), and 64-bit division is
      // a long software sequence.
      const int ohw = static_cast<int>(p.oh * p.ow);
      const int img = static_cast<int>(m) / ohw;
      const int r = static_cast<int>(m) - img * ohw;
      const int oy = r / static_cast<int>(p.ow);
      const int ox = r - oy * static_cast<int>(p.ow);
      a_base[i] =
          static_cast<int64_t>(img) * p.h * p.w * p.c + static_cast<int64_t>(group) * p.cin_g;
      a_iy0[i] = oy * p.sh - p.ph;
      a_ix0[i] = ox * p.sw - p.pw;
    } else {
      a_base[i] = 0;
      a_iy0[i] = -(1 << 30);  // never inside the input: reads the fill
      a_ix0[i] = 0;
    }
  }
  const uint32_t fill4 = static_cast<uint32_t>(p.x_zero_point & 0xff) * 0x01010101u;
  const int8_t* const w_group = p.weights + static_cast<int64_t>(group) * p.cout_pad * p.k_pad +
                                static_cast<int64_t>(n0) * p.k_pad;
  // The receptive-field position (ky, kx, ci) of this thread's slice of the next K step to load,
  // advanced without divisions (k steps are loaded in order).
  int ld_k = kt_begin * kBK + kc * 16;
  int ld_ky, ld_kx, ld_ci;
  {
    const int rs = ld_k / p.cin_g;
    ld_ci = ld_k - rs * p.cin_g;
    ld_ky = rs / p.kw;
    ld_kx = rs - ld_ky * p.kw;
  }

  auto load_stage = [&](int stage, int kt) {
    unsigned char* as = a_smem + stage * kAStage;
    unsigned char* bs = b_smem + stage * kBStage;
    if constexpr (kVec == 16) {
      const bool k_ok = ld_k < p.k;
#pragma unroll
      for (int i = 0; i < kAIters; ++i) {
        unsigned char* dst = as + (row0 + i * kRowStep) * kRowBytes + kc * 16;
        const int iy = a_iy0[i] + ld_ky * p.dh;
        const int ix = a_ix0[i] + ld_kx * p.dw;
        if (k_ok && static_cast<unsigned>(iy) < static_cast<unsigned>(p.h) &&
            static_cast<unsigned>(ix) < static_cast<unsigned>(p.w)) {
          cp_async16(smem_addr(dst),
                     x + a_base[i] + (static_cast<int64_t>(iy) * p.w + ix) * p.c + ld_ci);
        } else {
          *reinterpret_cast<uint4*>(dst) = make_uint4(fill4, fill4, fill4, fill4);
        }
      }
    } else if constexpr (kVec == 4) {
      // Four 4-byte pieces per 16-byte slice, each one receptive-field position's channels.
      int ci = ld_ci, kx = ld_kx, ky = ld_ky;
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const bool k_ok = ld_k + 4 * j < p.k;
#pragma unroll
        for (int i = 0; i < kAIters; ++i) {
          unsigned char* dst = as + (row0 + i * kRowStep) * kRowBytes + kc * 16 + 4 * j;
          const int iy = a_iy0[i] + ky * p.dh;
          const int ix = a_ix0[i] + kx * p.dw;
          if (k_ok && static_cast<unsigned>(iy) < static_cast<unsigned>(p.h) &&
              static_cast<unsigned>(ix) < static_cast<unsigned>(p.w)) {
            cp_async4(smem_addr(dst),
                      x + a_base[i] + (static_cast<int64_t>(iy) * p.w + ix) * p.c + ci);
          } else {
            *reinterpret_cast<uint32_t*>(dst) = fill4;
          }
        }
        ci += 4;
        if (ci == p.cin_g) {
          ci = 0;
          if (++kx == p.kw) {
            kx = 0;
            ++ky;
          }
        }
      }
    } else {
      uint32_t words[kAIters][4];
#pragma unroll
      for (int i = 0; i < kAIters; ++i) {
#pragma unroll
        for (int j = 0; j < 4; ++j) words[i][j] = 0;
      }
      int ci = ld_ci, kx = ld_kx, ky = ld_ky;
#pragma unroll
      for (int j = 0; j < 16; ++j) {
        const bool k_ok = ld_k + j < p.k;
#pragma unroll
        for (int i = 0; i < kAIters; ++i) {
          const int iy = a_iy0[i] + ky * p.dh;
          const int ix = a_ix0[i] + kx * p.dw;
          uint32_t byte = fill4 & 0xff;
          if (k_ok && static_cast<unsigned>(iy) < static_cast<unsigned>(p.h) &&
              static_cast<unsigned>(ix) < static_cast<unsigned>(p.w)) {
            byte = __ldg(x + a_base[i] + (static_cast<int64_t>(iy) * p.w + ix) * p.c + ci);
          }
          words[i][j / 4] |= byte << (8 * (j % 4));
        }
        if (++ci == p.cin_g) {
          ci = 0;
          if (++kx == p.kw) {
            kx = 0;
            ++ky;
          }
        }
      }
#pragma unroll
      for (int i = 0; i < kAIters; ++i) {
        *reinterpret_cast<uint4*>(as + (row0 + i * kRowStep) * kRowBytes + kc * 16) =
            make_uint4(words[i][0], words[i][1], words[i][2], words[i][3]);
      }
    }
    // Weights: always inside the padded tensor.
#pragma unroll
    for (int i = 0; i < kBIters; ++i) {
      const int row = row0 + i * kRowStep;
      cp_async16(smem_addr(bs + row * kRowBytes + kc * 16),
                 w_group + static_cast<int64_t>(row) * p.k_pad + kt * kBK + kc * 16);
    }
    // The next K step of this thread's slice.
    ld_k += kBK;
    ld_ci += kBK;
    while (ld_ci >= p.cin_g) {
      ld_ci -= p.cin_g;
      if (++ld_kx == p.kw) {
        ld_kx = 0;
        ++ld_ky;
      }
    }
  };

  int acc[MT][NT][4];
#pragma unroll
  for (int i = 0; i < MT; ++i) {
#pragma unroll
    for (int j = 0; j < NT; ++j) {
#pragma unroll
      for (int r = 0; r < 4; ++r) acc[i][j][r] = 0;
    }
  }

  // Prologue: stages 0 .. kStages-2 in flight (empty groups keep the wait counts uniform).
#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) {
    if (kt_begin + s < kt_end) load_stage(s, kt_begin + s);
    cp_async_commit();
  }
  // ldmatrix row addresses (see the fragment layouts of mma.m16n8k32 in the PTX ISA): A matrices
  // 0-3 are rows 0-7 / 8-15 x bytes 0-15 / 16-31; B matrices are n rows 0-7 / 0-7 / 8-15 / 8-15
  // x bytes 0-15 / 16-31 / 0-15 / 16-31 (two n tiles per ldmatrix.x4).
  const int a_row = wm * TM + (lane % 8) + ((lane / 8) % 2) * 8;
  const int a_col = (lane / 16) * 16;
  const int b_row = wn * TN + (lane % 8) + (lane / 16) * 8;
  const int b_col = ((lane / 8) % 2) * 16;
  for (int kt = kt_begin; kt < kt_end; ++kt) {
    cp_async_wait<kStages - 2>();
    __syncthreads();
    // Refill the stage every warp finished reading in the previous iteration.
    const int next = kt + kStages - 1;
    if (next < kt_end) load_stage((next - kt_begin) % kStages, next);
    cp_async_commit();
    const int stage = (kt - kt_begin) % kStages;
    const uint32_t as = smem_addr(a_smem + stage * kAStage);
    const uint32_t bs = smem_addr(b_smem + stage * kBStage);
#pragma unroll
    for (int kk = 0; kk < kBK / 32; ++kk) {
      uint32_t a[MT][4];
      uint32_t b[NT][2];
#pragma unroll
      for (int mt = 0; mt < MT; ++mt) {
        ldmatrix_x4(a[mt], as + (a_row + mt * 16) * kRowBytes + kk * 32 + a_col);
      }
#pragma unroll
      for (int nt = 0; nt < NT; nt += 2) {
        uint32_t r[4];
        ldmatrix_x4(r, bs + (b_row + nt * 8) * kRowBytes + kk * 32 + b_col);
        b[nt][0] = r[0];
        b[nt][1] = r[1];
        b[nt + 1][0] = r[2];
        b[nt + 1][1] = r[3];
      }
#pragma unroll
      for (int mt = 0; mt < MT; ++mt) {
#pragma unroll
        for (int nt = 0; nt < NT; ++nt) {
          mma_16832<kUnsignedA>(acc[mt][nt], a[mt], b[nt][0], b[nt][1]);
        }
      }
    }
  }
  cp_async_wait<0>();

  if (p.splits > 1) {
    // Add this slice's partial sums into the tile's int32 scratch (one coalesced red per
    // accumulator); the last slice to arrive takes the totals and clears the scratch.
    const int64_t tile =
        (static_cast<int64_t>(group) * gridDim.y + blockIdx.y) * gridDim.x + blockIdx.x;
    int32_t* sums = p.split_sums + tile * BM * BN;
#pragma unroll
    for (int mt = 0; mt < MT; ++mt) {
#pragma unroll
      for (int nt = 0; nt < NT; ++nt) {
#pragma unroll
        for (int r = 0; r < 4; ++r) {
          atomicAdd(sums + (((warp * MT + mt) * NT + nt) * 4 + r) * 32 + lane, acc[mt][nt][r]);
        }
      }
    }
    __threadfence();
    __syncthreads();
    __shared__ int last;
    if (tid == 0) last = atomicAdd(p.split_counters + tile, 1) == p.splits - 1;
    __syncthreads();
    if (!last) return;
    __threadfence();
#pragma unroll
    for (int mt = 0; mt < MT; ++mt) {
#pragma unroll
      for (int nt = 0; nt < NT; ++nt) {
#pragma unroll
        for (int r = 0; r < 4; ++r) {
          int32_t* s = sums + (((warp * MT + mt) * NT + nt) * 4 + r) * 32 + lane;
          acc[mt][nt][r] = __ldcg(s);
          __stcg(s, 0);
        }
      }
    }
    if (tid == 0) p.split_counters[tile] = 0;
  }

  // Epilogue, in two halves through shared memory (the pipeline's, free now) so that global
  // memory sees whole rows: first every thread scales its accumulators into the fp32 staging
  // tile (accumulator (mt, nt, r) is row g (+8 for r >= 2), column 2 t (+1 for odd r) of its
  // 16x8 mma tile), then each thread finishes 4 neighbouring channels of one row at a time.
  __syncthreads();
  constexpr int kStride = BN + 4;
  float* const staging = reinterpret_cast<float*>(smem);
  const int g = lane / 4;
  const int t = lane % 4;
#pragma unroll
  for (int nt = 0; nt < NT; ++nt) {
    const int col = wn * TN + nt * 8 + 2 * t;
    const int n = n0 + col;
    const int co = group * p.cout_g + n;
    const float mu0 = n < p.cout_g ? p.mult[co] : 0.f;
    const float of0 = n < p.cout_g ? p.offset[co] : 0.f;
    const float mu1 = n + 1 < p.cout_g ? p.mult[co + 1] : 0.f;
    const float of1 = n + 1 < p.cout_g ? p.offset[co + 1] : 0.f;
#pragma unroll
    for (int mt = 0; mt < MT; ++mt) {
#pragma unroll
      for (int r2 = 0; r2 < 2; ++r2) {
        const int row = wm * TM + mt * 16 + g + r2 * 8;
        *reinterpret_cast<float2*>(staging + row * kStride + col) =
            make_float2(static_cast<float>(acc[mt][nt][2 * r2]) * mu0 + of0,
                        static_cast<float>(acc[mt][nt][2 * r2 + 1]) * mu1 + of1);
      }
    }
  }
  __syncthreads();
  if (p.out16) {
    // The two activations of ResNet-style networks fixed at compile time; others read p.act.
    switch (p.act.kind) {
      case Act::kRelu:
        finish_rows16<BM, BN, kThreads, static_cast<int>(Act::kRelu)>(p, staging, m0, n0, group,
                                                                      rows);
        break;
      case Act::kNone:
        finish_rows16<BM, BN, kThreads, static_cast<int>(Act::kNone)>(p, staging, m0, n0, group,
                                                                      rows);
        break;
      default:
        finish_rows16<BM, BN, kThreads, -1>(p, staging, m0, n0, group, rows);
    }
    return;
  }

  constexpr int kColThreads = BN / 4;
  constexpr int kRowsPerPass = kThreads / kColThreads;
  const int c4 = (tid % kColThreads) * 4;
  const int n = n0 + c4;
  if (n >= p.cout_g) return;
  const int valid = p.cout_g - n < 4 ? p.cout_g - n : 4;
  const int co = group * p.cout_g + n;
  // Rows in groups of kUnroll, each group's residual loads issued before its stores (which the
  // compiler may not move them past: y and z might alias, as far as it knows).
  constexpr int kUnroll = 4;
  for (int r = tid / kColThreads; r < BM; r += kRowsPerPass * kUnroll) {
    float4 v[kUnroll];
    float4 z[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int row = r + u * kRowsPerPass;
      const int64_t m = m0 + row;
      v[u] = make_float4(0.f, 0.f, 0.f, 0.f);
      z[u] = v[u];
      if (row >= BM || m >= rows) continue;
      v[u] = *reinterpret_cast<const float4*>(staging + row * kStride + c4);
      if (p.z) z[u] = load_residual4(p, m * p.out_c + co, valid);
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int row = r + u * kRowsPerPass;
      const int64_t m = m0 + row;
      if (row >= BM || m >= rows) break;
      finish4(p, m * p.out_c + co,
              make_float4(v[u].x + z[u].x, v[u].y + z[u].y, v[u].z + z[u].z, v[u].w + z[u].w),
              valid);
    }
  }
}

// ---- the direct kernel (CUDA cores) ----

template <bool kUnsignedA>
__global__ void direct_conv_kernel(const Int8Conv p, int64_t total) {
  using In = std::conditional_t<kUnsignedA, uint8_t, int8_t>;
  const In* x = static_cast<const In*>(p.x);
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int co = static_cast<int>(i % p.out_c);
    const int64_t m = i / p.out_c;
    const int64_t img = m / (p.oh * p.ow);
    const int64_t r = m - img * p.oh * p.ow;
    const int oy = static_cast<int>(r / p.ow);
    const int ox = static_cast<int>(r - static_cast<int64_t>(oy) * p.ow);
    const int group = co / p.cout_g;
    const int8_t* w =
        p.weights + (static_cast<int64_t>(group) * p.cout_pad + co % p.cout_g) * p.k_pad;
    const In* xi = x + img * p.h * p.w * p.c + static_cast<int64_t>(group) * p.cin_g;
    int acc = 0;
    for (int ky = 0; ky < p.kh; ++ky) {
      const int iy = oy * p.sh - p.ph + ky * p.dh;
      if (static_cast<unsigned>(iy) >= static_cast<unsigned>(p.h)) continue;
      for (int kx = 0; kx < p.kw; ++kx) {
        const int ix = ox * p.sw - p.pw + kx * p.dw;
        if (static_cast<unsigned>(ix) >= static_cast<unsigned>(p.w)) continue;
        const In* px = xi + (static_cast<int64_t>(iy) * p.w + ix) * p.c;
        const int8_t* wk = w + (ky * p.kw + kx) * p.cin_g;
        // Padding is real 0 and skipped; the zero point comes off each read value, so `offset`
        // holds no zero-point correction for this kernel (int8_kernels.h).
        for (int ci = 0; ci < p.cin_g; ++ci)
          acc += (static_cast<int>(px[ci]) - p.x_zero_point) * wk[ci];
      }
    }
    store_output(p, m, co, acc);
  }
}

struct TileShape {
  int bm, bn, smem;
};

// The three tensor-core configurations: 128x128 with 8 warps of 64x32, 128x64 with 8 warps of
// 32x32, 64x64 with 4 warps of 32x32 (see the instantiations in launch_or_prepare).
TileShape shape_of(Int8Tile t) {
  switch (t) {
    case Int8Tile::k128x128:
      return {128, 128, smem_bytes(128, 128)};
    case Int8Tile::k128x64:
      return {128, 64, smem_bytes(128, 64)};
    case Int8Tile::k64x64:
      return {64, 64, smem_bytes(64, 64)};
    case Int8Tile::kDirect:
      break;
  }
  return {1, 1, 0};
}

// `launch` false only opts the kernel in to its shared memory: above 48 KB of dynamic shared
// memory a kernel must, once per process, and that is done when a plan is built rather than in
// the first run, which may be a CUDA graph capture.
template <int BM, int BN, int WM, int WN, int kVec, bool kUnsignedA>
int launch_imma(const Int8Conv& p, cudaStream_t stream, bool launch) {
  auto kernel = imma_conv_kernel<BM, BN, WM, WN, kVec, kUnsignedA>;
  constexpr int kSmem = smem_bytes(BM, BN);
  static const cudaError_t attr =
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, kSmem);
  if (attr != cudaSuccess || !launch) return static_cast<int>(attr);
  const int64_t rows = p.n * p.oh * p.ow;
  const dim3 grid(static_cast<unsigned>((rows + BM - 1) / BM),
                  static_cast<unsigned>((p.cout_g + BN - 1) / BN),
                  static_cast<unsigned>(p.groups * p.splits));
  kernel<<<grid, WM * WN * 32, kSmem, stream>>>(p);
  return static_cast<int>(cudaGetLastError());
}

template <int BM, int BN, int WM, int WN>
int launch_tile(const Int8Conv& p, cudaStream_t stream, bool launch) {
  // 16- or 4-byte loads need the channels of a group aligned so (p.x is an arena or weight
  // address, 256-byte aligned, or null when only preparing).
  const auto x = reinterpret_cast<uintptr_t>(p.x);
  if (p.cin_g % 16 == 0 && p.c % 16 == 0 && x % 16 == 0) {
    return p.x_unsigned ? launch_imma<BM, BN, WM, WN, 16, true>(p, stream, launch)
                        : launch_imma<BM, BN, WM, WN, 16, false>(p, stream, launch);
  }
  if (p.cin_g % 4 == 0 && p.c % 4 == 0 && x % 4 == 0) {
    return p.x_unsigned ? launch_imma<BM, BN, WM, WN, 4, true>(p, stream, launch)
                        : launch_imma<BM, BN, WM, WN, 4, false>(p, stream, launch);
  }
  return p.x_unsigned ? launch_imma<BM, BN, WM, WN, 1, true>(p, stream, launch)
                      : launch_imma<BM, BN, WM, WN, 1, false>(p, stream, launch);
}

int launch_or_prepare(const Int8Conv& p, cudaStream_t stream, bool launch) {
  switch (p.tile) {
    case Int8Tile::k128x128:
      return launch_tile<128, 128, 2, 4>(p, stream, launch);
    case Int8Tile::k128x64:
      return launch_tile<128, 64, 4, 2>(p, stream, launch);
    case Int8Tile::k64x64:
      return launch_tile<64, 64, 2, 2>(p, stream, launch);
    case Int8Tile::kDirect:
      break;
  }
  if (!launch) return 0;
  const int64_t total = p.n * p.oh * p.ow * p.out_c;
  const int64_t blocks = std::min<int64_t>((total + 255) / 256, 65535 * 8);
  if (p.x_unsigned) {
    direct_conv_kernel<true><<<static_cast<unsigned>(blocks), 256, 0, stream>>>(p, total);
  } else {
    direct_conv_kernel<false><<<static_cast<unsigned>(blocks), 256, 0, stream>>>(p, total);
  }
  return static_cast<int>(cudaGetLastError());
}

}  // namespace

int int8_tile_rows(Int8Tile t) {
  return shape_of(t).bm;
}

int int8_tile_cols(Int8Tile t) {
  return shape_of(t).bn;
}

Int8Launch int8_launch_for(int64_t m, int cout_g, int groups, int k_pad, int sms, int max_smem) {
  if (cout_g < 16) return {Int8Tile::kDirect, 1};
  auto tiles = [&](Int8Tile t) {
    const TileShape s = shape_of(t);
    return ((m + s.bm - 1) / s.bm) * ((cout_g + s.bn - 1) / s.bn) * groups;
  };
  auto fits = [&](Int8Tile t) { return shape_of(t).smem <= max_smem; };
  // The largest tile that still gives every multiprocessor two CTAs; 64-channel layers never
  // take a 128-column tile (half of it would multiply padding). 128x128 needs 108 KB of shared
  // memory: not on GPUs with 99 KB per block (sm_86, sm_89).
  Int8Launch l;
  if (cout_g > 64 && fits(Int8Tile::k128x128) && tiles(Int8Tile::k128x128) >= 2 * sms) {
    l.tile = Int8Tile::k128x128;
  } else if (tiles(Int8Tile::k128x64) >= 2 * sms) {
    l.tile = Int8Tile::k128x64;
  } else {
    l.tile = Int8Tile::k64x64;
  }
  // Too few tiles for the GPU and a long K loop: split K so that about two CTAs per
  // multiprocessor run, each slice at least 2 K steps long.
  const int64_t n_tiles = tiles(l.tile);
  const int k_tiles = k_pad / kInt8TileK;
  if (n_tiles < sms && k_tiles >= 4) {
    const int64_t want = (2 * sms + n_tiles - 1) / n_tiles;
    l.splits = static_cast<int>(std::min<int64_t>({want, k_tiles / 2, 16}));
    if (l.splits < 2) l.splits = 1;
  }
  return l;
}

std::vector<Int8Launch> int8_launch_candidates(int64_t m, int cout_g, int groups, int k_pad,
                                               int sms, int max_smem) {
  const Int8Launch heuristic = int8_launch_for(m, cout_g, groups, k_pad, sms, max_smem);
  std::vector<Int8Launch> out = {heuristic};
  if (heuristic.tile == Int8Tile::kDirect) return out;
  const int k_tiles = k_pad / kInt8TileK;
  for (Int8Tile t : {Int8Tile::k128x128, Int8Tile::k128x64, Int8Tile::k64x64}) {
    const TileShape s = shape_of(t);
    // A 128-column tile over 64 or fewer channels multiplies padding for half its width.
    if (s.smem > max_smem || (s.bn == 128 && cout_g <= 64)) continue;
    const int64_t tiles = ((m + s.bm - 1) / s.bm) * ((cout_g + s.bn - 1) / s.bn) * groups;
    for (int splits = 1; splits <= 16; splits *= 2) {
      // Splitting only pays while CTAs are short of filling the GPU a few times over.
      if (splits > 1 && (tiles * splits > 4 * sms || splits > k_tiles / 2)) break;
      const Int8Launch l{t, splits};
      if (std::find(out.begin(), out.end(), l) == out.end()) out.push_back(l);
    }
  }
  return out;
}

int64_t int8_split_sum_bytes(const Int8Conv& p) {
  if (p.splits <= 1 || p.tile == Int8Tile::kDirect) return 0;
  const TileShape s = shape_of(p.tile);
  const int64_t rows = p.n * p.oh * p.ow;
  return ((rows + s.bm - 1) / s.bm) * ((p.cout_g + s.bn - 1) / s.bn) * p.groups * s.bm * s.bn *
         static_cast<int64_t>(sizeof(int32_t));
}

int64_t int8_split_counter_count(const Int8Conv& p) {
  if (p.splits <= 1 || p.tile == Int8Tile::kDirect) return 0;
  const TileShape s = shape_of(p.tile);
  const int64_t rows = p.n * p.oh * p.ow;
  return ((rows + s.bm - 1) / s.bm) * ((p.cout_g + s.bn - 1) / s.bn) * p.groups;
}

int prepare_int8_conv(const Int8Conv& p) {
  return launch_or_prepare(p, nullptr, false);
}

int launch_int8_conv(const Int8Conv& p, cudaStream_t stream) {
  if (p.n * p.oh * p.ow == 0 || p.out_c == 0) return 0;
  Int8Conv q = p;
  const auto aligned16 = [](const void* ptr) { return reinterpret_cast<uintptr_t>(ptr) % 16 == 0; };
  q.out16 = p.y_type != DType::kF32 && (!p.z || p.z_type != DType::kF32) && p.cout_g % 16 == 0 &&
            p.out_c % 16 == 0 && aligned16(p.y) && aligned16(p.z);
  return launch_or_prepare(q, stream, true);
}

}  // namespace qf::cuda
