// IDX files, the format of MNIST and Fashion-MNIST (optionally gzip-compressed).
#pragma once

#include <filesystem>

#include "qforge/status.h"
#include "qforge/tensor.h"

namespace qf::data {

// Reads an IDX file (plain or .gz) into a tensor of its element type and dimensions,
// e.g. u8 10000x28x28 for images and u8 10000 for labels.
Result<Tensor> read_idx(const std::filesystem::path& path);
Result<Tensor> parse_idx(const std::string& bytes, const std::string& what);

}  // namespace qf::data
