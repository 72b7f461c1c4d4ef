// Helpers for the cpu backend tests: build a small model, run it on the reference backend and on
// the cpu backend with the same inputs, and compare.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "core/file_util.h"
#include "onnx/importer.h"
#include "ops/data_movement_test_util.h"
#include "runtime/engine.h"
#include "testing/model_builder.h"

namespace qf::testing {

inline std::filesystem::path repo_root() {
  return std::filesystem::path(__FILE__)
      .lexically_normal()
      .parent_path()
      .parent_path()
      .parent_path()
      .parent_path();
}

inline const runtime::Backend* cpu_backend() {
  return runtime::find_backend("cpu");
}

#define QF_REQUIRE_CPU_BACKEND()                                                       \
  do {                                                                                 \
    if (!::qf::testing::cpu_backend()) GTEST_SKIP() << "no cpu backend in this build"; \
  } while (0)

#define QF_REQUIRE_BF16()                                                           \
  do {                                                                              \
    QF_REQUIRE_CPU_BACKEND();                                                       \
    if (!::qf::testing::cpu_backend()->supports(::qf::runtime::Precision::kBF16)) { \
      GTEST_SKIP() << "no native bf16 on this CPU";                                 \
    }                                                                               \
  } while (0)

inline Tensor random_tensor(Shape shape, uint32_t seed, float lo = -1.f, float hi = 1.f) {
  Tensor t(DType::kF32, std::move(shape));
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  for (float& v : t.span<float>()) v = dist(gen);
  return t;
}

// Weights of a layer with `fan_in` inputs per output, scaled as initialisers do so that
// activations stay of order one (saturating activations then see their whole range).
inline Tensor layer_weights(Shape shape, uint32_t seed) {
  int64_t fan_in = 1;
  for (size_t d = 1; d < shape.size(); ++d) fan_in *= shape[d];
  const float a = std::sqrt(3.f / static_cast<float>(std::max<int64_t>(fan_in, 1)));
  return random_tensor(std::move(shape), seed, -a, a);
}

struct BackendRun {
  std::vector<Tensor> outputs;
  runtime::EngineInfo info;
};

inline Result<BackendRun> run_on(const std::string& model_bytes, const std::string& backend,
                                 runtime::Precision precision, const std::vector<Tensor>& inputs,
                                 int threads = 0, const std::map<std::string, float>& scales = {}) {
  QF_ASSIGN_OR_RETURN(onnx_io::ImportedModel m, onnx_io::import_model_bytes(model_bytes, "t.onnx"));
  const runtime::Backend* b = runtime::find_backend(backend);
  if (!b) return internal_error("no backend {}", backend);
  QF_ASSIGN_OR_RETURN(
      std::unique_ptr<runtime::Engine> e,
      b->build(std::move(m.graph), runtime::BuildOptions{precision, threads, scales}));
  QF_ASSIGN_OR_RETURN(std::vector<Tensor> out, e->run(inputs));
  return BackendRun{std::move(out), e->info()};
}

// max |got - want| / max(max |want|, 1e-3): the error relative to the output's magnitude.
inline double relative_error(const Tensor& got, const Tensor& want) {
  if (got.shape() != want.shape() || got.dtype() != DType::kF32 || want.dtype() != DType::kF32) {
    return INFINITY;
  }
  double err = 0, scale = 1e-3;
  const float* g = got.data<float>();
  const float* w = want.data<float>();
  for (int64_t i = 0; i < want.numel(); ++i) {
    if (std::isnan(g[i]) != std::isnan(w[i])) return INFINITY;
    if (std::isnan(w[i])) continue;
    err = std::max(err, std::abs(static_cast<double>(g[i]) - w[i]));
    scale = std::max(scale, std::abs(static_cast<double>(w[i])));
  }
  return err / scale;
}

inline double tolerance(runtime::Precision p) {
  return p == runtime::Precision::kBF16 ? 2e-2 : 1e-4;
}

// Runs the model on both backends and expects every output within the precision's tolerance.
// Returns the cpu run's engine info (for kernel checks).
inline runtime::EngineInfo expect_matches_reference(const ModelBuilder& model,
                                                    const std::vector<Tensor>& inputs,
                                                    runtime::Precision precision,
                                                    const std::string& what) {
  const std::string bytes = model.serialize();
  auto ref = run_on(bytes, "reference", runtime::Precision::kFP32, inputs);
  EXPECT_TRUE(ref.ok()) << what << ": " << ref.status().message();
  auto cpu = run_on(bytes, "cpu", precision, inputs);
  EXPECT_TRUE(cpu.ok()) << what << ": " << cpu.status().message();
  if (!ref.ok() || !cpu.ok()) return {};
  EXPECT_EQ(cpu->outputs.size(), ref->outputs.size()) << what;
  for (size_t i = 0; i < std::min(cpu->outputs.size(), ref->outputs.size()); ++i) {
    EXPECT_EQ(cpu->outputs[i].shape(), ref->outputs[i].shape()) << what << " output " << i;
    EXPECT_LE(relative_error(cpu->outputs[i], ref->outputs[i]), tolerance(precision))
        << what << " output " << i << " (" << runtime::precision_name(precision) << ")";
  }
  return cpu->info;
}

// The INT8 tests' scales: max |value| / 127 (calibration by the reference run itself).
inline float amax_scale(const Tensor& t) {
  float m = 0;
  for (float v : t.span<float>()) m = std::max(m, std::abs(v));
  return m > 0 ? m / 127.f : 1.f;
}

// Makes every listed value an output of a reference run to learn its scale; returns the scales
// (of those values and of the inputs) and the reference outputs of the model as given.
struct Calibrated {
  std::map<std::string, float> scales;
  std::vector<Tensor> reference;
};
inline Calibrated calibrate(ModelBuilder b, const std::vector<Tensor>& inputs,
                            const std::vector<std::string>& values) {
  Calibrated c;
  auto ref = run_on(b.serialize(), "reference", runtime::Precision::kFP32, inputs);
  EXPECT_TRUE(ref.ok()) << ref.status().message();
  if (!ref.ok()) return c;
  c.reference = ref->outputs;
  for (const auto& in : b.proto().graph().input()) {
    for (size_t i = 0; i < inputs.size(); ++i) {
      if (b.proto().graph().input(static_cast<int>(i)).name() == in.name()) {
        c.scales[in.name()] = amax_scale(inputs[i]);
      }
    }
  }
  b.proto().mutable_graph()->clear_output();
  for (const std::string& v : values) untyped_output(b, v);
  auto all = run_on(b.serialize(), "reference", runtime::Precision::kFP32, inputs);
  EXPECT_TRUE(all.ok()) << all.status().message();
  if (!all.ok()) return c;
  for (size_t i = 0; i < values.size(); ++i) c.scales[values[i]] = amax_scale(all->outputs[i]);
  return c;
}

// The impl string of the kernel that runs `node`, or "" when there is none.
inline std::string kernel_of(const runtime::EngineInfo& info, const std::string& node) {
  for (const runtime::KernelInfo& k : info.kernels) {
    if (k.node == node) return k.impl;
  }
  return "";
}

inline bool runs_in_onednn(const runtime::EngineInfo& info, const std::string& node) {
  return kernel_of(info, node).find("[onednn ") != std::string::npos;
}

// A qforge::Fused* node: the graph imports domain "qforge" at opset 1.
inline onnx::NodeProto& fused_node(ModelBuilder& b, const std::string& op,
                                   const std::vector<std::string>& inputs,
                                   const std::vector<std::string>& outputs,
                                   const std::string& name) {
  bool imported = false;
  for (const auto& op_import : b.proto().opset_import()) {
    imported = imported || op_import.domain() == "qforge";
  }
  if (!imported) {
    auto* imp = b.proto().add_opset_import();
    imp->set_domain("qforge");
    imp->set_version(1);
  }
  onnx::NodeProto& n = b.node(op, inputs, outputs, name);
  n.set_domain("qforge");
  return n;
}

// x [2, 8, 12, 12] -> conv+relu "c" -> max pool 3x3/2 "m" -> [average pool 2x2/1 "a"] ->
// global average pool "g" -> flatten "f" -> gemm "logits": pooling of an 8-bit tensor and a
// classifier reading it, for the INT8 tests of both backends.
inline void pooling_classifier(ModelBuilder& b, bool average_pool) {
  b.input("x", onnx::TensorProto::FLOAT, {2, 8, 12, 12});
  b.initializer("w", layer_weights({32, 8, 3, 3}, 1));
  auto& conv = fused_node(b, "FusedConv", {"x", "w"}, {"c"}, "conv");
  set_ints_attr(conv, "pads", {1, 1, 1, 1});
  set_string_attr(conv, "activation", "Relu");
  auto& mp = b.node("MaxPool", {"c"}, {"m"}, "maxpool");
  set_ints_attr(mp, "kernel_shape", {3, 3});
  set_ints_attr(mp, "strides", {2, 2});
  set_ints_attr(mp, "pads", {1, 1, 1, 1});
  std::string pooled = "m";
  if (average_pool) {
    auto& ap = b.node("AveragePool", {"m"}, {"a"}, "avgpool");
    set_ints_attr(ap, "kernel_shape", {2, 2});
    set_ints_attr(ap, "strides", {1, 1});
    pooled = "a";
  }
  b.node("GlobalAveragePool", {pooled}, {"g"}, "gap");
  b.node("Flatten", {"g"}, {"f"}, "flatten");
  b.initializer("fc", layer_weights({10, 32}, 2));
  b.initializer("fcb", random_tensor({10}, 3, -0.1f, 0.1f));
  set_int_attr(b.node("Gemm", {"f", "fc", "fcb"}, {"logits"}, "fc"), "transB", 1);
  untyped_output(b, "logits");
}

}  // namespace qf::testing
