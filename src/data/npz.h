// NumPy .npz archives: zip files with one `<name>.npy` entry per array. np.savez stores the
// entries uncompressed, np.savez_compressed deflates them; libzip reads both.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "qforge/status.h"
#include "qforge/tensor.h"

struct zip;  // libzip's archive handle (zip_t), kept out of this header

namespace qf::data {

class NpzArchive {
 public:
  // Opens the archive and lists its arrays; nothing is decompressed yet.
  static Result<NpzArchive> open(const std::filesystem::path& path);

  // Array names (entry names without ".npy") in archive order. Entries that are not .npy
  // files are not listed.
  const std::vector<std::string>& names() const { return names_; }
  bool contains(std::string_view name) const;
  // Decompresses and parses one array; errors name the archive and the entry.
  Result<Tensor> read(std::string_view name) const;

  const std::filesystem::path& path() const { return path_; }

 private:
  struct Closer {
    void operator()(zip* archive) const;
  };
  NpzArchive(std::filesystem::path path, std::unique_ptr<zip, Closer> archive,
             std::vector<std::string> names, std::vector<int64_t> indices);

  std::filesystem::path path_;
  std::unique_ptr<zip, Closer> archive_;
  std::vector<std::string> names_;
  std::vector<int64_t> indices_;  // zip entry index of each name
};

}  // namespace qf::data
