// The reference executor: runs a graph node by node with the ops' reference kernels.
//
// It is the oracle every optimized backend is tested against, so it stays simple: shapes are
// inferred at run time for the actual inputs (dynamic dims need no special handling) and each
// intermediate tensor is freed after its last consumer.
#pragma once

#include <vector>

#include "ir/graph.h"
#include "qforge/status.h"
#include "qforge/tensor.h"

namespace qf::reference {

class Executor {
 public:
  // Fails with kUnsupported naming the first node that has no reference kernel.
  static Result<Executor> create(const ir::Graph& graph);

  // `inputs` in the order of graph.inputs; returns tensors in the order of graph.outputs.
  Result<std::vector<Tensor>> run(const std::vector<Tensor>& inputs) const;

 private:
  explicit Executor(const ir::Graph& graph) : graph_(&graph) {}
  const ir::Graph* graph_;
};

}  // namespace qf::reference
