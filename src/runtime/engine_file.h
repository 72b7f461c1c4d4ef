// Engine files: a built engine saved to disk (`qforge build`) and loaded back (`qforge run`).
//
// The payload is the backend's optimized graph, exported as ONNX; loading re-runs the backend's
// build on it. That keeps the format independent of any backend's kernel structures, and
// re-laying-out weights at load is cheap next to a model's first run. A backend's passes must
// therefore be idempotent, and its Engine::graph() must return the graph after its passes.
//
// Layout (all integers little-endian; `str` is a u32 byte count followed by the bytes):
//
//   offset size  field
//   0      8     magic "QFENGINE"
//   8      4     u32 format version (kEngineFormatVersion)
//   12     4     u32 CRC-32 (zlib) of every byte from offset 16 to the end of the file
//   16     8     u64 body size: file size - 24
//   24     ...   body:
//                  str backend          runtime::Backend::name() ("reference", "cpu")
//                  str precision        "fp32", "bf16", "int8" ...
//                  str isa              EngineInfo::isa the kernels were chosen for
//                  str compute          EngineInfo::compute, for humans
//                  str producer         "qforge 0.1.0"
//                  str model_name       file name of the source model (no directory)
//                  u64 model_size       bytes of the source model file
//                  u64 model_hash       64-bit FNV-1a of the source model file's bytes
//                  i32 threads          BuildOptions::threads (0: all cores)
//                  u32 option count, then per option: str key, str value
//                                       (build options recorded as text, e.g. "shape:x";
//                                       "platform:<fact>" = Engine::platform(), see below)
//                  u64 payload size, then the payload: the optimized graph as an ONNX ModelProto
//
// The body must end exactly at the end of the file. Loading refuses, with kInvalidInput and a
// one-line message, a file that is truncated, lacks the magic, has another format version,
// fails its checksum, or was built for another ISA than the backend would use here.
//
// The platform: the ISA decides whether an engine may run (for the cuda backend it is the GPU
// model and compute capability, so an engine built on an H100 is refused on an H200 with both
// named). Engine::platform() adds facts that only inform, recorded as options
// "platform:<fact>" (the cuda backend: GPU, compute capability, CUDA driver, CUDA runtime,
// cuDNN, cuBLASLt versions); when the loaded engine reports another value for one, loading
// warns and goes on. Old files without these options load as before.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ir/graph.h"
#include "qforge/status.h"
#include "runtime/engine.h"

namespace qf::runtime {

inline constexpr std::string_view kEngineMagic = "QFENGINE";
inline constexpr uint32_t kEngineFormatVersion = 1;
inline constexpr size_t kEnginePrefixBytes = 24;  // magic, version, checksum, body size

struct EngineFileHeader {
  std::string backend;
  Precision precision = Precision::kFP32;
  std::string isa;
  std::string compute;
  std::string producer;
  std::string model_name;
  uint64_t model_size = 0;
  uint64_t model_hash = 0;
  int32_t threads = 0;
  std::vector<std::pair<std::string, std::string>> options;
};

struct LoadedEngine {
  EngineFileHeader header;
  std::unique_ptr<ir::Graph> graph;  // the backend's optimized graph, ready for Backend::build
};

// 64-bit FNV-1a: the model hash of the header. Not cryptographic; it tells which model file an
// engine came from, not whether anyone tampered with it.
uint64_t fnv1a64(std::string_view bytes);

// Whether `bytes` start with the engine magic (how `run` tells engines from ONNX models).
bool is_engine_file(std::string_view bytes);

// Backend, precision, ISA, compute and platform facts from the engine; the caller fills in the
// rest.
EngineFileHeader header_for(const Engine& engine);

// "tactic:<layer signature>" = the implementation the built engine chose (EngineInfo::tactics).
inline constexpr std::string_view kTacticKeyPrefix = "tactic:";

// The BuildOptions that rebuild the engine a header describes: precision, threads, INT8 scales
// and grids, calibration words and tactics. Corrupt values are refused naming `path`.
Result<BuildOptions> build_options_from(const EngineFileHeader& header,
                                        const std::filesystem::path& path);

// The option key prefix of the platform facts, and the facts a header records, in file order.
inline constexpr std::string_view kPlatformKeyPrefix = "platform:";
std::vector<std::pair<std::string, std::string>> recorded_platform(const EngineFileHeader& header);

// Whether an engine built for `header.isa` may run where its backend uses `here` ("" means the
// backend is portable). Refuses another ISA with kInvalidInput naming both; GPU ISAs
// (gpu_isa.h) are named as GPUs with their compute capabilities. Pure: testable without a GPU.
Status check_isa(const EngineFileHeader& header, std::string_view here,
                 const std::filesystem::path& path);

// One line naming every platform fact recorded in `header` whose value differs in `here` (the
// loaded engine's Engine::platform()); "" when none does. Only a warning: the engine runs.
std::string platform_warning(const EngineFileHeader& header,
                             const std::vector<std::pair<std::string, std::string>>& here,
                             const std::filesystem::path& path);

// The file bytes for `header` and `graph` (normally engine.graph()).
Result<std::string> serialize_engine(const EngineFileHeader& header, const ir::Graph& graph);

// Checks the container and imports the payload graph. `path` names the file in messages.
Result<LoadedEngine> parse_engine_file(std::string_view bytes, const std::filesystem::path& path);
Result<LoadedEngine> load_engine_file(const std::filesystem::path& path);

// The backend that will run the engine, after checking that this build has it, that it runs the
// precision here and that it would pick the ISA the engine was built for.
Result<const Backend*> backend_for(const EngineFileHeader& header,
                                   const std::filesystem::path& path);

// Builds the loaded graph with its backend. The backend re-runs its passes, which must leave an
// already optimized graph unchanged. `threads` overrides the recorded thread count. A platform
// warning goes to `warning` when given, else to stderr as "qforge: warning: ...".
Result<std::unique_ptr<Engine>> build_loaded_engine(LoadedEngine loaded,
                                                    const std::filesystem::path& path,
                                                    std::optional<int> threads = std::nullopt,
                                                    std::string* warning = nullptr);

}  // namespace qf::runtime
