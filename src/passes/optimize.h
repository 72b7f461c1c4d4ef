// The standard graph-optimization pipeline that backends run at build time.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "passes/pass.h"
#include "qforge/status.h"

namespace qf::passes {

// The standard passes, in the order each round runs them: folding and elimination first, so
// that the fusions see the plain Conv -> Add -> Relu shapes they look for.
std::vector<std::unique_ptr<Pass>> standard_passes();

// How many rounds in which each pass changed the graph (by pass name), for tests and logs.
using PassCounts = std::map<std::string, int>;

// Runs `passes` in rounds until a round changes nothing, re-sorting and re-inferring shapes
// after every change; then drops values nothing refers to.
Result<PassCounts> run_passes(ir::Graph& graph, const std::vector<std::unique_ptr<Pass>>& passes);

// run_passes with standard_passes(): constant folding, Identity/Dropout and dead-node
// elimination, BatchNormalization and bias folding, Reshape/Transpose folding, and fusion into
// qforge::FusedConv/FusedGemm/FusedMatMul. Graph inputs and outputs keep their names.
Status optimize(ir::Graph& graph);

}  // namespace qf::passes
