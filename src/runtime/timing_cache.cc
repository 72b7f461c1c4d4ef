#include "runtime/timing_cache.h"

#include <fmt/format.h>

#include <system_error>

#include "core/file_util.h"

namespace qf::runtime {

namespace {

constexpr std::string_view kMagic = "qforge-timing-cache 1";
constexpr std::string_view kDevicePrefix = "device ";

bool clean(const std::string& s) {
  return !s.empty() && s.find_first_of("\t\n\r") == std::string::npos;
}

}  // namespace

Result<TimingCache> TimingCache::load(const std::filesystem::path& file,
                                      const std::string& device) {
  std::error_code ec;
  if (!std::filesystem::exists(file, ec)) return TimingCache(device);
  QF_ASSIGN_OR_RETURN(std::string text, read_file_bytes(file));
  return parse(text, device, file.string());
}

Result<TimingCache> TimingCache::parse(std::string_view text, const std::string& device,
                                       const std::string& file) {
  TimingCache cache(device);
  size_t line_no = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (line_no == 1) {
      if (line != kMagic) {
        return invalid_input("timing cache {}: not a qforge timing cache (first line '{}')", file,
                             line.substr(0, 40));
      }
      continue;
    }
    if (line_no == 2) {
      if (line.substr(0, kDevicePrefix.size()) != kDevicePrefix) {
        return invalid_input("timing cache {}: line 2 must name the device", file);
      }
      const std::string_view made_on = line.substr(kDevicePrefix.size());
      if (made_on != device) {
        return invalid_input(
            "timing cache {} was made on '{}', this is '{}': its timings do not apply here; "
            "use another file",
            file, made_on, device);
      }
      continue;
    }
    if (line.empty()) continue;
    const size_t tab = line.find('\t');
    if (tab == std::string_view::npos || tab == 0 || tab + 1 == line.size() ||
        line.find('\t', tab + 1) != std::string_view::npos) {
      return invalid_input("timing cache {}: line {} is not '<signature> TAB <tactic>'", file,
                           line_no);
    }
    cache.entries_[std::string(line.substr(0, tab))] = std::string(line.substr(tab + 1));
  }
  if (line_no < 2) return invalid_input("timing cache {}: truncated header", file);
  return cache;
}

std::optional<std::string> TimingCache::find(const std::string& signature) const {
  auto it = entries_.find(signature);
  if (it == entries_.end()) {
    ++misses_;
    return std::nullopt;
  }
  ++hits_;
  return it->second;
}

void TimingCache::put(const std::string& signature, const std::string& tactic) {
  if (!clean(signature) || !clean(tactic)) return;  // not representable; timing just repeats
  auto [it, inserted] = entries_.try_emplace(signature, tactic);
  if (!inserted && it->second == tactic) return;
  it->second = tactic;
  dirty_ = true;
}

std::string TimingCache::serialize() const {
  std::string out = fmt::format("{}\n{}{}\n", kMagic, kDevicePrefix, device_);
  for (const auto& [signature, tactic] : entries_)
    out += fmt::format("{}\t{}\n", signature, tactic);
  return out;
}

Status TimingCache::save(const std::filesystem::path& file) {
  QF_RETURN_IF_ERROR(write_file_atomic(file, serialize()));
  dirty_ = false;
  return {};
}

}  // namespace qf::runtime
