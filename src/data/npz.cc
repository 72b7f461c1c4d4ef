#include "data/npz.h"

#include <zip.h>

#include <algorithm>

#include "io/npy.h"

namespace qf::data {

namespace {
constexpr std::string_view kNpySuffix = ".npy";
}  // namespace

void NpzArchive::Closer::operator()(zip* archive) const {
  // Read-only: discard rather than close, so libzip never tries to write anything back.
  if (archive != nullptr) zip_discard(archive);
}

NpzArchive::NpzArchive(std::filesystem::path path, std::unique_ptr<zip, Closer> archive,
                       std::vector<std::string> names, std::vector<int64_t> indices)
    : path_(std::move(path)),
      archive_(std::move(archive)),
      names_(std::move(names)),
      indices_(std::move(indices)) {}

Result<NpzArchive> NpzArchive::open(const std::filesystem::path& path) {
  int code = 0;
  std::unique_ptr<zip, Closer> archive(zip_open(path.c_str(), ZIP_RDONLY, &code));
  if (archive == nullptr) {
    zip_error_t error;
    zip_error_init_with_code(&error, code);
    std::string reason = zip_error_strerror(&error);
    zip_error_fini(&error);
    return invalid_input("{}: cannot open as a .npz (zip) archive: {}", path.string(), reason);
  }
  const zip_int64_t entries = zip_get_num_entries(archive.get(), 0);
  std::vector<std::string> names;
  std::vector<int64_t> indices;
  for (zip_int64_t i = 0; i < entries; ++i) {
    const char* raw_name = zip_get_name(archive.get(), static_cast<zip_uint64_t>(i), 0);
    if (raw_name == nullptr) continue;
    std::string_view name = raw_name;
    if (name.size() <= kNpySuffix.size() || !name.ends_with(kNpySuffix)) continue;
    name.remove_suffix(kNpySuffix.size());
    names.emplace_back(name);
    indices.push_back(i);
  }
  return NpzArchive(path, std::move(archive), std::move(names), std::move(indices));
}

bool NpzArchive::contains(std::string_view name) const {
  return std::find(names_.begin(), names_.end(), name) != names_.end();
}

Result<Tensor> NpzArchive::read(std::string_view name) const {
  const auto it = std::find(names_.begin(), names_.end(), name);
  const std::string what = fmt::format("{}: array '{}'", path_.string(), name);
  if (it == names_.end()) return invalid_input("{} not found", what);
  const auto index = static_cast<zip_uint64_t>(indices_[static_cast<size_t>(it - names_.begin())]);

  zip_stat_t stat;
  zip_stat_init(&stat);
  std::string bytes;
  if (zip_stat_index(archive_.get(), index, 0, &stat) == 0 && (stat.valid & ZIP_STAT_SIZE)) {
    bytes.reserve(static_cast<size_t>(stat.size));
  }
  zip_file_t* file = zip_fopen_index(archive_.get(), index, 0);
  if (file == nullptr) {
    return invalid_input("{}: cannot read entry: {}", what, zip_strerror(archive_.get()));
  }
  char buffer[1 << 16];
  while (true) {
    const zip_int64_t n = zip_fread(file, buffer, sizeof(buffer));
    if (n < 0) {
      std::string reason = zip_file_strerror(file);
      zip_fclose(file);
      return invalid_input("{}: corrupt entry: {}", what, reason);
    }
    if (n == 0) break;
    bytes.append(buffer, static_cast<size_t>(n));
  }
  // zip_fclose verifies the entry's CRC once all of it has been read.
  if (const int rc = zip_fclose(file); rc != 0) {
    zip_error_t error;
    zip_error_init_with_code(&error, rc);
    std::string reason = zip_error_strerror(&error);
    zip_error_fini(&error);
    return invalid_input("{}: corrupt entry: {}", what, reason);
  }
  return io::parse_npy(bytes, what);
}

}  // namespace qf::data
