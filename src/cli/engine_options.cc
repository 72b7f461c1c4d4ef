#include <fmt/ranges.h>

#include "cli/command.h"
#include "quant/qdq_import.h"

namespace qf::cli {

std::string default_backend() {
  return runtime::find_backend("cpu") ? "cpu" : "reference";
}

void add_engine_options(CLI::App& cmd, std::string& backend, std::string& precision) {
  std::vector<std::string> names;
  for (const runtime::Backend* b : runtime::all_backends()) names.emplace_back(b->name());
  // The optimized backend unless one is asked for, as build and bench do.
  backend = default_backend();
  cmd.add_option("--backend", backend,
                 fmt::format("Backend: {} (default: {})", fmt::join(names, ", "), backend));
  cmd.add_option("--precision", precision,
                 "Precision: auto (int8 for a Q/DQ model, else fp32), fp32, tf32, fp16, bf16, "
                 "int8")
      ->capture_default_str();
}

Result<runtime::Precision> resolve_precision(const std::string& precision, const ir::Graph& graph,
                                             const std::string& backend) {
  if (precision != "auto") return runtime::parse_precision(precision);
  const runtime::Backend* b = runtime::find_backend(backend);
  if (quant::has_qdq(graph) && b && b->supports(runtime::Precision::kINT8)) {
    return runtime::Precision::kINT8;
  }
  return runtime::Precision::kFP32;
}

Result<const runtime::Backend*> find_backend_for(const std::string& backend,
                                                 runtime::Precision precision) {
  const runtime::Backend* b = runtime::find_backend(backend);
  if (!b) return usage_error("--backend {}: no such backend in this build", backend);
  if (const std::string why = b->unsupported_reason(precision); !why.empty()) {
    return unsupported("the {} backend cannot run {} here: {}", backend,
                       runtime::precision_name(precision), why);
  }
  return b;
}

Result<std::unique_ptr<runtime::Engine>> build_engine(std::unique_ptr<ir::Graph> graph,
                                                      const std::string& backend,
                                                      const std::string& precision) {
  QF_ASSIGN_OR_RETURN(runtime::Precision p, resolve_precision(precision, *graph, backend));
  QF_ASSIGN_OR_RETURN(const runtime::Backend* b, find_backend_for(backend, p));
  return b->build(std::move(graph), runtime::BuildOptions{.precision = p, .threads = 0});
}

}  // namespace qf::cli
