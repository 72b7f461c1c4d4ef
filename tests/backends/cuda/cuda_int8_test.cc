// INT8 on the cuda backend: every int8 layer type against the reference backend on the same
// scales, a whole model and PyTorch's QAT exports against the cpu INT8 engine, and the engine
// file round trip. Every test skips without a CUDA device (CI has none).
//
// The layer tests put the input on its int8 grid (x = s_x * q) and every weight on its per-
// channel grid (w = s_w[c] * q, each channel reaching +-127), so that the int8 engine's inputs
// and weights are exact and the only error left is the rounding of what it stores in 8 bits:
// at most half a step of the output's grid (when the output stays 8-bit) plus half a step of an
// 8-bit residual's.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <random>

#include "backends/cuda/cuda_test_util.h"
#include "runtime/engine_file.h"

namespace qf {
namespace {

using onnx::TensorProto;
using runtime::Precision;
using testing::cuda_backend;
using testing::ModelBuilder;

bool cpu_int8() {
  return testing::cpu_backend() && testing::cpu_backend()->supports(Precision::kINT8);
}

float amax(const Tensor& t) {
  float m = 0;
  for (float v : t.span<float>()) m = std::max(m, std::abs(v));
  return m;
}

// x = scale * q with q uniform in [-127, 127] (or [0, 127]) and one element at 127.
Tensor on_grid(Shape shape, float scale, uint32_t seed, bool non_negative = false) {
  Tensor t(DType::kF32, std::move(shape));
  std::mt19937 gen(seed);
  std::uniform_int_distribution<int> q(non_negative ? 0 : -127, 127);
  for (float& v : t.span<float>()) v = scale * static_cast<float>(q(gen));
  t.data<float>()[0] = scale * 127.f;
  return t;
}

// Weights on a per-channel grid along `axis` (0 or 1 of a 2-D+ tensor), each channel reaching
// +-127 so that the engine's per-channel quantization finds the same grid.
Tensor weights_on_grid(const Shape& shape, int axis, uint32_t seed) {
  Tensor t(DType::kF32, shape);
  std::mt19937 gen(seed);
  std::uniform_int_distribution<int> q(-127, 127);
  std::uniform_real_distribution<float> s(0.002f, 0.02f);
  const int64_t channels = shape[static_cast<size_t>(axis)];
  int64_t inner = 1;
  for (size_t d = static_cast<size_t>(axis) + 1; d < shape.size(); ++d) inner *= shape[d];
  std::vector<float> scale(static_cast<size_t>(channels));
  for (float& v : scale) v = s(gen);
  std::vector<bool> reached(static_cast<size_t>(channels), false);
  float* w = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) {
    const int64_t c = (i / inner) % channels;
    int v = q(gen);
    if (!reached[static_cast<size_t>(c)]) {
      v = (gen() & 1) ? 127 : -127;
      reached[static_cast<size_t>(c)] = true;
    }
    w[i] = scale[static_cast<size_t>(c)] * static_cast<float>(v);
  }
  return t;
}

// The reference outputs of `values` (made graph outputs for one run).
std::map<std::string, Tensor> reference_values(ModelBuilder b, const std::vector<Tensor>& inputs,
                                               const std::vector<std::string>& values) {
  b.proto().mutable_graph()->clear_output();
  for (const std::string& v : values) testing::untyped_output(b, v);
  auto r = testing::run_on(b.serialize(), "reference", Precision::kFP32, inputs);
  EXPECT_TRUE(r.ok()) << r.status().message();
  std::map<std::string, Tensor> out;
  if (!r.ok()) return out;
  for (size_t i = 0; i < values.size(); ++i) out[values[i]] = r->outputs[i];
  return out;
}

// max |got - want|.
double max_abs_diff(const Tensor& got, const Tensor& want) {
  if (got.shape() != want.shape()) return INFINITY;
  double d = 0;
  for (int64_t i = 0; i < got.numel(); ++i) {
    const double e = std::abs(static_cast<double>(got.data<float>()[i]) - want.data<float>()[i]);
    d = std::isnan(e) ? INFINITY : std::max(d, e);
  }
  return d;
}

TEST(CudaInt8Test, SupportedWhereTheDeviceIs) {
  QF_REQUIRE_CUDA_DEVICE();
  EXPECT_TRUE(cuda_backend()->supports(Precision::kINT8))
      << cuda_backend()->unsupported_reason(Precision::kINT8);
}

struct ConvCase {
  int64_t n, c, h, w, m, k;
  int64_t stride = 1, pad = 0, dilation = 1, group = 1;
};

// One int8 convolution per case, each with its epilogue variant (activation, a residual computed
// by another int8 convolution, the output kept 8-bit by an int8 consumer or written in fp32).
TEST(CudaInt8Test, ConvolutionsMatchReferenceWithinOneStep) {
  QF_REQUIRE_CUDA_DEVICE();
  const std::vector<ConvCase> cases = {
      {1, 3, 17, 15, 16, 7, 2, 3},         // 3 channels (byte gather), stride 2
      {2, 19, 9, 11, 24, 3, 1, 1},         // channels not a multiple of 4
      {1, 32, 14, 14, 48, 3, 2, 1},        // stride 2, 16-byte loads
      {1, 64, 8, 8, 40, 1},                // 1x1, columns not a multiple of 16
      {1, 48, 10, 10, 48, 3, 1, 1, 1, 3},  // 3 groups of 16
      {1, 24, 9, 9, 24, 3, 1, 1, 1, 24},   // depthwise (CUDA cores)
      {1, 20, 11, 10, 12, 3, 1, 1, 1, 4},  // 3 output channels per group (CUDA cores)
      {1, 16, 12, 12, 32, 3, 1, 2, 2},     // dilation 2
      {1, 1024, 7, 7, 64, 1},              // long K, few tiles: split-K
      {1, 256, 7, 7, 72, 3, 1, 1},         // split-K, 3x3
      {3, 96, 21, 19, 136, 3, 2, 1},       // batch 3, odd sizes
      {4, 16, 92, 92, 128, 3, 1, 1},       // enough tiles for the 128x128 tile
  };
  std::mt19937 gen(2024);
  int seed = 100;
  int variant = 0;
  for (const ConvCase& cc : cases) {
    for (int rep = 0; rep < 2; ++rep, ++variant) {
      const bool relu = variant % 2 == 1;
      const bool residual = variant % 3 != 0;
      const bool int8_out = (variant / 2) % 2 == 0;
      const float sx = 0.01f + 0.01f * static_cast<float>(gen() % 5);
      ModelBuilder b(17);
      b.input("x", TensorProto::FLOAT, {cc.n, cc.c, cc.h, cc.w});
      const Tensor x = on_grid({cc.n, cc.c, cc.h, cc.w}, sx, ++seed);
      b.initializer("w", weights_on_grid({cc.m, cc.c / cc.group, cc.k, cc.k}, 0, ++seed));
      b.initializer("bias", testing::random_tensor({cc.m}, ++seed, -0.5f, 0.5f));
      std::vector<std::string> ins = {"x", "w", "bias"};
      if (residual) {
        b.initializer("wz", weights_on_grid({cc.m, cc.c, 1, 1}, 0, ++seed));
        auto& zc = b.node("Conv", {"x", "wz"}, {"z"}, "convz");
        testing::set_ints_attr(zc, "strides", {cc.stride, cc.stride});
        ins.push_back("z");
      }
      auto& n = testing::fused_node(b, "FusedConv", ins, {"y"}, "conv");
      testing::set_ints_attr(n, "pads", {cc.pad, cc.pad, cc.pad, cc.pad});
      testing::set_ints_attr(n, "strides", {cc.stride, cc.stride});
      testing::set_ints_attr(n, "dilations", {cc.dilation, cc.dilation});
      testing::set_int_attr(n, "group", cc.group);
      testing::set_string_attr(n, "activation", relu ? "Relu" : "");
      std::string out = "y";
      if (int8_out) {  // a 1x1 max pool reads y in 8 bits and keeps its grid
        auto& mp = b.node("MaxPool", {"y"}, {"p"}, "pool");
        testing::set_ints_attr(mp, "kernel_shape", {1, 1});
        out = "p";
      }
      testing::untyped_output(b, out);
      std::vector<std::string> values = {"y"};
      if (residual) values.push_back("z");
      const auto ref = reference_values(b, {x}, values);
      if (ref.size() != values.size()) return;
      std::map<std::string, float> scales = {{"x", sx}};
      for (const auto& [name, t] : ref) scales[name] = amax(t) / 127.f;
      if (int8_out) scales["p"] = scales["y"];
      const std::string what = fmt::format(
          "case {} {}x{}x{}x{} -> {} k{} s{} g{}: relu {} residual {} int8 out {}", variant, cc.n,
          cc.c, cc.h, cc.w, cc.m, cc.k, cc.stride, cc.group, relu, residual, int8_out);
      auto gpu = testing::run_on(b.serialize(), "cuda", Precision::kINT8, {x}, 0, scales);
      ASSERT_TRUE(gpu.ok()) << what << ": " << gpu.status().message();
      // Half a step of y's 8-bit grid (u8 on half the scale after a ReLU) and of z's.
      const float y_step = int8_out ? scales["y"] / (relu ? 2.f : 1.f) : 0.f;
      const float z_step = residual ? scales["z"] : 0.f;
      const double bound = 0.5 * (y_step + z_step) + 1e-5 * amax(ref.at("y")) + 1e-6;
      const double err = max_abs_diff(gpu->outputs[0], ref.at("y"));
      EXPECT_LE(err, bound) << what << " (" << err / std::max(y_step, 1e-9f) << " output steps)";
      const std::string impl = testing::kernel_of(gpu->info, "conv");
      const bool direct = cc.m / cc.group < 16;
      EXPECT_NE(impl.find(direct ? "direct_conv_s8s8_s32" : "imma_implicit_gemm_s8s8_s32"),
                std::string::npos)
          << what << ": " << impl;
      const std::string out_type = int8_out ? (relu ? "_s32_u8" : "_s32_s8") : "_s32_f32";
      EXPECT_NE(impl.find(out_type), std::string::npos) << what << ": " << impl;
      if (residual) {
        EXPECT_NE(testing::kernel_of(gpu->info, "convz").find("_s32_s8"), std::string::npos)
            << what << ": the residual stays int8: " << testing::kernel_of(gpu->info, "convz");
      }
      if (!direct) {  // the tile and split-K are timed (EveryTileAndSplitKMatchesReference)
        EXPECT_NE(testing::note_of(gpu->info, "conv").find("int8 tile and split-K: "),
                  std::string::npos)
            << what << ": " << testing::note_of(gpu->info, "conv");
      }
    }
  }
}

// Every tactic an int8 convolution's build times (tile shape x split-K factor) computes the
// same layer: each is forced in turn through BuildOptions::tactics, as an engine file does, and
// checked against the reference.
TEST(CudaInt8Test, EveryTileAndSplitKMatchesReference) {
  QF_REQUIRE_CUDA_DEVICE();
  const std::vector<ConvCase> cases = {
      {1, 1024, 7, 7, 64, 1},           // long K, 1x1: split-K candidates
      {1, 256, 7, 7, 200, 3, 1, 1},     // 3x3, channels not a multiple of the tile
      {2, 64, 40, 40, 256, 1},          // 1x1, enough tiles for every shape
      {2, 32, 30, 30, 96, 3, 2, 1, 1},  // stride 2, 96 channels
  };
  int seed = 500;
  for (const ConvCase& cc : cases) {
    const float sx = 0.02f;
    ModelBuilder b(17);
    b.input("x", TensorProto::FLOAT, {cc.n, cc.c, cc.h, cc.w});
    const Tensor x = on_grid({cc.n, cc.c, cc.h, cc.w}, sx, ++seed, /*non_negative=*/true);
    b.initializer("w", weights_on_grid({cc.m, cc.c, cc.k, cc.k}, 0, ++seed));
    b.initializer("bias", testing::random_tensor({cc.m}, ++seed, -0.5f, 0.5f));
    auto& n = testing::fused_node(b, "FusedConv", {"x", "w", "bias"}, {"y"}, "conv");
    testing::set_ints_attr(n, "pads", {cc.pad, cc.pad, cc.pad, cc.pad});
    testing::set_ints_attr(n, "strides", {cc.stride, cc.stride});
    testing::set_string_attr(n, "activation", "Relu");
    auto& mp = b.node("MaxPool", {"y"}, {"p"}, "pool");  // keeps y in 8 bits
    testing::set_ints_attr(mp, "kernel_shape", {1, 1});
    testing::untyped_output(b, "p");
    const auto ref = reference_values(b, {x}, {"y"});
    ASSERT_EQ(ref.size(), 1u);
    const float sy = amax(ref.at("y")) / 127.f;
    runtime::BuildOptions options{Precision::kINT8, 0, {{"x", sx}, {"y", sy}, {"p", sy}}};
    auto build = [&]() -> Result<testing::BackendRun> {
      QF_ASSIGN_OR_RETURN(onnx_io::ImportedModel m,
                          onnx_io::import_model_bytes(b.serialize(), "t.onnx"));
      QF_ASSIGN_OR_RETURN(auto e, cuda_backend()->build(std::move(m.graph), options));
      QF_ASSIGN_OR_RETURN(std::vector<Tensor> out, e->run({x}));
      return testing::BackendRun{std::move(out), e->info()};
    };
    const std::string what =
        fmt::format("{}x{}x{}x{} -> {} k{} s{}", cc.n, cc.c, cc.h, cc.w, cc.m, cc.k, cc.stride);
    auto timed = build();
    ASSERT_TRUE(timed.ok()) << what << ": " << timed.status().message();
    ASSERT_EQ(timed->info.tactics.size(), 1u) << what << ": one layer chose among several";
    const std::string signature = timed->info.tactics.begin()->first;
    const std::string note = testing::note_of(timed->info, "conv");
    int candidates = 0;
    ASSERT_EQ(std::sscanf(note.c_str(), "int8 tile and split-K: fastest of %d timed", &candidates),
              1)
        << what << ": " << note;
    int forced = 0;
    for (const char* tile : {"128x128", "128x64", "64x64"}) {
      for (int splits : {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}) {
        const std::string tactic = fmt::format("int8 {} split {}", tile, splits);
        options.tactics = {{signature, tactic}};
        auto r = build();
        ASSERT_TRUE(r.ok()) << what << ", " << tactic << ": " << r.status().message();
        if (testing::note_of(r->info, "conv").find("engine file") == std::string::npos) continue;
        ++forced;
        const std::string impl = testing::kernel_of(r->info, "conv");
        EXPECT_NE(impl.find(splits > 1 ? fmt::format("{}_splitk{} ", tile, splits)
                                       : fmt::format("{} ", tile)),
                  std::string::npos)
            << what << ", " << tactic << ": " << impl;
        // Half a step of y's u8 grid (half the scale after the ReLU), and float rounding.
        const double bound = 0.5 * sy / 2 + 1e-5 * amax(ref.at("y")) + 1e-6;
        EXPECT_LE(max_abs_diff(r->outputs[0], ref.at("y")), bound) << what << ", " << tactic;
      }
    }
    EXPECT_GE(candidates, 2) << what;
    EXPECT_EQ(forced, candidates) << what << ": every timed candidate can be forced";
  }
}

// Gemm (transB both ways, alpha, beta, bias) and MatMul over 3-D activations, with their outputs
// kept 8-bit through a Flatten or written in fp32.
TEST(CudaInt8Test, GemmAndMatMulMatchReferenceWithinOneStep) {
  QF_REQUIRE_CUDA_DEVICE();
  int seed = 500;
  for (int variant = 0; variant < 6; ++variant) {
    const bool matmul = variant >= 4;
    const bool trans_b = variant % 2 == 1;
    const bool int8_out = variant % 3 != 2;
    const int64_t m = 5 + variant, k = matmul ? 48 : 37 + 16 * variant, n = 19 + 7 * variant;
    ModelBuilder b(17);
    const Shape xs = matmul ? Shape{2, m, k} : Shape{m, k};
    b.input("x", TensorProto::FLOAT, xs);
    const float sx = 0.02f;
    const Tensor x = on_grid(xs, sx, ++seed);
    b.initializer("w",
                  weights_on_grid(trans_b ? Shape{n, k} : Shape{k, n}, trans_b ? 0 : 1, ++seed));
    b.initializer("c", testing::random_tensor({n}, ++seed, -0.5f, 0.5f));
    if (matmul) {
      testing::fused_node(b, "FusedMatMul", {"x", "w", "c"}, {"y"}, "mm");
    } else {
      auto& g = b.node("Gemm", {"x", "w", "c"}, {"y"}, "mm");
      testing::set_int_attr(g, "transB", trans_b ? 1 : 0);
      testing::set_float_attr(g, "alpha", 0.5f);
      testing::set_float_attr(g, "beta", 2.f);
    }
    std::string out = "y";
    if (int8_out) {  // a real reshape (the optimizer drops a Flatten that changes nothing)
      auto& f = b.node("Flatten", {"y"}, {"f"}, "flatten");
      testing::set_int_attr(f, "axis", matmul ? 1 : 0);
      out = "f";
    }
    testing::untyped_output(b, out);
    const auto ref = reference_values(b, {x}, {out, "y"});
    if (ref.size() != 2) return;
    std::map<std::string, float> scales = {{"x", sx}, {"y", amax(ref.at("y")) / 127.f}};
    if (int8_out) scales["f"] = scales["y"];
    const std::string what = fmt::format("{} {}x{}x{} transB {} int8 out {}",
                                         matmul ? "MatMul" : "Gemm", m, k, n, trans_b, int8_out);
    auto gpu = testing::run_on(b.serialize(), "cuda", Precision::kINT8, {x}, 0, scales);
    ASSERT_TRUE(gpu.ok()) << what << ": " << gpu.status().message();
    const double bound = (int8_out ? 0.5 * scales["y"] : 0.0) + 1e-5 * amax(ref.at("y")) + 1e-6;
    EXPECT_LE(max_abs_diff(gpu->outputs[0], ref.at(out)), bound) << what;
    const std::string impl = testing::kernel_of(gpu->info, "mm");
    EXPECT_NE(impl.find(int8_out ? "s8s8_s32_s8" : "s8s8_s32_f32"), std::string::npos)
        << what << ": " << impl;
  }
}

// conv+relu (u8) -> max pool -> average pool -> global average pool -> flatten -> gemm: the
// pools run on the 8-bit grid and the classifier reads it; compared with the reference and,
// where the cpu has int8, with the cpu INT8 engine on the same scales.
TEST(CudaInt8Test, PoolingStaysInt8AndMatchesReferenceAndCpu) {
  QF_REQUIRE_CUDA_DEVICE();
  ModelBuilder b(17);
  testing::pooling_classifier(b, /*average_pool=*/true);
  const Tensor x = testing::random_tensor({2, 8, 12, 12}, 4);
  const auto ref = reference_values(b, {x}, {"c", "m", "a", "g", "f", "logits"});
  if (ref.size() != 6) return;
  std::map<std::string, float> scales = {{"x", amax(x) / 127.f}};
  for (const auto& [name, t] : ref) scales[name] = amax(t) / 127.f;
  auto gpu = testing::run_on(b.serialize(), "cuda", Precision::kINT8, {x}, 0, scales);
  ASSERT_TRUE(gpu.ok()) << gpu.status().message();
  EXPECT_LE(testing::relative_error(gpu->outputs[0], ref.at("logits")), 4e-2);
  for (const char* pool : {"maxpool", "avgpool", "gap"}) {
    EXPECT_NE(testing::kernel_of(gpu->info, pool).find("pool2d_nhwc_u8"), std::string::npos)
        << pool << ": " << testing::kernel_of(gpu->info, pool);
  }
  EXPECT_NE(testing::kernel_of(gpu->info, "fc").find("u8s8_s32_f32"), std::string::npos)
      << testing::kernel_of(gpu->info, "fc");
  if (!cpu_int8()) return;
  auto cpu = testing::run_on(b.serialize(), "cpu", Precision::kINT8, {x}, 0, scales);
  ASSERT_TRUE(cpu.ok()) << cpu.status().message();
  EXPECT_LE(testing::relative_error(gpu->outputs[0], cpu->outputs[0]), 2e-2);
}

// A layer without a scale runs in fp32 and says why, never silently.
TEST(CudaInt8Test, LayersWithoutScalesRunInFp32AndSaySo) {
  QF_REQUIRE_CUDA_DEVICE();
  ModelBuilder b(17);
  b.input("x", TensorProto::FLOAT, {1, 8, 6, 6});
  b.initializer("w", testing::layer_weights({8, 8, 3, 3}, 1));
  b.node("Conv", {"x", "w"}, {"y"}, "conv");
  testing::untyped_output(b, "y");
  const Tensor x = testing::random_tensor({1, 8, 6, 6}, 2);
  auto gpu = testing::run_on(b.serialize(), "cuda", Precision::kINT8, {x}, 0, {{"y", 0.1f}});
  ASSERT_TRUE(gpu.ok()) << gpu.status().message();
  bool found = false;
  for (const runtime::KernelInfo& k : gpu->info.kernels) {
    if (k.node != "conv") continue;
    found = true;
    EXPECT_NE(k.impl.find("_fma"), std::string::npos) << k.impl;
    EXPECT_NE(k.note.find("fp32 in an int8 engine: input 'x' has no int8 scale"), std::string::npos)
        << k.note;
  }
  EXPECT_TRUE(found);
  auto ref = testing::run_on(b.serialize(), "reference", Precision::kFP32, {x});
  ASSERT_TRUE(ref.ok());
  EXPECT_LE(testing::relative_error(gpu->outputs[0], ref->outputs[0]), 1e-4);
}

Result<std::unique_ptr<runtime::Engine>> build_file(const runtime::Backend* backend,
                                                    const std::filesystem::path& file,
                                                    runtime::BuildOptions options) {
  QF_ASSIGN_OR_RETURN(onnx_io::ImportedModel m, onnx_io::load_model(file));
  return backend->build(std::move(m.graph), options);
}

Tensor random_images(int64_t n, uint32_t seed) {
  return testing::random_tensor({n, 1, 28, 28}, seed, 0.f, 1.f);
}

int64_t argmax_row(const float* row, int64_t n) {
  return std::max_element(row, row + n) - row;
}

// The Fashion-MNIST CNN with synthetic scales: the cuda INT8 engine against the cpu INT8 engine
// built with the very same scales (no data set on the GPU machine: random images).
TEST(CudaInt8Test, WholeModelAgreesWithTheCpuInt8Engine) {
  QF_REQUIRE_CUDA_DEVICE();
  const std::filesystem::path model = testing::repo_root() / "models" / "fashion_mnist_cnn.onnx";
  runtime::BuildOptions options;
  options.precision = Precision::kINT8;
  auto gpu = build_file(cuda_backend(), model, options);  // synthetic scales, loudly
  ASSERT_TRUE(gpu.ok()) << gpu.status().message();
  const runtime::EngineInfo& info = (*gpu)->info();
  EXPECT_NE(info.calibration.find("synthetic"), std::string::npos) << info.calibration;
  int int8_layers = 0;
  for (const runtime::KernelInfo& k : info.kernels) {
    const bool compute = k.op.find("Conv") != std::string::npos ||
                         k.op.find("Gemm") != std::string::npos ||
                         k.op.find("MatMul") != std::string::npos;
    if (!compute) continue;
    EXPECT_NE(k.impl.find("_s32_"), std::string::npos) << k.node << ": " << k.impl;
    ++int8_layers;
  }
  EXPECT_GE(int8_layers, 3);
  const Tensor x = random_images(512, 11);
  auto got = (*gpu)->run({x});
  ASSERT_TRUE(got.ok()) << got.status().message();
  auto fp32 = build_file(cuda_backend(), model, runtime::BuildOptions{});
  ASSERT_TRUE(fp32.ok());
  auto want32 = (*fp32)->run({x});
  ASSERT_TRUE(want32.ok());
  const int64_t classes = (*got)[0].dim(1);
  int64_t same32 = 0;
  for (int64_t i = 0; i < 512; ++i) {
    same32 += argmax_row((*got)[0].data<float>() + i * classes, classes) ==
              argmax_row((*want32)[0].data<float>() + i * classes, classes);
  }
  std::printf("fashion_mnist_cnn int8 (synthetic scales) vs fp32 on the GPU: top-1 %lld/512\n",
              static_cast<long long>(same32));
  if (!cpu_int8()) GTEST_SKIP() << "no cpu int8 here to compare with";
  options.activation_scales = info.int8_scales;
  options.calibration = info.calibration;
  auto cpu = build_file(testing::cpu_backend(), model, options);
  ASSERT_TRUE(cpu.ok()) << cpu.status().message();
  auto want = (*cpu)->run({x});
  ASSERT_TRUE(want.ok());
  int64_t same = 0;
  for (int64_t i = 0; i < 512; ++i) {
    same += argmax_row((*got)[0].data<float>() + i * classes, classes) ==
            argmax_row((*want)[0].data<float>() + i * classes, classes);
  }
  const double rel = testing::relative_error((*got)[0], (*want)[0]);
  std::printf(
      "fashion_mnist_cnn int8 cuda vs cpu (same scales): top-1 %lld/512, max diff %.4f "
      "of the largest logit\n",
      static_cast<long long>(same), rel);
  EXPECT_GE(same, 507);
  EXPECT_LE(rel, 2e-2);
}

std::filesystem::path qat_dir() {
  return testing::repo_root() / "tests" / "fixtures" / "qat";
}

// PyTorch's QAT exports (uint8 activations with zero points 73, 114 and 0): the cuda INT8
// engine keeps the graph's grids, runs every layer in int8 and agrees with the cpu INT8 engine
// of the same file within two output steps on every logit.
TEST(CudaInt8Test, QatModelsAgreeWithTheCpuInt8Engine) {
  QF_REQUIRE_CUDA_DEVICE();
  std::ifstream in(qat_dir() / "fixtures.json");
  const nlohmann::json facts = nlohmann::json::parse(in);
  for (const char* file : {"fmnist_qat_fakequant_opset13.onnx", "fmnist_qat_int8_opset13.onnx",
                           "fmnist_qat_fakequant_opset17.onnx", "fmnist_qat_int8_opset17.onnx"}) {
    SCOPED_TRACE(file);
    runtime::BuildOptions options;
    options.precision = Precision::kINT8;
    auto gpu = build_file(cuda_backend(), qat_dir() / file, options);
    ASSERT_TRUE(gpu.ok()) << gpu.status().message();
    const runtime::EngineInfo& info = (*gpu)->info();
    int int8_layers = 0;
    for (const runtime::KernelInfo& k : info.kernels) {
      if (k.op.find("Conv") == std::string::npos && k.op.find("Gemm") == std::string::npos &&
          k.op.find("MatMul") == std::string::npos) {
        continue;
      }
      EXPECT_NE(k.impl.find("_s32_"), std::string::npos) << k.node << ": " << k.impl;
      ++int8_layers;
    }
    EXPECT_EQ(int8_layers, 6) << "4 convolutions and 2 fully connected layers";
    const Tensor x = random_images(256, 21);
    auto got = (*gpu)->run({x});
    ASSERT_TRUE(got.ok()) << got.status().message();
    if (!cpu_int8()) continue;
    auto cpu = build_file(testing::cpu_backend(), qat_dir() / file, options);
    ASSERT_TRUE(cpu.ok()) << cpu.status().message();
    EXPECT_EQ(info.int8_grids, (*cpu)->info().int8_grids);
    EXPECT_EQ(info.int8_scales, (*cpu)->info().int8_scales);
    auto want = (*cpu)->run({x});
    ASSERT_TRUE(want.ok());
    const auto step =
        static_cast<float>(facts["files"][file]["output_quantization"]["scale"].get<double>());
    const double worst = max_abs_diff((*got)[0], (*want)[0]);
    int64_t same = 0;
    for (int64_t i = 0; i < 256; ++i) {
      same += argmax_row((*got)[0].data<float>() + i * 10, 10) ==
              argmax_row((*want)[0].data<float>() + i * 10, 10);
    }
    std::printf("%s cuda vs cpu int8: top-1 %lld/256, worst logit difference %.2f output steps\n",
                file, static_cast<long long>(same), worst / step);
    EXPECT_LE(worst, 2 * step * 1.0001) << worst / step << " steps";
  }
}

// An INT8 engine file carries its scales: the loaded engine has the same kernels, the same
// scales and computes the same outputs, bit for bit.
TEST(CudaInt8Test, EngineFilesRoundTrip) {
  QF_REQUIRE_CUDA_DEVICE();
  runtime::BuildOptions options;
  options.precision = Precision::kINT8;
  auto direct = build_file(cuda_backend(),
                           testing::repo_root() / "models" / "fashion_mnist_cnn.onnx", options);
  ASSERT_TRUE(direct.ok()) << direct.status().message();
  auto bytes = runtime::serialize_engine(runtime::header_for(**direct), (*direct)->graph());
  ASSERT_TRUE(bytes.ok()) << bytes.status().message();
  auto loaded = runtime::parse_engine_file(*bytes, "m.engine");
  ASSERT_TRUE(loaded.ok()) << loaded.status().message();
  auto engine = runtime::build_loaded_engine(std::move(loaded).value(), "m.engine");
  ASSERT_TRUE(engine.ok()) << engine.status().message();
  EXPECT_EQ((*engine)->info().precision, Precision::kINT8);
  EXPECT_EQ((*engine)->info().int8_scales, (*direct)->info().int8_scales);
  EXPECT_EQ((*engine)->info().calibration, (*direct)->info().calibration);
  std::vector<std::string> want_kernels, got_kernels;
  for (const runtime::KernelInfo& k : (*direct)->info().kernels) want_kernels.push_back(k.impl);
  for (const runtime::KernelInfo& k : (*engine)->info().kernels) got_kernels.push_back(k.impl);
  EXPECT_EQ(got_kernels, want_kernels);
  const Tensor x = random_images(7, 31);
  auto want = (*direct)->run({x});
  auto got = (*engine)->run({x});
  ASSERT_TRUE(want.ok() && got.ok());
  EXPECT_EQ(max_abs_diff((*got)[0], (*want)[0]), 0.0);
}

}  // namespace
}  // namespace qf
