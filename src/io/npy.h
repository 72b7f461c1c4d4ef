// NumPy .npy files (format versions 1.0-3.0, C order, little-endian numeric types).
#pragma once

#include <filesystem>
#include <string>

#include "qforge/status.h"
#include "qforge/tensor.h"

namespace qf::io {

Result<Tensor> parse_npy(const std::string& bytes, const std::string& what);
Result<Tensor> read_npy(const std::filesystem::path& path);
std::string serialize_npy(const Tensor& tensor);
// Writes atomically: the file appears complete or not at all.
Status write_npy(const std::filesystem::path& path, const Tensor& tensor);

}  // namespace qf::io
