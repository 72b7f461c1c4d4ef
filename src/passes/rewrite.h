// Building blocks of the rewrite rules: who reads a value, splicing nodes out while keeping
// graph outputs' names, reading small constants, and turning Conv/Gemm/MatMul into their
// qforge::Fused* form.
#pragma once

#include <optional>
#include <string_view>
#include <vector>

#include "ir/graph.h"
#include "ops/fused.h"
#include "passes/pass.h"

namespace qf::passes {

bool is_graph_input(const ir::Graph& g, const ir::Value* v);
bool is_graph_output(const ir::Graph& g, const ir::Value* v);

// Whether `node` is op `op_type` of the default ONNX domain.
bool is_onnx_op(const ir::Node& node, std::string_view op_type);

// The one node that reads `v`, when a single use reads it and v is not a graph output: the
// condition for folding v's producer into its reader. nullptr otherwise.
ir::Node* sole_consumer(const ir::Graph& g, const ir::Value* v);

// Whether v is not a graph output and every use of it is by one of `nodes`.
bool used_only_by(const ir::Graph& g, const ir::Value* v, const std::vector<ir::Node*>& nodes);

// Whether the outputs of `node` other than output `keep` are omitted or unused.
bool other_outputs_unused(const ir::Graph& g, const ir::Node& node, size_t keep);

// Removes `nodes`, whose result `y` equals their input `x`, so that y's readers read x. When y is
// a graph output it must keep its name, so the rewiring goes the other way: x's producer writes y
// and x's other readers read y. That needs x to come from a node outside `nodes` and to be no
// graph input or output; when it does not, returns false having changed nothing.
bool forward_value(Rewriter& rw, const std::vector<ir::Node*>& nodes, ir::Value* y, ir::Value* x);

// Removes `absorbed` (the only readers of `node`'s output `index`) and makes `node` produce `y`,
// their result, in place of that output.
void take_output(Rewriter& rw, ir::Node& node, size_t index, ir::Value* y,
                 const std::vector<ir::Node*>& absorbed);

// The input of binary `node` that is not `v`; nullptr unless v is exactly one of its 2 inputs.
ir::Value* other_input(const ir::Node& node, const ir::Value* v);

// A floating-point constant's elements as doubles; nullopt for anything else.
std::optional<std::vector<double>> float_constant(const ir::Value* v);
// The element of a one-element floating-point constant.
std::optional<double> scalar_constant(const ir::Value* v);
// An int64 constant's elements (shapes, axes).
std::optional<std::vector<int64_t>> int64_constant(const ir::Value* v);
Tensor tensor_from_doubles(DType dtype, Shape shape, const std::vector<double>& values);
// All elements of a tensor as doubles.
std::vector<double> elements(const Tensor& t);

// Per-channel constants (a bias to add, a scale to multiply by) broadcast against an output of
// rank `rank`: the constant's shape, right-aligned, is 1 everywhere except possibly at `axis`;
// returns that axis's extent (1 when broadcast there too), or nullopt (also when the constant has
// the higher rank, which would broadcast the output up a dim).
std::optional<int64_t> extent_along(const Shape& c, size_t rank, size_t axis);
// Per-channel values of `c` for `channels` channels (a one-element c repeats).
std::vector<double> per_channel(const std::vector<double>& c, int64_t channels);

// Whether two values have the same fully determined shape (known dims, or equal named symbols).
bool same_shape(const ir::Value* a, const ir::Value* b);

// Conv, Gemm or MatMul on floating-point data, or their Fused* form: the nodes an epilogue
// (bias, residual, activation) can be fused into.
bool is_fusable_linear(const ir::Node& node);
bool has_residual(const ir::Node& node);
bool has_activation(const ir::Node& node);
// Turns Conv/Gemm/MatMul into FusedConv/FusedGemm/FusedMatMul in place (no epilogue yet) and
// registers the qforge domain in the graph; a fused node is left as it is.
void make_fused(ir::Graph& g, ir::Node& node);

}  // namespace qf::passes
