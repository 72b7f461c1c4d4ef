// A Mul or Div by a constant that varies only along the output-channel axis, right after Conv /
// ConvTranspose / Gemm, scales each output channel: Conv(x, W, B)[m] * c[m] equals
// Conv(x, W[m] * c[m], B[m] * c[m]), since channel m is a sum of products with W[m] plus B[m].
// Folding the scale into the weights removes a float elementwise node and, more importantly,
// lets the BatchNormalization that PyTorch's QAT export of Conv+BN puts after
// Conv(x, W*f) -> Div(f) fold into the Conv too (batch_norm_folding needs BN to read the Conv).
//
// Each rule is anchored at the Mul/Div: Mul accepts the constant on either side, Div only as the
// divisor (c / y is no linear map of y). New weights and biases are computed first and the graph
// is touched only once they all exist, so a rule that declines changes nothing.
#include <cmath>
#include <type_traits>

#include "passes/passes.h"
#include "passes/rewrite.h"

namespace qf::passes {
namespace {

enum class ScaleOp { kMul, kDiv };

template <typename T>
constexpr bool kIsFloat = std::is_same_v<T, float> || std::is_same_v<T, double> ||
                          std::is_same_v<T, f16_t> || std::is_same_v<T, bf16_t>;

// w * c or w / c rounded once to T. Dividing by c, rather than multiplying by a rounded 1/c,
// is one rounding instead of two: for the QAT pattern, where W holds fl(W0 * f), fl(W / f) is
// W0 itself or its neighbour, while fl(W * fl(1 / f)) adds the reciprocal's rounding error on
// top and lands further from the W0 the BN folding should start from. f16/bf16 have no
// arithmetic of their own: f32 computes the product exactly and the quotient with enough extra
// bits that rounding it again to 11 (8) bits is the same as rounding the exact quotient once.
template <typename T>
T apply_scale(T w, T c, ScaleOp op) {
  if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>) {
    return op == ScaleOp::kMul ? w * c : w / c;
  } else {
    const float a = static_cast<float>(to_double(w)), b = static_cast<float>(to_double(c));
    return from_double<T>(op == ScaleOp::kMul ? a * b : a / b);
  }
}

// Every element of `t` scaled by scale[channel_of(i)], in t's own type; nullopt when t is not
// floating-point or a result is not finite (an overflow the unfolded graph might not hit).
template <typename ChannelOf>
std::optional<Tensor> scaled(const Tensor& t, const std::vector<double>& scale, ScaleOp op,
                             ChannelOf&& channel_of) {
  Tensor out(t.dtype(), t.shape());
  bool ok = false;
  visit_dtype(t.dtype(), [&]<typename T>() {
    if constexpr (kIsFloat<T>) {
      const T* src = t.data<T>();
      T* dst = out.data<T>();
      ok = true;
      for (int64_t i = 0; i < t.numel(); ++i) {
        dst[i] = apply_scale(src[i], from_double<T>(scale[channel_of(i)]), op);
        ok = ok && std::isfinite(to_double(dst[i]));
      }
    }
  });
  if (!ok) return std::nullopt;
  return out;
}

// The producer's rewritten inputs: new weights, and the new bias when it has one.
struct Folded {
  Tensor weights;
  std::optional<Tensor> bias;
};

// The shared part of the three rules: the anchor is Mul(y, c), Mul(c, y) or Div(y, c) where y is
// the only output of a producer the subclass accepts, read by the anchor alone, and c a constant
// of y's type, finite (and non-zero for Div), whose shape broadcasts along y's channel axis (1)
// only. The subclass says how many channels the producer has and scales its weights and bias.
class FoldChannelScale : public Rule {
 public:
  Result<bool> apply(Rewriter& rw, ir::Node& node) const override {
    const bool mul = is_onnx_op(node, "Mul");
    if ((!mul && !is_onnx_op(node, "Div")) || node.inputs.size() != 2 || !node.has_output(0)) {
      return false;
    }
    const ScaleOp op = mul ? ScaleOp::kMul : ScaleOp::kDiv;
    ir::Graph& g = rw.graph();
    for (size_t k = 0; k < (mul ? 2u : 1u); ++k) {
      ir::Value* y = node.inputs[k];
      const ir::Value* c = node.inputs[1 - k];
      if (!y || !c || !c->is_constant() || y->is_constant() || !y->shape) continue;
      ir::Node* p = y->producer;
      if (!p || sole_consumer(g, y) != &node || !accepts(*p) || p->outputs.size() != 1 ||
          !dtype_is_float(y->dtype) || c->constant.dtype() != y->dtype || !p->has_input(1)) {
        continue;
      }
      const ir::Value* w = p->inputs[1];
      if (!w->is_constant() || w->constant.dtype() != y->dtype) continue;
      const std::optional<int64_t> channels = output_channels(*p, w->constant);
      const ir::SymShape& out = *y->shape;
      if (!channels || *channels <= 0 || out.size() < 2 ||
          (out[1].is_known() && out[1].value != *channels)) {
        continue;
      }
      const std::optional<int64_t> extent = extent_along(c->constant.shape(), out.size(), 1);
      if (!extent || (*extent != *channels && *extent != 1)) continue;
      const std::optional<std::vector<double>> values = float_constant(c);
      if (!values || values->empty() || !usable(*values, op)) continue;
      const std::optional<Folded> folded = fold(*p, per_channel(*values, *channels), op);
      if (!folded) continue;
      g.set_input(p, 1, g.add_constant(w->name + "_scaled", folded->weights));
      if (folded->bias) {
        g.set_input(p, 2, g.add_constant(p->inputs[2]->name + "_scaled", *folded->bias));
      }
      take_output(rw, *p, 0, node.outputs[0], {&node});
      return true;
    }
    return false;
  }

 protected:
  virtual bool accepts(const ir::Node& p) const = 0;
  virtual std::optional<int64_t> output_channels(const ir::Node& p, const Tensor& w) const = 0;
  // p's weights and bias scaled per output channel, or nullopt when they cannot be.
  virtual std::optional<Folded> fold(const ir::Node& p, const std::vector<double>& scale,
                                     ScaleOp op) const = 0;

  // A bias of one value per channel (Conv's B), scaled; nullopt inside when p has none. False
  // when it is there but not a constant of w's type with `channels` elements.
  static bool scaled_channel_bias(const ir::Node& p, const std::vector<double>& scale, ScaleOp op,
                                  std::optional<Tensor>& out) {
    out.reset();
    if (!p.has_input(2)) return true;
    const ir::Value* b = p.inputs[2];
    if (!b->is_constant() || b->constant.dtype() != p.inputs[1]->constant.dtype() ||
        b->constant.numel() != static_cast<int64_t>(scale.size())) {
      return false;
    }
    out = scaled(b->constant, scale, op, [](int64_t i) { return static_cast<size_t>(i); });
    return out.has_value();
  }

 private:
  // Multiplying by any finite value keeps the result; dividing needs a non-zero divisor too (the
  // unfolded graph's inf/NaN from x / 0 is not something the weights can reproduce).
  static bool usable(const std::vector<double>& values, ScaleOp op) {
    for (double v : values) {
      if (!std::isfinite(v) || (op == ScaleOp::kDiv && v == 0.0)) return false;
    }
    return true;
  }
};

// The ONNX op, or its qforge::Fused* form with no residual or activation yet: then the fused
// node's inputs and output are the ONNX op's.
bool is_plain(const ir::Node& p, std::string_view onnx_op, std::string_view fused_op) {
  if (is_onnx_op(p, onnx_op)) return true;
  return p.domain == ops::kFusedDomain && p.op_type == fused_op && !has_residual(p) &&
         !has_activation(p);
}

// Conv: W is [M, C/group, k...], output channel m owns W[m] (whatever the groups).
class FoldChannelScaleIntoConv final : public FoldChannelScale {
 public:
  std::string_view name() const override { return "Conv*scale"; }

 protected:
  bool accepts(const ir::Node& p) const override { return is_plain(p, "Conv", "FusedConv"); }
  std::optional<int64_t> output_channels(const ir::Node&, const Tensor& w) const override {
    if (w.rank() < 3) return std::nullopt;
    return w.dim(0);
  }
  std::optional<Folded> fold(const ir::Node& p, const std::vector<double>& scale,
                             ScaleOp op) const override {
    const Tensor& w = p.inputs[1]->constant;
    const int64_t per_channel = w.numel() / w.dim(0);
    Folded f;
    std::optional<Tensor> weights =
        scaled(w, scale, op, [&](int64_t i) { return static_cast<size_t>(i / per_channel); });
    if (!weights || !scaled_channel_bias(p, scale, op, f.bias)) return std::nullopt;
    f.weights = std::move(*weights);
    return f;
  }
};

// ConvTranspose: W is [C, M/group, k...]; output channel g * (M/group) + j is fed by W[c, j] for
// the input channels c of group g, so with groups one output channel's weights sit in several
// rows of W, and a row holds M/group different output channels.
class FoldChannelScaleIntoConvTranspose final : public FoldChannelScale {
 public:
  std::string_view name() const override { return "ConvTranspose*scale"; }

 protected:
  bool accepts(const ir::Node& p) const override { return is_onnx_op(p, "ConvTranspose"); }
  std::optional<int64_t> output_channels(const ir::Node& p, const Tensor& w) const override {
    const int64_t group = p.attrs.get_int("group", 1);
    if (w.rank() < 3 || group < 1 || w.dim(0) % group != 0) return std::nullopt;
    return w.dim(1) * group;
  }
  std::optional<Folded> fold(const ir::Node& p, const std::vector<double>& scale,
                             ScaleOp op) const override {
    const Tensor& w = p.inputs[1]->constant;
    const int64_t group = p.attrs.get_int("group", 1);
    const int64_t in_per_group = w.dim(0) / group, out_per_group = w.dim(1);
    const int64_t kernel = w.numel() / (w.dim(0) * w.dim(1));
    Folded f;
    std::optional<Tensor> weights = scaled(w, scale, op, [&](int64_t i) {
      const int64_t c = i / (out_per_group * kernel), j = (i / kernel) % out_per_group;
      return static_cast<size_t>((c / in_per_group) * out_per_group + j);
    });
    if (!weights || !scaled_channel_bias(p, scale, op, f.bias)) return std::nullopt;
    f.weights = std::move(*weights);
    return f;
  }
};

// Gemm: Y [M, N] = alpha * A' B' + beta * C; the channels are Y's columns. Scaling column n of B'
// and of C by c[n] scales alpha * A' B' + beta * C by it, so alpha and beta stay as they are. C
// varying only along rows ([M, 1]) would need to grow to [M, N] under a per-column scale: declined.
class FoldChannelScaleIntoGemm final : public FoldChannelScale {
 public:
  std::string_view name() const override { return "Gemm*scale"; }

 protected:
  bool accepts(const ir::Node& p) const override { return is_plain(p, "Gemm", "FusedGemm"); }
  std::optional<int64_t> output_channels(const ir::Node& p, const Tensor& w) const override {
    if (w.rank() != 2) return std::nullopt;
    return p.attrs.get_int("transB", 0) != 0 ? w.dim(0) : w.dim(1);
  }
  std::optional<Folded> fold(const ir::Node& p, const std::vector<double>& scale,
                             ScaleOp op) const override {
    const Tensor& w = p.inputs[1]->constant;
    const bool trans_b = p.attrs.get_int("transB", 0) != 0;
    const int64_t cols = w.dim(1);
    Folded f;
    std::optional<Tensor> weights = scaled(w, scale, op, [&](int64_t i) {
      return static_cast<size_t>(trans_b ? i / cols : i % cols);
    });
    if (!weights) return std::nullopt;
    f.weights = std::move(*weights);
    if (p.has_input(2)) {
      if (p.inputs[2]->constant.dtype() != w.dtype()) return std::nullopt;
      f.bias = scaled_c(p.inputs[2], scale, op);
      if (!f.bias) return std::nullopt;
    }
    return f;
  }

 private:
  // C ([], [1], [N], [1, 1], [1, N], [M, N] ...) scaled per column. A one-element C under a
  // scale that differs per column becomes [N].
  static std::optional<Tensor> scaled_c(const ir::Value* c, const std::vector<double>& scale,
                                        ScaleOp op) {
    const int64_t n = static_cast<int64_t>(scale.size());
    if (!c->is_constant() || c->constant.rank() > 2) return std::nullopt;
    Tensor t = c->constant;
    const int64_t cols = t.rank() == 0 ? 1 : t.shape().back();
    if (cols != n && t.numel() == 1) {
      // Through double and back is exact for every float type.
      t = tensor_from_doubles(t.dtype(), {n},
                              std::vector<double>(static_cast<size_t>(n), t.element_as_double(0)));
    } else if (cols != n) {
      return std::nullopt;  // [M, 1] or a mismatch: not one value per column
    }
    return scaled(t, scale, op, [&](int64_t i) { return static_cast<size_t>(i % n); });
  }
};

}  // namespace

std::unique_ptr<Pass> make_channel_scale_folding_pass() {
  std::vector<std::unique_ptr<Rule>> rules;
  rules.push_back(std::make_unique<FoldChannelScaleIntoConv>());
  rules.push_back(std::make_unique<FoldChannelScaleIntoConvTranspose>());
  rules.push_back(std::make_unique<FoldChannelScaleIntoGemm>());
  return std::make_unique<RulePass>("channel-scale-folding", std::move(rules));
}

}  // namespace qf::passes
