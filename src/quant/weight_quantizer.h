// Symmetric int8 quantization of weight tensors, per output channel or per tensor.
//
// scale = max|w| / 127 over the channel (or the whole tensor), q = round_half_to_even(w / scale)
// clamped to [-127, 127], zero point 0: the weight form TensorRT's explicit quantization and
// ONNX Runtime's QDQ kernels expect. -128 is never produced, so negating a weight stays exact.
// The division and rounding are those of ONNX QuantizeLinear in float, so a float weight fed
// through QuantizeLinear with these scales gives the same int8 values.
//
// A channel (or tensor) that is all zeros has no meaningful scale; it gets scale 1.0 and int8
// zeros, so DequantizeLinear reproduces the zeros exactly and no scale is 0 or denormal
// (TensorRT rejects non-positive scales; ONNX Runtime's quantizer makes the same choice). So
// does a channel whose amax / 127 is not a normal float (|w| below about 1.5e-36).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "qforge/status.h"
#include "qforge/tensor.h"

namespace qf::quant {

struct QuantizedWeight {
  Tensor values;                // s8, the weight's shape
  Tensor scales;                // f32: [channels] per channel, a scalar (rank 0) per tensor
  Tensor zero_points;           // s8 zeros, the shape of `scales`
  std::optional<int64_t> axis;  // the channel axis (non-negative); nullopt: per tensor
};

// amax / 127, or 1.0 when that is 0 or denormal (see above). `amax` must be finite and >= 0.
float symmetric_scale(float amax);

// round_half_to_even(x / scale) clamped to [-127, 127]; `scale` > 0.
int8_t quantize_symmetric(float x, float scale);

// Per-channel quantization along `axis` (negative counts from the end). The weight must be f32
// with finite values (kUnsupported for other types, kInvalidInput for NaN/Inf or a bad axis);
// `what` names the weight in messages.
Result<QuantizedWeight> quantize_per_channel(const Tensor& weight, int64_t axis,
                                             const std::string& what);

// quantize_per_channel for weights that may already be quantized (the float weights of a Q/DQ
// graph): a channel whose values all lie on a grid amax / k keeps that grid, so its int8 values
// and scale are the graph's: k = 127 (symmetric max), k = 128 when the extreme is negative
// (q = -128, PyTorch's [-128, 127] weights), or the largest k from 126 down to 64 (scales that
// stopped short of the extreme: a moving average, amax / 127.5). Every other channel is
// quantized as by quantize_per_channel. Random float weights are practically never on such a
// grid, so for them this equals quantize_per_channel.
Result<QuantizedWeight> quantize_per_channel_keeping_grid(const Tensor& weight, int64_t axis,
                                                          const std::string& what);

// One scale for the whole tensor (a scalar scale and zero point).
Result<QuantizedWeight> quantize_per_tensor(const Tensor& weight, const std::string& what);

}  // namespace qf::quant
