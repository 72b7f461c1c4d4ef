// qforge command-line entry point: parses the subcommand, runs it, and maps its Status to a
// one-line message and the exit code of the contract (0 ok, 1 usage, 2 invalid input,
// 3 unsupported, 4 internal).
#include <fmt/core.h>

#include <cstdio>
#include <exception>

#include "cli/command.h"

#ifndef QFORGE_VERSION
#define QFORGE_VERSION "dev"
#endif

int main(int argc, char** argv) {
  CLI::App app{"qforge: build, quantize and benchmark ONNX models in FP32/FP16/BF16/INT8"};
  app.set_version_flag("--version", QFORGE_VERSION);
  app.require_subcommand(1);
  qf::cli::Dispatch dispatch;
  qf::cli::add_run_command(app, dispatch);
  qf::cli::add_inspect_command(app, dispatch);
  qf::cli::add_eval_command(app, dispatch);
  qf::cli::add_ops_command(app, dispatch);
  qf::cli::add_build_command(app, dispatch);
  qf::cli::add_bench_command(app, dispatch);
  qf::cli::add_quantize_command(app, dispatch);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // CLI11 prints help/version itself with exit code 0; real usage errors map to 1.
    const int code = app.exit(e);
    return code == 0 ? 0 : static_cast<int>(qf::StatusCode::kUsage);
  }
  try {
    const qf::Status status = dispatch.handler ? dispatch.handler() : qf::Status();
    if (!status.ok()) {
      fmt::print(stderr, "qforge: error: {}\n", status.message());
      return status.exit_code();
    }
  } catch (const std::exception& e) {
    fmt::print(stderr, "qforge: internal error: {}\n", e.what());
    return static_cast<int>(qf::StatusCode::kInternal);
  }
  return 0;
}
