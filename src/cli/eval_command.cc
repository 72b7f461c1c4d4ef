// qforge eval MODEL --data SAMPLES --labels LABELS: top-1/top-5 accuracy and timing of a
// classifier over a labelled data set (any source data::open_samples reads), in batches.
#include "bench/evaluation.h"
#include "cli/command.h"
#include "cli/progress.h"
#include "data/calibration_data.h"
#include "data/dataset.h"
#include "quant/calibration.h"
#include "runtime/engine.h"

namespace qf::cli {
namespace {

struct EvalOptions {
  std::string model;
  std::string data;
  std::string labels;
  int64_t batch = 100;
  int64_t limit = 0;
  std::string backend;  // add_engine_options: default_backend()
  std::string precision = "auto";
  std::string preprocess = "none";
};

Status eval_model(const EvalOptions& opt) {
  QF_ASSIGN_OR_RETURN(onnx_io::ImportedModel model, onnx_io::load_model(opt.model));
  if (model.graph->inputs.size() != 1 || model.graph->outputs.empty()) {
    return unsupported("eval needs a model with one input and a logits output");
  }
  QF_ASSIGN_OR_RETURN(std::vector<data::InputSpec> specs, quant::sample_specs(*model.graph));
  QF_ASSIGN_OR_RETURN(data::ImagePreprocess preprocess,
                      data::parse_image_preprocess(opt.preprocess));
  QF_ASSIGN_OR_RETURN(std::unique_ptr<data::SampleSource> samples,
                      data::open_samples(opt.data, specs, preprocess));
  QF_ASSIGN_OR_RETURN(Tensor labels, data::load_labels(opt.labels));
  if (labels.dim(0) != samples->size()) {
    return invalid_input("{} has {} samples but {} has {} labels", opt.data, samples->size(),
                         opt.labels, labels.dim(0));
  }
  QF_ASSIGN_OR_RETURN(std::unique_ptr<runtime::Engine> engine,
                      build_engine(std::move(model.graph), opt.backend, opt.precision));

  bench::EvalOptions eopt;
  eopt.batch = opt.batch;
  eopt.limit = opt.limit;
  eopt.labels = &labels;
  ProgressBar bar("evaluating");
  eopt.progress = [&bar](int64_t done, int64_t total) { bar.update("", done, total); };
  QF_ASSIGN_OR_RETURN(bench::EvalOutcome r, bench::evaluate(*engine, *samples, eopt));
  const double n = static_cast<double>(r.samples);
  fmt::print("model:    {}\n", opt.model);
  fmt::print("data:     {} ({} samples evaluated)\n", samples->describe(), r.samples);
  fmt::print("engine:   {} backend, {} ({})\n", engine->info().backend,
             runtime::precision_name(engine->info().precision), engine->info().compute);
  fmt::print("top-1:    {:.2f}%\n", 100.0 * double(r.top1) / n);
  fmt::print("top-5:    {:.2f}%\n", 100.0 * double(r.top5) / n);
  fmt::print("time:     {:.3f} s inference, {:.3f} ms/sample, {:.0f} samples/s\n", r.seconds,
             1e3 * r.seconds / n, n / r.seconds);
  return {};
}

}  // namespace

void add_eval_command(CLI::App& app, Dispatch& dispatch) {
  auto opt = std::make_shared<EvalOptions>();
  CLI::App* cmd =
      app.add_subcommand("eval", "Top-1/top-5 accuracy of a classifier on labelled data");
  cmd->add_option("model", opt->model, "ONNX model")->required();
  cmd->add_option("--data", opt->data,
                  "Samples: .npy (N x ...), .npz, IDX (gz or not), or a folder of .npy/.pb or "
                  "images")
      ->required();
  cmd->add_option("--labels", opt->labels, "Labels: IDX, .npy of integers or .txt")->required();
  cmd->add_option("--batch", opt->batch, "Batch size for dynamic-batch models")
      ->capture_default_str();
  cmd->add_option("--limit", opt->limit, "Evaluate only the first N samples");
  cmd->add_option("--preprocess", opt->preprocess, "Image preprocessing (image folders)")
      ->capture_default_str();
  add_engine_options(*cmd, opt->backend, opt->precision);
  cmd->callback([opt, &dispatch] { dispatch.handler = [opt] { return eval_model(*opt); }; });
}

}  // namespace qf::cli
