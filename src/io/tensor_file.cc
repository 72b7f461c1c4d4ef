#include "io/tensor_file.h"

#include "io/npy.h"
#include "onnx/tensor_proto.h"

namespace qf::io {

Result<LoadedTensor> load_tensor_file(const std::filesystem::path& path) {
  const std::string ext = path.extension().string();
  if (ext == ".npy") {
    QF_ASSIGN_OR_RETURN(Tensor t, read_npy(path));
    return LoadedTensor{"", std::move(t)};
  }
  if (ext == ".pb") {
    QF_ASSIGN_OR_RETURN(onnx_io::NamedTensor nt, onnx_io::read_tensor_pb(path));
    return LoadedTensor{std::move(nt.name), std::move(nt.tensor)};
  }
  return invalid_input("{}: unknown tensor file type '{}' (expected .npy or .pb)", path.string(),
                       ext);
}

}  // namespace qf::io
