// The reference backend as a runtime::Backend: FP32 only, one reference kernel per node.
#include "backends/reference/executor.h"
#include "ir/op_registry.h"
#include "runtime/engine.h"

namespace qf::reference {
namespace {

constexpr const char* kIsa = "portable C++";

class ReferenceEngine final : public runtime::Engine {
 public:
  ReferenceEngine(std::unique_ptr<ir::Graph> graph, Executor executor)
      : graph_(std::move(graph)), executor_(std::move(executor)) {
    info_.backend = "reference";
    info_.precision = runtime::Precision::kFP32;
    info_.compute = "fp32 (naive reference kernels)";
    info_.isa = kIsa;
    for (const ir::Value* c : graph_->constants()) {
      info_.weights_bytes += static_cast<int64_t>(c->constant.nbytes());
    }
    for (const auto& n : graph_->nodes()) {
      info_.kernels.push_back(
          {n->name.empty() ? n->label() : n->name, n->op_type, "reference_" + n->op_type});
    }
  }
  const runtime::EngineInfo& info() const override { return info_; }
  const ir::Graph& graph() const override { return *graph_; }
  Result<std::vector<Tensor>> run(const std::vector<Tensor>& inputs) override {
    return executor_.run(inputs);
  }

 private:
  std::unique_ptr<ir::Graph> graph_;
  Executor executor_;
  runtime::EngineInfo info_;
};

class ReferenceBackend final : public runtime::Backend {
 public:
  std::string_view name() const override { return "reference"; }
  bool supports(runtime::Precision p) const override { return p == runtime::Precision::kFP32; }
  std::string current_isa() const override { return kIsa; }
  Result<std::unique_ptr<runtime::Engine>> build(
      std::unique_ptr<ir::Graph> graph, const runtime::BuildOptions& options) const override {
    if (!supports(options.precision)) {
      return unsupported("the reference backend runs fp32 only, not {}",
                         runtime::precision_name(options.precision));
    }
    QF_ASSIGN_OR_RETURN(Executor executor, Executor::create(*graph));
    return std::unique_ptr<runtime::Engine>(
        std::make_unique<ReferenceEngine>(std::move(graph), std::move(executor)));
  }
};

const ReferenceBackend kBackend;
[[maybe_unused]] const bool kRegistered = runtime::register_backend(&kBackend);

}  // namespace
}  // namespace qf::reference
