// Rewriting ONNX's QOperator form (the QLinear* nodes ONNX Runtime's quantizer writes) into the
// Q/DQ form that the rest of qforge reads (fold_qdq, TensorRT-style explicit quantization):
//
//   QLinearConv(x, xs, xz, w, ws, wz, ys, yz, B)
//     -> QuantizeLinear(Conv(DQ(x, xs, xz), DQ(w, ws, wz), DQ(B, xs * ws, 0)), ys, yz)
//   QLinearMatMul(a, as, az, b, bs, bz, ys, yz)
//     -> QuantizeLinear(MatMul(DQ(a, as, az), DQ(b, bs, bz)), ys, yz)
//
// Per-channel weight scales become DequantizeLinear with axis 0; a QLinearMatMul's per-row
// scales of a (1-D, [M]) and per-column scales of b ([N]) become axis rank - 2 and rank - 1.
// The bias scale is a new float32 initializer computed as float(x_scale * w_scale[c]), the
// product ONNX Runtime's quantizer uses for bias scales and the one the QLinearConv kernel's
// multiplier starts from; the bias zero point is int32 zeros of the same shape.
//
// The QuantizeLinear writes the QLinear node's own output value, so graph outputs and consumers
// keep their names and types. The two forms agree within one quantization step (the Q/DQ form
// accumulates dequantized values in float where QLinear accumulates exactly in int32).
//
// Left unchanged (the QLinear kernels still run them): nodes whose scales are not float32
// constants (positive and finite), whose zero points cannot be given their scale's shape (a
// non-constant zero point of another shape), whose per-axis parameters need opset 13 in an
// older model, whose N-D per-row/per-column QLinearMatMul scales no DequantizeLinear axis
// expresses, or whose operand ranks are unknown where an axis depends on them.
#pragma once

#include "ir/graph.h"
#include "qforge/status.h"

namespace qf::quant {

// Rewrites every QLinearConv and QLinearMatMul of the default domain that it can, as above, and
// returns how many. The graph is re-sorted and its shapes re-inferred when anything changed.
Result<int> qoperator_to_qdq(ir::Graph& graph);

}  // namespace qf::quant
