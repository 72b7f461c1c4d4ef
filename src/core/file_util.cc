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
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return invalid_input("{}: read error", path.string());
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
