// Conv / FusedConv: cuDNN, NHWC, with the bias, residual and activation either fused into
// cudnnConvolutionBiasActivationForward or applied by the epilogue kernel.
#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "backends/cuda/lowering.h"
#include "ops/fused.h"
#include "ops/nn_common.h"

namespace qf::cuda {

namespace {

cudnnDataType_t cudnn_type(DType t) {
  return t == DType::kF16    ? CUDNN_DATA_HALF
         : t == DType::kBF16 ? CUDNN_DATA_BFLOAT16
                             : CUDNN_DATA_FLOAT;
}

// Weights [cout, cin, kh, kw] (f32) with input channels cin..c-1 of weight 0.
Tensor pad_input_channels(const Tensor& w, int64_t c) {
  const Shape& s = w.shape();
  Tensor out(DType::kF32, {s[0], c, s[2], s[3]});
  std::memset(out.raw(), 0, out.nbytes());
  const int64_t window = s[2] * s[3];
  const float* src = w.data<float>();
  float* dst = out.data<float>();
  for (int64_t o = 0; o < s[0]; ++o) {
    std::memcpy(dst + o * c * window, src + o * s[1] * window,
                static_cast<size_t>(s[1] * window) * sizeof(float));
  }
  return out;
}

}  // namespace

// RAII holders for the descriptors a step keeps.
struct CudnnConv {
  cudnnTensorDescriptor_t x = nullptr, y = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
  cudnnConvolutionFwdAlgo_t algo = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM;
  // cudnnConvolutionBiasActivationForward's extra descriptors (null when not fused).
  cudnnTensorDescriptor_t bias = nullptr;
  cudnnActivationDescriptor_t act = nullptr;
  ~CudnnConv() {
    if (bias) cudnnDestroyTensorDescriptor(bias);
    if (act) cudnnDestroyActivationDescriptor(act);
    if (x) cudnnDestroyTensorDescriptor(x);
    if (y) cudnnDestroyTensorDescriptor(y);
    if (w) cudnnDestroyFilterDescriptor(w);
    if (conv) cudnnDestroyConvolutionDescriptor(conv);
  }
};

Result<bool> Builder::lower_conv(const ir::Node& node, bool fused, std::string* why) {
  const ir::Value* x = node.inputs[0];
  const ir::Value* w = node.inputs[1];
  const ir::Value* y = node.outputs[0];
  const ir::Value* bias = node.has_input(2) ? node.inputs[2] : nullptr;
  const ir::Value* z = fused && node.has_input(ops::kFusedResidualInput)
                           ? node.inputs[ops::kFusedResidualInput]
                           : nullptr;
  if (!float_value(x) || shape(x).size() != 4) {
    *why = "only 2-D f32 convolutions run in cuDNN here";
    return false;
  }
  if (!known(w)) {
    *why = "the weights are not constant";
    return false;
  }
  const Shape& xs = shape(x);
  const Shape& ws = shape(w);
  const Shape& ys = shape(y);
  const int64_t group = node.attrs.get_int("group", 1);
  QF_ASSIGN_OR_RETURN(ops::WindowAttrs wa, ops::read_window_attrs(node, 2, {ws[2], ws[3]}));
  QF_ASSIGN_OR_RETURN(ops::WindowGeometry g, ops::window_geometry(node, wa, {xs[2], xs[3]}));
  if (g.pad_begin != g.pad_end) {
    *why = "asymmetric padding (cuDNN's convolution descriptor pads both sides alike)";
    return false;
  }
  ops::ActivationSpec act;
  if (fused) {
    QF_ASSIGN_OR_RETURN(act, ops::read_activation(node));
  }
  const DType t = cdt();
  // A thin graph input (an image's 3 channels) gets its channels padded with zeros, and the
  // weights with zero input channels, in the conversion it needs anyway: cuDNN's tensor-core
  // kernels want NHWC channels in multiples of 8 (2-byte types) or 4 (TF32). On an H200 the
  // ResNet-50 stem took 3.1 ms of 10.4 at batch 256 in fp16 with its 3 channels.
  const int64_t pad_unit = strict_fp32() ? 1 : dtype_size(t) == 2 ? 8 : 4;
  const bool pad_input =
      group == 1 && xs[1] % pad_unit != 0 && xs[1] < pad_unit && !x->producer && !known(x);
  const int64_t cin = pad_input ? pad_unit : xs[1];
  const Shape xs_run = {xs[0], cin, xs[2], xs[3]};
  const Shape ws_run = {ws[0], pad_input ? cin : ws[1], ws[2], ws[3]};
  auto conv = std::make_shared<CudnnConv>();
  QF_CUDNN_RETURN(cudnnCreateTensorDescriptor(&conv->x));
  QF_CUDNN_RETURN(cudnnCreateTensorDescriptor(&conv->y));
  QF_CUDNN_RETURN(cudnnCreateFilterDescriptor(&conv->w));
  QF_CUDNN_RETURN(cudnnCreateConvolutionDescriptor(&conv->conv));
  auto i32 = [](int64_t v) { return static_cast<int>(v); };
  QF_CUDNN_RETURN(cudnnSetTensor4dDescriptor(conv->x, CUDNN_TENSOR_NHWC, cudnn_type(t),
                                             i32(xs_run[0]), i32(xs_run[1]), i32(xs_run[2]),
                                             i32(xs_run[3])));
  QF_CUDNN_RETURN(cudnnSetTensor4dDescriptor(conv->y, CUDNN_TENSOR_NHWC, cudnn_type(t), i32(ys[0]),
                                             i32(ys[1]), i32(ys[2]), i32(ys[3])));
  QF_CUDNN_RETURN(cudnnSetFilter4dDescriptor(conv->w, cudnn_type(t), CUDNN_TENSOR_NHWC,
                                             i32(ws_run[0]), i32(ws_run[1]), i32(ws_run[2]),
                                             i32(ws_run[3])));
  // fp32 accumulation at every precision (cuDNN's PSEUDO_HALF / PSEUDO_BFLOAT16 configs).
  QF_CUDNN_RETURN(cudnnSetConvolution2dDescriptor(
      conv->conv, i32(g.pad_begin[0]), i32(g.pad_begin[1]), i32(g.strides[0]), i32(g.strides[1]),
      i32(g.dilations[0]), i32(g.dilations[1]), CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
  QF_CUDNN_RETURN(cudnnSetConvolutionGroupCount(conv->conv, i32(group)));
  // fp32 means fp32: FMA kernels only (cuDNN's default math would allow TF32 tensor cores).
  const cudnnMathType_t math = strict_fp32() ? CUDNN_FMA_MATH : CUDNN_TENSOR_OP_MATH;
  QF_CUDNN_RETURN(cudnnSetConvolutionMathType(conv->conv, math));
  int n = 0, c = 0, h = 0, wd = 0;
  QF_CUDNN_RETURN(
      cudnnGetConvolution2dForwardOutputDim(conv->conv, conv->x, conv->w, &n, &c, &h, &wd));
  if (Shape{n, c, h, wd} != ys) {
    return internal_error("{}: cuDNN computes output {} where the graph says {}", node.label(),
                          shape_str({n, c, h, wd}), shape_str(ys));
  }
  cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
  int returned = 0;
  // The candidates are cuDNN's heuristic list; QFORGE_CUDA_FIND=1 takes cudnnFind's list (one
  // cold timing each, in its own order) instead.
  static const bool heuristic = std::getenv("QFORGE_CUDA_FIND") == nullptr;
  if (heuristic) {
    QF_CUDNN_RETURN(
        cudnnGetConvolutionForwardAlgorithm_v7(ctx_.cudnn, conv->x, conv->w, conv->conv, conv->y,
                                               CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &returned, perf));
  } else {
    QF_CUDNN_RETURN(cudnnFindConvolutionForwardAlgorithm(ctx_.cudnn, conv->x, conv->w, conv->conv,
                                                         conv->y, CUDNN_CONVOLUTION_FWD_ALGO_COUNT,
                                                         &returned, perf));
  }
  // fp32 keeps FMA math on the descriptor whatever the list's entry says (an entry of default
  // math would otherwise let cuDNN use TF32); other precisions take the entry's math.
  const bool fp32 = strict_fp32();
  // The list's `memory` is an estimate; the exact workspace comes from asking for the algorithm
  // with its math type on the descriptor. Running with less than that is a
  // CUDNN_STATUS_BAD_PARAM (seen on depthwise convolutions at batch 256 in fp16).
  std::vector<ConvCandidate> candidates;
  for (int pass = 0; pass < 2 && candidates.empty(); ++pass) {
    for (int i = 0; i < returned; ++i) {
      const bool math_ok = !fp32 || pass == 1 || perf[i].mathType == CUDNN_FMA_MATH;
      if (perf[i].status != CUDNN_STATUS_SUCCESS || !math_ok) continue;
      const cudnnMathType_t m = fp32 ? CUDNN_FMA_MATH : perf[i].mathType;
      QF_CUDNN_RETURN(cudnnSetConvolutionMathType(conv->conv, m));
      size_t bytes = 0;
      if (cudnnGetConvolutionForwardWorkspaceSize(ctx_.cudnn, conv->x, conv->w, conv->conv, conv->y,
                                                  perf[i].algo, &bytes) != CUDNN_STATUS_SUCCESS) {
        continue;
      }
      bytes = std::max(bytes, perf[i].memory);
      const bool seen = std::any_of(candidates.begin(), candidates.end(), [&](const auto& c) {
        return c.algo == perf[i].algo && c.math == m;
      });
      if (static_cast<int64_t>(bytes) <= kMaxWorkspace && !seen) {
        candidates.push_back({perf[i].algo, m, static_cast<int64_t>(bytes)});
      }
    }
  }
  if (candidates.empty()) {
    *why = "cuDNN offers no algorithm for this convolution at this precision";
    return false;
  }

  int xb = -1, wb = -1;
  if (pad_input) {
    QF_ASSIGN_OR_RETURN(xb, padded_input(x, cin, t));
    QF_ASSIGN_OR_RETURN(
        wb, upload_weight(w, pad_input_channels(*known(w), cin), Layout::kNHWC, t, "conv padded"));
  } else {
    QF_ASSIGN_OR_RETURN(xb, request_device(x, Layout::kNHWC, t));
    QF_ASSIGN_OR_RETURN(wb, upload_weight(w, *known(w), Layout::kNHWC, t, "conv"));
  }
  int bb = -1, zb = -1;
  if (bias) {
    QF_ASSIGN_OR_RETURN(bb, request_device(bias, Layout::kPlain, t));
  }
  if (z) {
    QF_ASSIGN_OR_RETURN(zb, request_device(z, Layout::kNHWC, t));
  }
  const int yb = new_arena(t, ys, Layout::kNHWC);
  info(y).buffers.push_back(yb);
  // cuDNN's fused convolution does act(conv + z + bias) for ReLU, and for no activation only
  // with IMPLICIT_PRECOMP_GEMM; it is tried once on scratch memory, and a configuration cuDNN
  // refuses keeps the separate epilogue kernel. QFORGE_CUDA_NO_FUSED_CONV turns it off.
  static const bool allow_fused = std::getenv("QFORGE_CUDA_NO_FUSED_CONV") == nullptr;
  const bool relu = act.kind == ops::Activation::kRelu;
  const bool has_epilogue = bb >= 0 || zb >= 0 || act.kind != ops::Activation::kNone;
  const bool fusable_layer = allow_fused && (relu || act.kind == ops::Activation::kNone) &&
                             has_epilogue &&
                             (!bias || (known(bias) && known(bias)->dtype() == DType::kF32));
  // The bias buffer of the fused form with `c`'s algorithm, or -1 where it does not fuse.
  auto fused_bias_for = [&](const ConvCandidate& c) -> Result<int> {
    if (!fusable_layer || (!relu && c.algo != CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM)) {
      return -1;
    }
    conv->algo = c.algo;
    QF_CUDNN_RETURN(cudnnSetConvolutionMathType(conv->conv, c.math));
    return try_fused_conv(*conv, bias, ys, t, relu, xs_run, c.workspace, plan_->buf(wb).ptr);
  };
  const ActParams ap = to_act(act);
  const int64_t count = shape_numel(ys);
  const int64_t channels = ys[1];
  // One run of the layer as its step runs it: the fused call, or the convolution and the
  // epilogue kernel. Operands by address, so that build-time timing can run it on scratch.
  const ConvEnqueue enqueue = [=](const void* xp, const void* wp, const void* bp,
                                  const void* fused_bp, const void* zp, void* yp, void* wsp,
                                  int64_t ws, cudnnHandle_t cudnn, cudaStream_t stream) -> Status {
    const float one = 1.f, zero = 0.f;
    if (fused_bp) {
      const float alpha2 = zp ? 1.f : 0.f;
      QF_CUDNN_RETURN(cudnnConvolutionBiasActivationForward(
          cudnn, &one, conv->x, xp, conv->w, wp, conv->conv, conv->algo, wsp,
          static_cast<size_t>(ws), &alpha2, conv->y, zp ? zp : yp, conv->bias, fused_bp, conv->act,
          conv->y, yp));
      return {};
    }
    QF_CUDNN_RETURN(cudnnConvolutionForward(cudnn, &one, conv->x, xp, conv->w, wp, conv->conv,
                                            conv->algo, wsp, static_cast<size_t>(ws), &zero,
                                            conv->y, yp));
    if (!has_epilogue) return {};
    return launch_status(launch_epilogue(yp, t, count, bp, channels, zp, ap, stream),
                         "the convolution epilogue");
  };
  const std::string signature = fmt::format(
      "conv {} x{} w{} pad{}x{} stride{}x{} dil{}x{} group{} {}{}{}", dt(t), shape_str(xs_run),
      shape_str(ws_run), g.pad_begin[0], g.pad_begin[1], g.strides[0], g.strides[1], g.dilations[0],
      g.dilations[1], group, ops::activation_name(act.kind), bb >= 0 ? " bias" : "",
      zb >= 0 ? " residual" : "");
  std::vector<std::string> names;
  for (const ConvCandidate& c : candidates) names.push_back(cudnn_tactic_name(c));
  QF_ASSIGN_OR_RETURN(const TacticChoice choice,
                      choose_tactic(node, names, signature, [&](size_t i) -> Result<float> {
                        const ConvCandidate& c = candidates[i];
                        QF_ASSIGN_OR_RETURN(const int fb, fused_bias_for(c));
                        conv->algo = c.algo;
                        QF_CUDNN_RETURN(cudnnSetConvolutionMathType(conv->conv, c.math));
                        return time_conv_candidate(c, xs_run, ys, t, wb, bb, fb, zb >= 0, enqueue);
                      }));
  const ConvCandidate& chosen = candidates[choice.index];
  QF_ASSIGN_OR_RETURN(const int fused_bias, fused_bias_for(chosen));
  conv->algo = chosen.algo;
  QF_CUDNN_RETURN(cudnnSetConvolutionMathType(conv->conv, chosen.math));
  const int64_t ws_bytes = chosen.workspace;
  need_workspace(ws_bytes);
  const bool fused_conv = fused_bias >= 0;
  const bool epilogue = !fused_conv && has_epilogue;
  add_step(node.label(), {xb, wb, bb, zb, yb, fused_bias, plan_->workspace},
           [=](Plan& p, DeviceContext& c) -> Status {
             return enqueue(p.ptr(xb), p.ptr(wb), p.ptr(bb),
                            fused_conv ? p.ptr(fused_bias) : nullptr, p.ptr(zb), p.ptr(yb),
                            p.ptr(p.workspace), ws_bytes, c.cudnn, c.stream);
           });
  std::string impl = fmt::format("cudnn_{}_nhwc_{}{} [cuda]", fused_conv ? "conv_bias_act" : "conv",
                                 dt(t), strict_fp32() ? "_fma" : "_tensorop");
  if (pad_input) impl += fmt::format(" (input channels padded to {})", cin);
  if (epilogue) impl += " + epilogue_kernel";
  impl += fmt::format(" algo {}", static_cast<int>(chosen.algo));
  std::string op = "Conv";
  if (z) op += "+Add";
  if (act.kind != ops::Activation::kNone) op += "+" + std::string(ops::activation_name(act.kind));
  // How the algorithm was chosen goes to the note: an engine file's rebuild runs the same kernel
  // ("engine file") that the first build timed.
  add_kernel(node, op, impl, "cuDNN algorithm: " + choice.how);
  return true;
}

Result<int> Builder::padded_input(const ir::Value* x, int64_t channels, DType t) {
  QF_ASSIGN_OR_RETURN(const int src, request_device(x, Layout::kPlain, DType::kF32));
  const Shape& xs = shape(x);
  const int dst = new_arena(t, {xs[0], channels, xs[2], xs[3]}, Layout::kNHWC);
  add_step(fmt::format("convert {} (channels padded to {})", x->name, channels), {src, dst},
           [=](Plan& p, DeviceContext& c) {
             return launch_status(
                 launch_nchw_nhwc(p.ptr(src), DType::kF32, Grid{}, p.ptr(dst), t, Grid{}, xs[0],
                                  xs[1], xs[2] * xs[3], channels, true, c.stream),
                 "a padded conversion");
           });
  return dst;
}

Result<int> Builder::try_fused_conv(CudnnConv& conv, const ir::Value* bias, const Shape& ys,
                                    DType t, bool relu, const Shape& xs, int64_t ws_bytes,
                                    void* weights) {
  const int64_t m = ys[1];
  // Tried once per candidate algorithm while timing: the descriptors are made once.
  if (!conv.act) QF_CUDNN_RETURN(cudnnCreateActivationDescriptor(&conv.act));
  QF_CUDNN_RETURN(cudnnSetActivationDescriptor(
      conv.act, relu ? CUDNN_ACTIVATION_RELU : CUDNN_ACTIVATION_IDENTITY, CUDNN_PROPAGATE_NAN,
      0.0));
  if (!conv.bias) QF_CUDNN_RETURN(cudnnCreateTensorDescriptor(&conv.bias));
  const size_t y_bytes = static_cast<size_t>(shape_numel(ys)) * dtype_size(t);
  const size_t x_bytes = static_cast<size_t>(shape_numel(xs)) * dtype_size(t);
  QF_ASSIGN_OR_RETURN(auto x_mem, DeviceMemory::allocate(static_cast<int64_t>(x_bytes)));
  QF_ASSIGN_OR_RETURN(auto y_mem, DeviceMemory::allocate(static_cast<int64_t>(y_bytes)));
  QF_ASSIGN_OR_RETURN(auto z_mem, DeviceMemory::allocate(static_cast<int64_t>(y_bytes)));
  QF_ASSIGN_OR_RETURN(auto ws_mem, DeviceMemory::allocate(ws_bytes));
  QF_CUDA_RETURN(cudaMemset(x_mem->ptr, 0, x_bytes));
  QF_CUDA_RETURN(cudaMemset(z_mem->ptr, 0, y_bytes));
  // The bias type cuDNN wants is documented loosely across configurations: the storage type
  // first, then fp32.
  for (DType bias_type : {t, DType::kF32}) {
    QF_CUDNN_RETURN(cudnnSetTensor4dDescriptor(conv.bias, CUDNN_TENSOR_NCHW, cudnn_type(bias_type),
                                               1, static_cast<int>(m), 1, 1));
    Tensor data = bias ? *known(bias) : Tensor(DType::kF32, {m});
    if (!bias) std::memset(data.raw(), 0, data.nbytes());
    QF_ASSIGN_OR_RETURN(const int bb, upload_weight(bias, data.reshaped({m}), Layout::kPlain,
                                                    bias_type, bias ? "conv bias" : ""));
    const float one = 1.f, one2 = 1.f;
    const cudnnStatus_t st = cudnnConvolutionBiasActivationForward(
        ctx_.cudnn, &one, conv.x, x_mem->ptr, conv.w, weights, conv.conv, conv.algo, ws_mem->ptr,
        static_cast<size_t>(ws_bytes), &one2, conv.y, z_mem->ptr, conv.bias, plan_->buf(bb).ptr,
        conv.act, conv.y, y_mem->ptr);
    QF_CUDA_RETURN(cudaStreamSynchronize(ctx_.stream));
    if (st == CUDNN_STATUS_SUCCESS) return bb;
    if (verbose()) {
      std::fprintf(stderr, "qforge cuda: fused cuDNN convolution with a %s bias refused: %s\n",
                   dt(bias_type).c_str(), cudnnGetErrorString(st));
    }
  }
  return -1;
}

}  // namespace qf::cuda
