// The measurement behind the cuda backend's INT8 convolution choice (docs/ARCHITECTURE.md, "CUDA
// backend"): on ResNet-50's convolution shapes at batch 1 and 256 it times
//   own     our implicit-GEMM kernel (int8_kernels.h), u8 x s8, per-channel requantization in its
//           epilogue (here: f32 output of the exact accumulator, checked against the CPU),
//   cudnn8  cuDNN's legacy cudnnConvolutionForward with INT8 NHWC input and weights, INT32
//           compute and float output (INT8_EXT_CONFIG; a per-channel scale would need one more
//           kernel), and with INT8 output (INT8_CONFIG, one scalar alpha),
//   lt8     cuBLASLt int8 GEMM (COMPUTE_32I, s8 in, s8 out, per-row alpha vector = per output
//           channel, TN) for the 1x1 stride-1 shapes only (others would need an im2col copy),
//   cudnn16 cuDNN fp16 NHWC tensor-op convolution (the FP16 engine's kernels) as the baseline,
// and prints one row per shape and batch: microseconds and effective TOPS (2 * MACs / time), or
// the library's refusal. Not part of the build or of CI (it needs a GPU); built and run by hand:
//   nvcc -std=c++17 -O3 -arch=sm_90 -Iinclude -Isrc --expt-relaxed-constexpr \
//     bench/cuda_int8_conv_probe.cu src/backends/cuda/int8_kernels.cu \
//     -lcudnn -lcublasLt -o build-cuda/int8_probe
#include <cublasLt.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "backends/cuda/int8_kernels.h"

using namespace qf;
using namespace qf::cuda;

#define CK(x)                                                                              \
  do {                                                                                     \
    cudaError_t e_ = (x);                                                                  \
    if (e_ != cudaSuccess) {                                                               \
      std::printf("CUDA error %s at %s:%d\n", cudaGetErrorString(e_), __FILE__, __LINE__); \
      std::exit(1);                                                                        \
    }                                                                                      \
  } while (0)

// The ceilings the kernel runs against: mma.sync m16n8k32 s8 on registers only (8 independent
// accumulator chains per warp), and stores of 205 MB laid out as NHWC rows of 256 channels, in
// the mma fragment pattern (2 bytes, 8 rows per warp instruction) or as whole rows (4 bytes per
// thread, 128 contiguous bytes per warp instruction).
__global__ void mma_peak_kernel(int iters, int* out) {
  uint32_t a[4] = {threadIdx.x, threadIdx.x * 3u, threadIdx.x * 5u, threadIdx.x * 7u};
  uint32_t b0 = threadIdx.x * 11u, b1 = threadIdx.x * 13u;
  int acc[8][4] = {};
  for (int i = 0; i < iters; ++i) {
#pragma unroll
    for (int c = 0; c < 8; ++c) {
      asm volatile(
          "mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
          "{%8, %9}, {%0, %1, %2, %3};\n"
          : "+r"(acc[c][0]), "+r"(acc[c][1]), "+r"(acc[c][2]), "+r"(acc[c][3])
          : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
    }
  }
  int s = 0;
  for (int c = 0; c < 8; ++c) s += acc[c][0] + acc[c][1] + acc[c][2] + acc[c][3];
  if (s == 0x12345678) out[0] = s;
}

__global__ void store_fragment_kernel(uint8_t* y, int64_t rows) {
  // One warp per 16 rows x 32 channels, as a 64x32 warp tile's stores would go.
  const int64_t warp = (blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x) / 32;
  const int lane = threadIdx.x % 32;
  const int64_t tiles_per_row = 256 / 32;
  const int64_t r0 = warp / tiles_per_row * 16, c0 = warp % tiles_per_row * 32;
  if (r0 >= rows) return;
  for (int r2 = 0; r2 < 2; ++r2) {
    for (int nt = 0; nt < 4; ++nt) {
      const int64_t i = (r0 + lane / 4 + 8 * r2) * 256 + c0 + nt * 8 + 2 * (lane % 4);
      *reinterpret_cast<uint16_t*>(y + i) = static_cast<uint16_t>(i);
    }
  }
}

__global__ void store_rows_kernel(uint8_t* y, int64_t n) {
  const int64_t i = (blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x) * 4;
  if (i < n) *reinterpret_cast<uint32_t*>(y + i) = static_cast<uint32_t>(i);
}

struct Shape2 {
  const char* name;
  int c, h, w, m, k, stride, pad;
};

template <typename F>
float time_us(F&& f, int iters = 20) {
  cudaEvent_t a, b;
  cudaEventCreate(&a);
  cudaEventCreate(&b);
  for (int i = 0; i < 3; ++i) f();
  cudaEventRecord(a);
  for (int i = 0; i < iters; ++i) f();
  cudaEventRecord(b);
  cudaEventSynchronize(b);
  float ms = 0;
  cudaEventElapsedTime(&ms, a, b);
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  return 1e3f * ms / iters;
}

void* dalloc(size_t bytes) {
  void* p = nullptr;
  CK(cudaMalloc(&p, std::max<size_t>(bytes, 16)));
  return p;
}

int main() {
  int sms = 0, max_smem = 0;
  CK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
  CK(cudaDeviceGetAttribute(&max_smem, cudaDevAttrMaxSharedMemoryPerBlockOptin, 0));
  cudaDeviceProp prop;
  CK(cudaGetDeviceProperties(&prop, 0));
  std::printf("%s, %d SMs, cuDNN %zu, cuBLASLt %zu\n", prop.name, sms, cudnnGetVersion(),
              cublasLtGetVersion());
  cudnnHandle_t dnn;
  cudnnCreate(&dnn);
  cublasLtHandle_t lt;
  cublasLtCreate(&lt);
  const Shape2 shapes[] = {
      {"stem 7x7/2 3->64", 3, 224, 224, 64, 7, 2, 3},  // byte gathers (engines pad to 4)
      {"stem 7x7/2 4->64", 4, 224, 224, 64, 7, 2, 3},  // the engines' padded stem: 4-byte loads
      {"l1 1x1 256->64", 256, 56, 56, 64, 1, 1, 0},
      {"l1 3x3 64->64", 64, 56, 56, 64, 3, 1, 1},
      {"l1 1x1 64->256", 64, 56, 56, 256, 1, 1, 0},
      {"l2 3x3/2 128->128", 128, 56, 56, 128, 3, 2, 1},
      {"l2 3x3 128->128", 128, 28, 28, 128, 3, 1, 1},
      {"l3 3x3 256->256", 256, 14, 14, 256, 3, 1, 1},
      {"l3 1x1 1024->256", 1024, 14, 14, 256, 1, 1, 0},
      {"l4 1x1 2048->512", 2048, 7, 7, 512, 1, 1, 0},
      {"l4 3x3 512->512", 512, 7, 7, 512, 3, 1, 1},
      {"l4 1x1 512->2048", 512, 7, 7, 2048, 1, 1, 0},
  };
  void* ws = dalloc(size_t{256} << 20);
  {
    int* dummy = static_cast<int*>(dalloc(16));
    const int iters = 4096, blocks = sms * 4, threads = 256;
    const float us = time_us([&] { mma_peak_kernel<<<blocks, threads>>>(iters, dummy); }, 5);
    const double ops = 2.0 * 16 * 8 * 32 * 8 * static_cast<double>(iters) * blocks * threads / 32;
    std::printf("mma.sync m16n8k32 s8 peak (registers only): %.0f TOPS\n", ops / us * 1e-6);
    const int64_t rows = int64_t{256} * 56 * 56, n = rows * 256;
    uint8_t* y = static_cast<uint8_t*>(dalloc(n));
    const float frag = time_us(
        [&] {
          store_fragment_kernel<<<static_cast<unsigned>(rows / 16 * 8 * 32 / 256), 256>>>(y, rows);
        },
        5);
    const float whole =
        time_us([&] { store_rows_kernel<<<static_cast<unsigned>(n / 4 / 256), 256>>>(y, n); }, 5);
    std::printf(
        "storing %.0f MB: fragment pattern %.1f us (%.0f GB/s), whole rows %.1f us (%.0f GB/s)\n",
        n / 1e6, frag, n / frag * 1e-3, whole, n / whole * 1e-3);
    CK(cudaGetLastError());
    cudaFree(y);
    cudaFree(dummy);
  }
  std::mt19937 gen(7);
  bool all_ok = true;
  double sum_own[2] = {0, 0}, sum_16[2] = {0, 0}, sum_cudnn8[2] = {0, 0};
  std::printf("%-20s %5s %14s %14s %14s %14s %14s   check\n", "shape", "batch", "own us(TOPS)",
              "cudnn8 f32out", "cudnn8 s8out", "lt8 s8out", "cudnn16");
  for (const int batch : {1, 256}) {
    for (const Shape2& s : shapes) {
      const int oh = (s.h + 2 * s.pad - s.k) / s.stride + 1;
      const int ow = (s.w + 2 * s.pad - s.k) / s.stride + 1;
      const int64_t xn = int64_t{batch} * s.h * s.w * s.c;
      const int64_t rows = int64_t{batch} * oh * ow;
      const int64_t yn = rows * s.m;
      const int kk = s.k * s.k * s.c;
      const double macs = static_cast<double>(rows) * s.m * kk;
      // Host data: u8 activations over the whole byte range, small weights (exact f32 sums).
      std::vector<uint8_t> hx(static_cast<size_t>(xn));
      for (auto& v : hx) v = static_cast<uint8_t>(gen() & 0xff);
      std::vector<int8_t> hw(static_cast<size_t>(s.m) * kk);  // [m][ky][kx][c]
      for (auto& v : hw) v = static_cast<int8_t>(static_cast<int>(gen() % 5) - 2);
      void* dx = dalloc(xn);
      CK(cudaMemcpy(dx, hx.data(), xn, cudaMemcpyHostToDevice));
      // ---- own kernel ----
      Int8Conv p;
      p.x = dx;
      p.x_unsigned = true;
      p.x_zero_point = 3;
      p.n = batch;
      p.h = s.h;
      p.w = s.w;
      p.c = s.c;
      p.oh = oh;
      p.ow = ow;
      p.out_c = s.m;
      p.kh = p.kw = s.k;
      p.sh = p.sw = s.stride;
      p.ph = p.pw = s.pad;
      p.cin_g = s.c;
      p.cout_g = s.m;
      p.k = kk;
      const int k_pad = (kk + kInt8TileK - 1) / kInt8TileK * kInt8TileK;
      const Int8Launch launch = int8_launch_for(rows, s.m, 1, k_pad, sms, max_smem);
      p.tile = launch.tile;
      p.splits = launch.splits;
      p.k_pad = launch.tile == Int8Tile::kDirect ? kk : k_pad;
      // Rows padded for the widest tile, so that every tile can be timed on the same weights.
      p.cout_pad = launch.tile == Int8Tile::kDirect ? s.m : (s.m + 127) / 128 * 128;
      std::vector<int8_t> packed(static_cast<size_t>(p.cout_pad) * p.k_pad, 0);
      std::vector<float> mult(s.m, 1.f), offset(s.m, 0.f);
      for (int co = 0; co < s.m; ++co) {
        int64_t sum = 0;
        for (int k = 0; k < kk; ++k) {
          packed[static_cast<size_t>(co) * p.k_pad + k] = hw[static_cast<size_t>(co) * kk + k];
          sum += hw[static_cast<size_t>(co) * kk + k];
        }
        offset[co] = -static_cast<float>(p.x_zero_point * sum);
      }
      void* dw = dalloc(packed.size());
      CK(cudaMemcpy(dw, packed.data(), packed.size(), cudaMemcpyHostToDevice));
      void* dm = dalloc(s.m * 4);
      void* dof = dalloc(s.m * 4);
      CK(cudaMemcpy(dm, mult.data(), s.m * 4, cudaMemcpyHostToDevice));
      CK(cudaMemcpy(dof, offset.data(), s.m * 4, cudaMemcpyHostToDevice));
      void* dy = dalloc(yn * 4);
      CK(cudaMemset(dy, 0xff, yn * 4));  // poison: NaN everywhere
      p.weights = static_cast<const int8_t*>(dw);
      p.mult = static_cast<const float*>(dm);
      p.offset = static_cast<const float*>(dof);
      p.y = dy;
      p.y_type = DType::kF32;
      const int64_t split_bytes = int8_split_sum_bytes(p);
      const int64_t counters = int8_split_counter_count(p);
      void* dsplit = dalloc(split_bytes + counters * 4);
      CK(cudaMemset(dsplit, 0, split_bytes + counters * 4));
      p.split_sums = static_cast<int32_t*>(dsplit);
      p.split_counters = reinterpret_cast<int32_t*>(static_cast<char*>(dsplit) + split_bytes);
      CK(static_cast<cudaError_t>(launch_int8_conv(p, nullptr)));
      CK(cudaDeviceSynchronize());
      // Check: all outputs at batch 1, 20000 random ones at 256 (exact integers).
      std::vector<float> hy(static_cast<size_t>(yn));
      CK(cudaMemcpy(hy.data(), dy, yn * 4, cudaMemcpyDeviceToHost));
      int64_t bad = 0, checked = 0;
      auto check = [&](int64_t m, int co) {
        const int img = static_cast<int>(m / (oh * ow));
        const int oy = static_cast<int>(m / ow % oh), ox = static_cast<int>(m % ow);
        int64_t acc = 0;
        for (int ky = 0; ky < s.k; ++ky) {
          for (int kx = 0; kx < s.k; ++kx) {
            const int iy = oy * s.stride - s.pad + ky, ix = ox * s.stride - s.pad + kx;
            if (iy < 0 || iy >= s.h || ix < 0 || ix >= s.w) continue;
            for (int ci = 0; ci < s.c; ++ci) {
              acc += (hx[((static_cast<int64_t>(img) * s.h + iy) * s.w + ix) * s.c + ci] -
                      p.x_zero_point) *
                     hw[(static_cast<size_t>(co) * s.k * s.k + ky * s.k + kx) * s.c + ci];
            }
          }
        }
        ++checked;
        if (hy[static_cast<size_t>(m * s.m + co)] != static_cast<float>(acc)) {
          if (bad < 3) {
            std::printf("  MISMATCH %s b%d m=%lld co=%d got %f want %lld\n", s.name, batch,
                        static_cast<long long>(m), co, hy[static_cast<size_t>(m * s.m + co)],
                        static_cast<long long>(acc));
          }
          ++bad;
        }
      };
      if (batch == 1 && yn <= 400000) {
        for (int64_t m = 0; m < rows; ++m) {
          for (int co = 0; co < s.m; ++co) check(m, co);
        }
      } else {
        for (int i = 0; i < 20000; ++i) {
          check(static_cast<int64_t>(gen() % rows), static_cast<int>(gen() % s.m));
        }
      }
      all_ok = all_ok && bad == 0;
      p.y_type = DType::kU8;  // time the requantizing epilogue, as engines run it
      p.y_inv_scale = 1.f / 64.f;
      const float own = time_us([&] { launch_int8_conv(p, nullptr); });
      CK(cudaGetLastError());
      std::string tiles;  // every tile at batch 256 (no split), to check the heuristic's choice
      if (batch == 256) {
        for (const Int8Tile t : {Int8Tile::k128x128, Int8Tile::k128x64, Int8Tile::k64x64}) {
          Int8Conv q = p;
          q.tile = t;
          q.splits = 1;
          if (prepare_int8_conv(q) != 0) continue;
          const float us = time_us([&] { launch_int8_conv(q, nullptr); });
          tiles += " " + std::to_string(int8_tile_rows(t)) + "x" +
                   std::to_string(int8_tile_cols(t)) + ":" + std::to_string(static_cast<int>(us));
        }
        CK(cudaGetLastError());
      }
      // ---- cuDNN legacy int8 and fp16 ----
      auto cudnn_time = [&](cudnnDataType_t xt, cudnnDataType_t yt, cudnnDataType_t ct, size_t es_x,
                            size_t es_y) -> std::string {
        cudnnTensorDescriptor_t xd, yd;
        cudnnFilterDescriptor_t wd;
        cudnnConvolutionDescriptor_t cd;
        cudnnCreateTensorDescriptor(&xd);
        cudnnCreateTensorDescriptor(&yd);
        cudnnCreateFilterDescriptor(&wd);
        cudnnCreateConvolutionDescriptor(&cd);
        std::string out;
        cudnnStatus_t st =
            cudnnSetTensor4dDescriptor(xd, CUDNN_TENSOR_NHWC, xt, batch, s.c, s.h, s.w);
        if (st == CUDNN_STATUS_SUCCESS)
          st = cudnnSetTensor4dDescriptor(yd, CUDNN_TENSOR_NHWC, yt, batch, s.m, oh, ow);
        if (st == CUDNN_STATUS_SUCCESS)
          st = cudnnSetFilter4dDescriptor(wd, xt, CUDNN_TENSOR_NHWC, s.m, s.c, s.k, s.k);
        if (st == CUDNN_STATUS_SUCCESS)
          st = cudnnSetConvolution2dDescriptor(cd, s.pad, s.pad, s.stride, s.stride, 1, 1,
                                               CUDNN_CROSS_CORRELATION, ct);
        if (st == CUDNN_STATUS_SUCCESS) st = cudnnSetConvolutionMathType(cd, CUDNN_TENSOR_OP_MATH);
        cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
        int n = 0;
        if (st == CUDNN_STATUS_SUCCESS)
          st = cudnnGetConvolutionForwardAlgorithm_v7(dnn, xd, wd, cd, yd,
                                                      CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &n, perf);
        if (st != CUDNN_STATUS_SUCCESS) {
          out = std::string("refused:") + cudnnGetErrorString(st);
        } else {
          void* x2 = dalloc(xn * es_x);
          void* w2 = dalloc(static_cast<size_t>(s.m) * kk * es_x);
          void* y2 = dalloc(yn * es_y);
          CK(cudaMemset(x2, 1, xn * es_x));
          CK(cudaMemset(w2, 1, static_cast<size_t>(s.m) * kk * es_x));
          out = "no algo";
          for (int i = 0; i < n; ++i) {
            if (perf[i].status != CUDNN_STATUS_SUCCESS) continue;
            size_t bytes = 0;
            cudnnSetConvolutionMathType(cd, perf[i].mathType);
            if (cudnnGetConvolutionForwardWorkspaceSize(dnn, xd, wd, cd, yd, perf[i].algo,
                                                        &bytes) != CUDNN_STATUS_SUCCESS ||
                bytes > (size_t{256} << 20))
              continue;
            const float one = 1.f, zero = 0.f;
            st = cudnnConvolutionForward(dnn, &one, xd, x2, wd, w2, cd, perf[i].algo, ws, bytes,
                                         &zero, yd, y2);
            cudaDeviceSynchronize();
            cudaGetLastError();
            if (st != CUDNN_STATUS_SUCCESS) {
              out = std::string("run refused:") + cudnnGetErrorString(st);
              continue;
            }
            const float us = time_us([&] {
              cudnnConvolutionForward(dnn, &one, xd, x2, wd, w2, cd, perf[i].algo, ws, bytes, &zero,
                                      yd, y2);
            });
            char buf[64];
            std::snprintf(buf, sizeof buf, "%.1f(%.0f)a%d", us, 2 * macs / us * 1e-6,
                          static_cast<int>(perf[i].algo));
            out = buf;
            break;
          }
          cudaFree(x2);
          cudaFree(w2);
          cudaFree(y2);
        }
        cudnnDestroyTensorDescriptor(xd);
        cudnnDestroyTensorDescriptor(yd);
        cudnnDestroyFilterDescriptor(wd);
        cudnnDestroyConvolutionDescriptor(cd);
        return out;
      };
      const std::string c8f =
          s.c % 4 == 0 ? cudnn_time(CUDNN_DATA_INT8, CUDNN_DATA_FLOAT, CUDNN_DATA_INT32, 1, 4)
                       : "C%4!=0";
      const std::string c8 =
          s.c % 4 == 0 ? cudnn_time(CUDNN_DATA_INT8, CUDNN_DATA_INT8, CUDNN_DATA_INT32, 1, 1)
                       : "C%4!=0";
      const std::string c16 = cudnn_time(CUDNN_DATA_HALF, CUDNN_DATA_HALF, CUDNN_DATA_FLOAT, 2, 2);
      // ---- cuBLASLt int8, 1x1 stride 1 ----
      std::string lt8 = "-";
      if (s.k == 1 && s.stride == 1) {
        cublasLtMatmulDesc_t desc;
        cublasLtMatrixLayout_t la, lb, lc;
        cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32I, CUDA_R_32F);
        const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
        cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta);
        cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb);
        const cublasLtPointerMode_t pm = CUBLASLT_POINTER_MODE_ALPHA_DEVICE_VECTOR_BETA_ZERO;
        cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_POINTER_MODE, &pm, sizeof pm);
        const cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_RELU_BIAS;
        cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi);
        void* bias = dalloc(s.m * 4);
        CK(cudaMemset(bias, 0, s.m * 4));
        cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias);
        cublasLtMatrixLayoutCreate(&la, CUDA_R_8I, s.c, s.m, s.c);
        cublasLtMatrixLayoutCreate(&lb, CUDA_R_8I, s.c, rows, s.c);
        cublasLtMatrixLayoutCreate(&lc, CUDA_R_8I, s.m, rows, s.m);
        cublasLtMatmulPreference_t pref;
        cublasLtMatmulPreferenceCreate(&pref);
        const uint64_t wsb = 32 << 20;
        cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &wsb,
                                             sizeof wsb);
        cublasLtMatmulHeuristicResult_t res{};
        int found = 0;
        cublasStatus_t st =
            cublasLtMatmulAlgoGetHeuristic(lt, desc, la, lb, lc, lc, pref, 1, &res, &found);
        if (st != CUBLAS_STATUS_SUCCESS || found == 0) {
          lt8 = std::string("refused:") + cublasLtGetStatusString(st);
        } else {
          void* y8 = dalloc(yn);
          auto run = [&] {
            return cublasLtMatmul(lt, desc, dm, dw, la, dx, lb, nullptr, y8, lc, y8, lc, &res.algo,
                                  ws, res.workspaceSize, nullptr);
          };
          // The weights here are the packed ones: [m][k_pad], lda must be k_pad.
          cublasLtMatrixLayoutDestroy(la);
          cublasLtMatrixLayoutCreate(&la, CUDA_R_8I, p.k_pad, s.m, p.k_pad);
          st = run();
          cudaDeviceSynchronize();
          if (st != CUBLAS_STATUS_SUCCESS) {
            lt8 = std::string("run refused:") + cublasLtGetStatusString(st);
          } else {
            const float us = time_us(run);
            char buf[64];
            std::snprintf(buf, sizeof buf, "%.1f(%.0f)", us, 2 * macs / us * 1e-6);
            lt8 = buf;
          }
          cudaFree(y8);
        }
        cublasLtMatmulPreferenceDestroy(pref);
        cublasLtMatrixLayoutDestroy(la);
        cublasLtMatrixLayoutDestroy(lb);
        cublasLtMatrixLayoutDestroy(lc);
        cublasLtMatmulDescDestroy(desc);
        cudaFree(bias);
      }
      char own_s[64];
      std::snprintf(own_s, sizeof own_s, "%.1f(%.0f)", own, 2 * macs / own * 1e-6);
      const int bi = batch == 1 ? 0 : 1;
      sum_own[bi] += own;
      sum_16[bi] += std::atof(c16.c_str());
      sum_cudnn8[bi] += std::atof(c8f.c_str());
      std::printf("%-20s %5d %14s %14s %14s %14s %14s   %s %s/%lld t%d s%d%s\n", s.name, batch,
                  own_s, c8f.c_str(), c8.c_str(), lt8.c_str(), c16.c_str(), bad ? "BAD" : "ok",
                  std::to_string(bad).c_str(), static_cast<long long>(checked),
                  static_cast<int>(p.tile), p.splits, tiles.c_str());
      cudaFree(dx);
      cudaFree(dw);
      cudaFree(dm);
      cudaFree(dof);
      cudaFree(dy);
      cudaFree(dsplit);
    }
  }
  std::printf("sum over shapes, batch 1: own %.1f us, cudnn8 f32out %.1f us, cudnn16 %.1f us\n",
              sum_own[0], sum_cudnn8[0], sum_16[0]);
  std::printf("sum over shapes, batch 256: own %.1f us, cudnn8 f32out %.1f us, cudnn16 %.1f us\n",
              sum_own[1], sum_cudnn8[1], sum_16[1]);
  std::printf("own kernel check: %s\n", all_ok ? "ALL EXACT" : "MISMATCHES");
  return all_ok ? 0 : 1;
}
