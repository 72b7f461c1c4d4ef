// TensorRT's timing cache: for each layer signature, the implementation ("tactic") that measured
// fastest when an engine was built, so that rebuilding the same model, or another with the same
// layer shapes, on the same GPU and libraries skips the timing and picks the same kernels.
//
// The file is text, one entry per line, after a header naming what the timings are valid for:
//   qforge-timing-cache 1
//   device <the backend's platform string: GPU, compute capability, library versions>
//   <signature>\t<tactic>
// Signatures and tactics are the backend's own strings (no tabs or newlines). A cache made on
// another device is refused, never mixed in: its timings say nothing about this one.
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>

#include "qforge/status.h"

namespace qf::runtime {

class TimingCache {
 public:
  TimingCache() = default;
  explicit TimingCache(std::string device) : device_(std::move(device)) {}

  // The cache in `file` for `device`; an empty cache where the file does not exist yet.
  static Result<TimingCache> load(const std::filesystem::path& file, const std::string& device);
  // Parses a cache file's text (`file` names it in errors).
  static Result<TimingCache> parse(std::string_view text, const std::string& device,
                                   const std::string& file);

  std::optional<std::string> find(const std::string& signature) const;
  void put(const std::string& signature, const std::string& tactic);

  std::string serialize() const;
  // Writes the whole cache atomically (a failed write leaves the old file as it was).
  Status save(const std::filesystem::path& file);

  const std::string& device() const { return device_; }
  size_t size() const { return entries_.size(); }
  // Entries added or changed since load or the last save.
  bool dirty() const { return dirty_; }
  // Lookups that found an entry / did not, for the build's report.
  int hits() const { return hits_; }
  int misses() const { return misses_; }

 private:
  std::string device_;
  std::map<std::string, std::string> entries_;
  bool dirty_ = false;
  mutable int hits_ = 0;
  mutable int misses_ = 0;
};

}  // namespace qf::runtime
