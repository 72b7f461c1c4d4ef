// Q/DQ import (explicit quantization): the folded structure, the scales it yields, and the cpu
// INT8 engine built from a Q/DQ model against the same engine built from the float model with
// the same scales, and against the reference backend running the Q/DQ graph as fake quantization.
#include "quant/qdq_import.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "backends/cpu/cpu_test_util.h"
#include "onnx/exporter.h"
#include "quant/qdq_export.h"
#include "quant/weight_quantizer.h"
#include "runtime/engine_file.h"
#include "testing/quant_test_util.h"

namespace qf::quant {
namespace {

using onnx::TensorProto;
using qf::testing::count_op;
using qf::testing::ModelBuilder;
using qf::testing::only;
using qf::testing::set_int_attr;
using qf::testing::set_ints_attr;
using runtime::Precision;

constexpr int32_t kF32 = TensorProto::FLOAT;
constexpr int32_t kI8 = TensorProto::INT8;

#define QF_REQUIRE_INT8()                                          \
  do {                                                             \
    QF_REQUIRE_CPU_BACKEND();                                      \
    if (!qf::testing::cpu_backend()->supports(Precision::kINT8)) { \
      GTEST_SKIP() << "no int8 (VNNI) on this CPU";                \
    }                                                              \
  } while (0)

// ---- helpers ------------------------------------------------------------------------------------

std::unique_ptr<ir::Graph> import(const std::string& bytes) {
  auto m = onnx_io::import_model_bytes(bytes, "t.onnx");
  if (!m.ok()) {
    ADD_FAILURE() << m.status().message();
    return nullptr;
  }
  return std::move(m->graph);
}

QdqImport fold(ir::Graph& g) {
  auto r = fold_qdq(g);
  EXPECT_TRUE(r.ok()) << r.status().message();
  return r.ok() ? *r : QdqImport{};
}

bool any_note_has(const QdqImport& r, const std::string& text) {
  for (const std::string& n : r.notes) {
    if (n.find(text) != std::string::npos) return true;
  }
  return false;
}

std::string all_notes(const QdqImport& r) {
  std::string s;
  for (const std::string& n : r.notes) s += n + "\n";
  return s;
}

float amax_scale(const Tensor& t) {
  float m = 0;
  for (float v : t.span<float>()) m = std::max(m, std::abs(v));
  return m > 0 ? m / 127.f : 1.f;
}

void expect_identical(const Tensor& a, const Tensor& b, const std::string& what) {
  ASSERT_EQ(a.shape(), b.shape()) << what;
  int differ = 0;
  for (int64_t i = 0; i < a.numel(); ++i) {
    if (a.data<float>()[i] != b.data<float>()[i] && differ++ < 3) {
      ADD_FAILURE() << what << " element " << i << ": " << a.data<float>()[i] << " vs "
                    << b.data<float>()[i];
    }
  }
  EXPECT_EQ(differ, 0) << what;
}

// ---- the round-trip model -----------------------------------------------------------------------

// Conv+Relu, Conv with a residual Add of the Relu output, GlobalAveragePool, Flatten, Gemm: odd
// channel counts (3 -> 5 -> 5 -> 7). With `all_values`, every intermediate is an output too (for
// calibration).
ModelBuilder residual_model(bool all_values) {
  ModelBuilder b(17);
  b.input("x", kF32, {1, 3, 9, 9});
  b.initializer("w1", qf::testing::layer_weights({5, 3, 3, 3}, 11));
  b.initializer("b1", qf::testing::random_tensor({5}, 12, -0.1f, 0.1f));
  b.initializer("w2", qf::testing::layer_weights({5, 5, 3, 3}, 13));
  b.initializer("b2", qf::testing::random_tensor({5}, 14, -0.1f, 0.1f));
  b.initializer("w3", qf::testing::layer_weights({7, 5}, 15));
  b.initializer("b3", qf::testing::random_tensor({7}, 16, -0.1f, 0.1f));
  set_ints_attr(b.node("Conv", {"x", "w1", "b1"}, {"c1"}, "conv1"), "pads", {1, 1, 1, 1});
  b.node("Relu", {"c1"}, {"r1"}, "relu1");
  set_ints_attr(b.node("Conv", {"r1", "w2", "b2"}, {"c2"}, "conv2"), "pads", {1, 1, 1, 1});
  b.node("Add", {"c2", "r1"}, {"a"}, "add");
  b.node("GlobalAveragePool", {"a"}, {"g"}, "gap");
  b.node("Flatten", {"g"}, {"f"}, "flatten");
  set_int_attr(b.node("Gemm", {"f", "w3", "b3"}, {"y"}, "gemm"), "transB", 1);
  b.output("y", kF32, {1, 7});
  if (all_values) {
    for (const char* v : {"c1", "r1", "c2", "a", "g", "f"}) qf::testing::untyped_output(b, v);
  }
  return b;
}

// max|v| / 127 of every value on a reference run of `inputs`.
std::map<std::string, float> calibrate(const std::vector<Tensor>& inputs) {
  std::map<std::string, float> scales;
  auto ref =
      qf::testing::run_on(residual_model(true).serialize(), "reference", Precision::kFP32, inputs);
  EXPECT_TRUE(ref.ok()) << ref.status().message();
  if (!ref.ok()) return scales;
  scales["x"] = amax_scale(inputs[0]);
  const std::vector<std::string> names = {"y", "c1", "r1", "c2", "a", "g", "f"};
  for (size_t i = 0; i < names.size(); ++i) scales[names[i]] = amax_scale(ref->outputs[i]);
  return scales;
}

// The float model with our exporter's Q/DQ nodes (symmetric int8, per-channel weights), as bytes.
std::string qdq_bytes(const std::map<std::string, float>& scales,
                      std::set<std::string> exclude = {}) {
  auto g = import(residual_model(false).serialize());
  if (!g) return "";
  QdqExportOptions options;
  options.activation_scales = scales;
  options.exclude = std::move(exclude);
  auto r = insert_qdq(*g, options);
  EXPECT_TRUE(r.ok()) << r.status().message();
  auto bytes = onnx_io::export_model_bytes(*g);
  EXPECT_TRUE(bytes.ok()) << bytes.status().message();
  return bytes.ok() ? *bytes : "";
}

// Whether every weight scale of the Q/DQ model survives the backend's re-quantization bit for bit:
// (127 s) / 127 == s in float (it is one ulp off for about 0.4% of floats; see qdq_import.cc).
bool weight_scales_round_trip(const std::string& bytes) {
  auto g = import(bytes);
  if (!g) return false;
  for (const auto& n : g->nodes()) {
    if (n->op_type != "DequantizeLinear" || !n->inputs[0]->is_constant()) continue;
    for (float s : n->inputs[1]->constant.span<float>()) {
      if ((127.f * s) / 127.f != s) return false;
    }
  }
  return true;
}

TEST(QdqImport, HasQdq) {
  auto plain = import(residual_model(false).serialize());
  ASSERT_TRUE(plain);
  EXPECT_FALSE(has_qdq(*plain));
  const std::vector<Tensor> inputs = {qf::testing::random_tensor({1, 3, 9, 9}, 7)};
  auto qdq = import(qdq_bytes(calibrate(inputs)));
  ASSERT_TRUE(qdq);
  EXPECT_TRUE(has_qdq(*qdq));
}

// Our exporter's output folds back into the float graph: every Q/DQ goes, the scales land under
// the names the exporter quantized, and the weights are the dequantized int8 values.
TEST(QdqImport, ExporterOutputFoldsBackToTheFloatGraph) {
  const std::vector<Tensor> inputs = {qf::testing::random_tensor({1, 3, 9, 9}, 7)};
  const std::map<std::string, float> scales = calibrate(inputs);
  auto g = import(qdq_bytes(scales));
  ASSERT_TRUE(g);
  const QdqImport r = fold(*g);
  EXPECT_EQ(count_op(*g, "QuantizeLinear"), 0);
  EXPECT_EQ(count_op(*g, "DequantizeLinear"), 0);
  EXPECT_EQ(r.kept_nodes, 0);
  EXPECT_EQ(r.weights_folded, 3);
  // Conv inputs x and r1, the residual Add's inputs c2 and r1, the Gemm's input f.
  EXPECT_EQ(r.activation_pairs, 4);
  // Plus g, the GlobalAveragePool output only the Flatten reads: Q/DQ propagation gives it f's
  // grid (Flatten commutes with quantization), so the pooling writes int8 straight away.
  const std::map<std::string, float> expected = {{"x", scales.at("x")},
                                                 {"r1", scales.at("r1")},
                                                 {"c2", scales.at("c2")},
                                                 {"f", scales.at("f")},
                                                 {"g", scales.at("f")}};
  EXPECT_EQ(r.activation_scales, expected);
  EXPECT_EQ(r.grids_propagated, 1);
  EXPECT_TRUE(r.notes.empty()) << all_notes(r);
  const ir::Node* conv2 = nullptr;
  for (const auto& n : g->nodes()) {
    if (n->name == "conv2") conv2 = n.get();
  }
  ASSERT_NE(conv2, nullptr);
  EXPECT_EQ(conv2->inputs[0]->name, "r1");
  ASSERT_TRUE(conv2->inputs[1]->is_constant());
  // Folded weights are the dequantized per-channel int8 values: within half a step of the
  // original, and each channel's extreme is exactly its amax.
  auto original = import(residual_model(false).serialize());
  const Tensor& w = original->find_value("w2")->constant;
  const Tensor& folded = conv2->inputs[1]->constant;
  ASSERT_EQ(folded.shape(), w.shape());
  const int64_t per_channel = w.numel() / 5;
  for (int64_t c = 0; c < 5; ++c) {
    float amax = 0, famax = 0;
    for (int64_t i = c * per_channel; i < (c + 1) * per_channel; ++i) {
      amax = std::max(amax, std::abs(w.data<float>()[i]));
      famax = std::max(famax, std::abs(folded.data<float>()[i]));
    }
    EXPECT_FLOAT_EQ(famax, amax) << "channel " << c;
    for (int64_t i = c * per_channel; i < (c + 1) * per_channel; ++i) {
      EXPECT_LE(std::abs(folded.data<float>()[i] - w.data<float>()[i]), amax / 127.f / 2 * 1.0001f);
    }
  }
}

// The round trip that matters: float model + scales on the cpu INT8 engine, and the same model
// exported with Q/DQ nodes, re-imported and built with no scales, give the same outputs. The
// float side gets exactly the scales the Q/DQ model carries (a tensor without a Q/DQ, such as the
// Add's output, has no scale there and runs in fp32 in both).
TEST(QdqImport, CpuEngineFromQdqModelMatchesEngineFromScales) {
  QF_REQUIRE_INT8();
  for (uint32_t seed : {7u, 8u, 9u}) {
    const std::vector<Tensor> inputs = {qf::testing::random_tensor({1, 3, 9, 9}, seed)};
    const std::map<std::string, float> all = calibrate(inputs);
    const std::string qdq = qdq_bytes(all);
    auto g = import(qdq);
    ASSERT_TRUE(g);
    const std::map<std::string, float> carried = fold(*g).activation_scales;
    ASSERT_EQ(carried.size(), 5u);  // 4 Q/DQ pairs and g, propagated through the Flatten

    auto direct = qf::testing::run_on(residual_model(false).serialize(), "cpu", Precision::kINT8,
                                      inputs, 0, carried);
    ASSERT_TRUE(direct.ok()) << direct.status().message();
    auto from_qdq = qf::testing::run_on(qdq, "cpu", Precision::kINT8, inputs, 0, {});
    ASSERT_TRUE(from_qdq.ok()) << from_qdq.status().message();
    EXPECT_EQ(from_qdq->info.int8_scales, carried);
    EXPECT_NE(from_qdq->info.calibration.find("Q/DQ"), std::string::npos)
        << from_qdq->info.calibration;
    EXPECT_NE(from_qdq->info.calibration.find("5 tensors"), std::string::npos)
        << from_qdq->info.calibration;
    // The convolutions really run in int8 (s32 accumulation).
    EXPECT_NE(qf::testing::kernel_of(from_qdq->info, "conv1").find("_s32_"), std::string::npos)
        << qf::testing::kernel_of(from_qdq->info, "conv1");
    EXPECT_EQ(qf::testing::kernel_of(from_qdq->info, "conv2"),
              qf::testing::kernel_of(direct->info, "conv2"));

    // Same int8 weights and scales, same activation scales: bit-identical, unless a weight scale
    // comes back one ulp off from the backend's re-quantization (then the output scales differ
    // by a relative 6e-8).
    if (weight_scales_round_trip(qdq)) {
      expect_identical(direct->outputs[0], from_qdq->outputs[0], "seed " + std::to_string(seed));
    } else {
      EXPECT_LE(qf::testing::relative_error(from_qdq->outputs[0], direct->outputs[0]), 1e-5)
          << "seed " << seed;
    }

    // Given scales for every tensor plus the graph's: the graph's win (they are equal here) and
    // the others are kept, which matches the float model built with all of them.
    auto direct_all = qf::testing::run_on(residual_model(false).serialize(), "cpu",
                                          Precision::kINT8, inputs, 0, all);
    ASSERT_TRUE(direct_all.ok()) << direct_all.status().message();
    auto qdq_all = qf::testing::run_on(qdq, "cpu", Precision::kINT8, inputs, 0, all);
    ASSERT_TRUE(qdq_all.ok()) << qdq_all.status().message();
    EXPECT_EQ(qdq_all->info.int8_scales, all);
    if (weight_scales_round_trip(qdq)) {
      expect_identical(direct_all->outputs[0], qdq_all->outputs[0],
                       "all scales, seed " + std::to_string(seed));
    }
  }
}

// An engine file of a Q/DQ INT8 engine stores the folded graph and the graph's scales; loading it
// rebuilds the same engine (same scales, same words, same outputs).
TEST(QdqImport, EngineFileKeepsTheGraphsScales) {
  QF_REQUIRE_INT8();
  const std::vector<Tensor> inputs = {qf::testing::random_tensor({1, 3, 9, 9}, 61)};
  auto g = import(qdq_bytes(calibrate(inputs)));
  ASSERT_TRUE(g);
  auto built =
      qf::testing::cpu_backend()->build(std::move(g), runtime::BuildOptions{Precision::kINT8, 0});
  ASSERT_TRUE(built.ok()) << built.status().message();
  runtime::Engine& engine = **built;
  auto out = engine.run(inputs);
  ASSERT_TRUE(out.ok()) << out.status().message();
  auto file = runtime::serialize_engine(runtime::header_for(engine), engine.graph());
  ASSERT_TRUE(file.ok()) << file.status().message();
  auto loaded = runtime::parse_engine_file(*file, "qdq.engine");
  ASSERT_TRUE(loaded.ok()) << loaded.status().message();
  auto rebuilt = runtime::build_loaded_engine(std::move(*loaded), "qdq.engine");
  ASSERT_TRUE(rebuilt.ok()) << rebuilt.status().message();
  EXPECT_EQ((*rebuilt)->info().int8_scales, engine.info().int8_scales);
  EXPECT_EQ((*rebuilt)->info().calibration, engine.info().calibration);
  auto again = (*rebuilt)->run(inputs);
  ASSERT_TRUE(again.ok()) << again.status().message();
  expect_identical((*out)[0], (*again)[0], "reloaded engine");
}

// The INT8 engine from the Q/DQ model against the reference backend running the Q/DQ graph as
// fake quantization: the engine skips some of the graph's roundings (the convolution output c2
// is quantized in the graph before the residual Add, which the engine fuses into the convolution
// in higher precision, and stores the Relu output as u8 with half the graph's step), so they need
// not agree exactly. Bound: 3 steps of the output's scale. In this model the Gemm input's Q/DQ
// absorbs most upstream differences (its values are averages of 81 elements rounded to one
// grid), so the observed error is far smaller (about 1e-5 steps on this machine).
TEST(QdqImport, CpuEngineIsWithinQuantizationStepsOfFakeQuantization) {
  QF_REQUIRE_INT8();
  for (uint32_t seed : {21u, 22u}) {
    const std::vector<Tensor> inputs = {qf::testing::random_tensor({1, 3, 9, 9}, seed)};
    const std::map<std::string, float> scales = calibrate(inputs);
    const std::string qdq = qdq_bytes(scales);
    auto fake = qf::testing::run_on(qdq, "reference", Precision::kFP32, inputs);
    ASSERT_TRUE(fake.ok()) << fake.status().message();
    auto engine = qf::testing::run_on(qdq, "cpu", Precision::kINT8, inputs);
    ASSERT_TRUE(engine.ok()) << engine.status().message();
    const Tensor& want = fake->outputs[0];
    const Tensor& got = engine->outputs[0];
    const float step = scales.at("y");  // max|y| / 127
    double worst = 0;
    for (int64_t i = 0; i < want.numel(); ++i) {
      worst = std::max(worst,
                       static_cast<double>(std::abs(got.data<float>()[i] - want.data<float>()[i])));
    }
    EXPECT_LE(worst, 3.0 * step) << "seed " << seed << ": worst error " << worst / step << " steps";
  }
}

// At FP32 the Q/DQ nodes stay and run as fake quantization: the same numbers as the reference
// backend, to float rounding.
TEST(QdqImport, Fp32BuildRunsQdqAsFakeQuantization) {
  QF_REQUIRE_CPU_BACKEND();
  const std::vector<Tensor> inputs = {qf::testing::random_tensor({1, 3, 9, 9}, 31)};
  const std::string qdq = qdq_bytes(calibrate(inputs));
  auto fake = qf::testing::run_on(qdq, "reference", Precision::kFP32, inputs);
  ASSERT_TRUE(fake.ok()) << fake.status().message();
  auto cpu = qf::testing::run_on(qdq, "cpu", Precision::kFP32, inputs);
  ASSERT_TRUE(cpu.ok()) << cpu.status().message();
  EXPECT_LE(qf::testing::relative_error(cpu->outputs[0], fake->outputs[0]), 1e-4);
  EXPECT_TRUE(cpu->info.int8_scales.empty());
  bool quantize_runs = false;
  for (const runtime::KernelInfo& k : cpu->info.kernels) {
    quantize_runs = quantize_runs || k.op == "QuantizeLinear";
  }
  EXPECT_TRUE(quantize_runs);
}

// A tensor without a Q/DQ (the Gemm excluded from quantization) has no scale: the Gemm runs in
// fp32 while the convolutions run in int8.
TEST(QdqImport, TensorsWithoutScaleStayFloat) {
  QF_REQUIRE_INT8();
  const std::vector<Tensor> inputs = {qf::testing::random_tensor({1, 3, 9, 9}, 41)};
  const std::string qdq = qdq_bytes(calibrate(inputs), {"gemm"});
  auto engine = qf::testing::run_on(qdq, "cpu", Precision::kINT8, inputs);
  ASSERT_TRUE(engine.ok()) << engine.status().message();
  EXPECT_EQ(engine->info.int8_scales.count("f"), 0u);
  EXPECT_NE(qf::testing::kernel_of(engine->info, "conv1").find("_s32_"), std::string::npos);
  const std::string gemm = qf::testing::kernel_of(engine->info, "gemm");
  EXPECT_FALSE(gemm.empty());
  EXPECT_EQ(gemm.find("_s32_"), std::string::npos) << gemm;
}

// ---- hand-built graphs --------------------------------------------------------------------------

// x -> Q/DQ (int8, zero point 0) -> MatMul with an int8 per-column weight -> y.
ModelBuilder matmul_model(const Tensor& wq, const Tensor& wscale, const Tensor& wzero) {
  ModelBuilder b(17);
  b.input("x", kF32, {2, 4});
  b.initializer("xs", Tensor::from_vector<float>({}, {0.05f}));
  b.initializer("xz", Tensor::from_vector<int8_t>({}, {0}));
  b.initializer("wq", wq);
  b.initializer("ws", wscale);
  b.initializer("wz", wzero);
  b.node("QuantizeLinear", {"x", "xs", "xz"}, {"xq"}, "q_x");
  b.node("DequantizeLinear", {"xq", "xs", "xz"}, {"xd"}, "dq_x");
  set_int_attr(b.node("DequantizeLinear", {"wq", "ws", "wz"}, {"wd"}, "dq_w"), "axis", 1);
  b.node("MatMul", {"xd", "wd"}, {"y"}, "matmul");
  b.output("y", kF32, {2, 3});
  return b;
}

TEST(QdqImport, FoldsPairsAndWeightsByHand) {
  // Columns reach +-127 (the backend's re-quantization reproduces them): no notes.
  const Tensor wq =
      Tensor::from_vector<int8_t>({4, 3}, {127, -127, 5, -3, 64, 127, 0, 1, -2, 10, 0, 0});
  const Tensor ws = Tensor::from_vector<float>({3}, {0.01f, 0.5f, 0.003f});
  const Tensor wz = Tensor::from_vector<int8_t>({3}, {0, 0, 0});
  auto g = import(matmul_model(wq, ws, wz).serialize());
  ASSERT_TRUE(g);
  const QdqImport r = fold(*g);
  EXPECT_EQ(r.activation_pairs, 1);
  EXPECT_EQ(r.weights_folded, 1);
  EXPECT_EQ(r.kept_nodes, 0);
  EXPECT_EQ(r.activation_scales, (std::map<std::string, float>{{"x", 0.05f}}));
  EXPECT_TRUE(r.notes.empty()) << all_notes(r);
  EXPECT_EQ(count_op(*g, "QuantizeLinear") + count_op(*g, "DequantizeLinear"), 0);
  const ir::Node* mm = only(*g, "MatMul");
  ASSERT_NE(mm, nullptr);
  EXPECT_EQ(mm->inputs[0]->name, "x");
  ASSERT_TRUE(mm->inputs[1]->is_constant());
  const Tensor& w = mm->inputs[1]->constant;
  ASSERT_EQ(w.dtype(), DType::kF32);
  ASSERT_EQ(w.shape(), Shape({4, 3}));
  for (int64_t i = 0; i < 12; ++i) {
    const float expected = static_cast<float>(wq.data<int8_t>()[i]) * ws.data<float>()[i % 3];
    EXPECT_EQ(w.data<float>()[i], expected) << i;
  }
  // The integer weight and the scales are gone from the graph.
  EXPECT_EQ(g->find_value("wq"), nullptr);
  EXPECT_EQ(g->find_value("xq"), nullptr);
}

TEST(QdqImport, WeightsTheBackendCannotReproduceAreNoted) {
  // Column 0 reaches -128 (PyTorch's [-128, 127] range: reproduced on the grid amax / 128),
  // column 1 stays below 64 (too far from any grid the backend tries: not reproduced), column 2
  // reaches 127; uint8 with a zero point would be column 1's case.
  const Tensor wq =
      Tensor::from_vector<int8_t>({4, 3}, {-128, 30, 127, 3, -20, 1, 0, 5, 2, 7, 0, -4});
  const Tensor ws = Tensor::from_vector<float>({3}, {0.01f, 0.5f, 0.003f});
  const Tensor wz = Tensor::from_vector<int8_t>({3}, {0, 0, 0});
  auto g = import(matmul_model(wq, ws, wz).serialize());
  ASSERT_TRUE(g);
  const QdqImport r = fold(*g);
  EXPECT_EQ(r.weights_folded, 1);
  EXPECT_TRUE(any_note_has(r, "1 of 3 output channels")) << all_notes(r);
  // The folded values are still exactly the graph's: (q - zp) * scale.
  const Tensor& w = only(*g, "MatMul")->inputs[1]->constant;
  EXPECT_EQ(w.data<float>()[0], -128.f * 0.01f);
}

TEST(QdqImport, FloatWeightThroughQuantizeLinearFolds) {
  // PyTorch/TensorRT QAT export: float weight -> QuantizeLinear -> DequantizeLinear.
  ModelBuilder b(17);
  b.input("x", kF32, {1, 2});
  b.initializer("xs", Tensor::from_vector<float>({}, {0.1f}));
  b.initializer("xz", Tensor::from_vector<int8_t>({}, {0}));
  b.initializer("w", Tensor::from_vector<float>({2, 2}, {0.5f, -0.26f, 1.0f, 0.25f}));
  b.initializer("ws", Tensor::from_vector<float>({}, {0.25f}));
  b.initializer("wz", Tensor::from_vector<int8_t>({}, {0}));
  b.node("QuantizeLinear", {"x", "xs", "xz"}, {"xq"});
  b.node("DequantizeLinear", {"xq", "xs", "xz"}, {"xd"});
  b.node("QuantizeLinear", {"w", "ws", "wz"}, {"wq"});
  b.node("DequantizeLinear", {"wq", "ws", "wz"}, {"wd"});
  b.node("MatMul", {"xd", "wd"}, {"y"}, "mm");
  b.output("y", kF32, {1, 2});
  auto g = import(b.serialize());
  ASSERT_TRUE(g);
  const QdqImport r = fold(*g);
  EXPECT_EQ(r.weights_folded, 1);
  EXPECT_EQ(r.activation_pairs, 1);
  EXPECT_EQ(count_op(*g, "QuantizeLinear") + count_op(*g, "DequantizeLinear"), 0);
  // round(w / 0.25) = 2, -1 (1.04 rounds to 1), 4, 1 -> * 0.25.
  const Tensor& w = only(*g, "MatMul")->inputs[1]->constant;
  EXPECT_EQ(w.span<float>()[0], 0.5f);
  EXPECT_EQ(w.span<float>()[1], -0.25f);
  EXPECT_EQ(w.span<float>()[2], 1.0f);
  EXPECT_EQ(w.span<float>()[3], 0.25f);
  // Per tensor, columns max 4 and 1 steps (not 127): the backend re-quantizes both columns.
  EXPECT_TRUE(any_note_has(r, "2 of 2 output channels")) << all_notes(r);
}

// PyTorch writes scales and zero points as Constant nodes: they are evaluated, and removed with
// the pairs and weights they parameterise.
TEST(QdqImport, ConstantNodeParametersFoldAndGo) {
  ModelBuilder b(17);
  b.input("x", kF32, {1, 2});
  auto constant = [&](const std::string& name, const Tensor& t) {
    onnx::NodeProto& n = b.node("Constant", {}, {name}, name + "_node");
    auto* a = n.add_attribute();
    a->set_name("value");
    a->set_type(onnx::AttributeProto::TENSOR);
    a->mutable_t()->set_data_type(t.dtype() == DType::kF32 ? TensorProto::FLOAT : kI8);
    if (t.dtype() == DType::kF32) {
      a->mutable_t()->add_float_data(t.data<float>()[0]);
    } else {
      a->mutable_t()->add_int32_data(t.data<int8_t>()[0]);
    }
  };
  constant("s", Tensor::from_vector<float>({}, {0.125f}));
  constant("z", Tensor::from_vector<int8_t>({}, {0}));
  constant("ws", Tensor::from_vector<float>({}, {0.5f}));
  b.initializer("w", Tensor::from_vector<float>({2, 2}, {63.5f, -10.f, 2.f, 1.f}));
  b.node("QuantizeLinear", {"x", "s", "z"}, {"xq"});
  b.node("DequantizeLinear", {"xq", "s", "z"}, {"xd"});
  b.node("QuantizeLinear", {"w", "ws", "z"}, {"wq"});
  b.node("DequantizeLinear", {"wq", "ws", "z"}, {"wd"});
  b.node("MatMul", {"xd", "wd"}, {"y"}, "mm");
  b.output("y", kF32, {1, 2});
  auto g = import(b.serialize());
  ASSERT_TRUE(g);
  const QdqImport r = fold(*g);
  EXPECT_EQ(r.activation_pairs, 1);
  EXPECT_EQ(r.weights_folded, 1);
  EXPECT_EQ(r.activation_scales.at("x"), 0.125f);
  EXPECT_EQ(count_op(*g, "Constant"), 0);
  EXPECT_EQ(count_op(*g, "QuantizeLinear") + count_op(*g, "DequantizeLinear"), 0);
  // 63.5 / 0.5 = 127: column 0 reaches 127; 2 / 0.5 = 4 in column 1 does not.
  const Tensor& w = only(*g, "MatMul")->inputs[1]->constant;
  EXPECT_EQ(w.span<float>()[0], 63.5f);
  EXPECT_TRUE(any_note_has(r, "1 of 2 output channels")) << all_notes(r);
}

// A zero point keeps its grid (type, scale and zero point, for the engine) plus the symmetric
// scale covering the same range (for code that only needs "a scale").
TEST(QdqImport, ZeroPointsKeepTheirGridAndGetACoveringSymmetricScale) {
  for (const int zp : {128, 37}) {
    ModelBuilder b(17);
    b.input("x", kF32, {2, 4});
    b.initializer("xs", Tensor::from_vector<float>({}, {0.02f}));
    b.initializer("xz", Tensor::from_vector<uint8_t>({}, {static_cast<uint8_t>(zp)}));
    b.initializer("w", qf::testing::random_tensor({4, 3}, 5));
    b.node("QuantizeLinear", {"x", "xs", "xz"}, {"xq"});
    b.node("DequantizeLinear", {"xq", "xs", "xz"}, {"xd"});
    b.node("MatMul", {"xd", "w"}, {"y"}, "mm");
    b.output("y", kF32, {2, 3});
    auto g = import(b.serialize());
    ASSERT_TRUE(g);
    const QdqImport r = fold(*g);
    // Real range [(0 - zp) s, (255 - zp) s]: the larger side over 127.
    const int steps = std::max(zp, 255 - zp);  // 128, 218
    const float expected = static_cast<float>(steps) * 0.02f / 127.f;
    ASSERT_EQ(r.activation_scales.count("x"), 1u) << zp;
    EXPECT_EQ(r.activation_scales.at("x"), expected) << zp;
    EXPECT_EQ(r.activation_grids.at("x"), (runtime::QuantGrid{DType::kU8, 0.02f, zp})) << zp;
    // The MatMul's weight is float in the graph: the backend quantizes it, which is noted.
    EXPECT_TRUE(any_note_has(r, "float in the graph")) << all_notes(r);
  }
  // int8 with a zero point: [(-128 - zp) s, (127 - zp) s].
  ModelBuilder b(17);
  b.input("x", kF32, {2, 4});
  b.initializer("xs", Tensor::from_vector<float>({}, {0.02f}));
  b.initializer("xz", Tensor::from_vector<int8_t>({}, {-10}));
  b.node("QuantizeLinear", {"x", "xs", "xz"}, {"xq"});
  b.node("DequantizeLinear", {"xq", "xs", "xz"}, {"y"});
  b.node("Relu", {"y"}, {"r"});
  b.output("r", kF32, {2, 4});
  auto g = import(b.serialize());
  ASSERT_TRUE(g);
  const QdqImport r = fold(*g);
  EXPECT_EQ(r.activation_scales.at("x"), 137.f * 0.02f / 127.f);
  EXPECT_EQ(r.activation_grids.at("x"), (runtime::QuantGrid{DType::kI8, 0.02f, -10}));
}

// PyTorch's QAT form: uint8 activations with zero point 0 and per-channel int8 weights that
// reach -128. The engine keeps both grids exactly: u8 storage with the graph's scale (recorded as
// twice it, the symmetric scale) and the graph's int8 weights, so no note is needed; its output
// matches the reference backend running the Q/DQ graph as fake quantization.
TEST(QdqImport, Uint8ActivationsAndMinus128WeightsKeepTheGraphsGrids) {
  QF_REQUIRE_INT8();
  ModelBuilder b(13);
  b.input("x", kF32, {1, 3, 7, 7});
  const float xs = 0.0123f, ys = 0.0457f;
  b.initializer("xs", Tensor::from_vector<float>({}, {xs}));
  b.initializer("ys", Tensor::from_vector<float>({}, {ys}));
  b.initializer("z", Tensor::from_vector<uint8_t>({}, {0}));
  // Weights of 5 output channels, each reaching -128 (random values on the int8 grid).
  auto qweights = [](Shape shape, uint32_t seed) {
    Tensor q = qf::testing::random_tensor(shape, seed, -127.f, 127.f);
    Tensor out(DType::kI8, shape);
    const int64_t per_channel = q.numel() / shape[0];
    for (int64_t i = 0; i < q.numel(); ++i) {
      out.data<int8_t>()[i] = i % per_channel == 3
                                  ? int8_t{-128}
                                  : static_cast<int8_t>(std::nearbyint(q.data<float>()[i]));
    }
    return out;
  };
  b.initializer("w1q", qweights({5, 3, 3, 3}, 21));
  b.initializer("w1s", qf::testing::random_tensor({5}, 22, 0.001f, 0.004f));
  b.initializer("w2q", qweights({4, 5, 1, 1}, 23));
  b.initializer("w2s", qf::testing::random_tensor({4}, 24, 0.001f, 0.004f));
  b.initializer("b1", qf::testing::random_tensor({5}, 25));
  b.node("QuantizeLinear", {"x", "xs", "z"}, {"xq"});
  b.node("DequantizeLinear", {"xq", "xs", "z"}, {"xd"});
  auto& dq1 = b.node("DequantizeLinear", {"w1q", "w1s"}, {"w1"});
  set_int_attr(dq1, "axis", 0);
  auto& dq2 = b.node("DequantizeLinear", {"w2q", "w2s"}, {"w2"});
  set_int_attr(dq2, "axis", 0);
  b.node("Conv", {"xd", "w1", "b1"}, {"y1"}, "conv1");
  b.node("QuantizeLinear", {"y1", "ys", "z"}, {"y1q"});
  b.node("DequantizeLinear", {"y1q", "ys", "z"}, {"y1d"});
  b.node("Conv", {"y1d", "w2"}, {"y"}, "conv2");
  b.output("y", kF32, {1, 4, 5, 5});
  const std::string bytes = b.serialize();

  auto g = import(bytes);
  ASSERT_TRUE(g);
  const QdqImport r = fold(*g);
  EXPECT_EQ(r.activation_pairs, 2);
  EXPECT_EQ(r.weights_folded, 2);
  EXPECT_TRUE(r.notes.empty()) << all_notes(r);
  EXPECT_EQ(r.activation_scales, (std::map<std::string, float>{{"x", 2 * xs}, {"y1", 2 * ys}}));
  EXPECT_EQ(r.activation_grids, (std::map<std::string, runtime::QuantGrid>{
                                    {"x", {DType::kU8, xs, 0}}, {"y1", {DType::kU8, ys, 0}}}));

  const std::vector<Tensor> inputs = {qf::testing::random_tensor({1, 3, 7, 7}, 26, -1.f, 2.f)};
  auto engine = qf::testing::run_on(bytes, "cpu", Precision::kINT8, inputs);
  ASSERT_TRUE(engine.ok()) << engine.status().message();
  EXPECT_EQ(engine->info.int8_grids.at("y1"), (runtime::QuantGrid{DType::kU8, ys, 0}));
  // conv1 reads u8 and writes u8 (y1 can be negative: u8 clamps it at 0, as the graph's Q does).
  EXPECT_NE(qf::testing::kernel_of(engine->info, "conv1").find("u8s8_s32_u8"), std::string::npos)
      << qf::testing::kernel_of(engine->info, "conv1");
  EXPECT_NE(qf::testing::kernel_of(engine->info, "conv2").find("u8s8_s32_f32"), std::string::npos)
      << qf::testing::kernel_of(engine->info, "conv2");
  auto fake = qf::testing::run_on(bytes, "reference", Precision::kFP32, inputs);
  ASSERT_TRUE(fake.ok()) << fake.status().message();
  // Same grids, same int8 products; y1 may differ by one step where float and int32
  // accumulation round differently at a .5 boundary, which moves y by at most ys * sum|w2_c|.
  const Tensor& got = engine->outputs[0];
  const Tensor& want = fake->outputs[0];
  ASSERT_EQ(got.shape(), want.shape());
  int off_by_more_than_a_step = 0, differ = 0;
  for (int64_t i = 0; i < got.numel(); ++i) {
    const float d = std::abs(got.data<float>()[i] - want.data<float>()[i]);
    differ += d > 1e-5f ? 1 : 0;
    off_by_more_than_a_step += d > ys * 5 * 128 * 0.004f ? 1 : 0;
  }
  EXPECT_EQ(off_by_more_than_a_step, 0);
  EXPECT_LE(differ, got.numel() / 5) << "most outputs must agree exactly";
}

TEST(QdqImport, UnpairedAndPerAxisNodesAreKept) {
  // An int8 graph input dequantized (no Q), a Relu, a Q whose int8 output is the graph output,
  // and a per-axis activation Q/DQ in front of a Conv.
  ModelBuilder b(17);
  b.input("xq", kI8, {1, 3, 4, 4});
  b.initializer("s", Tensor::from_vector<float>({}, {0.1f}));
  b.initializer("z", Tensor::from_vector<int8_t>({}, {0}));
  b.initializer("sa", Tensor::from_vector<float>({3}, {0.1f, 0.2f, 0.3f}));
  b.initializer("za", Tensor::from_vector<int8_t>({3}, {0, 0, 0}));
  b.initializer("w", qf::testing::layer_weights({2, 3, 1, 1}, 3));
  b.node("DequantizeLinear", {"xq", "s", "z"}, {"x"}, "dq_in");
  b.node("Relu", {"x"}, {"r"}, "relu");
  set_int_attr(b.node("QuantizeLinear", {"r", "sa", "za"}, {"rq"}, "q_axis"), "axis", 1);
  set_int_attr(b.node("DequantizeLinear", {"rq", "sa", "za"}, {"rd"}, "dq_axis"), "axis", 1);
  b.node("Conv", {"rd", "w"}, {"c"}, "conv");
  b.node("QuantizeLinear", {"c", "s", "z"}, {"cq"}, "q_out");
  b.output("cq", kI8, {1, 2, 4, 4});
  const std::string bytes = b.serialize();
  auto g = import(bytes);
  ASSERT_TRUE(g);
  const QdqImport r = fold(*g);
  EXPECT_EQ(r.activation_pairs, 0);
  EXPECT_EQ(r.weights_folded, 0);
  EXPECT_EQ(r.kept_nodes, 4);
  EXPECT_TRUE(r.activation_scales.empty());
  EXPECT_EQ(count_op(*g, "QuantizeLinear"), 2);
  EXPECT_EQ(count_op(*g, "DequantizeLinear"), 2);
  EXPECT_TRUE(any_note_has(r, "per-axis")) << all_notes(r);
  EXPECT_TRUE(any_note_has(r, "'dq_in'")) << all_notes(r);
  EXPECT_TRUE(any_note_has(r, "'q_out'")) << all_notes(r);

  // The kept nodes run on the cpu INT8 engine exactly as on the reference backend.
  QF_REQUIRE_INT8();
  Tensor in(DType::kI8, {1, 3, 4, 4});
  for (int64_t i = 0; i < in.numel(); ++i) in.data<int8_t>()[i] = static_cast<int8_t>(i * 7 - 100);
  auto ref = qf::testing::run_on(bytes, "reference", Precision::kFP32, {in});
  ASSERT_TRUE(ref.ok()) << ref.status().message();
  auto cpu = qf::testing::run_on(bytes, "cpu", Precision::kINT8, {in});
  ASSERT_TRUE(cpu.ok()) << cpu.status().message();
  ASSERT_EQ(cpu->outputs[0].dtype(), DType::kI8);
  int differ = 0;
  for (int64_t i = 0; i < cpu->outputs[0].numel(); ++i) {
    // fp32 convolution on either side: at most a rounding tie apart.
    differ += std::abs(cpu->outputs[0].data<int8_t>()[i] - ref->outputs[0].data<int8_t>()[i]) > 1;
  }
  EXPECT_EQ(differ, 0);
}

// The form ONNX Runtime's quantize_static writes: uint8 activations with zero points, int8
// per-channel weights, an int32 bias with scale x_scale * w_scale, Q/DQ on the Conv output and on
// the Relu output, which is the graph output (that pair stays).
TEST(QdqImport, OnnxRuntimeStyleModelBuildsAndRuns) {
  QF_REQUIRE_INT8();
  const float sx = 2.f / 255.f, sc = 0.02f, sr = 0.01f;
  const Tensor w = qf::testing::layer_weights({4, 3, 3, 3}, 51);
  const Tensor bias = qf::testing::random_tensor({4}, 52, -0.2f, 0.2f);
  auto wq = quantize_per_channel(w, 0, "w");
  ASSERT_TRUE(wq.ok()) << wq.status().message();
  Tensor bq(DType::kI32, {4}), bs(DType::kF32, {4}), bz(DType::kI32, {4});
  for (int64_t c = 0; c < 4; ++c) {
    bs.data<float>()[c] = sx * wq->scales.data<float>()[c];
    bq.data<int32_t>()[c] =
        static_cast<int32_t>(std::lround(bias.data<float>()[c] / bs.data<float>()[c]));
  }
  ModelBuilder b(17);
  b.input("x", kF32, {1, 3, 5, 5});
  b.initializer("sx", Tensor::from_vector<float>({}, {sx}));
  b.initializer("zx", Tensor::from_vector<uint8_t>({}, {128}));
  b.initializer("sc", Tensor::from_vector<float>({}, {sc}));
  b.initializer("zc", Tensor::from_vector<uint8_t>({}, {128}));
  b.initializer("sr", Tensor::from_vector<float>({}, {sr}));
  b.initializer("zr", Tensor::from_vector<uint8_t>({}, {0}));
  b.initializer("wq", wq->values);
  b.initializer("ws", wq->scales);
  b.initializer("wz", wq->zero_points);
  b.initializer("bq", bq);
  b.initializer("bs", bs);
  b.initializer("bz", bz);
  b.node("QuantizeLinear", {"x", "sx", "zx"}, {"x_q"});
  b.node("DequantizeLinear", {"x_q", "sx", "zx"}, {"x_dq"});
  set_int_attr(b.node("DequantizeLinear", {"wq", "ws", "wz"}, {"w_dq"}), "axis", 0);
  set_int_attr(b.node("DequantizeLinear", {"bq", "bs", "bz"}, {"b_dq"}), "axis", 0);
  set_ints_attr(b.node("Conv", {"x_dq", "w_dq", "b_dq"}, {"c"}, "conv"), "pads", {1, 1, 1, 1});
  b.node("QuantizeLinear", {"c", "sc", "zc"}, {"c_q"});
  b.node("DequantizeLinear", {"c_q", "sc", "zc"}, {"c_dq"});
  b.node("Relu", {"c_dq"}, {"r"}, "relu");
  b.node("QuantizeLinear", {"r", "sr", "zr"}, {"r_q"});
  b.node("DequantizeLinear", {"r_q", "sr", "zr"}, {"y"});
  b.output("y", kF32, {1, 4, 5, 5});
  const std::string bytes = b.serialize();

  auto g = import(bytes);
  ASSERT_TRUE(g);
  const QdqImport r = fold(*g);
  EXPECT_EQ(r.weights_folded, 2);  // weight and bias
  EXPECT_EQ(r.activation_pairs, 2);
  EXPECT_EQ(r.kept_nodes, 2);  // the output pair
  EXPECT_EQ(r.activation_scales.at("x"), 128.f * sx / 127.f);
  EXPECT_EQ(r.activation_scales.at("c"), 128.f * sc / 127.f);
  EXPECT_EQ(r.activation_scales.count("r"), 0u);
  EXPECT_TRUE(any_note_has(r, "graph output")) << all_notes(r);
  EXPECT_FALSE(any_note_has(r, "output channels")) << all_notes(r);  // weights reproduce

  const std::vector<Tensor> inputs = {qf::testing::random_tensor({1, 3, 5, 5}, 53)};
  auto fake = qf::testing::run_on(bytes, "reference", Precision::kFP32, inputs);
  ASSERT_TRUE(fake.ok()) << fake.status().message();
  auto engine = qf::testing::run_on(bytes, "cpu", Precision::kINT8, inputs);
  ASSERT_TRUE(engine.ok()) << engine.status().message();
  EXPECT_NE(qf::testing::kernel_of(engine->info, "conv").find("_s32_"), std::string::npos)
      << qf::testing::kernel_of(engine->info, "conv");
  // The engine reads x on the symmetric grid 128 sx / 127 instead of sx around 128 (each input
  // off by at most half a step on either side), and skips the rounding of c; per output that is
  // at most sum|w| (27 weights <= 1/3) * sx + one step of c + one step of the output.
  const double bound = 27.0 / 3.0 * sx + sc + sr;
  double worst = 0;
  for (int64_t i = 0; i < fake->outputs[0].numel(); ++i) {
    worst = std::max(worst, static_cast<double>(std::abs(engine->outputs[0].data<float>()[i] -
                                                         fake->outputs[0].data<float>()[i])));
  }
  EXPECT_LE(worst, bound);
}

TEST(QdqImport, SecondScaleForTheSameTensorIsKept) {
  ModelBuilder b(17);
  b.input("x", kF32, {2, 4});
  b.initializer("s1", Tensor::from_vector<float>({}, {0.1f}));
  b.initializer("s2", Tensor::from_vector<float>({}, {0.2f}));
  b.initializer("z", Tensor::from_vector<int8_t>({}, {0}));
  b.node("QuantizeLinear", {"x", "s1", "z"}, {"q1"});
  b.node("DequantizeLinear", {"q1", "s1", "z"}, {"d1"});
  b.node("QuantizeLinear", {"x", "s2", "z"}, {"q2"}, "second_q");
  b.node("DequantizeLinear", {"q2", "s2", "z"}, {"d2"});
  b.node("Add", {"d1", "d2"}, {"y"});
  b.output("y", kF32, {2, 4});
  auto g = import(b.serialize());
  ASSERT_TRUE(g);
  const QdqImport r = fold(*g);
  EXPECT_EQ(r.activation_pairs, 1);
  EXPECT_EQ(r.kept_nodes, 2);
  EXPECT_EQ(r.activation_scales.at("x"), 0.1f);
  EXPECT_TRUE(any_note_has(r, "two scales")) << all_notes(r);
}

TEST(QdqImport, BadScaleIsAnErrorAndLeavesTheGraph) {
  ModelBuilder b(17);
  b.input("x", kF32, {2, 4});
  b.initializer("s", Tensor::from_vector<float>({}, {0.f}));
  b.initializer("z", Tensor::from_vector<int8_t>({}, {0}));
  b.node("QuantizeLinear", {"x", "s", "z"}, {"q"});
  b.node("DequantizeLinear", {"q", "s", "z"}, {"d"});
  b.node("Relu", {"d"}, {"y"});
  b.output("y", kF32, {2, 4});
  auto g = import(b.serialize());
  ASSERT_TRUE(g);
  auto r = fold_qdq(*g);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidInput);
  EXPECT_NE(r.status().message().find("'x'"), std::string::npos) << r.status().message();
  EXPECT_EQ(count_op(*g, "QuantizeLinear"), 1);
  EXPECT_EQ(count_op(*g, "DequantizeLinear"), 1);
}

}  // namespace
}  // namespace qf::quant
