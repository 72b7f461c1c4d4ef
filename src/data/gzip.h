// Whole-file reading with transparent gzip decompression (zlib).
#pragma once

#include <filesystem>
#include <string>

#include "qforge/status.h"

namespace qf::data {

// Returns the file's bytes, decompressed if the file starts with the gzip magic.
Result<std::string> read_maybe_gzipped(const std::filesystem::path& path);

}  // namespace qf::data
