// Writing a calibrated model as a Q/DQ ONNX model that TensorRT and ONNX Runtime run unchanged.
//
// Placement follows TensorRT's explicit-quantization rules: a QuantizeLinear/DequantizeLinear
// pair (symmetric int8, zero point 0, per-tensor scale from the calibration) on every
// activation input of Conv, ConvTranspose, Gemm and MatMul, and on both inputs of an Add that
// joins two branches (a residual Add), so TensorRT keeps the Add in INT8; weights become int8
// initializers (symmetric, per output channel: axis 0 for Conv/Gemm with transB, axis 1 for
// ConvTranspose and MatMul/Gemm without transB) followed by a DequantizeLinear with their scales.
// Biases stay float. The graph is the imported, un-optimized model, so names match the source.
#pragma once

#include <map>
#include <set>
#include <string>

#include "ir/graph.h"
#include "qforge/status.h"

namespace qf::quant {

struct QdqExportOptions {
  // Tensor name -> activation scale (amax / 127), as in a calibration cache.
  std::map<std::string, float> activation_scales;
  // Node names or op types left in float (`qforge quantize --exclude`).
  std::set<std::string> exclude;
  int64_t opset = 13;  // per-axis DequantizeLinear needs 13
};

struct QdqExportReport {
  int quantized_nodes = 0;    // nodes whose inputs got Q/DQ
  int excluded_nodes = 0;     // quantizable nodes left in float by `exclude`
  int quantized_weights = 0;  // weights stored as int8
};

// Rewrites `graph` in place. An activation that needs a scale and has none in
// `activation_scales` is an error naming the tensor.
Result<QdqExportReport> insert_qdq(ir::Graph& graph, const QdqExportOptions& options);

}  // namespace qf::quant
