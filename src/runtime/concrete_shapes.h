// Concrete shape inference for a backend that plans one set of input shapes ahead: every value
// of the graph gets its element type and concrete shape, and small all-constant computations
// are folded into known values. Shared by the cpu and cuda backends' plan builders.
#pragma once

#include <string_view>
#include <unordered_map>
#include <vector>

#include "ir/graph.h"
#include "qforge/status.h"
#include "qforge/tensor.h"

namespace qf::runtime {

struct ConcreteValue {
  DType dtype = DType::kUndefined;
  Shape shape;
  Tensor known;  // constants and values folded at plan time
};

using ConcreteValues = std::unordered_map<const ir::Value*, ConcreteValue>;

// Runs each node's shape function on concrete shapes (constants, then the graph inputs with
// `input_shapes`/`input_dtypes`, then the nodes in order). A node whose output shape depends on
// the input data is refused, naming `backend` ("cpu", "cuda") as the one that cannot plan it.
Result<ConcreteValues> infer_concrete_shapes(const ir::Graph& graph,
                                             const std::vector<Shape>& input_shapes,
                                             const std::vector<DType>& input_dtypes,
                                             std::string_view backend);

}  // namespace qf::runtime
