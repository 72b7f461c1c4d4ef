// A cuda plan: one optimized graph lowered for one set of concrete input shapes.
//
// Every value lives in one or more Buffers: device memory (a slice of the one activation arena,
// an uploaded weight, or an alias over either) in a layout (plain row-major, or NHWC for 4-D
// tensors) and a storage type (f32, or f16/bf16 at those precisions), or pinned host memory for
// graph inputs and for the ops that run their reference kernels on the host. A consumer asks for
// a value in the layout and type it needs; the builder returns a buffer that already holds it or
// appends the conversion (a transpose/cast kernel, a device<->host copy) once. Steps run in
// order on one stream; host steps synchronize first. Everything is allocated and every cuDNN /
// cuBLASLt algorithm chosen when the plan is built; a run only copies inputs in, enqueues the
// steps and copies outputs out.
#pragma once

#include <cublasLt.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "ir/graph.h"
#include "qforge/status.h"
#include "qforge/tensor.h"
#include "runtime/engine.h"

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
  // Weights converted and uploaded once, shared by every plan: (value, layout, type, variant).
  std::map<std::tuple<const ir::Value*, Layout, DType, std::string>, std::shared_ptr<DeviceMemory>>
      weights;
};

struct Buffer {
  enum class Kind { kArena, kWeight, kHost, kAlias };
  Kind kind = Kind::kArena;
  DType dtype = DType::kUndefined;  // as stored
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
  std::vector<Step> steps;
  std::vector<int> input_buffers;   // host (pinned) buffer of each graph input
  std::vector<int> output_buffers;  // host buffer holding each graph output after a run
  std::vector<runtime::KernelInfo> kernels;
  int64_t arena_bytes = 0;
  int64_t weights_bytes = 0;
  int workspace = -1;  // arena buffer shared by every cuDNN / cuBLASLt call as scratch
  int64_t workspace_bytes = 0;

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
  ~Plan();  // prints the per-step profile when QFORGE_CUDA_PROFILE is set

  // Places the arena (liveness-based) and resolves every device address.
  Status finalize();
  Result<std::vector<Tensor>> run(const std::vector<Tensor>& inputs, DeviceContext& ctx);

 private:
  std::shared_ptr<DeviceMemory> arena_;
  // QFORGE_CUDA_PROFILE: wall time of each step (synchronized after it) summed over runs.
  bool profile_ = false;
  // Plans without host steps replay as one CUDA graph (captured at the first run): one launch
  // instead of one per kernel. QFORGE_CUDA_NO_GRAPH turns it off; a failed capture, too.
  Status enqueue_steps(DeviceContext& ctx);
  bool try_graph_ = false;
  cudaGraphExec_t graph_exec_ = nullptr;
  std::vector<double> step_seconds_;
  int profiled_runs_ = 0;
};

// Lowers the (optimized) graph for these input shapes.
Result<std::unique_ptr<Plan>> build_plan(const ir::Graph& graph, DeviceContext& ctx,
                                         const std::vector<Shape>& input_shapes,
                                         const std::vector<DType>& input_dtypes);

}  // namespace qf::cuda
