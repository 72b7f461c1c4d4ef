// --timing-cache FILE of build and bench (trtexec's --timingCacheFile): where a backend that
// times tactics keeps its measurements between builds.
#pragma once

#include <CLI/CLI.hpp>

#include <string>

#include "qforge/status.h"
#include "runtime/engine.h"

namespace qf::cli {

void add_timing_cache_option(CLI::App& cmd, std::string& file);

// `file` for BuildOptions::timing_cache; a usage error on a backend that times no tactics (the
// cache would silently stay empty).
Result<std::string> timing_cache_for(const runtime::Backend& backend, const std::string& file);

}  // namespace qf::cli
