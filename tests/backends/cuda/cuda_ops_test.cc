// The cuda backend against the reference backend, op family by op family, over shapes chosen to
// be awkward for GPUs (channels not a multiple of 8, odd spatial sizes, stride 2, groups,
// depthwise, batch 3) plus seeded random ones. Tolerances are max |got - want| / max |want|:
//   fp32 1e-4 (TF32 off: cuDNN FMA kernels, cuBLASLt COMPUTE_32F),
//   tf32 and fp16 5e-3 (10-bit mantissas in the products / in storage, fp32 accumulation),
//   bf16 3e-2 (7-bit mantissa storage, fp32 accumulation).
// Without a CUDA device every test but the first skips; the first checks that build() then says
// "unsupported" cleanly (it runs in CI, which has no GPU).
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <random>

#include "backends/cuda/cuda_test_util.h"

namespace qf {
namespace {

using onnx::TensorProto;
using runtime::Precision;
using testing::cuda_backend;
using testing::ModelBuilder;

const std::vector<Precision> kPrecisions = {Precision::kFP32, Precision::kTF32, Precision::kFP16,
                                            Precision::kBF16};

double tolerance(Precision p) {
  switch (p) {
    case Precision::kFP32:
      return 1e-4;
    case Precision::kBF16:
      return 3e-2;
    default:
      return 5e-3;
  }
}

// Runs on the reference (fp32) and the cuda backend; expects every output within tolerance and
// returns the cuda engine's info.
runtime::EngineInfo expect_matches(const ModelBuilder& model, const std::vector<Tensor>& inputs,
                                   Precision p, const std::string& what) {
  const std::string bytes = model.serialize();
  auto ref = testing::run_on(bytes, "reference", Precision::kFP32, inputs);
  EXPECT_TRUE(ref.ok()) << what << ": " << ref.status().message();
  auto gpu = testing::run_on(bytes, "cuda", p, inputs);
  EXPECT_TRUE(gpu.ok()) << what << " (" << runtime::precision_name(p)
                        << "): " << gpu.status().message();
  if (!ref.ok() || !gpu.ok()) return {};
  EXPECT_EQ(gpu->outputs.size(), ref->outputs.size()) << what;
  for (size_t i = 0; i < std::min(gpu->outputs.size(), ref->outputs.size()); ++i) {
    EXPECT_EQ(gpu->outputs[i].shape(), ref->outputs[i].shape()) << what << " output " << i;
    const double err = testing::relative_error(gpu->outputs[i], ref->outputs[i]);
    EXPECT_LE(err, tolerance(p)) << what << " output " << i << " (" << runtime::precision_name(p)
                                 << ")";
  }
  return gpu->info;
}

bool on_gpu(const runtime::EngineInfo& info, const std::string& node) {
  return testing::kernel_of(info, node).find("[cuda]") != std::string::npos;
}

TEST(CudaBackendTest, WithoutADeviceBuildIsUnsupportedCleanly) {
  if (!cuda_backend()) GTEST_SKIP() << "no cuda backend in this build";
  if (testing::have_cuda_device())
    GTEST_SKIP() << "a CUDA device is present; the other tests cover it";
  std::vector<Precision> all = kPrecisions;
  all.push_back(Precision::kINT8);
  for (Precision p : all) {
    EXPECT_FALSE(cuda_backend()->supports(p));
    EXPECT_NE(cuda_backend()->unsupported_reason(p).find("no CUDA device"), std::string::npos)
        << cuda_backend()->unsupported_reason(p);
  }
  ModelBuilder b(17);
  b.input("x", TensorProto::FLOAT, {1, 4});
  b.node("Relu", {"x"}, {"y"}, "relu");
  testing::untyped_output(b, "y");
  auto r =
      testing::run_on(b.serialize(), "cuda", Precision::kFP32, {testing::random_tensor({1, 4}, 1)});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnsupported) << r.status().message();
  EXPECT_NE(r.status().message().find("no CUDA device"), std::string::npos) << r.status().message();
}

struct ConvCase {
  int64_t n, c, h, w, m, kh, kw;
  int64_t stride = 1, pad = 0, dilation = 1, group = 1;
  bool bias = true;
};

TEST(CudaOpsTest, ConvMatchesReferenceAndRunsInCudnn) {
  QF_REQUIRE_CUDA_DEVICE();
  std::vector<ConvCase> cases = {
      {1, 3, 7, 9, 5, 3, 3, 1, 1},             // tiny, odd sizes
      {1, 17, 15, 13, 33, 3, 3, 2, 1},         // odd channels, stride 2
      {2, 24, 14, 14, 24, 3, 3, 1, 1, 1, 24},  // depthwise
      {1, 32, 9, 9, 32, 3, 3, 2, 1, 1, 32},    // depthwise, stride 2
      {1, 20, 11, 10, 12, 3, 3, 1, 1, 1, 4},   // grouped
      {1, 64, 8, 8, 48, 1, 1},                 // 1x1
      {1, 40, 9, 9, 24, 1, 1, 2, 0},           // 1x1 stride 2
      {1, 16, 12, 12, 16, 3, 3, 1, 2, 2},      // dilation 2
      {3, 3, 23, 23, 16, 7, 7, 2, 3},          // ResNet's stem shape, batch 3
      {1, 6, 10, 7, 10, 5, 5, 1, 2, 1, 1, false},
  };
  std::mt19937 gen(2024);
  for (int i = 0; i < 4; ++i) {
    auto r = [&](int lo, int hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(gen); };
    const int64_t k = r(0, 1) * 2 + 1;
    cases.push_back({r(1, 3), r(1, 21), r(k, 17), r(k, 17), r(1, 19), k, k, r(1, 2), k / 2});
  }
  int seed = 10;
  for (const ConvCase& k : cases) {
    for (Precision p : kPrecisions) {
      ModelBuilder b(17);
      b.input("x", TensorProto::FLOAT, {k.n, k.c, k.h, k.w});
      b.initializer("w", testing::layer_weights({k.m, k.c / k.group, k.kh, k.kw}, ++seed));
      std::vector<std::string> ins = {"x", "w"};
      if (k.bias) {
        b.initializer("b", testing::random_tensor({k.m}, ++seed));
        ins.push_back("b");
      }
      auto& n = b.node("Conv", ins, {"y"}, "conv");
      testing::set_ints_attr(n, "strides", {k.stride, k.stride});
      testing::set_ints_attr(n, "dilations", {k.dilation, k.dilation});
      testing::set_int_attr(n, "group", k.group);
      testing::set_ints_attr(n, "pads", std::vector<int64_t>(4, k.pad));
      testing::untyped_output(b, "y");
      const std::string what =
          fmt::format("conv x {}x{}x{}x{} m {} k {}x{} s{} p{} d{} g{}", k.n, k.c, k.h, k.w, k.m,
                      k.kh, k.kw, k.stride, k.pad, k.dilation, k.group);
      const auto info =
          expect_matches(b, {testing::random_tensor({k.n, k.c, k.h, k.w}, ++seed)}, p, what);
      EXPECT_NE(testing::kernel_of(info, "conv").find("cudnn_conv"), std::string::npos)
          << what << ": " << testing::kernel_of(info, "conv");
    }
  }
}

TEST(CudaOpsTest, FusedConvWithActivationsAndResidualMatchesReference) {
  QF_REQUIRE_CUDA_DEVICE();
  const std::vector<std::tuple<std::string, float, float>> activations = {
      {"", 0, 0},        {"Relu", 0, 0}, {"LeakyRelu", 0.1f, 0},      {"Clip", 0.f, 6.f},
      {"Sigmoid", 0, 0}, {"Tanh", 0, 0}, {"HardSigmoid", 0.2f, 0.5f}, {"HardSwish", 0, 0},
      {"SiLU", 0, 0},    {"GELU", 0, 0}};
  int seed = 1100;
  for (Precision p : kPrecisions) {
    for (const auto& [act, alpha, beta] : activations) {
      for (int residual = 0; residual < 3; ++residual) {  // none, from a conv, a graph input
        ModelBuilder b(17);
        b.input("x", TensorProto::FLOAT, {3, 12, 7, 7});
        std::vector<Tensor> inputs = {testing::random_tensor({3, 12, 7, 7}, ++seed)};
        b.initializer("w", testing::layer_weights({20, 12, 3, 3}, ++seed));
        b.initializer("b", testing::random_tensor({20}, ++seed));
        std::vector<std::string> ins = {"x", "w", "b"};
        if (residual == 1) {
          b.initializer("wz", testing::layer_weights({20, 12, 1, 1}, ++seed));
          b.node("Conv", {"x", "wz"}, {"z"}, "convz");
          ins.push_back("z");
        } else if (residual == 2) {
          b.input("z", TensorProto::FLOAT, {3, 20, 7, 7});
          inputs.push_back(testing::random_tensor({3, 20, 7, 7}, ++seed));
          ins.push_back("z");
        }
        auto& n = testing::fused_node(b, "FusedConv", ins, {"y"}, "fused");
        testing::set_ints_attr(n, "pads", {1, 1, 1, 1});
        testing::set_string_attr(n, "activation", act);
        if (alpha != 0) testing::set_float_attr(n, "activation_alpha", alpha);
        if (beta != 0) testing::set_float_attr(n, "activation_beta", beta);
        testing::untyped_output(b, "y");
        const std::string what = fmt::format("FusedConv {} residual {}", act, residual);
        const auto info = expect_matches(b, inputs, p, what);
        EXPECT_TRUE(on_gpu(info, "fused")) << what << ": " << testing::kernel_of(info, "fused");
      }
    }
  }
}

TEST(CudaOpsTest, GemmAndMatMulMatchReferenceAndRunInCublasLt) {
  QF_REQUIRE_CUDA_DEVICE();
  struct GemmCase {
    int64_t m, k, n;
    bool ta, tb;
    float alpha, beta;
    int c;  // 0 none, 1 [N], 2 [M, N], 3 [1, N]
  };
  const std::vector<GemmCase> cases = {
      {3, 17, 5, false, false, 1.f, 1.f, 1}, {7, 33, 13, true, false, 0.5f, 2.f, 2},
      {1, 64, 10, false, true, 1.f, 1.f, 3}, {9, 5, 31, true, true, 2.f, 0.5f, 1},
      {4, 8, 6, false, false, 1.f, 1.f, 0},
  };
  int seed = 300;
  for (const GemmCase& g : cases) {
    for (Precision p : kPrecisions) {
      ModelBuilder b(17);
      const Shape as = g.ta ? Shape{g.k, g.m} : Shape{g.m, g.k};
      b.input("a", TensorProto::FLOAT, as);
      b.initializer("b", testing::layer_weights(g.tb ? Shape{g.n, g.k} : Shape{g.k, g.n}, ++seed));
      std::vector<std::string> ins = {"a", "b"};
      if (g.c) {
        const Shape cs = g.c == 1 ? Shape{g.n} : g.c == 2 ? Shape{g.m, g.n} : Shape{1, g.n};
        b.initializer("c", testing::random_tensor(cs, ++seed));
        ins.push_back("c");
      }
      auto& n = b.node("Gemm", ins, {"y"}, "gemm");
      testing::set_int_attr(n, "transA", g.ta);
      testing::set_int_attr(n, "transB", g.tb);
      testing::set_float_attr(n, "alpha", g.alpha);
      testing::set_float_attr(n, "beta", g.beta);
      testing::untyped_output(b, "y");
      const std::string what =
          fmt::format("Gemm {}x{}x{} tA{} tB{} c{}", g.m, g.k, g.n, g.ta, g.tb, g.c);
      const auto info = expect_matches(b, {testing::random_tensor(as, ++seed)}, p, what);
      EXPECT_NE(testing::kernel_of(info, "gemm").find("cublaslt"), std::string::npos)
          << what << ": " << testing::kernel_of(info, "gemm");
    }
  }
  // MatMul: 2-D, N-D times 2-D weights, batched with equal batch dims.
  const std::vector<std::pair<Shape, Shape>> matmuls = {
      {{5, 7}, {7, 3}}, {{3, 4, 9}, {9, 11}}, {{2, 3, 5, 17}, {2, 3, 17, 6}}};
  for (const auto& [as, bs] : matmuls) {
    for (Precision p : kPrecisions) {
      ModelBuilder b(17);
      b.input("a", TensorProto::FLOAT, as);
      b.input("b", TensorProto::FLOAT, bs);
      b.node("MatMul", {"a", "b"}, {"y"}, "mm");
      testing::untyped_output(b, "y");
      const std::string what = fmt::format("MatMul {} x {}", shape_str(as), shape_str(bs));
      const auto info = expect_matches(
          b, {testing::random_tensor(as, ++seed), testing::random_tensor(bs, ++seed)}, p, what);
      EXPECT_TRUE(on_gpu(info, "mm")) << what << ": " << testing::kernel_of(info, "mm");
    }
  }
}

TEST(CudaOpsTest, FusedGemmAndFusedMatMulMatchReference) {
  QF_REQUIRE_CUDA_DEVICE();
  int seed = 1300;
  for (Precision p : kPrecisions) {
    for (const std::string act : {"", "Relu", "GELU", "Clip"}) {
      for (bool residual : {false, true}) {
        ModelBuilder b(17);
        b.input("a", TensorProto::FLOAT, {6, 19});
        b.initializer("w", testing::layer_weights({19, 11}, ++seed));
        b.initializer("bias", testing::random_tensor({11}, ++seed));
        std::vector<Tensor> inputs = {testing::random_tensor({6, 19}, ++seed)};
        std::vector<std::string> ins = {"a", "w", "bias"};
        if (residual) {
          b.input("z", TensorProto::FLOAT, {6, 11});
          inputs.push_back(testing::random_tensor({6, 11}, ++seed));
          ins.push_back("z");
        }
        for (const std::string op : {"FusedGemm", "FusedMatMul"}) {
          ModelBuilder m = b;
          auto& n = testing::fused_node(m, op, ins, {"y"}, "fused");
          testing::set_string_attr(n, "activation", act);
          if (act == "Clip") {
            testing::set_float_attr(n, "activation_alpha", -0.5f);
            testing::set_float_attr(n, "activation_beta", 0.5f);
          }
          testing::untyped_output(m, "y");
          const std::string what = fmt::format("{} {} residual {}", op, act, residual);
          const auto info = expect_matches(m, inputs, p, what);
          EXPECT_TRUE(on_gpu(info, "fused")) << what << ": " << testing::kernel_of(info, "fused");
        }
      }
    }
  }
}

TEST(CudaOpsTest, PoolingMatchesReference) {
  QF_REQUIRE_CUDA_DEVICE();
  struct PoolCase {
    std::string op;
    Shape x;
    std::vector<int64_t> kernel, strides, pads, dilations;
    int64_t ceil = 0, include_pad = 0;
  };
  const std::vector<PoolCase> cases = {
      {"MaxPool", {1, 19, 15, 15}, {3, 3}, {2, 2}, {1, 1, 1, 1}, {1, 1}},
      {"MaxPool", {3, 5, 10, 9}, {2, 2}, {2, 2}, {0, 0, 0, 0}, {1, 1}, 1},  // ceil_mode
      {"MaxPool", {1, 8, 13, 13}, {3, 3}, {1, 1}, {2, 2, 2, 2}, {2, 2}},    // dilated
      // 16 and 24 channels: the vector kernels (16 bytes per thread for 2- and 1-byte types
      // where channels allow, else 4 channels per thread).
      {"MaxPool", {2, 16, 11, 11}, {3, 3}, {2, 2}, {1, 1, 1, 1}, {1, 1}},
      {"AveragePool", {1, 24, 9, 9}, {3, 3}, {2, 2}, {1, 1, 1, 1}, {1, 1}, 1, 1},
      {"AveragePool", {1, 17, 9, 11}, {3, 3}, {2, 2}, {1, 1, 1, 1}, {1, 1}},
      {"AveragePool", {1, 17, 9, 11}, {3, 3}, {2, 2}, {1, 1, 1, 1}, {1, 1}, 0, 1},
      {"AveragePool", {1, 4, 8, 8}, {3, 3}, {2, 2}, {0, 0, 0, 0}, {1, 1}, 1},
      {"AveragePool", {1, 4, 8, 8}, {3, 3}, {2, 2}, {0, 0, 0, 0}, {1, 1}, 1, 1},
      {"GlobalAveragePool", {3, 33, 7, 5}, {}, {}, {}, {}},
      {"GlobalMaxPool", {1, 21, 6, 6}, {}, {}, {}, {}},
      // Large windows (the reduction kernel's strided rows) and channels past one block of 32.
      {"GlobalAveragePool", {2, 40, 31, 29}, {}, {}, {}, {}},
      {"GlobalMaxPool", {3, 70, 17, 19}, {}, {}, {}, {}},
  };
  int seed = 100;
  for (const PoolCase& c : cases) {
    for (Precision p : kPrecisions) {
      ModelBuilder b(17);
      b.input("x", TensorProto::FLOAT, c.x);
      auto& n = b.node(c.op, {"x"}, {"y"}, "pool");
      if (!c.kernel.empty()) {
        testing::set_ints_attr(n, "kernel_shape", c.kernel);
        testing::set_ints_attr(n, "strides", c.strides);
        testing::set_ints_attr(n, "pads", c.pads);
        if (c.op == "MaxPool") testing::set_ints_attr(n, "dilations", c.dilations);
        testing::set_int_attr(n, "ceil_mode", c.ceil);
        if (c.op == "AveragePool") testing::set_int_attr(n, "count_include_pad", c.include_pad);
      }
      testing::untyped_output(b, "y");
      const std::string what =
          fmt::format("{} {} ceil {} include_pad {}", c.op, shape_str(c.x), c.ceil, c.include_pad);
      const auto info = expect_matches(b, {testing::random_tensor(c.x, ++seed)}, p, what);
      EXPECT_TRUE(on_gpu(info, "pool")) << what << ": " << testing::kernel_of(info, "pool");
    }
  }
}

TEST(CudaOpsTest, ElementwiseOpsWithBroadcastingMatchReferenceInBothLayouts) {
  QF_REQUIRE_CUDA_DEVICE();
  // A conv first puts the 4-D operand in NHWC; the plain cases keep it row-major.
  const std::vector<std::pair<Shape, Shape>> shapes = {{{3, 5, 7, 9}, {5, 1, 1}},
                                                       {{3, 5, 7, 9}, {1, 5, 7, 9}},
                                                       {{2, 6, 5, 3}, {3}},
                                                       {{2, 6, 5, 3}, {2, 6, 5, 3}},
                                                       {{4, 7}, {7}},
                                                       {{3, 1, 5}, {4, 1}}};
  int seed = 500;
  for (const std::string op : {"Add", "Sub", "Mul", "Div", "Max"}) {
    for (const auto& [as, bs] : shapes) {
      for (bool after_conv : {false, true}) {
        if (after_conv && as.size() != 4) continue;
        for (Precision p : {Precision::kFP32, Precision::kFP16}) {
          ModelBuilder b(17);
          b.input("x", TensorProto::FLOAT, as);
          std::string a = "x";
          if (after_conv) {
            b.initializer("w", testing::layer_weights({as[1], as[1], 1, 1}, ++seed));
            b.node("Conv", {"x", "w"}, {"c"}, "conv");
            a = "c";
          }
          // Divisors away from zero keep Div's relative error meaningful.
          b.initializer("k", testing::random_tensor(bs, ++seed, 0.5f, 2.f));
          b.node(op, {a, "k"}, {"y"}, "op");
          b.node("Relu", {"y"}, {"r"}, "relu");
          testing::untyped_output(b, "r");
          const std::string what = fmt::format("{} {} by {} after_conv {}", op, shape_str(as),
                                               shape_str(bs), after_conv);
          const auto info = expect_matches(b, {testing::random_tensor(as, ++seed)}, p, what);
          // The optimizer folds a per-channel constant Add after a conv into the conv's bias.
          const std::string node = testing::kernel_of(info, "op").empty() ? "conv" : "op";
          EXPECT_TRUE(on_gpu(info, node)) << what << ": " << testing::kernel_of(info, node);
        }
      }
    }
  }
}

TEST(CudaOpsTest, UnaryActivationsMatchReference) {
  QF_REQUIRE_CUDA_DEVICE();
  int seed = 700;
  for (const std::string op :
       {"Relu", "LeakyRelu", "Sigmoid", "Tanh", "HardSigmoid", "HardSwish", "Clip"}) {
    for (Precision p : kPrecisions) {
      ModelBuilder b(17);
      b.input("x", TensorProto::FLOAT, {3, 5, 7, 9});
      std::vector<std::string> ins = {"x"};
      if (op == "Clip") {
        b.initializer("lo", Tensor::from_vector<float>({}, {-0.3f}));
        b.initializer("hi", Tensor::from_vector<float>({}, {0.6f}));
        ins = {"x", "lo", "hi"};
      }
      b.node(op, ins, {"y"}, "act");
      testing::untyped_output(b, "y");
      const auto info =
          expect_matches(b, {testing::random_tensor({3, 5, 7, 9}, ++seed, -4.f, 4.f)}, p, op);
      EXPECT_TRUE(on_gpu(info, "act")) << op << ": " << testing::kernel_of(info, "act");
    }
  }
}

TEST(CudaOpsTest, UnaryMathOpsMatchReference) {
  QF_REQUIRE_CUDA_DEVICE();
  int seed = 800;
  // Log, Sqrt and Reciprocal see inputs in [0.5, 4], the others [-4, 4].
  for (const std::string op : {"Exp", "Erf", "Abs", "Neg", "Log", "Sqrt", "Reciprocal"}) {
    const bool positive = op == "Log" || op == "Sqrt" || op == "Reciprocal";
    for (Precision p : kPrecisions) {
      ModelBuilder b(17);
      b.input("x", TensorProto::FLOAT, {3, 7, 11});
      b.node(op, {"x"}, {"y"}, "op");
      testing::untyped_output(b, "y");
      const auto info = expect_matches(
          b, {testing::random_tensor({3, 7, 11}, ++seed, positive ? 0.5f : -4.f, 4.f)}, p, op);
      EXPECT_TRUE(on_gpu(info, "op")) << op << ": " << testing::kernel_of(info, "op");
    }
  }
}

TEST(CudaOpsTest, LayerNormalizationMatchesReference) {
  QF_REQUIRE_CUDA_DEVICE();
  int seed = 850;
  const std::vector<std::pair<Shape, int64_t>> cases = {
      {{3, 7, 768}, -1}, {{2, 5, 37}, -1}, {{4, 3, 5, 6}, 2}, {{1, 1000}, 1}};
  for (const auto& [xs, axis] : cases) {
    Shape normalized(xs.begin() + (axis < 0 ? axis + static_cast<int64_t>(xs.size()) : axis),
                     xs.end());
    for (bool with_bias : {true, false}) {
      for (Precision p : kPrecisions) {
        ModelBuilder b(17);
        b.input("x", TensorProto::FLOAT, xs);
        b.initializer("scale", testing::random_tensor(normalized, ++seed, 0.5f, 1.5f));
        std::vector<std::string> ins = {"x", "scale"};
        if (with_bias) {
          b.initializer("bias", testing::random_tensor(normalized, ++seed));
          ins.push_back("bias");
        }
        auto& n = b.node("LayerNormalization", ins, {"y"}, "ln");
        testing::set_int_attr(n, "axis", axis);
        testing::untyped_output(b, "y");
        const std::string what =
            fmt::format("LayerNormalization {} axis {} bias {}", shape_str(xs), axis, with_bias);
        // fp32 storage: inputs with a large common offset, which a one-pass variance would
        // lose. fp16/bf16 storage rounds such inputs by a visible part of their spread, so
        // those precisions see centred inputs.
        const bool fp32_storage = p == Precision::kFP32 || p == Precision::kTF32;
        const auto info =
            expect_matches(b,
                           {testing::random_tensor(xs, ++seed, fp32_storage ? 9.f : -1.f,
                                                   fp32_storage ? 11.f : 1.f)},
                           p, what);
        EXPECT_TRUE(on_gpu(info, "ln")) << what << ": " << testing::kernel_of(info, "ln");
      }
    }
  }
}

TEST(CudaOpsTest, SoftmaxMatchesReference) {
  QF_REQUIRE_CUDA_DEVICE();
  int seed = 900;
  struct SoftmaxCase {
    Shape x;
    int64_t axis;
    int opset;
    std::string op;
  };
  const std::vector<SoftmaxCase> cases = {
      {{3, 1000}, -1, 17, "Softmax"},
      {{2, 5, 7, 3}, 1, 17, "Softmax"},
      {{4, 3, 5}, 1, 11, "Softmax"},
      {{3, 37}, -1, 17, "LogSoftmax"},
  };
  for (const SoftmaxCase& c : cases) {
    for (Precision p : kPrecisions) {
      ModelBuilder b(c.opset);
      b.input("x", TensorProto::FLOAT, c.x);
      auto& n = b.node(c.op, {"x"}, {"y"}, "sm");
      testing::set_int_attr(n, "axis", c.axis);
      testing::untyped_output(b, "y");
      const std::string what =
          fmt::format("{} {} axis {} opset {}", c.op, shape_str(c.x), c.axis, c.opset);
      const auto info =
          expect_matches(b, {testing::random_tensor(c.x, ++seed, -3.f, 3.f)}, p, what);
      EXPECT_TRUE(on_gpu(info, "sm")) << what << ": " << testing::kernel_of(info, "sm");
    }
  }
}

TEST(CudaOpsTest, TransposeAndConcatMatchReference) {
  QF_REQUIRE_CUDA_DEVICE();
  int seed = 1500;
  const std::vector<std::pair<Shape, std::vector<int64_t>>> transposes = {
      {{3, 5, 7, 9}, {0, 2, 3, 1}},
      {{3, 5, 7, 9}, {0, 3, 1, 2}},
      {{4, 7}, {}},
      {{2, 3, 5, 1, 7}, {4, 1, 0, 3, 2}}};
  for (const auto& [xs, perm] : transposes) {
    for (Precision p : {Precision::kFP32, Precision::kBF16}) {
      ModelBuilder b(17);
      b.input("x", TensorProto::FLOAT, xs);
      auto& n = b.node("Transpose", {"x"}, {"y"}, "tr");
      if (!perm.empty()) testing::set_ints_attr(n, "perm", perm);
      testing::untyped_output(b, "y");
      const std::string what = fmt::format("Transpose {} perm {}", shape_str(xs), perm.size());
      const auto info = expect_matches(b, {testing::random_tensor(xs, ++seed)}, p, what);
      EXPECT_TRUE(on_gpu(info, "tr")) << what << ": " << testing::kernel_of(info, "tr");
    }
  }
  // Concat of a conv output (NHWC inside), a graph input and a constant, along each axis.
  for (int64_t axis : {0, 1, 2, -1}) {
    for (Precision p : {Precision::kFP32, Precision::kFP16}) {
      ModelBuilder b(17);
      const Shape xs = {3, 5, 6, 7};
      Shape other = xs;
      other[static_cast<size_t>(axis < 0 ? axis + 4 : axis)] = 2;
      b.input("x", TensorProto::FLOAT, xs);
      b.input("u", TensorProto::FLOAT, other);
      b.initializer("w", testing::layer_weights({5, 5, 1, 1}, ++seed));
      b.initializer("k", testing::random_tensor(other, ++seed));
      b.node("Conv", {"x", "w"}, {"c"}, "conv");
      auto& n = b.node("Concat", {"c", "u", "k"}, {"y"}, "cat");
      testing::set_int_attr(n, "axis", axis);
      testing::untyped_output(b, "y");
      const std::string what = fmt::format("Concat axis {}", axis);
      const auto info = expect_matches(
          b, {testing::random_tensor(xs, ++seed), testing::random_tensor(other, ++seed)}, p, what);
      EXPECT_TRUE(on_gpu(info, "cat")) << what << ": " << testing::kernel_of(info, "cat");
    }
  }
}

// A small CNN: conv -> pool -> an op without a CUDA kernel (host fallback) -> flatten -> gemm ->
// softmax. Checks the fallback is reported, never silent, and the engine describes itself.
TEST(CudaOpsTest, HostFallbackBetweenDeviceOpsMatchesAndIsReported) {
  QF_REQUIRE_CUDA_DEVICE();
  for (Precision p : kPrecisions) {
    ModelBuilder b(17);
    b.input("x", TensorProto::FLOAT, {3, 3, 12, 12});
    b.initializer("w", testing::layer_weights({8, 3, 3, 3}, 1));
    b.initializer("b", testing::random_tensor({8}, 2));
    auto& conv = b.node("Conv", {"x", "w", "b"}, {"c"}, "conv");
    testing::set_ints_attr(conv, "pads", {1, 1, 1, 1});
    b.node("Relu", {"c"}, {"r"}, "relu");
    auto& pool = b.node("MaxPool", {"r"}, {"p"}, "pool");
    testing::set_ints_attr(pool, "kernel_shape", {2, 2});
    testing::set_ints_attr(pool, "strides", {2, 2});
    b.node("Elu", {"p"}, {"e"}, "elu");  // no CUDA kernel yet: runs on the host
    auto& flat = b.node("Flatten", {"e"}, {"f"}, "flatten");
    testing::set_int_attr(flat, "axis", 1);
    b.initializer("wf", testing::layer_weights({10, 8 * 6 * 6}, 3));
    auto& gemm = b.node("Gemm", {"f", "wf"}, {"g"}, "fc");
    testing::set_int_attr(gemm, "transB", 1);
    b.node("Softmax", {"g"}, {"y"}, "softmax");
    testing::untyped_output(b, "y");
    const auto info = expect_matches(b, {testing::random_tensor({3, 3, 12, 12}, 4)}, p, "cnn");
    EXPECT_EQ(info.backend, "cuda");
    EXPECT_NE(info.isa.find("sm_"), std::string::npos) << info.isa;
    EXPECT_FALSE(info.compute.empty());
    EXPECT_GT(info.activation_bytes, 0);
    EXPECT_GT(info.weights_bytes, 0);
    EXPECT_NE(testing::kernel_of(info, "elu").find("[host fallback]"), std::string::npos)
        << testing::kernel_of(info, "elu");
    EXPECT_TRUE(on_gpu(info, "conv")) << testing::kernel_of(info, "conv");
    EXPECT_TRUE(on_gpu(info, "fc")) << testing::kernel_of(info, "fc");
    EXPECT_TRUE(on_gpu(info, "softmax")) << testing::kernel_of(info, "softmax");
  }
}

// A second batch size plans again; a graph output that is also an intermediate comes back too.
TEST(CudaOpsTest, DynamicBatchAndIntermediateOutputs) {
  QF_REQUIRE_CUDA_DEVICE();
  ModelBuilder b(17);
  b.input("x", TensorProto::FLOAT, {-1, 4, 6, 6});
  b.initializer("w", testing::layer_weights({5, 4, 3, 3}, 11));
  b.node("Conv", {"x", "w"}, {"c"}, "conv");
  b.node("Sigmoid", {"c"}, {"y"}, "sig");
  testing::untyped_output(b, "y");
  testing::untyped_output(b, "c");
  auto imported = onnx_io::import_model_bytes(b.serialize(), "t.onnx");
  ASSERT_TRUE(imported.ok());
  auto ref_model = onnx_io::import_model_bytes(b.serialize(), "t.onnx");
  ASSERT_TRUE(ref_model.ok());
  auto engine = cuda_backend()->build(std::move(imported->graph), {});
  ASSERT_TRUE(engine.ok()) << engine.status().message();
  auto ref = runtime::find_backend("reference")->build(std::move(ref_model->graph), {});
  ASSERT_TRUE(ref.ok());
  for (int64_t n : {1, 3, 2, 3}) {
    const std::vector<Tensor> in = {testing::random_tensor({n, 4, 6, 6}, static_cast<uint32_t>(n))};
    auto got = (*engine)->run(in);
    auto want = (*ref)->run(in);
    ASSERT_TRUE(got.ok()) << got.status().message();
    ASSERT_TRUE(want.ok());
    ASSERT_EQ(got->size(), 2u);
    for (size_t i = 0; i < 2; ++i) {
      EXPECT_LE(testing::relative_error((*got)[i], (*want)[i]), 1e-4)
          << "batch " << n << " out " << i;
    }
  }
}

}  // namespace
}  // namespace qf
