// How subcommands plug into the CLI: each file under src/cli/ defines one `add_*_command`
// that registers its options and a handler returning a Status. main() turns that Status into
// a one-line message on stderr and the exit code of the contract (docs/ARCHITECTURE.md).
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "onnx/importer.h"
#include "qforge/status.h"
#include "runtime/engine.h"

namespace qf::cli {

using Handler = std::function<Status()>;

// The handler of the subcommand the user picked, set by the command's parse callback.
struct Dispatch {
  Handler handler;
};

void add_run_command(CLI::App& app, Dispatch& dispatch);
void add_inspect_command(CLI::App& app, Dispatch& dispatch);
void add_eval_command(CLI::App& app, Dispatch& dispatch);
void add_ops_command(CLI::App& app, Dispatch& dispatch);
void add_build_command(CLI::App& app, Dispatch& dispatch);
void add_bench_command(CLI::App& app, Dispatch& dispatch);
void add_quantize_command(CLI::App& app, Dispatch& dispatch);

// `--shape NAME=1x3x224x224` options, parsed.
Result<std::map<std::string, Shape>> parse_shape_options(const std::vector<std::string>& specs);

// The backend commands use without --backend: "cpu" when this build has it, else "reference".
std::string default_backend();
// `--backend NAME` (default_backend() unless given) and `--precision P`, shared by the commands
// that build an engine without options of their own (run, eval).
void add_engine_options(CLI::App& cmd, std::string& backend, std::string& precision);
// The backend named `backend` if it runs `precision` here; else a usage error (no such
// backend) or kUnsupported with the backend's reason.
Result<const runtime::Backend*> find_backend_for(const std::string& backend,
                                                 runtime::Precision precision);
// `--precision auto` (the default): INT8 for a model that carries Q/DQ scales when `backend` runs
// INT8 (the graph's scales are used, as TensorRT does), FP32 otherwise; other names as written.
Result<runtime::Precision> resolve_precision(const std::string& precision, const ir::Graph& graph,
                                             const std::string& backend);
Result<std::unique_ptr<runtime::Engine>> build_engine(std::unique_ptr<ir::Graph> graph,
                                                      const std::string& backend,
                                                      const std::string& precision);

// What a kernel of a built engine computes in: "int8", "bf16", "fp16", "fp32" or "reference".
std::string_view kernel_runs_as(const runtime::KernelInfo& k);
// The engine's kernels, one line each with what they run as and why (cli/engine_plan.cc).
void print_engine_plan(const runtime::EngineInfo& info);

// Fixes dynamic input dims to the given shapes and re-runs shape inference.
Status apply_input_shapes(ir::Graph& graph, const std::map<std::string, Shape>& shapes);

}  // namespace qf::cli
