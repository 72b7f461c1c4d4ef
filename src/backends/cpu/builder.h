// PlanBuilder: lowers a graph, for concrete input shapes, into a Plan.
//
// It infers every value's concrete shape (folding small shape computations), then walks the
// nodes in order and lets lower.cc turn each into oneDNN primitives; a node nothing there
// handles runs its reference kernel on plain f32 tensors, with the conversions inserted
// explicitly. Layouts are negotiated by request(): a consumer asks for a value in the layout
// and type its primitive wants and gets the producer's buffer when it already matches, else a
// reorder into a new buffer (done once, at build time, for constants).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "backends/cpu/plan.h"

namespace qf::cpu {

// Constants reordered for a primitive, shared by every plan of an engine (a new batch size
// usually wants the same weight layout, which is then not reordered again).
class WeightCache {
 public:
  const Tensor* find(const ir::Value* value, const md& desc) const;
  const Tensor& add(const ir::Value* value, const md& desc, Tensor data);

 private:
  struct Entry {
    const ir::Value* value;
    md desc;
    Tensor data;
  };
  std::vector<Entry> entries_;
};

struct BuildContext {
  const ir::Graph* graph = nullptr;
  dnnl::engine* engine = nullptr;
  dnnl::stream* stream = nullptr;
  runtime::Precision precision = runtime::Precision::kFP32;
  WeightCache* weights = nullptr;
  // INT8: per-tensor scales of activations by value name (absent: that value stays float).
  const std::map<std::string, float>* activation_scales = nullptr;
  // INT8 from a Q/DQ graph: values stored on exactly the graph's grid (type, scale, zero point).
  const std::map<std::string, runtime::QuantGrid>* activation_grids = nullptr;
};

class PlanBuilder {
 public:
  explicit PlanBuilder(const BuildContext& ctx) : ctx_(ctx) {}

  Result<std::unique_ptr<Plan>> build(const std::vector<Shape>& input_shapes,
                                      const std::vector<DType>& input_dtypes);

  // ---- for the lowerings ----
  const ir::Graph& graph() const { return *ctx_.graph; }
  const dnnl::engine& engine() const { return *ctx_.engine; }
  runtime::Precision precision() const { return ctx_.precision; }
  // The element type oneDNN's compute primitives (conv, matmul) use at this precision.
  dt compute_dt() const;
  // Calibrated scale of an activation (real = scale * q, q in [-127, 127]), or nullptr.
  const float* activation_scale(const ir::Value* v) const;
  // The scale a buffer of `v` stored as `type` has: s8 uses the calibrated scale, u8 (for
  // values known to be non-negative) half of it, float types 1. 0 when `v` has no scale.
  float storage_scale(const ir::Value* v, dt type) const;
  // The grid a Q/DQ graph fixed for `v` (runtime::BuildOptions::activation_grids), or nullptr.
  const runtime::QuantGrid* grid(const ir::Value* v) const;
  // Its type, or dt::undef when the backend may choose the int8 type.
  dt fixed_int8_type(const ir::Value* v) const;
  // The zero point a buffer of `v` stored as `type` has: the grid's, else 0.
  int32_t storage_zero_point(const ir::Value* v, dt type) const;

  const Shape& shape(const ir::Value* v) const { return info_.at(v).shape; }
  DType dtype(const ir::Value* v) const { return info_.at(v).dtype; }  // logical element type
  // Data of a constant or of a value folded at plan time; nullptr otherwise.
  const Tensor* known(const ir::Value* v) const;
  // The buffer the value's producer wrote (created on demand for constants).
  int canonical(const ir::Value* v);
  const Buffer& buffer(int b) const { return plan_->buffers[static_cast<size_t>(b)]; }
  int num_buffers() const { return static_cast<int>(plan_->buffers.size()); }
  const md& desc_of(const ir::Value* v) { return buffer(canonical(v)).desc; }
  // desc_of, but f32 where the value is stored as int8: what float primitives read it as.
  md float_desc_of(const ir::Value* v);

  // The value in layout `desc` (type included): the canonical buffer when it matches, an earlier
  // conversion of it, or a new one. Constants are converted now, once.
  Result<int> request(const ir::Value* v, const md& desc);
  // The value as the reference kernels see it: plain, its logical type, in the arena or a constant.
  Result<int> request_plain(const ir::Value* v);
  // A constant tensor (plan-owned or the graph's) viewed with `desc`, converted if needed.
  Result<int> constant(const Tensor& data, const md& data_desc, const md& want,
                       const ir::Value* cache_key = nullptr);

  int new_arena(const md& desc, DType dtype, Shape shape, float scale = 1.f,
                int32_t zero_point = 0);
  // Another descriptor over the same bytes (a reshape of a plain buffer, a strided view); the
  // scale of `buffer` unless given, and always its zero point.
  int alias(int buffer, const md& desc, DType dtype, Shape shape, float scale = -1.f);
  void set_value_buffer(const ir::Value* v, int buffer);
  // Whether the step being planned for `n` may overwrite `buffer` (an arena buffer, or a view of
  // one) while it reads it through its input `input`: no later step reads those bytes. Every value
  // stored there, under any view, is no graph output and is read only by nodes planned already
  // and by `n` through `input`.
  bool last_read_by(int buffer, const ir::Node& n, size_t input) const;

  // Appends a primitive reading and writing the given buffers; `scratchpad_bytes` from its
  // primitive_desc (every primitive is created with a user scratchpad, which they all share).
  void add_primitive(dnnl::primitive prim, std::vector<std::pair<int, int>> args,
                     const std::string& label, size_t scratchpad_bytes);
  // A value whose data the builder knows now (a reshaped constant): later requests see a
  // constant, so that e.g. weights behind a Reshape are still reordered once.
  void set_known(const ir::Value* v, Tensor data) { info_.at(v).known = std::move(data); }
  // Appends a reorder (layout and/or type conversion, or a copy) from src into dst. With
  // `node`, the reorder is that node's kernel (a Transpose, a Slice) named `signature`.
  Status add_reorder(int src, int dst, const std::string& label, const ir::Node* node = nullptr,
                     const std::string& signature = "");
  void add_kernel(const ir::Node& node, std::string op, std::string impl);

  // Runs `node` with its reference kernel; `why` says why oneDNN does not (for EngineInfo).
  Status add_reference(const ir::Node& node, const std::string& why = "");
  // Attaches an explanation to the kernel added last (KernelInfo::note).
  void note_last_kernel(std::string note);

 private:
  struct ValueInfo {
    DType dtype = DType::kUndefined;
    Shape shape;
    Tensor known;  // constants and values folded at plan time
    int canonical = -1;
    std::vector<int> variants;  // the same value in other layouts / types
  };

  Status infer_concrete(const std::vector<Shape>& input_shapes,
                        const std::vector<DType>& input_dtypes);
  int add_buffer(Buffer b);
  void touch(int b);  // the step being appended reads or writes b
  int add_copy_to_arena(int src);
  Status add_outputs();
  int step_index() const { return static_cast<int>(plan_->steps.size()); }
  void note_scratchpad(size_t bytes);

  BuildContext ctx_;
  std::unique_ptr<Plan> plan_;
  std::unordered_map<const ir::Value*, ValueInfo> info_;
  std::unordered_set<const ir::Node*> planned_;  // nodes whose steps are in the plan (or folded)
  std::vector<std::unique_ptr<Tensor>> owned_;   // folded values and converted plan constants
  size_t scratchpad_bytes_ = 0;
};

// Lowers `node` to oneDNN primitives. Returns false (with the reason in *why_not) when oneDNN
// has nothing for it here, so that the caller falls back to the reference kernel.
Result<bool> lower_node(PlanBuilder& b, const ir::Node& node, std::string* why_not);

}  // namespace qf::cpu
