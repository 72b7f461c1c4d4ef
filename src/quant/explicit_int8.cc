// The build preparation the cpu and cuda backends share (explicit_int8.h). It moved here from
// the cpu backend's build() unchanged, so that the cuda backend imports Q/DQ graphs, falls back
// to synthetic scales and checks scales exactly as the cpu backend does.
#include "quant/explicit_int8.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>

#include "backends/reference/executor.h"
#include "passes/optimize.h"
#include "quant/qdq_import.h"
#include "quant/qoperator_to_qdq.h"

namespace qf::quant {

Result<std::map<std::string, float>> synthetic_scales(ir::Graph& graph) {
  std::mt19937 gen(20240601);
  std::normal_distribution<float> normal(0.f, 1.f);
  std::vector<Tensor> inputs;
  for (const ir::Value* in : graph.inputs) {
    if (!in->shape) return unsupported("int8: input '{}' has no shape to calibrate with", in->name);
    Shape shape;
    for (const ir::Dim& d : *in->shape) shape.push_back(d.is_known() ? d.value : 1);
    Tensor t(in->dtype, shape);
    if (in->dtype == DType::kF32) {
      for (float& v : t.span<float>()) v = normal(gen);
    }
    inputs.push_back(std::move(t));
  }
  // Every f32 value becomes an output for the one run, then the outputs are restored.
  const std::vector<ir::Value*> outputs = graph.outputs;
  std::vector<ir::Value*> observed;
  for (const auto& n : graph.nodes()) {
    for (ir::Value* v : n->outputs) {
      if (v && v->dtype == DType::kF32) observed.push_back(v);
    }
  }
  graph.outputs = observed;
  Result<std::vector<Tensor>> values = [&]() -> Result<std::vector<Tensor>> {
    QF_ASSIGN_OR_RETURN(reference::Executor e, reference::Executor::create(graph));
    return e.run(inputs);
  }();
  graph.outputs = outputs;
  QF_RETURN_IF_ERROR(values.status());
  std::map<std::string, float> scales;
  auto scale_of = [](const Tensor& t) {
    float amax = 0.f;
    for (float v : t.span<float>()) amax = std::max(amax, std::abs(v));
    return amax > 0 ? amax / 127.f : 1.f;
  };
  for (size_t i = 0; i < graph.inputs.size(); ++i) {
    if (inputs[i].dtype() == DType::kF32) scales[graph.inputs[i]->name] = scale_of(inputs[i]);
  }
  for (size_t i = 0; i < observed.size(); ++i) {
    scales[observed[i]->name] = scale_of((*values)[i]);
  }
  return scales;
}

Result<PreparedBuild> prepare_build(ir::Graph& graph, const runtime::BuildOptions& options) {
  PreparedBuild prepared{options, {}};
  runtime::BuildOptions& effective = prepared.options;
  const bool int8 = options.precision == runtime::Precision::kINT8;
  std::map<std::string, float>& scales = effective.activation_scales;
  // Explicit quantization (quant/qdq_import.h): at INT8, a model with Q/DQ nodes brings its
  // own scales. Folding happens before the optimizer so that it fuses the float graph the Q/DQ
  // nodes annotate; a graph scale wins over a given one for the same tensor. Tensors left
  // without a scale run in fp32. At other precisions the Q/DQ nodes stay and run as fake
  // quantization (reference kernels), as on the reference backend.
  bool scales_from_graph = false;
  if (int8 && has_qdq(graph)) {
    // QOperator nodes (QLinearConv, QLinearMatMul) first become the Q/DQ form they stand for.
    QF_ASSIGN_OR_RETURN(const int qoperator_nodes, qoperator_to_qdq(graph));
    QF_ASSIGN_OR_RETURN(QdqImport qdq, fold_qdq(graph));
    if (qoperator_nodes > 0) {
      qdq.notes.insert(qdq.notes.begin(),
                       fmt::format("{} QLinearConv/QLinearMatMul nodes rewritten as "
                                   "DequantizeLinear -> Conv/MatMul -> QuantizeLinear",
                                   qoperator_nodes));
    }
    for (const auto& [name, scale] : qdq.activation_scales) {
      scales[name] = scale;
      effective.activation_grids.erase(name);
    }
    for (const auto& [name, grid] : qdq.activation_grids) effective.activation_grids[name] = grid;
    // A graph whose Q/DQ nodes all stay (a reloaded engine file's) keeps the given words.
    if (!qdq.activation_scales.empty() || options.calibration.empty()) {
      effective.calibration = fmt::format(
          "scales from the model's Q/DQ nodes ({} tensors{}{})", qdq.activation_scales.size(),
          qdq.notes.empty() ? "" : fmt::format(", {} notes", qdq.notes.size()),
          options.activation_scales.empty()
              ? ""
              : fmt::format(", plus given scales: {}", options.calibration));
    }
    scales_from_graph = true;
    prepared.notes = std::move(qdq.notes);
  }
  QF_RETURN_IF_ERROR(passes::optimize(graph));
  if (!int8) return prepared;
  if (scales.empty() && !scales_from_graph) {
    std::fprintf(stderr,
                 "qforge: WARNING: int8 without calibration scales: calibrating on ONE RANDOM "
                 "INPUT instead. This engine's speed is real, its accuracy is not: calibrate "
                 "with real data for a usable int8 engine.\n");
    QF_ASSIGN_OR_RETURN(scales, synthetic_scales(graph));
    effective.calibration = "synthetic calibration on one random input (speed only)";
  }
  for (auto& [name, scale] : scales) {
    if (!std::isfinite(scale) || scale < 0.f) {
      return invalid_input("int8 scale of '{}' is {}: scales must be finite and >= 0", name, scale);
    }
    // TensorRT writes 0 for a tensor that was all zeros; any positive scale represents it.
    if (scale == 0.f) scale = 1.f / 127.f;
  }
  return prepared;
}

}  // namespace qf::quant
