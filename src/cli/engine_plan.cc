// The kernel list of a built engine, as `qforge inspect --precision` and `qforge inspect
// ENGINE` print it: per node, what it runs as (int8, bf16, fp32, reference) and, where the
// backend said so, why it did not run the way its precision suggests.
#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <string_view>

#include "cli/command.h"

namespace qf::cli {

std::string_view kernel_runs_as(const runtime::KernelInfo& k) {
  if (k.impl.starts_with("reference")) return "reference";
  // The signature is the first word: "conv2d_u8s8_s32_u8", "pool_max_bf16", "reorder_f32_s8".
  const std::string_view sig = std::string_view(k.impl).substr(0, k.impl.find(' '));
  if (sig.find("s8") != std::string_view::npos || sig.find("u8") != std::string_view::npos) {
    return "int8";
  }
  if (sig.find("bf16") != std::string_view::npos) return "bf16";
  if (sig.find("f16") != std::string_view::npos) return "fp16";
  return "fp32";
}

void print_engine_plan(const runtime::EngineInfo& info) {
  std::map<std::string_view, int> counts;
  size_t node_width = 4, op_width = 2;
  for (const runtime::KernelInfo& k : info.kernels) {
    ++counts[kernel_runs_as(k)];
    node_width = std::max(node_width, k.node.size());
    op_width = std::max(op_width, k.op.size());
  }
  node_width = std::min<size_t>(node_width, 48);
  std::string summary;
  for (const auto& [kind, n] : counts) {
    summary += fmt::format("{}{} {}", summary.empty() ? "" : ", ", n, kind);
  }
  fmt::print("Engine plan ({} backend, {}): {} kernels: {}\n", info.backend,
             runtime::precision_name(info.precision), info.kernels.size(), summary);
  fmt::print("  compute: {}\n", info.compute);
  fmt::print("  {:<{}}  {:<{}}  {:<9}  {}\n", "node", node_width, "op", op_width, "runs as",
             "kernel");
  for (const runtime::KernelInfo& k : info.kernels) {
    fmt::print("  {:<{}}  {:<{}}  {:<9}  {}\n", k.node, node_width, k.op, op_width,
               kernel_runs_as(k), k.impl);
    if (!k.note.empty()) fmt::print("  {:<{}}  why: {}\n", "", node_width, k.note);
  }
  if (!info.notes.empty()) {
    fmt::print("Build notes ({}):\n", info.notes.size());
    for (const std::string& n : info.notes) fmt::print("  {}\n", n);
  }
}

}  // namespace qf::cli
