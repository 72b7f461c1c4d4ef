// Constant folding: a node whose outputs can be known now is replaced by constant values with the
// same names (so graph outputs keep theirs).
#include <algorithm>
#include <array>

#include "ir/op_registry.h"
#include "passes/passes.h"
#include "passes/rewrite.h"

namespace qf::passes {
namespace {

// Folded outputs become weights: keep them to a size a model could plausibly carry.
constexpr int64_t kMaxFoldedElements = int64_t{16} << 20;

// Ops never folded: random ones are not functions of their inputs; Q/DQ pairs on weights are
// how quantized models state their scales, which the INT8 path must see; and Identity/Dropout
// of a constant would copy it (exporters share deduplicated weights through Identity), where
// identity elimination lets the readers share the one constant.
constexpr std::array<std::string_view, 10> kNeverFolded = {
    "QuantizeLinear",    "DequantizeLinear", "RandomNormal", "RandomUniform", "RandomNormalLike",
    "RandomUniformLike", "Multinomial",      "Bernoulli",    "Identity",      "Dropout"};

bool never_folded(const ir::Node& node) {
  if (!node.domain.empty() && node.domain != "ai.onnx") return false;
  return std::find(kNeverFolded.begin(), kNeverFolded.end(), node.op_type) != kNeverFolded.end();
}

// The node's output values if they can be known without the graph's inputs, else nullopt. A
// failing shape function or kernel means "not now": the executor reports it at run time.
std::optional<std::vector<Tensor>> fold(const ir::Node& node) {
  const ir::OpDef* def = ir::OpRegistry::global().find(node.domain, node.op_type, node.opset);
  if (!def || !def->infer || never_folded(node)) return std::nullopt;
  ir::InferContext ctx{node, {}, std::vector<ir::InferOutput>(node.outputs.size())};
  bool all_constant = true;
  std::vector<const Tensor*> values;
  for (const ir::Value* in : node.inputs) {
    ir::InferInput info;
    if (in) {
      info = {true, in->dtype, in->shape, in->is_constant() ? &in->constant : nullptr};
      all_constant = all_constant && in->is_constant();
    }
    ctx.inputs.push_back(info);
    values.push_back(info.value);
  }
  if (!def->infer(ctx).ok()) return std::nullopt;

  std::vector<Tensor> outputs(node.outputs.size());
  bool known = true;
  for (size_t i = 0; i < outputs.size(); ++i) {
    if (node.outputs[i]) known = known && ctx.outputs[i].value.defined();
    outputs[i] = ctx.outputs[i].value;
  }
  if (known) return outputs;
  if (!all_constant || !def->reference) return std::nullopt;

  int64_t total = 0;
  for (size_t i = 0; i < outputs.size(); ++i) {
    const ir::InferOutput& o = ctx.outputs[i];
    auto shape = o.shape ? ir::to_concrete(*o.shape) : std::nullopt;
    if (!shape || o.dtype == DType::kUndefined) {
      if (!node.outputs[i]) continue;
      return std::nullopt;
    }
    total += shape_numel(*shape);
    if (total > kMaxFoldedElements) return std::nullopt;
    outputs[i] = Tensor(o.dtype, *shape);
  }
  ir::KernelContext kctx{node, values, outputs};
  if (!def->reference(kctx).ok()) return std::nullopt;
  return outputs;
}

class ConstantFolding final : public Pass {
 public:
  std::string_view name() const override { return "constant-folding"; }

  Result<bool> run(ir::Graph& graph) const override {
    std::vector<ir::Node*> snapshot;
    for (const auto& n : graph.nodes()) snapshot.push_back(n.get());
    bool changed = false;
    // In graph order, so a chain folds in one sweep: each node sees its producers folded.
    for (ir::Node* node : snapshot) {
      if (node->outputs.empty()) continue;
      std::optional<std::vector<Tensor>> values = fold(*node);
      if (!values) continue;
      const std::vector<ir::Value*> outputs = node->outputs;
      graph.remove_node(node);
      for (size_t i = 0; i < outputs.size(); ++i) {
        ir::Value* v = outputs[i];
        if (!v) continue;
        v->constant = (*values)[i];
        v->dtype = v->constant.dtype();
        v->shape = ir::to_sym_shape(v->constant.shape());
      }
      changed = true;
    }
    return changed;
  }
};

}  // namespace

std::unique_ptr<Pass> make_constant_folding_pass() {
  return std::make_unique<ConstantFolding>();
}

}  // namespace qf::passes
