// The "cuda" backend: cuDNN convolutions and cuBLASLt matrix products on NVIDIA GPUs, the
// backend's own kernels for elementwise ops, pooling, softmax and layout/type conversions, and
// the reference kernels on the host (with explicit copies, reported per kernel) for the rest.
//
// build() prepares the graph as the cpu backend does (quant/explicit_int8.h: Q/DQ import at INT8,
// the optimizer's fusion into qforge::Fused*, synthetic INT8 scales when none are given), then
// plans it for its declared input shapes: weights converted and uploaded once, algorithms
// chosen, the activation arena placed. Without a usable device (no driver, no GPU) the backend
// supports nothing and build() says why: it never crashes a machine without a GPU.
#include <cublasLt.h>
#include <cuda_runtime.h>
#include <cudnn.h>
#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <mutex>
#include <optional>

#include "backends/cuda/check.h"
#include "backends/cuda/device_probe.h"
#include "backends/cuda/plan.h"
#include "quant/explicit_int8.h"
#include "runtime/engine.h"
#include "runtime/input_check.h"

namespace qf::cuda {
namespace {

constexpr size_t kMaxPlans = 8;

std::string compute_words(runtime::Precision p) {
  switch (p) {
    case runtime::Precision::kFP32:
      return "fp32 (cuDNN FMA convolutions, cuBLASLt fp32 GEMMs, TF32 off; own CUDA kernels "
             "elsewhere; reference fallbacks on the host)";
    case runtime::Precision::kTF32:
      return "tf32 tensor cores (cuDNN/cuBLASLt), fp32 storage and accumulation; own CUDA "
             "kernels in fp32";
    case runtime::Precision::kFP16:
      return "fp16 tensor cores (cuDNN/cuBLASLt), fp16 storage, fp32 accumulation; fp32 at the "
             "graph boundaries and in host fallbacks";
    case runtime::Precision::kBF16:
      return "bf16 tensor cores (cuDNN/cuBLASLt), bf16 storage, fp32 accumulation; fp32 at the "
             "graph boundaries and in host fallbacks";
    case runtime::Precision::kINT8:
      return "int8 tensor cores (own implicit-GEMM kernels, mma.sync s8/u8 x s8 -> s32) for "
             "convolutions, Gemm and MatMul with constant weights: s8 weights with per-output-"
             "channel scales, u8/s8 activations with per-tensor grids, bias, residual, "
             "activation and requantization in the kernel's epilogue; depthwise convolutions "
             "(< 16 channels per group) int8 on CUDA cores; fp32 (FMA, no TF32) for the layers "
             "without int8 kernels or scales, each noted in its kernel";
  }
  return "";
}

class CudaEngine final : public runtime::Engine {
 public:
  explicit CudaEngine(std::unique_ptr<ir::Graph> graph) : graph_(std::move(graph)) {}

  ~CudaEngine() override {
    plans_.clear();
    ctx_.weights.clear();
    for (cudaEvent_t e : ctx_.marks) {
      if (e) cudaEventDestroy(e);
    }
    if (ctx_.done) cudaEventDestroy(ctx_.done);
    if (ctx_.cublaslt) cublasLtDestroy(ctx_.cublaslt);
    if (ctx_.cudnn) cudnnDestroy(ctx_.cudnn);
    if (ctx_.stream) cudaStreamDestroy(ctx_.stream);
  }

  Status init(const runtime::BuildOptions& options, std::vector<std::string> notes) {
    ctx_.precision = options.precision;
    if (cudaSetDevice(0) != cudaSuccess) return unsupported("no CUDA device: cannot select it");
    QF_CUDA_RETURN(cudaDeviceGetAttribute(&ctx_.sm_count, cudaDevAttrMultiProcessorCount, 0));
    QF_CUDA_RETURN(
        cudaDeviceGetAttribute(&ctx_.max_smem, cudaDevAttrMaxSharedMemoryPerBlockOptin, 0));
    if (cudaStreamCreateWithFlags(&ctx_.stream, cudaStreamNonBlocking) != cudaSuccess) {
      return internal_error("CUDA: cannot create a stream");
    }
    // Created now so that runs allocate nothing; see plan.cc's wait() for the blocking flag.
    for (cudaEvent_t& e : ctx_.marks) QF_CUDA_RETURN(cudaEventCreate(&e));
    QF_CUDA_RETURN(
        cudaEventCreateWithFlags(&ctx_.done, cudaEventBlockingSync | cudaEventDisableTiming));
    ctx_.cuda_graph = std::getenv("QFORGE_CUDA_NO_GRAPH") == nullptr;
    if (const cudnnStatus_t s = cudnnCreate(&ctx_.cudnn); s != CUDNN_STATUS_SUCCESS) {
      ctx_.cudnn = nullptr;
      return unsupported("cuDNN cannot start: {}", cudnnGetErrorString(s));
    }
    cudnnSetStream(ctx_.cudnn, ctx_.stream);
    if (const cublasStatus_t s = cublasLtCreate(&ctx_.cublaslt); s != CUBLAS_STATUS_SUCCESS) {
      ctx_.cublaslt = nullptr;
      return unsupported("cuBLASLt cannot start: {}", cublasLtGetStatusString(s));
    }
    info_.backend = "cuda";
    info_.precision = options.precision;
    info_.compute = compute_words(options.precision);
    info_.isa = probe().isa;
    info_.notes = std::move(notes);
    if (options.precision == runtime::Precision::kINT8) {
      ctx_.int8_scales = options.activation_scales;
      for (const auto& [name, g] : options.activation_grids) {
        ctx_.int8_fixed[name] = {g.type, Grid{g.scale, g.zero_point}};
      }
      info_.int8_scales = options.activation_scales;
      info_.int8_grids = options.activation_grids;
      info_.calibration = options.calibration;
      if (!options.calibration.empty()) info_.compute += "; scales: " + options.calibration;
    }
    ctx_.fixed_tactics = options.tactics;
    if (!options.timing_cache.empty()) {
      timing_cache_file_ = options.timing_cache;
      QF_ASSIGN_OR_RETURN(runtime::TimingCache cache,
                          runtime::TimingCache::load(timing_cache_file_, timing_device()));
      timing_cache_ = std::move(cache);
      ctx_.timing_cache = &*timing_cache_;
    }
    return {};
  }

  // Plans for the declared input shapes now (symbolic dims at 1; if that fails, at first run).
  Status prepare() {
    std::vector<Shape> shapes;
    std::vector<DType> dtypes;
    bool guessed = false;
    for (const ir::Value* in : graph_->inputs) {
      if (!in->shape || in->dtype == DType::kUndefined) return {};
      Shape s;
      for (const ir::Dim& d : *in->shape) {
        guessed = guessed || !d.is_known();
        s.push_back(d.is_known() ? d.value : 1);
      }
      shapes.push_back(std::move(s));
      dtypes.push_back(in->dtype);
    }
    Result<Plan*> plan = plan_for(shapes, dtypes);
    if (!plan.ok() && !guessed) return plan.status();
    if (timing_cache_) {
      info_.notes.push_back(
          fmt::format("timing cache {}: {} convolution(s) took their tactic from it, {} were timed",
                      timing_cache_file_, timing_cache_->hits(), timing_cache_->misses()));
    }
    return {};
  }

  const runtime::EngineInfo& info() const override { return info_; }
  const ir::Graph& graph() const override { return *graph_; }

  Result<std::vector<Tensor>> run(const std::vector<Tensor>& inputs) override {
    std::lock_guard<std::mutex> lock(mutex_);
    QF_RETURN_IF_ERROR(runtime::check_inputs(*graph_, inputs));
    Plan* plan = nullptr;
    for (const auto& p : plans_) {
      bool match = true;
      for (size_t i = 0; i < inputs.size(); ++i)
        match = match && p->input_shapes[i] == inputs[i].shape();
      if (match) plan = p.get();
    }
    if (!plan) {
      std::vector<Shape> shapes;
      std::vector<DType> dtypes;
      for (const Tensor& t : inputs) {
        shapes.push_back(t.shape());
        dtypes.push_back(t.dtype());
      }
      QF_ASSIGN_OR_RETURN(plan, plan_for(shapes, dtypes));
    }
    last_plan_ = plan;
    return plan->run(inputs, ctx_);
  }

  Status set_run_options(const runtime::RunOptions& options) override {
    std::lock_guard<std::mutex> lock(mutex_);
    if (options.cuda_graph) ctx_.cuda_graph = *options.cuda_graph;
    if (options.spin_wait) ctx_.spin_wait = *options.spin_wait;
    return {};
  }

  runtime::RunOptions run_options() const override {
    std::lock_guard<std::mutex> lock(mutex_);
    runtime::RunOptions o;
    o.cuda_graph = last_plan_ ? last_plan_->replayed_graph() : ctx_.cuda_graph;
    o.spin_wait = ctx_.spin_wait;
    return o;
  }

  Status set_profiling(bool on) override {
    std::lock_guard<std::mutex> lock(mutex_);
    ctx_.profile = on;
    return {};
  }

  std::vector<runtime::LayerProfile> profile() const override {
    std::lock_guard<std::mutex> lock(mutex_);
    return last_plan_ ? last_plan_->profile() : std::vector<runtime::LayerProfile>{};
  }

  Status set_timing_breakdown(bool on) override {
    std::lock_guard<std::mutex> lock(mutex_);
    ctx_.timing = on;
    return {};
  }

  std::optional<runtime::RunTiming> last_run_timing() const override {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!ctx_.timing || !last_plan_) return std::nullopt;
    return ctx_.last_timing;
  }

  Status run_on_device() override {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!last_plan_) {
      return invalid_input("run_on_device: no inputs on the device yet (run the engine first)");
    }
    return last_plan_->run_on_device(ctx_);
  }

  std::vector<std::pair<std::string, std::string>> platform() const override {
    return probe().facts;
  }

 private:
  Result<Plan*> plan_for(const std::vector<Shape>& shapes, const std::vector<DType>& dtypes) {
    QF_ASSIGN_OR_RETURN(std::unique_ptr<Plan> plan, build_plan(*graph_, ctx_, shapes, dtypes));
    // What this plan timed is kept at once: plans for other shapes may come at any later run.
    if (timing_cache_ && timing_cache_->dirty()) {
      QF_RETURN_IF_ERROR(timing_cache_->save(timing_cache_file_));
    }
    if (plans_.size() >= kMaxPlans) {
      if (last_plan_ == plans_.front().get()) last_plan_ = nullptr;
      plans_.erase(plans_.begin());
    }
    plans_.push_back(std::move(plan));
    Plan* p = plans_.back().get();
    if (info_.kernels.empty()) {
      info_.kernels = p->kernels;
      info_.weights_bytes = p->weights_bytes;
    }
    info_.activation_bytes = std::max(info_.activation_bytes, p->arena_bytes);
    info_.tactics = ctx_.chosen_tactics;
    return p;
  }

  // What a timing cache's timings are valid for: the GPU and the libraries whose kernels ran.
  static std::string timing_device() {
    std::string device = probe().isa;
    for (const auto& [fact, value] : probe().facts) {
      if (fact == "cuDNN" || fact == "cuBLASLt") device += fmt::format(" {} {}", fact, value);
    }
    return device;
  }

  std::unique_ptr<ir::Graph> graph_;
  std::optional<runtime::TimingCache> timing_cache_;
  std::string timing_cache_file_;
  DeviceContext ctx_;
  std::vector<std::unique_ptr<Plan>> plans_;
  runtime::EngineInfo info_;
  Plan* last_plan_ = nullptr;  // the plan of the most recent run (run_on_device repeats it)
  mutable std::mutex mutex_;
};

class CudaBackend final : public runtime::Backend {
 public:
  std::string_view name() const override { return "cuda"; }

  bool supports(runtime::Precision p) const override { return unsupported_reason(p).empty(); }

  std::string unsupported_reason(runtime::Precision p) const override {
    const DeviceProbe& d = probe();
    if (!d.ok) return d.why;
    switch (p) {
      case runtime::Precision::kFP32:
      case runtime::Precision::kTF32:
      case runtime::Precision::kFP16:
      case runtime::Precision::kBF16:
        return "";
      case runtime::Precision::kINT8:
        return "";  // sm_80+ (the probe's minimum): mma.sync int8
    }
    return "unknown precision";
  }

  std::string current_isa() const override { return probe().ok ? probe().isa : ""; }

  bool times_tactics() const override { return true; }

  Result<std::unique_ptr<runtime::Engine>> build(
      std::unique_ptr<ir::Graph> graph, const runtime::BuildOptions& options) const override {
    if (const std::string why = unsupported_reason(options.precision); !why.empty()) {
      return unsupported("the cuda backend cannot build {}: {}",
                         runtime::precision_name(options.precision), why);
    }
    // The same preparation as the cpu backend's: Q/DQ import, optimizer, synthetic scales.
    QF_ASSIGN_OR_RETURN(quant::PreparedBuild prepared, quant::prepare_build(*graph, options));
    auto engine = std::make_unique<CudaEngine>(std::move(graph));
    QF_RETURN_IF_ERROR(engine->init(prepared.options, std::move(prepared.notes)));
    QF_RETURN_IF_ERROR(engine->prepare());
    return std::unique_ptr<runtime::Engine>(std::move(engine));
  }
};

const CudaBackend kBackend;
[[maybe_unused]] const bool kRegistered = runtime::register_backend(&kBackend);

}  // namespace
}  // namespace qf::cuda
