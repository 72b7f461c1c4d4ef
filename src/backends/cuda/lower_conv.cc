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
  // cuDNN's heuristic choice by default: on an H100 it beat cudnnFind's measured choice
  // (ResNet-50 fp16, batch 1: 0.50 ms against 2.47 ms; batch 32: 5.0 against 7.9 ms), whose
  // single cold timing of each candidate misleads it. QFORGE_CUDA_FIND=1 measures instead.
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
  // fp32 keeps FMA math on the descriptor whatever the heuristic's entry says (an entry of
  // default math would otherwise let cuDNN use TF32); other precisions take cuDNN's choice.
  const bool fp32 = strict_fp32();
  // The heuristic's `memory` is an estimate; the exact workspace comes from asking for the
  // algorithm with its math type on the descriptor. Running with less than that is a
  // CUDNN_STATUS_BAD_PARAM (seen on depthwise convolutions at batch 256 in fp16).
  int chosen = -1;
  size_t exact_workspace = 0;
  for (int pass = 0; pass < 2 && chosen < 0; ++pass) {
    for (int i = 0; i < returned && chosen < 0; ++i) {
      const bool math_ok = !fp32 || pass == 1 || perf[i].mathType == CUDNN_FMA_MATH;
      if (perf[i].status != CUDNN_STATUS_SUCCESS || !math_ok) continue;
      QF_CUDNN_RETURN(
          cudnnSetConvolutionMathType(conv->conv, fp32 ? CUDNN_FMA_MATH : perf[i].mathType));
      size_t bytes = 0;
      if (cudnnGetConvolutionForwardWorkspaceSize(ctx_.cudnn, conv->x, conv->w, conv->conv, conv->y,
                                                  perf[i].algo, &bytes) != CUDNN_STATUS_SUCCESS) {
        continue;
      }
      bytes = std::max(bytes, perf[i].memory);
      if (static_cast<int64_t>(bytes) <= kMaxWorkspace) {
        chosen = i;
        exact_workspace = bytes;
      }
    }
  }
  if (chosen < 0) {
    *why = "cuDNN offers no algorithm for this convolution at this precision";
    return false;
  }
  conv->algo = perf[chosen].algo;
  QF_CUDNN_RETURN(
      cudnnSetConvolutionMathType(conv->conv, fp32 ? CUDNN_FMA_MATH : perf[chosen].mathType));
  const int64_t ws_bytes = static_cast<int64_t>(exact_workspace);
  need_workspace(ws_bytes);

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
  // with IMPLICIT_PRECOMP_GEMM; it is tried once on scratch memory now, and a configuration
  // cuDNN refuses keeps the separate epilogue kernel. QFORGE_CUDA_NO_FUSED_CONV turns it off.
  static const bool allow_fused = std::getenv("QFORGE_CUDA_NO_FUSED_CONV") == nullptr;
  const bool relu = act.kind == ops::Activation::kRelu;
  int fused_bias = -1;
  if (allow_fused && (relu || act.kind == ops::Activation::kNone) && (relu || bb >= 0 || zb >= 0) &&
      (relu || conv->algo == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM) &&
      (!bias || (known(bias) && known(bias)->dtype() == DType::kF32))) {
    QF_ASSIGN_OR_RETURN(
        fused_bias, try_fused_conv(*conv, bias, ys, t, relu, xs_run, ws_bytes, plan_->buf(wb).ptr));
  }
  const bool fused_conv = fused_bias >= 0;
  const bool epilogue = !fused_conv && (bb >= 0 || zb >= 0 || act.kind != ops::Activation::kNone);
  const ActParams ap = to_act(act);
  const int64_t count = shape_numel(ys);
  const int64_t channels = ys[1];
  add_step(node.label(), {xb, wb, bb, zb, yb, fused_bias, plan_->workspace},
           [=](Plan& p, DeviceContext& c) -> Status {
             const float one = 1.f, zero = 0.f;
             if (fused_conv) {
               const float alpha2 = zb >= 0 ? 1.f : 0.f;
               QF_CUDNN_RETURN(cudnnConvolutionBiasActivationForward(
                   c.cudnn, &one, conv->x, p.ptr(xb), conv->w, p.ptr(wb), conv->conv, conv->algo,
                   p.ptr(p.workspace), static_cast<size_t>(ws_bytes), &alpha2, conv->y,
                   zb >= 0 ? p.ptr(zb) : p.ptr(yb), conv->bias, p.ptr(fused_bias), conv->act,
                   conv->y, p.ptr(yb)));
               return {};
             }
             QF_CUDNN_RETURN(cudnnConvolutionForward(
                 c.cudnn, &one, conv->x, p.ptr(xb), conv->w, p.ptr(wb), conv->conv, conv->algo,
                 p.ptr(p.workspace), static_cast<size_t>(ws_bytes), &zero, conv->y, p.ptr(yb)));
             if (!epilogue) return {};
             return launch_status(
                 launch_epilogue(p.ptr(yb), t, count, p.ptr(bb), channels, p.ptr(zb), ap, c.stream),
                 "the convolution epilogue");
           });
  std::string impl = fmt::format("cudnn_{}_nhwc_{}{} [cuda]", fused_conv ? "conv_bias_act" : "conv",
                                 dt(t), strict_fp32() ? "_fma" : "_tensorop");
  if (pad_input) impl += fmt::format(" (input channels padded to {})", cin);
  if (epilogue) impl += " + epilogue_kernel";
  std::string op = "Conv";
  if (z) op += "+Add";
  if (act.kind != ops::Activation::kNone) op += "+" + std::string(ops::activation_name(act.kind));
  add_kernel(node, op, impl);
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
  QF_CUDNN_RETURN(cudnnCreateActivationDescriptor(&conv.act));
  QF_CUDNN_RETURN(cudnnSetActivationDescriptor(
      conv.act, relu ? CUDNN_ACTIVATION_RELU : CUDNN_ACTIVATION_IDENTITY, CUDNN_PROPAGATE_NAN,
      0.0));
  QF_CUDNN_RETURN(cudnnCreateTensorDescriptor(&conv.bias));
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
