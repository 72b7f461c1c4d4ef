// Whole-file reads and atomic writes. Writes go to a temporary file that is renamed into place,
// so a failed or interrupted command never leaves a half-written output behind.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include "qforge/status.h"

namespace qf {

Result<std::string> read_file_bytes(const std::filesystem::path& path);
Status write_file_atomic(const std::filesystem::path& path, std::string_view bytes);

}  // namespace qf
