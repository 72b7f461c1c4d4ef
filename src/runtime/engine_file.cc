#include "runtime/engine_file.h"

#include <zlib.h>

#include <algorithm>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <optional>
#include <string_view>

#include "core/file_util.h"
#include "onnx/exporter.h"
#include "onnx/importer.h"
#include "runtime/gpu_isa.h"

namespace qf::runtime {

namespace {

// Build options that carry INT8 calibration: "int8_scale:<tensor>" = float bits in hex.
constexpr std::string_view kScaleKeyPrefix = "int8_scale:";
// "int8_grid:<tensor>" = "u8 3c010204 128": type, scale bits, zero point.
constexpr std::string_view kGridKeyPrefix = "int8_grid:";
constexpr std::string_view kCalibrationKey = "calibration";

constexpr size_t kVersionOffset = 8;
constexpr size_t kChecksumOffset = 12;
constexpr size_t kBodySizeOffset = 16;
constexpr size_t kChecksummedFrom = 16;  // the checksum covers the body size too

uint32_t crc32_of(std::string_view bytes) {
  // zlib's length argument is a uInt: feed files past 4 GiB in pieces.
  uLong crc = crc32(0L, Z_NULL, 0);
  while (!bytes.empty()) {
    const size_t n = std::min<size_t>(bytes.size(), std::numeric_limits<uInt>::max());
    crc = crc32(crc, reinterpret_cast<const Bytef*>(bytes.data()), static_cast<uInt>(n));
    bytes.remove_prefix(n);
  }
  return static_cast<uint32_t>(crc);
}

class Writer {
 public:
  void u32(uint32_t v) { put(v, 4); }
  void u64(uint64_t v) { put(v, 8); }
  void i32(int32_t v) { u32(static_cast<uint32_t>(v)); }
  void str(std::string_view s) {
    u32(static_cast<uint32_t>(s.size()));
    out_.append(s);
  }
  void raw(std::string_view s) { out_.append(s); }
  std::string& bytes() { return out_; }

 private:
  void put(uint64_t v, int n) {
    for (int i = 0; i < n; ++i) out_.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  }
  std::string out_;
};

// Bounds-checked reads over the checksummed body. After a good checksum a failure here means
// a writer bug or a checksum collision; either way the file is not trusted.
class Reader {
 public:
  explicit Reader(std::string_view bytes) : in_(bytes) {}

  bool u32(uint32_t& v) {
    uint64_t x = 0;
    if (!get(x, 4)) return false;
    v = static_cast<uint32_t>(x);
    return true;
  }
  bool u64(uint64_t& v) { return get(v, 8); }
  bool i32(int32_t& v) {
    uint32_t x = 0;
    if (!u32(x)) return false;
    v = static_cast<int32_t>(x);
    return true;
  }
  bool str(std::string& s) {
    uint32_t n = 0;
    if (!u32(n) || n > in_.size()) return false;
    s.assign(in_.substr(0, n));
    in_.remove_prefix(n);
    return true;
  }
  bool view(uint64_t n, std::string_view& s) {
    if (n > in_.size()) return false;
    s = in_.substr(0, static_cast<size_t>(n));
    in_.remove_prefix(static_cast<size_t>(n));
    return true;
  }
  bool at_end() const { return in_.empty(); }

 private:
  bool get(uint64_t& v, int n) {
    if (in_.size() < static_cast<size_t>(n)) return false;
    v = 0;
    for (int i = 0; i < n; ++i) {
      v |= static_cast<uint64_t>(static_cast<unsigned char>(in_[static_cast<size_t>(i)]))
           << (8 * i);
    }
    in_.remove_prefix(static_cast<size_t>(n));
    return true;
  }
  std::string_view in_;
};

void store_le(std::string& bytes, size_t offset, uint64_t v, int n) {
  for (int i = 0; i < n; ++i) {
    bytes[offset + static_cast<size_t>(i)] = static_cast<char>((v >> (8 * i)) & 0xff);
  }
}

uint64_t read_le(std::string_view bytes, size_t offset, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; ++i) {
    v |= static_cast<uint64_t>(static_cast<unsigned char>(bytes[offset + static_cast<size_t>(i)]))
         << (8 * i);
  }
  return v;
}

Status corrupted(const std::string& file, std::string_view what) {
  return invalid_input("{}: engine file is corrupted ({}); rebuild it with `qforge build`", file,
                       what);
}

Result<EngineFileHeader> read_header(Reader& r, const std::string& file,
                                     std::string_view& payload) {
  EngineFileHeader h;
  std::string precision;
  uint32_t option_count = 0;
  uint64_t payload_size = 0;
  const bool ok = r.str(h.backend) && r.str(precision) && r.str(h.isa) && r.str(h.compute) &&
                  r.str(h.producer) && r.str(h.model_name) && r.u64(h.model_size) &&
                  r.u64(h.model_hash) && r.i32(h.threads) && r.u32(option_count);
  if (!ok) return corrupted(file, "header fields run past the end");
  for (uint32_t i = 0; i < option_count; ++i) {
    std::pair<std::string, std::string> kv;
    if (!r.str(kv.first) || !r.str(kv.second))
      return corrupted(file, "build options run past the end");
    h.options.push_back(std::move(kv));
  }
  if (!r.u64(payload_size) || !r.view(payload_size, payload)) {
    return corrupted(file, "graph payload runs past the end");
  }
  if (!r.at_end()) return corrupted(file, "bytes after the graph payload");
  auto p = parse_precision(precision);
  if (!p.ok()) return corrupted(file, "unknown precision '" + precision + "'");
  h.precision = *p;
  return h;
}

}  // namespace

uint64_t fnv1a64(std::string_view bytes) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (char c : bytes) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ULL;
  }
  return h;
}

bool is_engine_file(std::string_view bytes) {
  return bytes.starts_with(kEngineMagic);
}

namespace {

// "u8 3c010204 128" -> a grid; nullopt for anything else (a corrupted file).
std::optional<QuantGrid> parse_grid(std::string_view text) {
  const size_t a = text.find(' ');
  const size_t b = a == std::string_view::npos ? a : text.find(' ', a + 1);
  if (b == std::string_view::npos) return std::nullopt;
  const std::string_view type = text.substr(0, a), bits = text.substr(a + 1, b - a - 1),
                         zero = text.substr(b + 1);
  QuantGrid g;
  if (type != "u8" && type != "s8") return std::nullopt;
  g.type = type == "u8" ? DType::kU8 : DType::kI8;
  uint32_t scale_bits = 0;
  auto r1 = std::from_chars(bits.data(), bits.data() + bits.size(), scale_bits, 16);
  auto r2 = std::from_chars(zero.data(), zero.data() + zero.size(), g.zero_point);
  if (bits.size() != 8 || r1.ec != std::errc() || r1.ptr != bits.data() + bits.size() ||
      r2.ec != std::errc() || r2.ptr != zero.data() + zero.size()) {
    return std::nullopt;
  }
  g.scale = std::bit_cast<float>(scale_bits);
  const int32_t lo = g.type == DType::kU8 ? 0 : -128, hi = g.type == DType::kU8 ? 255 : 127;
  if (!std::isfinite(g.scale) || g.scale <= 0 || g.zero_point < lo || g.zero_point > hi) {
    return std::nullopt;
  }
  return g;
}

}  // namespace

EngineFileHeader header_for(const Engine& engine) {
  const EngineInfo& info = engine.info();
  EngineFileHeader h;
  h.backend = info.backend;
  h.precision = info.precision;
  h.isa = info.isa;
  h.compute = info.compute;
  if (!info.calibration.empty()) h.options.emplace_back(kCalibrationKey, info.calibration);
  // Bit patterns, not decimal text: the loaded engine must quantize exactly as the built one.
  for (const auto& [name, scale] : info.int8_scales) {
    h.options.emplace_back(std::string(kScaleKeyPrefix) + name,
                           fmt::format("{:08x}", std::bit_cast<uint32_t>(scale)));
  }
  for (const auto& [name, grid] : info.int8_grids) {
    h.options.emplace_back(std::string(kGridKeyPrefix) + name,
                           fmt::format("{} {:08x} {}", dtype_tag(grid.type),
                                       std::bit_cast<uint32_t>(grid.scale), grid.zero_point));
  }
  for (const auto& [signature, tactic] : info.tactics) {
    h.options.emplace_back(std::string(kTacticKeyPrefix) + signature, tactic);
  }
  for (const auto& [fact, value] : engine.platform()) {
    h.options.emplace_back(std::string(kPlatformKeyPrefix) + fact, value);
  }
  return h;
}

std::vector<std::pair<std::string, std::string>> recorded_platform(const EngineFileHeader& header) {
  std::vector<std::pair<std::string, std::string>> facts;
  for (const auto& [key, value] : header.options) {
    if (key.starts_with(kPlatformKeyPrefix)) {
      facts.emplace_back(key.substr(kPlatformKeyPrefix.size()), value);
    }
  }
  return facts;
}

Status check_isa(const EngineFileHeader& header, std::string_view here,
                 const std::filesystem::path& path) {
  // Engines are tuned for one instruction set, as TensorRT's are for one GPU: another ISA may
  // be missing instructions the kernels use, or simply pick other kernels. "" means portable.
  if (here.empty() || here == header.isa) return {};
  const std::optional<GpuIsa> built = parse_gpu_isa(header.isa);
  const std::optional<GpuIsa> local = parse_gpu_isa(here);
  if (built && local) {
    // TensorRT refuses only another compute capability and warns for another model of the same
    // one; qforge refuses both, since its cuDNN algorithms and workspace limits were chosen by
    // trying them on the very model the engine was built on.
    return invalid_input(
        "{}: the engine was built on GPU '{}' (compute capability {}.{}) but this machine's GPU "
        "is '{}' (compute capability {}.{}); {} engines run only on the GPU model they were "
        "built on: rebuild it here with `qforge build`",
        path.string(), built->name, built->major, built->minor, local->name, local->major,
        local->minor, header.backend);
  }
  return invalid_input(
      "{}: the engine was built for ISA '{}' but the {} backend uses '{}' on this "
      "machine; rebuild it here with `qforge build`",
      path.string(), header.isa, header.backend, here);
}

std::string platform_warning(const EngineFileHeader& header,
                             const std::vector<std::pair<std::string, std::string>>& here,
                             const std::filesystem::path& path) {
  std::string built_words, here_words;
  for (const auto& [fact, value] : recorded_platform(header)) {
    std::string now = "unknown";
    for (const auto& [k, v] : here) {
      if (k == fact) now = v;
    }
    if (now == value) continue;
    built_words += fmt::format("{}{} {}", built_words.empty() ? "" : ", ", fact, value);
    here_words += fmt::format("{}{} {}", here_words.empty() ? "" : ", ", fact, now);
  }
  if (built_words.empty()) return "";
  return fmt::format(
      "{}: the engine was built with {} but this machine has {}; it runs, but its algorithms "
      "were chosen under the other versions, so its speed may differ (TensorRT likewise only "
      "warns about other cuDNN/cuBLAS versions; it refuses another TensorRT version or compute "
      "capability)",
      path.string(), built_words, here_words);
}

Result<std::string> serialize_engine(const EngineFileHeader& header, const ir::Graph& graph) {
  auto payload = onnx_io::export_model_bytes(graph);
  if (!payload.ok()) return payload.status().with_context("saving the engine's graph: ");

  Writer w;
  w.raw(kEngineMagic);
  w.u32(kEngineFormatVersion);
  w.u32(0);  // checksum, patched below
  w.u64(0);  // body size, patched below
  w.str(header.backend);
  w.str(precision_name(header.precision));
  w.str(header.isa);
  w.str(header.compute);
  w.str(header.producer);
  w.str(header.model_name);
  w.u64(header.model_size);
  w.u64(header.model_hash);
  w.i32(header.threads);
  w.u32(static_cast<uint32_t>(header.options.size()));
  for (const auto& [key, value] : header.options) {
    w.str(key);
    w.str(value);
  }
  w.u64(payload->size());
  w.raw(*payload);

  std::string& bytes = w.bytes();
  store_le(bytes, kBodySizeOffset, bytes.size() - kEnginePrefixBytes, 8);
  store_le(bytes, kChecksumOffset, crc32_of(std::string_view(bytes).substr(kChecksummedFrom)), 4);
  return std::move(bytes);
}

Result<LoadedEngine> parse_engine_file(std::string_view bytes, const std::filesystem::path& path) {
  const std::string file = path.string();
  if (bytes.size() < kEngineMagic.size()) {
    if (!bytes.empty() && kEngineMagic.starts_with(bytes)) {
      return invalid_input("{}: truncated engine file ({} bytes)", file, bytes.size());
    }
    return invalid_input("{}: not a qforge engine file (bad magic)", file);
  }
  if (!is_engine_file(bytes))
    return invalid_input("{}: not a qforge engine file (bad magic)", file);
  if (bytes.size() < kEnginePrefixBytes) {
    return invalid_input("{}: truncated engine file ({} bytes, the fixed header alone is {})", file,
                         bytes.size(), kEnginePrefixBytes);
  }
  // The version comes before the checksum: another version may checksum differently.
  const auto version = static_cast<uint32_t>(read_le(bytes, kVersionOffset, 4));
  if (version != kEngineFormatVersion) {
    return invalid_input(
        "{}: engine file format version {} was written by {} qforge (this one reads version {}); "
        "rebuild the engine with `qforge build`",
        file, version, version > kEngineFormatVersion ? "a newer" : "an older",
        kEngineFormatVersion);
  }
  const uint64_t body = read_le(bytes, kBodySizeOffset, 8);
  const uint64_t actual = bytes.size() - kEnginePrefixBytes;
  if (body > actual) {
    return invalid_input("{}: truncated engine file ({} bytes; its header declares {} more)", file,
                         bytes.size(), body - actual);
  }
  const auto stored_crc = static_cast<uint32_t>(read_le(bytes, kChecksumOffset, 4));
  const uint32_t crc = crc32_of(bytes.substr(kChecksummedFrom));
  if (stored_crc != crc) {
    return corrupted(
        file, fmt::format("checksum mismatch: stored {:08x}, computed {:08x}", stored_crc, crc));
  }
  if (body != actual) return corrupted(file, "size field disagrees with the file size");

  Reader r(bytes.substr(kEnginePrefixBytes));
  std::string_view payload;
  QF_ASSIGN_OR_RETURN(EngineFileHeader header, read_header(r, file, payload));
  auto model = onnx_io::import_model_bytes(std::string(payload), path);
  if (!model.ok()) return model.status();
  return LoadedEngine{std::move(header), std::move(model->graph)};
}

Result<LoadedEngine> load_engine_file(const std::filesystem::path& path) {
  QF_ASSIGN_OR_RETURN(std::string bytes, read_file_bytes(path));
  return parse_engine_file(bytes, path);
}

Result<const Backend*> backend_for(const EngineFileHeader& header,
                                   const std::filesystem::path& path) {
  const std::string file = path.string();
  const Backend* backend = find_backend(header.backend);
  if (!backend) {
    return unsupported(
        "{}: the engine was built for the '{}' backend, which this qforge does not "
        "have",
        file, header.backend);
  }
  if (!backend->supports(header.precision)) {
    return unsupported("{}: the {} backend cannot run {} on this machine", file, header.backend,
                       precision_name(header.precision));
  }
  QF_RETURN_IF_ERROR(check_isa(header, backend->current_isa(), path));
  return backend;
}

Result<BuildOptions> build_options_from(const EngineFileHeader& header,
                                        const std::filesystem::path& path) {
  BuildOptions options;
  options.precision = header.precision;
  options.threads = header.threads;
  for (const auto& [key, value] : header.options) {
    if (key == kCalibrationKey) options.calibration = value;
    if (key.starts_with(kTacticKeyPrefix)) {
      options.tactics[key.substr(kTacticKeyPrefix.size())] = value;
      continue;
    }
    if (key.starts_with(kGridKeyPrefix)) {
      const std::string name = key.substr(kGridKeyPrefix.size());
      std::optional<QuantGrid> grid = parse_grid(value);
      if (!grid) {
        return corrupted(
            path.string(),
            fmt::format("int8 grid '{}' of '{}' is not 'u8|s8 SCALE_HEX ZERO_POINT'", value, name));
      }
      options.activation_grids[name] = *grid;
      continue;
    }
    if (!key.starts_with(kScaleKeyPrefix)) continue;
    uint32_t bits = 0;
    const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), bits, 16);
    if (ec != std::errc() || end != value.data() + value.size() || value.size() != 8) {
      return corrupted(path.string(), fmt::format("int8 scale '{}' of '{}' is not 8 hex digits",
                                                  value, key.substr(kScaleKeyPrefix.size())));
    }
    options.activation_scales[key.substr(kScaleKeyPrefix.size())] = std::bit_cast<float>(bits);
  }
  return options;
}

Result<std::unique_ptr<Engine>> build_loaded_engine(LoadedEngine loaded,
                                                    const std::filesystem::path& path,
                                                    std::optional<int> threads,
                                                    std::string* warning) {
  QF_ASSIGN_OR_RETURN(const Backend* backend, backend_for(loaded.header, path));
  QF_ASSIGN_OR_RETURN(BuildOptions options, build_options_from(loaded.header, path));
  if (threads) options.threads = *threads;
  // The graph is already optimized; the backend's passes run again and change nothing.
  auto engine = backend->build(std::move(loaded.graph), options);
  if (!engine.ok()) return engine.status().with_context(path.string() + ": ");
  // The versions are compared after building: only a built engine knows which libraries it
  // loaded, and a mismatch does not stop it.
  std::string words = platform_warning(loaded.header, (*engine)->platform(), path);
  if (warning) {
    *warning = std::move(words);
  } else if (!words.empty()) {
    fmt::print(stderr, "qforge: warning: {}\n", words);
  }
  return engine;
}

}  // namespace qf::runtime
