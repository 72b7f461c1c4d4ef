#include "cli/timing_cache_option.h"

namespace qf::cli {

void add_timing_cache_option(CLI::App& cmd, std::string& file) {
  cmd.add_option("--timing-cache", file,
                 "Tactic timing cache FILE: read if it exists, written back with what this build "
                 "timed (cuda backend)");
}

Result<std::string> timing_cache_for(const runtime::Backend& backend, const std::string& file) {
  if (!file.empty() && !backend.times_tactics()) {
    return usage_error(
        "--timing-cache {}: the {} backend times no tactics; it applies to --backend "
        "cuda",
        file, backend.name());
  }
  return file;
}

}  // namespace qf::cli
