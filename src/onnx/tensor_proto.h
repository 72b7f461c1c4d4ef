// ONNX TensorProto <-> Tensor: initializers, Constant values, and the conformance suite's
// input_N.pb/output_N.pb files all come through here.
#pragma once

#include <filesystem>
#include <string>

#include "qforge/status.h"
#include "qforge/tensor.h"

namespace onnx {
class TensorProto;
}

namespace qf::onnx_io {

// `base_dir` resolves external data files (data_location = EXTERNAL). `what` names the tensor
// in messages ("initializer 'fc.weight'").
Result<Tensor> tensor_from_proto(const onnx::TensorProto& proto,
                                 const std::filesystem::path& base_dir, const std::string& what);

void tensor_to_proto(const Tensor& tensor, const std::string& name, onnx::TensorProto* proto);

// A serialized TensorProto file (.pb). Returns the tensor and the name stored in the file.
struct NamedTensor {
  std::string name;
  Tensor tensor;
};
Result<NamedTensor> read_tensor_pb(const std::filesystem::path& path);

}  // namespace qf::onnx_io
