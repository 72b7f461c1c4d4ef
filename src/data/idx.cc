#include "data/idx.h"

#include <cstring>

#include "data/gzip.h"

namespace qf::data {

namespace {
DType idx_dtype(unsigned char code) {
  switch (code) {
    case 0x08:
      return DType::kU8;
    case 0x09:
      return DType::kI8;
    case 0x0B:
      return DType::kI16;
    case 0x0C:
      return DType::kI32;
    case 0x0D:
      return DType::kF32;
    case 0x0E:
      return DType::kF64;
    default:
      return DType::kUndefined;
  }
}

uint32_t read_be32(const unsigned char* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}
}  // namespace

Result<Tensor> parse_idx(const std::string& bytes, const std::string& what) {
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  if (bytes.size() < 4 || p[0] != 0 || p[1] != 0) {
    return invalid_input("{}: not an IDX file (bad magic)", what);
  }
  const DType dtype = idx_dtype(p[2]);
  if (dtype == DType::kUndefined)
    return invalid_input("{}: unknown IDX element type {}", what, p[2]);
  const size_t rank = p[3];
  const size_t header = 4 + 4 * rank;
  if (rank == 0 || bytes.size() < header) return invalid_input("{}: truncated IDX header", what);
  Shape shape;
  for (size_t i = 0; i < rank; ++i) shape.push_back(read_be32(p + 4 + 4 * i));
  Tensor t(dtype, shape);
  if (bytes.size() - header != t.nbytes()) {
    return invalid_input("{}: IDX data has {} bytes, shape {} needs {}", what,
                         bytes.size() - header, shape_str(shape), t.nbytes());
  }
  // IDX stores multi-byte values big-endian; swap each element into host (little-endian) order.
  auto* dst = static_cast<unsigned char*>(t.raw());
  const size_t width = dtype_size(dtype);
  for (size_t i = 0; i < t.nbytes(); i += width) {
    for (size_t b = 0; b < width; ++b) dst[i + b] = p[header + i + width - 1 - b];
  }
  return t;
}

Result<Tensor> read_idx(const std::filesystem::path& path) {
  QF_ASSIGN_OR_RETURN(std::string bytes, read_maybe_gzipped(path));
  return parse_idx(bytes, path.string());
}

}  // namespace qf::data
