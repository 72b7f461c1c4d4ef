#include "backends/cuda/tactic_timer.h"

#include <algorithm>
#include <array>

#include "backends/cuda/check.h"

namespace qf::cuda {

namespace {

// Device memory released on every path out of time_tactic.
struct Scratch {
  void* ptr = nullptr;
  ~Scratch() {
    if (ptr) cudaFree(ptr);
  }
};

struct GraphExec {
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  ~GraphExec() {
    if (exec) cudaGraphExecDestroy(exec);
    if (graph) cudaGraphDestroy(graph);
  }
};

// `run` captured as a CUDA graph, as the plan replays it; null where capture is refused (the
// plan then launches eagerly too).
cudaGraphExec_t capture(cudaStream_t stream, const std::function<Status()>& run, GraphExec& g) {
  if (cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal) != cudaSuccess) {
    cudaGetLastError();
    return nullptr;
  }
  const Status st = run();
  const cudaError_t end = cudaStreamEndCapture(stream, &g.graph);
  if (!st.ok() || end != cudaSuccess || !g.graph ||
      cudaGraphInstantiate(&g.exec, g.graph, 0) != cudaSuccess) {
    g.exec = nullptr;
  }
  cudaGetLastError();
  return g.exec;
}

struct EventPair {
  cudaEvent_t start = nullptr, end = nullptr;
  ~EventPair() {
    if (start) cudaEventDestroy(start);
    if (end) cudaEventDestroy(end);
  }
};

}  // namespace

Result<float> time_tactic(cudaStream_t stream, const std::function<Status()>& run) {
  constexpr int kWarmup = 2;
  std::array<float, 5> ms{};
  EventPair ev;
  QF_CUDA_RETURN(cudaEventCreate(&ev.start));
  QF_CUDA_RETURN(cudaEventCreate(&ev.end));
  // Each timed run starts with a cold L2: in a whole network a layer's weights arrive from
  // memory, not from the cache the previous repetition warmed.
  int device = 0, l2_bytes = 0;
  QF_CUDA_RETURN(cudaGetDevice(&device));
  QF_CUDA_RETURN(cudaDeviceGetAttribute(&l2_bytes, cudaDevAttrL2CacheSize, device));
  const size_t flush_bytes = 2 * static_cast<size_t>(l2_bytes);
  Scratch flush;
  if (flush_bytes > 0) QF_CUDA_RETURN(cudaMalloc(&flush.ptr, flush_bytes));
  for (int i = 0; i < kWarmup; ++i) QF_RETURN_IF_ERROR(run());
  // Replayed as a graph, as the plan runs: cuDNN's host work per call (tens of microseconds for
  // some algorithms) is then not on the device's clock. Timed eagerly, the host's time between
  // launches counted and chose algorithms that ran 3x slower in the replayed network.
  GraphExec graph;
  const cudaGraphExec_t exec = capture(stream, run, graph);
  for (float& t : ms) {
    // The flush also keeps the device busy while the host enqueues the timed work.
    if (flush.ptr) QF_CUDA_RETURN(cudaMemsetAsync(flush.ptr, 0, flush_bytes, stream));
    QF_CUDA_RETURN(cudaEventRecord(ev.start, stream));
    if (exec) {
      QF_CUDA_RETURN(cudaGraphLaunch(exec, stream));
    } else {
      QF_RETURN_IF_ERROR(run());
    }
    QF_CUDA_RETURN(cudaEventRecord(ev.end, stream));
    QF_CUDA_RETURN(cudaEventSynchronize(ev.end));
    QF_CUDA_RETURN(cudaEventElapsedTime(&t, ev.start, ev.end));
  }
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

}  // namespace qf::cuda
