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

namespace {

// The weight seen as (outer, channels, inner) around a channel axis.
struct ChannelView {
  int64_t axis = 0, outer = 0, channels = 0, inner = 1;

  template <typename F>
  void for_each(F&& f) const {  // f(channel, flat index)
    for (int64_t o = 0; o < outer; ++o) {
      for (int64_t c = 0; c < channels; ++c) {
        const int64_t base = (o * channels + c) * inner;
        for (int64_t i = 0; i < inner; ++i) f(c, base + i);
      }
    }
  }
};

Result<ChannelView> channel_view(const Tensor& weight, int64_t axis, const std::string& what) {
  QF_RETURN_IF_ERROR(check_weight(weight, what));
  const int64_t rank = weight.rank();
  ChannelView v;
  v.axis = axis < 0 ? axis + rank : axis;
  if (v.axis < 0 || v.axis >= rank) {
    return invalid_input("{}: channel axis {} is out of range for a weight of rank {}", what, axis,
                         rank);
  }
  v.channels = weight.dim(static_cast<int>(v.axis));
  for (int64_t d = v.axis + 1; d < rank; ++d) v.inner *= weight.dim(static_cast<int>(d));
  v.outer = v.channels * v.inner == 0 ? 0 : weight.numel() / (v.channels * v.inner);
  return v;
}

// Per channel: quantizes with `scales`, to [-127, 127] or, for channels marked in
// `reaches_minus_128`, to [-128, 127].
QuantizedWeight quantize_channels(const Tensor& weight, const ChannelView& v,
                                  std::vector<float> scales,
                                  const std::vector<bool>& reaches_minus_128) {
  QuantizedWeight q;
  q.axis = v.axis;
  q.scales = Tensor::from_vector<float>({v.channels}, scales);
  q.zero_points = Tensor(DType::kI8, {v.channels});
  q.values = Tensor(DType::kI8, weight.shape());
  const float* w = weight.data<float>();
  int8_t* out = q.values.data<int8_t>();
  v.for_each([&](int64_t c, int64_t i) {
    const auto ch = static_cast<size_t>(c);
    out[i] =
        reaches_minus_128[ch]
            ? static_cast<int8_t>(std::clamp(round_half_to_even(w[i] / scales[ch]), -128.f, 127.f))
            : quantize_symmetric(w[i], scales[ch]);
  });
  return q;
}

std::vector<float> channel_amax(const Tensor& weight, const ChannelView& v) {
  std::vector<float> amax(static_cast<size_t>(v.channels), 0.0f);
  const float* w = weight.data<float>();
  v.for_each([&](int64_t c, int64_t i) {
    float& m = amax[static_cast<size_t>(c)];
    m = std::max(m, std::fabs(w[i]));
  });
  return amax;
}

}  // namespace

Result<QuantizedWeight> quantize_per_channel(const Tensor& weight, int64_t axis,
                                             const std::string& what) {
  QF_ASSIGN_OR_RETURN(const ChannelView v, channel_view(weight, axis, what));
  std::vector<float> scales = channel_amax(weight, v);
  for (float& s : scales) s = symmetric_scale(s);
  return quantize_channels(weight, v, std::move(scales),
                           std::vector<bool>(static_cast<size_t>(v.channels), false));
}

Result<QuantizedWeight> quantize_per_channel_keeping_grid(const Tensor& weight, int64_t axis,
                                                          const std::string& what) {
  QF_ASSIGN_OR_RETURN(const ChannelView v, channel_view(weight, axis, what));
  const std::vector<float> amax = channel_amax(weight, v);
  const float* w = weight.data<float>();
  // Whether every value of channel c is an integer multiple of amax / k, up to kSlack steps:
  // the few ulps that folding a per-channel factor (a batch norm) into dequantized weights
  // leaves. The first value that is not ends the scan, so float weights cost a few reads per k.
  constexpr float kSlack = 1e-3f;
  auto on_grid = [&](int64_t c, float step) {
    for (int64_t o = 0; o < v.outer; ++o) {
      const float* row = w + (o * v.channels + c) * v.inner;
      for (int64_t i = 0; i < v.inner; ++i) {
        const float q = row[i] / step;
        if (std::fabs(q - std::nearbyint(q)) > kSlack) return false;
      }
    }
    return true;
  };
  auto has_value = [&](int64_t c, float x) {
    for (int64_t o = 0; o < v.outer; ++o) {
      const float* row = w + (o * v.channels + c) * v.inner;
      if (std::find(row, row + v.inner, x) != row + v.inner) return true;
    }
    return false;
  };
  const auto n = static_cast<size_t>(v.channels);
  std::vector<float> scales(n);
  std::vector<bool> reaches_minus_128(n, false);
  for (int64_t c = 0; c < v.channels; ++c) {
    const auto ch = static_cast<size_t>(c);
    scales[ch] = symmetric_scale(amax[ch]);
    if (amax[ch] == 0.f || !std::isnormal(amax[ch] / 128.f)) continue;
    // Grids whose largest level is k: 127 (symmetric), 128 (the extreme is -128: a value equals
    // -amax and none +amax), then 126 down to 64 (scales such as amax / 127.5 or a moving
    // average that stopped below the weights' extreme).
    if (on_grid(c, amax[ch] / 127.f)) continue;
    if (has_value(c, -amax[ch]) && !has_value(c, amax[ch]) && on_grid(c, amax[ch] / 128.f)) {
      scales[ch] = amax[ch] / 128.f;
      reaches_minus_128[ch] = true;
      continue;
    }
    for (int k = 126; k >= 64; --k) {
      if (on_grid(c, amax[ch] / static_cast<float>(k))) {
        scales[ch] = amax[ch] / static_cast<float>(k);
        break;
      }
    }
  }
  return quantize_channels(weight, v, std::move(scales), reaches_minus_128);
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
