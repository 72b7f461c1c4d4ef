// qforge eval MODEL --data SAMPLES --labels LABELS: top-1/top-5 accuracy and timing of a
// classifier over a labelled data set (IDX or .npy), in batches.
#include <chrono>

#include "cli/command.h"
#include "data/dataset.h"
#include "runtime/engine.h"

namespace qf::cli {
namespace {

struct EvalOptions {
  std::string model;
  std::string data;
  std::string labels;
  int64_t batch = 100;
  int64_t limit = 0;
  std::string backend = "reference";
  std::string precision = "fp32";
};

Status eval_model(const EvalOptions& opt) {
  QF_ASSIGN_OR_RETURN(onnx_io::ImportedModel model, onnx_io::load_model(opt.model));
  if (model.graph->inputs.size() != 1 || model.graph->outputs.empty()) {
    return unsupported("eval needs a model with one input and a logits output");
  }
  QF_ASSIGN_OR_RETURN(std::unique_ptr<runtime::Engine> engine,
                      build_engine(std::move(model.graph), opt.backend, opt.precision));
  const ir::Graph& g = engine->graph();
  QF_ASSIGN_OR_RETURN(Tensor samples, data::load_samples(opt.data));
  QF_ASSIGN_OR_RETURN(Tensor labels, data::load_labels(opt.labels));
  if (labels.dim(0) != samples.dim(0)) {
    return invalid_input("{} has {} samples but {} has {} labels", opt.data, samples.dim(0),
                         opt.labels, labels.dim(0));
  }
  const ir::Value& input = *g.inputs[0];
  if (!input.shape || input.shape->empty()) {
    return unsupported("input '{}' needs a declared shape", input.name);
  }
  int64_t total = samples.dim(0);
  if (opt.limit > 0) total = std::min(total, opt.limit);
  const ir::Dim batch_dim = (*input.shape)[0];
  const int64_t batch = batch_dim.is_known() ? batch_dim.value : opt.batch;
  if (batch <= 0) return usage_error("--batch must be positive");

  int64_t top1 = 0, top5 = 0, seen = 0;
  double seconds = 0;
  for (int64_t begin = 0; begin < total; begin += batch) {
    const int64_t end = std::min(total, begin + batch);
    if (batch_dim.is_known() && end - begin != batch) break;  // fixed batch: drop the remainder
    Shape shape;
    for (const ir::Dim& d : *input.shape) shape.push_back(d.is_known() ? d.value : 1);
    shape[0] = end - begin;
    QF_ASSIGN_OR_RETURN(Tensor x, data::slice_batch(samples, begin, end, shape));
    const auto start = std::chrono::steady_clock::now();
    QF_ASSIGN_OR_RETURN(std::vector<Tensor> outputs, engine->run({x}));
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const Tensor& logits = outputs[0];
    if (logits.dtype() != DType::kF32 || logits.rank() != 2 || logits.dim(0) != end - begin) {
      return unsupported("output '{}' is {} {}; eval needs f32 logits of shape batch x classes",
                         g.outputs[0]->name, dtype_tag(logits.dtype()), shape_str(logits.shape()));
    }
    top1 += data::count_topk_correct(logits, labels, begin, 1);
    top5 += data::count_topk_correct(logits, labels, begin, 5);
    seen += end - begin;
  }
  if (seen == 0) return invalid_input("no complete batch of {} samples to evaluate", batch);
  fmt::print("model:    {}\n", opt.model);
  fmt::print("data:     {} ({} samples, batch {})\n", opt.data, seen, batch);
  fmt::print("engine:   {} backend, {} ({})\n", engine->info().backend,
             runtime::precision_name(engine->info().precision), engine->info().compute);
  fmt::print("top-1:    {:.2f}%\n", 100.0 * double(top1) / double(seen));
  fmt::print("top-5:    {:.2f}%\n", 100.0 * double(top5) / double(seen));
  fmt::print("time:     {:.3f} s inference, {:.3f} ms/sample, {:.0f} samples/s\n", seconds,
             1e3 * seconds / double(seen), double(seen) / seconds);
  return {};
}

}  // namespace

void add_eval_command(CLI::App& app, Dispatch& dispatch) {
  auto opt = std::make_shared<EvalOptions>();
  CLI::App* cmd =
      app.add_subcommand("eval", "Top-1/top-5 accuracy of a classifier on labelled data");
  cmd->add_option("model", opt->model, "ONNX model")->required();
  cmd->add_option("--data", opt->data, "Samples: IDX (gz or not) or .npy, N x ...")->required();
  cmd->add_option("--labels", opt->labels, "Labels: IDX, .npy of integers or .txt")->required();
  cmd->add_option("--batch", opt->batch, "Batch size for dynamic-batch models")
      ->capture_default_str();
  cmd->add_option("--limit", opt->limit, "Evaluate only the first N samples");
  add_engine_options(*cmd, opt->backend, opt->precision);
  cmd->callback([opt, &dispatch] { dispatch.handler = [opt] { return eval_model(*opt); }; });
}

}  // namespace qf::cli
