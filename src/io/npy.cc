#include "io/npy.h"

#include <charconv>
#include <cstring>

#include <fmt/ranges.h>

#include "core/file_util.h"

namespace qf::io {

namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicSize = 6;

struct DescrPair {
  const char* descr;
  DType dtype;
};
constexpr DescrPair kDescrs[] = {
    {"<f4", DType::kF32},
    {"<f8", DType::kF64},
    {"<f2", DType::kF16},
    {"|i1", DType::kI8},
    {"|u1", DType::kU8},
    {"<i2", DType::kI16},
    {"<u2", DType::kU16},
    {"<i4", DType::kI32},
    {"<u4", DType::kU32},
    {"<i8", DType::kI64},
    {"<u8", DType::kU64},
    {"|b1", DType::kBool},
    // numpy has no bfloat16: such arrays travel as 2-byte void ('|V2'; '<V2' read too).
    {"|V2", DType::kBF16},
    {"<V2", DType::kBF16},
};

// Returns the text of a dict entry's value in the header: `'descr': '<f4'` -> `'<f4'`.
std::string_view dict_value(std::string_view header, std::string_view key) {
  const std::string quoted = "'" + std::string(key) + "'";
  size_t pos = header.find(quoted);
  if (pos == std::string_view::npos) return {};
  pos = header.find(':', pos + quoted.size());
  if (pos == std::string_view::npos) return {};
  ++pos;
  while (pos < header.size() && header[pos] == ' ') ++pos;
  size_t end = pos;
  if (pos < header.size() && header[pos] == '(') {
    end = header.find(')', pos);
    return end == std::string_view::npos ? std::string_view{} : header.substr(pos, end - pos + 1);
  }
  while (end < header.size() && header[end] != ',' && header[end] != '}') ++end;
  return header.substr(pos, end - pos);
}

Result<Shape> parse_shape_tuple(std::string_view text, const std::string& what) {
  if (text.size() < 2 || text.front() != '(' || text.back() != ')') {
    return invalid_input("{}: malformed .npy header (shape)", what);
  }
  Shape shape;
  std::string_view body = text.substr(1, text.size() - 2);
  while (!body.empty()) {
    while (!body.empty() && (body.front() == ' ' || body.front() == ',')) body.remove_prefix(1);
    if (body.empty()) break;
    int64_t d = 0;
    auto [ptr, ec] = std::from_chars(body.data(), body.data() + body.size(), d);
    if (ec != std::errc() || d < 0) return invalid_input("{}: malformed .npy header (shape)", what);
    shape.push_back(d);
    body.remove_prefix(static_cast<size_t>(ptr - body.data()));
  }
  return shape;
}

}  // namespace

Result<Tensor> parse_npy(const std::string& bytes, const std::string& what) {
  if (bytes.size() < kMagicSize + 4 || bytes.compare(0, kMagicSize, kMagic, kMagicSize) != 0) {
    return invalid_input("{}: not a .npy file (bad magic)", what);
  }
  const int major = static_cast<unsigned char>(bytes[6]);
  size_t header_len = 0;
  size_t header_start = 0;
  if (major == 1) {
    header_len = static_cast<unsigned char>(bytes[8]) |
                 (static_cast<size_t>(static_cast<unsigned char>(bytes[9])) << 8);
    header_start = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12) return invalid_input("{}: truncated .npy header", what);
    for (int i = 0; i < 4; ++i) {
      header_len |= static_cast<size_t>(static_cast<unsigned char>(bytes[8 + i])) << (8 * i);
    }
    header_start = 12;
  } else {
    return invalid_input("{}: unsupported .npy format version {}", what, major);
  }
  if (header_start + header_len > bytes.size()) {
    return invalid_input("{}: truncated .npy header", what);
  }
  const std::string_view header(bytes.data() + header_start, header_len);
  const std::string_view descr = dict_value(header, "descr");
  const std::string_view fortran = dict_value(header, "fortran_order");
  if (descr.size() < 2) return invalid_input("{}: malformed .npy header (descr)", what);
  const std::string_view code = descr.substr(1, descr.size() - 2);
  DType dtype = DType::kUndefined;
  for (const auto& d : kDescrs) {
    if (code == d.descr) dtype = d.dtype;
  }
  if (dtype == DType::kUndefined) {
    return unsupported("{}: .npy element type '{}' is not supported", what, code);
  }
  if (fortran != "False") {
    return unsupported("{}: Fortran-ordered .npy arrays are not supported", what);
  }
  QF_ASSIGN_OR_RETURN(Shape shape, parse_shape_tuple(dict_value(header, "shape"), what));
  int64_t numel = 1;
  for (int64_t d : shape) {
    if (d > 0 && numel > (int64_t{1} << 40) / d)
      return invalid_input("{}: shape is too large", what);
    numel *= d;
  }
  const size_t data_start = header_start + header_len;
  const size_t need = static_cast<size_t>(numel) * dtype_size(dtype);
  if (bytes.size() - data_start != need) {
    return invalid_input("{}: .npy data has {} bytes but shape {} of {} needs {}", what,
                         bytes.size() - data_start, shape_str(shape), dtype_tag(dtype), need);
  }
  Tensor t(dtype, shape);
  if (need > 0) std::memcpy(t.raw(), bytes.data() + data_start, need);
  return t;
}

Result<Tensor> read_npy(const std::filesystem::path& path) {
  QF_ASSIGN_OR_RETURN(std::string bytes, read_file_bytes(path));
  return parse_npy(bytes, path.string());
}

std::string serialize_npy(const Tensor& tensor) {
  const char* descr = "<f4";
  for (const auto& d : kDescrs) {
    if (d.dtype == tensor.dtype()) descr = d.descr;
  }
  // Python tuple syntax: "()", "(5,)", "(2, 3)".
  std::string shape = fmt::format("{}", fmt::join(tensor.shape(), ", "));
  if (tensor.rank() == 1) shape += ",";
  std::string header =
      fmt::format("{{'descr': '{}', 'fortran_order': False, 'shape': ({}), }}", descr, shape);
  // Pad with spaces so that magic + length + header + '\n' is a multiple of 64 bytes.
  const size_t total = kMagicSize + 4 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header.push_back('\n');
  std::string out(kMagic, kMagicSize);
  out.push_back('\x01');
  out.push_back('\x00');
  out.push_back(static_cast<char>(header.size() & 0xff));
  out.push_back(static_cast<char>((header.size() >> 8) & 0xff));
  out += header;
  out.append(static_cast<const char*>(tensor.raw()), tensor.nbytes());
  return out;
}

Status write_npy(const std::filesystem::path& path, const Tensor& tensor) {
  return write_file_atomic(path, serialize_npy(tensor));
}

}  // namespace qf::io
