// Resize (opsets 10..21) and Upsample (opsets 7..10).
//
// Canonical form: inputs (X, roi, scales, sizes) as in Resize-13, attributes as in Resize-19.
// Resize-10 and Upsample take (X, scales) (Upsample-7: a `scales` attribute), so
// canonicalisation moves scales to input 2 and states their fixed coordinate rules as
// attributes: Upsample maps output x to x / scale and takes the floor for nearest; Resize-10
// does the same but, when downsampling, takes the ceiling (ONNX Runtime's behaviour for
// opset 10, which the opset-10 conformance data follows). That last rule has no name in later
// opsets, so it is spelled nearest_mode = "simple" here.
//
// Interpolation is separable: each output index along each axis reads a few input indices with
// weights (1 for nearest, 2 for linear, 4 for cubic), computed once per axis; an output element
// is the weighted sum over the product of its axes' taps, which gives N-d nearest, linear and
// cubic alike.
#include <algorithm>
#include <array>
#include <cmath>
#include <limits>

#include "ops/elementwise.h"

namespace qf::ops {
namespace {

using ir::Dim;
using ir::SymShape;

enum class Mode { kNearest, kLinear, kCubic };
enum class Coord {
  kHalfPixel,
  kHalfPixelSymmetric,
  kPytorchHalfPixel,
  kAlignCorners,
  kAsymmetric,
  kTfHalfPixelForNn,
  kTfCropAndResize,
};
enum class Nearest { kRoundPreferFloor, kRoundPreferCeil, kFloor, kCeil, kSimple };
enum class AspectPolicy { kStretch, kNotLarger, kNotSmaller };

struct ResizeAttrs {
  Mode mode = Mode::kNearest;
  Coord coord = Coord::kHalfPixel;
  Nearest nearest = Nearest::kRoundPreferFloor;
  AspectPolicy policy = AspectPolicy::kStretch;
  double cubic_a = -0.75;
  bool exclude_outside = false;
  bool antialias = false;
  double extrapolation = 0.0;
  std::vector<int64_t> axes;  // empty: all axes
};

Result<ResizeAttrs> parse_attrs(const ir::Node& node) {
  const ir::Attributes& a = node.attrs;
  ResizeAttrs r;
  auto bad = [&](const char* name, const std::string& value) {
    return invalid_input("{}: unknown {} '{}'", node.label(), name, value);
  };
  const std::string mode = a.get_string("mode", "nearest");
  if (mode == "nearest") {
    r.mode = Mode::kNearest;
  } else if (mode == "linear" || mode == "bilinear") {
    r.mode = Mode::kLinear;
  } else if (mode == "cubic") {
    r.mode = Mode::kCubic;
  } else {
    return bad("mode", mode);
  }
  const std::string coord = a.get_string("coordinate_transformation_mode", "half_pixel");
  if (coord == "half_pixel") {
    r.coord = Coord::kHalfPixel;
  } else if (coord == "half_pixel_symmetric") {
    r.coord = Coord::kHalfPixelSymmetric;
  } else if (coord == "pytorch_half_pixel") {
    r.coord = Coord::kPytorchHalfPixel;
  } else if (coord == "align_corners") {
    r.coord = Coord::kAlignCorners;
  } else if (coord == "asymmetric") {
    r.coord = Coord::kAsymmetric;
  } else if (coord == "tf_half_pixel_for_nn") {
    r.coord = Coord::kTfHalfPixelForNn;
  } else if (coord == "tf_crop_and_resize") {
    r.coord = Coord::kTfCropAndResize;
  } else {
    return bad("coordinate_transformation_mode", coord);
  }
  const std::string nearest = a.get_string("nearest_mode", "round_prefer_floor");
  if (nearest == "round_prefer_floor") {
    r.nearest = Nearest::kRoundPreferFloor;
  } else if (nearest == "round_prefer_ceil") {
    r.nearest = Nearest::kRoundPreferCeil;
  } else if (nearest == "floor") {
    r.nearest = Nearest::kFloor;
  } else if (nearest == "ceil") {
    r.nearest = Nearest::kCeil;
  } else if (nearest == "simple") {
    r.nearest = Nearest::kSimple;
  } else {
    return bad("nearest_mode", nearest);
  }
  const std::string policy = a.get_string("keep_aspect_ratio_policy", "stretch");
  if (policy == "stretch") {
    r.policy = AspectPolicy::kStretch;
  } else if (policy == "not_larger") {
    r.policy = AspectPolicy::kNotLarger;
  } else if (policy == "not_smaller") {
    r.policy = AspectPolicy::kNotSmaller;
  } else {
    return bad("keep_aspect_ratio_policy", policy);
  }
  r.cubic_a = a.get_float("cubic_coeff_a", -0.75f);
  r.exclude_outside = a.get_int("exclude_outside", 0) != 0;
  r.antialias = a.get_int("antialias", 0) != 0;
  r.extrapolation = a.get_float("extrapolation_value", 0.0f);
  r.axes = a.get_ints("axes");
  return r;
}

// ---------------------------------------------------------------------------------------------
// Canonicalisation of Resize-10 and Upsample.

void set_default(ir::Node& node, const std::string& name, const std::string& value) {
  if (!node.attrs.has(name)) node.attrs.set(name, value);
}

Status resize10_canonicalize(ir::Node& node, ir::Graph& g) {
  if (node.opset >= 11 || node.inputs.size() != 2) return {};
  ir::Value* scales = node.inputs[1];
  g.set_input(&node, 1, nullptr);
  g.set_input(&node, 2, scales);
  set_default(node, "coordinate_transformation_mode", "asymmetric");
  set_default(node, "nearest_mode", "simple");
  return {};
}

Status upsample_canonicalize(ir::Node& node, ir::Graph& g) {
  if (node.inputs.size() >= 3) return {};
  ir::Value* scales = node.has_input(1) ? node.inputs[1] : nullptr;
  if (!scales) {
    if (!node.attrs.has("scales")) {
      return invalid_input("{}: needs scales (attribute before opset 9, input from 9)",
                           node.label());
    }
    const std::vector<float> s = node.attrs.get_floats("scales");
    scales = g.add_constant(node.name + "_scales",
                            Tensor::from_vector<float>({static_cast<int64_t>(s.size())}, s));
    node.attrs.erase("scales");
  }
  g.set_input(&node, 1, nullptr);
  g.set_input(&node, 2, scales);
  set_default(node, "coordinate_transformation_mode", "asymmetric");
  set_default(node, "nearest_mode", "floor");
  return {};
}

// ---------------------------------------------------------------------------------------------
// Output shape and per-axis scales.

// Longest axis a scale may produce: beyond it the float -> int conversion stops being exact
// (and no real model gets near it).
constexpr double kMaxLength = 9007199254740992.0;  // 2^53

struct Geometry {
  SymShape out;
  std::vector<double> scale;  // per axis: output length / input length as the op defines it
};

Result<std::vector<int>> resize_axes(const ir::Node& node, const ResizeAttrs& a, size_t rank) {
  std::vector<int> axes;
  if (a.axes.empty()) {
    for (size_t i = 0; i < rank; ++i) axes.push_back(static_cast<int>(i));
    return axes;
  }
  const int64_t r = static_cast<int64_t>(rank);
  for (int64_t axis : a.axes) {
    if (axis < -r || axis >= r) {
      return invalid_input("{}: axis {} is out of range for rank {}", node.label(), axis, rank);
    }
    const int n = static_cast<int>(axis < 0 ? axis + r : axis);
    if (std::find(axes.begin(), axes.end(), n) != axes.end()) {
      return invalid_input("{}: axis {} is given twice", node.label(), axis);
    }
    axes.push_back(n);
  }
  return axes;
}

// `scales` and `sizes` are the (non-empty) inputs when given, nullptr when absent or empty.
Result<Geometry> resize_geometry(const ir::Node& node, const ResizeAttrs& a, const SymShape& in,
                                 const Tensor* scales, const Tensor* sizes) {
  if (scales && sizes) {
    return invalid_input("{}: only one of scales and sizes may be given", node.label());
  }
  if (!scales && !sizes) return invalid_input("{}: needs scales or sizes", node.label());
  QF_ASSIGN_OR_RETURN(std::vector<int> axes, resize_axes(node, a, in.size()));
  const Tensor* given = scales ? scales : sizes;
  if (given->numel() != static_cast<int64_t>(axes.size())) {
    return invalid_input("{}: {} has {} entries but {} axes are resized", node.label(),
                         scales ? "scales" : "sizes", given->numel(), axes.size());
  }
  Geometry g{in, std::vector<double>(in.size(), 1.0)};
  if (scales) {
    for (size_t i = 0; i < axes.size(); ++i) {
      const size_t d = static_cast<size_t>(axes[i]);
      const double s = scales->element_as_double(static_cast<int64_t>(i));
      if (!(s > 0)) return invalid_input("{}: scale {} must be positive", node.label(), s);
      g.scale[d] = s;
      if (in[d].is_known()) {
        const double len = std::floor(static_cast<double>(in[d].value) * s);
        if (len > kMaxLength) {
          return invalid_input("{}: scale {} makes axis {} longer than {} elements", node.label(),
                               s, d, kMaxLength);
        }
        g.out[d] = Dim::known(static_cast<int64_t>(len));
      } else if (s != 1.0) {
        g.out[d] = Dim{};
      }
    }
    return g;
  }
  const std::vector<int64_t> want = sizes->to_int64_vector();
  for (int64_t s : want) {
    if (s < 0) return invalid_input("{}: size {} is negative", node.label(), s);
  }
  if (a.policy == AspectPolicy::kStretch) {
    for (size_t i = 0; i < axes.size(); ++i) {
      const size_t d = static_cast<size_t>(axes[i]);
      g.out[d] = Dim::known(want[i]);
      g.scale[d] = in[d].is_known() && in[d].value > 0
                       ? static_cast<double>(want[i]) / static_cast<double>(in[d].value)
                       : std::numeric_limits<double>::quiet_NaN();
    }
    return g;
  }
  // keep_aspect_ratio_policy: one scale for all resized axes, the largest that fits inside
  // (not_larger) or the smallest that covers (not_smaller) the requested sizes.
  std::optional<double> common;
  for (size_t i = 0; i < axes.size(); ++i) {
    const Dim& d = in[static_cast<size_t>(axes[i])];
    if (!d.is_known() || d.value == 0) {
      for (int ax : axes) g.out[static_cast<size_t>(ax)] = Dim{};
      return g;
    }
    const double s = static_cast<double>(want[i]) / static_cast<double>(d.value);
    if (!common) {
      common = s;
    } else {
      common = a.policy == AspectPolicy::kNotLarger ? std::min(*common, s) : std::max(*common, s);
    }
  }
  for (int ax : axes) {
    const size_t d = static_cast<size_t>(ax);
    g.scale[d] = *common;
    const double len = std::floor(*common * static_cast<double>(in[d].value) + 0.5);
    if (len > kMaxLength) {
      return invalid_input("{}: axis {} would be longer than {} elements", node.label(), d,
                           kMaxLength);
    }
    g.out[d] = Dim::known(static_cast<int64_t>(len));
  }
  return g;
}

Status resize_infer(ir::InferContext& ctx) {
  if (!ctx.has_input(0)) return ctx.error("input 0 (X) is required");
  QF_ASSIGN_OR_RETURN(ResizeAttrs a, parse_attrs(ctx.node));
  const DType dtype = ctx.in(0).dtype;
  bool unknown = false;
  // An input that is absent or empty means "not given"; one whose data is unknown leaves the
  // output dims unknown.
  auto read = [&](size_t i) -> const Tensor* {
    if (!ctx.has_input(i)) return nullptr;
    if (const Tensor* t = ctx.in(i).value) return t->numel() == 0 ? nullptr : t;
    const std::optional<SymShape>& s = ctx.in(i).shape;
    const bool empty = s && !s->empty() && (*s)[0].is_known() && (*s)[0].value == 0;
    unknown = unknown || !empty;
    return nullptr;
  };
  const Tensor* scales = read(2);
  const Tensor* sizes = read(3);
  const std::optional<SymShape>& in = ctx.in(0).shape;
  if (!in) {
    const bool sizes_are_shape =
        sizes && !scales && a.axes.empty() && a.policy == AspectPolicy::kStretch;
    ctx.set_output(
        0, dtype,
        sizes_are_shape ? std::optional(ir::to_sym_shape(sizes->to_int64_vector())) : std::nullopt);
    return {};
  }
  if (unknown) {
    SymShape out = *in;
    QF_ASSIGN_OR_RETURN(std::vector<int> axes, resize_axes(ctx.node, a, in->size()));
    for (int ax : axes) out[static_cast<size_t>(ax)] = Dim{};
    ctx.set_output(0, dtype, std::move(out));
    return {};
  }
  QF_ASSIGN_OR_RETURN(Geometry g, resize_geometry(ctx.node, a, *in, scales, sizes));
  QF_RETURN_IF_ERROR(ir::check_element_count(ctx, g.out));
  ctx.set_output(0, dtype, std::move(g.out));
  return {};
}

// ---------------------------------------------------------------------------------------------
// Kernel.

struct Tap {
  int64_t index;
  double weight;
};

// Where output index x along an axis lies in input coordinates. `length_resized` is
// input length * scale, not rounded: the ONNX reference and ONNX Runtime use it so.
double original_coordinate(Coord c, double x, double scale, int64_t in_len, int64_t out_len,
                           double roi_start, double roi_end) {
  const double in = static_cast<double>(in_len);
  const double length_resized = in * scale;
  switch (c) {
    case Coord::kHalfPixel:
      return (x + 0.5) / scale - 0.5;
    case Coord::kHalfPixelSymmetric: {
      const double adjustment = static_cast<double>(out_len) / length_resized;
      const double offset = in / 2.0 * (1.0 - adjustment);
      return offset + (x + 0.5) / scale - 0.5;
    }
    case Coord::kPytorchHalfPixel:
      return out_len > 1 ? (x + 0.5) / scale - 0.5 : 0.0;
    case Coord::kAlignCorners:
      return length_resized == 1.0 ? 0.0 : x * (in - 1.0) / (length_resized - 1.0);
    case Coord::kAsymmetric:
      return x / scale;
    case Coord::kTfHalfPixelForNn:
      return (x + 0.5) / scale;
    case Coord::kTfCropAndResize: {
      const double span = roi_end - roi_start;
      const double xo = length_resized == 1.0 ? span * (in - 1.0) / 2.0
                                              : x * span * (in - 1.0) / (length_resized - 1.0);
      return xo + roi_start * (in - 1.0);
    }
  }
  return 0.0;
}

int64_t nearest_index(Nearest mode, double xo, double scale) {
  const double f = std::floor(xo);
  if (xo == f) return static_cast<int64_t>(f);
  const double frac = xo - f;
  switch (mode) {
    case Nearest::kRoundPreferFloor:
      return static_cast<int64_t>(frac <= 0.5 ? f : f + 1);
    case Nearest::kRoundPreferCeil:
      return static_cast<int64_t>(frac < 0.5 ? f : f + 1);
    case Nearest::kFloor:
      return static_cast<int64_t>(f);
    case Nearest::kCeil:
      return static_cast<int64_t>(f + 1);
    case Nearest::kSimple:
      return static_cast<int64_t>(scale < 1.0 ? f + 1 : f);
  }
  return static_cast<int64_t>(f);
}

// Keys' cubic convolution weights for the four taps floor(x) - 1 .. floor(x) + 2.
std::array<double, 4> cubic_weights(double r, double A) {
  auto near = [A](double t) { return ((A + 2) * t - (A + 3)) * t * t + 1; };       // |t| <= 1
  auto far = [A](double t) { return ((A * t - 5 * A) * t + 8 * A) * t - 4 * A; };  // 1 < |t| < 2
  return {far(r + 1), near(r), near(1 - r), far(2 - r)};
}

// The taps of every output index along one axis; `outside` marks tf_crop_and_resize samples
// that fall outside the input (they take the extrapolation value).
struct AxisTaps {
  std::vector<std::vector<Tap>> taps;
  std::vector<bool> outside;
};

AxisTaps axis_taps(const ResizeAttrs& a, int64_t in_len, int64_t out_len, double scale,
                   double roi_start, double roi_end) {
  AxisTaps t;
  t.taps.resize(static_cast<size_t>(out_len));
  t.outside.assign(static_cast<size_t>(out_len), false);
  auto clamp = [in_len](int64_t i) { return std::clamp<int64_t>(i, 0, in_len - 1); };
  for (int64_t x = 0; x < out_len; ++x) {
    const double xo = original_coordinate(a.coord, static_cast<double>(x), scale, in_len, out_len,
                                          roi_start, roi_end);
    std::vector<Tap>& taps = t.taps[static_cast<size_t>(x)];
    if (a.coord == Coord::kTfCropAndResize && (xo < 0 || xo > static_cast<double>(in_len - 1))) {
      t.outside[static_cast<size_t>(x)] = true;
      continue;
    }
    const double f = std::floor(xo);
    const int64_t base = static_cast<int64_t>(f);
    const double r = xo - f;
    switch (a.mode) {
      case Mode::kNearest:
        taps.push_back({clamp(nearest_index(a.nearest, xo, scale)), 1.0});
        break;
      case Mode::kLinear:
        taps.push_back({clamp(base), 1.0 - r});
        taps.push_back({clamp(base + 1), r});
        break;
      case Mode::kCubic: {
        std::array<double, 4> w = cubic_weights(r, a.cubic_a);
        if (a.exclude_outside) {
          double sum = 0;
          for (int k = 0; k < 4; ++k) {
            const int64_t i = base - 1 + k;
            if (i < 0 || i >= in_len) w[static_cast<size_t>(k)] = 0;
            sum += w[static_cast<size_t>(k)];
          }
          for (double& v : w) v /= sum;
        }
        for (int k = 0; k < 4; ++k)
          taps.push_back({clamp(base - 1 + k), w[static_cast<size_t>(k)]});
        break;
      }
    }
    // Exact zero weights add nothing; dropping them keeps untouched axes at one tap.
    std::erase_if(taps, [](const Tap& tap) { return tap.weight == 0.0; });
  }
  return t;
}

// Weighted sum over the taps of axes d.. for the element at `offset` of axes before d.
double gather_taps(const std::vector<const std::vector<Tap>*>& taps,
                   const std::vector<int64_t>& strides, const std::vector<double>& x, size_t d,
                   int64_t offset) {
  if (d == taps.size()) return x[static_cast<size_t>(offset)];
  double sum = 0;
  for (const Tap& t : *taps[d]) {
    sum += t.weight * gather_taps(taps, strides, x, d + 1, offset + t.index * strides[d]);
  }
  return sum;
}

template <typename T>
T store(double v) {
  if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
    // Interpolated integers round to nearest and saturate instead of wrapping.
    const double r = std::nearbyint(v);
    return static_cast<T>(std::clamp(r, static_cast<double>(std::numeric_limits<T>::lowest()),
                                     static_cast<double>(std::numeric_limits<T>::max())));
  } else {
    return from_double<T>(v);
  }
}

Status resize_reference(ir::KernelContext& ctx) {
  const Tensor& x = ctx.in(0);
  Tensor& y = ctx.out(0);
  QF_ASSIGN_OR_RETURN(ResizeAttrs a, parse_attrs(ctx.node));
  auto read = [&](size_t i) -> const Tensor* {
    return ctx.has_input(i) && ctx.in(i).numel() > 0 ? &ctx.in(i) : nullptr;
  };
  QF_ASSIGN_OR_RETURN(Geometry g,
                      resize_geometry(ctx.node, a, ir::to_sym_shape(x.shape()), read(2), read(3)));
  if (ir::to_concrete(g.out) != y.shape()) return ctx.error("output shape does not match");
  const size_t rank = static_cast<size_t>(x.rank());
  for (size_t d = 0; d < rank; ++d) {
    if (x.shape()[d] == 0 && y.shape()[d] > 0) {
      return ctx.error("cannot resize the empty axis {} to {}", d, y.shape()[d]);
    }
    if (a.antialias && a.mode != Mode::kNearest && g.scale[d] < 1.0) {
      return ctx.unsupported_here("antialiased downsampling is not supported");
    }
  }
  if (y.numel() == 0) return {};

  std::vector<double> roi_start(rank, 0.0), roi_end(rank, 1.0);
  if (a.coord == Coord::kTfCropAndResize) {
    const Tensor* roi = read(1);
    QF_ASSIGN_OR_RETURN(std::vector<int> axes, resize_axes(ctx.node, a, rank));
    if (!roi || roi->numel() != static_cast<int64_t>(2 * axes.size())) {
      return ctx.error("tf_crop_and_resize needs roi with {} entries", 2 * axes.size());
    }
    for (size_t i = 0; i < axes.size(); ++i) {
      roi_start[static_cast<size_t>(axes[i])] = roi->element_as_double(static_cast<int64_t>(i));
      roi_end[static_cast<size_t>(axes[i])] =
          roi->element_as_double(static_cast<int64_t>(i + axes.size()));
    }
  }
  std::vector<AxisTaps> axis(rank);
  for (size_t d = 0; d < rank; ++d) {
    axis[d] = axis_taps(a, x.shape()[d], y.shape()[d], g.scale[d], roi_start[d], roi_end[d]);
  }

  std::vector<double> src(static_cast<size_t>(x.numel()));
  visit_dtype(x.dtype(), [&]<typename T>() {
    const T* p = x.data<T>();
    for (size_t i = 0; i < src.size(); ++i) src[i] = to_double(p[i]);
  });
  const std::vector<int64_t> strides = ir::strides_of(x.shape());
  const Shape& out_shape = y.shape();
  const bool ok = visit_dtype(y.dtype(), [&]<typename T>() {
    T* dst = y.data<T>();
    std::vector<int64_t> idx(rank, 0);
    std::vector<const std::vector<Tap>*> taps(rank);
    for (int64_t i = 0; i < y.numel(); ++i) {
      bool outside = false;
      for (size_t d = 0; d < rank; ++d) {
        const size_t k = static_cast<size_t>(idx[d]);
        outside = outside || axis[d].outside[k];
        taps[d] = &axis[d].taps[k];
      }
      dst[i] = store<T>(outside ? a.extrapolation : gather_taps(taps, strides, src, 0, 0));
      for (size_t d = rank; d-- > 0;) {
        if (++idx[d] < out_shape[d]) break;
        idx[d] = 0;
      }
    }
  });
  if (!ok) return ctx.error("input has no element type");
  return {};
}

QF_REGISTER_OP({.op_type = "Resize",
                .infer = resize_infer,
                .reference = resize_reference,
                .canonicalize = resize10_canonicalize,
                .min_opset = 10});
QF_REGISTER_OP({.op_type = "Upsample",
                .infer = resize_infer,
                .reference = resize_reference,
                .canonicalize = upsample_canonicalize,
                .min_opset = 7,
                .max_opset = 10});

}  // namespace
}  // namespace qf::ops
