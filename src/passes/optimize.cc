#include "passes/optimize.h"

#include "ir/op_registry.h"
#include "passes/passes.h"

namespace qf::passes {

namespace {

// Every change removes a node or moves an epilogue into a fused node, so rounds are few (about
// the longest fusable chain); the bound only guards against two rules undoing each other.
constexpr int kMaxRounds = 64;

Status resort_and_infer(ir::Graph& graph) {
  QF_RETURN_IF_ERROR(graph.sort_topologically().with_context("after a graph rewrite: "));
  return ir::infer_shapes(graph);
}

}  // namespace

std::vector<std::unique_ptr<Pass>> standard_passes() {
  std::vector<std::unique_ptr<Pass>> passes;
  passes.push_back(make_constant_folding_pass());
  passes.push_back(make_identity_elimination_pass());
  passes.push_back(make_dead_node_elimination_pass());
  passes.push_back(make_reshape_folding_pass());
  passes.push_back(make_transpose_folding_pass());
  // Before BN folding: PyTorch's QAT export of Conv+BN writes Conv -> Div -> BN, and the BN
  // folds only once the Div is part of the Conv.
  passes.push_back(make_channel_scale_folding_pass());
  passes.push_back(make_batch_norm_folding_pass());
  passes.push_back(make_bias_add_folding_pass());
  passes.push_back(make_residual_fusion_pass());
  passes.push_back(make_activation_fusion_pass());
  return passes;
}

Result<PassCounts> run_passes(ir::Graph& graph, const std::vector<std::unique_ptr<Pass>>& passes) {
  PassCounts counts;
  for (int round = 0; round < kMaxRounds; ++round) {
    bool changed = false;
    for (const auto& pass : passes) {
      auto result = pass->run(graph);
      if (!result.ok()) {
        return result.status().with_context(fmt::format("pass {}: ", pass->name()));
      }
      if (!*result) continue;
      changed = true;
      ++counts[std::string(pass->name())];
      QF_RETURN_IF_ERROR(resort_and_infer(graph));
    }
    if (!changed) break;
  }
  graph.remove_unused_values();
  QF_RETURN_IF_ERROR(resort_and_infer(graph));
  return counts;
}

Status optimize(ir::Graph& graph) {
  return run_passes(graph, standard_passes()).status();
}

}  // namespace qf::passes
