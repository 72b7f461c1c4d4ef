// The cpu backend's oneDNN lowerings against the reference backend, op by op, over shapes chosen
// to be awkward (channels not a multiple of 16, odd spatial sizes, stride 2, groups, depthwise,
// 1x1, asymmetric padding) plus seeded random ones, in fp32 (1e-4) and, where the CPU has native
// bf16, bf16 (2e-2). Each case also checks that the node really ran in oneDNN.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <random>

#include "backends/cpu/cpu_test_util.h"

namespace qf {
namespace {

using onnx::TensorProto;
using runtime::Precision;
using testing::ModelBuilder;

const std::vector<Precision> kPrecisions = {Precision::kFP32, Precision::kBF16};

bool available(Precision p) {
  return testing::cpu_backend()->supports(p);
}

struct ConvCase {
  int64_t n, c, h, w, m, kh, kw;
  int64_t stride = 1, pad = 0, dilation = 1, group = 1;
  bool bias = true;
  std::string auto_pad = "";
  std::vector<int64_t> pads = {};  // overrides `pad` (begins then ends)
};

std::string describe(const ConvCase& k) {
  return fmt::format("x {}x{}x{}x{} w {}x{}x{}x{} s{} p{} d{} g{}{}{}", k.n, k.c, k.h, k.w, k.m,
                     k.c / k.group, k.kh, k.kw, k.stride, k.pad, k.dilation, k.group,
                     k.bias ? " bias" : "", k.auto_pad.empty() ? "" : " " + k.auto_pad);
}

// Conv -> Y, optionally followed by more nodes that tests add.
ModelBuilder conv_model(const ConvCase& k, uint32_t seed, int opset = 17) {
  ModelBuilder b(opset);
  b.input("x", TensorProto::FLOAT, {k.n, k.c, k.h, k.w});
  b.initializer("w", testing::random_tensor({k.m, k.c / k.group, k.kh, k.kw}, seed + 1));
  std::vector<std::string> ins = {"x", "w"};
  if (k.bias) {
    b.initializer("b", testing::random_tensor({k.m}, seed + 2));
    ins.push_back("b");
  }
  auto& n = b.node("Conv", ins, {"y"}, "conv");
  testing::set_ints_attr(n, "strides", {k.stride, k.stride});
  testing::set_ints_attr(n, "dilations", {k.dilation, k.dilation});
  testing::set_int_attr(n, "group", k.group);
  if (!k.auto_pad.empty()) {
    testing::set_string_attr(n, "auto_pad", k.auto_pad);
  } else {
    testing::set_ints_attr(n, "pads", k.pads.empty() ? std::vector<int64_t>(4, k.pad) : k.pads);
  }
  testing::untyped_output(b, "y");
  return b;
}

std::vector<ConvCase> conv_cases() {
  std::vector<ConvCase> cases = {
      {1, 3, 7, 9, 5, 3, 3, 1, 1},                 // tiny, odd sizes
      {1, 17, 15, 13, 33, 3, 3, 2, 1},             // odd channels, stride 2
      {2, 24, 14, 14, 24, 3, 3, 1, 1, 1, 24},      // depthwise
      {1, 32, 9, 9, 32, 3, 3, 2, 1, 1, 32},        // depthwise, stride 2
      {1, 20, 11, 10, 12, 3, 3, 1, 1, 1, 4},       // grouped
      {1, 64, 8, 8, 48, 1, 1},                     // 1x1
      {1, 40, 9, 9, 24, 1, 1, 2, 0},               // 1x1 stride 2
      {1, 16, 12, 12, 16, 3, 3, 1, 2, 2},          // dilation 2
      {3, 3, 23, 23, 16, 7, 7, 2, 3},              // ResNet's stem shape, batch 3
      {1, 6, 10, 7, 10, 5, 5, 1, 2, 1, 1, false},  // 5x5, no bias
      {1, 8, 10, 10, 8, 3, 3, 2, 0, 1, 1, true, "SAME_UPPER"},
      {1, 8, 9, 9, 4, 2, 2, 1, 0, 1, 1, true, "", {0, 1, 1, 0}},  // asymmetric pads
      {1, 5, 6, 6, 7, 1, 3, 1, 0, 1, 1, true, "", {0, 1, 0, 1}},  // 1x3 kernel
  };
  std::mt19937 gen(2024);
  auto pick = [&](int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(gen);
  };
  for (int i = 0; i < 12; ++i) {
    ConvCase k{};
    k.group = pick(0, 3) == 0 ? pick(2, 4) : 1;
    k.n = pick(1, 2);
    k.c = k.group * pick(1, 19);
    k.m = k.group * pick(1, 21);
    k.kh = k.kw = pick(0, 2) * 2 + 1;
    k.stride = pick(1, 2);
    k.pad = pick(0, k.kh / 2);
    k.dilation = pick(0, 4) == 0 ? 2 : 1;
    k.h = pick(k.kh * k.dilation, 17);
    k.w = pick(k.kw * k.dilation, 19);
    k.bias = pick(0, 1) == 1;
    cases.push_back(k);
  }
  return cases;
}

TEST(CpuOpsTest, ConvMatchesReferenceAndRunsInOneDnn) {
  QF_REQUIRE_CPU_BACKEND();
  uint32_t seed = 1;
  for (const ConvCase& k : conv_cases()) {
    for (Precision p : kPrecisions) {
      if (!available(p)) continue;
      seed += 10;
      const ModelBuilder b = conv_model(k, seed);
      const Tensor x = testing::random_tensor({k.n, k.c, k.h, k.w}, seed);
      const runtime::EngineInfo info = testing::expect_matches_reference(b, {x}, p, describe(k));
      EXPECT_TRUE(testing::runs_in_onednn(info, "conv"))
          << describe(k) << ": " << testing::kernel_of(info, "conv");
      const std::string sig = p == Precision::kBF16 ? "conv2d_bf16" : "conv2d_f32";
      EXPECT_NE(testing::kernel_of(info, "conv").find(sig), std::string::npos)
          << testing::kernel_of(info, "conv");
    }
  }
}

TEST(CpuOpsTest, Conv1dAnd3dMatchReference) {
  QF_REQUIRE_CPU_BACKEND();
  for (int spatial : {1, 3}) {
    ModelBuilder b(17);
    Shape xs = {2, 6}, ws = {10, 6};
    for (int d = 0; d < spatial; ++d) {
      xs.push_back(9 - d);
      ws.push_back(3);
    }
    b.input("x", TensorProto::FLOAT, xs);
    b.initializer("w", testing::random_tensor(ws, 3));
    b.initializer("b", testing::random_tensor({10}, 4));
    auto& n = b.node("Conv", {"x", "w", "b"}, {"y"}, "conv");
    testing::set_ints_attr(n, "pads", std::vector<int64_t>(2 * spatial, 1));
    testing::set_ints_attr(n, "strides", std::vector<int64_t>(spatial, 2));
    testing::untyped_output(b, "y");
    const runtime::EngineInfo info = testing::expect_matches_reference(
        b, {testing::random_tensor(xs, 5)}, Precision::kFP32, fmt::format("conv{}d", spatial));
    EXPECT_TRUE(testing::runs_in_onednn(info, "conv")) << testing::kernel_of(info, "conv");
  }
}

TEST(CpuOpsTest, ConvTransposeMatchesReference) {
  QF_REQUIRE_CPU_BACKEND();
  struct Case {
    int64_t c, m, k, stride, pad, output_padding, group;
    bool bias;
  };
  const std::vector<Case> cases = {
      {8, 4, 2, 2, 0, 0, 1, true},   // the usual 2x upsampling
      {5, 7, 3, 2, 1, 1, 1, true},   // odd channels, output_padding
      {6, 9, 3, 1, 1, 0, 3, false},  // grouped
      {4, 4, 4, 2, 1, 0, 4, true},   // depthwise
  };
  int seed = 1700;
  for (const Case& k : cases) {
    for (Precision p : kPrecisions) {
      if (!available(p)) continue;
      ModelBuilder b(17);
      b.input("x", TensorProto::FLOAT, {1, k.c, 7, 6});
      b.initializer("w", testing::layer_weights({k.c, k.m / k.group, k.k, k.k}, ++seed));
      std::vector<std::string> ins = {"x", "w"};
      if (k.bias) {
        b.initializer("b", testing::random_tensor({k.m}, ++seed));
        ins.push_back("b");
      }
      auto& n = b.node("ConvTranspose", ins, {"y"}, "deconv");
      testing::set_ints_attr(n, "strides", {k.stride, k.stride});
      testing::set_ints_attr(n, "pads", {k.pad, k.pad, k.pad, k.pad});
      testing::set_ints_attr(n, "output_padding", {k.output_padding, k.output_padding});
      testing::set_int_attr(n, "group", k.group);
      testing::untyped_output(b, "y");
      const std::string what = fmt::format("ConvTranspose c{} m{} k{} s{} p{} op{} g{}", k.c, k.m,
                                           k.k, k.stride, k.pad, k.output_padding, k.group);
      const runtime::EngineInfo info = testing::expect_matches_reference(
          b, {testing::random_tensor({1, k.c, 7, 6}, ++seed)}, p, what);
      EXPECT_TRUE(testing::runs_in_onednn(info, "deconv"))
          << what << ": " << testing::kernel_of(info, "deconv");
    }
  }
}

// Conv -> activation / BN / pooling / binary chains keep oneDNN's blocked layouts in between.
TEST(CpuOpsTest, ChainsOfOneDnnOpsMatchReference) {
  QF_REQUIRE_CPU_BACKEND();
  const ConvCase k{1, 13, 11, 11, 19, 3, 3, 1, 1};
  for (Precision p : kPrecisions) {
    if (!available(p)) continue;
    ModelBuilder b = conv_model(k, 7);
    b.proto().mutable_graph()->clear_output();
    b.initializer("scale", testing::random_tensor({19}, 11, 0.5f, 1.5f));
    b.initializer("shift", testing::random_tensor({19}, 12));
    b.initializer("mean", testing::random_tensor({19}, 13));
    b.initializer("var", testing::random_tensor({19}, 14, 0.5f, 2.f));
    b.node("BatchNormalization", {"y", "scale", "shift", "mean", "var"}, {"bn"}, "bn");
    b.node("Relu", {"bn"}, {"r"}, "relu");
    auto& mp = b.node("MaxPool", {"r"}, {"mp"}, "maxpool");
    testing::set_ints_attr(mp, "kernel_shape", {3, 3});
    testing::set_ints_attr(mp, "strides", {2, 2});
    testing::set_ints_attr(mp, "pads", {1, 1, 1, 1});
    b.initializer("chan", testing::random_tensor({19, 1, 1}, 15));
    b.node("Mul", {"mp", "chan"}, {"mul"}, "mul");
    b.node("Add", {"mul", "mp"}, {"add"}, "add");
    b.node("GlobalAveragePool", {"add"}, {"gap"}, "gap");
    b.node("Flatten", {"gap"}, {"flat"}, "flatten");
    b.initializer("fc_w", testing::random_tensor({7, 19}, 16));
    b.initializer("fc_b", testing::random_tensor({7}, 17));
    auto& fc = b.node("Gemm", {"flat", "fc_w", "fc_b"}, {"logits"}, "fc");
    testing::set_int_attr(fc, "transB", 1);
    b.node("Softmax", {"logits"}, {"prob"}, "softmax");
    testing::untyped_output(b, "prob");
    testing::untyped_output(b, "add");
    const runtime::EngineInfo info = testing::expect_matches_reference(
        b, {testing::random_tensor({1, 13, 11, 11}, 8)}, p, "conv chain");
    for (const char* node : {"maxpool", "mul", "add", "gap", "fc", "softmax"}) {
      EXPECT_TRUE(testing::runs_in_onednn(info, node))
          << node << ": " << testing::kernel_of(info, node);
    }
  }
}

TEST(CpuOpsTest, PoolingMatchesReference) {
  QF_REQUIRE_CPU_BACKEND();
  struct PoolCase {
    std::string op;
    Shape x;
    std::vector<int64_t> kernel, strides, pads, dilations;
    int64_t ceil = 0, include_pad = 0;
  };
  const std::vector<PoolCase> cases = {
      {"MaxPool", {1, 19, 15, 15}, {3, 3}, {2, 2}, {1, 1, 1, 1}, {1, 1}},
      {"MaxPool", {2, 5, 10, 9}, {2, 2}, {2, 2}, {0, 0, 0, 0}, {1, 1}, 1},  // ceil_mode
      {"MaxPool", {1, 8, 13, 13}, {3, 3}, {1, 1}, {2, 2, 2, 2}, {2, 2}},    // dilated
      {"AveragePool", {1, 17, 9, 11}, {3, 3}, {2, 2}, {1, 1, 1, 1}, {1, 1}},
      {"AveragePool", {1, 17, 9, 11}, {3, 3}, {2, 2}, {1, 1, 1, 1}, {1, 1}, 0, 1},
      {"AveragePool", {1, 4, 8, 8}, {3, 3}, {2, 2}, {0, 0, 0, 0}, {1, 1}, 1},  // ceil, exclude
      {"AveragePool", {1, 4, 8, 8}, {3, 3}, {2, 2}, {0, 0, 0, 0}, {1, 1}, 1, 1},
      {"GlobalAveragePool", {2, 33, 7, 5}, {}, {}, {}, {}},
      {"GlobalMaxPool", {1, 21, 6, 6}, {}, {}, {}, {}},
      {"MaxPool", {1, 3, 17}, {3}, {2}, {1, 1}, {1}},  // 1-D
  };
  int seed = 100;
  for (const PoolCase& c : cases) {
    for (Precision p : kPrecisions) {
      if (!available(p)) continue;
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
      const runtime::EngineInfo info =
          testing::expect_matches_reference(b, {testing::random_tensor(c.x, ++seed)}, p, what);
      // A ceil_mode window oneDNN would average over another count stays on the reference.
      if (!(c.ceil && c.include_pad)) {
        EXPECT_TRUE(testing::runs_in_onednn(info, "pool"))
            << what << ": " << testing::kernel_of(info, "pool");
      }
    }
  }
}

TEST(CpuOpsTest, UnaryActivationsMatchReference) {
  QF_REQUIRE_CPU_BACKEND();
  struct UnaryCase {
    std::string op;
    float lo = -3.f, hi = 3.f;
    std::vector<std::pair<std::string, float>> attrs = {};
  };
  const std::vector<UnaryCase> cases = {
      {"Relu"},
      {"LeakyRelu", -3, 3, {{"alpha", 0.2f}}},
      {"Sigmoid"},
      {"Tanh"},
      {"Elu", -3, 3, {{"alpha", 0.7f}}},
      {"Exp"},
      {"Log", 0.1f, 5.f},
      {"Sqrt", 0.f, 4.f},
      {"Abs"},
      {"Neg"},
      {"HardSwish", -5, 5},
      {"HardSigmoid", -5, 5, {{"alpha", 0.3f}, {"beta", 0.4f}}},
  };
  int seed = 300;
  for (const UnaryCase& c : cases) {
    for (Precision p : kPrecisions) {
      if (!available(p)) continue;
      // Once on a graph input (plain layout), once behind a Conv (oneDNN's layout).
      for (bool after_conv : {false, true}) {
        ModelBuilder b(17);
        const Shape xs = {2, 7, 5, 3};
        b.input("x", TensorProto::FLOAT, xs);
        std::string in = "x";
        if (after_conv) {
          Tensor w(DType::kF32, {7, 7, 1, 1});  // identity 1x1 conv: the input's range survives
          for (int64_t i = 0; i < 7; ++i) w.data<float>()[i * 7 + i] = 1.f;
          b.initializer("w", w);
          b.node("Conv", {"x", "w"}, {"c"}, "conv");
          in = "c";
        }
        auto& n = b.node(c.op, {in}, {"y"}, "act");
        for (const auto& [name, v] : c.attrs) testing::set_float_attr(n, name, v);
        testing::untyped_output(b, "y");
        const std::string what = c.op + (after_conv ? " after conv" : "");
        const runtime::EngineInfo info = testing::expect_matches_reference(
            b, {testing::random_tensor(xs, ++seed, c.lo, c.hi)}, p, what);
        EXPECT_TRUE(testing::runs_in_onednn(info, "act") ||
                    testing::kernel_of(info, "act").empty())  // fused into the conv by passes
            << what << ": " << testing::kernel_of(info, "act");
      }
    }
  }
}

TEST(CpuOpsTest, ClipWithConstantBoundsRunsInOneDnn) {
  QF_REQUIRE_CPU_BACKEND();
  ModelBuilder b(13);
  b.input("x", TensorProto::FLOAT, {3, 17});
  b.initializer("lo", Tensor::from_vector<float>({}, {0.f}));
  b.initializer("hi", Tensor::from_vector<float>({}, {6.f}));
  b.node("Clip", {"x", "lo", "hi"}, {"y"}, "clip");
  testing::untyped_output(b, "y");
  const runtime::EngineInfo info = testing::expect_matches_reference(
      b, {testing::random_tensor({3, 17}, 9, -10, 10)}, Precision::kFP32, "Clip");
  EXPECT_TRUE(testing::runs_in_onednn(info, "clip")) << testing::kernel_of(info, "clip");
}

TEST(CpuOpsTest, BinaryOpsWithBroadcastingMatchReference) {
  QF_REQUIRE_CPU_BACKEND();
  struct BinaryCase {
    std::string op;
    Shape a, b;
    bool b_constant;
    bool onednn;  // whether oneDNN can take it (only its second source broadcasts)
  };
  const std::vector<BinaryCase> cases = {
      {"Add", {2, 17, 5, 3}, {2, 17, 5, 3}, false, true},
      {"Add", {2, 17, 5, 3}, {17, 1, 1}, true, true},
      {"Mul", {1, 9, 4, 4}, {}, true, true},  // scalar
      {"Sub", {4, 6}, {6}, false, true},
      {"Div", {4, 6}, {4, 1}, true, true},
      {"Add", {5, 1, 1}, {2, 5, 7, 3}, false, true},  // the first input broadcasts: swapped
      {"Sub", {5, 1, 1}, {2, 5, 7, 3}, false, false},
      {"Max", {3, 8}, {3, 8}, false, true},
      {"Min", {3, 8}, {1, 8}, true, true},
      {"Add", {3, 1}, {1, 4}, false, false},  // both broadcast
  };
  int seed = 500;
  for (const BinaryCase& c : cases) {
    for (Precision p : kPrecisions) {
      if (!available(p)) continue;
      ModelBuilder b(17);
      b.input("a", TensorProto::FLOAT, c.a);
      std::vector<Tensor> inputs = {testing::random_tensor(c.a, ++seed)};
      if (c.b_constant) {
        b.initializer("b", testing::random_tensor(c.b, ++seed, 0.5f, 2.f));
      } else {
        b.input("b", TensorProto::FLOAT, c.b);
        inputs.push_back(testing::random_tensor(c.b, ++seed, 0.5f, 2.f));
      }
      b.node(c.op, {"a", "b"}, {"y"}, "op");
      testing::untyped_output(b, "y");
      const std::string what = fmt::format("{} {} {}", c.op, shape_str(c.a), shape_str(c.b));
      const runtime::EngineInfo info = testing::expect_matches_reference(b, inputs, p, what);
      EXPECT_EQ(testing::runs_in_onednn(info, "op"), c.onednn)
          << what << ": " << testing::kernel_of(info, "op");
    }
  }
}

TEST(CpuOpsTest, GemmAndMatMulMatchReference) {
  QF_REQUIRE_CPU_BACKEND();
  struct GemmCase {
    int64_t m, k, n;
    int64_t trans_b;
    float alpha, beta;
    Shape c;  // empty: no C
  };
  const std::vector<GemmCase> gemms = {
      {1, 2048, 1000, 1, 1.f, 1.f, {1000}},  // ResNet's classifier
      {5, 17, 9, 0, 1.f, 1.f, {1, 9}},      {3, 33, 7, 1, 0.5f, 2.f, {}},
      {4, 8, 6, 0, 1.f, 0.25f, {4, 6}},     {2, 5, 3, 1, 1.f, 1.f, {}},
  };
  int seed = 700;
  for (const GemmCase& g : gemms) {
    for (Precision p : kPrecisions) {
      if (!available(p)) continue;
      ModelBuilder b(13);
      b.input("a", TensorProto::FLOAT, {g.m, g.k});
      b.initializer("w",
                    testing::random_tensor(g.trans_b ? Shape{g.n, g.k} : Shape{g.k, g.n}, ++seed));
      std::vector<std::string> ins = {"a", "w"};
      if (!g.c.empty()) {
        b.initializer("c", testing::random_tensor(g.c, ++seed));
        ins.push_back("c");
      }
      auto& n = b.node("Gemm", ins, {"y"}, "gemm");
      testing::set_int_attr(n, "transB", g.trans_b);
      testing::set_float_attr(n, "alpha", g.alpha);
      testing::set_float_attr(n, "beta", g.beta);
      testing::untyped_output(b, "y");
      const std::string what = fmt::format("Gemm {}x{}x{} transB {}", g.m, g.k, g.n, g.trans_b);
      const runtime::EngineInfo info = testing::expect_matches_reference(
          b, {testing::random_tensor({g.m, g.k}, ++seed)}, p, what);
      EXPECT_TRUE(testing::runs_in_onednn(info, "gemm"))
          << what << ": " << testing::kernel_of(info, "gemm");
    }
  }

  struct MatMulCase {
    Shape a, b;
    bool b_constant;
  };
  const std::vector<MatMulCase> matmuls = {
      {{7, 13}, {13, 5}, true},
      {{2, 7, 13}, {13, 5}, true},          // 3-D activations, 2-D weights
      {{2, 3, 4, 9}, {2, 3, 9, 6}, false},  // batched, both activations
      {{2, 1, 4, 9}, {3, 9, 6}, false},     // broadcast batch dims
  };
  for (const MatMulCase& c : matmuls) {
    for (Precision p : kPrecisions) {
      if (!available(p)) continue;
      ModelBuilder b(13);
      b.input("a", TensorProto::FLOAT, c.a);
      std::vector<Tensor> inputs = {testing::random_tensor(c.a, ++seed)};
      if (c.b_constant) {
        b.initializer("b", testing::random_tensor(c.b, ++seed));
      } else {
        b.input("b", TensorProto::FLOAT, c.b);
        inputs.push_back(testing::random_tensor(c.b, ++seed));
      }
      b.node("MatMul", {"a", "b"}, {"y"}, "matmul");
      testing::untyped_output(b, "y");
      const std::string what = fmt::format("MatMul {} {}", shape_str(c.a), shape_str(c.b));
      const runtime::EngineInfo info = testing::expect_matches_reference(b, inputs, p, what);
      EXPECT_TRUE(testing::runs_in_onednn(info, "matmul"))
          << what << ": " << testing::kernel_of(info, "matmul");
    }
  }
}

TEST(CpuOpsTest, SoftmaxConcatAndNormalizationsMatchReference) {
  QF_REQUIRE_CPU_BACKEND();
  for (Precision p : kPrecisions) {
    if (!available(p)) continue;
    int seed = 900;
    // Softmax-13 on the last and a middle axis; Softmax-11's 2-D coercion; LogSoftmax.
    for (const auto& [opset, op, axis] : std::vector<std::tuple<int, std::string, int64_t>>{
             {13, "Softmax", -1}, {13, "Softmax", 1}, {11, "Softmax", 1}, {13, "LogSoftmax", -1}}) {
      ModelBuilder b(opset);
      b.input("x", TensorProto::FLOAT, {2, 5, 3, 7});
      testing::set_int_attr(b.node(op, {"x"}, {"y"}, "softmax"), "axis", axis);
      testing::untyped_output(b, "y");
      const std::string what = fmt::format("{}-{} axis {}", op, opset, axis);
      const runtime::EngineInfo info = testing::expect_matches_reference(
          b, {testing::random_tensor({2, 5, 3, 7}, ++seed, -4, 4)}, p, what);
      EXPECT_TRUE(testing::runs_in_onednn(info, "softmax"))
          << what << ": " << testing::kernel_of(info, "softmax");
    }
    {  // Concat of two conv outputs (blocked) and a graph input (plain).
      ModelBuilder b(17);
      b.input("x", TensorProto::FLOAT, {1, 5, 6, 6});
      b.input("z", TensorProto::FLOAT, {1, 3, 6, 6});
      b.initializer("w1", testing::random_tensor({7, 5, 3, 3}, ++seed));
      b.initializer("w2", testing::random_tensor({9, 5, 1, 1}, ++seed));
      testing::set_ints_attr(b.node("Conv", {"x", "w1"}, {"c1"}, "conv1"), "pads", {1, 1, 1, 1});
      b.node("Conv", {"x", "w2"}, {"c2"}, "conv2");
      testing::set_int_attr(b.node("Concat", {"c1", "z", "c2"}, {"y"}, "concat"), "axis", 1);
      testing::untyped_output(b, "y");
      const runtime::EngineInfo info =
          testing::expect_matches_reference(b,
                                            {testing::random_tensor({1, 5, 6, 6}, ++seed),
                                             testing::random_tensor({1, 3, 6, 6}, ++seed)},
                                            p, "Concat");
      EXPECT_TRUE(testing::runs_in_onednn(info, "concat")) << testing::kernel_of(info, "concat");
    }
    for (int64_t axis : {-1, -2}) {  // LayerNormalization over the last one and two dims
      ModelBuilder b(17);
      b.input("x", TensorProto::FLOAT, {3, 4, 10});
      const Shape ps = axis == -1 ? Shape{10} : Shape{4, 10};
      b.initializer("g", testing::random_tensor(ps, ++seed, 0.5f, 1.5f));
      b.initializer("be", testing::random_tensor(ps, ++seed));
      testing::set_int_attr(b.node("LayerNormalization", {"x", "g", "be"}, {"y"}, "ln"), "axis",
                            axis);
      testing::untyped_output(b, "y");
      const runtime::EngineInfo info =
          testing::expect_matches_reference(b, {testing::random_tensor({3, 4, 10}, ++seed, -2, 2)},
                                            p, fmt::format("LayerNormalization axis {}", axis));
      EXPECT_TRUE(testing::runs_in_onednn(info, "ln")) << testing::kernel_of(info, "ln");
    }
  }
}

// A node oneDNN does not take (Erf) between oneDNN ops: explicit conversions to and from plain
// f32 around its reference kernel.
TEST(CpuOpsTest, ReferenceFallbackBetweenOneDnnOpsMatchesReference) {
  QF_REQUIRE_CPU_BACKEND();
  for (Precision p : kPrecisions) {
    if (!available(p)) continue;
    ModelBuilder b(17);
    b.input("x", TensorProto::FLOAT, {1, 6, 8, 8});
    b.initializer("w1", testing::layer_weights({10, 6, 3, 3}, 41));
    b.initializer("w2", testing::layer_weights({4, 10, 3, 3}, 42));
    testing::set_ints_attr(b.node("Conv", {"x", "w1"}, {"c1"}, "conv1"), "pads", {1, 1, 1, 1});
    b.node("Erf", {"c1"}, {"e"}, "erf");
    b.node("Conv", {"e", "w2"}, {"y"}, "conv2");
    testing::untyped_output(b, "y");
    const runtime::EngineInfo info = testing::expect_matches_reference(
        b, {testing::random_tensor({1, 6, 8, 8}, 43)}, p, "conv, erf, conv");
    EXPECT_EQ(testing::kernel_of(info, "erf"), "reference_Erf");
    EXPECT_TRUE(testing::runs_in_onednn(info, "conv1"));
    EXPECT_TRUE(testing::runs_in_onednn(info, "conv2"));
  }
}

// Transpose and Slice as oneDNN reorders of a permuted / cropped view, ReduceX as reductions;
// behind a Conv, so that the view is of oneDNN's layout.
TEST(CpuOpsTest, TransposeSliceAndReductionsMatchReference) {
  QF_REQUIRE_CPU_BACKEND();
  struct Case {
    std::string what;
    std::function<void(ModelBuilder&)> add;  // reads "c" (1x20x6x7), writes "y"
    std::string node;
  };
  auto ints = [](ModelBuilder& b, const std::string& name, std::vector<int64_t> v) {
    b.initializer(name, Tensor::from_vector<int64_t>({static_cast<int64_t>(v.size())}, v));
  };
  const std::vector<Case> cases = {
      {"transpose",
       [](ModelBuilder& b) {
         testing::set_ints_attr(b.node("Transpose", {"c"}, {"y"}, "op"), "perm", {0, 2, 3, 1});
       },
       "op"},
      {"slice channels 16..20 (block-aligned)",
       [&](ModelBuilder& b) {
         ints(b, "s", {16});
         ints(b, "e", {20});
         ints(b, "a", {1});
         b.node("Slice", {"c", "s", "e", "a"}, {"y"}, "op");
       },
       "op"},
      {"slice channels 3..11 and rows 1..-1",
       [&](ModelBuilder& b) {
         ints(b, "s", {3, 1});
         ints(b, "e", {11, -1});
         ints(b, "a", {1, 2});
         b.node("Slice", {"c", "s", "e", "a"}, {"y"}, "op");
       },
       "op"},
      {"reduce mean over H, W keepdims",
       [&](ModelBuilder& b) {
         ints(b, "ax", {2, 3});
         b.node("ReduceMean", {"c", "ax"}, {"y"}, "op");
       },
       "op"},
      {"reduce sum over C without keepdims",
       [&](ModelBuilder& b) {
         ints(b, "ax", {1});
         testing::set_int_attr(b.node("ReduceSum", {"c", "ax"}, {"y"}, "op"), "keepdims", 0);
       },
       "op"},
      {"reduce max over everything",
       [](ModelBuilder& b) { b.node("ReduceMax", {"c"}, {"y"}, "op"); }, "op"},
  };
  int seed = 1500;
  for (const Case& c : cases) {
    for (Precision p : kPrecisions) {
      if (!available(p)) continue;
      ModelBuilder b(18);
      b.input("x", TensorProto::FLOAT, {1, 5, 6, 7});
      b.initializer("w", testing::layer_weights({20, 5, 3, 3}, ++seed));
      testing::set_ints_attr(b.node("Conv", {"x", "w"}, {"c"}, "conv"), "pads", {1, 1, 1, 1});
      c.add(b);
      testing::untyped_output(b, "y");
      const runtime::EngineInfo info = testing::expect_matches_reference(
          b, {testing::random_tensor({1, 5, 6, 7}, ++seed)}, p, c.what);
      const std::string impl = testing::kernel_of(info, c.node);
      EXPECT_TRUE(testing::runs_in_onednn(info, c.node) ||
                  impl.find("no copy]") != std::string::npos)
          << c.what << ": " << impl;
    }
  }
}

// Constant weights behind a Transpose are transposed once, at build time.
TEST(CpuOpsTest, TransposedConstantWeightsFeedAOneDnnMatMul) {
  QF_REQUIRE_CPU_BACKEND();
  ModelBuilder b(17);
  b.input("a", TensorProto::FLOAT, {4, 9});
  b.initializer("wt", testing::random_tensor({6, 9}, 77));
  testing::set_ints_attr(b.node("Transpose", {"wt"}, {"w"}, "transpose"), "perm", {1, 0});
  b.node("MatMul", {"a", "w"}, {"y"}, "matmul");
  testing::untyped_output(b, "y");
  const runtime::EngineInfo info = testing::expect_matches_reference(
      b, {testing::random_tensor({4, 9}, 78)}, Precision::kFP32, "transposed weights");
  EXPECT_TRUE(testing::runs_in_onednn(info, "matmul")) << testing::kernel_of(info, "matmul");
  EXPECT_EQ(testing::kernel_of(info, "transpose"), "");  // no run-time step
}

// ---- qforge::Fused* ops (what the graph optimizer produces) ----

TEST(CpuOpsTest, FusedConvWithActivationsAndResidualMatchesReference) {
  QF_REQUIRE_CPU_BACKEND();
  const std::vector<std::tuple<std::string, float, float>> activations = {
      {"", 0, 0},        {"Relu", 0, 0}, {"LeakyRelu", 0.1f, 0},      {"Clip", 0.f, 6.f},
      {"Sigmoid", 0, 0}, {"Tanh", 0, 0}, {"HardSigmoid", 0.2f, 0.5f}, {"HardSwish", 0, 0},
      {"SiLU", 0, 0},    {"GELU", 0, 0}};
  int seed = 1100;
  for (Precision p : kPrecisions) {
    if (!available(p)) continue;
    for (const auto& [act, alpha, beta] : activations) {
      // residual: 0 none, 1 Z from a conv used only here (summed in place), 2 Z also a graph
      // output (copied first), 3 Z a graph input.
      for (int residual = 0; residual < 4; ++residual) {
        ModelBuilder b(17);
        b.input("x", TensorProto::FLOAT, {1, 12, 7, 7});
        std::vector<Tensor> inputs = {testing::random_tensor({1, 12, 7, 7}, ++seed)};
        b.initializer("w", testing::layer_weights({20, 12, 3, 3}, ++seed));
        b.initializer("b", testing::random_tensor({20}, ++seed));
        std::vector<std::string> ins = {"x", "w", "b"};
        if (residual == 1 || residual == 2) {
          b.initializer("wz", testing::layer_weights({20, 12, 1, 1}, ++seed));
          b.node("Conv", {"x", "wz"}, {"z"}, "convz");
          ins.push_back("z");
        } else if (residual == 3) {
          b.input("z", TensorProto::FLOAT, {1, 20, 7, 7});
          inputs.push_back(testing::random_tensor({1, 20, 7, 7}, ++seed));
          ins.push_back("z");
        }
        auto& n = testing::fused_node(b, "FusedConv", ins, {"y"}, "fused");
        testing::set_ints_attr(n, "pads", {1, 1, 1, 1});
        testing::set_string_attr(n, "activation", act);
        if (alpha != 0) testing::set_float_attr(n, "activation_alpha", alpha);
        if (beta != 0) testing::set_float_attr(n, "activation_beta", beta);
        testing::untyped_output(b, "y");
        if (residual == 2) testing::untyped_output(b, "z");
        const std::string what = fmt::format("FusedConv {} residual {}", act, residual);
        const runtime::EngineInfo info = testing::expect_matches_reference(b, inputs, p, what);
        EXPECT_TRUE(testing::runs_in_onednn(info, "fused"))
            << what << ": " << testing::kernel_of(info, "fused");
      }
    }
  }
}

TEST(CpuOpsTest, FusedGemmAndFusedMatMulMatchReference) {
  QF_REQUIRE_CPU_BACKEND();
  int seed = 1300;
  for (Precision p : kPrecisions) {
    if (!available(p)) continue;
    for (const std::string act : {"", "Relu", "GELU", "Clip"}) {
      {
        ModelBuilder b(17);
        b.input("a", TensorProto::FLOAT, {3, 21});
        b.input("z", TensorProto::FLOAT, {3, 10});
        b.initializer("w", testing::layer_weights({10, 21}, ++seed));
        b.initializer("c", testing::random_tensor({10}, ++seed));
        auto& n = testing::fused_node(b, "FusedGemm", {"a", "w", "c", "z"}, {"y"}, "fused");
        testing::set_int_attr(n, "transB", 1);
        testing::set_string_attr(n, "activation", act);
        if (act == "Clip") {
          testing::set_float_attr(n, "activation_alpha", -0.5f);
          testing::set_float_attr(n, "activation_beta", 0.5f);
        }
        testing::untyped_output(b, "y");
        const runtime::EngineInfo info = testing::expect_matches_reference(
            b, {testing::random_tensor({3, 21}, ++seed), testing::random_tensor({3, 10}, ++seed)},
            p, "FusedGemm " + act);
        EXPECT_TRUE(testing::runs_in_onednn(info, "fused")) << testing::kernel_of(info, "fused");
      }
      {
        ModelBuilder b(17);
        b.input("a", TensorProto::FLOAT, {2, 5, 16});
        b.initializer("w", testing::layer_weights({24, 16}, ++seed).reshaped({16, 24}));
        b.initializer("bias", testing::random_tensor({24}, ++seed));
        testing::set_string_attr(
            testing::fused_node(b, "FusedMatMul", {"a", "w", "bias"}, {"y"}, "fused"), "activation",
            act);
        testing::untyped_output(b, "y");
        const runtime::EngineInfo info = testing::expect_matches_reference(
            b, {testing::random_tensor({2, 5, 16}, ++seed)}, p, "FusedMatMul " + act);
        EXPECT_TRUE(testing::runs_in_onednn(info, "fused")) << testing::kernel_of(info, "fused");
      }
    }
  }
}

// A ResNet bottleneck block: its input z is read by the block's first convolution and, as the
// residual, by its last (Conv + Add + Relu: a oneDNN sum post-op into the output). With
// `late_reader`, a node after the block reads z too. `out`, a convolution of the block's output,
// keeps that output int8 in an INT8 engine.
ModelBuilder bottleneck(bool late_reader) {
  ModelBuilder b(17);
  b.input("x", TensorProto::FLOAT, {1, 16, 8, 8});
  b.initializer("w0", testing::layer_weights({32, 16, 1, 1}, 1));
  b.initializer("w1", testing::layer_weights({8, 32, 1, 1}, 2));
  b.initializer("w2", testing::layer_weights({8, 8, 3, 3}, 3));
  b.initializer("w3", testing::layer_weights({32, 8, 1, 1}, 4));
  b.initializer("b3", testing::random_tensor({32}, 5, -0.5f, 0.5f));
  b.initializer("w4", testing::layer_weights({10, 32, 1, 1}, 6));
  b.node("Conv", {"x", "w0"}, {"z0"});
  b.node("Relu", {"z0"}, {"z"});  // the block input, computed in the arena
  b.node("Conv", {"z", "w1"}, {"a0"});
  b.node("Relu", {"a0"}, {"a"});
  testing::set_ints_attr(b.node("Conv", {"a", "w2"}, {"c0"}), "pads", {1, 1, 1, 1});
  b.node("Relu", {"c0"}, {"c"});
  b.node("Conv", {"c", "w3", "b3"}, {"d"});
  b.node("Add", {"d", "z"}, {"s"});
  b.node("Relu", {"s"}, {"y"});
  b.node("Conv", {"y", "w4"}, {"out"});
  testing::untyped_output(b, "out");
  if (late_reader) {
    b.node("GlobalAveragePool", {"z"}, {"g"});
    testing::untyped_output(b, "g");
  }
  return b;
}

// The bottleneck's outputs in `precision` (scales from the reference run for INT8) against the
// reference backend, and the labels of the plan's steps.
std::vector<std::string> expect_bottleneck_matches(bool late_reader, Precision precision) {
  const ModelBuilder b = bottleneck(late_reader);
  const std::vector<Tensor> inputs = {testing::random_tensor({1, 16, 8, 8}, 7)};
  const std::string what =
      fmt::format("{} late reader {}", runtime::precision_name(precision), late_reader);
  const bool int8 = precision == Precision::kINT8;
  std::vector<std::string> values = {"z0", "z", "a0", "a", "c0", "c", "d", "s", "y", "out"};
  if (late_reader) values.push_back("g");
  const testing::Calibrated c = testing::calibrate(b, inputs, values);
  auto m = testing::import(b);
  EXPECT_TRUE(m.ok()) << m.status().message();
  if (!m.ok() || c.reference.empty()) return {};
  runtime::BuildOptions options{precision, 0};
  if (int8) options.activation_scales = c.scales;
  auto engine = testing::cpu_backend()->build(std::move(m->graph), options);
  EXPECT_TRUE(engine.ok()) << what << ": " << engine.status().message();
  if (!engine.ok()) return {};
  EXPECT_TRUE((*engine)->set_profiling(true).ok());
  // Twice: the second run starts from the arena the first left behind.
  for (int run = 0; run < 2; ++run) {
    auto out = (*engine)->run(inputs);
    EXPECT_TRUE(out.ok()) << what << ": " << out.status().message();
    if (!out.ok()) return {};
    for (size_t i = 0; i < c.reference.size(); ++i) {
      EXPECT_LE(testing::relative_error((*out)[i], c.reference[i]), int8 ? 4e-2 : 1e-4)
          << what << " output " << i << " run " << run;
    }
  }
  bool fused = false;
  for (const runtime::KernelInfo& k : (*engine)->info().kernels) {
    if (k.op != "Conv+Add+Relu") continue;
    fused = true;
    // In INT8, the sum and its output stay int8 (an f32 sum would convert z first).
    if (int8) {
      EXPECT_NE(k.impl.find("u8s8_s32_u8"), std::string::npos) << what << ": " << k.impl;
    }
  }
  EXPECT_TRUE(fused) << what;
  std::vector<std::string> labels;
  for (const runtime::LayerProfile& l : (*engine)->profile()) labels.push_back(l.name);
  EXPECT_TRUE((*engine)->set_profiling(false).ok());  // (else its destructor prints the profile)
  return labels;
}

bool copies_residual(const std::vector<std::string>& steps) {
  return std::any_of(steps.begin(), steps.end(),
                     [](const std::string& s) { return s.rfind("residual ", 0) == 0; });
}

TEST(CpuOpsTest, ResidualSumsInPlaceOnceItsOtherReadersHaveRun) {
  QF_REQUIRE_CPU_BACKEND();
  for (Precision p : {Precision::kFP32, Precision::kINT8}) {
    if (!testing::cpu_backend()->supports(p)) continue;
    // The block's first convolution has read z when the last one runs: it writes over z.
    const std::vector<std::string> steps = expect_bottleneck_matches(false, p);
    ASSERT_FALSE(steps.empty());
    EXPECT_FALSE(copies_residual(steps))
        << runtime::precision_name(p) << ": " << fmt::format("{}", fmt::join(steps, ", "));
    // The pooling after the block still needs z: the sum goes into a copy.
    const std::vector<std::string> late = expect_bottleneck_matches(true, p);
    ASSERT_FALSE(late.empty());
    EXPECT_TRUE(copies_residual(late))
        << runtime::precision_name(p) << ": " << fmt::format("{}", fmt::join(late, ", "));
  }
}

// ---- precisions, threads, dynamic batch ----

TEST(CpuOpsTest, UnsupportedPrecisionsAreRefusedWithAReason) {
  QF_REQUIRE_CPU_BACKEND();
  const runtime::Backend* cpu = testing::cpu_backend();
  EXPECT_TRUE(cpu->supports(Precision::kFP32));
  EXPECT_FALSE(cpu->supports(Precision::kTF32));
  ModelBuilder b(17);
  b.input("x", TensorProto::FLOAT, {1, 4});
  b.node("Relu", {"x"}, {"y"});
  testing::untyped_output(b, "y");
  auto m = testing::import(b);
  ASSERT_TRUE(m.ok());
  auto e = cpu->build(std::move(m->graph), runtime::BuildOptions{Precision::kTF32, 0});
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(e.status().message().find("GPU"), std::string::npos) << e.status().message();
}

// FP16 on the CPU is fp16 weights with fp32 arithmetic (oneDNN 2.6 has no fp16 kernels): the
// engine equals an fp32 engine of the same model with its weights rounded to fp16, and says that
// it is not accelerated.
TEST(CpuOpsTest, Fp16IsFp16WeightsWithFp32ArithmeticAndSaysSo) {
  QF_REQUIRE_CPU_BACKEND();
  const runtime::Backend* cpu = testing::cpu_backend();
  ASSERT_TRUE(cpu->supports(Precision::kFP16));
  ModelBuilder b = conv_model({1, 5, 9, 9, 8, 3, 3}, 61);
  const std::vector<Tensor> inputs = {testing::random_tensor({1, 5, 9, 9}, 62)};
  auto fp16 = testing::run_on(b.serialize(), "cpu", Precision::kFP16, inputs);
  ASSERT_TRUE(fp16.ok()) << fp16.status().message();
  EXPECT_NE(fp16->info.compute.find("NOT accelerated"), std::string::npos) << fp16->info.compute;

  // The same model with every weight and bias initializer rounded through fp16 by hand.
  ModelBuilder rounded = b;
  for (auto& init : *rounded.proto().mutable_graph()->mutable_initializer()) {
    for (float& v : *init.mutable_float_data()) v = f16_to_f32(f32_to_f16(v));
    if (!init.raw_data().empty()) {
      std::string raw = init.raw_data();
      for (size_t i = 0; i + 4 <= raw.size(); i += 4) {
        float v;
        std::memcpy(&v, raw.data() + i, 4);
        v = f16_to_f32(f32_to_f16(v));
        std::memcpy(raw.data() + i, &v, 4);
      }
      init.set_raw_data(raw);
    }
  }
  auto fp32 = testing::run_on(rounded.serialize(), "cpu", Precision::kFP32, inputs);
  ASSERT_TRUE(fp32.ok()) << fp32.status().message();
  EXPECT_LE(testing::relative_error(fp16->outputs[0], fp32->outputs[0]), 1e-6);
  auto unrounded = testing::run_on(b.serialize(), "cpu", Precision::kFP32, inputs);
  ASSERT_TRUE(unrounded.ok());
  EXPECT_GT(testing::relative_error(fp16->outputs[0], unrounded->outputs[0]), 0.0)
      << "the weights were rounded";
  EXPECT_LE(testing::relative_error(fp16->outputs[0], unrounded->outputs[0]), 2e-3);
}

TEST(CpuOpsTest, DynamicBatchPlansEachBatchSizeAndMatchesReference) {
  QF_REQUIRE_CPU_BACKEND();
  ModelBuilder b = conv_model({-1, 5, 9, 9, 8, 3, 3, 1, 1}, 60);
  b.proto().mutable_graph()->clear_output();
  b.node("Relu", {"y"}, {"r"}, "relu");
  b.node("GlobalAveragePool", {"r"}, {"g"}, "gap");
  b.node("Flatten", {"g"}, {"f"}, "flatten");
  testing::untyped_output(b, "f");
  auto m = testing::import(b);
  ASSERT_TRUE(m.ok()) << m.status().message();
  auto engine = testing::cpu_backend()->build(std::move(m->graph), {Precision::kFP32, 1});
  ASSERT_TRUE(engine.ok()) << engine.status().message();
  const std::string bytes = b.serialize();
  for (int64_t batch : {2, 1, 5, 2}) {
    const Tensor x = testing::random_tensor({batch, 5, 9, 9}, static_cast<uint32_t>(batch));
    auto got = (*engine)->run({x});
    ASSERT_TRUE(got.ok()) << got.status().message();
    auto want = testing::run_on(bytes, "reference", Precision::kFP32, {x});
    ASSERT_TRUE(want.ok()) << want.status().message();
    ASSERT_EQ((*got)[0].shape(), (Shape{batch, 8}));
    EXPECT_LE(testing::relative_error((*got)[0], want->outputs[0]), 1e-4) << "batch " << batch;
  }
  // A wrong channel count is still refused with the input check's message.
  auto bad = (*engine)->run({testing::random_tensor({1, 4, 9, 9}, 1)});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidInput);
}

TEST(CpuOpsTest, EngineInfoReportsIsaMemoryAndOneKernelPerLayer) {
  QF_REQUIRE_CPU_BACKEND();
  ModelBuilder b = conv_model({1, 8, 16, 16, 16, 3, 3, 1, 1}, 70);
  b.proto().mutable_graph()->clear_output();
  b.initializer("w2", testing::random_tensor({16, 16, 3, 3}, 71));
  testing::set_ints_attr(b.node("Conv", {"y", "w2"}, {"y2"}, "conv2"), "pads", {1, 1, 1, 1});
  testing::untyped_output(b, "y2");
  auto m = testing::import(b);
  ASSERT_TRUE(m.ok());
  auto engine = testing::cpu_backend()->build(std::move(m->graph), {Precision::kFP32, 2});
  ASSERT_TRUE(engine.ok()) << engine.status().message();
  const runtime::EngineInfo& info = (*engine)->info();
  EXPECT_EQ(info.backend, "cpu");
  EXPECT_FALSE(info.isa.empty());
  EXPECT_EQ(info.isa, testing::cpu_backend()->current_isa());
  // Weights: both convolutions' (possibly padded by their blocked layout), and the biases.
  EXPECT_GE(info.weights_bytes, static_cast<int64_t>((16 * 8 * 9 + 16 * 16 * 9 + 16) * 4));
  // Activations: at least the two 16x16x16 f32 tensors that are live at once.
  EXPECT_GE(info.activation_bytes, int64_t{2} * 16 * 16 * 16 * 4);
  EXPECT_TRUE(testing::runs_in_onednn(info, "conv"));
  EXPECT_TRUE(testing::runs_in_onednn(info, "conv2"));
  EXPECT_NE(testing::kernel_of(info, "conv").find("conv2d_f32"), std::string::npos);
}

}  // namespace
}  // namespace qf
