// Which values of a graph are known only when it runs.
#pragma once

#include <unordered_set>

#include "ir/graph.h"

namespace qf::ir {

// Graph inputs, everything computed from them, and the outputs of random ops (RandomNormal,
// Bernoulli, ...): the values that change from run to run. Every other value is a constant, an
// initializer or a function of initializers only. Quantization needs the split: run-time values
// are activations that take calibrated scales, constants are weights.
std::unordered_set<const Value*> run_time_values(const Graph& graph);

}  // namespace qf::ir
