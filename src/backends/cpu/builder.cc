#include "backends/cpu/builder.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <set>

#include "runtime/concrete_shapes.h"

namespace qf::cpu {

namespace {

bool verbose() {
  static const bool v = std::getenv("QFORGE_CPU_VERBOSE") != nullptr;
  return v;
}

// The logical dims of a descriptor (dims() returns a fresh vector on every call).
Shape shape_of(const md& d) {
  const dnnl::memory::dims v = d.dims();
  return Shape(v.begin(), v.end());
}

int64_t desc_numel(const md& d) {
  int64_t n = 1;
  for (int64_t x : d.dims()) n *= x;
  return n;
}

}  // namespace

// ---- WeightCache ----

const Tensor* WeightCache::find(const ir::Value* value, const md& desc) const {
  for (const Entry& e : entries_) {
    if (e.value == value && e.desc == desc) return &e.data;
  }
  return nullptr;
}

const Tensor& WeightCache::add(const ir::Value* value, const md& desc, Tensor data) {
  entries_.push_back({value, desc, std::move(data)});
  return entries_.back().data;
}

// ---- PlanBuilder ----

dt PlanBuilder::compute_dt() const {
  return ctx_.precision == runtime::Precision::kBF16 ? dt::bf16 : dt::f32;
}

const float* PlanBuilder::activation_scale(const ir::Value* v) const {
  if (!ctx_.activation_scales) return nullptr;
  auto it = ctx_.activation_scales->find(v->name);
  return it == ctx_.activation_scales->end() ? nullptr : &it->second;
}

const runtime::QuantGrid* PlanBuilder::grid(const ir::Value* v) const {
  if (!ctx_.activation_grids) return nullptr;
  auto it = ctx_.activation_grids->find(v->name);
  return it == ctx_.activation_grids->end() ? nullptr : &it->second;
}

dt PlanBuilder::fixed_int8_type(const ir::Value* v) const {
  const runtime::QuantGrid* g = grid(v);
  return g ? to_dnnl(g->type) : dt::undef;
}

int32_t PlanBuilder::storage_zero_point(const ir::Value* v, dt type) const {
  if (const runtime::QuantGrid* g = grid(v); g && to_dnnl(g->type) == type) return g->zero_point;
  // A value already stored in that type keeps its zero point (max pooling passes it on).
  auto it = info_.find(v);
  if (it != info_.end() && it->second.canonical >= 0) {
    const Buffer& c = buffer(it->second.canonical);
    if (!c.desc.is_zero() && c.desc.data_type() == type) return c.zero_point;
  }
  return 0;
}

const Tensor* PlanBuilder::known(const ir::Value* v) const {
  auto it = info_.find(v);
  return it != info_.end() && it->second.known.defined() ? &it->second.known : nullptr;
}

float PlanBuilder::storage_scale(const ir::Value* v, dt type) const {
  if (!is_int8(type)) return 1.f;
  // A graph's grid is used as it is, in its own type (int8_storage_type never asks another).
  if (const runtime::QuantGrid* g = grid(v); g && to_dnnl(g->type) == type) return g->scale;
  // A value already stored as int8 keeps that scale (pooling passes its input's on): every
  // int8 copy of it must agree with the buffer its producer wrote.
  float s8_scale = 0.f;
  auto it = info_.find(v);
  if (it != info_.end() && it->second.canonical >= 0) {
    const Buffer& c = buffer(it->second.canonical);
    if (!c.desc.is_zero() && is_int8(c.desc.data_type())) {
      s8_scale = c.desc.data_type() == dt::u8 ? c.scale * 2 : c.scale;
    }
  }
  if (s8_scale == 0.f) {
    const float* s = activation_scale(v);
    if (!s) return 0.f;
    s8_scale = *s;
  }
  return type == dt::u8 ? s8_scale / 2 : s8_scale;
}

md PlanBuilder::float_desc_of(const ir::Value* v) {
  const md d = desc_of(v);
  return !d.is_zero() && is_int8(d.data_type()) ? with_dt(d, dt::f32) : d;
}

int PlanBuilder::add_buffer(Buffer b) {
  plan_->buffers.push_back(std::move(b));
  return static_cast<int>(plan_->buffers.size()) - 1;
}

int PlanBuilder::canonical(const ir::Value* v) {
  ValueInfo& vi = info_.at(v);
  if (vi.canonical >= 0) return vi.canonical;
  if (!vi.known.defined()) return -1;
  Buffer b;
  b.kind = Buffer::Kind::kConstant;
  b.dtype = vi.known.dtype();
  b.shape = vi.known.shape();
  b.desc = plain_md(b.shape, to_dnnl(b.dtype));
  b.bytes = static_cast<int64_t>(vi.known.nbytes());
  b.constant = vi.known;
  vi.canonical = add_buffer(std::move(b));
  return vi.canonical;
}

int PlanBuilder::new_arena(const md& desc, DType dtype, Shape shape, float scale,
                           int32_t zero_point) {
  Buffer b;
  b.kind = Buffer::Kind::kArena;
  b.dtype = dtype;
  b.scale = scale;
  b.zero_point = zero_point;
  b.bytes = desc.is_zero() ? shape_numel(shape) * static_cast<int64_t>(dtype_size(dtype))
                           : static_cast<int64_t>(desc.get_size());
  b.shape = std::move(shape);
  b.desc = desc;
  return add_buffer(std::move(b));
}

int PlanBuilder::alias(int buffer, const md& desc, DType dtype, Shape shape, float scale) {
  Buffer b;
  b.kind = Buffer::Kind::kAlias;
  b.root = plan_->root_of(buffer);
  b.dtype = dtype;
  b.scale = scale < 0 ? plan_->buffers[static_cast<size_t>(buffer)].scale : scale;
  b.zero_point = plan_->buffers[static_cast<size_t>(buffer)].zero_point;
  b.bytes = plan_->buffers[static_cast<size_t>(b.root)].bytes;
  b.shape = std::move(shape);
  b.desc = desc;
  return add_buffer(std::move(b));
}

void PlanBuilder::set_value_buffer(const ir::Value* v, int buffer) {
  info_.at(v).canonical = buffer;
}

bool PlanBuilder::last_read_by(int buffer, const ir::Node& n, size_t input) const {
  // Graph inputs and constants belong to the caller and to every plan: never overwritten.
  const int root = plan_->root_of(buffer);
  if (this->buffer(root).kind != Buffer::Kind::kArena) return false;
  const std::vector<ir::Value*>& outputs = graph().outputs;
  for (const auto& [v, vi] : info_) {
    bool stored = vi.canonical >= 0 && plan_->root_of(vi.canonical) == root;
    for (int x : vi.variants) stored = stored || plan_->root_of(x) == root;
    if (!stored) continue;
    // The output steps, appended last, read graph outputs.
    if (std::find(outputs.begin(), outputs.end(), v) != outputs.end()) return false;
    for (const ir::Node* c : v->consumers) {
      if (c != &n) {
        // Nodes are planned in order: a consumer planned already has its steps before n's.
        if (!planned_.count(c)) return false;
        continue;
      }
      for (size_t i = 0; i < n.inputs.size(); ++i) {
        if (n.inputs[i] == v && i != input) return false;  // n would read what it overwrites
      }
    }
  }
  return true;
}

void PlanBuilder::touch(int b) {
  Buffer& root = plan_->buffers[static_cast<size_t>(plan_->root_of(b))];
  if (root.kind != Buffer::Kind::kArena) return;
  const int s = step_index();
  root.first = root.first < 0 ? s : std::min(root.first, s);
  root.last = std::max(root.last, s);
}

Result<int> PlanBuilder::constant(const Tensor& data, const md& data_desc, const md& want,
                                  const ir::Value* cache_key) {
  auto wrap = [&](const Tensor& t) {
    Buffer b;
    b.kind = Buffer::Kind::kConstant;
    b.dtype = from_dnnl(want.data_type());
    b.shape = shape_of(want);
    b.desc = want;
    b.bytes = static_cast<int64_t>(want.get_size());
    b.constant = t;
    return add_buffer(std::move(b));
  };
  // Same bytes, maybe another shape of the same size (a [C] bias read as [1, C, 1, 1]).
  if (data_desc == want || (is_plain(want) && want.data_type() == to_dnnl(data.dtype()) &&
                            desc_numel(want) == data.numel())) {
    return wrap(data);
  }
  if (cache_key) {
    if (const Tensor* t = ctx_.weights->find(cache_key, want)) return wrap(*t);
  }
  md from = data_desc;
  if (is_plain(want) && shape_of(want) != data.shape() && desc_numel(want) == data.numel()) {
    from = plain_md(shape_of(want), to_dnnl(data.dtype()));  // reshape, then convert the type
  }
  if (from.is_zero()) {
    return internal_error("cannot convert a constant of type {} and shape {} for oneDNN",
                          dtype_tag(data.dtype()), shape_str(data.shape()));
  }
  // Plain results keep their element type, so that they also serve reference kernels.
  Tensor out = is_plain(want) ? Tensor(from_dnnl(want.data_type()), shape_of(want))
                              : Tensor(DType::kU8, {static_cast<int64_t>(want.get_size())});
  try {
    dnnl::memory src(from, engine(), const_cast<void*>(data.raw()));
    dnnl::memory dst(want, engine(), out.raw());
    dnnl::reorder(src, dst).execute(*ctx_.stream, src, dst);
    ctx_.stream->wait();
  } catch (const dnnl::error& e) {
    return internal_error("cannot convert constant {} {} (dims {}) into {} dims {}: {}",
                          cache_key ? cache_key->name : "", dtype_tag(data.dtype()),
                          shape_str(data.shape()), dt_tag(want.data_type()),
                          shape_str(shape_of(want)), e.what());
  }
  if (cache_key) return wrap(ctx_.weights->add(cache_key, want, std::move(out)));
  owned_.push_back(std::make_unique<Tensor>(std::move(out)));
  return wrap(*owned_.back());
}

Result<int> PlanBuilder::request(const ir::Value* v, const md& want) {
  const int c = canonical(v);
  if (c < 0) return internal_error("value '{}' is used before it is computed", v->name);
  ValueInfo& vi = info_.at(v);
  if (buffer(c).desc == want) return c;
  for (int x : vi.variants) {
    if (buffer(x).desc == want) return x;
  }
  const Shape& s = vi.shape;
  const Shape want_shape = shape_of(want);
  int result = -1;
  if (vi.known.defined()) {
    QF_ASSIGN_OR_RETURN(result,
                        constant(vi.known, buffer(c).desc, want, v->is_constant() ? v : nullptr));
  } else if (want_shape != s) {
    // Another shape of the same elements: only a plain layout can be reinterpreted.
    if (!is_plain(want) || shape_numel(want_shape) != shape_numel(s)) {
      return internal_error("value '{}' of shape {} cannot be viewed as {}", v->name, shape_str(s),
                            shape_str(want_shape));
    }
    const dt t = want.data_type();
    int p = c;
    const Buffer& cb = buffer(c);
    const bool plain_already =
        cb.dtype == from_dnnl(t) && (is_plain(cb.desc) || (cb.desc.is_zero() && s.empty()));
    if (!plain_already) {
      QF_ASSIGN_OR_RETURN(p, request(v, plain_md(s, t)));
    }
    result = alias(p, want, from_dnnl(t), want_shape);
  } else {
    if (buffer(c).desc.is_zero()) {
      return internal_error("value '{}' ({}) has no oneDNN layout to convert from", v->name,
                            dtype_tag(vi.dtype));
    }
    const float scale = storage_scale(v, want.data_type());
    if (scale == 0.f) return internal_error("value '{}' has no int8 scale", v->name);
    result = new_arena(want, from_dnnl(want.data_type()), s, scale,
                       storage_zero_point(v, want.data_type()));
    QF_RETURN_IF_ERROR(add_reorder(c, result, "reorder " + v->name));
  }
  vi.variants.push_back(result);
  return result;
}

int PlanBuilder::add_copy_to_arena(int src) {
  const Buffer& s = buffer(src);
  const int dst = new_arena(s.desc, s.dtype, s.shape);
  Step step;
  step.kind = Step::Kind::kCopy;
  step.label = "copy input";
  step.inputs = {src};
  step.outputs = {dst};
  step.copy_bytes = buffer(dst).bytes;
  touch(src);
  touch(dst);
  plan_->steps.push_back(std::move(step));
  return dst;
}

Result<int> PlanBuilder::request_plain(const ir::Value* v) {
  if (known(v)) return canonical(v);
  const DType t = dtype(v);
  const md plain = plain_md(shape(v), to_dnnl(t));
  int b = -1;
  if (plain.is_zero()) {
    b = canonical(v);
    if (b < 0) return internal_error("value '{}' is used before it is computed", v->name);
  } else {
    QF_ASSIGN_OR_RETURN(b, request(v, plain));
  }
  // Reference kernels read arena tensors; a graph input is copied there once.
  if (buffer(plan_->root_of(b)).kind != Buffer::Kind::kInput) return b;
  ValueInfo& vi = info_.at(v);
  for (int x : vi.variants) {
    if (buffer(x).kind == Buffer::Kind::kArena && buffer(x).desc == buffer(b).desc &&
        buffer(x).dtype == t) {
      return x;
    }
  }
  const int copy = add_copy_to_arena(b);
  vi.variants.push_back(copy);
  return copy;
}

void PlanBuilder::add_primitive(dnnl::primitive prim, std::vector<std::pair<int, int>> args,
                                const std::string& label, size_t scratchpad_bytes) {
  for (const auto& a : args) touch(a.second);
  note_scratchpad(scratchpad_bytes);
  Step s;
  s.kind = Step::Kind::kPrimitive;
  s.label = label;
  s.prim = std::move(prim);
  s.args = std::move(args);
  s.uses_scratchpad = scratchpad_bytes > 0;
  plan_->steps.push_back(std::move(s));
}

Status PlanBuilder::add_reorder(int src, int dst, const std::string& label, const ir::Node* node,
                                const std::string& signature) {
  const Buffer& s = buffer(src);
  const Buffer& d = buffer(dst);
  Step step;
  step.kind = Step::Kind::kCopy;
  step.label = label;
  step.inputs = {src};
  step.outputs = {dst};
  const bool same_grid = s.scale == d.scale && s.zero_point == d.zero_point;
  if (!s.desc.is_zero() && s.desc == d.desc && same_grid) {
    step.copy_bytes = static_cast<int64_t>(d.desc.get_size());  // s may view a larger buffer
    if (node) add_kernel(*node, node->op_type, signature + " [memcpy]");
  } else if (s.desc.is_zero() || d.desc.is_zero()) {
    if (s.bytes != d.bytes || s.dtype != d.dtype || !same_grid) {
      return internal_error("{}: cannot convert {} {} into {} {}", label, dtype_tag(s.dtype),
                            shape_str(s.shape), dtype_tag(d.dtype), shape_str(d.shape));
    }
    step.copy_bytes = d.bytes;
    if (node) add_kernel(*node, node->op_type, signature + " [memcpy]");
  } else {
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    // (De)quantization: real = s.scale * (src - s.zero_point) = d.scale * (dst - d.zero_point).
    if (s.scale != d.scale) attr.set_output_scales(0, {s.scale / d.scale});
    if (s.zero_point != 0) attr.set_zero_points(DNNL_ARG_SRC, 0, {s.zero_point});
    if (d.zero_point != 0) attr.set_zero_points(DNNL_ARG_DST, 0, {d.zero_point});
    dnnl::reorder::primitive_desc pd(engine(), s.desc, engine(), d.desc, attr);
    step.prim = dnnl::reorder(pd);
    step.args = {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}};
    step.uses_scratchpad = pd.scratchpad_desc().get_size() > 0;
    note_scratchpad(pd.scratchpad_desc().get_size());
    if (node) {
      add_kernel(*node, node->op_type,
                 fmt::format("{} [onednn reorder {}]", signature, pd.impl_info_str()));
    } else {
      plan_->kernels.push_back({label.substr(label.find(' ') + 1), "Reorder",
                                fmt::format("reorder_{}_{} [onednn {}]", dt_tag(s.desc.data_type()),
                                            dt_tag(d.desc.data_type()), pd.impl_info_str())});
    }
  }
  touch(src);
  touch(dst);
  plan_->steps.push_back(std::move(step));
  return {};
}

void PlanBuilder::note_scratchpad(size_t bytes) {
  scratchpad_bytes_ = std::max(scratchpad_bytes_, bytes);
}

void PlanBuilder::add_kernel(const ir::Node& node, std::string op, std::string impl) {
  plan_->kernels.push_back(
      {node.name.empty() ? node.label() : node.name, std::move(op), std::move(impl)});
}

void PlanBuilder::note_last_kernel(std::string note) {
  if (!plan_->kernels.empty()) plan_->kernels.back().note = std::move(note);
}

Status PlanBuilder::add_reference(const ir::Node& node, const std::string& why) {
  const ir::OpDef* def = ir::OpRegistry::global().find(node.domain, node.op_type, node.opset);
  if (!def || !def->reference) {
    QF_RETURN_IF_ERROR(ir::check_supported(node));
    return unsupported("{}: no reference kernel for {}", node.label(), node.op_type);
  }
  Step s;
  s.kind = Step::Kind::kReference;
  s.label = node.label();
  s.node = &node;
  s.def = def;
  for (const ir::Value* in : node.inputs) {
    if (!in) {
      s.inputs.push_back(-1);
      continue;
    }
    QF_ASSIGN_OR_RETURN(int b, request_plain(in));
    s.inputs.push_back(b);
  }
  for (size_t i = 0; i < node.outputs.size(); ++i) {
    if (!node.has_output(i)) {
      s.outputs.push_back(-1);
      continue;
    }
    const ir::Value* out = node.outputs[i];
    const int b = new_arena(plain_md(shape(out), to_dnnl(dtype(out))), dtype(out), shape(out));
    set_value_buffer(out, b);
    s.outputs.push_back(b);
  }
  for (int b : s.inputs) {
    if (b >= 0) touch(b);
  }
  for (int b : s.outputs) {
    if (b >= 0) touch(b);
  }
  plan_->steps.push_back(std::move(s));
  add_kernel(node, node.op_type, "reference_" + node.op_type);
  if (!why.empty()) note_last_kernel("reference kernel: " + why);
  return {};
}

Status PlanBuilder::infer_concrete(const std::vector<Shape>& input_shapes,
                                   const std::vector<DType>& input_dtypes) {
  QF_ASSIGN_OR_RETURN(runtime::ConcreteValues values,
                      runtime::infer_concrete_shapes(graph(), input_shapes, input_dtypes, "cpu"));
  for (auto& [v, cv] : values) {
    info_[v] = ValueInfo{cv.dtype, std::move(cv.shape), std::move(cv.known), -1, {}};
  }
  return {};
}

Status PlanBuilder::add_outputs() {
  const ir::Graph& g = graph();
  for (size_t i = 0; i < g.outputs.size(); ++i) {
    const ir::Value* v = g.outputs[i];
    if (!info_.count(v)) return internal_error("graph output '{}' is never computed", v->name);
    plan_->outputs.push_back({dtype(v), shape(v)});
    const int src = canonical(v);
    if (src < 0) return internal_error("graph output '{}' is never computed", v->name);
    Step s;
    s.kind = Step::Kind::kOutput;
    s.label = "output " + v->name;
    s.output_index = static_cast<int>(i);
    s.inputs = {src};
    const md out = plain_md(shape(v), to_dnnl(dtype(v)));
    const Buffer& b = buffer(src);
    if (!out.is_zero() && !b.desc.is_zero() && b.desc != out) {
      dnnl::primitive_attr attr;
      attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
      if (b.scale != 1.f) attr.set_output_scales(0, {b.scale});
      if (b.zero_point != 0) attr.set_zero_points(DNNL_ARG_SRC, 0, {b.zero_point});
      dnnl::reorder::primitive_desc pd(engine(), b.desc, engine(), out, attr);
      s.prim = dnnl::reorder(pd);
      s.args = {{DNNL_ARG_SRC, src}};
      s.uses_scratchpad = pd.scratchpad_desc().get_size() > 0;
      note_scratchpad(pd.scratchpad_desc().get_size());
    } else {
      s.copy_bytes = shape_numel(shape(v)) * static_cast<int64_t>(dtype_size(dtype(v)));
    }
    touch(src);
    plan_->steps.push_back(std::move(s));
  }
  return {};
}

Result<std::unique_ptr<Plan>> PlanBuilder::build(const std::vector<Shape>& input_shapes,
                                                 const std::vector<DType>& input_dtypes) {
  plan_ = std::make_unique<Plan>();
  plan_->input_shapes = input_shapes;
  try {
    QF_RETURN_IF_ERROR(infer_concrete(input_shapes, input_dtypes));
    const ir::Graph& g = graph();
    for (size_t i = 0; i < g.inputs.size(); ++i) {
      Buffer b;
      b.kind = Buffer::Kind::kInput;
      b.dtype = input_dtypes[i];
      b.shape = input_shapes[i];
      b.desc = plain_md(b.shape, to_dnnl(b.dtype));
      b.bytes = shape_numel(b.shape) * static_cast<int64_t>(dtype_size(b.dtype));
      b.input_index = static_cast<int>(i);
      set_value_buffer(g.inputs[i], add_buffer(std::move(b)));
    }
    planned_.clear();
    for (const auto& node_ptr : g.nodes()) {
      const ir::Node& node = *node_ptr;
      bool folded = true;
      for (size_t i = 0; i < node.outputs.size(); ++i) {
        folded = folded && (!node.has_output(i) || known(node.outputs[i]));
      }
      if (!folded) {
        std::string why_not;
        QF_ASSIGN_OR_RETURN(bool lowered, lower_node(*this, node, &why_not));
        if (!lowered) {
          if (verbose()) {
            std::fprintf(stderr, "qforge cpu: %s runs its reference kernel: %s\n",
                         node.label().c_str(), why_not.c_str());
          }
          QF_RETURN_IF_ERROR(add_reference(node, why_not));
        }
      }
      planned_.insert(&node);
    }
    QF_RETURN_IF_ERROR(add_outputs());
    if (scratchpad_bytes_ > 0) {
      plan_->scratchpad = new_arena(
          md({static_cast<int64_t>(scratchpad_bytes_)}, dt::u8, dnnl::memory::format_tag::a),
          DType::kU8, {static_cast<int64_t>(scratchpad_bytes_)});
    }
    QF_RETURN_IF_ERROR(plan_->finalize(engine()));
  } catch (const dnnl::error& e) {
    return internal_error("oneDNN: {} (status {})", e.what(), static_cast<int>(e.status));
  }
  // Weights: the constants the steps read (reordered copies, not the originals they replace).
  std::set<const void*> counted;
  auto count = [&](int b) {
    if (b < 0) return;
    const Buffer& buf = plan_->buffers[static_cast<size_t>(plan_->root_of(b))];
    if (buf.kind == Buffer::Kind::kConstant && counted.insert(buf.constant.raw()).second) {
      plan_->weights_bytes += static_cast<int64_t>(buf.constant.nbytes());
    }
  };
  for (const Step& s : plan_->steps) {
    for (const auto& a : s.args) count(a.second);
    for (int b : s.inputs) count(b);
  }
  return std::move(plan_);
}

}  // namespace qf::cpu
