#include "backends/cuda/plan.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>

// The liveness-based first-fit placement is the cpu backend's; it is header-only and knows
// nothing of oneDNN, so the device arena reuses it as is.
#include "backends/cpu/arena.h"
#include "backends/cuda/kernels.h"
#include "ir/op_registry.h"
#include "ops/fused.h"
#include "ops/nn_common.h"

namespace qf::cuda {

#define QF_CUDA_RETURN(expr)                                                            \
  do {                                                                                  \
    const cudaError_t qf_err_ = (expr);                                                 \
    if (qf_err_ != cudaSuccess) {                                                       \
      return internal_error("CUDA: {} failed: {}", #expr, cudaGetErrorString(qf_err_)); \
    }                                                                                   \
  } while (0)
#define QF_CUDNN_RETURN(expr)                                                            \
  do {                                                                                   \
    const cudnnStatus_t qf_st_ = (expr);                                                 \
    if (qf_st_ != CUDNN_STATUS_SUCCESS) {                                                \
      return internal_error("cuDNN: {} failed: {}", #expr, cudnnGetErrorString(qf_st_)); \
    }                                                                                    \
  } while (0)
#define QF_CUBLAS_RETURN(expr)                                                                  \
  do {                                                                                          \
    const cublasStatus_t qf_st_ = (expr);                                                       \
    if (qf_st_ != CUBLAS_STATUS_SUCCESS) {                                                      \
      return internal_error("cuBLASLt: {} failed: {}", #expr, cublasLtGetStatusString(qf_st_)); \
    }                                                                                           \
  } while (0)

namespace {

// Device allocations are aligned for every vectorized access cuDNN and cuBLASLt make.
constexpr int64_t kDeviceAlignment = 256;
// Scratch offered to cuDNN and cuBLASLt algorithms; larger needs pick another algorithm.
constexpr int64_t kMaxWorkspace = int64_t{256} << 20;
constexpr int64_t kGemmWorkspace = int64_t{32} << 20;
constexpr int64_t kMaxFoldedElements = 4096;

bool verbose() {
  static const bool v = std::getenv("QFORGE_CUDA_VERBOSE") != nullptr;
  return v;
}

Status launch_status(int err, const std::string& what) {
  if (err == 0) return {};
  return internal_error("CUDA: launching {} failed: {}", what,
                        cudaGetErrorString(static_cast<cudaError_t>(err)));
}

bool is_storage_float(DType t) {
  return t == DType::kF32 || t == DType::kF16 || t == DType::kBF16;
}

// Row-major strides of `shape`.
std::vector<int64_t> dense_strides(const Shape& shape) {
  std::vector<int64_t> s(shape.size(), 1);
  for (size_t d = shape.size(); d-- > 1;) s[d - 1] = s[d] * shape[d];
  return s;
}

// NCHW dims <-> NHWC storage: strides (in elements) of logical dim d of a 4-D tensor stored NHWC.
std::vector<int64_t> nhwc_strides(const Shape& s) {
  return {s[1] * s[2] * s[3], 1, s[3] * s[1], s[1]};
}

std::vector<int64_t> storage_strides(const Shape& shape, Layout layout) {
  return layout == Layout::kNHWC ? nhwc_strides(shape) : dense_strides(shape);
}

// The physical order of a layout's dims: the order in which a dense copy walks them.
std::vector<int> physical_order(size_t rank, Layout layout) {
  if (layout == Layout::kNHWC) return {0, 2, 3, 1};
  std::vector<int> o(rank);
  for (size_t i = 0; i < rank; ++i) o[i] = static_cast<int>(i);
  return o;
}

std::string dt(DType t) {
  return std::string(dtype_tag(t));
}

cudnnDataType_t cudnn_type(DType t) {
  return t == DType::kF16    ? CUDNN_DATA_HALF
         : t == DType::kBF16 ? CUDNN_DATA_BFLOAT16
                             : CUDNN_DATA_FLOAT;
}

cudaDataType_t blas_type(DType t) {
  return t == DType::kF16 ? CUDA_R_16F : t == DType::kBF16 ? CUDA_R_16BF : CUDA_R_32F;
}

ActParams to_act(const ops::ActivationSpec& a) {
  return {static_cast<Act>(static_cast<int>(a.kind)), a.alpha, a.beta};
}

// Converts a host tensor of f32 (or already the target type) into `to`, permuting a 4-D tensor
// into NHWC (or a conv weight [M, C, kh, kw] into [M, kh, kw, C], the same permutation).
Result<Tensor> convert_host(const Tensor& src, Layout layout, DType to) {
  if (src.dtype() != DType::kF32 && src.dtype() != to) {
    return unsupported("cannot convert a {} constant to {} on the device", dt(src.dtype()), dt(to));
  }
  Tensor out(to, src.shape());
  const int64_t n = src.numel();
  std::vector<int64_t> map;  // out position -> src position
  if (layout == Layout::kNHWC && src.rank() == 4) {
    const Shape& s = src.shape();
    map.resize(static_cast<size_t>(n));
    int64_t o = 0;
    for (int64_t a = 0; a < s[0]; ++a)
      for (int64_t h = 0; h < s[2]; ++h)
        for (int64_t w = 0; w < s[3]; ++w)
          for (int64_t c = 0; c < s[1]; ++c)
            map[static_cast<size_t>(o++)] = ((a * s[1] + c) * s[2] + h) * s[3] + w;
  }
  auto at = [&](int64_t i) { return map.empty() ? i : map[static_cast<size_t>(i)]; };
  if (src.dtype() == to) {
    const size_t es = dtype_size(to);
    const auto* in = static_cast<const std::byte*>(src.raw());
    auto* o = static_cast<std::byte*>(out.raw());
    for (int64_t i = 0; i < n; ++i) {
      std::memcpy(o + i * static_cast<int64_t>(es), in + at(i) * static_cast<int64_t>(es), es);
    }
    return out;
  }
  const float* in = src.data<float>();
  for (int64_t i = 0; i < n; ++i) {
    const float v = in[at(i)];
    if (to == DType::kF16) {
      out.data<f16_t>()[i] = f32_to_f16(v);
    } else {
      out.data<bf16_t>()[i] = f32_to_bf16(v);
    }
  }
  return out;
}

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

struct LtMatmul {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr, d = nullptr;
  cublasLtMatmulAlgo_t algo{};
  int64_t workspace = 0;
  ~LtMatmul() {
    if (desc) cublasLtMatmulDescDestroy(desc);
    if (a) cublasLtMatrixLayoutDestroy(a);
    if (b) cublasLtMatrixLayoutDestroy(b);
    if (c) cublasLtMatrixLayoutDestroy(c);
    if (d) cublasLtMatrixLayoutDestroy(d);
  }
};

class Builder {
 public:
  Builder(const ir::Graph& graph, DeviceContext& ctx) : graph_(graph), ctx_(ctx) {
    plan_ = std::make_unique<Plan>();
  }

  Result<std::unique_ptr<Plan>> build(const std::vector<Shape>& shapes,
                                      const std::vector<DType>& dtypes);

 private:
  struct ValueInfo {
    DType dtype = DType::kUndefined;
    Shape shape;
    Tensor known;
    std::vector<int> buffers;  // first: where the producer wrote it
  };

  // ---- values and buffers ----
  DType cdt() const {
    switch (ctx_.precision) {
      case runtime::Precision::kFP16:
        return DType::kF16;
      case runtime::Precision::kBF16:
        return DType::kBF16;
      default:
        return DType::kF32;
    }
  }
  ValueInfo& info(const ir::Value* v) { return info_.at(v); }
  const Shape& shape(const ir::Value* v) { return info(v).shape; }
  const Tensor* known(const ir::Value* v) {
    auto it = info_.find(v);
    return it != info_.end() && it->second.known.defined() ? &it->second.known : nullptr;
  }
  int step_index() const { return static_cast<int>(plan_->steps.size()); }
  int add_buffer(Buffer b) {
    plan_->buffers.push_back(std::move(b));
    return static_cast<int>(plan_->buffers.size()) - 1;
  }
  int new_arena(DType type, const Shape& s, Layout layout) {
    Buffer b;
    b.kind = Buffer::Kind::kArena;
    b.dtype = type;
    b.shape = s;
    b.layout = layout;
    b.bytes = shape_numel(s) * static_cast<int64_t>(dtype_size(type));
    return add_buffer(std::move(b));
  }
  Result<int> new_host(DType type, const Shape& s) {
    Buffer b;
    b.kind = Buffer::Kind::kHost;
    b.dtype = type;
    b.shape = s;
    QF_ASSIGN_OR_RETURN(b.host, pinned_tensor(type, s));
    b.bytes = static_cast<int64_t>(b.host.nbytes());
    return add_buffer(std::move(b));
  }
  // The step being appended reads or writes `b`: extends its root's lifetime.
  void touch(int b) {
    if (b < 0) return;
    Buffer& root = plan_->buf(plan_->root_of(b));
    if (root.kind == Buffer::Kind::kWeight && used_weights_.insert(root.weight.get()).second) {
      plan_->weights_bytes += root.bytes;  // each uploaded weight once, if a step reads it
    }
    if (root.kind != Buffer::Kind::kArena) return;
    const int s = step_index();
    root.first = root.first < 0 ? s : std::min(root.first, s);
    root.last = std::max(root.last, s);
  }
  void add_step(std::string label, std::vector<int> touched,
                std::function<Status(Plan&, DeviceContext&)> fn) {
    for (int b : touched) touch(b);
    plan_->steps.push_back({std::move(label), std::move(fn)});
  }
  void add_kernel(const ir::Node& node, std::string op, std::string impl) {
    plan_->kernels.push_back(
        {node.name.empty() ? node.label() : node.name, std::move(op), std::move(impl)});
  }
  void need_workspace(int64_t bytes) {
    plan_->workspace_bytes = std::max(plan_->workspace_bytes, bytes);
  }

  Result<int> upload_weight(const ir::Value* v, const Tensor& data, Layout layout, DType type,
                            const std::string& variant);
  Result<int> request_device(const ir::Value* v, Layout layout, DType type);
  Result<int> request_host(const ir::Value* v);
  int add_copy_convert(int src, Layout layout, DType type, const std::string& what);
  // The layout of the device buffer a float value was written in (plain when on the host).
  Layout native_layout(const ir::Value* v) {
    for (int b : info(v).buffers) {
      if (plan_->buf(b).on_device()) return plan_->buf(b).layout;
    }
    return Layout::kPlain;
  }

  // ---- lowering ----
  Status infer_concrete(const std::vector<Shape>& shapes, const std::vector<DType>& dtypes);
  Result<bool> lower(const ir::Node& node, std::string* why);
  Result<bool> lower_conv(const ir::Node& node, bool fused, std::string* why);
  // Sets up cudnnConvolutionBiasActivationForward for `conv` and runs it once on scratch
  // memory; returns the bias buffer it reads (zeros when the node has none), or -1 when cuDNN
  // refuses this configuration.
  Result<int> try_fused_conv(CudnnConv& conv, const ir::Value* bias, const Shape& ys, DType t,
                             bool relu, const Shape& xs, int64_t ws_bytes, void* weights);
  Result<bool> lower_gemm(const ir::Node& node, std::string* why);
  Result<bool> lower_binary(const ir::Node& node, BinaryOp op, std::string* why);
  Result<bool> lower_unary(const ir::Node& node, std::string* why);
  Result<bool> lower_pool(const ir::Node& node, std::string* why);
  Result<bool> lower_softmax(const ir::Node& node, bool log, std::string* why);
  Result<bool> lower_reshape(const ir::Node& node);
  Result<bool> lower_transpose(const ir::Node& node, std::string* why);
  Result<bool> lower_layer_norm(const ir::Node& node, std::string* why);
  Result<bool> lower_concat(const ir::Node& node, std::string* why);
  Status add_reference(const ir::Node& node);
  Status add_outputs();

  bool float_value(const ir::Value* v) { return v && info(v).dtype == DType::kF32; }

  const ir::Graph& graph_;
  DeviceContext& ctx_;
  std::unique_ptr<Plan> plan_;
  std::unordered_map<const ir::Value*, ValueInfo> info_;
  std::set<const DeviceMemory*> used_weights_;
};

Result<int> Builder::upload_weight(const ir::Value* v, const Tensor& data, Layout layout,
                                   DType type, const std::string& variant) {
  auto key = std::make_tuple(v, layout, type, variant);
  std::shared_ptr<DeviceMemory> mem;
  if (auto it = ctx_.weights.find(key); it != ctx_.weights.end() && v) {
    mem = it->second;
  } else {
    QF_ASSIGN_OR_RETURN(Tensor converted, convert_host(data, layout, type));
    QF_ASSIGN_OR_RETURN(mem, DeviceMemory::allocate(static_cast<int64_t>(converted.nbytes())));
    QF_CUDA_RETURN(
        cudaMemcpy(mem->ptr, converted.raw(), converted.nbytes(), cudaMemcpyHostToDevice));
    if (v) ctx_.weights[key] = mem;
  }
  Buffer b;
  b.kind = Buffer::Kind::kWeight;
  b.dtype = type;
  b.shape = data.shape();
  b.layout = layout;
  b.bytes = mem->bytes;
  b.weight = mem;
  b.ptr = mem->ptr;
  return add_buffer(std::move(b));
}

int Builder::add_copy_convert(int src, Layout layout, DType type, const std::string& what) {
  const Buffer s = plan_->buf(src);
  const int dst = new_arena(type, s.shape, layout);
  // Walk dst densely in its physical order; read src through its own strides.
  const std::vector<int> order = physical_order(s.shape.size(), layout);
  const std::vector<int64_t> src_strides = storage_strides(s.shape, s.layout);
  StridedShape view;
  view.rank = static_cast<int>(s.shape.size());
  for (size_t k = 0; k < order.size(); ++k) {
    view.dims[k] = s.shape[static_cast<size_t>(order[k])];
    view.strides[k] = src_strides[static_cast<size_t>(order[k])];
  }
  if (view.rank == 0) {
    view.rank = 1;
    view.dims[0] = 1;
    view.strides[0] = 0;
  }
  const DType from = s.dtype;
  add_step("convert " + what, {src, dst}, [src, dst, view, from, type](Plan& p, DeviceContext& c) {
    return launch_status(launch_strided_copy(p.ptr(src), from, view, p.ptr(dst), type, c.stream),
                         "a layout/type conversion");
  });
  return dst;
}

Result<int> Builder::request_device(const ir::Value* v, Layout layout, DType type) {
  ValueInfo& vi = info(v);
  if (layout == Layout::kNHWC && vi.shape.size() != 4) layout = Layout::kPlain;
  for (int b : vi.buffers) {
    const Buffer& buf = plan_->buf(b);
    if (buf.on_device() && buf.layout == layout && buf.dtype == type) return b;
  }
  if (vi.known.defined()) {
    QF_ASSIGN_OR_RETURN(int b, upload_weight(v, vi.known, layout, type, ""));
    vi.buffers.push_back(b);
    return b;
  }
  // From a device copy in another layout or type: one conversion kernel.
  for (int b : vi.buffers) {
    const Buffer& buf = plan_->buf(b);
    if (buf.on_device() && is_storage_float(buf.dtype) && is_storage_float(type)) {
      const int d = add_copy_convert(b, layout, type, v->name);
      info(v).buffers.push_back(d);
      return d;
    }
  }
  // From the host: upload as it is, then convert on the device if needed.
  int host = -1;
  for (int b : vi.buffers) {
    if (!plan_->buf(b).on_device()) host = b;
  }
  if (host < 0) return internal_error("value '{}' is used before it is computed", v->name);
  const int d = new_arena(plan_->buf(host).dtype, vi.shape, Layout::kPlain);
  const int64_t bytes = plan_->buf(host).bytes;
  add_step("upload " + v->name, {d}, [host, d, bytes](Plan& p, DeviceContext& c) -> Status {
    QF_CUDA_RETURN(cudaMemcpyAsync(p.ptr(d), p.buf(host).host.raw(), static_cast<size_t>(bytes),
                                   cudaMemcpyHostToDevice, c.stream));
    return {};
  });
  info(v).buffers.push_back(d);
  if (plan_->buf(d).dtype == type && layout == Layout::kPlain) return d;
  if (!is_storage_float(type) || !is_storage_float(plan_->buf(d).dtype)) {
    return unsupported("value '{}' of type {} cannot be converted to {} on the device", v->name,
                       dt(plan_->buf(d).dtype), dt(type));
  }
  const int conv = add_copy_convert(d, layout, type, v->name);
  info(v).buffers.push_back(conv);
  return conv;
}

Result<int> Builder::request_host(const ir::Value* v) {
  ValueInfo& vi = info(v);
  for (int b : vi.buffers) {
    if (!plan_->buf(b).on_device()) return b;
  }
  if (vi.known.defined()) {
    Buffer b;
    b.kind = Buffer::Kind::kHost;
    b.dtype = vi.known.dtype();
    b.shape = vi.shape;
    b.host = vi.known;
    b.bytes = static_cast<int64_t>(vi.known.nbytes());
    const int id = add_buffer(std::move(b));
    info(v).buffers.push_back(id);
    return id;
  }
  // The logical type, plain, on the device first; then one copy down.
  QF_ASSIGN_OR_RETURN(const int d, request_device(v, Layout::kPlain, info(v).dtype));
  QF_ASSIGN_OR_RETURN(const int h, new_host(info(v).dtype, info(v).shape));
  const int64_t bytes = plan_->buf(h).bytes;
  add_step("download " + v->name, {d}, [d, h, bytes](Plan& p, DeviceContext& c) -> Status {
    QF_CUDA_RETURN(cudaMemcpyAsync(p.buf(h).host.raw(), p.ptr(d), static_cast<size_t>(bytes),
                                   cudaMemcpyDeviceToHost, c.stream));
    return {};
  });
  info(v).buffers.push_back(h);
  return h;
}

Status Builder::infer_concrete(const std::vector<Shape>& shapes, const std::vector<DType>& dtypes) {
  for (const ir::Value* c : graph_.constants()) {
    info_[c] = ValueInfo{c->constant.dtype(), c->constant.shape(), c->constant, {}};
  }
  for (size_t i = 0; i < graph_.inputs.size(); ++i) {
    info_[graph_.inputs[i]] = ValueInfo{dtypes[i], shapes[i], Tensor(), {}};
  }
  for (const auto& node_ptr : graph_.nodes()) {
    const ir::Node& node = *node_ptr;
    QF_RETURN_IF_ERROR(ir::check_supported(node));
    const ir::OpDef* def = ir::OpRegistry::global().find(node.domain, node.op_type, node.opset);
    if (!def->infer) return unsupported("{}: no shape function", node.label());
    ir::InferContext ictx{node, {}, std::vector<ir::InferOutput>(node.outputs.size())};
    bool all_known = true;
    for (const ir::Value* in : node.inputs) {
      ir::InferInput ii;
      if (in) {
        auto it = info_.find(in);
        if (it == info_.end()) {
          return internal_error("{}: input '{}' is not computed before it", node.label(), in->name);
        }
        ii = {true, it->second.dtype, ir::to_sym_shape(it->second.shape),
              it->second.known.defined() ? &it->second.known : nullptr};
        all_known = all_known && ii.value;
      }
      ictx.inputs.push_back(ii);
    }
    QF_RETURN_IF_ERROR(def->infer(ictx));
    std::vector<Shape> out_shapes(node.outputs.size());
    bool small = true;
    for (size_t i = 0; i < node.outputs.size(); ++i) {
      if (!node.has_output(i)) continue;
      const ir::InferOutput& o = ictx.outputs[i];
      auto concrete = o.shape ? ir::to_concrete(*o.shape) : std::nullopt;
      if (!concrete || o.dtype == DType::kUndefined) {
        return unsupported(
            "{}: the shape of output '{}' depends on the input data, which the cuda backend "
            "cannot plan ahead",
            node.label(), node.outputs[i]->name);
      }
      out_shapes[i] = *concrete;
      small = small && shape_numel(*concrete) <= kMaxFoldedElements;
    }
    // Small all-constant computations (shape arithmetic) are folded now, as the cpu backend does.
    std::vector<Tensor> values(node.outputs.size());
    bool folded = false;
    if (all_known && small && def->reference) {
      std::vector<const Tensor*> ins;
      for (const ir::InferInput& in : ictx.inputs) ins.push_back(in.value);
      for (size_t i = 0; i < values.size(); ++i) {
        if (node.has_output(i)) values[i] = Tensor(ictx.outputs[i].dtype, out_shapes[i]);
      }
      ir::KernelContext kctx{node, ins, values};
      folded = def->reference(kctx).ok();
    }
    for (size_t i = 0; i < node.outputs.size(); ++i) {
      if (!node.has_output(i)) continue;
      info_[node.outputs[i]] = ValueInfo{
          ictx.outputs[i].dtype, out_shapes[i], folded ? values[i] : ictx.outputs[i].value, {}};
    }
  }
  return {};
}

// ---- Conv / FusedConv: cuDNN, NHWC ----

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
  auto conv = std::make_shared<CudnnConv>();
  QF_CUDNN_RETURN(cudnnCreateTensorDescriptor(&conv->x));
  QF_CUDNN_RETURN(cudnnCreateTensorDescriptor(&conv->y));
  QF_CUDNN_RETURN(cudnnCreateFilterDescriptor(&conv->w));
  QF_CUDNN_RETURN(cudnnCreateConvolutionDescriptor(&conv->conv));
  auto i32 = [](int64_t v) { return static_cast<int>(v); };
  QF_CUDNN_RETURN(cudnnSetTensor4dDescriptor(conv->x, CUDNN_TENSOR_NHWC, cudnn_type(t), i32(xs[0]),
                                             i32(xs[1]), i32(xs[2]), i32(xs[3])));
  QF_CUDNN_RETURN(cudnnSetTensor4dDescriptor(conv->y, CUDNN_TENSOR_NHWC, cudnn_type(t), i32(ys[0]),
                                             i32(ys[1]), i32(ys[2]), i32(ys[3])));
  QF_CUDNN_RETURN(cudnnSetFilter4dDescriptor(conv->w, cudnn_type(t), CUDNN_TENSOR_NHWC, i32(ws[0]),
                                             i32(ws[1]), i32(ws[2]), i32(ws[3])));
  // fp32 accumulation at every precision (cuDNN's PSEUDO_HALF / PSEUDO_BFLOAT16 configs).
  QF_CUDNN_RETURN(cudnnSetConvolution2dDescriptor(
      conv->conv, i32(g.pad_begin[0]), i32(g.pad_begin[1]), i32(g.strides[0]), i32(g.strides[1]),
      i32(g.dilations[0]), i32(g.dilations[1]), CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
  QF_CUDNN_RETURN(cudnnSetConvolutionGroupCount(conv->conv, i32(group)));
  // fp32 means fp32: FMA kernels only (cuDNN's default math would allow TF32 tensor cores).
  const cudnnMathType_t math =
      ctx_.precision == runtime::Precision::kFP32 ? CUDNN_FMA_MATH : CUDNN_TENSOR_OP_MATH;
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
  const bool fp32 = ctx_.precision == runtime::Precision::kFP32;
  int chosen = -1;
  for (int pass = 0; pass < 2 && chosen < 0; ++pass) {
    for (int i = 0; i < returned && chosen < 0; ++i) {
      const bool math_ok = !fp32 || pass == 1 || perf[i].mathType == CUDNN_FMA_MATH;
      if (perf[i].status == CUDNN_STATUS_SUCCESS && math_ok &&
          static_cast<int64_t>(perf[i].memory) <= kMaxWorkspace) {
        chosen = i;
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
  const int64_t ws_bytes = static_cast<int64_t>(perf[chosen].memory);
  need_workspace(ws_bytes);

  QF_ASSIGN_OR_RETURN(const int xb, request_device(x, Layout::kNHWC, t));
  QF_ASSIGN_OR_RETURN(const int wb, upload_weight(w, *known(w), Layout::kNHWC, t, "conv"));
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
    QF_ASSIGN_OR_RETURN(fused_bias,
                        try_fused_conv(*conv, bias, ys, t, relu, xs, ws_bytes, plan_->buf(wb).ptr));
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
  std::string impl =
      fmt::format("cudnn_{}_nhwc_{}{} [cuda]", fused_conv ? "conv_bias_act" : "conv", dt(t),
                  ctx_.precision == runtime::Precision::kFP32 ? "_fma" : "_tensorop");
  if (epilogue) impl += " + epilogue_kernel";
  std::string op = "Conv";
  if (z) op += "+Add";
  if (act.kind != ops::Activation::kNone) op += "+" + std::string(ops::activation_name(act.kind));
  add_kernel(node, op, impl);
  return true;
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

// ---- Gemm / MatMul and their fused forms: cuBLASLt ----

Result<bool> Builder::lower_gemm(const ir::Node& node, std::string* why) {
  const bool is_gemm = node.op_type == "Gemm" || node.op_type == "FusedGemm";
  const bool fused = node.domain == ops::kFusedDomain;
  const ir::Value* a = node.inputs[0];
  const ir::Value* bv = node.inputs[1];
  const ir::Value* y = node.outputs[0];
  if (!float_value(a) || !float_value(bv)) {
    *why = "only f32 matrix products run in cuBLASLt here";
    return false;
  }
  const Shape& as = shape(a);
  const Shape& bs = shape(bv);
  const Shape& ys = shape(y);
  bool trans_a = false, trans_b = false;
  float alpha = 1.f, beta = 1.f;
  int64_t m = 0, n = 0, k = 0, batch = 1;
  if (is_gemm) {
    trans_a = node.attrs.get_int("transA", 0) != 0;
    trans_b = node.attrs.get_int("transB", 0) != 0;
    alpha = node.attrs.get_float("alpha", 1.f);
    beta = node.attrs.get_float("beta", 1.f);
    if (as.size() != 2 || bs.size() != 2) {
      *why = "Gemm operands must be 2-D";
      return false;
    }
    m = trans_a ? as[1] : as[0];
    k = trans_a ? as[0] : as[1];
    n = trans_b ? bs[0] : bs[1];
  } else {
    if (as.size() < 2 || bs.size() < 2) {
      *why = "1-D MatMul operands";
      return false;
    }
    k = as.back();
    n = bs.back();
    if (bs.size() == 2) {
      m = shape_numel(as) / k;  // a 2-D B applies to every row of every batch of A
    } else if (as.size() == bs.size() && std::equal(as.begin(), as.end() - 2, bs.begin())) {
      m = as[as.size() - 2];
      batch = shape_numel(as) / (m * k);
    } else {
      *why = "MatMul with broadcast batch dims";
      return false;
    }
  }
  // Where C, Bias and the residual Z go: cuBLASLt's bias vector (length N), its C matrix (beta),
  // or the epilogue kernel.
  const ir::Value* bias = nullptr;
  const ir::Value* cmat = nullptr;
  float bias_scale = 1.f;
  if (node.has_input(2)) {
    const ir::Value* cv = node.inputs[2];
    const Shape& cs = shape(cv);
    if (!float_value(cv)) {
      *why = "a non-f32 bias";
      return false;
    }
    const bool vector = shape_numel(cs) == n && (cs.size() == 1 || (cs.size() == 2 && cs[0] == 1));
    if (!is_gemm || (vector && (beta == 1.f || known(cv)))) {
      if (!is_gemm && !(cs.size() == 1 && cs[0] == n)) {
        *why = "a MatMul bias that is not a vector of N";
        return false;
      }
      bias = cv;
      bias_scale = is_gemm ? beta : 1.f;
    } else if (cs == Shape{m, n} && batch == 1) {
      cmat = cv;
    } else {
      *why = fmt::format("Gemm's C of shape {} (only [N], [1, N] and [M, N] are lowered)",
                         shape_str(cs));
      return false;
    }
  }
  const ir::Value* z = fused && node.has_input(ops::kFusedResidualInput)
                           ? node.inputs[ops::kFusedResidualInput]
                           : nullptr;
  ops::ActivationSpec act;
  if (fused) {
    QF_ASSIGN_OR_RETURN(act, ops::read_activation(node));
  }
  float c_beta = cmat ? beta : 0.f;
  bool z_in_epilogue = false;
  if (z && !cmat) {
    cmat = z;  // the residual is cuBLASLt's C matrix, added before its bias and ReLU
    c_beta = 1.f;
  } else if (z) {
    z_in_epilogue = true;
  }
  const bool lt_relu = act.kind == ops::Activation::kRelu && !z_in_epilogue;
  const bool own_epilogue = z_in_epilogue || (act.kind != ops::Activation::kNone && !lt_relu);

  const DType t = cdt();
  auto mm = std::make_shared<LtMatmul>();
  const cublasComputeType_t compute = ctx_.precision == runtime::Precision::kTF32
                                          ? CUBLAS_COMPUTE_32F_FAST_TF32
                                          : CUBLAS_COMPUTE_32F;
  QF_CUBLAS_RETURN(cublasLtMatmulDescCreate(&mm->desc, compute, CUDA_R_32F));
  // Row-major Y[M,N] = A B is column-major Y^T[N,M] = B^T A^T: cuBLASLt's A is our B.
  const cublasOperation_t op_a = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_b = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  QF_CUBLAS_RETURN(
      cublasLtMatmulDescSetAttribute(mm->desc, CUBLASLT_MATMUL_DESC_TRANSA, &op_a, sizeof(op_a)));
  QF_CUBLAS_RETURN(
      cublasLtMatmulDescSetAttribute(mm->desc, CUBLASLT_MATMUL_DESC_TRANSB, &op_b, sizeof(op_b)));
  cublasLtEpilogue_t epi = bias ? (lt_relu ? CUBLASLT_EPILOGUE_RELU_BIAS : CUBLASLT_EPILOGUE_BIAS)
                                : (lt_relu ? CUBLASLT_EPILOGUE_RELU : CUBLASLT_EPILOGUE_DEFAULT);
  QF_CUBLAS_RETURN(
      cublasLtMatmulDescSetAttribute(mm->desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof(epi)));
  const cudaDataType_t bt = blas_type(t);
  auto u64 = [](int64_t v) { return static_cast<uint64_t>(v); };
  if (trans_b) {
    QF_CUBLAS_RETURN(cublasLtMatrixLayoutCreate(&mm->a, bt, u64(k), u64(n), k));
  } else {
    QF_CUBLAS_RETURN(cublasLtMatrixLayoutCreate(&mm->a, bt, u64(n), u64(k), n));
  }
  if (trans_a) {
    QF_CUBLAS_RETURN(cublasLtMatrixLayoutCreate(&mm->b, bt, u64(m), u64(k), m));
  } else {
    QF_CUBLAS_RETURN(cublasLtMatrixLayoutCreate(&mm->b, bt, u64(k), u64(m), k));
  }
  QF_CUBLAS_RETURN(cublasLtMatrixLayoutCreate(&mm->c, bt, u64(n), u64(m), n));
  QF_CUBLAS_RETURN(cublasLtMatrixLayoutCreate(&mm->d, bt, u64(n), u64(m), n));
  if (batch > 1) {
    const int32_t count = static_cast<int32_t>(batch);
    const int64_t sa = n * k, sb = m * k, sd = m * n;
    const std::pair<cublasLtMatrixLayout_t, int64_t> layouts[] = {
        {mm->a, sa}, {mm->b, sb}, {mm->c, sd}, {mm->d, sd}};
    for (const auto& [l, stride] : layouts) {
      QF_CUBLAS_RETURN(cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT,
                                                        &count, sizeof(count)));
      QF_CUBLAS_RETURN(cublasLtMatrixLayoutSetAttribute(
          l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride, sizeof(stride)));
    }
  }
  cublasLtMatmulPreference_t pref = nullptr;
  QF_CUBLAS_RETURN(cublasLtMatmulPreferenceCreate(&pref));
  const uint64_t max_ws = static_cast<uint64_t>(kGemmWorkspace);
  cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &max_ws,
                                       sizeof(max_ws));
  cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  const cublasStatus_t hs = cublasLtMatmulAlgoGetHeuristic(ctx_.cublaslt, mm->desc, mm->a, mm->b,
                                                           mm->c, mm->d, pref, 1, &result, &found);
  cublasLtMatmulPreferenceDestroy(pref);
  if (hs != CUBLAS_STATUS_SUCCESS || found == 0) {
    *why = fmt::format("cuBLASLt has no algorithm for it ({})", cublasLtGetStatusString(hs));
    return false;
  }
  mm->algo = result.algo;
  mm->workspace = static_cast<int64_t>(result.workspaceSize);
  need_workspace(mm->workspace);

  QF_ASSIGN_OR_RETURN(const int ab, request_device(a, Layout::kPlain, t));
  QF_ASSIGN_OR_RETURN(const int bb, request_device(bv, Layout::kPlain, t));
  int biasb = -1, cb = -1, zb = -1;
  if (bias) {
    if (bias_scale != 1.f) {
      Tensor scaled = known(bias)->clone();
      for (float& v : scaled.span<float>()) v *= bias_scale;
      QF_ASSIGN_OR_RETURN(biasb, upload_weight(bias, scaled, Layout::kPlain, t,
                                               fmt::format("scaled {}", bias_scale)));
    } else {
      QF_ASSIGN_OR_RETURN(biasb, request_device(bias, Layout::kPlain, t));
    }
  }
  if (cmat) {
    QF_ASSIGN_OR_RETURN(cb, request_device(cmat, Layout::kPlain, t));
  }
  if (z_in_epilogue) {
    QF_ASSIGN_OR_RETURN(zb, request_device(z, Layout::kPlain, t));
  }
  const int yb = new_arena(t, ys, Layout::kPlain);
  info(y).buffers.push_back(yb);
  const ActParams ap = lt_relu ? ActParams{} : to_act(act);
  const int64_t count = shape_numel(ys);
  add_step(node.label(), {ab, bb, biasb, cb, zb, yb, plan_->workspace},
           [=](Plan& p, DeviceContext& c) -> Status {
             if (biasb >= 0) {
               void* bp = p.ptr(biasb);
               QF_CUBLAS_RETURN(cublasLtMatmulDescSetAttribute(
                   mm->desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bp, sizeof(bp)));
             }
             const void* cp = cb >= 0 ? p.ptr(cb) : p.ptr(yb);
             QF_CUBLAS_RETURN(cublasLtMatmul(c.cublaslt, mm->desc, &alpha, p.ptr(bb), mm->a,
                                             p.ptr(ab), mm->b, &c_beta, cp, mm->c, p.ptr(yb), mm->d,
                                             &mm->algo, p.ptr(p.workspace),
                                             static_cast<size_t>(mm->workspace), c.stream));
             if (!own_epilogue) return {};
             return launch_status(
                 launch_epilogue(p.ptr(yb), t, count, nullptr, 1, p.ptr(zb), ap, c.stream),
                 "the GEMM epilogue");
           });
  std::string impl = fmt::format("cublaslt_{}_{}{} [cuda]", is_gemm ? "gemm" : "matmul", dt(t),
                                 ctx_.precision == runtime::Precision::kTF32 ? "_tf32" : "");
  if (bias || lt_relu) impl += lt_relu ? " +bias_relu_epilogue" : " +bias_epilogue";
  if (own_epilogue) impl += " + epilogue_kernel";
  std::string op = is_gemm ? "Gemm" : "MatMul";
  if (z) op += "+Add";
  if (act.kind != ops::Activation::kNone) op += "+" + std::string(ops::activation_name(act.kind));
  add_kernel(node, op, impl);
  return true;
}

// ---- elementwise ----

Result<bool> Builder::lower_binary(const ir::Node& node, BinaryOp op, std::string* why) {
  if (node.inputs.size() != 2 || !float_value(node.inputs[0]) || !float_value(node.inputs[1]) ||
      !float_value(node.outputs[0])) {
    *why = "only two f32 operands run on the device";
    return false;
  }
  const Shape& ys = shape(node.outputs[0]);
  const size_t r = ys.size();
  if (r > static_cast<size_t>(kMaxDims) || shape_numel(ys) == 0) {
    *why = "rank above 6 or empty";
    return false;
  }
  // NHWC when a 4-D operand already lives in NHWC (the common conv -> Add/Mul case).
  Layout out_layout = Layout::kPlain;
  for (const ir::Value* in : node.inputs) {
    if (r == 4 && shape(in).size() == 4 && native_layout(in) == Layout::kNHWC) {
      out_layout = Layout::kNHWC;
    }
  }
  const DType t = cdt();
  const std::vector<int> order = physical_order(r, out_layout);
  StridedShape views[2];
  int ins[2];
  for (int i = 0; i < 2; ++i) {
    const ir::Value* in = node.inputs[static_cast<size_t>(i)];
    const Shape& s = shape(in);
    const Layout l = s.size() == 4 && r == 4 ? out_layout : Layout::kPlain;
    QF_ASSIGN_OR_RETURN(ins[i], request_device(in, l, t));
    // Strides of the operand right-aligned to the output's rank; 0 along broadcast dims.
    std::vector<int64_t> st = storage_strides(s, l);
    std::vector<int64_t> full(r, 0);
    for (size_t d = 0; d < s.size(); ++d) {
      const size_t od = r - s.size() + d;
      full[od] = s[d] == 1 && ys[od] != 1 ? 0 : st[d];
    }
    views[i].rank = static_cast<int>(r);
    for (size_t k = 0; k < r; ++k) {
      views[i].dims[k] = ys[static_cast<size_t>(order[k])];
      views[i].strides[k] = full[static_cast<size_t>(order[k])];
    }
    if (r == 0) {
      views[i].rank = 1;
      views[i].dims[0] = 1;
    }
  }
  const int yb = new_arena(t, ys, out_layout);
  info(node.outputs[0]).buffers.push_back(yb);
  const int a = ins[0], b = ins[1];
  const StridedShape av = views[0], bv = views[1];
  const std::string name = node.op_type;
  add_step(node.label(), {a, b, yb}, [=](Plan& p, DeviceContext& c) {
    return launch_status(launch_binary(op, p.ptr(a), av, p.ptr(b), bv, p.ptr(yb), t, c.stream),
                         name);
  });
  add_kernel(node, node.op_type,
             fmt::format("binary_broadcast_{}{} [cuda]", dt(t),
                         out_layout == Layout::kNHWC ? "_nhwc" : ""));
  return true;
}

Result<bool> Builder::lower_unary(const ir::Node& node, std::string* why) {
  const ir::Value* x = node.inputs[0];
  if (!float_value(x)) {
    *why = "a non-f32 input";
    return false;
  }
  ActParams ap;
  const std::string& op = node.op_type;
  if (op == "Relu") {
    ap.kind = Act::kRelu;
  } else if (op == "LeakyRelu") {
    ap = {Act::kLeakyRelu, node.attrs.get_float("alpha", 0.01f), 0.f};
  } else if (op == "Sigmoid") {
    ap.kind = Act::kSigmoid;
  } else if (op == "Tanh") {
    ap.kind = Act::kTanh;
  } else if (op == "HardSigmoid") {
    ap = {Act::kHardSigmoid, node.attrs.get_float("alpha", 0.2f),
          node.attrs.get_float("beta", 0.5f)};
  } else if (op == "HardSwish") {
    ap.kind = Act::kHardSwish;
  } else if (op == "Gelu") {
    if (node.attrs.get_string("approximate", "none") != "none") {
      *why = "Gelu's tanh approximation";
      return false;
    }
    ap.kind = Act::kGELU;
  } else if (op == "Clip") {
    ap = {Act::kClip, -INFINITY, INFINITY};
    for (size_t i = 1; i < 3; ++i) {
      if (!node.has_input(i)) continue;
      const Tensor* bound = known(node.inputs[i]);
      if (!bound || bound->dtype() != DType::kF32 || bound->numel() != 1) {
        *why = "Clip bounds that are not constant f32 scalars";
        return false;
      }
      (i == 1 ? ap.alpha : ap.beta) = bound->data<float>()[0];
    }
  } else if (op == "Exp") {
    ap.kind = Act::kExp;
  } else if (op == "Log") {
    ap.kind = Act::kLog;
  } else if (op == "Sqrt") {
    ap.kind = Act::kSqrt;
  } else if (op == "Erf") {
    ap.kind = Act::kErf;
  } else if (op == "Abs") {
    ap.kind = Act::kAbs;
  } else if (op == "Neg") {
    ap.kind = Act::kNeg;
  } else if (op == "Reciprocal") {
    ap.kind = Act::kReciprocal;
  } else {  // Identity
    ap.kind = Act::kNone;
  }
  const DType t = cdt();
  const Layout l = native_layout(x);
  QF_ASSIGN_OR_RETURN(const int xb, request_device(x, l, t));
  const int yb = new_arena(t, shape(node.outputs[0]), plan_->buf(xb).layout);
  info(node.outputs[0]).buffers.push_back(yb);
  const int64_t count = shape_numel(shape(x));
  add_step(node.label(), {xb, yb}, [=](Plan& p, DeviceContext& c) {
    return launch_status(launch_unary(p.ptr(xb), p.ptr(yb), t, count, ap, c.stream), op);
  });
  add_kernel(node, op,
             fmt::format("unary_{}{} [cuda]", dt(t),
                         plan_->buf(xb).layout == Layout::kNHWC ? "_nhwc" : ""));
  return true;
}

Result<bool> Builder::lower_pool(const ir::Node& node, std::string* why) {
  const ir::Value* x = node.inputs[0];
  const Shape& xs = shape(x);
  if (!float_value(x) || xs.size() != 4 || node.outputs.size() > 1) {
    *why = "only 2-D f32 pooling without indices runs on the device";
    return false;
  }
  const Shape& ys = shape(node.outputs[0]);
  Pool2d p;
  p.n = xs[0];
  p.c = xs[1];
  p.h = xs[2];
  p.w = xs[3];
  p.oh = ys[2];
  p.ow = ys[3];
  p.max = node.op_type == "MaxPool" || node.op_type == "GlobalMaxPool";
  if (node.op_type == "GlobalAveragePool" || node.op_type == "GlobalMaxPool") {
    p.kh = xs[2];
    p.kw = xs[3];
  } else {
    if (node.attrs.get_int("storage_order", 0) != 0) {
      *why = "storage_order";
      return false;
    }
    QF_ASSIGN_OR_RETURN(ops::WindowAttrs wa, ops::read_window_attrs(node, 2, {}));
    QF_ASSIGN_OR_RETURN(ops::WindowGeometry g, ops::window_geometry(node, wa, {xs[2], xs[3]}));
    if (g.out != Shape{ys[2], ys[3]}) {
      return internal_error("{}: pooling geometry disagrees with shape inference", node.label());
    }
    p.kh = g.kernel[0];
    p.kw = g.kernel[1];
    p.sh = g.strides[0];
    p.sw = g.strides[1];
    p.dh = g.dilations[0];
    p.dw = g.dilations[1];
    p.pad_top = g.pad_begin[0];
    p.pad_left = g.pad_begin[1];
    p.pad_bottom = g.pad_end[0];
    p.pad_right = g.pad_end[1];
    p.count_include_pad = node.attrs.get_int("count_include_pad", 0) != 0;
  }
  const DType t = cdt();
  QF_ASSIGN_OR_RETURN(const int xb, request_device(x, Layout::kNHWC, t));
  const int yb = new_arena(t, ys, Layout::kNHWC);
  info(node.outputs[0]).buffers.push_back(yb);
  const std::string name = node.op_type;
  add_step(node.label(), {xb, yb}, [=](Plan& pl, DeviceContext& c) {
    return launch_status(launch_pool2d(pl.ptr(xb), pl.ptr(yb), t, p, c.stream), name);
  });
  add_kernel(node, node.op_type, fmt::format("pool2d_nhwc_{} [cuda]", dt(t)));
  return true;
}

Result<bool> Builder::lower_softmax(const ir::Node& node, bool log, std::string* why) {
  const ir::Value* x = node.inputs[0];
  if (!float_value(x)) {
    *why = "a non-f32 input";
    return false;
  }
  const Shape& xs = shape(x);
  const int64_t r = static_cast<int64_t>(xs.size());
  int64_t axis = node.attrs.get_int("axis", node.opset >= 13 ? -1 : 1);
  if (axis < 0) axis += r;
  if (axis < 0 || axis >= std::max<int64_t>(r, 1)) return false;
  int64_t outer = 1, len = 1, inner = 1;
  for (int64_t d = 0; d < r; ++d) {
    const int64_t e = xs[static_cast<size_t>(d)];
    if (d < axis) {
      outer *= e;
    } else if (d == axis || node.opset < 13) {
      len *= e;  // before opset 13 the input is coerced to 2-D at `axis`
    } else {
      inner *= e;
    }
  }
  const DType t = cdt();
  QF_ASSIGN_OR_RETURN(const int xb, request_device(x, Layout::kPlain, t));
  const int yb = new_arena(t, shape(node.outputs[0]), Layout::kPlain);
  info(node.outputs[0]).buffers.push_back(yb);
  const std::string name = node.op_type;
  add_step(node.label(), {xb, yb}, [=](Plan& p, DeviceContext& c) {
    return launch_status(launch_softmax(p.ptr(xb), p.ptr(yb), t, outer, len, inner, log, c.stream),
                         name);
  });
  add_kernel(node, node.op_type, fmt::format("softmax_{} [cuda]", dt(t)));
  return true;
}

// LayerNormalization (Y only) with constant Scale and B of the normalized size.
Result<bool> Builder::lower_layer_norm(const ir::Node& node, std::string* why) {
  const ir::Value* x = node.inputs[0];
  const Shape& xs = shape(x);
  if (!float_value(x) || node.has_output(1) || node.has_output(2) || xs.empty()) {
    *why = "only f32 LayerNormalization without the Mean/InvStdDev outputs runs on the device";
    return false;
  }
  int64_t axis = node.attrs.get_int("axis", -1);
  if (axis < 0) axis += static_cast<int64_t>(xs.size());
  int64_t inner = 1;
  for (size_t d = static_cast<size_t>(axis); d < xs.size(); ++d) inner *= xs[d];
  const int64_t rows = inner == 0 ? 0 : shape_numel(xs) / inner;
  int params[2] = {-1, -1};
  for (size_t i = 1; i < 3; ++i) {
    if (!node.has_input(i)) continue;
    const Tensor* p = known(node.inputs[i]);
    if (!p || p->dtype() != DType::kF32 || p->numel() != inner) {
      *why = "Scale or B not constant f32 of the normalized size";
      return false;
    }
    // fp32 at every precision: two small vectors, read by every row.
    QF_ASSIGN_OR_RETURN(
        params[i - 1], upload_weight(node.inputs[i], *p, Layout::kPlain, DType::kF32, "layernorm"));
  }
  const float eps = node.attrs.get_float("epsilon", 1e-5f);
  const DType t = cdt();
  QF_ASSIGN_OR_RETURN(const int xb, request_device(x, Layout::kPlain, t));
  const int yb = new_arena(t, xs, Layout::kPlain);
  info(node.outputs[0]).buffers.push_back(yb);
  const int sb = params[0], bb = params[1];
  add_step(node.label(), {xb, yb, sb, bb}, [=](Plan& p, DeviceContext& c) {
    return launch_status(launch_layer_norm(p.ptr(xb), p.ptr(yb), t, rows, inner,
                                           static_cast<const float*>(p.ptr(sb)),
                                           static_cast<const float*>(p.ptr(bb)), eps, c.stream),
                         "LayerNormalization");
  });
  add_kernel(node, node.op_type, fmt::format("layer_norm_{} [cuda]", dt(t)));
  return true;
}

// Transpose: one strided copy reading the input through permuted strides.
Result<bool> Builder::lower_transpose(const ir::Node& node, std::string* why) {
  const ir::Value* x = node.inputs[0];
  const Shape& xs = shape(x);
  if (!float_value(x) || xs.empty() || xs.size() > static_cast<size_t>(kMaxDims)) {
    *why = "only f32 tensors of rank 1 to 6 are transposed on the device";
    return false;
  }
  std::vector<int64_t> perm = node.attrs.get_ints("perm", {});
  if (perm.empty()) {
    for (size_t d = xs.size(); d-- > 0;) perm.push_back(static_cast<int64_t>(d));
  }
  const DType t = cdt();
  QF_ASSIGN_OR_RETURN(const int xb, request_device(x, Layout::kPlain, t));
  const std::vector<int64_t> st = dense_strides(xs);
  StridedShape view;
  view.rank = static_cast<int>(xs.size());
  for (size_t k = 0; k < xs.size(); ++k) {
    const size_t from = static_cast<size_t>(perm[k] < 0 ? perm[k] + view.rank : perm[k]);
    view.dims[k] = xs[from];
    view.strides[k] = st[from];
  }
  const int yb = new_arena(t, shape(node.outputs[0]), Layout::kPlain);
  info(node.outputs[0]).buffers.push_back(yb);
  add_step(node.label(), {xb, yb}, [=](Plan& p, DeviceContext& c) {
    return launch_status(launch_strided_copy(p.ptr(xb), t, view, p.ptr(yb), t, c.stream),
                         "Transpose");
  });
  add_kernel(node, node.op_type, fmt::format("strided_copy_{} [cuda]", dt(t)));
  return true;
}

// Concat: each input is one strided copy into its slice of the output.
Result<bool> Builder::lower_concat(const ir::Node& node, std::string* why) {
  const Shape& ys = shape(node.outputs[0]);
  if (!float_value(node.outputs[0]) || ys.empty() || ys.size() > static_cast<size_t>(kMaxDims)) {
    *why = "only f32 tensors of rank 1 to 6 are concatenated on the device";
    return false;
  }
  int64_t axis = node.attrs.get_int("axis", 0);
  if (axis < 0) axis += static_cast<int64_t>(ys.size());
  const DType t = cdt();
  const std::vector<int64_t> out_strides = dense_strides(ys);
  std::vector<int> ins;
  std::vector<std::pair<StridedShape, int64_t>> copies;  // (source view, output offset)
  int64_t offset = 0;
  for (const ir::Value* in : node.inputs) {
    if (!in || !float_value(in)) {
      *why = "a non-f32 input";
      return false;
    }
    const Shape& s = shape(in);
    if (shape_numel(s) == 0) continue;
    QF_ASSIGN_OR_RETURN(const int b, request_device(in, Layout::kPlain, t));
    ins.push_back(b);
    const std::vector<int64_t> st = dense_strides(s);
    StridedShape view;
    view.rank = static_cast<int>(s.size());
    for (size_t d = 0; d < s.size(); ++d) {
      view.dims[d] = s[d];
      view.strides[d] = st[d];
    }
    copies.emplace_back(view, offset);
    offset += s[static_cast<size_t>(axis)] * out_strides[static_cast<size_t>(axis)];
  }
  const int yb = new_arena(t, ys, Layout::kPlain);
  info(node.outputs[0]).buffers.push_back(yb);
  StridedShape dst;
  dst.rank = static_cast<int>(ys.size());
  for (size_t d = 0; d < ys.size(); ++d) dst.strides[d] = out_strides[d];
  std::vector<int> touched = ins;
  touched.push_back(yb);
  const size_t es = dtype_size(t);
  add_step(node.label(), touched, [=](Plan& p, DeviceContext& c) -> Status {
    for (size_t i = 0; i < ins.size(); ++i) {
      auto* out = static_cast<std::byte*>(p.ptr(yb)) + copies[i].second * static_cast<int64_t>(es);
      QF_RETURN_IF_ERROR(launch_status(
          launch_strided_copy(p.ptr(ins[i]), t, copies[i].first, out, t, c.stream, &dst),
          "Concat"));
    }
    return {};
  });
  add_kernel(node, node.op_type, fmt::format("strided_copy_{} x{} [cuda]", dt(t), ins.size()));
  return true;
}

// Reshape-like ops move no data: the output is another shape over the input's plain bytes.
Result<bool> Builder::lower_reshape(const ir::Node& node) {
  const ir::Value* x = node.inputs[0];
  const ir::Value* y = node.outputs[0];
  const ValueInfo& xi = info(x);
  int src = -1;
  for (int b : xi.buffers) {
    if (plan_->buf(b).on_device() && plan_->buf(b).layout == Layout::kPlain) src = b;
  }
  if (src < 0 && float_value(x) && native_layout(x) == Layout::kNHWC) {
    QF_ASSIGN_OR_RETURN(src, request_device(x, Layout::kPlain, cdt()));
  }
  if (src < 0) {
    QF_ASSIGN_OR_RETURN(const int h, request_host(x));
    Buffer b = plan_->buf(h);
    b.shape = shape(y);
    b.host = b.host.reshaped(shape(y));
    info(y).buffers.push_back(add_buffer(std::move(b)));
    add_kernel(node, node.op_type, "alias (no copy) [host]");
    return true;
  }
  Buffer b;
  b.kind = Buffer::Kind::kAlias;
  b.root = plan_->root_of(src);
  b.dtype = plan_->buf(src).dtype;
  b.shape = shape(y);
  b.layout = Layout::kPlain;
  b.bytes = plan_->buf(src).bytes;
  info(y).buffers.push_back(add_buffer(std::move(b)));
  add_kernel(node, node.op_type, "alias (no copy) [cuda]");
  return true;
}

Status Builder::add_reference(const ir::Node& node) {
  const ir::OpDef* def = ir::OpRegistry::global().find(node.domain, node.op_type, node.opset);
  if (!def || !def->reference) return unsupported("{}: no kernel", node.label());
  std::vector<int> ins, outs;
  for (const ir::Value* in : node.inputs) {
    if (!in) {
      ins.push_back(-1);
      continue;
    }
    QF_ASSIGN_OR_RETURN(const int h, request_host(in));
    ins.push_back(h);
  }
  for (const ir::Value* out : node.outputs) {
    if (!out) {
      outs.push_back(-1);
      continue;
    }
    QF_ASSIGN_OR_RETURN(const int h, new_host(info(out).dtype, info(out).shape));
    outs.push_back(h);
    info(out).buffers.push_back(h);
  }
  add_step(node.label() + " (host)", {},
           [&node, def, ins, outs](Plan& p, DeviceContext& c) -> Status {
             // The inputs' downloads were enqueued before: wait for them.
             QF_CUDA_RETURN(cudaStreamSynchronize(c.stream));
             std::vector<const Tensor*> in_tensors;
             for (int b : ins) in_tensors.push_back(b < 0 ? nullptr : &p.buf(b).host);
             std::vector<Tensor> out_tensors;
             for (int b : outs) out_tensors.push_back(b < 0 ? Tensor() : p.buf(b).host);
             for (Tensor& t : out_tensors) {
               if (t.defined()) std::memset(t.raw(), 0, t.nbytes());
             }
             ir::KernelContext kctx{node, in_tensors, out_tensors};
             QF_RETURN_IF_ERROR(def->reference(kctx));
             for (size_t i = 0; i < outs.size(); ++i) {
               if (outs[i] < 0) continue;
               Tensor& home = p.buf(outs[i]).host;
               if (out_tensors[i].raw() == home.raw()) continue;
               if (out_tensors[i].nbytes() != home.nbytes()) {
                 return internal_error("{}: the kernel returned output {} with another size",
                                       node.label(), i);
               }
               std::memcpy(home.raw(), out_tensors[i].raw(), home.nbytes());
             }
             return {};
           });
  std::string in_types;
  for (const ir::Value* in : node.inputs) {
    if (in) in_types += (in_types.empty() ? "" : ",") + dt(info(in).dtype);
  }
  plan_->steps.back().host = true;
  add_kernel(node, node.op_type, fmt::format("reference_{} [host fallback]", in_types));
  return {};
}

Status Builder::add_outputs() {
  for (const ir::Value* v : graph_.outputs) {
    if (!info_.count(v)) return internal_error("graph output '{}' is never computed", v->name);
    QF_ASSIGN_OR_RETURN(const int h, request_host(v));
    plan_->output_buffers.push_back(h);
  }
  return {};
}

Result<bool> Builder::lower(const ir::Node& node, std::string* why) {
  const std::string& op = node.op_type;
  if (node.domain == ops::kFusedDomain) {
    if (op == "FusedConv") return lower_conv(node, true, why);
    if (op == "FusedGemm" || op == "FusedMatMul") return lower_gemm(node, why);
    *why = "unknown fused op";
    return false;
  }
  if (!node.domain.empty() && node.domain != "ai.onnx") {
    *why = "another domain";
    return false;
  }
  if (op == "Conv") return lower_conv(node, false, why);
  if (op == "Gemm" || op == "MatMul") return lower_gemm(node, why);
  static const std::map<std::string, BinaryOp> kBinary = {
      {"Add", BinaryOp::kAdd}, {"Sub", BinaryOp::kSub}, {"Mul", BinaryOp::kMul},
      {"Div", BinaryOp::kDiv}, {"Max", BinaryOp::kMax}, {"Min", BinaryOp::kMin},
      {"Pow", BinaryOp::kPow}};
  if (auto it = kBinary.find(op); it != kBinary.end()) return lower_binary(node, it->second, why);
  static const std::set<std::string> kUnary = {
      "Relu",     "LeakyRelu", "Sigmoid", "Tanh", "HardSigmoid", "HardSwish", "Gelu", "Clip",
      "Identity", "Exp",       "Log",     "Sqrt", "Erf",         "Abs",       "Neg",  "Reciprocal"};
  if (kUnary.count(op)) return lower_unary(node, why);
  if (op == "MaxPool" || op == "AveragePool" || op == "GlobalAveragePool" ||
      op == "GlobalMaxPool") {
    return lower_pool(node, why);
  }
  if (op == "Softmax" || op == "LogSoftmax") return lower_softmax(node, op == "LogSoftmax", why);
  if ((op == "Reshape" || op == "Flatten" || op == "Squeeze" || op == "Unsqueeze") &&
      node.has_output(0)) {
    return lower_reshape(node);
  }
  if (op == "LayerNormalization") return lower_layer_norm(node, why);
  if (op == "Transpose") return lower_transpose(node, why);
  if (op == "Concat") return lower_concat(node, why);
  *why = "no CUDA kernel for this op yet";
  return false;
}

Result<std::unique_ptr<Plan>> Builder::build(const std::vector<Shape>& shapes,
                                             const std::vector<DType>& dtypes) {
  plan_->input_shapes = shapes;
  QF_RETURN_IF_ERROR(infer_concrete(shapes, dtypes));
  // The workspace is one arena buffer live across the whole plan; its size is known at the end.
  plan_->workspace = new_arena(DType::kU8, {1}, Layout::kPlain);
  for (size_t i = 0; i < graph_.inputs.size(); ++i) {
    QF_ASSIGN_OR_RETURN(const int h, new_host(dtypes[i], shapes[i]));
    plan_->input_buffers.push_back(h);
    info(graph_.inputs[i]).buffers.push_back(h);
  }
  for (const auto& node_ptr : graph_.nodes()) {
    const ir::Node& node = *node_ptr;
    bool folded = true;
    for (size_t i = 0; i < node.outputs.size(); ++i) {
      folded = folded && (!node.has_output(i) || known(node.outputs[i]));
    }
    if (folded) continue;
    std::string why;
    QF_ASSIGN_OR_RETURN(const bool lowered, lower(node, &why));
    if (lowered) continue;
    if (verbose()) {
      std::fprintf(stderr, "qforge cuda: %s runs its reference kernel on the host: %s\n",
                   node.label().c_str(), why.c_str());
    }
    QF_RETURN_IF_ERROR(add_reference(node));
  }
  QF_RETURN_IF_ERROR(add_outputs());
  Buffer& ws = plan_->buf(plan_->workspace);
  ws.shape = {std::max<int64_t>(plan_->workspace_bytes, 1)};
  ws.bytes = ws.shape[0];
  ws.first = 0;
  ws.last = std::max(0, step_index() - 1);
  QF_RETURN_IF_ERROR(plan_->finalize());
  return std::move(plan_);
}

}  // namespace

DeviceMemory::~DeviceMemory() {
  if (ptr) cudaFree(ptr);
}

Result<std::shared_ptr<DeviceMemory>> DeviceMemory::allocate(int64_t bytes) {
  auto m = std::make_shared<DeviceMemory>();
  m->bytes = std::max<int64_t>(bytes, 1);
  const cudaError_t e = cudaMalloc(&m->ptr, static_cast<size_t>(m->bytes));
  if (e != cudaSuccess) {
    m->ptr = nullptr;
    return invalid_input("cannot allocate {} bytes of device memory: {}", bytes,
                         cudaGetErrorString(e));
  }
  return m;
}

Result<Tensor> pinned_tensor(DType dtype, const Shape& shape) {
  const size_t bytes =
      std::max<size_t>(static_cast<size_t>(shape_numel(shape)) * dtype_size(dtype), 1);
  void* p = nullptr;
  const cudaError_t e = cudaMallocHost(&p, bytes);
  if (e != cudaSuccess) {
    return invalid_input("cannot allocate {} bytes of pinned host memory: {}", bytes,
                         cudaGetErrorString(e));
  }
  std::memset(p, 0, bytes);
  std::shared_ptr<std::byte[]> storage(static_cast<std::byte*>(p),
                                       [](std::byte* q) { cudaFreeHost(q); });
  return Tensor::view(dtype, shape, std::move(storage));
}

Status Plan::enqueue_steps(DeviceContext& ctx) {
  for (Step& s : steps) {
    Status st = s.run(*this, ctx);
    if (!st.ok()) return st.with_context(s.label + ": ");
  }
  return {};
}

Plan::~Plan() {
  if (graph_exec_) cudaGraphExecDestroy(graph_exec_);
  if (profiled_runs_ == 0) return;
  double total = 0;
  std::map<std::string, double> by_kind;
  for (size_t i = 0; i < steps.size(); ++i) {
    total += step_seconds_[i];
    // "node 'conv1' (Conv)" -> "Conv"; "convert x" -> "convert".
    const std::string& l = steps[i].label;
    const size_t open = l.rfind('(');
    std::string kind = open != std::string::npos && l.back() == ')'
                           ? l.substr(open + 1, l.size() - open - 2)
                           : l.substr(0, l.find(' '));
    if (l.size() > 7 && l.compare(l.size() - 7, 7, " (host)") == 0) kind = "host fallback";
    by_kind[kind] += step_seconds_[i];
  }
  const double runs = profiled_runs_;
  std::fprintf(stderr,
               "qforge cuda profile: %zu steps, %d runs, %.3f ms per run (synchronized "
               "after every step)\n",
               steps.size(), profiled_runs_, 1e3 * total / runs);
  for (const auto& [k, t] : by_kind)
    std::fprintf(stderr, "  %-20s %8.3f ms\n", k.c_str(), 1e3 * t / runs);
  std::vector<size_t> order(steps.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return step_seconds_[a] > step_seconds_[b]; });
  for (size_t k = 0; k < std::min<size_t>(order.size(), 12); ++k) {
    std::fprintf(stderr, "  %8.3f ms  %s\n", 1e3 * step_seconds_[order[k]] / runs,
                 steps[order[k]].label.c_str());
  }
}

Status Plan::finalize() {
  profile_ = std::getenv("QFORGE_CUDA_PROFILE") != nullptr;
  try_graph_ = std::getenv("QFORGE_CUDA_NO_GRAPH") == nullptr &&
               std::none_of(steps.begin(), steps.end(), [](const Step& s) { return s.host; });
  std::vector<cpu::ArenaRequest> requests;
  std::vector<size_t> roots;
  for (size_t i = 0; i < buffers.size(); ++i) {
    Buffer& b = buffers[i];
    if (b.kind != Buffer::Kind::kArena) continue;
    if (b.first < 0) b.first = b.last = 0;
    requests.push_back({b.bytes, b.first, std::max(b.first, b.last)});
    roots.push_back(i);
  }
  const cpu::ArenaLayout layout = cpu::plan_arena(requests, kDeviceAlignment);
  arena_bytes = layout.size;
  QF_ASSIGN_OR_RETURN(arena_, DeviceMemory::allocate(layout.size));
  for (size_t k = 0; k < roots.size(); ++k) {
    buffers[roots[k]].offset = layout.offsets[k];
    buffers[roots[k]].ptr = static_cast<std::byte*>(arena_->ptr) + layout.offsets[k];
  }
  for (Buffer& b : buffers) {
    if (b.kind == Buffer::Kind::kAlias) b.ptr = buffers[static_cast<size_t>(b.root)].ptr;
  }
  return {};
}

Result<std::vector<Tensor>> Plan::run(const std::vector<Tensor>& inputs, DeviceContext& ctx) {
  for (size_t i = 0; i < input_buffers.size(); ++i) {
    Tensor& staging = buf(input_buffers[i]).host;
    std::memcpy(staging.raw(), inputs[i].raw(), staging.nbytes());
  }
  if (!profile_ && try_graph_ && !graph_exec_) {
    // Capture once; anything that refuses capture leaves the plan on eager launches.
    try_graph_ = false;
    cudaGraph_t graph = nullptr;
    if (cudaStreamBeginCapture(ctx.stream, cudaStreamCaptureModeThreadLocal) == cudaSuccess) {
      const Status st = enqueue_steps(ctx);
      const cudaError_t end = cudaStreamEndCapture(ctx.stream, &graph);
      if (st.ok() && end == cudaSuccess && graph &&
          cudaGraphInstantiate(&graph_exec_, graph, 0) != cudaSuccess) {
        graph_exec_ = nullptr;
      }
      if (graph) cudaGraphDestroy(graph);
    }
    cudaGetLastError();  // a refused capture is not an error of this run
  }
  if (graph_exec_) {
    QF_CUDA_RETURN(cudaGraphLaunch(graph_exec_, ctx.stream));
  } else if (!profile_) {
    QF_RETURN_IF_ERROR(enqueue_steps(ctx));
  } else {
    using clock = std::chrono::steady_clock;
    step_seconds_.resize(steps.size(), 0.0);
    ++profiled_runs_;
    for (size_t i = 0; i < steps.size(); ++i) {
      const clock::time_point start = clock::now();
      Status st = steps[i].run(*this, ctx);
      if (!st.ok()) return st.with_context(steps[i].label + ": ");
      QF_CUDA_RETURN(cudaStreamSynchronize(ctx.stream));
      step_seconds_[i] += std::chrono::duration<double>(clock::now() - start).count();
    }
  }
  QF_CUDA_RETURN(cudaStreamSynchronize(ctx.stream));
  std::vector<Tensor> results;
  for (int b : output_buffers) {
    const Tensor& h = buf(b).host;
    Tensor out(h.dtype(), h.shape());
    std::memcpy(out.raw(), h.raw(), out.nbytes());
    results.push_back(std::move(out));
  }
  return results;
}

Result<std::unique_ptr<Plan>> build_plan(const ir::Graph& graph, DeviceContext& ctx,
                                         const std::vector<Shape>& input_shapes,
                                         const std::vector<DType>& input_dtypes) {
  Builder b(graph, ctx);
  return b.build(input_shapes, input_dtypes);
}

}  // namespace qf::cuda
