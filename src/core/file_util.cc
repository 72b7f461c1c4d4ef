#include "core/file_util.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <system_error>

namespace qf {

Result<std::string> read_file_bytes(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return invalid_input("{}: no such file", path.string());
  if (std::filesystem::is_directory(path, ec)) {
    return invalid_input("{}: is a directory, not a file", path.string());
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return invalid_input("{}: cannot open: {}", path.string(), std::strerror(errno));
  // One sized read: large models (ResNet-50 is 100 MB) must not go through a char iterator.
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) return invalid_input("{}: cannot stat: {}", path.string(), ec.message());
  std::string bytes(size, '\0');
  in.read(bytes.data(), static_cast<std::streamsize>(size));
  if (in.gcount() != static_cast<std::streamsize>(size)) {
    return invalid_input("{}: read error", path.string());
  }
  return bytes;
}

Status write_file_atomic(const std::filesystem::path& path, std::string_view bytes) {
  const std::filesystem::path tmp = path.string() + ".qforge-tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return invalid_input("{}: cannot write: {}", path.string(), std::strerror(errno));
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.flush();
    if (!out) {
      std::error_code ignored;
      std::filesystem::remove(tmp, ignored);
      return invalid_input("{}: write failed: {}", path.string(), std::strerror(errno));
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::filesystem::remove(tmp, ec);
    return invalid_input("{}: cannot rename into place", path.string());
  }
  return {};
}

}  // namespace qf
