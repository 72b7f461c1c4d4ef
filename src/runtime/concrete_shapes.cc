#include "runtime/concrete_shapes.h"

#include <optional>

#include "ir/op_registry.h"

namespace qf::runtime {

namespace {

// Small computations (Shape -> Gather -> Concat -> Reshape chains) are folded while planning,
// as static shape inference does; large ones run at run time.
constexpr int64_t kMaxFoldedElements = 4096;

}  // namespace

Result<ConcreteValues> infer_concrete_shapes(const ir::Graph& g,
                                             const std::vector<Shape>& input_shapes,
                                             const std::vector<DType>& input_dtypes,
                                             std::string_view backend) {
  ConcreteValues info;
  for (const ir::Value* c : g.constants()) {
    info[c] = ConcreteValue{c->constant.dtype(), c->constant.shape(), c->constant};
  }
  for (size_t i = 0; i < g.inputs.size(); ++i) {
    info[g.inputs[i]] = ConcreteValue{input_dtypes[i], input_shapes[i], Tensor()};
  }
  for (const auto& node_ptr : g.nodes()) {
    const ir::Node& node = *node_ptr;
    QF_RETURN_IF_ERROR(ir::check_supported(node));
    const ir::OpDef* def = ir::OpRegistry::global().find(node.domain, node.op_type, node.opset);
    if (!def->infer) return unsupported("{}: no shape function", node.label());
    ir::InferContext ctx{node, {}, std::vector<ir::InferOutput>(node.outputs.size())};
    bool all_known = true;
    for (const ir::Value* in : node.inputs) {
      ir::InferInput ii;
      if (in) {
        auto it = info.find(in);
        if (it == info.end()) {
          return internal_error("{}: input '{}' is not computed before it", node.label(), in->name);
        }
        ii = {true, it->second.dtype, ir::to_sym_shape(it->second.shape),
              it->second.known.defined() ? &it->second.known : nullptr};
        all_known = all_known && ii.value;
      }
      ctx.inputs.push_back(ii);
    }
    QF_RETURN_IF_ERROR(def->infer(ctx));

    std::vector<Shape> shapes(node.outputs.size());
    bool small = true;
    for (size_t i = 0; i < node.outputs.size(); ++i) {
      if (!node.has_output(i)) continue;
      const ir::InferOutput& o = ctx.outputs[i];
      auto concrete = o.shape ? ir::to_concrete(*o.shape) : std::nullopt;
      if (!concrete || o.dtype == DType::kUndefined) {
        return unsupported(
            "{}: the shape of output '{}' depends on the input data, which the {} backend "
            "cannot plan ahead",
            node.label(), node.outputs[i]->name, backend);
      }
      shapes[i] = *concrete;
      small = small && shape_numel(*concrete) <= kMaxFoldedElements;
    }
    std::vector<Tensor> values(node.outputs.size());
    bool folded = false;
    if (all_known && small && def->reference) {
      std::vector<const Tensor*> inputs;
      for (const ir::InferInput& in : ctx.inputs) inputs.push_back(in.value);
      for (size_t i = 0; i < values.size(); ++i) {
        if (node.has_output(i)) values[i] = Tensor(ctx.outputs[i].dtype, shapes[i]);
      }
      ir::KernelContext kctx{node, inputs, values};
      folded = def->reference(kctx).ok();
    }
    for (size_t i = 0; i < node.outputs.size(); ++i) {
      if (!node.has_output(i)) continue;
      Tensor value = folded ? values[i] : ctx.outputs[i].value;
      info[node.outputs[i]] = ConcreteValue{ctx.outputs[i].dtype, shapes[i], value};
    }
  }
  return info;
}

}  // namespace qf::runtime
