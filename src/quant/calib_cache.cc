#include "quant/calib_cache.h"

#include <bit>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <iterator>
#include <string>

#include "core/file_util.h"

namespace qf::quant {
namespace {

constexpr std::string_view kHeaderPrefix = "TRT-";
constexpr std::string_view kSeparator = ": ";

bool is_digits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

bool has_whitespace(std::string_view s) {
  for (char c : s) {
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') return true;
  }
  return false;
}

bool is_valid_scale(float scale) {
  return std::isfinite(scale) && scale >= 0.0f;
}

// Caches written on Windows end lines in CRLF and editors leave trailing blanks; neither can be
// part of a name or of the 8 hex digits, so they are dropped before the line is read.
std::string_view strip_trailing_space(std::string_view line) {
  while (!line.empty() && (line.back() == ' ' || line.back() == '\t' || line.back() == '\r')) {
    line.remove_suffix(1);
  }
  return line;
}

Status parse_header(std::string_view line, std::string_view source, CalibrationCache& cache) {
  const auto bad = [&] {
    return invalid_input("{}: line 1: expected the header 'TRT-<version>-<algorithm>', got '{}'",
                         source, line);
  };
  if (!line.starts_with(kHeaderPrefix)) return bad();
  const std::string_view rest = line.substr(kHeaderPrefix.size());
  const size_t dash = rest.find('-');
  if (dash == std::string_view::npos) return bad();
  const std::string_view version = rest.substr(0, dash);
  const std::string_view algorithm = rest.substr(dash + 1);
  if (!is_digits(version) || algorithm.empty() || has_whitespace(algorithm)) return bad();
  cache.version = std::string(version);
  cache.algorithm = std::string(algorithm);
  return {};
}

Result<float> parse_scale(std::string_view hex) {
  uint32_t bits = 0;
  if (hex.size() != 8) return invalid_input("not 8 hex digits");
  // from_chars alone would accept fewer digits followed by junk; every character is checked.
  for (char c : hex) {
    const bool digit = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
    if (!digit) return invalid_input("not 8 hex digits");
  }
  (void)std::from_chars(hex.data(), hex.data() + hex.size(), bits, 16);
  return std::bit_cast<float>(bits);
}

}  // namespace

Result<CalibrationCache> parse_calibration_cache(std::string_view text, std::string_view source) {
  CalibrationCache cache;
  cache.scales.clear();
  std::map<std::string, int, std::less<>> first_line;
  bool have_header = false;
  int line_no = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t newline = text.find('\n', pos);
    if (newline == std::string_view::npos) newline = text.size();
    const std::string_view line = strip_trailing_space(text.substr(pos, newline - pos));
    pos = newline + 1;
    ++line_no;

    if (!have_header) {
      QF_RETURN_IF_ERROR(parse_header(line, source, cache));
      have_header = true;
      continue;
    }
    // A blank line carries nothing; tolerating it costs nothing and hand-edited caches have them.
    if (line.empty()) continue;

    // Names may themselves contain ": " ("input:0" does not, "a: b" could); the 8 hex digits
    // never do, so the last separator is the one that ends the name.
    const size_t sep = line.rfind(kSeparator);
    if (sep == std::string_view::npos) {
      return invalid_input("{}: line {}: expected '<tensor name>: <8 hex digits>', got '{}'",
                           source, line_no, line);
    }
    const std::string_view name = line.substr(0, sep);
    const std::string_view hex = line.substr(sep + kSeparator.size());
    if (name.empty()) return invalid_input("{}: line {}: empty tensor name", source, line_no);
    auto scale = parse_scale(hex);
    if (!scale.ok()) {
      return invalid_input("{}: line {}: scale of tensor '{}' is '{}', not 8 hex digits", source,
                           line_no, name, hex);
    }
    if (!is_valid_scale(*scale)) {
      return invalid_input("{}: line {}: scale of tensor '{}' ({}) is {}, not a finite number >= 0",
                           source, line_no, name, hex, *scale);
    }
    const auto [it, inserted] = first_line.emplace(std::string(name), line_no);
    if (!inserted) {
      return invalid_input("{}: line {}: duplicate tensor '{}' (first on line {})", source, line_no,
                           name, it->second);
    }
    cache.scales.emplace(std::string(name), *scale);
  }
  if (!have_header) {
    return invalid_input(
        "{}: line 1: empty calibration cache, expected the header 'TRT-<version>-<algorithm>'",
        source);
  }
  return cache;
}

std::string format_calibration_cache(const CalibrationCache& cache) {
  std::string out = fmt::format("{}{}-{}\n", kHeaderPrefix, cache.version, cache.algorithm);
  // std::map iterates in byte order of the names: the same set of scales always gives the same
  // bytes, so caches can be diffed and compared.
  for (const auto& [name, scale] : cache.scales) {
    fmt::format_to(std::back_inserter(out), "{}{}{:08x}\n", name, kSeparator,
                   std::bit_cast<uint32_t>(scale));
  }
  return out;
}

Result<CalibrationCache> read_calibration_cache(const std::filesystem::path& path) {
  QF_ASSIGN_OR_RETURN(const std::string text, read_file_bytes(path));
  return parse_calibration_cache(text, path.string());
}

// Refuses anything the reader would reject or read back differently, so every cache qforge
// writes round-trips.
Status write_calibration_cache(const std::filesystem::path& path, const CalibrationCache& cache) {
  if (!is_digits(cache.version) || cache.algorithm.empty() || has_whitespace(cache.algorithm)) {
    return internal_error("{}: cannot write calibration cache header 'TRT-{}-{}'", path.string(),
                          cache.version, cache.algorithm);
  }
  for (const auto& [name, scale] : cache.scales) {
    // A name's own trailing blanks or ": " are fine (only the line's end is stripped, and the
    // reader splits at the last ": "); a newline would split the entry.
    if (name.empty() || name.find('\n') != std::string::npos) {
      return invalid_input("{}: tensor name '{}' cannot be stored in a calibration cache",
                           path.string(), name);
    }
    if (!is_valid_scale(scale)) {
      return internal_error("{}: scale of tensor '{}' is {}, not a finite number >= 0",
                            path.string(), name, scale);
    }
  }
  return write_file_atomic(path, format_calibration_cache(cache));
}

}  // namespace qf::quant
