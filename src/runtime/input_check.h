// Checks that the tensors a user feeds match the graph's declared inputs (count, element type,
// rank, fixed dims, and consistent sizes for a symbolic dim used by several inputs).
#pragma once

#include <vector>

#include "ir/graph.h"
#include "qforge/status.h"
#include "qforge/tensor.h"

namespace qf::runtime {

Status check_inputs(const ir::Graph& graph, const std::vector<Tensor>& inputs);

}  // namespace qf::runtime
