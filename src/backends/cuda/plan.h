// A cuda plan: one optimized graph lowered for one set of concrete input shapes.
//
// Every value lives in one or more Buffers: device memory (a slice of the one activation arena,
// an uploaded weight, or an alias over either) in a layout (plain row-major, or NHWC for 4-D
// tensors) and a storage type (f32, or f16/bf16 at those precisions; s8/u8 on a Grid for the
// float activations an INT8 engine keeps quantized), or pinned host memory for
// graph inputs and for the ops that run their reference kernels on the host. A consumer asks for
// a value in the layout and type it needs; the builder returns a buffer that already holds it or
// appends the conversion (a transpose/cast kernel, a device<->host copy) once. Steps run in
// order on one stream; host steps synchronize first. Everything is allocated and every cuDNN /
// cuBLASLt algorithm chosen when the plan is built; a run only copies inputs in, enqueues the
// steps and copies outputs out.
//
// The steps come in three phases, as trtexec times them: the graph inputs' uploads (H2D), the
// compute (every kernel, conversion and host fallback with its own copies), and the graph
// outputs' downloads (D2H). Only the compute is captured as a CUDA graph; a run without data
// transfers (Engine::run_on_device) enqueues the compute alone, on the inputs the last upload
// left on the device, which is why uploaded inputs keep their arena slice for the whole plan.
#pragma once

#include <cublasLt.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "backends/cuda/kernels.h"
#include "ir/graph.h"
#include "qforge/status.h"
#include "qforge/tensor.h"
#include "runtime/engine.h"
#include "runtime/run_timing.h"
#include "runtime/timing_cache.h"

namespace qf::cuda {

enum class Layout : uint8_t { kPlain, kNHWC };

// Owned device memory (cudaMalloc; freed with the last reference).
struct DeviceMemory {
  void* ptr = nullptr;
  int64_t bytes = 0;
  DeviceMemory() = default;
  DeviceMemory(const DeviceMemory&) = delete;
  DeviceMemory& operator=(const DeviceMemory&) = delete;
  ~DeviceMemory();
  static Result<std::shared_ptr<DeviceMemory>> allocate(int64_t bytes);
};

// A tensor in page-locked host memory, so that copies to and from the device are true DMA.
Result<Tensor> pinned_tensor(DType dtype, const Shape& shape);

// The per-engine CUDA objects every plan of the engine shares.
struct DeviceContext {
  int device = 0;
  cudaStream_t stream = nullptr;
  cudnnHandle_t cudnn = nullptr;
  cublasLtHandle_t cublaslt = nullptr;
  runtime::Precision precision = runtime::Precision::kFP32;
  int sm_count = 1;  // multiprocessors of the device (tile and split-K choices)
  int max_smem = 0;  // shared memory per block a kernel can opt in to, in bytes
  // INT8 engines: the symmetric activation scales by tensor name (BuildOptions), and the 8-bit
  // storage a Q/DQ graph fixed for some tensors (type and grid, from BuildOptions' grids).
  std::map<std::string, float> int8_scales;
  struct FixedGrid {
    DType type = DType::kI8;
    Grid grid;
  };
  std::map<std::string, FixedGrid> int8_fixed;
  // Weights converted and uploaded once, shared by every plan: (value, layout, type, variant).
  std::map<std::tuple<const ir::Value*, Layout, DType, std::string>, std::shared_ptr<DeviceMemory>>
      weights;
  // Build: the tactics measured fastest by layer signature (BuildOptions::timing_cache), read
  // before timing a layer and extended with what was timed. Null: time every layer.
  runtime::TimingCache* timing_cache = nullptr;
  // Build: tactics fixed by signature (BuildOptions::tactics, an engine file's), taken first; and
  // every choice made among several candidates, by signature (EngineInfo::tactics).
  std::map<std::string, std::string> fixed_tactics;
  int fixed_tactic_hits = 0;
  std::map<std::string, std::string> chosen_tactics;
  // Run-time settings (Engine::set_run_options), read by every plan at each run.
  bool cuda_graph = true;  // replay the compute as a CUDA graph where the plan allows it
  bool spin_wait = false;  // busy-wait for the end of a run instead of blocking (see wait())
  bool timing = false;     // record the RunTiming of each run (Engine::set_timing_breakdown)
  bool profile = false;    // time every step (Engine::set_profiling); launches eagerly
  // Created once with the stream: `marks` bracket the three phases for the timing breakdown,
  // `done` is what a run waits on (blocking-sync, so that not spinning really blocks).
  cudaEvent_t marks[4] = {};
  cudaEvent_t done = nullptr;
  runtime::RunTiming last_timing;
};

struct Buffer {
  enum class Kind { kArena, kWeight, kHost, kAlias };
  Kind kind = Kind::kArena;
  DType dtype = DType::kUndefined;  // as stored
  Grid grid;                        // s8/u8 storage of a float value: its quantization grid
  Shape shape;                      // logical (NCHW order for an NHWC buffer)
  Layout layout = Layout::kPlain;
  int64_t bytes = 0;
  int root = -1;   // kAlias: the arena or weight buffer whose bytes this one reinterprets
  int first = -1;  // kArena: first and last step that touch it
  int last = -1;
  int64_t offset = 0;                    // kArena, once placed
  void* ptr = nullptr;                   // device address, once placed
  std::shared_ptr<DeviceMemory> weight;  // kWeight
  Tensor host;                           // kHost: pinned (or a constant's own tensor)
  bool on_device() const { return kind != Kind::kHost; }
};

class Plan;

struct Step {
  std::string label;
  // Enqueues the step's work on the context's stream (host steps run it right away).
  std::function<Status(Plan&, DeviceContext&)> run;
  bool host = false;  // runs a reference kernel on the host (synchronizes; cannot be captured)
};

class Plan {
 public:
  std::vector<Shape> input_shapes;
  std::vector<Buffer> buffers;
  std::vector<Step> input_steps;    // H2D: the graph inputs' uploads, before the compute
  std::vector<Step> steps;          // the compute
  std::vector<Step> output_steps;   // D2H: the graph outputs' downloads, after the compute
  std::vector<int> input_buffers;   // host (pinned) buffer of each graph input
  std::vector<int> output_buffers;  // host buffer holding each graph output after a run
  std::vector<runtime::KernelInfo> kernels;
  int64_t arena_bytes = 0;
  int64_t weights_bytes = 0;
  int workspace = -1;  // arena buffer shared by every cuDNN / cuBLASLt call as scratch
  int64_t workspace_bytes = 0;
  // INT8 split-K scratch: int32 partial sums and per-tile counters, zeroed once at finalize()
  // and left zeroed by every kernel that uses them (int8_kernels.h); shared by the layers, which
  // run one after another on one stream.
  int64_t split_sum_bytes = 0;
  int64_t split_counters = 0;
  int32_t* split_sums() const {
    return static_cast<int32_t*>(split_scratch_ ? split_scratch_->ptr : nullptr);
  }
  int32_t* split_counter_ptr() const {
    return split_scratch_ ? reinterpret_cast<int32_t*>(
                                static_cast<std::byte*>(split_scratch_->ptr) + split_sum_bytes)
                          : nullptr;
  }

  int root_of(int b) const {
    return buffers[static_cast<size_t>(b)].kind == Buffer::Kind::kAlias
               ? buffers[static_cast<size_t>(b)].root
               : b;
  }
  void* ptr(int b) const { return b < 0 ? nullptr : buffers[static_cast<size_t>(b)].ptr; }
  Buffer& buf(int b) { return buffers[static_cast<size_t>(b)]; }

  Plan() = default;
  Plan(const Plan&) = delete;
  Plan& operator=(const Plan&) = delete;
  ~Plan();

  // Places the arena (liveness-based) and resolves every device address.
  Status finalize();
  Result<std::vector<Tensor>> run(const std::vector<Tensor>& inputs, DeviceContext& ctx);
  // The compute alone, on the inputs the previous run() uploaded; outputs stay on the device.
  // Allocates nothing.
  Status run_on_device(DeviceContext& ctx);
  // Whether the most recent run replayed the compute as a CUDA graph.
  bool replayed_graph() const { return replayed_graph_; }
  // Mean device time of each step over the runs made with ctx.profile on, in execution order.
  std::vector<runtime::LayerProfile> profile() const;

 private:
  std::shared_ptr<DeviceMemory> arena_;
  std::shared_ptr<DeviceMemory> split_scratch_;
  // Enqueues the phases (the transfers only when asked), waits for the end and times the phases.
  Status execute(DeviceContext& ctx, bool transfers);
  Status enqueue_compute(DeviceContext& ctx);
  // Plans without host steps replay their compute as one CUDA graph: one launch instead of one
  // per kernel. It is captured at the first run with ctx.cuda_graph on (the bench's untimed
  // first query), never retried after a refused capture; ctx.cuda_graph off (--cuda-graph off,
  // QFORGE_CUDA_NO_GRAPH) enqueues the steps one by one.
  bool graph_capturable_ = false;
  bool capture_tried_ = false;
  bool replayed_graph_ = false;
  cudaGraphExec_t graph_exec_ = nullptr;
  std::vector<double> step_seconds_;
  // ctx.profile: device time of each step (CUDA events around it) summed over the runs.
  std::vector<cudaEvent_t> profile_events_;  // one before each step, one after the last
  int profiled_runs_ = 0;
};

// Lowers the (optimized) graph for these input shapes.
Result<std::unique_ptr<Plan>> build_plan(const ir::Graph& graph, DeviceContext& ctx,
                                         const std::vector<Shape>& input_shapes,
                                         const std::vector<DType>& input_dtypes);

}  // namespace qf::cuda
