// Explicit quantization: reading the scales of a model that arrives with QuantizeLinear and
// DequantizeLinear nodes (PyTorch QAT, ONNX Runtime's quantize_static, `qforge quantize`), so that
// an INT8 engine keeps the graph's scales instead of calibrating, as TensorRT does.
//
// fold_qdq rewrites the graph into the float graph the Q/DQ nodes annotate plus a scale map:
// - Weights: a DequantizeLinear of a constant (an int8/uint8 initializer, or a QuantizeLinear of
//   a float initializer) becomes the float constant it computes, with the reference kernels'
//   arithmetic. The cpu backend re-quantizes weights per output channel
//   (quant::quantize_per_channel_keeping_grid), which gives back the graph's int8 values and
//   scales whenever every channel's int8 values reach +-127 (symmetric max-calibrated weights:
//   qforge's, ONNX Runtime's, TensorRT's) or -128 (PyTorch's QAT weights). A channel that does
//   neither (or has a zero point or mixed scales) gets different int8 values in the engine:
//   counted in a note, never silently.
// - Activations: QuantizeLinear(X, s, zp) whose output only feeds DequantizeLinear nodes with the
//   same scale and zero point (per tensor, int8/uint8, float32 X) is removed with those readers,
//   which now read X. X keeps the graph's grid exactly: uint8 (any zero point) and int8 with a
//   zero point are stored on it (activation_grids); int8 with zero point 0 keeps its scale as
//   its symmetric scale, stored as s8 on the graph's grid or, where the backend knows X is
//   non-negative, as u8 with half the scale (a finer grid holding every value of the graph's),
//   as for calibrated scales.
// - Propagation: a tensor that an element-selecting op (MaxPool, Reshape, Flatten, Transpose,
//   Squeeze/Unsqueeze, Slice, Gather, and Concat of equal grids) computes from a quantized
//   tensor gets that tensor's grid, and a float tensor read only by such an op whose output is
//   quantized gets the output's: these ops commute with quantization, so no value changes and
//   the convolution behind a MaxPool reads int8 (TensorRT moves Q/DQ nodes the same way).
// - No-op Casts (to the type their input has; PyTorch's int8 export puts one between each Q and
//   DQ) are spliced out first.
// - Everything else (unpaired Q or DQ, per-axis or 16-bit activation quantization, a tensor
//   quantized with two different scales, Q/DQ of non-float32 data, Q/DQ whose output is a graph
//   output) stays in the graph as real quantize/dequantize nodes that run with the reference
//   kernels: dropping one would change the numerics. Each is counted and named in a note.
//
// Nothing is printed: the notes are one-line explanations for the caller to show.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "qforge/status.h"
#include "runtime/engine.h"

namespace qf::quant {

struct QdqImport {
  // Tensor name -> symmetric int8 scale (real = scale * q, q in [-127, 127]), as
  // runtime::BuildOptions::activation_scales wants them.
  std::map<std::string, float> activation_scales;
  // Tensors the engine must store on exactly the graph's grid, as
  // runtime::BuildOptions::activation_grids wants them: uint8 (any zero point) and int8 with a
  // zero point other than 0. Their entry in activation_scales is the symmetric scale covering
  // the same range (twice the graph's scale for uint8 with zero point 0).
  std::map<std::string, runtime::QuantGrid> activation_grids;
  int activation_pairs = 0;  // QuantizeLinear nodes removed together with their DQ readers
  int weights_folded = 0;    // DequantizeLinear nodes of constants replaced by float constants
  int grids_propagated = 0;  // tensors that got a grid through MaxPool, Reshape, ... (Q/DQ
                             // propagation as TensorRT does it)
  int kept_nodes = 0;        // Q/DQ nodes left in the graph (run by the reference kernels)
  std::vector<std::string> notes;  // one line each, for the user
};

// Whether the graph is explicitly quantized: any QuantizeLinear, DequantizeLinear, QLinearConv
// or QLinearMatMul node (default ONNX domain; the last two are rewritten to Q/DQ form by
// quant/qoperator_to_qdq.h before fold_qdq).
bool has_qdq(const ir::Graph& graph);

// Folds the graph's Q/DQ nodes as described above. Fails (kInvalidInput) only for a model whose
// quantization parameters are broken (a scale that is not finite and positive); the graph is then
// unchanged.
Result<QdqImport> fold_qdq(ir::Graph& graph);

}  // namespace qf::quant
