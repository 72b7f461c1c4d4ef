#include "onnx/tensor_proto.h"

#include <onnx/onnx_pb.h>

#include <charconv>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>

#include "core/file_util.h"

namespace qf::onnx_io {

namespace {

// Copies a repeated typed field into the tensor, converting to the element type.
template <typename Src, typename Repeated>
Status copy_typed(const Repeated& field, Tensor& t, const std::string& what) {
  if (static_cast<int64_t>(field.size()) != t.numel()) {
    return invalid_input("{}: holds {} values but its shape {} needs {}", what, field.size(),
                         shape_str(t.shape()), t.numel());
  }
  bool ok = visit_dtype(t.dtype(), [&]<typename T>() {
    T* dst = static_cast<T*>(t.raw());
    for (int64_t i = 0; i < t.numel(); ++i) {
      const Src v = field.Get(static_cast<int>(i));
      if constexpr (std::is_same_v<T, f16_t> || std::is_same_v<T, bf16_t>) {
        dst[i] = T{static_cast<uint16_t>(v)};  // int32_data holds the raw 16-bit pattern
      } else {
        dst[i] = static_cast<T>(v);
      }
    }
  });
  if (!ok) return internal_error("{}: no element type", what);
  return {};
}

Result<std::string> read_external_data(const onnx::TensorProto& proto,
                                       const std::filesystem::path& base_dir,
                                       const std::string& what, size_t expected_bytes) {
  std::string location;
  int64_t offset = 0;
  int64_t length = -1;
  for (const auto& entry : proto.external_data()) {
    if (entry.key() == "location") location = entry.value();
    if (entry.key() == "offset" || entry.key() == "length") {
      int64_t& field = entry.key() == "offset" ? offset : length;
      const std::string& text = entry.value();
      auto [end, err] = std::from_chars(text.data(), text.data() + text.size(), field);
      if (err != std::errc() || end != text.data() + text.size()) {
        return invalid_input("{}: external data {} '{}' is not a number", what, entry.key(), text);
      }
    }
  }
  if (location.empty()) return invalid_input("{}: external data without a location", what);
  const std::filesystem::path path = base_dir / location;
  QF_ASSIGN_OR_RETURN(std::string bytes, read_file_bytes(path));
  const int64_t size = static_cast<int64_t>(bytes.size());
  if (length < 0) length = static_cast<int64_t>(expected_bytes);
  if (offset < 0 || offset > size || length > size - offset) {
    return invalid_input("{}: external data file '{}' is too short (offset {}, length {}, size {})",
                         what, path.string(), offset, length, size);
  }
  return bytes.substr(static_cast<size_t>(offset), static_cast<size_t>(length));
}

}  // namespace

Result<Tensor> tensor_from_proto(const onnx::TensorProto& proto,
                                 const std::filesystem::path& base_dir, const std::string& what) {
  const DType dtype = dtype_from_onnx(proto.data_type());
  if (dtype == DType::kUndefined) {
    return unsupported("{}: element type {} is not supported", what,
                       onnx_type_name(proto.data_type()));
  }
  Shape shape;
  int64_t numel = 1;
  for (int64_t d : proto.dims()) {
    if (d < 0) return invalid_input("{}: negative dimension {}", what, d);
    if (d > 0 && numel > std::numeric_limits<int32_t>::max() / d) {
      return invalid_input("{}: shape is too large", what);
    }
    numel *= d;
    shape.push_back(d);
  }
  Tensor t(dtype, shape);

  if (proto.data_location() == onnx::TensorProto::EXTERNAL) {
    QF_ASSIGN_OR_RETURN(std::string bytes, read_external_data(proto, base_dir, what, t.nbytes()));
    if (bytes.size() != t.nbytes()) {
      return invalid_input("{}: external data has {} bytes, shape {} of {} needs {}", what,
                           bytes.size(), shape_str(shape), dtype_tag(dtype), t.nbytes());
    }
    if (!bytes.empty()) std::memcpy(t.raw(), bytes.data(), bytes.size());
    return t;
  }
  if (proto.has_raw_data()) {
    const std::string& raw = proto.raw_data();
    if (raw.size() != t.nbytes()) {
      return invalid_input("{}: raw_data has {} bytes, shape {} of {} needs {}", what, raw.size(),
                           shape_str(shape), dtype_tag(dtype), t.nbytes());
    }
    if (!raw.empty()) std::memcpy(t.raw(), raw.data(), raw.size());
    return t;
  }
  switch (proto.data_type()) {
    case onnx::TensorProto::FLOAT:
      QF_RETURN_IF_ERROR(copy_typed<float>(proto.float_data(), t, what));
      break;
    case onnx::TensorProto::DOUBLE:
      QF_RETURN_IF_ERROR(copy_typed<double>(proto.double_data(), t, what));
      break;
    case onnx::TensorProto::INT64:
      QF_RETURN_IF_ERROR(copy_typed<int64_t>(proto.int64_data(), t, what));
      break;
    case onnx::TensorProto::UINT32:
    case onnx::TensorProto::UINT64:
      QF_RETURN_IF_ERROR(copy_typed<uint64_t>(proto.uint64_data(), t, what));
      break;
    default:  // INT32, INT16, INT8, UINT16, UINT8, BOOL, FLOAT16, BFLOAT16 live in int32_data
      QF_RETURN_IF_ERROR(copy_typed<int32_t>(proto.int32_data(), t, what));
      break;
  }
  return t;
}

void tensor_to_proto(const Tensor& tensor, const std::string& name, onnx::TensorProto* proto) {
  proto->Clear();
  proto->set_name(name);
  proto->set_data_type(dtype_to_onnx(tensor.dtype()));
  for (int64_t d : tensor.shape()) proto->add_dims(d);
  proto->set_raw_data(tensor.raw(), tensor.nbytes());
}

Result<NamedTensor> read_tensor_pb(const std::filesystem::path& path) {
  QF_ASSIGN_OR_RETURN(std::string bytes, read_file_bytes(path));
  onnx::TensorProto proto;
  if (!proto.ParseFromString(bytes)) {
    return invalid_input("{}: not a serialized ONNX TensorProto", path.string());
  }
  QF_ASSIGN_OR_RETURN(Tensor t, tensor_from_proto(proto, path.parent_path(), path.string()));
  return NamedTensor{proto.name(), std::move(t)};
}

}  // namespace qf::onnx_io
