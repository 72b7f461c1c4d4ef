// The plan at run time: device and pinned host memory, the placement of the activation arena,
// and a run (inputs in, the steps enqueued eagerly, profiled, or replayed as one CUDA graph,
// outputs out, each phase timed with events when asked). Building a plan is builder.cc's.
#include "backends/cuda/plan.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>

#include "backends/cuda/check.h"
// The liveness-based first-fit placement is the cpu backend's too; it knows nothing of oneDNN
// or CUDA, so the device arena uses it as is.
#include "runtime/arena.h"

namespace qf::cuda {

namespace {

// Device allocations are aligned for every vectorized access cuDNN and cuBLASLt make.
constexpr int64_t kDeviceAlignment = 256;

Status enqueue(std::vector<Step>& steps, Plan& plan, DeviceContext& ctx) {
  for (Step& s : steps) {
    Status st = s.run(plan, ctx);
    if (!st.ok()) return st.with_context(s.label + ": ");
  }
  return {};
}

// Waits for everything enqueued so far. Spinning polls the `done` event with cudaEventQuery,
// which never blocks whatever the flags: the thread burns a core but sees the end of the run
// within a poll's time. Not spinning calls cudaEventSynchronize on the same event, created with
// cudaEventBlockingSync, so the thread really sleeps until the driver wakes it (trtexec's
// default; tens of microseconds later). Why not cudaDeviceScheduleSpin: it is a flag of the
// whole process's context, settable only before the context exists, so it could neither be
// switched per engine nor after the first engine was built; and cudaStreamSynchronize under the
// default cudaDeviceScheduleAuto spins or yields by a heuristic (active contexts vs cores), so
// "blocking" would not reliably block.
Status wait(DeviceContext& ctx) {
  QF_CUDA_RETURN(cudaEventRecord(ctx.done, ctx.stream));
  if (!ctx.spin_wait) {
    QF_CUDA_RETURN(cudaEventSynchronize(ctx.done));
    return {};
  }
  cudaError_t state = cudaEventQuery(ctx.done);
  while (state == cudaErrorNotReady) state = cudaEventQuery(ctx.done);
  if (state != cudaSuccess) {
    return internal_error("CUDA: waiting for the run failed: {}", cudaGetErrorString(state));
  }
  return {};
}

double elapsed_ms(cudaEvent_t from, cudaEvent_t to, Status& status) {
  float ms = 0;
  const cudaError_t e = cudaEventElapsedTime(&ms, from, to);
  if (e != cudaSuccess && status.ok()) {
    status = internal_error("CUDA: cudaEventElapsedTime failed: {}", cudaGetErrorString(e));
  }
  return ms;
}

}  // namespace

DeviceMemory::~DeviceMemory() {
  if (ptr) cudaFree(ptr);
}

Result<std::shared_ptr<DeviceMemory>> DeviceMemory::allocate(int64_t bytes) {
  auto m = std::make_shared<DeviceMemory>();
  m->bytes = std::max<int64_t>(bytes, 1);
  const cudaError_t e = cudaMalloc(&m->ptr, static_cast<size_t>(m->bytes));
  if (e != cudaSuccess) {
    m->ptr = nullptr;
    return invalid_input("cannot allocate {} bytes of device memory: {}", bytes,
                         cudaGetErrorString(e));
  }
  return m;
}

Result<Tensor> pinned_tensor(DType dtype, const Shape& shape) {
  const size_t bytes =
      std::max<size_t>(static_cast<size_t>(shape_numel(shape)) * dtype_size(dtype), 1);
  void* p = nullptr;
  const cudaError_t e = cudaMallocHost(&p, bytes);
  if (e != cudaSuccess) {
    return invalid_input("cannot allocate {} bytes of pinned host memory: {}", bytes,
                         cudaGetErrorString(e));
  }
  std::memset(p, 0, bytes);
  std::shared_ptr<std::byte[]> storage(static_cast<std::byte*>(p),
                                       [](std::byte* q) { cudaFreeHost(q); });
  return Tensor::view(dtype, shape, std::move(storage));
}

Plan::~Plan() {
  if (graph_exec_) cudaGraphExecDestroy(graph_exec_);
  for (cudaEvent_t e : profile_events_) {
    if (e) cudaEventDestroy(e);
  }
}

std::vector<runtime::LayerProfile> Plan::profile() const {
  std::vector<runtime::LayerProfile> layers;
  if (profiled_runs_ == 0) return layers;
  for (size_t i = 0; i < steps.size(); ++i) {
    // "node 'conv1' (Conv)" -> "Conv"; "convert x" -> "convert"; host fallbacks say so.
    const std::string& l = steps[i].label;
    const size_t open = l.rfind('(');
    std::string kind = open != std::string::npos && l.back() == ')'
                           ? l.substr(open + 1, l.size() - open - 2)
                           : l.substr(0, l.find(' '));
    if (steps[i].host) kind = "host fallback";
    layers.push_back({.name = l, .kind = kind, .ms = 1e3 * step_seconds_[i] / profiled_runs_});
  }
  return layers;
}

Status Plan::finalize() {
  graph_capturable_ =
      std::none_of(steps.begin(), steps.end(), [](const Step& s) { return s.host; });
  std::vector<runtime::ArenaRequest> requests;
  std::vector<size_t> roots;
  for (size_t i = 0; i < buffers.size(); ++i) {
    Buffer& b = buffers[i];
    if (b.kind != Buffer::Kind::kArena) continue;
    if (b.first < 0) b.first = b.last = 0;
    requests.push_back({b.bytes, b.first, std::max(b.first, b.last)});
    roots.push_back(i);
  }
  const runtime::ArenaLayout layout = runtime::plan_arena(requests, kDeviceAlignment);
  arena_bytes = layout.size;
  QF_ASSIGN_OR_RETURN(arena_, DeviceMemory::allocate(layout.size));
  for (size_t k = 0; k < roots.size(); ++k) {
    buffers[roots[k]].offset = layout.offsets[k];
    buffers[roots[k]].ptr = static_cast<std::byte*>(arena_->ptr) + layout.offsets[k];
  }
  for (Buffer& b : buffers) {
    if (b.kind == Buffer::Kind::kAlias) b.ptr = buffers[static_cast<size_t>(b.root)].ptr;
  }
  if (split_sum_bytes > 0) {
    const int64_t bytes = split_sum_bytes + split_counters * static_cast<int64_t>(sizeof(int32_t));
    QF_ASSIGN_OR_RETURN(split_scratch_, DeviceMemory::allocate(bytes));
    QF_CUDA_RETURN(cudaMemset(split_scratch_->ptr, 0, static_cast<size_t>(bytes)));
  }
  return {};
}

Status Plan::enqueue_compute(DeviceContext& ctx) {
  if (ctx.cuda_graph && !ctx.profile && graph_capturable_ && !capture_tried_) {
    // Capture once; anything that refuses capture leaves the plan on eager launches.
    capture_tried_ = true;
    cudaGraph_t graph = nullptr;
    if (cudaStreamBeginCapture(ctx.stream, cudaStreamCaptureModeThreadLocal) == cudaSuccess) {
      const Status st = enqueue(steps, *this, ctx);
      const cudaError_t end = cudaStreamEndCapture(ctx.stream, &graph);
      if (st.ok() && end == cudaSuccess && graph &&
          cudaGraphInstantiate(&graph_exec_, graph, 0) != cudaSuccess) {
        graph_exec_ = nullptr;
      }
      if (graph) cudaGraphDestroy(graph);
    }
    cudaGetLastError();  // a refused capture is not an error of this run
  }
  replayed_graph_ = ctx.cuda_graph && !ctx.profile && graph_exec_ != nullptr;
  if (replayed_graph_) {
    QF_CUDA_RETURN(cudaGraphLaunch(graph_exec_, ctx.stream));
    return {};
  }
  if (!ctx.profile) return enqueue(steps, *this, ctx);
  // Device time of each step between CUDA events recorded around it (eager launches, so the gaps
  // between kernels are not counted); host steps synchronize anyway and count their host time.
  step_seconds_.resize(steps.size(), 0.0);
  if (profile_events_.empty()) {
    profile_events_.resize(steps.size() + 1, nullptr);
    for (cudaEvent_t& e : profile_events_) QF_CUDA_RETURN(cudaEventCreate(&e));
  }
  ++profiled_runs_;
  for (size_t i = 0; i < steps.size(); ++i) {
    QF_CUDA_RETURN(cudaEventRecord(profile_events_[i], ctx.stream));
    Status st = steps[i].run(*this, ctx);
    if (!st.ok()) return st.with_context(steps[i].label + ": ");
  }
  QF_CUDA_RETURN(cudaEventRecord(profile_events_.back(), ctx.stream));
  QF_CUDA_RETURN(cudaEventSynchronize(profile_events_.back()));
  for (size_t i = 0; i < steps.size(); ++i) {
    float ms = 0;
    QF_CUDA_RETURN(cudaEventElapsedTime(&ms, profile_events_[i], profile_events_[i + 1]));
    step_seconds_[i] += 1e-3 * ms;
  }
  return {};
}

Status Plan::execute(DeviceContext& ctx, bool transfers) {
  using clock = std::chrono::steady_clock;
  const bool timed = ctx.timing;
  if (timed && transfers) QF_CUDA_RETURN(cudaEventRecord(ctx.marks[0], ctx.stream));
  if (transfers) QF_RETURN_IF_ERROR(enqueue(input_steps, *this, ctx));
  if (timed) QF_CUDA_RETURN(cudaEventRecord(ctx.marks[1], ctx.stream));
  // The enqueue time is the host's cost of handing over the compute (trtexec's enqueue of the
  // inference, not of the copies); with host fallbacks it includes running them.
  const clock::time_point enqueue_start = clock::now();
  QF_RETURN_IF_ERROR(enqueue_compute(ctx));
  const clock::time_point enqueue_end = clock::now();
  if (timed) QF_CUDA_RETURN(cudaEventRecord(ctx.marks[2], ctx.stream));
  if (transfers) QF_RETURN_IF_ERROR(enqueue(output_steps, *this, ctx));
  if (timed && transfers) QF_CUDA_RETURN(cudaEventRecord(ctx.marks[3], ctx.stream));
  QF_RETURN_IF_ERROR(wait(ctx));
  if (!timed) return {};
  Status status;
  runtime::RunTiming& t = ctx.last_timing;
  t.compute_ms = elapsed_ms(ctx.marks[1], ctx.marks[2], status);
  t.h2d_ms.reset();
  t.d2h_ms.reset();
  if (transfers) {
    t.h2d_ms = elapsed_ms(ctx.marks[0], ctx.marks[1], status);
    t.d2h_ms = elapsed_ms(ctx.marks[2], ctx.marks[3], status);
  }
  t.enqueue_ms = std::chrono::duration<double, std::milli>(enqueue_end - enqueue_start).count();
  return status;
}

Result<std::vector<Tensor>> Plan::run(const std::vector<Tensor>& inputs, DeviceContext& ctx) {
  for (size_t i = 0; i < input_buffers.size(); ++i) {
    Tensor& staging = buf(input_buffers[i]).host;
    std::memcpy(staging.raw(), inputs[i].raw(), staging.nbytes());
  }
  QF_RETURN_IF_ERROR(execute(ctx, /*transfers=*/true));
  std::vector<Tensor> results;
  for (int b : output_buffers) {
    const Tensor& h = buf(b).host;
    Tensor out(h.dtype(), h.shape());
    std::memcpy(out.raw(), h.raw(), out.nbytes());
    results.push_back(std::move(out));
  }
  return results;
}

Status Plan::run_on_device(DeviceContext& ctx) {
  return execute(ctx, /*transfers=*/false);
}

}  // namespace qf::cuda
