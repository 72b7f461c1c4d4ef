#include "quant/weight_quantizer.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

namespace qf::quant {

namespace {

// Half-to-even by hand rather than std::nearbyint, which follows the thread's rounding mode.
float round_half_to_even(float v) {
  const float fl = std::floor(v);
  const float diff = v - fl;
  if (diff < 0.5f) return fl;
  if (diff > 0.5f) return fl + 1.0f;
  return std::fmod(fl, 2.0f) == 0.0f ? fl : fl + 1.0f;
}

Status check_weight(const Tensor& w, const std::string& what) {
  if (w.dtype() != DType::kF32) {
    return unsupported("{}: int8 weight quantization needs float32 weights, got {}", what,
                       dtype_tag(w.dtype()));
  }
  for (float v : w.span<float>()) {
    if (!std::isfinite(v)) return invalid_input("{}: weight holds {}, cannot quantize it", what, v);
  }
  return {};
}

}  // namespace

float symmetric_scale(float amax) {
  // A denormal (or underflowed) scale is no use either: such a channel is zero for all purposes.
  const float scale = amax / 127.0f;
  return std::isnormal(scale) ? scale : 1.0f;
}

int8_t quantize_symmetric(float x, float scale) {
  const float q = round_half_to_even(x / scale);
  return static_cast<int8_t>(std::clamp(q, -127.0f, 127.0f));
}

Result<QuantizedWeight> quantize_per_channel(const Tensor& weight, int64_t axis,
                                             const std::string& what) {
  QF_RETURN_IF_ERROR(check_weight(weight, what));
  const int64_t rank = weight.rank();
  const int64_t a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) {
    return invalid_input("{}: channel axis {} is out of range for a weight of rank {}", what, axis,
                         rank);
  }
  // The weight seen as (outer, channels, inner) around the axis.
  const int64_t channels = weight.dim(static_cast<int>(a));
  int64_t inner = 1;
  for (int64_t d = a + 1; d < rank; ++d) inner *= weight.dim(static_cast<int>(d));
  const int64_t outer = channels * inner == 0 ? 0 : weight.numel() / (channels * inner);

  const float* w = weight.data<float>();
  std::vector<float> amax(static_cast<size_t>(channels), 0.0f);
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t c = 0; c < channels; ++c) {
      const float* row = w + (o * channels + c) * inner;
      float& m = amax[static_cast<size_t>(c)];
      for (int64_t i = 0; i < inner; ++i) m = std::max(m, std::fabs(row[i]));
    }
  }

  QuantizedWeight q;
  q.axis = a;
  q.scales = Tensor(DType::kF32, {channels});
  q.zero_points = Tensor(DType::kI8, {channels});
  q.values = Tensor(DType::kI8, weight.shape());
  float* scales = q.scales.data<float>();
  for (int64_t c = 0; c < channels; ++c) scales[c] = symmetric_scale(amax[static_cast<size_t>(c)]);
  int8_t* out = q.values.data<int8_t>();
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t c = 0; c < channels; ++c) {
      const int64_t base = (o * channels + c) * inner;
      for (int64_t i = 0; i < inner; ++i) {
        out[base + i] = quantize_symmetric(w[base + i], scales[c]);
      }
    }
  }
  return q;
}

Result<QuantizedWeight> quantize_per_tensor(const Tensor& weight, const std::string& what) {
  QF_RETURN_IF_ERROR(check_weight(weight, what));
  float amax = 0.0f;
  for (float v : weight.span<float>()) amax = std::max(amax, std::fabs(v));
  QuantizedWeight q;
  const float scale = symmetric_scale(amax);
  q.scales = Tensor::from_vector<float>({}, {scale});
  q.zero_points = Tensor(DType::kI8, {});
  q.values = Tensor(DType::kI8, weight.shape());
  int8_t* out = q.values.data<int8_t>();
  const float* w = weight.data<float>();
  for (int64_t i = 0; i < weight.numel(); ++i) out[i] = quantize_symmetric(w[i], scale);
  return q;
}

}  // namespace qf::quant
