// The cuda plan builder (internal to src/backends/cuda): lowers each node of the optimized
// graph, for concrete input shapes, into the steps and buffers of a Plan.
//
// builder.cc keeps the values and their buffers (requests in a layout and type, conversions,
// uploads, downloads), infers the concrete shapes and walks the nodes; each lower_*.cc lowers
// one family of ops (lower_conv.cc: cuDNN; lower_gemm.cc: cuBLASLt; lower_int8_conv.cc: INT8
// convolutions and matrix products on our tensor-core kernels, with int8_policy.cc deciding which
// tensors stay 8-bit and on which grid; lower_elementwise.cc, lower_reduce.cc,
// lower_data_movement.cc: the backend's own kernels); host_fallback.cc runs a node's reference
// kernel on the host, with the copies it needs.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "backends/cuda/check.h"
#include "backends/cuda/int8_kernels.h"
#include "backends/cuda/kernels.h"
#include "backends/cuda/plan.h"
#include "ops/fused.h"

namespace qf::cuda {

// Scratch offered to cuDNN and cuBLASLt algorithms; larger needs pick another algorithm.
inline constexpr int64_t kMaxWorkspace = int64_t{256} << 20;
inline constexpr int64_t kGemmWorkspace = int64_t{32} << 20;

inline bool verbose() {
  static const bool v = std::getenv("QFORGE_CUDA_VERBOSE") != nullptr;
  return v;
}

// Row-major strides of `shape`.
inline std::vector<int64_t> dense_strides(const Shape& shape) {
  std::vector<int64_t> s(shape.size(), 1);
  for (size_t d = shape.size(); d-- > 1;) s[d - 1] = s[d] * shape[d];
  return s;
}

// NCHW dims <-> NHWC storage: strides (in elements) of logical dim d of a 4-D tensor stored NHWC.
inline std::vector<int64_t> nhwc_strides(const Shape& s) {
  return {s[1] * s[2] * s[3], 1, s[3] * s[1], s[1]};
}

inline std::vector<int64_t> storage_strides(const Shape& shape, Layout layout) {
  return layout == Layout::kNHWC ? nhwc_strides(shape) : dense_strides(shape);
}

// The physical order of a layout's dims: the order in which a dense copy walks them.
inline std::vector<int> physical_order(size_t rank, Layout layout) {
  if (layout == Layout::kNHWC) return {0, 2, 3, 1};
  std::vector<int> o(rank);
  for (size_t i = 0; i < rank; ++i) o[i] = static_cast<int>(i);
  return o;
}

inline std::string dt(DType t) {
  return std::string(dtype_tag(t));
}

inline ActParams to_act(const ops::ActivationSpec& a) {
  return {static_cast<Act>(static_cast<int>(a.kind)), a.alpha, a.beta};
}

// The cuDNN descriptors of one convolution step (lower_conv.cc).
struct CudnnConv;
// One int8 layer in the int8 kernels' GEMM form (lower_int8_conv.cc).
struct Int8Spec;

// A cuDNN algorithm a convolution may run with, and the workspace it needs.
struct ConvCandidate {
  cudnnConvolutionFwdAlgo_t algo;
  cudnnMathType_t math;
  int64_t workspace = 0;
};

// The name of a cuDNN convolution tactic, as timing caches and engine files record it.
std::string cudnn_tactic_name(const ConvCandidate& c);

// An int8 tile shape's name ("128x64"), and the name of an int8 layer's tactic (int8_tactics.cc).
const char* int8_tile_name(Int8Tile t);
std::string int8_tactic_name(const Int8Launch& l);

// Which candidate a layer runs, and how that was decided (for EngineInfo).
struct TacticChoice {
  size_t index = 0;
  std::string how;  // "only candidate", "timing cache", "fastest of 4 timed"
};

// One run of a convolution step on explicit operands (fused_bias null: not the fused call).
using ConvEnqueue = std::function<Status(
    const void* x, const void* w, const void* bias, const void* fused_bias, const void* z, void* y,
    void* workspace, int64_t workspace_bytes, cudnnHandle_t cudnn, cudaStream_t stream)>;

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
  // The float storage type of the precision (fp32 for INT8 engines' float layers, as TensorRT's
  // int8 mode without fp16 keeps them).
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
  // A copy of a graph input to the device (before the compute) or of a graph output to the host
  // (after it): the phases a run without data transfers skips and the breakdown times apart.
  // `device` is the buffer on the device side; it stays live for the whole plan (set in build()),
  // so that a run on the device finds its inputs and nothing overwrites an output before its
  // download.
  void add_transfer(bool to_device, std::string label, int device,
                    std::function<Status(Plan&, DeviceContext&)> fn) {
    Buffer& root = plan_->buf(plan_->root_of(device));
    if (to_device) root.first = 0;
    root.last = std::max(root.last, 0);
    whole_plan_.push_back(device);
    (to_device ? plan_->input_steps : plan_->output_steps)
        .push_back({std::move(label), std::move(fn)});
  }
  bool is_graph_input_staging(int b) const {
    return std::find(plan_->input_buffers.begin(), plan_->input_buffers.end(), b) !=
           plan_->input_buffers.end();
  }
  void add_kernel(const ir::Node& node, std::string op, std::string impl, std::string note = "") {
    plan_->kernels.push_back({node.name.empty() ? node.label() : node.name, std::move(op),
                              std::move(impl), std::move(note)});
  }
  void need_workspace(int64_t bytes) {
    plan_->workspace_bytes = std::max(plan_->workspace_bytes, bytes);
  }

  Result<int> upload_weight(const ir::Value* v, const Tensor& data, Layout layout, DType type,
                            const std::string& variant);
  Result<int> request_device(const ir::Value* v, Layout layout, DType type);
  Result<int> request_host(const ir::Value* v);
  // A new buffer holding `src` in `layout` and `type` (on `grid` when `type` is s8/u8).
  int add_copy_convert(int src, Layout layout, DType type, const std::string& what, Grid grid = {});
  // The layout of the device buffer a float value was written in (plain when on the host).
  Layout native_layout(const ir::Value* v) {
    for (int b : info(v).buffers) {
      if (plan_->buf(b).on_device()) return plan_->buf(b).layout;
    }
    return Layout::kPlain;
  }

  // ---- lowering (builder.cc: the walk and the choice of a lowering) ----
  Status infer_concrete(const std::vector<Shape>& shapes, const std::vector<DType>& dtypes);
  Result<bool> lower(const ir::Node& node, std::string* why);
  Status add_outputs();
  // lower_conv.cc
  Result<bool> lower_conv(const ir::Node& node, bool fused, std::string* why);
  // tactic_choice.cc: TensorRT's tactic selection for one layer among `candidates` (tactic
  // names, the heuristic's choice first). An engine file's or the timing cache's choice where
  // either has one for `signature`, else every candidate timed by `time` (ms) and the fastest
  // kept (and added to the cache).
  Result<TacticChoice> choose_tactic(const ir::Node& node,
                                     const std::vector<std::string>& candidates,
                                     const std::string& signature,
                                     const std::function<Result<float>(size_t)>& time);
  // conv_tactics.cc
  // Times `run` for candidate `c` on scratch operands of the layer's shapes (weights: the real
  // buffer `wb`; bias `bb` and fused bias `fb` where >= 0; a residual where `with_z`).
  Result<float> time_conv_candidate(const ConvCandidate& c, const Shape& xs, const Shape& ys,
                                    DType t, int wb, int bb, int fb, bool with_z,
                                    const ConvEnqueue& run);
  // The f32 graph input `x` [n, c, h, w] converted to NHWC `t` with `channels` > c channels, the
  // extra ones 0 (a thin image input for cuDNN's tensor-core kernels).
  Result<int> padded_input(const ir::Value* x, int64_t channels, DType t);
  // Sets up cudnnConvolutionBiasActivationForward for `conv` and runs it once on scratch
  // memory; returns the bias buffer it reads (zeros when the node has none), or -1 when cuDNN
  // refuses this configuration.
  Result<int> try_fused_conv(CudnnConv& conv, const ir::Value* bias, const Shape& ys, DType t,
                             bool relu, const Shape& xs, int64_t ws_bytes, void* weights);
  // lower_gemm.cc
  Result<bool> lower_gemm(const ir::Node& node, std::string* why);
  // lower_elementwise.cc
  Result<bool> lower_binary(const ir::Node& node, BinaryOp op, std::string* why);
  Result<bool> lower_unary(const ir::Node& node, std::string* why);
  // lower_reduce.cc
  Result<bool> lower_pool(const ir::Node& node, std::string* why);
  Result<bool> lower_softmax(const ir::Node& node, bool log, std::string* why);
  Result<bool> lower_layer_norm(const ir::Node& node, std::string* why);
  // lower_data_movement.cc
  Result<bool> lower_reshape(const ir::Node& node);
  Result<bool> lower_transpose(const ir::Node& node, std::string* why);
  Result<bool> lower_concat(const ir::Node& node, std::string* why);
  // host_fallback.cc
  Status add_reference(const ir::Node& node);

  // ---- INT8 (int8_policy.cc: the cpu backend's policy, so that both engines store the same
  // tensors in the same types on the same grids) ----
  bool int8_engine() const { return ctx_.precision == runtime::Precision::kINT8; }
  // The symmetric int8 scale of `v` (BuildOptions::activation_scales), or nullptr.
  const float* int8_scale(const ir::Value* v) const;
  // Whether `v` is known to be >= 0 (it is then stored as u8 with half the scale).
  bool non_negative(const ir::Value* v);
  // Whether the output `v` of an int8 layer stays 8-bit: it has a scale, is no graph output, and
  // every consumer reads 8-bit (int8 convolutions and matrix products as data or residual,
  // pooling, reshapes); others would only dequantize it again.
  bool stays_int8(const ir::Value* v);
  // The 8-bit type and grid `v` is stored in: its existing 8-bit device buffer's, else the one a
  // Q/DQ graph fixed, else u8 on half the scale when non-negative and s8 on the scale otherwise.
  // Requires int8_scale(v).
  std::pair<DType, Grid> int8_storage(const ir::Value* v);
  // The first 8-bit device buffer of `v` (in `layout`, or any layout when nullopt), or -1.
  int int8_buffer(const ir::Value* v, std::optional<Layout> layout = std::nullopt);
  // `v` on the device in 8 bits and `layout`: an existing buffer, a copy of one in another
  // layout (same grid), or its float value quantized onto int8_storage(v).
  Result<int> request_int8(const ir::Value* v, Layout layout);
  // lower_int8_conv.cc: Conv/FusedConv and Gemm/MatMul (constant weights) in int8; false (with
  // `why`) when the node has to stay float, which the caller then lowers and notes.
  Result<bool> lower_int8_conv(const ir::Node& node, std::string* why);
  Result<bool> lower_int8_gemm(const ir::Node& node, std::string* why);
  // Chooses buffers, tile and epilogue for `spec` and appends its step and kernel; false (with
  // `why`) for tensors too large for the kernels' 32-bit index arithmetic.
  Result<bool> emit_int8(const ir::Node& node, Int8Spec& spec, std::string* why);
  // int8_tactics.cc: times the launch `g` describes (weights and epilogue vectors bound, tile
  // and splits set) on scratch activations, with a residual where `with_z`.
  Result<float> time_int8_candidate(Int8Conv g, bool with_z);
  // fp32 in INT8 engines means fp32: FMA math, no TF32, as in FP32 engines.
  bool strict_fp32() const {
    return ctx_.precision == runtime::Precision::kFP32 ||
           ctx_.precision == runtime::Precision::kINT8;
  }
  // Explains on the last kernel why an int8 engine runs this convolution / product in float.
  void note_float_in_int8_engine(const std::string& why) {
    if (int8_engine() && !plan_->kernels.empty()) {
      plan_->kernels.back().note = "fp32 in an int8 engine: " + why;
    }
  }

  bool float_value(const ir::Value* v) { return v && info(v).dtype == DType::kF32; }

  const ir::Graph& graph_;
  DeviceContext& ctx_;
  std::unique_ptr<Plan> plan_;
  std::unordered_map<const ir::Value*, ValueInfo> info_;
  std::set<const DeviceMemory*> used_weights_;
  std::vector<int> whole_plan_;  // device sides of the transfers (add_transfer)
  bool adding_outputs_ = false;  // in add_outputs(): downloads are the D2H phase
};

}  // namespace qf::cuda
