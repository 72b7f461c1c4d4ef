// The graph passes, one per file under src/passes/. optimize.h runs them as a pipeline.
#pragma once

#include <memory>

#include "passes/pass.h"

namespace qf::passes {

// Nodes computable now become constants: all inputs constant (run the reference kernel, outputs
// up to 16M elements), or outputs the shape function already knows (Shape, Size of a fully
// static shape), so Shape -> Gather -> Concat chains resolve. Q/DQ nodes are kept: their
// structure carries the quantization.
std::unique_ptr<Pass> make_constant_folding_pass();

// Identity, and Dropout in inference mode, are spliced out.
std::unique_ptr<Pass> make_identity_elimination_pass();

// Nodes none of whose outputs is read or is a graph output are removed.
std::unique_ptr<Pass> make_dead_node_elimination_pass();

// Mul (constant on either side) or Div (constant divisor) by a constant varying only along the
// output-channel axis folded into the constant weights and bias of the Conv, ConvTranspose or
// Gemm before it (FusedConv/FusedGemm without an epilogue too).
std::unique_ptr<Pass> make_channel_scale_folding_pass();

// BatchNormalization with constant parameters folded into the weights and bias of the Conv,
// ConvTranspose or Gemm before it.
std::unique_ptr<Pass> make_batch_norm_folding_pass();

// Add of a constant bias folded into Conv's B (per channel) or Gemm's C (per column); MatMul +
// Add of a constant [N] becomes FusedMatMul with Bias.
std::unique_ptr<Pass> make_bias_add_folding_pass();

// Reshape of a Reshape/Flatten/Squeeze/Unsqueeze reads the original data; reshapes that keep
// the shape are removed.
std::unique_ptr<Pass> make_reshape_folding_pass();

// Transpose of a Transpose becomes one Transpose (or nothing when the two cancel); identity
// permutations are removed.
std::unique_ptr<Pass> make_transpose_folding_pass();

// Conv/Gemm/MatMul + Add of a tensor of the output's shape -> Fused* with residual Z.
std::unique_ptr<Pass> make_residual_fusion_pass();

// Conv/Gemm/MatMul (+ epilogue) + activation (Relu, LeakyRelu, Clip, Sigmoid, Tanh,
// HardSigmoid, HardSwish, the SiLU and GELU patterns) -> Fused* with that activation.
std::unique_ptr<Pass> make_activation_fusion_pass();

}  // namespace qf::passes
