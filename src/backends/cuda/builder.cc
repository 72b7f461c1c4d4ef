// The cuda plan builder's core: value and buffer bookkeeping, concrete shapes, the walk over the
// nodes and the choice of a lowering for each (see lowering.h).
#include <fmt/format.h>

#include <cstdio>
#include <cstring>
#include <map>

#include "backends/cuda/lowering.h"
#include "ops/fused.h"
#include "runtime/concrete_shapes.h"

namespace qf::cuda {

namespace {

bool is_storage_float(DType t) {
  return t == DType::kF32 || t == DType::kF16 || t == DType::kBF16;
}

bool is_8bit(DType t) {
  return t == DType::kI8 || t == DType::kU8;
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

}  // namespace

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

int Builder::add_copy_convert(int src, Layout layout, DType type, const std::string& what,
                              Grid grid) {
  const Buffer s = plan_->buf(src);
  const int dst = new_arena(type, s.shape, layout);
  if (is_8bit(type)) plan_->buf(dst).grid = grid;
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
  const Grid from_grid = s.grid;
  const std::string verb = is_8bit(type) && !is_8bit(from)   ? "quantize "
                           : is_8bit(from) && !is_8bit(type) ? "dequantize "
                                                             : "convert ";
  // Thin 4-D tensors between NCHW and NHWC (an image network's input): one thread per pixel.
  const Shape& sh = s.shape;
  if (sh.size() == 4 && s.layout != layout && sh[1] <= 64 && shape_numel(sh) < (int64_t{1} << 31)) {
    const bool to_nhwc = layout == Layout::kNHWC;
    add_step(verb + what, {src, dst},
             [src, dst, sh, from, type, from_grid, grid, to_nhwc](Plan& p, DeviceContext& c) {
               return launch_status(
                   launch_nchw_nhwc(p.ptr(src), from, from_grid, p.ptr(dst), type, grid, sh[0],
                                    sh[1], sh[2] * sh[3], sh[1], to_nhwc, c.stream),
                   "a layout/type conversion");
             });
    return dst;
  }
  add_step(verb + what, {src, dst},
           [src, dst, view, from, type, from_grid, grid](Plan& p, DeviceContext& c) {
             return launch_status(launch_strided_copy(p.ptr(src), from, view, p.ptr(dst), type,
                                                      c.stream, nullptr, from_grid, grid),
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
  // From a device copy in another layout or type: one conversion kernel, from a float copy if
  // there is one, else dequantizing the 8-bit copy of an INT8 engine's float value.
  for (const bool from_8bit : {false, true}) {
    for (int b : vi.buffers) {
      const Buffer& buf = plan_->buf(b);
      const bool usable =
          from_8bit ? is_8bit(buf.dtype) && vi.dtype == DType::kF32 : is_storage_float(buf.dtype);
      if (buf.on_device() && usable && is_storage_float(type)) {
        const int d = add_copy_convert(b, layout, type, v->name);
        info(v).buffers.push_back(d);
        return d;
      }
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
  auto upload = [host, d, bytes](Plan& p, DeviceContext& c) -> Status {
    QF_CUDA_RETURN(cudaMemcpyAsync(p.ptr(d), p.buf(host).host.raw(), static_cast<size_t>(bytes),
                                   cudaMemcpyHostToDevice, c.stream));
    return {};
  };
  // A graph input's upload is the H2D phase; a host fallback's result is part of the compute.
  if (is_graph_input_staging(host)) {
    add_transfer(/*to_device=*/true, "upload " + v->name, d, upload);
  } else {
    add_step("upload " + v->name, {d}, upload);
  }
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
  auto download = [d, h, bytes](Plan& p, DeviceContext& c) -> Status {
    QF_CUDA_RETURN(cudaMemcpyAsync(p.buf(h).host.raw(), p.ptr(d), static_cast<size_t>(bytes),
                                   cudaMemcpyDeviceToHost, c.stream));
    return {};
  };
  // A graph output's download is the D2H phase; one a host fallback reads is compute.
  if (adding_outputs_) {
    add_transfer(/*to_device=*/false, "download " + v->name, d, download);
  } else {
    add_step("download " + v->name, {d}, download);
  }
  info(v).buffers.push_back(h);
  return h;
}

Status Builder::infer_concrete(const std::vector<Shape>& shapes, const std::vector<DType>& dtypes) {
  // Small all-constant computations (shape arithmetic) are folded now, as the cpu backend does.
  QF_ASSIGN_OR_RETURN(runtime::ConcreteValues values,
                      runtime::infer_concrete_shapes(graph_, shapes, dtypes, "cuda"));
  for (auto& [v, cv] : values) {
    info_[v] = ValueInfo{cv.dtype, std::move(cv.shape), std::move(cv.known), {}};
  }
  return {};
}

Status Builder::add_outputs() {
  adding_outputs_ = true;
  for (const ir::Value* v : graph_.outputs) {
    if (!info_.count(v)) return internal_error("graph output '{}' is never computed", v->name);
    QF_ASSIGN_OR_RETURN(const int h, request_host(v));
    plan_->output_buffers.push_back(h);
  }
  adding_outputs_ = false;
  return {};
}

Result<bool> Builder::lower(const ir::Node& node, std::string* why) {
  const std::string& op = node.op_type;
  const bool fused = node.domain == ops::kFusedDomain;
  if (!fused && !node.domain.empty() && node.domain != "ai.onnx") {
    *why = "another domain";
    return false;
  }
  const bool conv = op == (fused ? "FusedConv" : "Conv");
  const bool gemm =
      fused ? op == "FusedGemm" || op == "FusedMatMul" : op == "Gemm" || op == "MatMul";
  if (conv || gemm) {
    // INT8 engines: the int8 kernels first; a layer they cannot take runs in fp32 and its
    // kernel says why (EngineInfo, `qforge inspect`).
    std::string int8_why;
    if (int8_engine()) {
      QF_ASSIGN_OR_RETURN(const bool done, conv ? lower_int8_conv(node, &int8_why)
                                                : lower_int8_gemm(node, &int8_why));
      if (done) return true;
    }
    QF_ASSIGN_OR_RETURN(const bool lowered,
                        conv ? lower_conv(node, fused, why) : lower_gemm(node, why));
    if (lowered) note_float_in_int8_engine(int8_why);
    return lowered;
  }
  if (fused) {
    *why = "unknown fused op";
    return false;
  }
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
  // The transfers happen before step 0 and after the last step: their device sides live from
  // the first to one past the last compute step.
  for (int b : whole_plan_) {
    Buffer& root = plan_->buf(plan_->root_of(b));
    root.last = std::max(root.last, step_index());
  }
  QF_RETURN_IF_ERROR(plan_->finalize());
  return std::move(plan_);
}

Result<std::unique_ptr<Plan>> build_plan(const ir::Graph& graph, DeviceContext& ctx,
                                         const std::vector<Shape>& input_shapes,
                                         const std::vector<DType>& input_dtypes) {
  Builder b(graph, ctx);
  return b.build(input_shapes, input_dtypes);
}

}  // namespace qf::cuda
