// Lowering of graph nodes to oneDNN primitives.
//
// Each lowering first checks that oneDNN can run the node as it is (element types, constant
// weights, shapes) and creates the primitive descriptor, and only then touches the plan, so that
// "no" leaves nothing behind and the node simply runs its reference kernel.
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <limits>
#include <optional>
#include <tuple>

#include "backends/cpu/builder.h"
#include "ops/fused.h"
#include "ops/nn_common.h"
#include "quant/non_negative.h"
#include "quant/weight_quantizer.h"

namespace qf::cpu {

namespace {

using dnnl::algorithm;
using dims = dnnl::memory::dims;
using tag = dnnl::memory::format_tag;

// Declines the node: it runs its reference kernel and `why` says why.
template <typename... Args>
Result<bool> decline(std::string* why, fmt::format_string<Args...> f, Args&&... args) {
  *why = fmt::format(f, std::forward<Args>(args)...);
  return false;
}

dims to_dims(const Shape& s) {
  return dims(s.begin(), s.end());
}

md any_md(const Shape& s, dt t) {
  return md(to_dims(s), t, tag::any);
}

dnnl::primitive_attr make_attr(const dnnl::post_ops* ops = nullptr) {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  if (ops) attr.set_post_ops(*ops);
  return attr;
}

std::string label_of(const ir::Node& n) {
  return n.name.empty() ? n.label() : n.name;
}

std::string impl_str(const std::string& signature, const std::string& impl_info) {
  return fmt::format("{} [onednn {}]", signature, impl_info);
}

bool is_f32(const PlanBuilder& b, const ir::Value* v) {
  return b.dtype(v) == DType::kF32;
}

// ---- activations: oneDNN eltwise algorithms, as post-ops or standalone ----

using EltwiseOp = std::tuple<algorithm, float, float>;

std::optional<std::vector<EltwiseOp>> eltwise_ops(const ops::ActivationSpec& a) {
  using ops::Activation;
  switch (a.kind) {
    case Activation::kNone:
      return std::vector<EltwiseOp>{};
    case Activation::kRelu:
      return std::vector<EltwiseOp>{{algorithm::eltwise_relu, 0.f, 0.f}};
    case Activation::kLeakyRelu:
      return std::vector<EltwiseOp>{{algorithm::eltwise_relu, a.alpha, 0.f}};
    case Activation::kClip:
      return std::vector<EltwiseOp>{{algorithm::eltwise_clip, a.alpha, a.beta}};
    case Activation::kSigmoid:
      return std::vector<EltwiseOp>{{algorithm::eltwise_logistic, 0.f, 0.f}};
    case Activation::kTanh:
      return std::vector<EltwiseOp>{{algorithm::eltwise_tanh, 0.f, 0.f}};
    case Activation::kHardSigmoid:
      return std::vector<EltwiseOp>{{algorithm::eltwise_linear, a.alpha, a.beta},
                                    {algorithm::eltwise_clip, 0.f, 1.f}};
    case Activation::kHardSwish:
      return std::vector<EltwiseOp>{{algorithm::eltwise_hardswish, 0.f, 0.f}};
    case Activation::kSiLU:
      return std::vector<EltwiseOp>{{algorithm::eltwise_swish, 1.f, 0.f}};
    case Activation::kGELU:
      return std::vector<EltwiseOp>{{algorithm::eltwise_gelu_erf, 0.f, 0.f}};
  }
  return std::nullopt;
}

// What a standalone unary node computes, as eltwise ops; nullopt when oneDNN has no match.
std::optional<std::vector<EltwiseOp>> unary_ops(PlanBuilder& b, const ir::Node& n) {
  const std::string& op = n.op_type;
  const ir::Attributes& at = n.attrs;
  auto one = [](algorithm alg, float alpha = 0.f, float beta = 0.f) {
    return std::vector<EltwiseOp>{{alg, alpha, beta}};
  };
  if (op == "Relu") return one(algorithm::eltwise_relu);
  if (op == "LeakyRelu") return one(algorithm::eltwise_relu, at.get_float("alpha", 0.01f));
  if (op == "Sigmoid") return one(algorithm::eltwise_logistic);
  if (op == "Tanh") return one(algorithm::eltwise_tanh);
  if (op == "Elu") return one(algorithm::eltwise_elu, at.get_float("alpha", 1.0f));
  if (op == "Exp") return one(algorithm::eltwise_exp);
  if (op == "Log") return one(algorithm::eltwise_log);
  if (op == "Sqrt") return one(algorithm::eltwise_sqrt);
  if (op == "Abs") return one(algorithm::eltwise_abs);
  if (op == "Neg") return one(algorithm::eltwise_linear, -1.f, 0.f);
  if (op == "HardSwish") return one(algorithm::eltwise_hardswish);
  if (op == "HardSigmoid") {
    return std::vector<EltwiseOp>{
        {algorithm::eltwise_linear, at.get_float("alpha", 0.2f), at.get_float("beta", 0.5f)},
        {algorithm::eltwise_clip, 0.f, 1.f}};
  }
  if (op == "Gelu") {
    const std::string approx = at.get_string("approximate", "none");
    if (approx == "none") return one(algorithm::eltwise_gelu_erf);
    if (approx == "tanh") return one(algorithm::eltwise_gelu_tanh);
    return std::nullopt;
  }
  if (op == "Clip") {
    // Opset >= 11 form (canonicalised): min and max are optional constant inputs.
    float lo = -std::numeric_limits<float>::infinity();
    float hi = std::numeric_limits<float>::infinity();
    for (size_t i = 1; i <= 2; ++i) {
      if (!n.has_input(i)) continue;
      const Tensor* t = b.known(n.inputs[i]);
      if (!t || t->numel() != 1 || t->dtype() != DType::kF32) return std::nullopt;
      (i == 1 ? lo : hi) = t->data<float>()[0];
    }
    if (n.opset < 11) {
      lo = at.get_float("min", lo);
      hi = at.get_float("max", hi);
    }
    if (lo > hi) return std::nullopt;  // ONNX then gives max everywhere; oneDNN would not
    return one(algorithm::eltwise_clip, lo, hi);
  }
  return std::nullopt;
}

void append_eltwise(dnnl::post_ops& po, const std::vector<EltwiseOp>& ops) {
  for (const auto& [alg, alpha, beta] : ops) po.append_eltwise(1.f, alg, alpha, beta);
}

// "Conv+Add+Relu": the pattern a fused node stands for.
std::string fused_pattern(const std::string& base, bool residual, const ops::ActivationSpec& a) {
  std::string s = base;
  if (residual) s += "+Add";
  if (a.kind != ops::Activation::kNone) s += fmt::format("+{}", ops::activation_name(a.kind));
  return s;
}

// Whether the residual Z can be summed in place: the output takes over Z's arena buffer, which
// no later step reads. Z may have other readers that ran before (a ResNet block's input is also
// the input of its first convolution); the arena then sees one buffer live from Z's producer to
// the output's last reader, so nothing else is placed over it in between.
bool residual_in_place(PlanBuilder& b, const ir::Node& n, const ir::Value* z) {
  const int zb = b.canonical(z);
  return zb >= 0 && b.last_read_by(zb, n, ops::kFusedResidualInput);
}

// How a fused residual Z enters the output buffer before the sum post-op reads it back: in
// `type` (the output's own type, or for an int8 output Z's int8 type) with `scale`.
struct SumSpec {
  dt type = dt::f32;
  float scale = 1.f;
};

// Output buffer (layout `dst`, scale `dst_scale`) of a primitive whose post-ops include a sum of
// the residual Z: Z's own buffer when it can be taken over, else a converted copy of Z.
Result<int> residual_destination(PlanBuilder& b, const ir::Node& n, const ir::Value* z,
                                 const md& dst, float dst_scale, const SumSpec& sum,
                                 const Shape& shape) {
  const int zb = b.canonical(z);
  if (b.buffer(zb).desc.is_zero()) {
    return internal_error("{}: residual '{}' has no oneDNN layout", n.label(), z->name);
  }
  const md as_sum = with_dt(dst, sum.type);
  const DType out_type = from_dnnl(dst.data_type());
  if (residual_in_place(b, n, z) && b.buffer(zb).desc == as_sum &&
      b.buffer(zb).scale == sum.scale) {
    return sum.type == dst.data_type() && dst_scale == sum.scale
               ? zb
               : b.alias(zb, dst, out_type, shape, dst_scale);
  }
  const int out = b.new_arena(dst, out_type, shape, dst_scale);
  const int init = sum.type == dst.data_type() && dst_scale == sum.scale
                       ? out
                       : b.alias(out, as_sum, from_dnnl(sum.type), shape, sum.scale);
  QF_RETURN_IF_ERROR(b.add_reorder(zb, init, "residual " + z->name));
  return out;
}

// ---- INT8 policy ----

// Whether `v` is known to be >= 0 (it then travels as u8, with twice the resolution of s8).
bool non_negative(PlanBuilder& b, const ir::Value* v) {
  return quant::known_non_negative(*v, [&b](const ir::Value* c) { return b.known(c); });
}

// Whether the output `y` of an int8 primitive stays int8: it has a scale, is no graph output,
// and every consumer reads int8 (int8 convolutions and matmuls, pooling, reshapes). Other
// consumers would only convert it back.
bool stays_int8(PlanBuilder& b, const ir::Value* y) {
  if (!b.activation_scale(y) || y->consumers.empty()) return false;
  // A zero point travels through reorders, max pooling, reshapes and into convolutions and
  // matmuls as their source; averages and residual sums (oneDNN 2.6's sum has none) need f32.
  const bool zero_point = b.grid(y) && b.grid(y)->zero_point != 0;
  for (const ir::Value* out : b.graph().outputs) {
    if (out == y) return false;
  }
  for (const ir::Node* c : y->consumers) {
    const std::string& op = c->op_type;
    const bool fused = c->domain == ops::kFusedDomain;
    const bool compute = fused || op == "Conv" || op == "Gemm" || op == "MatMul";
    if (compute) {
      // As the data input or the residual, not as weights, bias or the second matmul operand.
      for (size_t i = 0; i < c->inputs.size(); ++i) {
        if (c->inputs[i] == y && i != 0 &&
            (zero_point || !(fused && i == ops::kFusedResidualInput))) {
          return false;
        }
      }
      continue;
    }
    if (op == "MaxPool" || op == "GlobalMaxPool" || op == "Flatten" || op == "Reshape" ||
        op == "Squeeze" || op == "Unsqueeze" || op == "Identity") {
      continue;
    }
    if (!zero_point && (op == "AveragePool" || op == "GlobalAveragePool")) continue;
    return false;
  }
  return true;
}

// The int8 type `v` is stored in when nothing stores it yet: the one its Q/DQ graph fixed, else
// u8 for values known to be >= 0 and s8 for the others.
dt int8_storage_type(PlanBuilder& b, const ir::Value* v) {
  const dt fixed = b.fixed_int8_type(v);
  if (fixed != dt::undef) return fixed;
  return non_negative(b, v) ? dt::u8 : dt::s8;
}

// The int8 type a primitive reads `x` in: the type it is stored in, or int8_storage_type.
dt int8_input_type(PlanBuilder& b, const ir::Value* x) {
  const md d = b.desc_of(x);
  if (!d.is_zero() && is_int8(d.data_type())) return d.data_type();
  return int8_storage_type(b, x);
}

// The types and scales one convolution or matmul runs with.
struct ComputeSpec {
  bool int8 = false;
  dt src = dt::f32, wei = dt::f32, dst = dt::f32;
  float src_scale = 1.f, dst_scale = 1.f;
  int32_t src_zero_point = 0, dst_zero_point = 0;  // int8 grids of a Q/DQ graph
  std::vector<float> output_scales;  // int8: per output channel, src scale x weight scale
  // int8: s8 weights with per-output-channel scales. quantize_per_channel_keeping_grid keeps
  // the int8 values of a Q/DQ graph's folded weights (-128 included).
  quant::QuantizedWeight weights;
  SumSpec sum;
};

// The output buffer of a convolution or matmul: the residual's when the primitive sums one,
// else a fresh arena buffer of the spec's type and scale.
Result<int> primitive_destination(PlanBuilder& b, const ir::Node& n, const ir::Value* z,
                                  const md& dst, const ComputeSpec& spec, const Shape& shape) {
  if (z) return residual_destination(b, n, z, dst, spec.dst_scale, spec.sum, shape);
  return b.new_arena(dst, from_dnnl(spec.dst), shape, spec.dst_scale, spec.dst_zero_point);
}

// (DNNL_ARG_*, buffer) of a convolution or matmul; `bias` < 0 when there is none.
std::vector<std::pair<int, int>> primitive_args(int src, int wei, int bias, int dst) {
  std::vector<std::pair<int, int>> args = {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, wei}};
  if (bias >= 0) args.emplace_back(DNNL_ARG_BIAS, bias);
  args.emplace_back(DNNL_ARG_DST, dst);
  return args;
}

// Decides `spec` for an int8 primitive reading `x`, writing `y`, optionally summing `z`, with
// weights `w` whose output channels lie along `axis`.
Status plan_int8(PlanBuilder& b, const ir::Value* x, const ir::Value* y, const ir::Value* z,
                 const ir::Value* w, int64_t axis, float alpha, ComputeSpec& spec) {
  spec.int8 = true;
  spec.src = int8_input_type(b, x);
  spec.src_scale = b.storage_scale(x, spec.src);
  spec.src_zero_point = b.storage_zero_point(x, spec.src);
  spec.wei = dt::s8;
  QF_ASSIGN_OR_RETURN(spec.weights, quant::quantize_per_channel_keeping_grid(
                                        *b.known(w), axis, fmt::format("weight '{}'", w->name)));
  for (float s : spec.weights.scales.span<float>()) {
    spec.output_scales.push_back(alpha * spec.src_scale * s);
  }
  spec.dst = dt::f32;
  if (stays_int8(b, y)) {
    spec.dst = int8_storage_type(b, y);
    spec.dst_scale = b.storage_scale(y, spec.dst);
    spec.dst_zero_point = b.storage_zero_point(y, spec.dst);
  }
  spec.sum = {spec.dst, 1.f};
  if (z && spec.dst != dt::f32) {
    const md zd = b.desc_of(z);
    dt zt = b.fixed_int8_type(z);
    if (!zd.is_zero() && is_int8(zd.data_type())) zt = zd.data_type();
    if (zt == dt::undef) zt = dt::s8;
    const float zs = b.storage_scale(z, zt);
    // oneDNN 2.6's sum post-op has no zero point: with one on Z or on the output, sum in f32.
    if (zs > 0 && b.storage_zero_point(z, zt) == 0 && spec.dst_zero_point == 0) {
      spec.sum = {zt, zs};
    } else {  // no scale for Z: keep this output in f32
      spec.dst = dt::f32;
      spec.dst_scale = 1.f;
      spec.dst_zero_point = 0;
      spec.sum = {dt::f32, 1.f};
    }
  }
  return {};
}

// Explains, on the kernel just added, why a convolution or matmul of an int8 engine runs in
// float: users of explicit quantization ask which layers fell back and why.
void note_if_float_in_int8_engine(PlanBuilder& b, const ComputeSpec& spec, const ir::Value* x,
                                  bool weights_constant) {
  if (spec.int8 || b.precision() != runtime::Precision::kINT8) return;
  if (!b.activation_scale(x)) {
    b.note_last_kernel(fmt::format(
        "fp32 in an int8 engine: input '{}' has no int8 scale (no Q/DQ pair in the graph, no "
        "calibration entry)",
        x->name));
  } else if (!weights_constant) {
    b.note_last_kernel("fp32 in an int8 engine: its second operand is not a constant weight");
  } else {
    b.note_last_kernel("fp32 in an int8 engine: its bias does not vary along the output columns");
  }
}

// Post-ops of a convolution or matmul: [sum Z] [activation] [requantize to an int8 output].
dnnl::primitive_attr compute_attr(const ComputeSpec& spec, bool residual,
                                  const std::vector<EltwiseOp>& act, int scale_mask) {
  dnnl::post_ops po;
  if (residual) {
    po.append_sum(spec.sum.scale, spec.sum.type == spec.dst ? dt::undef : spec.sum.type);
  }
  append_eltwise(po, act);
  if (spec.int8 && spec.dst != dt::f32) {
    po.append_eltwise(1.f, algorithm::eltwise_linear, 1.f / spec.dst_scale, 0.f);
  }
  dnnl::primitive_attr attr = make_attr(&po);
  if (spec.int8) attr.set_output_scales(scale_mask, spec.output_scales);
  if (spec.src_zero_point != 0) attr.set_zero_points(DNNL_ARG_SRC, 0, {spec.src_zero_point});
  if (spec.dst_zero_point != 0) attr.set_zero_points(DNNL_ARG_DST, 0, {spec.dst_zero_point});
  return attr;
}

std::string compute_signature(const std::string& base, const ComputeSpec& spec) {
  if (!spec.int8) return fmt::format("{}_{}", base, dt_tag(spec.src));
  return fmt::format("{}_{}{}_s32_{}", base, dt_tag(spec.src), dt_tag(spec.wei), dt_tag(spec.dst));
}

// ---- Conv / FusedConv ----

Result<bool> lower_conv(PlanBuilder& b, const ir::Node& n, std::string* why) {
  const bool fused = n.domain == ops::kFusedDomain;
  const ir::Value* x = n.inputs[0];
  const ir::Value* w = n.inputs[1];
  const ir::Value* bias = n.has_input(2) ? n.inputs[2] : nullptr;
  const ir::Value* z =
      fused && n.has_input(ops::kFusedResidualInput) ? n.inputs[ops::kFusedResidualInput] : nullptr;
  const ir::Value* y = n.outputs[0];
  ops::ActivationSpec act;
  if (fused) {
    QF_ASSIGN_OR_RETURN(act, ops::read_activation(n));
  }
  const auto act_ops = eltwise_ops(act);
  if (!act_ops) return decline(why, "activation has no oneDNN post-op");
  if (!is_f32(b, x)) return decline(why, "element type {}", dtype_tag(b.dtype(x)));
  const Tensor* wt = b.known(w);
  if (!wt || wt->dtype() != DType::kF32) return decline(why, "weights are not a f32 constant");
  const Tensor* bt = bias ? b.known(bias) : nullptr;
  if (bias && (!bt || bt->dtype() != DType::kF32)) {
    return decline(why, "bias is not a f32 constant");
  }
  const Shape& xs = b.shape(x);
  const Shape& ys = b.shape(y);
  const size_t rank = xs.size();
  if (rank < 3 || rank > 5) return decline(why, "rank {}", rank);
  if (shape_numel(xs) == 0 || shape_numel(ys) == 0) return decline(why, "empty tensor");

  const Shape kernel(wt->shape().begin() + 2, wt->shape().end());
  QF_ASSIGN_OR_RETURN(ops::WindowAttrs a, ops::read_window_attrs(n, rank - 2, kernel));
  QF_ASSIGN_OR_RETURN(ops::WindowGeometry g,
                      ops::window_geometry(n, a, Shape(xs.begin() + 2, xs.end())));
  const int64_t group = n.attrs.get_int("group", 1);
  const int64_t out_ch = wt->dim(0);
  Shape wdims = wt->shape();
  if (group > 1) {
    wdims.insert(wdims.begin(), group);
    wdims[1] = out_ch / group;
  }
  dims strides(g.strides.begin(), g.strides.end());
  dims dil, pl(g.pad_begin.begin(), g.pad_begin.end()), pr(g.pad_end.begin(), g.pad_end.end());
  for (int64_t d : g.dilations) dil.push_back(d - 1);

  ComputeSpec spec;
  if (b.precision() == runtime::Precision::kINT8 && b.activation_scale(x)) {
    QF_RETURN_IF_ERROR(plan_int8(b, x, y, z, w, 0, 1.f, spec));
  } else {
    spec.src = spec.wei = spec.dst = b.compute_dt();
    spec.sum = {spec.dst, 1.f};
  }
  const dnnl::primitive_attr attr = compute_attr(spec, z != nullptr, *act_ops, 1 << 1);
  const md bias_md = bias ? md({out_ch}, dt::f32, tag::a) : md();

  auto make_pd = [&](const md& dst) {
    dnnl::convolution_forward::desc d(dnnl::prop_kind::forward_inference,
                                      algorithm::convolution_direct, any_md(xs, spec.src),
                                      any_md(wdims, spec.wei), bias_md, dst, strides, dil, pl, pr);
    return dnnl::convolution_forward::primitive_desc(d, attr, b.engine());
  };
  dnnl::convolution_forward::primitive_desc pd;
  try {
    pd = make_pd(any_md(ys, spec.dst));
    // A residual summed in place needs the output in Z's layout; ask for it.
    if (z && residual_in_place(b, n, z)) {
      const md zd = b.desc_of(z);
      if (!zd.is_zero() && zd.data_type() == spec.sum.type &&
          with_dt(zd, spec.dst) != pd.dst_desc()) {
        try {
          pd = make_pd(with_dt(zd, spec.dst));
        } catch (const dnnl::error&) {
        }
      }
    }
  } catch (const dnnl::error& e) {
    return decline(why, "oneDNN has no convolution for it: {}", e.what());
  }

  QF_ASSIGN_OR_RETURN(int src, b.request(x, pd.src_desc()));
  int wei = -1;
  if (spec.int8) {
    QF_ASSIGN_OR_RETURN(
        wei, b.constant(spec.weights.values, plain_md(wdims, dt::s8), pd.weights_desc(), w));
  } else {
    QF_ASSIGN_OR_RETURN(wei, b.constant(*wt, plain_md(wdims, dt::f32), pd.weights_desc(), w));
  }
  int bia = -1;
  if (bias) {
    if (spec.int8) {  // oneDNN adds the bias to the accumulator, before the output scales
      Tensor scaled = bt->clone();
      for (int64_t i = 0; i < out_ch; ++i) {
        scaled.data<float>()[i] /= spec.output_scales[static_cast<size_t>(i)];
      }
      QF_ASSIGN_OR_RETURN(bia, b.constant(scaled, plain_md({out_ch}, dt::f32), pd.bias_desc()));
    } else {
      QF_ASSIGN_OR_RETURN(bia, b.constant(*bt, plain_md({out_ch}, dt::f32), pd.bias_desc(), bias));
    }
  }
  QF_ASSIGN_OR_RETURN(const int dst, primitive_destination(b, n, z, pd.dst_desc(), spec, ys));
  b.add_primitive(dnnl::convolution_forward(pd), primitive_args(src, wei, bia, dst), label_of(n),
                  pd.scratchpad_desc().get_size());
  b.set_value_buffer(y, dst);
  const std::string sig = compute_signature(fmt::format("conv{}d", rank - 2), spec);
  b.add_kernel(n, fused_pattern("Conv", z != nullptr, act), impl_str(sig, pd.impl_info_str()));
  note_if_float_in_int8_engine(b, spec, x, true);
  return true;
}

// ---- ConvTranspose: oneDNN deconvolution ----

Result<bool> lower_conv_transpose(PlanBuilder& b, const ir::Node& n, std::string* why) {
  const ir::Value* x = n.inputs[0];
  const ir::Value* w = n.inputs[1];
  const ir::Value* bias = n.has_input(2) ? n.inputs[2] : nullptr;
  const ir::Value* y = n.outputs[0];
  if (!is_f32(b, x)) return decline(why, "element type {}", dtype_tag(b.dtype(x)));
  const Tensor* wt = b.known(w);
  if (!wt || wt->dtype() != DType::kF32) return decline(why, "weights are not a f32 constant");
  const Tensor* bt = bias ? b.known(bias) : nullptr;
  if (bias && (!bt || bt->dtype() != DType::kF32)) {
    return decline(why, "bias is not a f32 constant");
  }
  const std::string auto_pad = n.attrs.get_string("auto_pad", "NOTSET");
  if ((auto_pad != "NOTSET" && !auto_pad.empty()) || n.attrs.has("output_shape")) {
    return decline(why, "auto_pad / output_shape");
  }
  const Shape& xs = b.shape(x);
  const Shape& ys = b.shape(y);
  const size_t rank = xs.size(), sp = rank - 2;
  if (rank < 3 || rank > 5 || shape_numel(xs) == 0 || shape_numel(ys) == 0) {
    return decline(why, "shape");
  }
  const int64_t group = n.attrs.get_int("group", 1);
  const int64_t in_ch = wt->dim(0), out_g = wt->dim(1), out_ch = out_g * group;
  if (group < 1 || in_ch % group != 0 || ys[1] != out_ch) return decline(why, "channels");
  const std::vector<int64_t> kernel(wt->shape().begin() + 2, wt->shape().end());
  const auto strides = n.attrs.get_ints("strides", std::vector<int64_t>(sp, 1));
  const auto dilations = n.attrs.get_ints("dilations", std::vector<int64_t>(sp, 1));
  const auto pads = n.attrs.get_ints("pads", std::vector<int64_t>(2 * sp, 0));
  if (strides.size() != sp || dilations.size() != sp || pads.size() != 2 * sp) {
    return decline(why, "attributes");
  }
  dims st(strides.begin(), strides.end()), dil, pl, pr;
  for (size_t d = 0; d < sp; ++d) {
    const int64_t extent = (kernel[d] - 1) * dilations[d] + 1;
    // output_padding (extra rows at the end) is the right padding it shortens.
    const int64_t right = (xs[2 + d] - 1) * strides[d] + extent - ys[2 + d] - pads[d];
    if (right < 0) return decline(why, "output_padding beyond the padding");
    dil.push_back(dilations[d] - 1);
    pl.push_back(pads[d]);
    pr.push_back(right);
  }
  // ONNX weights are [C_in, M / group, k...]; oneDNN's are [(group,) M / group, C_in / group,
  // k...]: the same bytes with the first two axes' strides swapped.
  const int64_t khw = shape_numel(kernel);
  Shape wdims;
  dims wstrides;
  if (group > 1) {
    wdims = {group, out_g, in_ch / group};
    wstrides = {(in_ch / group) * out_g * khw, khw, out_g * khw};
  } else {
    wdims = {out_ch, in_ch};
    wstrides = {khw, out_ch * khw};
  }
  int64_t s = 1;
  dims kstrides(kernel.size());
  for (size_t d = kernel.size(); d-- > 0;) {
    kstrides[d] = s;
    s *= kernel[d];
  }
  wdims.insert(wdims.end(), kernel.begin(), kernel.end());
  wstrides.insert(wstrides.end(), kstrides.begin(), kstrides.end());
  const md wdata(to_dims(wdims), dt::f32, wstrides);

  const dt c = b.compute_dt();
  dnnl::deconvolution_forward::primitive_desc pd;
  try {
    dnnl::deconvolution_forward::desc d(
        dnnl::prop_kind::forward_inference, algorithm::deconvolution_direct, any_md(xs, c),
        any_md(wdims, c), bias ? md({out_ch}, dt::f32, tag::a) : md(), any_md(ys, c), st, dil, pl,
        pr);
    pd = dnnl::deconvolution_forward::primitive_desc(d, make_attr(), b.engine());
  } catch (const dnnl::error& e) {
    return decline(why, "oneDNN has no deconvolution for it: {}", e.what());
  }
  QF_ASSIGN_OR_RETURN(const int src, b.request(x, pd.src_desc()));
  QF_ASSIGN_OR_RETURN(const int wei, b.constant(*wt, wdata, pd.weights_desc(), w));
  std::vector<std::pair<int, int>> args = {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, wei}};
  if (bias) {
    QF_ASSIGN_OR_RETURN(const int bia,
                        b.constant(*bt, plain_md({out_ch}, dt::f32), pd.bias_desc(), bias));
    args.emplace_back(DNNL_ARG_BIAS, bia);
  }
  const int dst = b.new_arena(pd.dst_desc(), from_dnnl(c), ys);
  args.emplace_back(DNNL_ARG_DST, dst);
  b.add_primitive(dnnl::deconvolution_forward(pd), std::move(args), label_of(n),
                  pd.scratchpad_desc().get_size());
  b.set_value_buffer(y, dst);
  b.add_kernel(n, n.op_type,
               impl_str(fmt::format("deconv{}d_{}", sp, dt_tag(c)), pd.impl_info_str()));
  return true;
}

// ---- Gemm / FusedGemm / MatMul / FusedMatMul: oneDNN matmul ----

Tensor scaled_f32(const Tensor& t, float s) {
  if (s == 1.f) return t;
  Tensor out = t.clone();
  for (float& v : out.span<float>()) v *= s;
  return out;
}

Result<bool> lower_matmul(PlanBuilder& b, const ir::Node& n, std::string* why) {
  const bool fused = n.domain == ops::kFusedDomain;
  const bool gemm = n.op_type == "Gemm" || n.op_type == "FusedGemm";
  const ir::Value* av = n.inputs[0];
  const ir::Value* bv = n.inputs[1];
  const ir::Value* cv = n.has_input(2) ? n.inputs[2] : nullptr;  // Gemm's C or the fused Bias
  const ir::Value* z =
      fused && n.has_input(ops::kFusedResidualInput) ? n.inputs[ops::kFusedResidualInput] : nullptr;
  const ir::Value* y = n.outputs[0];
  ops::ActivationSpec act;
  if (fused) {
    QF_ASSIGN_OR_RETURN(act, ops::read_activation(n));
  }
  const auto act_ops = eltwise_ops(act);
  if (!act_ops) return decline(why, "activation has no oneDNN post-op");
  if (!is_f32(b, av) || !is_f32(b, bv)) return decline(why, "element type is not f32");
  const Shape& as = b.shape(av);
  const Shape& bs = b.shape(bv);
  const Shape& ys = b.shape(y);
  if (as.size() < 2 || bs.size() < 2) return decline(why, "1-D operand");
  if (ys.size() > 6) return decline(why, "rank {}", ys.size());
  if (shape_numel(as) == 0 || shape_numel(bs) == 0 || shape_numel(ys) == 0) {
    return decline(why, "empty tensor");
  }
  const size_t rank = ys.size();
  auto pad = [&](const Shape& s) {
    Shape p(rank - s.size(), 1);
    p.insert(p.end(), s.begin(), s.end());
    return p;
  };
  const Tensor* bt = b.known(bv);
  float alpha = 1.f, beta = 1.f;
  bool trans_b = false;
  if (gemm) {
    if (n.attrs.get_int("transA", 0) != 0) return decline(why, "transA");
    alpha = n.attrs.get_float("alpha", 1.f);
    beta = n.attrs.get_float("beta", 1.f);
    trans_b = n.attrs.get_int("transB", 0) != 0;
    if (!bt) return decline(why, "B is not constant");
  }
  const int64_t n_out = ys.back();
  // Weights as [.., K, N] over B's bytes (a transposed B is a strided view).
  const Shape wshape = pad(trans_b ? Shape{bs[1], bs[0]} : bs);
  auto weights_md = [&](dt t) {
    if (!trans_b) return plain_md(wshape, t);
    dims st(rank, bs[0] * bs[1]);
    st[rank - 2] = 1;
    st[rank - 1] = bs[1];
    return md(to_dims(wshape), t, st);
  };

  const Tensor* ct = cv ? b.known(cv) : nullptr;
  if (cv && (!ct || ct->dtype() != DType::kF32)) {
    return decline(why, "bias is not a f32 constant");
  }
  Shape cshape;
  if (ct) {
    if (ct->rank() > static_cast<int>(rank)) return decline(why, "bias rank");
    cshape = pad(ct->shape());
    for (size_t d = 0; d < rank; ++d) {
      if (cshape[d] != 1 && cshape[d] != ys[d]) return decline(why, "bias shape");
    }
  }

  ComputeSpec spec;
  // INT8 needs constant weights and a bias that varies along N (it is divided by N's scales).
  if (b.precision() == runtime::Precision::kINT8 && b.activation_scale(av) && bt &&
      (!ct || cshape.back() == n_out)) {
    QF_RETURN_IF_ERROR(plan_int8(b, av, y, z, bv, trans_b ? 0 : bt->rank() - 1, alpha, spec));
  } else {
    spec.src = spec.wei = spec.dst = b.compute_dt();
    spec.sum = {spec.dst, 1.f};
  }
  const dnnl::primitive_attr attr =
      compute_attr(spec, z != nullptr, *act_ops, 1 << static_cast<int>(rank - 1));
  // Activations of a MatMul of another rank are read plain (their shape is reinterpreted).
  const md src_md = gemm ? any_md(as, spec.src) : plain_md(pad(as), spec.src);
  const md wei_md = bt ? any_md(wshape, spec.wei) : plain_md(wshape, spec.wei);
  const md bias_md = ct ? plain_md(cshape, dt::f32) : md();
  dnnl::matmul::primitive_desc pd;
  try {
    dnnl::matmul::desc d(src_md, wei_md, bias_md, any_md(ys, spec.dst));
    pd = dnnl::matmul::primitive_desc(d, attr, b.engine());
  } catch (const dnnl::error& e) {
    return decline(why, "oneDNN has no matmul for it: {}", e.what());
  }

  QF_ASSIGN_OR_RETURN(int src, b.request(av, pd.src_desc()));
  int wei = -1;
  if (spec.int8) {
    QF_ASSIGN_OR_RETURN(wei,
                        b.constant(spec.weights.values, weights_md(dt::s8), pd.weights_desc(), bv));
  } else if (bt) {
    const Tensor w = scaled_f32(*bt, alpha);
    QF_ASSIGN_OR_RETURN(
        wei, b.constant(w, weights_md(dt::f32), pd.weights_desc(), alpha == 1.f ? bv : nullptr));
  } else {
    QF_ASSIGN_OR_RETURN(wei, b.request(bv, pd.weights_desc()));
  }
  int bia = -1;
  if (ct) {
    Tensor cs = scaled_f32(*ct, gemm ? beta : 1.f);
    if (spec.int8) {  // into the accumulator's scale, per output column
      cs = cs.clone();
      for (int64_t i = 0; i < cs.numel(); ++i) {
        cs.data<float>()[i] /= spec.output_scales[static_cast<size_t>(i % n_out)];
      }
    }
    const bool cacheable = !spec.int8 && (!gemm || beta == 1.f);
    QF_ASSIGN_OR_RETURN(
        bia, b.constant(cs, plain_md(cshape, dt::f32), pd.bias_desc(), cacheable ? cv : nullptr));
  }
  QF_ASSIGN_OR_RETURN(const int dst, primitive_destination(b, n, z, pd.dst_desc(), spec, ys));
  b.add_primitive(dnnl::matmul(pd), primitive_args(src, wei, bia, dst), label_of(n),
                  pd.scratchpad_desc().get_size());
  b.set_value_buffer(y, dst);
  const std::string sig = compute_signature(gemm ? "gemm" : "matmul", spec);
  b.add_kernel(n, fused_pattern(gemm ? "Gemm" : "MatMul", z != nullptr, act),
               impl_str(sig, pd.impl_info_str()));
  note_if_float_in_int8_engine(b, spec, av, bt != nullptr);
  return true;
}

// ---- pooling ----

Result<bool> lower_pool(PlanBuilder& b, const ir::Node& n, std::string* why) {
  const ir::Value* x = n.inputs[0];
  const ir::Value* y = n.outputs[0];
  const bool global = n.op_type.rfind("Global", 0) == 0;
  const bool max = n.op_type == "MaxPool" || n.op_type == "GlobalMaxPool";
  if (!is_f32(b, x)) return decline(why, "element type {}", dtype_tag(b.dtype(x)));
  if (n.has_output(1)) return decline(why, "Indices output");
  const Shape& xs = b.shape(x);
  const Shape& ys = b.shape(y);
  const size_t rank = xs.size();
  if (rank < 3 || rank > 5) return decline(why, "rank {}", rank);
  if (shape_numel(xs) == 0 || shape_numel(ys) == 0) return decline(why, "empty tensor");
  const size_t sp = rank - 2;
  dims kernel, strides, dil, pl, pr;
  algorithm alg = max ? algorithm::pooling_max : algorithm::pooling_avg_exclude_padding;
  if (global) {
    kernel.assign(xs.begin() + 2, xs.end());
    strides.assign(sp, 1);
    dil.assign(sp, 0);
    pl.assign(sp, 0);
    pr.assign(sp, 0);
  } else {
    QF_ASSIGN_OR_RETURN(ops::WindowAttrs a, ops::read_window_attrs(n, sp, {}));
    QF_ASSIGN_OR_RETURN(ops::WindowGeometry g,
                        ops::window_geometry(n, a, Shape(xs.begin() + 2, xs.end())));
    const bool include_pad = !max && n.attrs.get_int("count_include_pad", 0) != 0;
    if (include_pad) alg = algorithm::pooling_avg_include_padding;
    for (size_t d = 0; d < sp; ++d) {
      const int64_t extent = (g.kernel[d] - 1) * g.dilations[d] + 1;
      const int64_t in = xs[2 + d], out = ys[2 + d], s = g.strides[d];
      int64_t right = g.pad_end[d];
      // oneDNN derives the output size with floor division; ceil_mode's extra window needs
      // the right padding that makes floor give it.
      if ((in + g.pad_begin[d] + right - extent) / s + 1 != out) {
        right = (out - 1) * s + extent - in - g.pad_begin[d];
        if (right < 0 || (include_pad && right > g.pad_end[d])) {
          return decline(why, "ceil_mode window that oneDNN would average differently");
        }
      }
      kernel.push_back(g.kernel[d]);
      strides.push_back(s);
      dil.push_back(g.dilations[d] - 1);
      pl.push_back(g.pad_begin[d]);
      pr.push_back(right);
    }
  }
  const md src = b.desc_of(x);
  if (src.is_zero()) return decline(why, "no oneDNN layout for the input");
  const dt t = src.data_type();
  // An average of stored integers is on the same grid only without a zero point (padding reads
  // zeros); max pooling keeps any grid.
  if (!max && b.buffer(b.canonical(x)).zero_point != 0) {
    return decline(why, "average of int8 values with a zero point");
  }
  dnnl::pooling_v2_forward::primitive_desc pd;
  try {
    dnnl::pooling_v2_forward::desc d(dnnl::prop_kind::forward_inference, alg, src, any_md(ys, t),
                                     strides, kernel, dil, pl, pr);
    pd = dnnl::pooling_v2_forward::primitive_desc(d, make_attr(), b.engine());
  } catch (const dnnl::error& e) {
    return decline(why, "oneDNN has no pooling for it: {}", e.what());
  }
  const int sb = b.canonical(x);  // int8 stays int8: pooling keeps the scale
  const int dst =
      b.new_arena(pd.dst_desc(), from_dnnl(t), ys, b.buffer(sb).scale, b.buffer(sb).zero_point);
  b.add_primitive(dnnl::pooling_v2_forward(pd), {{DNNL_ARG_SRC, sb}, {DNNL_ARG_DST, dst}},
                  label_of(n), pd.scratchpad_desc().get_size());
  b.set_value_buffer(y, dst);
  const std::string sig =
      fmt::format("{}{}pool{}d_{}", global ? "global_" : "", max ? "max" : "avg", sp, dt_tag(t));
  b.add_kernel(n, n.op_type, impl_str(sig, pd.impl_info_str()));
  return true;
}

// ---- unary activations: eltwise ----

Result<bool> lower_unary(PlanBuilder& b, const ir::Node& n, std::string* why) {
  const ir::Value* x = n.inputs[0];
  const ir::Value* y = n.outputs[0];
  if (!is_f32(b, x)) return decline(why, "element type {}", dtype_tag(b.dtype(x)));
  const auto ops_list = unary_ops(b, n);
  if (!ops_list || ops_list->empty()) return decline(why, "no oneDNN eltwise equivalent");
  const md src = b.float_desc_of(x);
  if (src.is_zero()) return decline(why, "no oneDNN layout for the input");
  std::vector<dnnl::eltwise_forward::primitive_desc> pds;
  try {
    for (const auto& [alg, alpha, beta] : *ops_list) {
      dnnl::eltwise_forward::desc d(dnnl::prop_kind::forward_inference, alg, src, alpha, beta);
      pds.emplace_back(d, make_attr(), b.engine());
    }
  } catch (const dnnl::error& e) {
    return decline(why, "oneDNN has no eltwise for it: {}", e.what());
  }
  QF_ASSIGN_OR_RETURN(const int sb, b.request(x, src));
  const int dst = b.new_arena(pds[0].dst_desc(), from_dnnl(src.data_type()), b.shape(y));
  std::string impl;
  for (size_t i = 0; i < pds.size(); ++i) {  // later ops run in place on the output
    b.add_primitive(dnnl::eltwise_forward(pds[i]),
                    {{DNNL_ARG_SRC, i == 0 ? sb : dst}, {DNNL_ARG_DST, dst}}, label_of(n),
                    pds[i].scratchpad_desc().get_size());
    impl += std::string(i ? " + " : "") + pds[i].impl_info_str();
  }
  b.set_value_buffer(y, dst);
  std::string sig = n.op_type;
  for (char& ch : sig) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  b.add_kernel(n, n.op_type, impl_str(sig + "_" + dt_tag(src.data_type()), impl));
  return true;
}

// ---- binary arithmetic ----

Result<bool> lower_binary(PlanBuilder& b, const ir::Node& n, std::string* why) {
  static const std::pair<const char*, algorithm> kOps[] = {
      {"Add", algorithm::binary_add}, {"Sub", algorithm::binary_sub},
      {"Mul", algorithm::binary_mul}, {"Div", algorithm::binary_div},
      {"Max", algorithm::binary_max}, {"Min", algorithm::binary_min},
      {"Sum", algorithm::binary_add}};
  algorithm alg = algorithm::undef;
  for (const auto& [name, a] : kOps) {
    if (n.op_type == name) alg = a;
  }
  if (n.inputs.size() != 2 || !n.has_input(0) || !n.has_input(1)) {
    return decline(why, "{} inputs", n.inputs.size());
  }
  const bool commutative = alg != algorithm::binary_sub && alg != algorithm::binary_div;
  const ir::Value* a = n.inputs[0];
  const ir::Value* c = n.inputs[1];
  const ir::Value* y = n.outputs[0];
  if (!is_f32(b, a) || !is_f32(b, c)) return decline(why, "element type is not f32");
  const Shape& ys = b.shape(y);
  if (ys.empty() || ys.size() > 6 || shape_numel(ys) == 0) return decline(why, "shape");
  // oneDNN's first source has the output's shape; only the second one broadcasts.
  if (b.shape(a) != ys) {
    if (!commutative || b.shape(c) != ys) return decline(why, "the first input broadcasts");
    std::swap(a, c);
  }
  // The output takes the first source's layout: prefer an activation's to a constant's.
  if (commutative && b.shape(c) == ys && b.known(a) && !b.known(c)) std::swap(a, c);
  const md src0 = b.float_desc_of(a);
  if (src0.is_zero()) return decline(why, "no oneDNN layout for the input");
  const dt t = src0.data_type();
  md src1;
  if (b.shape(c) == ys) {
    src1 = src0;
  } else {
    Shape cs(ys.size() - b.shape(c).size(), 1);
    cs.insert(cs.end(), b.shape(c).begin(), b.shape(c).end());
    src1 = plain_md(cs, t);
  }
  if (src1.is_zero()) return decline(why, "no oneDNN layout for the second input");
  dnnl::binary::primitive_desc pd;
  try {
    dnnl::binary::desc d(alg, src0, src1, src0);
    pd = dnnl::binary::primitive_desc(d, make_attr(), b.engine());
  } catch (const dnnl::error& e) {
    return decline(why, "oneDNN has no binary op for it: {}", e.what());
  }
  QF_ASSIGN_OR_RETURN(const int s0, b.request(a, src0));
  QF_ASSIGN_OR_RETURN(const int s1, b.request(c, src1));
  const int dst = b.new_arena(pd.dst_desc(), from_dnnl(t), ys);
  b.add_primitive(dnnl::binary(pd),
                  {{DNNL_ARG_SRC_0, s0}, {DNNL_ARG_SRC_1, s1}, {DNNL_ARG_DST, dst}}, label_of(n),
                  pd.scratchpad_desc().get_size());
  b.set_value_buffer(y, dst);
  std::string sig = n.op_type;
  for (char& ch : sig) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  b.add_kernel(n, n.op_type, impl_str(sig + "_" + dt_tag(t), pd.impl_info_str()));
  return true;
}

// ---- Softmax / LogSoftmax ----

Result<bool> lower_softmax(PlanBuilder& b, const ir::Node& n, std::string* why) {
  const ir::Value* x = n.inputs[0];
  const ir::Value* y = n.outputs[0];
  if (!is_f32(b, x)) return decline(why, "element type {}", dtype_tag(b.dtype(x)));
  const Shape& xs = b.shape(x);
  if (xs.empty() || xs.size() > 6 || shape_numel(xs) == 0) return decline(why, "shape");
  const int64_t rank = static_cast<int64_t>(xs.size());
  int64_t axis = n.attrs.get_int("axis", n.opset < 13 ? 1 : -1);
  if (axis < 0) axis += rank;
  if (axis < 0 || axis >= rank) return decline(why, "axis");
  Shape view = xs;
  if (n.opset < 13) {  // coerced to 2-D: [prod(dims before axis), prod(dims from axis)]
    int64_t outer = 1;
    for (int64_t d = 0; d < axis; ++d) outer *= xs[static_cast<size_t>(d)];
    view = {outer, shape_numel(xs) / std::max<int64_t>(outer, 1)};
    axis = 1;
  }
  const md cur = b.float_desc_of(x);
  const dt t = cur.is_zero() ? dt::f32 : cur.data_type();
  const md want = plain_md(view, t);
  const bool log = n.op_type == "LogSoftmax";
  dnnl::softmax_v2_forward::primitive_desc pd;
  try {
    dnnl::softmax_v2_forward::desc d(dnnl::prop_kind::forward_inference,
                                     log ? algorithm::softmax_log : algorithm::softmax_accurate,
                                     want, want, static_cast<int>(axis));
    pd = dnnl::softmax_v2_forward::primitive_desc(d, make_attr(), b.engine());
  } catch (const dnnl::error& e) {
    return decline(why, "oneDNN has no softmax for it: {}", e.what());
  }
  QF_ASSIGN_OR_RETURN(int src, b.request(x, want));
  int dst = b.new_arena(want, from_dnnl(t), view);
  b.add_primitive(dnnl::softmax_v2_forward(pd), {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}},
                  label_of(n), pd.scratchpad_desc().get_size());
  if (view != b.shape(y)) dst = b.alias(dst, plain_md(b.shape(y), t), from_dnnl(t), b.shape(y));
  b.set_value_buffer(y, dst);
  b.add_kernel(n, n.op_type,
               impl_str(fmt::format("{}_{}", log ? "logsoftmax" : "softmax", dt_tag(t)),
                        pd.impl_info_str()));
  return true;
}

// ---- BatchNormalization (inference) and LayerNormalization ----

Result<bool> lower_batchnorm(PlanBuilder& b, const ir::Node& n, std::string* why) {
  if (n.attrs.get_int("training_mode", 0) != 0) return decline(why, "training mode");
  for (size_t i = 1; i < n.outputs.size(); ++i) {
    if (n.has_output(i)) return decline(why, "running statistics outputs");
  }
  const ir::Value* x = n.inputs[0];
  const ir::Value* y = n.outputs[0];
  if (!is_f32(b, x)) return decline(why, "element type {}", dtype_tag(b.dtype(x)));
  const Shape& xs = b.shape(x);
  if (xs.size() < 2 || xs.size() > 5 || shape_numel(xs) == 0) return decline(why, "shape");
  const int64_t channels = xs[1];
  const Tensor* params[4];
  for (size_t i = 0; i < 4; ++i) {
    params[i] = n.has_input(i + 1) ? b.known(n.inputs[i + 1]) : nullptr;
    if (!params[i] || params[i]->dtype() != DType::kF32 || params[i]->numel() != channels) {
      return decline(why, "scale, bias, mean and variance are not f32 constants of size C");
    }
  }
  const md src = b.float_desc_of(x);
  if (src.is_zero()) return decline(why, "no oneDNN layout for the input");
  const float eps = n.attrs.get_float("epsilon", 1e-5f);
  using flags = dnnl::normalization_flags;
  dnnl::batch_normalization_forward::primitive_desc pd;
  try {
    dnnl::batch_normalization_forward::desc d(
        dnnl::prop_kind::forward_inference, src, eps,
        flags::use_global_stats | flags::use_scale | flags::use_shift);
    pd = dnnl::batch_normalization_forward::primitive_desc(d, make_attr(), b.engine());
  } catch (const dnnl::error& e) {
    return decline(why, "oneDNN has no batch normalization for it: {}", e.what());
  }
  const md pmd = plain_md({channels}, dt::f32);
  int p[4];
  for (size_t i = 0; i < 4; ++i) {
    QF_ASSIGN_OR_RETURN(p[i], b.constant(*params[i], pmd, pmd, n.inputs[i + 1]));
  }
  QF_ASSIGN_OR_RETURN(const int sb, b.request(x, src));
  const int dst = b.new_arena(pd.dst_desc(), from_dnnl(src.data_type()), b.shape(y));
  b.add_primitive(dnnl::batch_normalization_forward(pd),
                  {{DNNL_ARG_SRC, sb},
                   {DNNL_ARG_SCALE, p[0]},
                   {DNNL_ARG_SHIFT, p[1]},
                   {DNNL_ARG_MEAN, p[2]},
                   {DNNL_ARG_VARIANCE, p[3]},
                   {DNNL_ARG_DST, dst}},
                  label_of(n), pd.scratchpad_desc().get_size());
  b.set_value_buffer(y, dst);
  b.add_kernel(n, n.op_type, impl_str("batchnorm_" + dt_tag(src.data_type()), pd.impl_info_str()));
  return true;
}

Result<bool> lower_layernorm(PlanBuilder& b, const ir::Node& n, std::string* why) {
  for (size_t i = 1; i < n.outputs.size(); ++i) {
    if (n.has_output(i)) return decline(why, "mean / inverse std-dev outputs");
  }
  const ir::Value* x = n.inputs[0];
  const ir::Value* y = n.outputs[0];
  if (!is_f32(b, x)) return decline(why, "element type {}", dtype_tag(b.dtype(x)));
  const Shape& xs = b.shape(x);
  const int64_t rank = static_cast<int64_t>(xs.size());
  if (rank < 1 || rank > 5 || shape_numel(xs) == 0) return decline(why, "shape");
  int64_t axis = n.attrs.get_int("axis", -1);
  if (axis < 0) axis += rank;
  if (axis < 0 || axis >= rank) return decline(why, "axis");
  int64_t outer = 1;
  for (int64_t d = 0; d < axis; ++d) outer *= xs[static_cast<size_t>(d)];
  const int64_t inner = shape_numel(xs) / outer;
  const Tensor* scale = n.has_input(1) ? b.known(n.inputs[1]) : nullptr;
  const Tensor* shift = n.has_input(2) ? b.known(n.inputs[2]) : nullptr;
  if (!scale || scale->dtype() != DType::kF32 || scale->numel() != inner) {
    return decline(why, "scale is not a f32 constant of the normalized size");
  }
  if (n.has_input(2) && (!shift || shift->dtype() != DType::kF32 || shift->numel() != inner)) {
    return decline(why, "bias is not a f32 constant of the normalized size");
  }
  const md cur = b.float_desc_of(x);
  const dt t = cur.is_zero() ? dt::f32 : cur.data_type();
  const Shape view = {outer, inner};
  const md want = plain_md(view, t);
  using flags = dnnl::normalization_flags;
  const flags f = shift ? (flags::use_scale | flags::use_shift) : flags::use_scale;
  dnnl::layer_normalization_forward::primitive_desc pd;
  try {
    dnnl::layer_normalization_forward::desc d(dnnl::prop_kind::forward_inference, want,
                                              n.attrs.get_float("epsilon", 1e-5f), f);
    pd = dnnl::layer_normalization_forward::primitive_desc(d, make_attr(), b.engine());
  } catch (const dnnl::error& e) {
    return decline(why, "oneDNN has no layer normalization for it: {}", e.what());
  }
  QF_ASSIGN_OR_RETURN(int src, b.request(x, want));
  const md pmd = plain_md({inner}, dt::f32);
  QF_ASSIGN_OR_RETURN(int sc, b.constant(*scale, pmd, pmd, n.inputs[1]));
  std::vector<std::pair<int, int>> args = {{DNNL_ARG_SRC, src}, {DNNL_ARG_SCALE, sc}};
  if (shift) {
    QF_ASSIGN_OR_RETURN(int sh, b.constant(*shift, pmd, pmd, n.inputs[2]));
    args.emplace_back(DNNL_ARG_SHIFT, sh);
  }
  int dst = b.new_arena(want, from_dnnl(t), view);
  args.emplace_back(DNNL_ARG_DST, dst);
  b.add_primitive(dnnl::layer_normalization_forward(pd), std::move(args), label_of(n),
                  pd.scratchpad_desc().get_size());
  if (view != b.shape(y)) dst = b.alias(dst, plain_md(b.shape(y), t), from_dnnl(t), b.shape(y));
  b.set_value_buffer(y, dst);
  b.add_kernel(n, n.op_type, impl_str("layernorm_" + dt_tag(t), pd.impl_info_str()));
  return true;
}

// ---- Concat ----

Result<bool> lower_concat(PlanBuilder& b, const ir::Node& n, std::string* why) {
  const ir::Value* y = n.outputs[0];
  const Shape& ys = b.shape(y);
  const int64_t rank = static_cast<int64_t>(ys.size());
  if (rank < 1 || rank > 6 || shape_numel(ys) == 0) return decline(why, "shape");
  int64_t axis = n.attrs.get_int("axis", 1);
  if (axis < 0) axis += rank;
  std::vector<const ir::Value*> inputs;
  for (const ir::Value* in : n.inputs) {
    if (!in) continue;
    if (!is_f32(b, in)) return decline(why, "element type {}", dtype_tag(b.dtype(in)));
    if (shape_numel(b.shape(in)) == 0) continue;  // contributes nothing
    inputs.push_back(in);
  }
  if (inputs.empty()) return decline(why, "no non-empty input");
  const md first = b.float_desc_of(inputs[0]);
  if (first.is_zero()) return decline(why, "no oneDNN layout for the input");
  const dt t = first.data_type();
  std::vector<md> srcs;
  for (const ir::Value* in : inputs) {
    md d = b.desc_of(in);
    if (d.is_zero()) d = plain_md(b.shape(in), t);
    if (d.data_type() != t) d = with_dt(d, t);
    srcs.push_back(d);
  }
  dnnl::concat::primitive_desc pd;
  try {
    pd = dnnl::concat::primitive_desc(static_cast<int>(axis), srcs, b.engine(), make_attr());
  } catch (const dnnl::error& e) {
    return decline(why, "oneDNN has no concat for it: {}", e.what());
  }
  std::vector<std::pair<int, int>> args;
  for (size_t i = 0; i < inputs.size(); ++i) {
    QF_ASSIGN_OR_RETURN(int s, b.request(inputs[i], srcs[i]));
    args.emplace_back(DNNL_ARG_MULTIPLE_SRC + static_cast<int>(i), s);
  }
  const int dst = b.new_arena(pd.dst_desc(), from_dnnl(t), ys);
  args.emplace_back(DNNL_ARG_DST, dst);
  b.add_primitive(dnnl::concat(pd), std::move(args), label_of(n), pd.scratchpad_desc().get_size());
  b.set_value_buffer(y, dst);
  b.add_kernel(n, n.op_type, impl_str("concat_" + dt_tag(t), pd.impl_info_str()));
  return true;
}

// ---- Reshape and friends: views of the same bytes ----

Result<bool> lower_view(PlanBuilder& b, const ir::Node& n, std::string* why) {
  for (size_t i = 1; i < n.outputs.size(); ++i) {
    if (n.has_output(i)) return decline(why, "second output");
  }
  if (n.op_type == "Dropout" && n.has_input(2)) {
    const Tensor* mode = b.known(n.inputs[2]);
    if (!mode || mode->element_as_double(0) != 0.0) return decline(why, "training mode");
  }
  const ir::Value* x = n.inputs[0];
  const ir::Value* y = n.outputs[0];
  const Shape& ys = b.shape(y);
  if (b.dtype(y) != b.dtype(x) || shape_numel(ys) != shape_numel(b.shape(x))) {
    return decline(why, "not a view");
  }
  if (const Tensor* t = b.known(x)) {
    b.set_known(y, t->reshaped(ys));
    return true;
  }
  const int c = b.canonical(x);
  const md cur = b.buffer(c).desc;
  int v = -1;
  if (cur.is_zero()) {
    v = b.alias(c, plain_md(ys, to_dnnl(b.buffer(c).dtype)), b.buffer(c).dtype, ys);
  } else {
    // Keep the stored type (a bf16 activation stays bf16), drop any blocking.
    const dt t = cur.data_type();
    QF_ASSIGN_OR_RETURN(int p, b.request(x, plain_md(b.shape(x), t)));
    v = b.alias(p, plain_md(ys, t), from_dnnl(t), ys);
  }
  b.set_value_buffer(y, v);
  b.add_kernel(n, n.op_type, "view (no copy)");
  return true;
}

// ---- Transpose, Slice: oneDNN reorders from a permuted / cropped view of the input ----

// A dense descriptor for `shape` with the axis order of `like` when `like` has no inner blocks
// (an nhwc input gives an nhwc output), else plain.
md dense_like(const md& like, const Shape& shape, dt t) {
  const dnnl_memory_desc_t& c = like.data;
  if (like.is_zero() || c.format_kind != dnnl_blocked || c.format_desc.blocking.inner_nblks != 0 ||
      c.ndims != static_cast<int>(shape.size())) {
    return plain_md(shape, t);
  }
  std::vector<int> order(shape.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int>(i);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
    return c.format_desc.blocking.strides[a] > c.format_desc.blocking.strides[b];
  });
  dims strides(shape.size());
  int64_t s = 1;
  for (size_t k = order.size(); k-- > 0;) {
    strides[static_cast<size_t>(order[k])] = s;
    s *= shape[static_cast<size_t>(order[k])];
  }
  return md(to_dims(shape), t, strides);
}

Result<bool> lower_transpose(PlanBuilder& b, const ir::Node& n, std::string* why) {
  const ir::Value* x = n.inputs[0];
  const ir::Value* y = n.outputs[0];
  const Shape& xs = b.shape(x);
  const Shape& ys = b.shape(y);
  const size_t rank = xs.size();
  if (rank < 1 || rank > 6 || shape_numel(xs) == 0) return decline(why, "shape");
  std::vector<int64_t> perm = n.attrs.get_ints("perm");
  if (perm.empty()) {
    for (size_t i = rank; i-- > 0;) perm.push_back(static_cast<int64_t>(i));
  }
  if (perm.size() != rank) return decline(why, "perm");
  // Axis perm[i] of X is axis i of Y.
  std::vector<int> where(rank);
  for (size_t i = 0; i < rank; ++i) where[static_cast<size_t>(perm[i])] = static_cast<int>(i);
  if (const Tensor* t = b.known(x)) {  // transposed weights: once, now
    const md from = plain_md(xs, to_dnnl(t->dtype()));
    if (from.is_zero()) return decline(why, "element type {}", dtype_tag(t->dtype()));
    md view;
    try {
      view = from.permute_axes(where);
    } catch (const dnnl::error& e) {
      return decline(why, "{}", e.what());
    }
    QF_ASSIGN_OR_RETURN(int c, b.constant(*t, view, plain_md(ys, from.data_type())));
    b.set_known(y, b.buffer(c).constant);
    return true;
  }
  const md cur = b.desc_of(x);
  if (cur.is_zero()) return decline(why, "no oneDNN layout for the input");
  md view;
  try {
    view = cur.permute_axes(where);
  } catch (const dnnl::error& e) {
    return decline(why, "oneDNN cannot permute the layout: {}", e.what());
  }
  const dt t = cur.data_type();
  const int src = b.canonical(x);
  if (view == plain_md(ys, t)) {  // the producer's layout already is the transposed one
    b.set_value_buffer(y, b.alias(src, view, from_dnnl(t), ys));
    b.add_kernel(n, n.op_type, "transpose_" + dt_tag(t) + " [view of the input's layout, no copy]");
    return true;
  }
  const int v = b.alias(src, view, from_dnnl(t), ys);
  const int dst =
      b.new_arena(plain_md(ys, t), from_dnnl(t), ys, b.buffer(src).scale, b.buffer(src).zero_point);
  QF_RETURN_IF_ERROR(b.add_reorder(v, dst, "transpose " + y->name, &n, "transpose_" + dt_tag(t)));
  b.set_value_buffer(y, dst);
  return true;
}

Result<bool> lower_slice(PlanBuilder& b, const ir::Node& n, std::string* why) {
  const ir::Value* x = n.inputs[0];
  const ir::Value* y = n.outputs[0];
  const Shape& xs = b.shape(x);
  const Shape& ys = b.shape(y);
  const int64_t rank = static_cast<int64_t>(xs.size());
  if (rank < 1 || rank > 6 || shape_numel(ys) == 0 || b.known(x)) {
    return decline(why, "shape or constant input");
  }
  auto ints = [&](size_t i) -> std::optional<std::vector<int64_t>> {
    if (!n.has_input(i)) return std::vector<int64_t>{};
    const Tensor* t = b.known(n.inputs[i]);
    if (!t) return std::nullopt;
    return t->to_int64_vector();
  };
  const auto starts = ints(1), ends = ints(2), axes_in = ints(3), steps = ints(4);
  if (!starts || !ends || !axes_in || !steps || starts->size() != ends->size()) {
    return decline(why, "starts, ends, axes and steps are not constants");
  }
  std::vector<int64_t> axes = *axes_in;
  if (axes.empty()) {
    for (int64_t i = 0; i < static_cast<int64_t>(starts->size()); ++i) axes.push_back(i);
  }
  if (axes.size() != starts->size()) return decline(why, "axes");
  dims offsets(static_cast<size_t>(rank), 0);
  for (size_t i = 0; i < axes.size(); ++i) {
    if (!steps->empty() && (*steps)[i] != 1) return decline(why, "step {}", (*steps)[i]);
    const int64_t axis = axes[i] < 0 ? axes[i] + rank : axes[i];
    if (axis < 0 || axis >= rank) return decline(why, "axis");
    const int64_t dim = xs[static_cast<size_t>(axis)];
    auto clamp = [&](int64_t v) { return std::clamp(v < 0 ? v + dim : v, int64_t{0}, dim); };
    const int64_t start = clamp((*starts)[i]), end = clamp((*ends)[i]);
    if (std::max<int64_t>(0, end - start) != ys[static_cast<size_t>(axis)]) {
      return decline(why, "output shape");
    }
    offsets[static_cast<size_t>(axis)] = start;
  }
  const md cur = b.desc_of(x);
  if (cur.is_zero()) return decline(why, "no oneDNN layout for the input");
  const dt t = cur.data_type();
  int src = b.canonical(x);
  md view;
  try {
    view = cur.submemory_desc(to_dims(ys), offsets);
  } catch (const dnnl::error&) {  // a crop across blocks: crop the plain layout instead
    QF_ASSIGN_OR_RETURN(src, b.request(x, plain_md(xs, t)));
    try {
      view = b.buffer(src).desc.submemory_desc(to_dims(ys), offsets);
    } catch (const dnnl::error& e) {
      return internal_error("{}: cannot crop the plain layout: {}", n.label(), e.what());
    }
  }
  const md dense = dense_like(b.buffer(src).desc, ys, t);
  if (view == dense) {  // a leading block of the input: nothing to copy
    b.set_value_buffer(y, b.alias(src, view, from_dnnl(t), ys));
    b.add_kernel(n, n.op_type, "slice_" + dt_tag(t) + " [view of the input, no copy]");
    return true;
  }
  const int v = b.alias(src, view, from_dnnl(t), ys);
  const int dst =
      b.new_arena(dense, from_dnnl(t), ys, b.buffer(src).scale, b.buffer(src).zero_point);
  QF_RETURN_IF_ERROR(b.add_reorder(v, dst, "slice " + y->name, &n, "slice_" + dt_tag(t)));
  b.set_value_buffer(y, dst);
  return true;
}

// ---- ReduceMean / ReduceSum / ReduceMax / ReduceMin / ReduceProd: oneDNN reduction ----

// `buffer` (shape `kept`, any layout) as a plain tensor of shape `out` (the reduced dims
// dropped): converted to plain if needed, then viewed.
Result<int> squeeze_to_plain(PlanBuilder& b, int buffer, const Shape& kept, const Shape& out,
                             const ir::Value* y) {
  const dt t = b.buffer(buffer).desc.data_type();
  int plain = buffer;
  if (b.buffer(buffer).desc != plain_md(kept, t)) {
    plain = b.new_arena(plain_md(kept, t), from_dnnl(t), kept);
    QF_RETURN_IF_ERROR(b.add_reorder(buffer, plain, "reorder " + y->name));
  }
  return b.alias(plain, plain_md(out, t), from_dnnl(t), out);
}

Result<bool> lower_reduce(PlanBuilder& b, const ir::Node& n, std::string* why) {
  static const std::pair<const char*, algorithm> kOps[] = {
      {"ReduceMean", algorithm::reduction_mean},
      {"ReduceSum", algorithm::reduction_sum},
      {"ReduceMax", algorithm::reduction_max},
      {"ReduceMin", algorithm::reduction_min},
      {"ReduceProd", algorithm::reduction_mul}};
  algorithm alg = algorithm::undef;
  for (const auto& [name, a] : kOps) {
    if (n.op_type == name) alg = a;
  }
  const ir::Value* x = n.inputs[0];
  const ir::Value* y = n.outputs[0];
  if (!is_f32(b, x)) return decline(why, "element type {}", dtype_tag(b.dtype(x)));
  const Shape& xs = b.shape(x);
  const int64_t rank = static_cast<int64_t>(xs.size());
  if (rank < 1 || rank > 6 || shape_numel(xs) == 0) return decline(why, "shape");
  std::vector<int64_t> axes;
  if (n.has_input(1)) {
    const Tensor* t = b.known(n.inputs[1]);
    if (!t) return decline(why, "axes are not constant");
    axes = t->to_int64_vector();
  }
  if (axes.empty() && n.attrs.get_int("noop_with_empty_axes", 0) != 0) {
    return decline(why, "no axes to reduce");
  }
  Shape kept = xs;
  for (size_t i = 0; i < kept.size(); ++i) {
    if (axes.empty()) kept[i] = 1;
  }
  for (int64_t a : axes) {
    const int64_t axis = a < 0 ? a + rank : a;
    if (axis < 0 || axis >= rank) return decline(why, "axis");
    kept[static_cast<size_t>(axis)] = 1;
  }
  const bool keepdims = n.attrs.get_int("keepdims", 1) != 0;
  const md src = b.float_desc_of(x);
  if (src.is_zero()) return decline(why, "no oneDNN layout for the input");
  const dt t = src.data_type();
  // A mean over every spatial dim is a global average pooling, which oneDNN runs on blocked
  // layouts with a jit kernel (its reduction would fall back to a reference one there).
  bool spatial_mean = alg == algorithm::reduction_mean && rank >= 3 && rank <= 5;
  for (int64_t d = 0; d < rank && spatial_mean; ++d) {
    spatial_mean =
        (kept[static_cast<size_t>(d)] == 1) == (d >= 2 || xs[static_cast<size_t>(d)] == 1);
  }
  if (spatial_mean) {
    dnnl::pooling_v2_forward::primitive_desc pd;
    try {
      const size_t sp = static_cast<size_t>(rank - 2);
      const dims kernel(xs.begin() + 2, xs.end());
      dnnl::pooling_v2_forward::desc d(dnnl::prop_kind::forward_inference,
                                       algorithm::pooling_avg_exclude_padding, src, any_md(kept, t),
                                       dims(sp, 1), kernel, dims(sp, 0), dims(sp, 0), dims(sp, 0));
      pd = dnnl::pooling_v2_forward::primitive_desc(d, make_attr(), b.engine());
      QF_ASSIGN_OR_RETURN(const int sb, b.request(x, src));
      int dst = b.new_arena(pd.dst_desc(), from_dnnl(t), kept);
      b.add_primitive(dnnl::pooling_v2_forward(pd), {{DNNL_ARG_SRC, sb}, {DNNL_ARG_DST, dst}},
                      label_of(n), pd.scratchpad_desc().get_size());
      if (!keepdims) {
        QF_ASSIGN_OR_RETURN(dst, squeeze_to_plain(b, dst, kept, b.shape(y), y));
      }
      b.set_value_buffer(y, dst);
      b.add_kernel(
          n, n.op_type,
          impl_str(fmt::format("global_avgpool{}d_{}", sp, dt_tag(t)), pd.impl_info_str()));
      return true;
    } catch (const dnnl::error&) {  // not as a pooling: as a reduction below
    }
  }
  dnnl::reduction::primitive_desc pd;
  try {
    const md dst = any_md(kept, t);
    dnnl::reduction::desc d(alg, src, dst, 0.f, 0.f);
    pd = dnnl::reduction::primitive_desc(d, make_attr(), b.engine());
  } catch (const dnnl::error& e) {
    return decline(why, "oneDNN has no reduction for it: {}", e.what());
  }
  QF_ASSIGN_OR_RETURN(const int sb, b.request(x, src));
  int dst = b.new_arena(pd.dst_desc(), from_dnnl(t), kept);
  b.add_primitive(dnnl::reduction(pd), {{DNNL_ARG_SRC, sb}, {DNNL_ARG_DST, dst}}, label_of(n),
                  pd.scratchpad_desc().get_size());
  if (!keepdims) {
    QF_ASSIGN_OR_RETURN(dst, squeeze_to_plain(b, dst, kept, b.shape(y), y));
  }
  b.set_value_buffer(y, dst);
  std::string sig = n.op_type.substr(6);
  for (char& ch : sig) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  b.add_kernel(n, n.op_type, impl_str("reduce_" + sig + "_" + dt_tag(t), pd.impl_info_str()));
  return true;
}

}  // namespace

Result<bool> lower_node(PlanBuilder& b, const ir::Node& n, std::string* why_not) {
  const std::string& op = n.op_type;
  if (n.domain == ops::kFusedDomain) {
    if (op == "FusedConv") return lower_conv(b, n, why_not);
    if (op == "FusedGemm" || op == "FusedMatMul") return lower_matmul(b, n, why_not);
    return decline(why_not, "unknown fused op");
  }
  if (!n.domain.empty() && n.domain != "ai.onnx") return decline(why_not, "domain {}", n.domain);
  if (n.outputs.empty() || !n.has_output(0) || n.inputs.empty() || !n.has_input(0)) {
    return decline(why_not, "no first input or output");
  }
  if (op == "Conv") return lower_conv(b, n, why_not);
  if (op == "ConvTranspose") return lower_conv_transpose(b, n, why_not);
  if (op == "Gemm" || op == "MatMul") return lower_matmul(b, n, why_not);
  if (op == "MaxPool" || op == "AveragePool" || op == "GlobalAveragePool" ||
      op == "GlobalMaxPool") {
    return lower_pool(b, n, why_not);
  }
  if (op == "Add" || op == "Sub" || op == "Mul" || op == "Div" || op == "Max" || op == "Min" ||
      op == "Sum") {
    return lower_binary(b, n, why_not);
  }
  if (op == "Softmax" || op == "LogSoftmax") return lower_softmax(b, n, why_not);
  if (op == "BatchNormalization") return lower_batchnorm(b, n, why_not);
  if (op == "LayerNormalization") return lower_layernorm(b, n, why_not);
  if (op == "Concat") return lower_concat(b, n, why_not);
  if (op == "Reshape" || op == "Flatten" || op == "Squeeze" || op == "Unsqueeze" ||
      op == "Identity" || op == "Dropout") {
    return lower_view(b, n, why_not);
  }
  if (op == "Transpose") return lower_transpose(b, n, why_not);
  if (op == "Slice") return lower_slice(b, n, why_not);
  if (op == "ReduceMean" || op == "ReduceSum" || op == "ReduceMax" || op == "ReduceMin" ||
      op == "ReduceProd") {
    return lower_reduce(b, n, why_not);
  }
  if (unary_ops(b, n)) return lower_unary(b, n, why_not);
  return decline(why_not, "no oneDNN lowering for {}", op);
}

}  // namespace qf::cpu
