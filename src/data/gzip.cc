#include "data/gzip.h"

#include <zlib.h>

#include "core/file_util.h"

namespace qf::data {

Result<std::string> read_maybe_gzipped(const std::filesystem::path& path) {
  Result<std::string> file = read_file_bytes(path);
  if (!file.ok()) return file.status();
  std::string& bytes = file.value();
  const bool gzipped = bytes.size() >= 2 && static_cast<unsigned char>(bytes.front()) == 0x1f &&
                       static_cast<unsigned char>(bytes[1]) == 0x8b;
  if (!gzipped) return std::move(bytes);

  z_stream zs{};
  if (inflateInit2(&zs, 15 + 16) != Z_OK) return internal_error("zlib initialisation failed");
  zs.next_in = reinterpret_cast<Bytef*>(bytes.data());
  zs.avail_in = static_cast<uInt>(bytes.size());
  std::string out;
  char buffer[1 << 16];
  int rc = Z_OK;
  while (rc == Z_OK) {
    zs.next_out = reinterpret_cast<Bytef*>(buffer);
    zs.avail_out = sizeof(buffer);
    rc = inflate(&zs, Z_NO_FLUSH);
    out.append(buffer, sizeof(buffer) - zs.avail_out);
    if (rc == Z_BUF_ERROR && zs.avail_in == 0) break;  // input ended before the stream did
  }
  inflateEnd(&zs);
  if (rc != Z_STREAM_END) {
    return invalid_input("{}: corrupt or truncated gzip data", path.string());
  }
  return out;
}

}  // namespace qf::data
