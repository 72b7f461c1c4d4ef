// Q/DQ insertion. Everything that can fail (a missing or bad scale, a weight that cannot be
// quantized, an opset that cannot be raised) is decided in a planning phase that only reads the
// graph; the rewrite runs afterwards and cannot fail, so an error leaves the graph untouched.
//
// Decisions that are not spelled out by TensorRT's or ONNX's rules:
// - "Constant" means "does not depend on a graph input" (the rule calibration uses to decide which
//   tensors get a scale, see calibrated_tensor_names): initializers, Constant nodes and small
//   constant subgraphs (Transpose of an initializer ...). A constant in a weight position is
//   computed with the reference kernels and stored as an int8 initializer; a tensor that depends
//   on an input is an activation and needs a calibrated scale, wherever it appears (so a MatMul
//   of two activations gets two activation Q/DQ pairs).
// - Weight channel axes: Conv 0, ConvTranspose 1 (its output channels) when group == 1, Gemm's B
//   0 with transB else 1, MatMul's 2-D B 1. Grouped ConvTranspose keeps one scale per tensor:
//   its axis-1 dim holds output channels per group (C_out / group), so per-axis scales along it
//   would be shared across groups, which is not per output channel and which TensorRT (that wants
//   one scale per output channel) does not accept. Other constants (Gemm's A, MatMul's A, a B
//   of rank != 2) are per tensor too.
// - An activation scale of 0 (calibration saw only zeros; the cache stores 0 as TensorRT does)
//   becomes 1.0, like an all-zero weight channel: zeros stay exact and no scale is 0, which
//   QuantizeLinear would divide by. Negative, NaN or infinite scales are errors.
// - A model whose default opset is below `options.opset` (13: per-axis DequantizeLinear) is
//   raised when that keeps every node's meaning; otherwise kUnsupported names the node. The
//   importer already rewrote old node forms into the newest ones qforge knows (Squeeze axes as
//   an input, Clip bounds as inputs ...), which are the opset-13 forms, and qforge's kernels read
//   the opset only where the semantics differ (Softmax family, Dropout's mask type), so raising
//   is checked with a table of the ONNX changes up to opset 17 that alter the meaning of an
//   existing node (handled by making the old meaning explicit, or refused).
// - Whether or not the opset moves, every default-domain node is checked against ONNX's schema
//   (linked libonnx) in the form the exporter will write it, before anything changes: the result
//   must load in ONNX Runtime and TensorRT unchanged, so a node qforge cannot write validly
//   (attributes that no longer exist, inputs that became mandatory, an importer-canonical form
//   the exporter does not convert back) is an error rather than a broken model.
#include "quant/qdq_export.h"

#include <onnx/defs/schema.h>
#include <onnx/onnx_pb.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <exception>
#include <optional>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "ir/op_registry.h"
#include "ir/run_time_values.h"
#include "onnx/exporter.h"
#include "quant/weight_quantizer.h"

namespace qf::quant {
namespace {

constexpr int64_t kPerAxisOpset = 13;        // DequantizeLinear's `axis`
constexpr int64_t kOldestRaisableOpset = 7;  // older forms were not reviewed for raising

bool is_weighted_op(const ir::Node& n) {
  return n.domain.empty() && (n.op_type == "Conv" || n.op_type == "ConvTranspose" ||
                              n.op_type == "Gemm" || n.op_type == "MatMul");
}

bool is_excluded(const ir::Node& n, const std::set<std::string>& exclude) {
  return (!n.name.empty() && exclude.count(n.name)) || exclude.count(n.op_type);
}

// Values of constant tensors that are not initializers (Constant nodes, Transpose of a weight),
// computed with the reference kernels as the executor would.
class ConstantEvaluator {
 public:
  Result<Tensor> value_of(const ir::Value* v) {
    if (v->is_constant()) return v->constant;
    if (auto it = memo_.find(v); it != memo_.end()) return it->second;
    const ir::Node* p = v->producer;
    if (!p) return internal_error("tensor '{}' is neither computed nor a constant", v->name);
    const ir::OpDef* def = ir::OpRegistry::global().find(p->domain, p->op_type, p->opset);
    if (!def || !def->infer || !def->reference) {
      return unsupported("{}: cannot compute the constant '{}' it produces (no reference kernel)",
                         p->label(), v->name);
    }
    std::vector<Tensor> inputs;
    for (const ir::Value* in : p->inputs) {
      if (!in) {
        inputs.emplace_back();
        continue;
      }
      QF_ASSIGN_OR_RETURN(Tensor t, value_of(in));
      inputs.push_back(std::move(t));
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
    QF_RETURN_IF_ERROR(def->infer(ictx));
    std::vector<Tensor> outputs(p->outputs.size());
    for (size_t i = 0; i < outputs.size(); ++i) {
      const ir::InferOutput& o = ictx.outputs[i];
      auto shape = o.shape ? ir::to_concrete(*o.shape) : std::nullopt;
      if (!p->has_output(i)) continue;
      if (!shape || o.dtype == DType::kUndefined) {
        return internal_error("{}: output {} has no known shape", p->label(), i);
      }
      outputs[i] = Tensor(o.dtype, *shape);
    }
    ir::KernelContext kctx{*p, in_ptrs, outputs};
    QF_RETURN_IF_ERROR(def->reference(kctx));
    for (size_t i = 0; i < outputs.size(); ++i) {
      if (p->has_output(i)) memo_[p->outputs[i]] = outputs[i];
    }
    return memo_.at(v);
  }

 private:
  std::unordered_map<const ir::Value*, Tensor> memo_;
};

// The channel axis of a constant in input `input` of a weighted op, or nullopt for one scale.
std::optional<int64_t> weight_axis(const ir::Node& n, size_t input, const Tensor& w) {
  std::optional<int64_t> axis;
  if (input == 1) {
    if (n.op_type == "Conv") {
      axis = 0;
    } else if (n.op_type == "ConvTranspose") {
      if (n.attrs.get_int("group", 1) == 1) axis = 1;
    } else if (n.op_type == "Gemm") {
      axis = n.attrs.get_int("transB", 0) != 0 ? 0 : 1;
    } else if (n.op_type == "MatMul") {
      if (w.rank() == 2) axis = 1;
    }
  }
  if (axis && *axis >= w.rank()) axis.reset();  // malformed weight: let one scale serve
  return axis;
}

// ---- Planning ---------------------------------------------------------------------------------

struct Use {
  ir::Node* node;
  size_t input;
};

struct ActivationPlan {
  ir::Value* value;
  float scale;
  std::vector<Use> uses;
};

struct WeightPlan {
  ir::Value* value;
  QuantizedWeight quantized;
  std::vector<Use> uses;
};

struct Plan {
  std::vector<ActivationPlan> activations;
  std::vector<WeightPlan> weights;
  QdqExportReport report;
};

class Planner {
 public:
  Planner(const ir::Graph& g, const QdqExportOptions& options)
      : graph_(g), options_(options), dependent_(ir::run_time_values(g)) {}

  Result<Plan> run() {
    for (const auto& n : graph_.nodes()) {
      if (is_weighted_op(*n)) {
        QF_RETURN_IF_ERROR(plan_weighted(*n));
      } else if (is_residual_add(*n)) {
        if (is_excluded(*n, options_.exclude)) {
          ++plan_.report.excluded_nodes;
          continue;
        }
        for (size_t i = 0; i < 2; ++i) QF_RETURN_IF_ERROR(add_activation(*n, i));
        ++plan_.report.quantized_nodes;
      }
    }
    if (!missing_.empty()) return missing_scale_error();
    return std::move(plan_);
  }

 private:
  bool is_activation(const ir::Value* v) const { return dependent_.count(v) != 0; }

  // An Add joining two float branches, both computed from the input (TensorRT quantizes both
  // inputs so that the Add fuses into the preceding convolution in INT8).
  bool is_residual_add(const ir::Node& n) const {
    if (!n.domain.empty() || n.op_type != "Add" || n.inputs.size() != 2) return false;
    return std::all_of(n.inputs.begin(), n.inputs.end(), [&](const ir::Value* v) {
      return v && is_activation(v) && v->dtype == DType::kF32;
    });
  }

  Status plan_weighted(ir::Node& n) {
    // Inputs 0 and 1 carry the data; Conv's bias and Gemm's C stay float.
    std::vector<size_t> acts, consts;
    for (size_t i = 0; i < 2 && i < n.inputs.size(); ++i) {
      const ir::Value* v = n.inputs[i];
      if (!v) continue;
      if (dtype_is_float(v->dtype) && v->dtype != DType::kF32) {
        return unsupported(
            "{}: input '{}' is {}; Q/DQ export handles float32 models only (int8 Q/DQ of "
            "other float types needs opset 19)",
            n.label(), v->name, dtype_tag(v->dtype));
      }
      if (v->dtype != DType::kF32) return {};  // integer MatMul: nothing to quantize
      (is_activation(v) ? acts : consts).push_back(i);
    }
    if (acts.empty()) return {};  // a computation on constants only
    if (is_excluded(n, options_.exclude)) {
      ++plan_.report.excluded_nodes;
      return {};
    }
    for (size_t i : acts) QF_RETURN_IF_ERROR(add_activation(n, i));
    for (size_t i : consts) QF_RETURN_IF_ERROR(add_weight(n, i));
    ++plan_.report.quantized_nodes;
    return {};
  }

  Status add_activation(ir::Node& n, size_t input) {
    ir::Value* v = n.inputs[input];
    if (auto it = activation_index_.find(v); it != activation_index_.end()) {
      plan_.activations[it->second].uses.push_back({&n, input});
      return {};
    }
    auto s = options_.activation_scales.find(v->name);
    if (s == options_.activation_scales.end()) {
      if (missing_names_.insert(v).second) {
        missing_.emplace_back(v->name, fmt::format("input {} of {}", input, n.label()));
      }
      return {};
    }
    float scale = s->second;
    if (!std::isfinite(scale) || scale < 0.0f) {
      return invalid_input(
          "activation scale of tensor '{}' (input {} of {}) is {}; scales must be finite and "
          ">= 0",
          v->name, input, n.label(), scale);
    }
    if (scale == 0.0f) scale = 1.0f;  // an all-zero tensor: see the file comment
    activation_index_[v] = plan_.activations.size();
    plan_.activations.push_back({v, scale, {{&n, input}}});
    return {};
  }

  Status add_weight(ir::Node& n, size_t input) {
    ir::Value* v = n.inputs[input];
    QF_ASSIGN_OR_RETURN(Tensor w, evaluator_.value_of(v));
    const std::optional<int64_t> axis = weight_axis(n, input, w);
    const auto key = std::make_pair(v, axis.value_or(-1));
    if (auto it = weight_index_.find(key); it != weight_index_.end()) {
      plan_.weights[it->second].uses.push_back({&n, input});
      return {};
    }
    const std::string what = fmt::format("weight '{}' (input {} of {})", v->name, input, n.label());
    QF_ASSIGN_OR_RETURN(QuantizedWeight q,
                        axis ? quantize_per_channel(w, *axis, what) : quantize_per_tensor(w, what));
    weight_index_[key] = plan_.weights.size();
    plan_.weights.push_back({v, std::move(q), {{&n, input}}});
    return {};
  }

  Status missing_scale_error() const {
    std::string more;
    if (missing_.size() > 1) {
      std::vector<std::string> names;
      for (size_t i = 1; i < missing_.size() && i <= 5; ++i) names.push_back(missing_[i].first);
      more = fmt::format(" ({} more tensor{} without a scale: {}{})", missing_.size() - 1,
                         missing_.size() == 2 ? "" : "s", fmt::join(names, ", "),
                         missing_.size() > 6 ? ", ..." : "");
    }
    return invalid_input(
        "no activation scale for tensor '{}' ({}){}; the calibration does not cover this "
        "model's tensors (recalibrate it) or exclude the node",
        missing_[0].first, missing_[0].second, more);
  }

  const ir::Graph& graph_;
  const QdqExportOptions& options_;
  std::unordered_set<const ir::Value*> dependent_;
  ConstantEvaluator evaluator_;
  Plan plan_;
  std::unordered_map<const ir::Value*, size_t> activation_index_;
  std::map<std::pair<const ir::Value*, int64_t>, size_t> weight_index_;
  std::vector<std::pair<std::string, std::string>> missing_;  // tensor, where it is used
  std::unordered_set<const ir::Value*> missing_names_;
};

// ---- Opset: raising it, checking the written node forms --------------------------------------

// What a node needs so that it means at the new opset what it meant at the old one.
struct OpsetFixup {
  ir::Node* node = nullptr;
  std::optional<int64_t> axis;                              // explicit `axis` (Softmax family)
  std::optional<std::pair<std::string, std::string>> text;  // string attribute to set
  std::optional<float> ratio_input;                         // Dropout's `ratio` becomes input 1
};

class OpsetPlan {
 public:
  OpsetPlan(ir::Graph& g, int64_t min_opset)
      : graph_(g), from_(g.opset()), to_(std::max(g.opset(), min_opset)) {}

  bool raises() const { return to_ > from_; }

  // Checks, without changing anything, that every node can move to the target opset and that
  // every default-domain node, as the exporter writes it, is valid there: the Q/DQ model must
  // load in ONNX Runtime and TensorRT as it is.
  Status check() {
    const int max_known =
        ::onnx::OpSchemaRegistry::DomainToVersionRange::Instance().Map().at("").second;
    if (raises()) {
      if (from_ < kOldestRaisableOpset) {
        return failure(fmt::format("opset {} is older than qforge can raise (>= {})", from_,
                                   kOldestRaisableOpset));
      }
      if (to_ > max_known) {
        return failure(
            fmt::format("the linked ONNX library knows opsets up to {} only", max_known));
      }
      for (const auto& n : graph_.nodes()) {
        if (!n->domain.empty()) continue;
        const ::onnx::OpSchema* schema = ::onnx::OpSchemaRegistry::Schema(n->op_type, to_, "");
        if (!schema || schema->Deprecated()) {
          return failure(fmt::format("{} does not exist at opset {} (removed or deprecated)",
                                     n->label(), to_));
        }
        QF_RETURN_IF_ERROR(check_semantics(*n));
      }
    }
    // Newer opsets than the library knows cannot be checked (an older schema would be wrong).
    if (to_ > max_known) return {};
    return verify_schemas();
  }

  void apply() {
    if (!raises()) return;
    for (const OpsetFixup& f : fixups_) {
      ir::Node& n = *f.node;
      if (f.axis) n.attrs.set("axis", *f.axis);
      if (f.text) n.attrs.set(f.text->first, f.text->second);
      if (f.ratio_input) {
        ir::Value* c = graph_.add_constant((n.name.empty() ? n.op_type : n.name) + "_ratio",
                                           Tensor::from_vector<float>({}, {*f.ratio_input}));
        graph_.set_input(&n, 1, c);
        n.attrs.erase("ratio");
      }
    }
    set_opset(to_);
  }

 private:
  // An ONNX version change at `version` lies between the model's opset and the target.
  bool crosses(int64_t version) const { return from_ < version && version <= to_; }

  void set_opset(int64_t opset) {
    for (const auto& n : graph_.nodes()) {
      if (n->domain.empty()) n->opset = static_cast<int>(opset);
    }
    const bool legacy_key =
        !graph_.opset_imports.count("") && graph_.opset_imports.count("ai.onnx");
    graph_.opset_imports[legacy_key ? "ai.onnx" : ""] = opset;
  }

  Status failure(const std::string& why) const {
    return unsupported(
        "the model imports opset {}, but per-axis DequantizeLinear needs opset {} and raising "
        "it is not possible: {}; re-export the model at opset {} or later",
        from_, to_, why, to_);
  }

  // The ONNX changes up to opset 17 that alter what an existing node computes (everything else
  // changed types, added attributes whose defaults keep the old behaviour, or turned attributes
  // into inputs, which the importer already did).
  Status check_semantics(ir::Node& n) {
    OpsetFixup f;
    f.node = &n;
    const std::string& op = n.op_type;
    if ((op == "Softmax" || op == "LogSoftmax" || op == "Hardmax") && crosses(13)) {
      // Before 13: normalised over all dims from `axis` on, flattened; from 13: over `axis`.
      // The same when at most one of those dims is not 1; that dim becomes the explicit axis.
      const auto& shape = n.has_input(0) ? n.inputs[0]->shape : std::nullopt;
      if (!shape) {
        return failure(
            fmt::format("{} normalises differently before opset 13 and its input's rank is unknown",
                        n.label()));
      }
      const auto rank = static_cast<int64_t>(shape->size());
      int64_t axis = n.attrs.get_int("axis", 1);
      if (axis < 0) axis += rank;
      std::vector<int64_t> wide;
      for (int64_t d = std::max<int64_t>(axis, 0); d < rank; ++d) {
        const ir::Dim& dim = (*shape)[static_cast<size_t>(d)];
        if (!dim.is_known() || dim.value != 1) wide.push_back(d);
      }
      if (axis < 0 || axis >= rank || wide.size() > 1) {
        return failure(fmt::format(
            "{} normalises over the flattened dims {}.. of its {} input before opset 13 and "
            "over one axis from 13",
            n.label(), axis, ir::sym_shape_str(shape)));
      }
      f.axis = wide.empty() ? axis : wide[0];
    }
    if (op == "Dropout") {
      if (crosses(10) && n.has_output(1)) {
        return failure(fmt::format("{}'s mask output changes type at opset 10", n.label()));
      }
      if (crosses(12) && n.attrs.has("ratio") && !n.has_input(1)) {
        f.ratio_input = n.attrs.get_float("ratio", 0.5f);
      }
    }
    if (op == "Resize") {
      // "simple" is qforge's name for Resize-10's nearest rule, which no later opset has.
      if (n.attrs.get_string("nearest_mode", "") == "simple") {
        return failure(fmt::format("{} uses Resize-10's nearest rounding", n.label()));
      }
      if (crosses(13) &&
          n.attrs.get_string("coordinate_transformation_mode", "") == "tf_half_pixel_for_nn") {
        return failure(fmt::format("{} uses tf_half_pixel_for_nn, removed at opset 13", n.label()));
      }
    }
    if (op == "RoiAlign" && crosses(16) && !n.attrs.has("coordinate_transformation_mode")) {
      f.text =
          std::make_pair("coordinate_transformation_mode", "output_half_pixel");  // old default
    }
    if (f.axis || f.text || f.ratio_input) fixups_.push_back(std::move(f));
    return {};
  }

  // ONNX's schema check of every default-domain node at the target opset, on the form the
  // exporter writes with the graph set to that opset and the fixups applied to the copy. The
  // graph's opset is put back before returning; the nodes are not touched.
  Status verify_schemas() {
    ::onnx::ModelProto model;
    set_opset(to_);
    const Status exported = onnx_io::export_model(graph_, &model);
    set_opset(from_);
    QF_RETURN_IF_ERROR(exported);
    std::unordered_map<const ir::Node*, const OpsetFixup*> fixup_of;
    for (const OpsetFixup& f : fixups_) fixup_of[f.node] = &f;
    int i = 0;
    for (const auto& n : graph_.nodes()) {
      ::onnx::NodeProto proto = model.graph().node(i++);
      if (!n->domain.empty()) continue;
      const ::onnx::OpSchema* schema = ::onnx::OpSchemaRegistry::Schema(n->op_type, to_, "");
      if (!schema) continue;  // not an ONNX op: the source model was not valid ONNX either
      if (auto it = fixup_of.find(n.get()); it != fixup_of.end()) {
        apply_to_proto(*it->second, proto);
      }
      try {
        schema->Verify(proto);
      } catch (const std::exception& e) {
        const std::string why =
            fmt::format("{} is not valid at opset {} ({})", n->label(), to_, trim(e.what()));
        if (raises()) return failure(why);
        return unsupported(
            "{}: qforge would write it in a form that ONNX does not accept, so the Q/DQ model "
            "would not load in ONNX Runtime or TensorRT",
            why);
      }
    }
    return {};
  }

  static std::string trim(std::string s) {
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
    return s;
  }

  static void apply_to_proto(const OpsetFixup& f, ::onnx::NodeProto& proto) {
    auto set_attr = [&](const std::string& name) -> ::onnx::AttributeProto* {
      for (auto& a : *proto.mutable_attribute()) {
        if (a.name() == name) return &a;
      }
      ::onnx::AttributeProto* a = proto.add_attribute();
      a->set_name(name);
      return a;
    };
    if (f.axis) {
      ::onnx::AttributeProto* a = set_attr("axis");
      a->set_type(::onnx::AttributeProto::INT);
      a->set_i(*f.axis);
    }
    if (f.text) {
      ::onnx::AttributeProto* a = set_attr(f.text->first);
      a->set_type(::onnx::AttributeProto::STRING);
      a->set_s(f.text->second);
    }
    if (f.ratio_input) {
      auto* attrs = proto.mutable_attribute();
      for (int k = 0; k < attrs->size(); ++k) {
        if (attrs->Get(k).name() == "ratio") {
          attrs->DeleteSubrange(k, 1);
          break;
        }
      }
      while (proto.input_size() < 2) proto.add_input("");
      proto.set_input(1, proto.name() + "_ratio");
    }
  }

  ir::Graph& graph_;
  int64_t from_, to_;
  std::vector<OpsetFixup> fixups_;
};

// ---- Rewriting --------------------------------------------------------------------------------

class Rewriter {
 public:
  explicit Rewriter(ir::Graph& g) : graph_(g) {
    for (const auto& n : g.nodes()) node_names_.insert(n->name);
  }

  void insert_activation_qdq(const ActivationPlan& a) {
    const std::string& t = a.value->name;
    ir::Value* scale = graph_.add_constant(t + "_scale", Tensor::from_vector<float>({}, {a.scale}));
    ir::Value* zero = graph_.add_constant(t + "_zero_point", Tensor(DType::kI8, {}));
    ir::Value* q = new_value(t + "_quantized", DType::kI8, a.value->shape);
    graph_.add_node("QuantizeLinear", node_name(t + "_QuantizeLinear"), {a.value, scale, zero},
                    {q});
    ir::Value* dq = new_value(t + "_dequantized", DType::kF32, a.value->shape);
    graph_.add_node("DequantizeLinear", node_name(t + "_DequantizeLinear"), {q, scale, zero}, {dq});
    for (const Use& u : a.uses) graph_.set_input(u.node, u.input, dq);
  }

  void insert_weight_dq(const WeightPlan& w) {
    const std::string& t = w.value->name;
    ir::Value* values = graph_.add_constant(t + "_quantized", w.quantized.values);
    ir::Value* scale = graph_.add_constant(t + "_scale", w.quantized.scales);
    ir::Value* zero = graph_.add_constant(t + "_zero_point", w.quantized.zero_points);
    ir::Value* dq =
        new_value(t + "_dequantized", DType::kF32, ir::to_sym_shape(w.quantized.values.shape()));
    ir::Node* node = graph_.add_node("DequantizeLinear", node_name(t + "_DequantizeLinear"),
                                     {values, scale, zero}, {dq});
    if (w.quantized.axis) node->attrs.set("axis", *w.quantized.axis);
    for (const Use& u : w.uses) graph_.set_input(u.node, u.input, dq);
    remove_if_dead(w.value);
  }

 private:
  ir::Value* new_value(const std::string& hint, DType dtype, std::optional<ir::SymShape> shape) {
    std::string name = hint;
    for (int i = 1; graph_.find_value(name); ++i) name = fmt::format("{}_{}", hint, i);
    ir::Value* v = graph_.get_or_add_value(name);
    v->dtype = dtype;
    v->shape = std::move(shape);
    return v;
  }

  std::string node_name(const std::string& hint) {
    std::string name = hint;
    for (int i = 1; node_names_.count(name); ++i) name = fmt::format("{}_{}", hint, i);
    node_names_.insert(name);
    return name;
  }

  // Drops the nodes that computed a replaced constant weight (a Constant node, a Transpose of
  // an initializer ...) once nothing reads their outputs any more.
  void remove_if_dead(ir::Value* v) {
    ir::Node* p = v->producer;
    if (!p) return;
    for (const ir::Value* out : p->outputs) {
      if (!out) continue;
      if (!out->consumers.empty()) return;
      if (std::find(graph_.outputs.begin(), graph_.outputs.end(), out) != graph_.outputs.end()) {
        return;
      }
    }
    std::vector<ir::Value*> inputs(p->inputs.begin(), p->inputs.end());
    graph_.remove_node(p);
    for (ir::Value* in : inputs) {
      if (in) remove_if_dead(in);
    }
  }

  ir::Graph& graph_;
  std::set<std::string> node_names_;
};

}  // namespace

Result<QdqExportReport> insert_qdq(ir::Graph& graph, const QdqExportOptions& options) {
  if (options.opset < kPerAxisOpset) {
    return usage_error("Q/DQ export needs opset >= {} (per-axis DequantizeLinear), got {}",
                       kPerAxisOpset, options.opset);
  }
  for (const auto& n : graph.nodes()) {
    if (n->domain.empty() && (n->op_type == "QuantizeLinear" || n->op_type == "DequantizeLinear")) {
      return unsupported("the model is already quantized ({}); Q/DQ export needs a float model",
                         n->label());
    }
  }

  QF_ASSIGN_OR_RETURN(Plan plan, Planner(graph, options).run());
  OpsetPlan opset(graph, options.opset);
  QF_RETURN_IF_ERROR(opset.check());

  // Nothing below fails for a valid graph.
  opset.apply();
  Rewriter rewriter(graph);
  for (const ActivationPlan& a : plan.activations) rewriter.insert_activation_qdq(a);
  for (const WeightPlan& w : plan.weights) rewriter.insert_weight_dq(w);
  plan.report.quantized_weights = static_cast<int>(plan.weights.size());
  graph.remove_unused_values();  // the float weights the int8 ones replaced
  QF_RETURN_IF_ERROR(graph.sort_topologically());
  QF_RETURN_IF_ERROR(ir::infer_shapes(graph));
  return plan.report;
}

}  // namespace qf::quant
