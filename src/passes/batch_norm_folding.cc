// BatchNormalization after Conv / ConvTranspose / Gemm, in inference mode with constant
// parameters, is y = x * a + b per output channel (a = scale / sqrt(var + eps),
// b = B - mean * a): scaling the producer's weights by a and its bias by a, then adding b, gives
// the same result with one node fewer.
#include <cmath>

#include "passes/passes.h"
#include "passes/rewrite.h"

namespace qf::passes {
namespace {

struct ChannelAffine {
  std::vector<double> scale, shift;
};

// BN as a per-channel affine map over `channels` channels, when it can be folded.
std::optional<ChannelAffine> batch_norm_affine(const ir::Graph& g, const ir::Node& bn,
                                               int64_t channels) {
  if (bn.attrs.get_int("training_mode", 0) != 0 || bn.attrs.get_int("spatial", 1) == 0) {
    return std::nullopt;
  }
  if (!other_outputs_unused(g, bn, 0)) return std::nullopt;
  std::vector<double> p[5];
  for (size_t i = 1; i < 5; ++i) {
    auto v = bn.has_input(i) ? float_constant(bn.inputs[i]) : std::nullopt;
    if (!v || static_cast<int64_t>(v->size()) != channels) return std::nullopt;
    p[i] = std::move(*v);
  }
  const double eps = bn.attrs.get_float("epsilon", 1e-5f);
  ChannelAffine f{std::vector<double>(p[1].size()), std::vector<double>(p[1].size())};
  for (size_t c = 0; c < p[1].size(); ++c) {
    f.scale[c] = p[1][c] / std::sqrt(p[4][c] + eps);
    f.shift[c] = p[2][c] - p[3][c] * f.scale[c];
  }
  return f;
}

// The producer's constant weights, scaled: out[i] = w[i] * scale[channel_of(i)].
template <typename ChannelOf>
Tensor scaled(const Tensor& w, const std::vector<double>& scale, ChannelOf&& channel_of) {
  std::vector<double> v(static_cast<size_t>(w.numel()));
  for (int64_t i = 0; i < w.numel(); ++i) {
    v[static_cast<size_t>(i)] = w.element_as_double(i) * scale[channel_of(i)];
  }
  return tensor_from_doubles(w.dtype(), w.shape(), v);
}

// The bias after the fold: old * scale + shift per channel (old absent: 0).
Tensor folded_bias(DType dtype, const std::optional<std::vector<double>>& old,
                   const ChannelAffine& bn) {
  std::vector<double> v(bn.scale.size());
  for (size_t c = 0; c < v.size(); ++c) {
    const double b = !old ? 0.0 : (old->size() == 1 ? (*old)[0] : (*old)[c]);
    v[c] = b * bn.scale[c] + bn.shift[c];
  }
  return tensor_from_doubles(dtype, {static_cast<int64_t>(v.size())}, v);
}

// The shared part of the three rules: the BN (the anchor) must read the producer's only output,
// which nothing else reads; the producer-specific part says how many channels it has and
// rewrites its weights.
class FoldBatchNormInto : public Rule {
 public:
  Result<bool> apply(Rewriter& rw, ir::Node& bn) const override {
    if (!is_onnx_op(bn, "BatchNormalization") || !bn.has_input(0) || !bn.has_output(0)) {
      return false;
    }
    ir::Value* x = bn.inputs[0];
    ir::Node* p = x->producer;
    if (!p || sole_consumer(rw.graph(), x) != &bn || !is_onnx_op(*p, producer_op()) ||
        p->outputs.size() != 1 || !p->has_input(1) || !dtype_is_float(x->dtype)) {
      return false;
    }
    const ir::Value* w = p->inputs[1];
    if (!w->is_constant() || w->constant.dtype() != x->dtype) return false;
    const std::optional<int64_t> channels = output_channels(*p, w->constant);
    if (!channels || *channels <= 0) return false;
    const std::optional<ChannelAffine> affine = batch_norm_affine(rw.graph(), bn, *channels);
    if (!affine || !fold(rw.graph(), *p, *affine)) return false;
    take_output(rw, *p, 0, bn.outputs[0], {&bn});
    return true;
  }

 protected:
  virtual std::string_view producer_op() const = 0;
  virtual std::optional<int64_t> output_channels(const ir::Node& p, const Tensor& w) const = 0;
  // Rewrites p's weights and bias, or returns false having changed nothing.
  virtual bool fold(ir::Graph& g, ir::Node& p, const ChannelAffine& bn) const = 0;

  // p's bias input `i` as doubles: nullopt inside when absent; false when present but not a
  // constant of 1 or `channels` elements.
  static bool read_bias(const ir::Node& p, size_t i, size_t channels,
                        std::optional<std::vector<double>>& out) {
    out.reset();
    if (!p.has_input(i)) return true;
    out = float_constant(p.inputs[i]);
    return out && (out->size() == channels || out->size() == 1) &&
           p.inputs[i]->constant.dtype() == p.inputs[1]->constant.dtype();
  }
};

// Conv: W is [M, C/group, k...], output channel m owns W[m].
class FoldBatchNormIntoConv final : public FoldBatchNormInto {
 public:
  std::string_view name() const override { return "Conv+BatchNormalization"; }

 protected:
  std::string_view producer_op() const override { return "Conv"; }
  std::optional<int64_t> output_channels(const ir::Node&, const Tensor& w) const override {
    if (w.rank() < 3) return std::nullopt;
    return w.dim(0);
  }
  bool fold(ir::Graph& g, ir::Node& p, const ChannelAffine& bn) const override {
    const Tensor& w = p.inputs[1]->constant;
    std::optional<std::vector<double>> bias;
    if (!read_bias(p, 2, bn.scale.size(), bias) || (bias && bias->size() != bn.scale.size())) {
      return false;
    }
    const int64_t per_channel = w.numel() / w.dim(0);
    Tensor new_w =
        scaled(w, bn.scale, [&](int64_t i) { return static_cast<size_t>(i / per_channel); });
    g.set_input(&p, 1, g.add_constant(p.inputs[1]->name + "_bn", std::move(new_w)));
    g.set_input(&p, 2,
                g.add_constant(p.outputs[0]->name + "_bias_bn", folded_bias(w.dtype(), bias, bn)));
    return true;
  }
};

// ConvTranspose: W is [C, M/group, k...]; output channel g * (M/group) + j is fed by W[c, j] for
// the input channels c of group g.
class FoldBatchNormIntoConvTranspose final : public FoldBatchNormInto {
 public:
  std::string_view name() const override { return "ConvTranspose+BatchNormalization"; }

 protected:
  std::string_view producer_op() const override { return "ConvTranspose"; }
  std::optional<int64_t> output_channels(const ir::Node& p, const Tensor& w) const override {
    const int64_t group = p.attrs.get_int("group", 1);
    if (w.rank() < 3 || group < 1 || w.dim(0) % group != 0) return std::nullopt;
    return w.dim(1) * group;
  }
  bool fold(ir::Graph& g, ir::Node& p, const ChannelAffine& bn) const override {
    const Tensor& w = p.inputs[1]->constant;
    std::optional<std::vector<double>> bias;
    if (!read_bias(p, 2, bn.scale.size(), bias) || (bias && bias->size() != bn.scale.size())) {
      return false;
    }
    const int64_t group = p.attrs.get_int("group", 1);
    const int64_t in_per_group = w.dim(0) / group, out_per_group = w.dim(1);
    const int64_t kernel = w.numel() / (w.dim(0) * w.dim(1));
    Tensor new_w = scaled(w, bn.scale, [&](int64_t i) {
      const int64_t c = i / (out_per_group * kernel), j = (i / kernel) % out_per_group;
      return static_cast<size_t>((c / in_per_group) * out_per_group + j);
    });
    g.set_input(&p, 1, g.add_constant(p.inputs[1]->name + "_bn", std::move(new_w)));
    g.set_input(&p, 2,
                g.add_constant(p.outputs[0]->name + "_bias_bn", folded_bias(w.dtype(), bias, bn)));
    return true;
  }
};

// Gemm: Y [M, N] = alpha * A' B' + beta * C; BN's channels are Y's columns, so column n of B'
// scales by a[n] and the new C (beta 1) is beta * C * a + b. C must not vary along M.
class FoldBatchNormIntoGemm final : public FoldBatchNormInto {
 public:
  std::string_view name() const override { return "Gemm+BatchNormalization"; }

 protected:
  std::string_view producer_op() const override { return "Gemm"; }
  std::optional<int64_t> output_channels(const ir::Node& p, const Tensor& w) const override {
    if (w.rank() != 2) return std::nullopt;
    return p.attrs.get_int("transB", 0) != 0 ? w.dim(0) : w.dim(1);
  }
  bool fold(ir::Graph& g, ir::Node& p, const ChannelAffine& bn) const override {
    const Tensor& w = p.inputs[1]->constant;
    const size_t n = bn.scale.size();
    std::optional<std::vector<double>> c;
    if (!read_bias(p, 2, n, c)) return false;
    if (c && c->size() == n && n > 1) {
      // [N] or [1, N] broadcast along rows; [N, 1] (N rows) would not.
      const Shape& cs = p.inputs[2]->constant.shape();
      if (!(cs.size() == 1 || (cs.size() == 2 && cs[0] == 1))) return false;
    }
    const double beta = p.attrs.get_float("beta", 1.0f);
    if (c) {
      for (double& v : *c) v *= beta;
    }
    const bool trans_b = p.attrs.get_int("transB", 0) != 0;
    const int64_t cols = w.dim(1);
    Tensor new_w = scaled(
        w, bn.scale, [&](int64_t i) { return static_cast<size_t>(trans_b ? i / cols : i % cols); });
    g.set_input(&p, 1, g.add_constant(p.inputs[1]->name + "_bn", std::move(new_w)));
    g.set_input(&p, 2,
                g.add_constant(p.outputs[0]->name + "_bias_bn", folded_bias(w.dtype(), c, bn)));
    p.attrs.set("beta", 1.0f);
    return true;
  }
};

}  // namespace

std::unique_ptr<Pass> make_batch_norm_folding_pass() {
  std::vector<std::unique_ptr<Rule>> rules;
  rules.push_back(std::make_unique<FoldBatchNormIntoConv>());
  rules.push_back(std::make_unique<FoldBatchNormIntoConvTranspose>());
  rules.push_back(std::make_unique<FoldBatchNormIntoGemm>());
  return std::make_unique<RulePass>("batch-norm-folding", std::move(rules));
}

}  // namespace qf::passes
