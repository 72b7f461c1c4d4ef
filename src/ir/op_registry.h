// The op table: one entry per supported operator, holding everything qforge knows about it.
//
// An OpDef carries the op's import-time canonicalisation (opset differences folded into one
// form), its shape function and its reference kernel. Adding an op is one QF_REGISTER_OP in one
// file under src/ops/; the importer, `inspect`, the reference executor and the conformance
// driver all discover it from this table, so there is no second list to keep in sync.
//
// The shape function serves both static inference (some dims unknown, only constant inputs have
// values) and execution (all shapes and input values known), so shape logic exists once.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ir/graph.h"
#include "qforge/status.h"
#include "qforge/tensor.h"

namespace qf::ir {

struct InferInput {
  bool present = false;  // false for an omitted optional input
  DType dtype = DType::kUndefined;
  std::optional<SymShape> shape;  // nullopt: unknown rank
  const Tensor* value = nullptr;  // data when known (constants; always at run time)
};

struct InferOutput {
  DType dtype = DType::kUndefined;
  std::optional<SymShape> shape;
  Tensor value;  // optional: data a shape function knows without running (Shape, Size)
};

struct InferContext {
  const Node& node;
  std::vector<InferInput> inputs;
  std::vector<InferOutput> outputs;

  const Attributes& attrs() const { return node.attrs; }
  size_t num_inputs() const { return inputs.size(); }
  bool has_input(size_t i) const { return i < inputs.size() && inputs[i].present; }
  const InferInput& in(size_t i) const { return inputs.at(i); }
  void set_output(size_t i, DType dtype, std::optional<SymShape> shape) {
    if (i < outputs.size()) outputs[i] = InferOutput{dtype, std::move(shape), Tensor()};
  }
  // Output i has the type and shape of input j (elementwise unary ops).
  void propagate(size_t out, size_t in_index) {
    set_output(out, in(in_index).dtype, in(in_index).shape);
  }

  // An invalid-input Status prefixed with the node's label.
  template <typename... Args>
  Status error(fmt::format_string<Args...> f, Args&&... args) const {
    return invalid_input("{}: {}", node.label(), fmt::format(f, std::forward<Args>(args)...));
  }
};

struct KernelContext {
  const Node& node;
  std::vector<const Tensor*> inputs;  // nullptr for omitted optional inputs
  std::vector<Tensor>& outputs;       // allocated by the executor from the shape function

  const Attributes& attrs() const { return node.attrs; }
  bool has_input(size_t i) const { return i < inputs.size() && inputs[i] != nullptr; }
  const Tensor& in(size_t i) const { return *inputs.at(i); }
  Tensor& out(size_t i) { return outputs.at(i); }
  size_t num_outputs() const { return outputs.size(); }

  template <typename... Args>
  Status error(fmt::format_string<Args...> f, Args&&... args) const {
    return invalid_input("{}: {}", node.label(), fmt::format(f, std::forward<Args>(args)...));
  }
  template <typename... Args>
  Status unsupported_here(fmt::format_string<Args...> f, Args&&... args) const {
    return unsupported("{}: {}", node.label(), fmt::format(f, std::forward<Args>(args)...));
  }
};

using ShapeFn = Status (*)(InferContext&);
using ReferenceKernelFn = Status (*)(KernelContext&);
// Rewrites an imported node into the canonical form the shape function and kernels expect
// (e.g. Squeeze-11's `axes` attribute becomes Squeeze-13's `axes` input). May add constants.
using CanonicalizeFn = Status (*)(Node&, Graph&);
// Multiply-accumulates of one node, from its values' shapes after inference; nullopt when a
// needed dim is unknown. Only ops dominated by MACs (Conv, Gemm, MatMul ...) define it.
using MacsFn = std::optional<int64_t> (*)(const Node&);

struct OpDef {
  std::string_view op_type;
  ShapeFn infer = nullptr;
  ReferenceKernelFn reference = nullptr;
  CanonicalizeFn canonicalize = nullptr;
  MacsFn macs = nullptr;
  int min_opset = 7;   // earliest version of the default domain this definition handles
  int max_opset = 21;  // latest version this definition handles
  std::string_view domain = "";
};

class OpRegistry {
 public:
  static OpRegistry& global();
  bool add(const OpDef& def);
  // The definition of `op_type` in `domain` valid at `opset`, or nullptr.
  const OpDef* find(std::string_view domain, std::string_view op_type, int64_t opset) const;
  // Whether any version of the op is known (for "supported at other opsets" messages).
  bool knows(std::string_view domain, std::string_view op_type) const;
  const std::vector<OpDef>& all() const { return defs_; }

 private:
  std::vector<OpDef> defs_;
};

// Why `node` cannot run (unknown op, unsupported opset or domain), or ok.
Status check_supported(const Node& node);

// Output shapes for static analysis: runs every node's shape function over the graph, using
// constant inputs where the function needs data. Unknown ops leave their outputs unknown.
Status infer_shapes(Graph& graph);

}  // namespace qf::ir

#define QF_REGISTER_OP(...)                                                   \
  [[maybe_unused]] static const bool QF_CONCAT(qf_registered_op_, __LINE__) = \
      ::qf::ir::OpRegistry::global().add(::qf::ir::OpDef __VA_ARGS__)
