// The "cpu" backend: oneDNN primitives where oneDNN has them, reference kernels elsewhere.
//
// build() prepares the graph (quant/explicit_int8.h: Q/DQ import at INT8, folding, BN folding,
// fusion into qforge::Fused* ops, synthetic INT8 scales when none are given), then plans
// it for its declared input shapes: primitives created, weights reordered, the activation arena
// placed. A run with other input shapes (another batch size) plans again once and keeps both
// plans; runs themselves allocate nothing but the output tensors.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <set>
#include <string_view>

#include "backends/cpu/builder.h"
#include "backends/cpu/isa.h"
#include "quant/explicit_int8.h"
#include "runtime/engine.h"
#include "runtime/input_check.h"

namespace qf::cpu {
namespace {

// Plans kept per engine; one per distinct set of input shapes seen.
constexpr size_t kMaxPlans = 8;

std::string compute_words(runtime::Precision p) {
  switch (p) {
    case runtime::Precision::kBF16:
      return "bf16 (oneDNN bf16 kernels, fp32 accumulation; fp32 at the graph boundaries, in "
             "biases and in reference fallbacks)";
    case runtime::Precision::kINT8:
      return "int8 (oneDNN: u8/s8 activations with per-tensor scales, s8 weights with "
             "per-output-channel scales, s32 accumulation; fp32 for ops without int8 kernels)";
    case runtime::Precision::kFP16:
      return "fp16 weights with fp32 arithmetic, NOT accelerated: oneDNN 2.6 has no fp16 kernels "
             "on CPUs, so the weights of Conv/Gemm/MatMul are rounded to fp16 (the accuracy of "
             "fp16 weights) and everything runs at fp32 speed; use bf16 for speed";
    default:
      return "fp32 (oneDNN kernels, denormals flushed to zero)";
  }
}

// FP16 on this backend: oneDNN 2.6 has no fp16 arithmetic on CPUs (not even with AVX512-FP16),
// so an fp16 engine stores what TensorRT's fp16 mode stores in fp16 where it matters most for
// accuracy, the weights and biases of Conv/ConvTranspose/Gemm/MatMul (after batch norm folding,
// as TensorRT converts the folded weights), rounded to nearest even, and computes in fp32.
// Activations stay fp32. EngineInfo::compute says so: it is an accuracy model, not a speed-up.
void round_weights_to_fp16(ir::Graph& graph) {
  static const std::set<std::string_view> kWeighted = {
      "Conv", "ConvTranspose", "Gemm", "MatMul", "FusedConv", "FusedGemm", "FusedMatMul"};
  std::set<ir::Value*> done;
  for (const auto& n : graph.nodes()) {
    if (!kWeighted.count(n->op_type)) continue;
    for (size_t i = 1; i < n->inputs.size() && i <= 2; ++i) {
      ir::Value* w = n->inputs[i];
      if (!w || !w->is_constant() || w->constant.dtype() != DType::kF32 || !done.insert(w).second) {
        continue;
      }
      Tensor rounded = w->constant.clone();
      for (float& v : rounded.span<float>()) v = f16_to_f32(f32_to_f16(v));
      w->constant = std::move(rounded);
    }
  }
}

class CpuEngine final : public runtime::Engine {
 public:
  CpuEngine(std::unique_ptr<ir::Graph> graph, const runtime::BuildOptions& options)
      : graph_(std::move(graph)),
        scales_(options.activation_scales),
        grids_(options.activation_grids),
        threads_(resolve_threads(options.threads)),
        engine_(dnnl::engine::kind::cpu, 0),
        stream_(engine_),
        profile_(std::getenv("QFORGE_CPU_PROFILE") != nullptr) {
    ctx_.graph = graph_.get();
    ctx_.engine = &engine_;
    ctx_.stream = &stream_;
    ctx_.precision = options.precision;
    ctx_.weights = &weights_;
    if (options.precision == runtime::Precision::kINT8) {
      ctx_.activation_scales = &scales_;
      ctx_.activation_grids = &grids_;
    }
    info_.backend = "cpu";
    info_.precision = options.precision;
    info_.compute = compute_words(options.precision);
    if (options.precision == runtime::Precision::kINT8) {
      info_.int8_scales = scales_;
      info_.int8_grids = grids_;
      info_.calibration = options.calibration;
      if (!options.calibration.empty()) info_.compute += "; scales: " + options.calibration;
    }
    info_.isa = isa_name();
    if (!onednn_uses_openmp()) {
      info_.compute += "; thread count chosen by oneDNN's own runtime, not by --threads";
    }
  }

  ~CpuEngine() override {
    if (profile_) print_profile();
  }

  // Plans for the declared input shapes now, so that building reorders the weights and reports
  // what runs. Symbolic dims are planned at 1; if that fails, planning waits for the first run.
  void set_notes(std::vector<std::string> notes) { info_.notes = std::move(notes); }

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
    return {};
  }

  const runtime::EngineInfo& info() const override { return info_; }
  const ir::Graph& graph() const override { return *graph_; }

  Result<std::vector<Tensor>> run(const std::vector<Tensor>& inputs) override {
    std::lock_guard<std::mutex> lock(mutex_);
    QF_RETURN_IF_ERROR(runtime::check_inputs(*graph_, inputs));
    Plan* plan = find_plan(inputs);
    if (!plan) {
      std::vector<Shape> shapes;
      std::vector<DType> dtypes;
      for (const Tensor& t : inputs) {
        shapes.push_back(t.shape());
        dtypes.push_back(t.dtype());
      }
      QF_ASSIGN_OR_RETURN(plan, plan_for(shapes, dtypes));
    }
    last_ = plan;
    RunEnvironment env(threads_);
    if (!profile_) return plan->run(inputs, stream_, nullptr);
    std::vector<double>& times = profile_seconds_[plan];
    times.resize(plan->steps.size(), 0.0);
    ++profile_runs_[plan];
    return plan->run(inputs, stream_, &times);
  }

 private:
  Plan* find_plan(const std::vector<Tensor>& inputs) const {
    auto matches = [&](const Plan& p) {
      for (size_t i = 0; i < inputs.size(); ++i) {
        if (p.input_shapes[i] != inputs[i].shape()) return false;
      }
      return true;
    };
    if (last_ && matches(*last_)) return last_;
    for (const auto& p : plans_) {
      if (matches(*p)) return p.get();
    }
    return nullptr;
  }

  Result<Plan*> plan_for(const std::vector<Shape>& shapes, const std::vector<DType>& dtypes) {
    RunEnvironment env(threads_);  // weight reorders run on the same pool
    PlanBuilder builder(ctx_);
    QF_ASSIGN_OR_RETURN(std::unique_ptr<Plan> plan, builder.build(shapes, dtypes));
    if (plans_.size() >= kMaxPlans) {
      auto victim = std::find_if(plans_.begin(), plans_.end(),
                                 [&](const auto& p) { return p.get() != last_; });
      profile_seconds_.erase(victim->get());
      profile_runs_.erase(victim->get());
      plans_.erase(victim);
    }
    plans_.push_back(std::move(plan));
    Plan* p = plans_.back().get();
    if (plans_.size() == 1 || info_.kernels.empty()) {
      info_.kernels = p->kernels;
      info_.weights_bytes = p->weights_bytes;
    }
    info_.activation_bytes = std::max(info_.activation_bytes, p->arena_bytes);
    return p;
  }

  Status set_profiling(bool on) override {
    std::lock_guard<std::mutex> lock(mutex_);
    profile_ = on;
    profile_seconds_.clear();
    profile_runs_.clear();
    return {};
  }

  std::vector<runtime::LayerProfile> profile() const override {
    std::vector<runtime::LayerProfile> out;
    auto times = profile_seconds_.find(last_);
    if (times == profile_seconds_.end()) return out;
    const int runs = profile_runs_.at(last_);
    for (size_t i = 0; i < times->second.size(); ++i) {
      const Step& s = last_->steps[i];
      out.push_back({s.label, step_kind(s), 1e3 * times->second[i] / runs});
    }
    return out;
  }

  static const char* step_kind(const Step& s) {
    return s.kind == Step::Kind::kReference   ? "reference"
           : s.kind == Step::Kind::kPrimitive ? "onednn"
                                              : "copy/reorder";
  }

  void print_profile() const {
    for (const auto& [plan, times] : profile_seconds_) {
      const int runs = profile_runs_.at(plan);
      double total = 0;
      for (double t : times) total += t;
      std::vector<size_t> order(times.size());
      for (size_t i = 0; i < order.size(); ++i) order[i] = i;
      std::sort(order.begin(), order.end(),
                [&](size_t a, size_t b) { return times[a] > times[b]; });
      std::fprintf(stderr, "qforge cpu profile: %zu steps, %d runs, %.3f ms per run\n",
                   times.size(), runs, 1e3 * total / runs);
      std::map<std::string, double> by_kind;
      for (size_t i = 0; i < times.size(); ++i) {
        by_kind[step_kind(plan->steps[i])] += times[i];
      }
      for (const auto& [k, t] : by_kind) {
        std::fprintf(stderr, "  %-14s %8.3f ms\n", k.c_str(), 1e3 * t / runs);
      }
      for (size_t k = 0; k < std::min<size_t>(order.size(), 30); ++k) {
        const size_t i = order[k];
        std::fprintf(stderr, "  %8.3f ms  %s\n", 1e3 * times[i] / runs,
                     plan->steps[i].label.c_str());
      }
    }
  }

  std::unique_ptr<ir::Graph> graph_;
  std::map<std::string, float> scales_;
  std::map<std::string, runtime::QuantGrid> grids_;
  int threads_;
  dnnl::engine engine_;
  dnnl::stream stream_;
  WeightCache weights_;
  BuildContext ctx_;
  std::vector<std::unique_ptr<Plan>> plans_;
  Plan* last_ = nullptr;
  runtime::EngineInfo info_;
  std::mutex mutex_;
  bool profile_;
  std::map<const Plan*, std::vector<double>> profile_seconds_;
  std::map<const Plan*, int> profile_runs_;
};

class CpuBackend final : public runtime::Backend {
 public:
  std::string_view name() const override { return "cpu"; }

  bool supports(runtime::Precision p) const override { return unsupported_reason(p).empty(); }

  std::string unsupported_reason(runtime::Precision p) const override {
    switch (p) {
      case runtime::Precision::kFP32:
        return "";
      case runtime::Precision::kBF16:
        return bf16_unavailable_reason();
      case runtime::Precision::kFP16:
        return "";  // fp16 weights, fp32 arithmetic: see round_weights_to_fp16
      case runtime::Precision::kTF32:
        return "tf32 is a GPU (tensor core) format; use fp32 or bf16 on the CPU";
      case runtime::Precision::kINT8:
        return int8_unavailable_reason();
    }
    return "unknown precision";
  }

  std::string current_isa() const override { return isa_name(); }

  Result<std::unique_ptr<runtime::Engine>> build(
      std::unique_ptr<ir::Graph> graph, const runtime::BuildOptions& options) const override {
    if (const std::string why = unsupported_reason(options.precision); !why.empty()) {
      return unsupported("the cpu backend cannot build {}: {}",
                         runtime::precision_name(options.precision), why);
    }
    // The Q/DQ import, the optimizer, synthetic INT8 scales (loudly) and the checks of the
    // scales are shared with the cuda backend (quant/explicit_int8.h), so that both build the
    // same graph with the same scales.
    QF_ASSIGN_OR_RETURN(quant::PreparedBuild prepared, quant::prepare_build(*graph, options));
    if (options.precision == runtime::Precision::kFP16) round_weights_to_fp16(*graph);
    try {
      auto engine = std::make_unique<CpuEngine>(std::move(graph), prepared.options);
      engine->set_notes(std::move(prepared.notes));
      QF_RETURN_IF_ERROR(engine->prepare());
      return std::unique_ptr<runtime::Engine>(std::move(engine));
    } catch (const dnnl::error& e) {
      return internal_error("oneDNN: {} (status {})", e.what(), static_cast<int>(e.status));
    }
  }
};

const CpuBackend kBackend;
[[maybe_unused]] const bool kRegistered = runtime::register_backend(&kBackend);

}  // namespace
}  // namespace qf::cpu
