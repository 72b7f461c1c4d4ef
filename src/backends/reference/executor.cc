#include "backends/reference/executor.h"

#include <new>
#include <unordered_map>

#include "ir/op_registry.h"
#include "runtime/input_check.h"

namespace qf::reference {

Result<Executor> Executor::create(const ir::Graph& graph) {
  for (const auto& n : graph.nodes()) {
    QF_RETURN_IF_ERROR(ir::check_supported(*n));
    const ir::OpDef* def = ir::OpRegistry::global().find(n->domain, n->op_type, n->opset);
    if (!def->reference) {
      return unsupported("{}: no reference kernel for {}", n->label(), n->op_type);
    }
  }
  return Executor(graph);
}

Result<std::vector<Tensor>> Executor::run(const std::vector<Tensor>& inputs) const {
  const ir::Graph& g = *graph_;
  QF_RETURN_IF_ERROR(runtime::check_inputs(g, inputs));

  std::unordered_map<const ir::Value*, Tensor> live;
  std::unordered_map<const ir::Value*, size_t> uses_left;
  for (size_t i = 0; i < inputs.size(); ++i) live[g.inputs[i]] = inputs[i];
  for (const auto& n : g.nodes()) {
    for (const ir::Value* in : n->inputs) {
      if (in) ++uses_left[in];
    }
  }
  for (const ir::Value* out : g.outputs) ++uses_left[out];  // outputs are never freed

  auto lookup = [&](const ir::Value* v) -> const Tensor* {
    if (v->is_constant()) return &v->constant;
    auto it = live.find(v);
    return it == live.end() ? nullptr : &it->second;
  };

  for (const auto& node_ptr : g.nodes()) {
    const ir::Node& node = *node_ptr;
    const ir::OpDef* def = ir::OpRegistry::global().find(node.domain, node.op_type, node.opset);

    ir::InferContext ictx{node, {}, std::vector<ir::InferOutput>(node.outputs.size())};
    std::vector<const Tensor*> in_tensors;
    for (const ir::Value* in : node.inputs) {
      ir::InferInput info;
      const Tensor* t = in ? lookup(in) : nullptr;
      if (in && !t)
        return internal_error("{}: input '{}' was not computed", node.label(), in->name);
      if (t) info = {true, t->dtype(), ir::to_sym_shape(t->shape()), t};
      ictx.inputs.push_back(info);
      in_tensors.push_back(t);
    }
    QF_RETURN_IF_ERROR(def->infer(ictx));

    std::vector<Tensor> outputs(node.outputs.size());
    for (size_t i = 0; i < outputs.size(); ++i) {
      const ir::InferOutput& o = ictx.outputs[i];
      auto shape = o.shape ? ir::to_concrete(*o.shape) : std::nullopt;
      if (!shape || o.dtype == DType::kUndefined) {
        if (!node.has_output(i)) continue;  // omitted optional output
        return internal_error("{}: shape function left output {} undetermined at run time",
                              node.label(), i);
      }
      try {
        outputs[i] = Tensor(o.dtype, *shape);
      } catch (const std::bad_alloc&) {
        return invalid_input("{}: output {} of shape {} ({} bytes) cannot be allocated",
                             node.label(), i, shape_str(*shape),
                             shape_numel(*shape) * static_cast<int64_t>(dtype_size(o.dtype)));
      }
    }
    ir::KernelContext kctx{node, in_tensors, outputs};
    QF_RETURN_IF_ERROR(def->reference(kctx));

    for (size_t i = 0; i < outputs.size(); ++i) {
      if (node.has_output(i)) live[node.outputs[i]] = std::move(outputs[i]);
    }
    for (const ir::Value* in : node.inputs) {
      if (in && --uses_left[in] == 0) live.erase(in);
    }
  }

  std::vector<Tensor> results;
  for (const ir::Value* out : g.outputs) {
    const Tensor* t = lookup(out);
    if (!t) return internal_error("graph output '{}' was not computed", out->name);
    results.push_back(*t);
  }
  return results;
}

}  // namespace qf::reference
