// What every backend does to a graph before planning it, so that the cpu and cuda backends build
// INT8 engines from the same graph with the same scales: the import of explicit quantization
// (Q/DQ and QOperator nodes folded into scales and grids, quant/qdq_import.h), the optimizer,
// synthetic scales (loudly) when an INT8 build has none, and the checks of the scales.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "qforge/status.h"
#include "runtime/engine.h"

namespace qf::quant {

struct PreparedBuild {
  // The options to build with: at INT8 the activation scales (the graph's Q/DQ scales win over
  // given ones for the same tensor; synthetic ones when there were none; a 0 scale, TensorRT's
  // word for an all-zero tensor, replaced by 1/127), the grids a Q/DQ graph fixed and where the
  // scales came from; other precisions get `options` unchanged.
  runtime::BuildOptions options;
  // The Q/DQ import's notes (EngineInfo::notes): nodes kept as fake quantization, converted zero
  // points, ...
  std::vector<std::string> notes;
};

// Prepares `graph` for a backend's build at options.precision, in this order:
// 1. INT8 and explicitly quantized (quant::has_qdq): QLinearConv/QLinearMatMul rewritten into
//    Q/DQ form, then quant::fold_qdq; its scales and grids join the given ones. At other
//    precisions Q/DQ nodes stay and run as fake quantization.
// 2. passes::optimize (every precision).
// 3. INT8 without any scale: synthetic_scales, after a WARNING on stderr that the engine's
//    accuracy is not real; the calibration words say "synthetic".
// 4. INT8: every scale must be finite and >= 0 (kInvalidInput otherwise).
Result<PreparedBuild> prepare_build(ir::Graph& graph, const runtime::BuildOptions& options);

// Scales from one FP32 run of the reference executor on a seeded random input: max |value| / 127
// of every f32 value (graph inputs included). A stand-in until real calibration data is given;
// the engine it yields is fit for timing, not for accuracy.
Result<std::map<std::string, float>> synthetic_scales(ir::Graph& graph);

}  // namespace qf::quant
