// Loading a tensor from a user-supplied file: `.npy` or a serialized ONNX TensorProto (`.pb`).
#pragma once

#include <filesystem>
#include <string>

#include "qforge/status.h"
#include "qforge/tensor.h"

namespace qf::io {

struct LoadedTensor {
  std::string name;  // the name stored in a .pb file; empty for .npy
  Tensor tensor;
};

Result<LoadedTensor> load_tensor_file(const std::filesystem::path& path);

}  // namespace qf::io
