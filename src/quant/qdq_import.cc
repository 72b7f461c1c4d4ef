// Q/DQ import. Everything that can fail or that decides what happens to a node is done in a
// planning phase that only reads the graph; the rewrite afterwards cannot fail, so an error leaves
// the graph untouched (the same structure as qdq_export.cc).
//
// Decisions not spelled out by ONNX or TensorRT:
// - "Constant" means "does not depend on a graph input" (nor on a random op): initializers,
//   Constant nodes, a QuantizeLinear of a float initializer (how PyTorch and TensorRT's toolkit
//   export QAT weights). Such a DequantizeLinear is computed here with the reference kernels, so
//   the folded weight is bit for bit what the graph computes.
// - Weight reproduction is judged by running the cpu backend's own weight quantization
//   (quant::quantize_per_channel_keeping_grid, per output channel: Conv axis 0, Gemm axis 0 with
//   transB else 1, MatMul the last axis) on the folded floats and comparing with the graph's
//   (q - zero point) and scales. A channel that reaches +-127 comes back as the graph's int8
//   values; one that reaches -128 (PyTorch's [-128, 127] weights) keeps the grid amax / 128,
//   which is the graph's scale exactly. Either scale can be one ulp off s in float (about 0.4% of
//   scales), a relative 6e-8 that is accepted as equal here and not reported. A channel that
//   stays inside (-127, 127) (scales of amax / 127.5, per-tensor scales read per channel), has a
//   zero point or mixes scales (blocked quantization) is re-quantized on a different grid:
//   counted per weight in a note. Only consumers whose activation input has a scale are judged:
//   the others run in float on the exact folded weights.
// - An activation's scale is one per tensor in the backend. A second Q/DQ of the same tensor with
//   another scale is kept as fake quantization; a Conv/Gemm/MatMul that reads a tensor directly
//   (without Q/DQ) while another reader quantizes it will run in int8 too (noted).
// - Q/DQ pairs whose DQ output is a graph output are kept: folding would rename the output, and
//   the graph asks for the quantized values there.
#include "quant/qdq_import.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <iterator>
#include <optional>
#include <set>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "ir/op_registry.h"
#include "ir/run_time_values.h"
#include "quant/weight_quantizer.h"

namespace qf::quant {
namespace {

// Notes of one kind beyond this many are summarised in one line, so that a large model with the
// same situation at every layer gives a readable list.
constexpr size_t kNotesPerKind = 8;

bool is_onnx(const ir::Node& n, std::string_view op) {
  return (n.domain.empty() || n.domain == "ai.onnx") && n.op_type == op;
}
bool is_q(const ir::Node& n) {
  return is_onnx(n, "QuantizeLinear");
}
bool is_dq(const ir::Node& n) {
  return is_onnx(n, "DequantizeLinear");
}
bool is_weighted(const ir::Node& n) {
  return is_onnx(n, "Conv") || is_onnx(n, "Gemm") || is_onnx(n, "MatMul");
}

bool is_graph_output(const ir::Graph& g, const ir::Value* v) {
  return std::find(g.outputs.begin(), g.outputs.end(), v) != g.outputs.end();
}

// Values of constant tensors computed with the reference kernels, as the executor would. A value
// that cannot be computed (no kernel, a kernel error) is nullopt: the node that reads it is then
// left in the graph, and running it reports the error.
class ConstantEvaluator {
 public:
  explicit ConstantEvaluator(const std::unordered_set<const ir::Value*>& non_constant)
      : non_constant_(non_constant) {}

  std::optional<Tensor> value_of(const ir::Value* v) {
    if (!v || non_constant_.count(v)) return std::nullopt;
    if (v->is_constant()) return v->constant;
    if (auto it = memo_.find(v); it != memo_.end()) return it->second;
    const ir::Node* p = v->producer;
    if (!p) return std::nullopt;
    const ir::OpDef* def = ir::OpRegistry::global().find(p->domain, p->op_type, p->opset);
    if (!def || !def->infer || !def->reference) return std::nullopt;
    std::vector<Tensor> inputs;
    for (const ir::Value* in : p->inputs) {
      if (!in) {
        inputs.emplace_back();
        continue;
      }
      std::optional<Tensor> t = value_of(in);
      if (!t) return std::nullopt;
      inputs.push_back(std::move(*t));
    }
    ir::InferContext ictx{*p, {}, std::vector<ir::InferOutput>(p->outputs.size())};
    std::vector<const Tensor*> in_ptrs;
    for (const Tensor& t : inputs) {
      const Tensor* tp = t.defined() ? &t : nullptr;
      ir::InferInput info;
      if (tp) info = {true, t.dtype(), ir::to_sym_shape(t.shape()), tp};
      ictx.inputs.push_back(info);
      in_ptrs.push_back(tp);
    }
    if (!def->infer(ictx).ok()) return std::nullopt;
    std::vector<Tensor> outputs(p->outputs.size());
    for (size_t i = 0; i < outputs.size(); ++i) {
      if (!p->has_output(i)) continue;
      const ir::InferOutput& o = ictx.outputs[i];
      if (o.value.defined()) {
        outputs[i] = o.value;
        continue;
      }
      auto shape = o.shape ? ir::to_concrete(*o.shape) : std::nullopt;
      if (!shape || o.dtype == DType::kUndefined) return std::nullopt;
      outputs[i] = Tensor(o.dtype, *shape);
    }
    bool all_known = true;
    for (size_t i = 0; i < outputs.size(); ++i) {
      all_known = all_known && (!p->has_output(i) || ictx.outputs[i].value.defined());
    }
    if (!all_known) {
      ir::KernelContext kctx{*p, in_ptrs, outputs};
      if (!def->reference(kctx).ok()) return std::nullopt;
    }
    for (size_t i = 0; i < outputs.size(); ++i) {
      if (p->has_output(i)) memo_[p->outputs[i]] = outputs[i];
    }
    return memo_.at(v);
  }

 private:
  const std::unordered_set<const ir::Value*>& non_constant_;
  std::unordered_map<const ir::Value*, Tensor> memo_;
};

// Notes grouped by kind, in the order the kinds first appear; see kNotesPerKind.
class Notes {
 public:
  void add(const std::string& kind, std::string text) {
    auto it =
        std::find_if(kinds_.begin(), kinds_.end(), [&](const auto& k) { return k.first == kind; });
    if (it == kinds_.end()) {
      kinds_.emplace_back(kind, std::vector<std::string>{});
      it = std::prev(kinds_.end());
    }
    it->second.push_back(std::move(text));
  }

  std::vector<std::string> lines() const {
    std::vector<std::string> out;
    for (const auto& [kind, texts] : kinds_) {
      for (size_t i = 0; i < texts.size() && i < kNotesPerKind; ++i) out.push_back(texts[i]);
      if (texts.size() > kNotesPerKind) {
        out.push_back(fmt::format("... and {} more: {}", texts.size() - kNotesPerKind, kind));
      }
    }
    return out;
  }

 private:
  std::vector<std::pair<std::string, std::vector<std::string>>> kinds_;
};

// A Q or DQ node's scale (input 1), zero point (input 2, undefined when absent) and layout.
struct QParams {
  Tensor scale;
  Tensor zero_point;
  int64_t axis = 1;
  int64_t block_size = 0;

  bool per_tensor() const { return block_size == 0 && scale.numel() == 1 && scale.rank() <= 1; }
  int64_t zero_at(int64_t i) const {
    return zero_point.defined() ? static_cast<int64_t>(zero_point.element_as_double(i)) : 0;
  }
};

std::optional<QParams> read_params(const ir::Node& n, ConstantEvaluator& eval) {
  if (!n.has_input(1)) return std::nullopt;
  std::optional<Tensor> scale = eval.value_of(n.inputs[1]);
  if (!scale) return std::nullopt;
  QParams p;
  p.scale = std::move(*scale);
  if (n.has_input(2)) {
    std::optional<Tensor> zp = eval.value_of(n.inputs[2]);
    if (!zp) return std::nullopt;
    p.zero_point = std::move(*zp);
  }
  p.axis = n.attrs.get_int("axis", 1);
  p.block_size = n.attrs.get_int("block_size", 0);
  return p;
}

bool same_per_tensor_params(const QParams& a, const QParams& b) {
  return a.per_tensor() && b.per_tensor() && a.scale.dtype() == b.scale.dtype() &&
         a.scale.element_as_double(0) == b.scale.element_as_double(0) &&
         a.zero_at(0) == b.zero_at(0);
}

// Which scale element the element at flat index i of a tensor of shape `x` uses (the layouts of
// src/ops/quantize.cc: per tensor, per axis, blocked). nullopt when the shapes do not fit.
std::optional<std::vector<int64_t>> scale_indices(const Shape& x, const QParams& p) {
  const int64_t numel = shape_numel(x);
  std::vector<int64_t> idx(static_cast<size_t>(numel), 0);
  if (p.per_tensor()) return idx;
  const auto rank = static_cast<int64_t>(x.size());
  const int64_t axis = p.axis < 0 ? p.axis + rank : p.axis;
  if (axis < 0 || axis >= rank) return std::nullopt;
  const int64_t n = x[static_cast<size_t>(axis)];
  int64_t inner = 1;
  for (int64_t d = axis + 1; d < rank; ++d) inner *= x[static_cast<size_t>(d)];
  if (p.block_size <= 0) {
    if (p.scale.numel() != n) return std::nullopt;
    for (int64_t i = 0; i < numel; ++i) idx[static_cast<size_t>(i)] = (i / inner) % n;
    return idx;
  }
  const int64_t blocks = (n + p.block_size - 1) / p.block_size;
  if (p.scale.numel() * n != numel * blocks) return std::nullopt;
  for (int64_t i = 0; i < numel; ++i) {
    const int64_t o = i / (n * inner);
    const int64_t a = (i / inner) % n;
    idx[static_cast<size_t>(i)] = (o * blocks + a / p.block_size) * inner + i % inner;
  }
  return idx;
}

// ---- Planning -----------------------------------------------------------------------------------

struct ActivationFold {
  ir::Node* q;
  std::vector<ir::Node*> dqs;
  ir::Value* x;
  float scale;
};

struct WeightFold {
  ir::Node* dq;  // removed by the rewrite: use `output` afterwards
  ir::Value* output;
  Tensor value;      // the float constant the DQ computes
  Tensor quantized;  // its integer input
  QParams params;
};

struct Plan {
  std::vector<ActivationFold> activations;
  std::vector<WeightFold> weights;
  std::map<std::string, float> scales;
  std::map<std::string, runtime::QuantGrid> grids;
  std::unordered_map<const ir::Node*, std::string> kept_reason;  // why a Q/DQ node stays
};

class Planner {
 public:
  explicit Planner(const ir::Graph& g)
      : graph_(g), non_constant_(ir::run_time_values(g)), eval_(non_constant_) {}

  Result<Plan> run(Notes& notes) {
    for (const auto& n : graph_.nodes()) {
      if (is_dq(*n) && n->has_input(0) && !non_constant_.count(n->inputs[0])) {
        plan_weight(*n);
      } else if (is_q(*n) && n->has_input(0) && non_constant_.count(n->inputs[0])) {
        QF_RETURN_IF_ERROR(plan_activation(*n, notes));
      }
    }
    return std::move(plan_);
  }

 private:
  void keep(const ir::Node& n, std::string reason) {
    plan_.kept_reason.emplace(&n, std::move(reason));
  }

  void plan_weight(ir::Node& dq) {
    if (!dq.has_output(0)) return keep(dq, "its output is unused");
    std::optional<Tensor> value = eval_.value_of(dq.outputs[0]);
    std::optional<Tensor> quantized = eval_.value_of(dq.inputs[0]);
    std::optional<QParams> params = read_params(dq, eval_);
    if (!value || !quantized || !params) {
      return keep(dq, "its constant inputs could not be computed");
    }
    plan_.weights.push_back(
        {&dq, dq.outputs[0], std::move(*value), std::move(*quantized), std::move(*params)});
  }

  Status plan_activation(ir::Node& q, Notes& notes) {
    ir::Value* x = q.inputs[0];
    ir::Value* qv = q.has_output(0) ? q.outputs[0] : nullptr;
    std::vector<ir::Node*> dqs;
    auto keep_all = [&](const std::string& reason) {
      keep(q, reason);
      if (qv) {
        for (ir::Node* c : qv->consumers) {
          if (is_dq(*c)) keep(*c, reason);
        }
      }
      return Status();
    };
    if (!qv || qv->consumers.empty()) return keep_all("its output is unused");
    if (is_graph_output(graph_, qv)) return keep_all("its quantized output is a graph output");
    std::optional<QParams> qp = read_params(q, eval_);
    if (!qp) return keep_all("its scale or zero point is not a constant");
    for (ir::Node* c : qv->consumers) {
      if (!is_dq(*c) || c->inputs[0] != qv) {
        return keep_all(fmt::format("its output is also read by {}", c->label()));
      }
      std::optional<QParams> dp = read_params(*c, eval_);
      if (!dp || !same_per_tensor_params(*qp, *dp)) {
        if (!qp->per_tensor()) break;  // reported below with the per-axis reason
        return keep_all(fmt::format("{} reads it with another scale or zero point", c->label()));
      }
      if (!c->has_output(0)) continue;
      if (is_graph_output(graph_, c->outputs[0])) {
        return keep_all(fmt::format("the output of {} is a graph output", c->label()));
      }
      if (c->outputs[0]->dtype != DType::kF32) {
        return keep_all("it dequantizes to a type other than float32");
      }
      dqs.push_back(c);
    }
    if (!qp->per_tensor()) {
      notes.add("per-axis or blocked activation quantization kept as fake quantization",
                fmt::format("tensor '{}': per-axis or blocked activation quantization ({}) is "
                            "kept as quantize/dequantize nodes (the int8 engine has one scale "
                            "per activation tensor); the tensor stays float",
                            x->name, q.label()));
      return keep_all("per-axis or blocked activation quantization");
    }
    if (x->dtype != DType::kF32 || qp->scale.dtype() != DType::kF32) {
      return keep_all(fmt::format("it quantizes {} with a {} scale (float32 only)",
                                  dtype_tag(x->dtype), dtype_tag(qp->scale.dtype())));
    }
    const DType qtype = qv->dtype;
    if (qtype != DType::kI8 && qtype != DType::kU8) {
      return keep_all(fmt::format("it quantizes to {} (the int8 engine folds int8 and uint8 only)",
                                  dtype_tag(qtype)));
    }
    const auto s = static_cast<float>(qp->scale.element_as_double(0));
    if (!std::isfinite(s) || s <= 0.f) {
      return invalid_input(
          "{}: scale of tensor '{}' is {}; a quantization scale must be finite and "
          "positive",
          q.label(), x->name, s);
    }
    const int64_t zp = qp->zero_at(0);
    // The symmetric int8 scale whose range [-127, 127] * scale covers the graph's real range
    // [(qmin - zp) * s, (qmax - zp) * s] (for uint8 with zero point 0: 2s, so that u8 storage,
    // which uses half the symmetric scale, is s exactly). Tensors with a grid are stored on the
    // grid; the symmetric scale is what code that only needs "a scale" sees.
    const int64_t qmin = qtype == DType::kI8 ? -128 : 0;
    const int64_t qmax = qtype == DType::kI8 ? 127 : 255;
    const int64_t steps = std::max(zp - qmin, qmax - zp);
    float scale = s;
    if (qtype == DType::kU8 && zp == 0) {
      scale = 2.f * s;
    } else if (zp != 0) {
      scale = static_cast<float>(steps) * s / 127.f;
    }
    std::optional<runtime::QuantGrid> grid;
    if (qtype == DType::kU8 || zp != 0) {
      grid = runtime::QuantGrid{qtype, s, static_cast<int32_t>(zp)};
    }
    if (auto it = plan_.scales.find(x->name); it != plan_.scales.end() && it->second != scale) {
      notes.add("tensors quantized with two scales",
                fmt::format("tensor '{}' is quantized with two scales ({:g} and {:g}); the second "
                            "Q/DQ ({}) is kept as fake quantization",
                            x->name, it->second, scale, q.label()));
      return keep_all("its tensor already has another scale");
    }
    if (auto it = plan_.grids.find(x->name);
        it != plan_.grids.end() && (!grid || !(it->second == *grid))) {
      notes.add("tensors quantized with two scales",
                fmt::format("tensor '{}' is quantized on two grids; the second Q/DQ ({}) is kept "
                            "as fake quantization",
                            x->name, q.label()));
      return keep_all("its tensor already has another grid");
    }
    plan_.scales[x->name] = scale;
    if (grid) plan_.grids[x->name] = *grid;
    plan_.activations.push_back({&q, std::move(dqs), x, scale});
    return {};
  }

  const ir::Graph& graph_;
  std::unordered_set<const ir::Value*> non_constant_;
  ConstantEvaluator eval_;
  Plan plan_;
};

// ---- Weight reproduction check ------------------------------------------------------------------

// The output-channel axis the cpu backend quantizes input 1 of `n` along (lower.cc), or nullopt
// when the backend has no int8 kernel for it.
std::optional<int64_t> backend_channel_axis(const ir::Node& n, const Tensor& w) {
  if (is_onnx(n, "Conv")) return 0;
  if (is_onnx(n, "Gemm")) return n.attrs.get_int("transB", 0) != 0 ? 0 : 1;
  if (is_onnx(n, "MatMul") && w.rank() >= 2) return w.rank() - 1;
  return std::nullopt;
}

// How many output channels along `axis` the backend's quantization of `w.value`
// (quantize_per_channel_keeping_grid, as lower.cc does it) does not give the graph's integer
// values and scales for.
int64_t channels_not_reproduced(const WeightFold& w, int64_t axis, int64_t* channels) {
  const Tensor& f = w.value;
  const int64_t c_count = f.dim(static_cast<int>(axis));
  *channels = c_count;
  int64_t inner = 1;
  for (int d = static_cast<int>(axis) + 1; d < f.rank(); ++d) inner *= f.dim(d);
  const std::optional<std::vector<int64_t>> sidx = scale_indices(w.quantized.shape(), w.params);
  if (!sidx || f.dtype() != DType::kF32 || w.quantized.shape() != f.shape()) return c_count;
  const Result<QuantizedWeight> backend = quantize_per_channel_keeping_grid(f, axis, "");
  if (!backend.ok()) return c_count;
  const int8_t* q_backend = backend->values.data<int8_t>();
  const float* s_backend = backend->scales.data<float>();
  std::vector<bool> bad(static_cast<size_t>(c_count), false);
  for (int64_t i = 0; i < f.numel(); ++i) {
    const auto c = static_cast<size_t>((i / inner) % c_count);
    if (f.data<float>()[i] == 0.f && q_backend[i] == 0) continue;  // zeros on any grid
    const int64_t s = (*sidx)[static_cast<size_t>(i)];
    const int64_t q_graph =
        static_cast<int64_t>(w.quantized.element_as_double(i)) - w.params.zero_at(s);
    const auto s_graph = static_cast<float>(w.params.scale.element_as_double(s));
    const bool same_scale = s_backend[c] == s_graph ||
                            s_backend[c] == std::nextafter(s_graph, 0.f) ||
                            s_backend[c] == std::nextafter(s_graph, 2.f * s_graph);
    if (!same_scale || q_backend[i] != q_graph) bad[c] = true;
  }
  return std::count(bad.begin(), bad.end(), true);
}

// Removes the producers of `values` that nothing reads any more, and theirs in turn, adding them
// to `removed` (the rewrite must not touch a planned node that went this way).
void remove_dead_producers(ir::Graph& graph, std::vector<ir::Value*> values,
                           std::unordered_set<const ir::Node*>& removed) {
  while (!values.empty()) {
    ir::Value* v = values.back();
    values.pop_back();
    ir::Node* p = v ? v->producer : nullptr;
    if (!p) continue;
    const bool dead = std::all_of(p->outputs.begin(), p->outputs.end(), [&](const ir::Value* o) {
      return !o || (o->consumers.empty() && !is_graph_output(graph, o));
    });
    if (!dead) continue;
    values.insert(values.end(), p->inputs.begin(), p->inputs.end());
    removed.insert(p);
    graph.remove_node(p);
  }
}

// A Cast to the type its input already has changes nothing. PyTorch's export of a converted
// int8 model puts one, Cast(UINT8), between every QuantizeLinear and DequantizeLinear; splicing
// it out lets the pair fold. The graph computes the same values afterwards, so doing this before
// planning keeps fold_qdq's promise that an error leaves the graph's meaning unchanged.
void splice_noop_casts(ir::Graph& graph) {
  std::vector<ir::Node*> casts;
  for (const auto& n : graph.nodes()) {
    if (!is_onnx(*n, "Cast") || !n->has_input(0) || !n->has_output(0)) continue;
    const ir::Value* x = n->inputs[0];
    const ir::Value* y = n->outputs[0];
    if (x->dtype != DType::kUndefined && x->dtype == y->dtype && !is_graph_output(graph, y)) {
      casts.push_back(n.get());
    }
  }
  for (ir::Node* c : casts) {
    graph.replace_all_uses(c->outputs[0], c->inputs[0]);
    graph.remove_node(c);
  }
}

// Ops whose output 0 holds only elements of their input 0, unchanged: a quantization grid passes
// through them exactly (quantize(maxpool(x)) == maxpool(quantize(x)) for a monotonic quantize),
// so TensorRT moves Q/DQ across them. Averages, padding and arithmetic are not on the list.
bool passes_grid_through(const ir::Node& n) {
  static const std::set<std::string_view> kOps = {
      "MaxPool",   "GlobalMaxPool", "Reshape", "Flatten", "Transpose",    "Squeeze",
      "Unsqueeze", "Identity",      "Slice",   "Gather",  "SpaceToDepth", "DepthToSpace"};
  return (n.domain.empty() || n.domain == "ai.onnx") && kOps.count(n.op_type) != 0;
}

// Q/DQ propagation: a tensor computed by such an op from a quantized tensor gets that grid (a
// PyTorch QAT export quantizes a ReLU's output and lets the next convolution read it through a
// MaxPool), and a float tensor read only by such an op whose output is quantized gets the
// output's grid (the op commutes with the quantize). Concat passes a grid on when all its
// inputs share it. Returns the names that got a grid.
std::set<std::string> propagate_grids(const ir::Graph& graph, QdqImport& r) {
  std::set<std::string> got;
  auto copy_grid = [&](const ir::Value* from, const ir::Value* to) {
    r.activation_scales[to->name] = r.activation_scales.at(from->name);
    if (auto g = r.activation_grids.find(from->name); g != r.activation_grids.end()) {
      r.activation_grids[to->name] = g->second;
    }
    got.insert(to->name);
  };
  auto has = [&](const ir::Value* v) { return v && r.activation_scales.count(v->name) != 0; };
  auto same_grid = [&](const ir::Value* a, const ir::Value* b) {
    const auto ga = r.activation_grids.find(a->name);
    const auto gb = r.activation_grids.find(b->name);
    const bool a_grid = ga != r.activation_grids.end(), b_grid = gb != r.activation_grids.end();
    return r.activation_scales.at(a->name) == r.activation_scales.at(b->name) && a_grid == b_grid &&
           (!a_grid || ga->second == gb->second);
  };
  for (const auto& n : graph.nodes()) {  // forward, in topological order
    if (!n->has_output(0) || has(n->outputs[0]) || n->outputs[0]->dtype != DType::kF32) continue;
    if (passes_grid_through(*n) && n->has_input(0) && has(n->inputs[0])) {
      copy_grid(n->inputs[0], n->outputs[0]);
    } else if (is_onnx(*n, "Concat") && !n->inputs.empty() &&
               std::all_of(n->inputs.begin(), n->inputs.end(), [&](const ir::Value* in) {
                 return has(in) && same_grid(in, n->inputs[0]);
               })) {
      copy_grid(n->inputs[0], n->outputs[0]);
    }
  }
  for (auto it = graph.nodes().rbegin(); it != graph.nodes().rend(); ++it) {  // backward
    const ir::Node& n = **it;
    if (!passes_grid_through(n) || !n.has_input(0) || !n.has_output(0)) continue;
    const ir::Value* x = n.inputs[0];
    if (!has(n.outputs[0]) || has(x) || x->dtype != DType::kF32 || x->is_constant() ||
        x->consumers.size() != 1 || is_graph_output(graph, x)) {
      continue;
    }
    copy_grid(n.outputs[0], x);
  }
  return got;
}

}  // namespace

bool has_qdq(const ir::Graph& graph) {
  return std::any_of(graph.nodes().begin(), graph.nodes().end(), [](const auto& n) {
    return is_q(*n) || is_dq(*n) || is_onnx(*n, "QLinearConv") || is_onnx(*n, "QLinearMatMul");
  });
}

Result<QdqImport> fold_qdq(ir::Graph& graph) {
  Notes notes;
  splice_noop_casts(graph);
  QF_ASSIGN_OR_RETURN(Plan plan, Planner(graph).run(notes));

  // Nothing below fails for a valid graph.
  QdqImport result;
  result.activation_scales = plan.scales;
  result.activation_grids = plan.grids;
  // Weights first: removing what computed them only reaches constant nodes, never an activation
  // pair; the pairs' parameters are removed afterwards.
  std::unordered_set<const ir::Node*> removed;
  std::set<const ir::Value*> folded_weights;
  for (WeightFold& w : plan.weights) {
    if (removed.count(w.dq)) continue;  // it only computed another folded node's parameters
    ir::Value* y = w.output;
    std::vector<ir::Value*> inputs(w.dq->inputs.begin(), w.dq->inputs.end());
    graph.remove_node(w.dq);
    y->constant = w.value;
    y->dtype = w.value.dtype();
    y->shape = ir::to_sym_shape(w.value.shape());
    folded_weights.insert(y);
    ++result.weights_folded;
    // What computed the integer weight (a QuantizeLinear of a float weight, Constant nodes).
    remove_dead_producers(graph, std::move(inputs), removed);
  }

  std::set<std::pair<const ir::Node*, size_t>> through_qdq;  // inputs that read a folded pair
  for (const ActivationFold& a : plan.activations) {
    for (ir::Node* dq : a.dqs) {
      ir::Value* y = dq->outputs[0];
      for (const ir::Node* c : y->consumers) {
        for (size_t i = 0; i < c->inputs.size(); ++i) {
          if (c->inputs[i] == y) through_qdq.insert({c, i});
        }
      }
      graph.replace_all_uses(y, a.x);
    }
    std::vector<ir::Value*> params;  // scales and zero points (Constant nodes of PyTorch exports)
    for (ir::Node* dq : a.dqs) {
      params.insert(params.end(), dq->inputs.begin() + 1, dq->inputs.end());
      graph.remove_node(dq);
    }
    // Other DQ readers without outputs were not collected; the Q goes only when unread.
    bool unread = true;
    for (const ir::Value* out : a.q->outputs) unread = unread && (!out || out->consumers.empty());
    if (unread) {
      params.insert(params.end(), a.q->inputs.begin() + 1, a.q->inputs.end());
      graph.remove_node(a.q);
    } else {
      plan.kept_reason.emplace(a.q, "it is still read after folding");
    }
    remove_dead_producers(graph, std::move(params), removed);
    ++result.activation_pairs;
  }

  const std::set<std::string> propagated = propagate_grids(graph, result);
  result.grids_propagated = static_cast<int>(propagated.size());

  // Weights the backend will not reproduce exactly, and int8 readers the graph did not ask for.
  for (const auto& n : graph.nodes()) {
    if (!is_weighted(*n) || !n->has_input(0) || !n->has_input(1)) continue;
    const ir::Value* x = n->inputs[0];
    const ir::Value* wv = n->inputs[1];
    if (!result.activation_scales.count(x->name)) continue;
    if (!through_qdq.count({n.get(), 0}) && !propagated.count(x->name)) {
      notes.add("int8 readers without Q/DQ",
                fmt::format("{} reads '{}' without Q/DQ, but another reader quantizes it: the "
                            "cpu backend runs this node in int8 as well",
                            n->label(), x->name));
    }
    if (!wv->is_constant()) continue;
    if (!folded_weights.count(wv)) {
      notes.add("float weights quantized by the backend",
                fmt::format("{}: its weight '{}' is float in the graph; the cpu backend "
                            "quantizes it per output channel (max|w| / 127)",
                            n->label(), wv->name));
      continue;
    }
    const auto it = std::find_if(plan.weights.begin(), plan.weights.end(),
                                 [&](const WeightFold& f) { return f.output == wv; });
    const std::optional<int64_t> axis = backend_channel_axis(*n, wv->constant);
    if (it == plan.weights.end() || !axis) continue;
    int64_t channels = 0;
    const int64_t differ = channels_not_reproduced(*it, *axis, &channels);
    if (differ == 0) continue;
    notes.add("weights re-quantized on another grid",
              fmt::format("weight '{}' ({} input 1): {} of {} output channels reach neither +-127 "
                          "nor -128 exactly in the graph's int8 values (or have a zero point or "
                          "mixed scales); the cpu backend re-quantizes them with max|w| / 127, so "
                          "the engine's weights differ slightly from the graph's",
                          wv->name, n->label(), differ, channels));
  }

  for (const auto& n : graph.nodes()) {
    if (!is_q(*n) && !is_dq(*n)) continue;
    ++result.kept_nodes;
    auto reason = plan.kept_reason.find(n.get());
    notes.add("Q/DQ nodes kept",
              fmt::format("{} kept as a real {} node run by the reference kernel: {}", n->label(),
                          is_q(*n) ? "quantize" : "dequantize",
                          reason != plan.kept_reason.end() ? reason->second
                                                           : "it has no matching partner"));
  }

  graph.remove_unused_values();
  QF_RETURN_IF_ERROR(graph.sort_topologically());
  QF_RETURN_IF_ERROR(ir::infer_shapes(graph));
  result.notes = notes.lines();
  return result;
}

}  // namespace qf::quant
