// INT8 convolutions and matrix products with constant weights on the backend's own kernels
// (int8_kernels.h says why not cuDNN or cuBLASLt): weights quantized per output channel as the
// cpu backend does (quant::quantize_per_channel_keeping_grid, so a Q/DQ graph's int8 weights are
// kept exactly), the input read in the 8-bit type and grid int8_policy.cc chose, and bias,
// residual, activation and the requantization onto the output's grid in the kernel's epilogue.
// The output stays 8-bit when every consumer reads 8-bit (stays_int8), else it is written in
// fp32.
#include <fmt/format.h>

#include <cmath>
#include <cstring>

#include "backends/cuda/int8_kernels.h"
#include "backends/cuda/lowering.h"
#include "ops/fused.h"
#include "ops/nn_common.h"
#include "quant/weight_quantizer.h"

namespace qf::cuda {

// One int8 layer in the kernels' GEMM form, before buffers are chosen.
struct Int8Spec {
  const ir::Value* x = nullptr;
  const ir::Value* y = nullptr;
  const ir::Value* z = nullptr;
  Layout layout = Layout::kNHWC;   // of x, y and z
  Int8Conv geometry;               // shapes and window only
  quant::QuantizedWeight weights;  // s8 [cout, cin_g, kh, kw] (or [N, K]), per-channel scales
  std::vector<float> bias;         // per output channel (empty: none)
  float alpha = 1.f;
  ops::ActivationSpec act;
  std::string op;  // the fused pattern, for EngineInfo

  // Whether the data input has a scale to run on (`scale`); otherwise says why not in `why`.
  bool x_has_scale(const float* scale, std::string* why) const {
    if (scale) return true;
    *why = fmt::format(
        "input '{}' has no int8 scale (no Q/DQ pair in the graph, no calibration entry)", x->name);
    return false;
  }
};

namespace {

// The data input, output and residual of an int8 layer (a Conv, Gemm or MatMul, fused or not).
Int8Spec spec_of(const ir::Node& node) {
  Int8Spec spec;
  spec.x = node.inputs[0];
  spec.y = node.outputs[0];
  const bool fused = node.domain == ops::kFusedDomain;
  spec.z = fused && node.has_input(ops::kFusedResidualInput) ? node.inputs[ops::kFusedResidualInput]
                                                             : nullptr;
  return spec;
}

const char* tag8(DType t) {
  return t == DType::kU8 ? "u8" : t == DType::kI8 ? "s8" : "f32";
}

std::string fused_op(const std::string& base, bool residual, const ops::ActivationSpec& act) {
  std::string op = base;
  if (residual) op += "+Add";
  if (act.kind != ops::Activation::kNone) op += "+" + std::string(ops::activation_name(act.kind));
  return op;
}

// The s8 weights [cout, cin_g * kh * kw] in ONNX order (ci, ky, kx) rearranged into the kernels'
// [groups][cout_pad][k_pad] with k = (ky * kw + kx) * cin_g + ci, zeros elsewhere; and the sum
// of each output channel's int8 weights (for the input zero point's correction).
// `src_cin` is the weights' own input channels per group: fewer than g.cin_g when the input was
// padded with channels that must get weight 0.
Tensor pack_weights(const Tensor& q, const Int8Conv& g, int src_cin, std::vector<int64_t>& sums) {
  Tensor packed(DType::kI8, {static_cast<int64_t>(g.groups) * g.cout_pad * g.k_pad});
  std::memset(packed.raw(), 0, packed.nbytes());
  int8_t* out = packed.data<int8_t>();
  const int8_t* in = q.data<int8_t>();
  const int taps = g.kh * g.kw;
  sums.assign(static_cast<size_t>(g.groups) * g.cout_g, 0);
  for (int grp = 0; grp < g.groups; ++grp) {
    for (int n = 0; n < g.cout_g; ++n) {
      const int64_t co = static_cast<int64_t>(grp) * g.cout_g + n;
      int8_t* row = out + (static_cast<int64_t>(grp) * g.cout_pad + n) * g.k_pad;
      for (int ci = 0; ci < src_cin; ++ci) {
        for (int t = 0; t < taps; ++t) {
          const int8_t v = in[(co * src_cin + ci) * taps + t];
          row[t * g.cin_g + ci] = v;
          sums[static_cast<size_t>(co)] += v;
        }
      }
    }
  }
  return packed;
}

}  // namespace

Result<bool> Builder::emit_int8(const ir::Node& node, Int8Spec& spec, std::string* why) {
  Int8Conv g = spec.geometry;
  const int64_t rows = g.n * g.oh * g.ow;
  constexpr int64_t kLimit = int64_t{1} << 31;  // the kernels' 32-bit row and pixel arithmetic
  if (rows * g.out_c >= kLimit || g.n * g.h * g.w * g.c >= kLimit) {
    *why = "a tensor of 2^31 elements or more";
    return false;
  }
  const int src_cin = g.cin_g;
  // Input in 8 bits on its grid. A thin input of one group (an image's 3 channels), quantized
  // from float here, is stored with its channels padded to 4 (zero-point filled, weights 0
  // there) so that the kernel moves 4-byte pieces instead of gathering bytes: on an H200 the
  // 3-channel ResNet-50 stem took 1.85 ms at batch 256 gathering bytes.
  int xb = -1;
  if (spec.layout == Layout::kNHWC && g.groups == 1 && g.c % 4 != 0 && g.c < 16 &&
      int8_buffer(spec.x) < 0 && g.n * g.h * g.w * 16 < kLimit) {
    QF_ASSIGN_OR_RETURN(const int src, request_device(spec.x, Layout::kPlain, DType::kF32));
    const auto [type, grid] = int8_storage(spec.x);
    const int64_t padded = (g.c + 3) / 4 * 4;
    xb = new_arena(type, {g.n, padded, g.h, g.w}, Layout::kNHWC);
    plan_->buf(xb).grid = grid;
    const Int8Conv geo = g;
    const int dst = xb;
    add_step(fmt::format("quantize {} (channels padded to {})", spec.x->name, padded), {src, dst},
             [=](Plan& p, DeviceContext& c) {
               return launch_status(
                   launch_nchw_nhwc(p.ptr(src), DType::kF32, Grid{}, p.ptr(dst), type, grid, geo.n,
                                    geo.c, geo.h * geo.w, padded, true, c.stream),
                   "a padded quantization");
             });
    g.c = padded;
    g.cin_g = static_cast<int>(padded);
  } else {
    QF_ASSIGN_OR_RETURN(xb, request_int8(spec.x, spec.layout));
  }
  g.k = g.kh * g.kw * g.cin_g;
  const int k_pad = (g.k + kInt8TileK - 1) / kInt8TileK * kInt8TileK;
  const std::vector<Int8Launch> launches =
      int8_launch_candidates(rows, g.cout_g, g.groups, k_pad, ctx_.sm_count, ctx_.max_smem);
  const bool direct = launches.front().tile == Int8Tile::kDirect;
  // The direct kernel reads unpadded weights; the tensor-core tiles read whole K steps and whole
  // column tiles of any shape.
  g.k_pad = direct ? g.k : k_pad;
  g.cout_pad = direct
                   ? g.cout_g
                   : (g.cout_g + kInt8WeightRowUnit - 1) / kInt8WeightRowUnit * kInt8WeightRowUnit;

  const DType x_type = plan_->buf(xb).dtype;
  const Grid x_grid = plan_->buf(xb).grid;
  g.x_unsigned = x_type == DType::kU8;
  g.x_zero_point = x_grid.zero_point;

  std::vector<int64_t> sums;
  const Tensor packed = pack_weights(spec.weights.values, g, src_cin, sums);
  QF_ASSIGN_OR_RETURN(
      const int wb,
      upload_weight(node.inputs[1], packed, Layout::kPlain, DType::kI8,
                    fmt::format("int8 {}x{}x{} cin {}", g.groups, g.cout_pad, g.k_pad, g.cin_g)));
  // Epilogue vectors: v = acc * mult + offset. The tensor-core tiles read the zero point into
  // padding and accumulate sum (q - 0) * w, so offset takes off zp * sum(w) * mult; the direct
  // kernel subtracts the zero point from every value it reads instead.
  const int64_t out_c = g.out_c;
  Tensor mult(DType::kF32, {out_c}), offset(DType::kF32, {out_c});
  const float* wscale = spec.weights.scales.data<float>();
  for (int64_t co = 0; co < out_c; ++co) {
    const double m = static_cast<double>(x_grid.scale) * wscale[co] * spec.alpha;
    double o = spec.bias.empty() ? 0.0 : spec.bias[static_cast<size_t>(co)];
    if (!direct) o -= static_cast<double>(x_grid.zero_point) * static_cast<double>(sums[co]) * m;
    mult.data<float>()[co] = static_cast<float>(m);
    offset.data<float>()[co] = static_cast<float>(o);
  }
  QF_ASSIGN_OR_RETURN(const int mb, upload_weight(nullptr, mult, Layout::kPlain, DType::kF32, ""));
  QF_ASSIGN_OR_RETURN(const int ob,
                      upload_weight(nullptr, offset, Layout::kPlain, DType::kF32, ""));

  // Residual: read in 8 bits when it is stored so, else in fp32.
  int zb = -1;
  if (spec.z) {
    zb = int8_buffer(spec.z, spec.layout);
    if (zb < 0) {
      QF_ASSIGN_OR_RETURN(zb, request_device(spec.z, spec.layout, DType::kF32));
    }
    g.z_type = plan_->buf(zb).dtype;
    g.z_scale = plan_->buf(zb).grid.scale;
    g.z_zero_point = plan_->buf(zb).grid.zero_point;
  }

  // Output: 8 bits on its own grid when every consumer reads 8 bits, else fp32.
  DType y_type = DType::kF32;
  Grid y_grid;
  if (stays_int8(spec.y)) std::tie(y_type, y_grid) = int8_storage(spec.y);
  g.y_type = y_type;
  g.y_inv_scale = 1.f / y_grid.scale;
  g.y_zero_point = y_grid.zero_point;
  g.act = to_act(spec.act);
  const int yb = new_arena(y_type, shape(spec.y), spec.layout);
  plan_->buf(yb).grid = y_grid;
  info(spec.y).buffers.push_back(yb);

  // The tile shape and split-K factor: timed as tactics (int8_tactics.cc) on the real weights.
  std::vector<std::string> names;
  for (const Int8Launch& l : launches) names.push_back(int8_tactic_name(l));
  const std::string signature = fmt::format(
      "int8 conv {}x{}x{}x{} c{} {} -> {}x{}x{} {} k{}x{} pad{}x{} stride{}x{} dil{}x{} group{} "
      "{}{}",
      g.n, g.h, g.w, g.c, g.cin_g, tag8(x_type), g.oh, g.ow, g.out_c, tag8(y_type), g.kh, g.kw,
      g.ph, g.pw, g.sh, g.sw, g.dh, g.dw, g.groups, ops::activation_name(spec.act.kind),
      zb >= 0 ? fmt::format(" residual {}", tag8(g.z_type)) : std::string());
  Int8Conv bound = g;  // with the real weights, for timing
  bound.weights = static_cast<const int8_t*>(plan_->buf(wb).ptr);
  bound.mult = static_cast<const float*>(plan_->buf(mb).ptr);
  bound.offset = static_cast<const float*>(plan_->buf(ob).ptr);
  QF_ASSIGN_OR_RETURN(const TacticChoice choice,
                      choose_tactic(node, names, signature, [&](size_t i) -> Result<float> {
                        bound.tile = launches[i].tile;
                        bound.splits = launches[i].splits;
                        return time_int8_candidate(bound, zb >= 0);
                      }));
  g.tile = launches[choice.index].tile;
  g.splits = launches[choice.index].splits;
  QF_RETURN_IF_ERROR(launch_status(prepare_int8_conv(g), "preparing an int8 convolution"));
  plan_->split_sum_bytes = std::max(plan_->split_sum_bytes, int8_split_sum_bytes(g));
  plan_->split_counters = std::max(plan_->split_counters, int8_split_counter_count(g));
  add_step(node.label(), {xb, wb, mb, ob, zb, yb}, [=](Plan& p, DeviceContext& c) {
    Int8Conv run = g;
    run.x = p.ptr(xb);
    run.weights = static_cast<const int8_t*>(p.ptr(wb));
    run.mult = static_cast<const float*>(p.ptr(mb));
    run.offset = static_cast<const float*>(p.ptr(ob));
    run.z = zb >= 0 ? p.ptr(zb) : nullptr;
    run.y = p.ptr(yb);
    run.split_sums = p.split_sums();
    run.split_counters = p.split_counter_ptr();
    return launch_status(launch_int8_conv(run, c.stream), "an int8 convolution");
  });
  const std::string types = fmt::format("{}s8_s32_{}", tag8(x_type), tag8(y_type));
  const std::string impl =
      direct ? fmt::format("direct_conv_{} (int8 on CUDA cores) [cuda]", types)
             : fmt::format("imma_implicit_gemm_{}_{}{} (int8 tensor cores) [cuda]", types,
                           int8_tile_name(g.tile),
                           g.splits > 1 ? fmt::format("_splitk{}", g.splits) : std::string());
  add_kernel(node, spec.op, impl, direct ? "" : "int8 tile and split-K: " + choice.how);
  return true;
}

Result<bool> Builder::lower_int8_conv(const ir::Node& node, std::string* why) {
  const bool fused = node.domain == ops::kFusedDomain;
  Int8Spec spec = spec_of(node);
  const ir::Value* w = node.inputs[1];
  const ir::Value* bias = node.has_input(2) ? node.inputs[2] : nullptr;
  if (!spec.x_has_scale(int8_scale(spec.x), why)) return false;
  if (!float_value(spec.x) || shape(spec.x).size() != 4) {
    *why = "only 2-D convolutions of f32 tensors run in int8";
    return false;
  }
  const Tensor* wt = known(w);
  if (!wt || wt->dtype() != DType::kF32) {
    *why = "the weights are not a constant f32 tensor";
    return false;
  }
  const Tensor* bt = bias ? known(bias) : nullptr;
  if (bias && (!bt || bt->dtype() != DType::kF32)) {
    *why = "the bias is not a constant f32 tensor";
    return false;
  }
  if (spec.z && (!float_value(spec.z) || shape(spec.z) != shape(spec.y))) {
    *why = "a residual that is not an f32 tensor of the output's shape";
    return false;
  }
  if (fused) {
    QF_ASSIGN_OR_RETURN(spec.act, ops::read_activation(node));
  }
  const Shape& xs = shape(spec.x);
  const Shape& ys = shape(spec.y);
  const Shape& ws = wt->shape();
  QF_ASSIGN_OR_RETURN(ops::WindowAttrs wa, ops::read_window_attrs(node, 2, {ws[2], ws[3]}));
  QF_ASSIGN_OR_RETURN(ops::WindowGeometry geo, ops::window_geometry(node, wa, {xs[2], xs[3]}));
  const int64_t group = node.attrs.get_int("group", 1);
  Int8Conv& g = spec.geometry;
  g.n = xs[0];
  g.c = xs[1];
  g.h = xs[2];
  g.w = xs[3];
  g.oh = ys[2];
  g.ow = ys[3];
  g.out_c = ys[1];
  g.kh = static_cast<int>(ws[2]);
  g.kw = static_cast<int>(ws[3]);
  g.sh = static_cast<int>(geo.strides[0]);
  g.sw = static_cast<int>(geo.strides[1]);
  g.dh = static_cast<int>(geo.dilations[0]);
  g.dw = static_cast<int>(geo.dilations[1]);
  g.ph = static_cast<int>(geo.pad_begin[0]);
  g.pw = static_cast<int>(geo.pad_begin[1]);
  g.groups = static_cast<int>(group);
  g.cin_g = static_cast<int>(ws[1]);
  g.cout_g = static_cast<int>(ws[0] / group);
  if (group < 1 || xs[1] != ws[1] * group || ws[0] % group != 0 || ws[0] != ys[1]) {
    return internal_error("{}: inconsistent group geometry", node.label());
  }
  QF_ASSIGN_OR_RETURN(spec.weights, quant::quantize_per_channel_keeping_grid(
                                        *wt, 0, fmt::format("weight '{}'", w->name)));
  if (bt) spec.bias.assign(bt->data<float>(), bt->data<float>() + bt->numel());
  spec.layout = Layout::kNHWC;
  spec.op = fused_op("Conv", spec.z != nullptr, spec.act);
  return emit_int8(node, spec, why);
}

Result<bool> Builder::lower_int8_gemm(const ir::Node& node, std::string* why) {
  const bool is_gemm = node.op_type == "Gemm" || node.op_type == "FusedGemm";
  const bool fused = node.domain == ops::kFusedDomain;
  Int8Spec spec = spec_of(node);
  const ir::Value* bv = node.inputs[1];
  if (!spec.x_has_scale(int8_scale(spec.x), why)) return false;
  const Tensor* bt = known(bv);
  if (!float_value(spec.x) || !bt || bt->dtype() != DType::kF32 || bt->rank() != 2) {
    *why = "its second operand is not a constant 2-D f32 weight";
    return false;
  }
  const Shape& as = shape(spec.x);
  if (as.size() < 2 || (is_gemm && as.size() != 2)) {
    *why = "an operand of rank below 2";
    return false;
  }
  bool trans_b = false;
  float beta = 1.f;
  if (is_gemm) {
    if (node.attrs.get_int("transA", 0) != 0) {
      *why = "Gemm with transA";
      return false;
    }
    trans_b = node.attrs.get_int("transB", 0) != 0;
    spec.alpha = node.attrs.get_float("alpha", 1.f);
    beta = node.attrs.get_float("beta", 1.f);
  }
  const int64_t k = as.back();
  const int64_t n = trans_b ? bt->dim(0) : bt->dim(1);
  if ((trans_b ? bt->dim(1) : bt->dim(0)) != k) {
    return internal_error("{}: operand shapes disagree", node.label());
  }
  if (node.has_input(2)) {
    const Tensor* ct = known(node.inputs[2]);
    if (!ct || ct->dtype() != DType::kF32 || ct->numel() != n ||
        (ct->rank() == 2 && ct->dim(0) != 1) || ct->rank() > 2) {
      *why = "a bias that is not a constant f32 vector along the output columns";
      return false;
    }
    spec.bias.resize(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) spec.bias[static_cast<size_t>(i)] = beta * ct->data<float>()[i];
  }
  if (spec.z && (!float_value(spec.z) || shape(spec.z) != shape(spec.y))) {
    *why = "a residual that is not an f32 tensor of the output's shape";
    return false;
  }
  if (fused) {
    QF_ASSIGN_OR_RETURN(spec.act, ops::read_activation(node));
  }
  // Weights as [N, K]: output channels first, like a 1x1 convolution's.
  Tensor wnk(DType::kF32, {n, k});
  const float* src = bt->data<float>();
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < k; ++j) {
      wnk.data<float>()[i * k + j] = trans_b ? src[i * k + j] : src[j * n + i];
    }
  }
  QF_ASSIGN_OR_RETURN(spec.weights, quant::quantize_per_channel_keeping_grid(
                                        wnk, 0, fmt::format("weight '{}'", bv->name)));
  // Rows of A are the "pixels" of a 1x1 convolution over a [1, K, rows, 1] image.
  Int8Conv& g = spec.geometry;
  const int64_t rows = shape_numel(as) / k;
  g.n = 1;
  g.c = k;
  g.h = rows;
  g.w = 1;
  g.oh = rows;
  g.ow = 1;
  g.out_c = n;
  g.cin_g = static_cast<int>(k);
  g.cout_g = static_cast<int>(n);
  spec.layout = Layout::kPlain;
  spec.op = fused_op(is_gemm ? "Gemm" : "MatMul", spec.z != nullptr, spec.act);
  return emit_int8(node, spec, why);
}

}  // namespace qf::cuda
