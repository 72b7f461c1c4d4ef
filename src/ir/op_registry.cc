#include "ir/op_registry.h"

#include <unordered_map>

namespace qf::ir {

OpRegistry& OpRegistry::global() {
  static OpRegistry registry;
  return registry;
}

bool OpRegistry::add(const OpDef& def) {
  defs_.push_back(def);
  return true;
}

const OpDef* OpRegistry::find(std::string_view domain, std::string_view op_type,
                              int64_t opset) const {
  if (domain == "ai.onnx") domain = "";
  for (const OpDef& d : defs_) {
    if (d.domain == domain && d.op_type == op_type && opset >= d.min_opset &&
        opset <= d.max_opset) {
      return &d;
    }
  }
  return nullptr;
}

bool OpRegistry::knows(std::string_view domain, std::string_view op_type) const {
  if (domain == "ai.onnx") domain = "";
  for (const OpDef& d : defs_) {
    if (d.domain == domain && d.op_type == op_type) return true;
  }
  return false;
}

Status check_supported(const Node& node) {
  const OpRegistry& reg = OpRegistry::global();
  if (reg.find(node.domain, node.op_type, node.opset)) return {};
  if (reg.knows(node.domain, node.op_type)) {
    return unsupported("{}: operator {} is not supported at opset {}", node.label(), node.op_type,
                       node.opset);
  }
  const std::string domain = node.domain.empty() ? "ai.onnx" : node.domain;
  return unsupported("{}: operator {} (domain {}, opset {}) is not supported", node.label(),
                     node.op_type, domain, node.opset);
}

namespace {

// Keeps the more informative of two shapes: known dims win over symbols, symbols over unknown.
std::optional<SymShape> merge_shapes(const std::optional<SymShape>& inferred,
                                     const std::optional<SymShape>& declared) {
  if (!inferred) return declared;
  if (!declared || declared->size() != inferred->size()) return inferred;
  SymShape out = *inferred;
  for (size_t i = 0; i < out.size(); ++i) {
    const Dim& d = (*declared)[i];
    if (!out[i].is_known() && (d.is_known() || (out[i].symbol.empty() && !d.symbol.empty()))) {
      out[i] = d;
    }
  }
  return out;
}

// Folding small computations during analysis lets Shape -> Gather -> Concat -> Reshape chains
// resolve. Large tensors are left alone: analysis must stay cheap.
constexpr int64_t kMaxFoldedElements = 4096;

}  // namespace

Status infer_shapes(Graph& graph) {
  std::unordered_map<const Value*, Tensor> known;  // values computed during analysis
  for (const Value* c : graph.constants()) known[c] = c->constant;

  for (const auto& node_ptr : graph.nodes()) {
    Node& node = *node_ptr;
    const OpDef* def = OpRegistry::global().find(node.domain, node.op_type, node.opset);
    if (!def || !def->infer) continue;

    InferContext ctx{node, {}, std::vector<InferOutput>(node.outputs.size())};
    bool all_known = true;
    for (const Value* in : node.inputs) {
      InferInput info;
      if (in) {
        info.present = true;
        info.dtype = in->dtype;
        info.shape = in->shape;
        auto it = known.find(in);
        info.value = it == known.end() ? nullptr : &it->second;
        all_known = all_known && info.value;
      }
      ctx.inputs.push_back(info);
    }
    QF_RETURN_IF_ERROR(def->infer(ctx));

    // Run the reference kernel on small known inputs to learn the outputs' values.
    std::vector<Tensor> values(node.outputs.size());
    bool folded = false;
    if (all_known && def->reference) {
      bool small = true;
      for (const InferOutput& o : ctx.outputs) {
        auto concrete = o.shape ? to_concrete(*o.shape) : std::nullopt;
        small = small && concrete && shape_numel(*concrete) <= kMaxFoldedElements;
      }
      if (small) {
        std::vector<const Tensor*> inputs;
        for (const InferInput& in : ctx.inputs) inputs.push_back(in.value);
        for (size_t i = 0; i < values.size(); ++i) {
          values[i] = Tensor(ctx.outputs[i].dtype, *to_concrete(*ctx.outputs[i].shape));
        }
        KernelContext kctx{node, inputs, values};
        folded = def->reference(kctx).ok();
      }
    }

    for (size_t i = 0; i < node.outputs.size(); ++i) {
      Value* out = node.outputs[i];
      if (!out) continue;
      if (ctx.outputs[i].dtype != DType::kUndefined) out->dtype = ctx.outputs[i].dtype;
      out->shape = merge_shapes(ctx.outputs[i].shape, out->shape);
      if (folded) {
        known[out] = values[i];
      } else if (ctx.outputs[i].value.defined()) {
        known[out] = ctx.outputs[i].value;
      }
    }
  }
  return {};
}

}  // namespace qf::ir
