// Engine and Backend: what every backend (reference, cpu, cuda) builds and runs.
//
// A Backend turns an imported graph into an Engine for one precision; the Engine runs it.
// EngineInfo says honestly what runs: the precision asked for, what the kernels really compute
// in (e.g. "fp16 storage, fp32 compute"), the ISA, and one kernel name per layer, so reports
// and tests can tell real acceleration from a conversion.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ir/graph.h"
#include "qforge/status.h"
#include "qforge/tensor.h"
#include "runtime/run_timing.h"

namespace qf::runtime {

enum class Precision : uint8_t { kFP32, kTF32, kFP16, kBF16, kINT8 };

std::string_view precision_name(Precision p);  // "fp32", "tf32", "fp16", "bf16", "int8"
Result<Precision> parse_precision(std::string_view name);

// An 8-bit quantization grid: real = scale * (q - zero_point), q of `type` (kU8 or kI8).
struct QuantGrid {
  DType type = DType::kI8;
  float scale = 1.f;
  int32_t zero_point = 0;
  // Spelled out rather than defaulted: CUDA sources include this header as C++17.
  bool operator==(const QuantGrid& o) const {
    return type == o.type && scale == o.scale && zero_point == o.zero_point;
  }
};

struct KernelInfo {
  std::string node;  // the (first) source node the kernel implements
  std::string op;    // op type, or the fused pattern ("Conv+Relu")
  std::string impl;  // kernel name with its type signature, e.g. "reference_f32"
  // Why the node runs this way when it is not the obvious one: "runs its reference kernel: no
  // oneDNN pooling for ceil_mode", "fp32 in an int8 engine: input 'x' has no int8 scale".
  std::string note = {};
};

struct EngineInfo {
  std::string backend;
  Precision precision = Precision::kFP32;
  std::string compute;  // what the arithmetic really is, in words
  std::string isa;      // instruction set the kernels were chosen for
  int64_t weights_bytes = 0;
  int64_t activation_bytes = 0;  // peak live activations (0 when not planned)
  // INT8: the activation scales the engine was built with and where they came from ("entropy
  // calibration on 1000 samples", "synthetic"), so an engine file can carry them.
  std::map<std::string, float> int8_scales;
  // INT8: tensors stored on a grid a Q/DQ graph fixed (BuildOptions::activation_grids).
  std::map<std::string, QuantGrid> int8_grids;
  // Backends that time tactics: the implementation each layer signature runs (as in a timing
  // cache), so that an engine file rebuilds exactly these kernels.
  std::map<std::string, std::string> tactics;
  std::string calibration;
  std::vector<KernelInfo> kernels;
  // What the build decided that changes numerics or speed, one line each (the Q/DQ import's
  // notes: nodes kept as fake quantization, converted zero points ...).
  std::vector<std::string> notes;
};

// Time spent in one kernel (or copy) per run, from a profiled engine.
struct LayerProfile {
  std::string name;  // the kernel's label (node name(s))
  std::string kind;  // "onednn", "reference", "copy/reorder", ...
  double ms = 0;     // mean per run
};

class Engine {
 public:
  virtual ~Engine() = default;
  virtual const EngineInfo& info() const = 0;
  // The graph the engine was built from: input/output names, types and (symbolic) shapes.
  virtual const ir::Graph& graph() const = 0;
  // `inputs` in the order of graph().inputs; outputs in the order of graph().outputs.
  virtual Result<std::vector<Tensor>> run(const std::vector<Tensor>& inputs) = 0;
  // Per-kernel timing of the runs after it is switched on (it adds a clock read per kernel).
  // Engines that cannot profile say so.
  virtual Status set_profiling(bool on) {
    return on ? unsupported("the {} backend cannot profile per layer", info().backend) : Status();
  }
  // Layers of the most recently run input shape, in execution order.
  virtual std::vector<LayerProfile> profile() const { return {}; }

  // ---- trtexec's measurement (qforge bench); engines without a device keep the defaults ----
  // Applies the set fields of `options` to later runs. Engines without CUDA graphs or a device
  // to wait for refuse any set field with kUnsupported and a reason.
  virtual Status set_run_options(const RunOptions& options) {
    if (options.cuda_graph) return unsupported("the {} backend has no CUDA graphs", info().backend);
    if (options.spin_wait) return unsupported("the {} backend waits for no device", info().backend);
    return {};
  }
  // The options in effect for the most recent run (cuda_graph: whether it really replayed a
  // graph, which a plan with host steps cannot); unset fields: the engine has no such thing.
  virtual RunOptions run_options() const { return {}; }
  // From now on, every run records its RunTiming (a few device events per run, no allocation).
  // Engines that cannot split a run refuse, and reports say "n/a" rather than guess.
  virtual Status set_timing_breakdown(bool on) {
    return on ? unsupported("the {} backend does not split a run's time", info().backend)
              : Status();
  }
  // The split of the most recent run while the breakdown is on; nullopt otherwise.
  virtual std::optional<RunTiming> last_run_timing() const { return std::nullopt; }
  // Runs the most recent run's work again on the inputs it left on the device, copying nothing
  // between host and device; the outputs stay on the device (trtexec's --noDataTransfers). The
  // next run() copies and returns as usual.
  virtual Status run_on_device() {
    return unsupported("the {} backend keeps no inputs on a device", info().backend);
  }
  // What engine files record about the platform besides EngineInfo::isa, as (key, value) in a
  // fixed order: e.g. the driver and library versions the kernels were chosen with. A file
  // whose ISA differs is refused; a value that differs here only warns (engine_file.h).
  virtual std::vector<std::pair<std::string, std::string>> platform() const { return {}; }
};

struct BuildOptions {
  Precision precision = Precision::kFP32;
  int threads = 0;  // 0: all cores
  // INT8: per-tensor activation scales by value name (real = scale * q, q in [-127, 127], as in
  // a TensorRT calibration cache). Empty: a backend may calibrate synthetically, loudly.
  std::map<std::string, float> activation_scales = {};
  // INT8 from a Q/DQ graph (quant/qdq_import.h): tensors stored on exactly the graph's grid,
  // real = scale * (q - zero_point) with q of `type`, instead of one the backend chooses. Such a
  // tensor also has an entry in activation_scales (the symmetric scale covering its range), so
  // code that only asks "has a scale" keeps working.
  std::map<std::string, QuantGrid> activation_grids = {};
  // Where the scales came from, in words, for EngineInfo::compute and reports.
  std::string calibration = {};
  // A timing cache file (runtime/timing_cache.h) for backends that time tactics: read if it
  // exists, written back with what this build measured. Empty: time everything, keep nothing.
  std::string timing_cache = {};
  // Tactics fixed in advance by layer signature (an engine file's EngineInfo::tactics): taken
  // before the timing cache and before timing, so that a loaded engine runs the kernels that
  // were chosen when it was built.
  std::map<std::string, std::string> tactics = {};
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string_view name() const = 0;
  virtual bool supports(Precision p) const = 0;
  // Why `p` does not run here, in words ("oneDNN 2.6 has no fp16 kernels"); "" when it does.
  virtual std::string unsupported_reason(Precision p) const {
    return supports(p) ? "" : "not implemented by this backend";
  }
  // The ISA the backend would build for on this machine, in EngineInfo::isa's words; engine
  // files built for another ISA are refused. "" means portable: any recorded ISA loads.
  virtual std::string current_isa() const { return ""; }
  // Whether builds time candidate kernels and so read and write BuildOptions::timing_cache.
  virtual bool times_tactics() const { return false; }
  // Takes ownership of the graph: building may rewrite it (fusion, folding, layouts).
  virtual Result<std::unique_ptr<Engine>> build(std::unique_ptr<ir::Graph> graph,
                                                const BuildOptions& options) const = 0;
};

// The backends compiled into this build, by name ("reference", "cpu", "cuda").
const Backend* find_backend(std::string_view name);
std::vector<const Backend*> all_backends();
bool register_backend(const Backend* backend);

}  // namespace qf::runtime
