#include "quant/calibration.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <optional>

#include "ir/op_registry.h"
#include "ir/run_time_values.h"
#include "quant/calibrators.h"
#include "quant/histogram.h"
#include "runtime/engine.h"

namespace qf::quant {
namespace {

// The graph's float activations in a fixed order (graph inputs first, then node outputs in
// execution order), which is also the order of the observer engine's outputs.
std::vector<ir::Value*> observed_values(const ir::Graph& graph) {
  const std::set<std::string> names = calibrated_tensor_names(graph);
  std::vector<ir::Value*> values;
  for (ir::Value* v : graph.inputs) {
    if (names.count(v->name)) values.push_back(v);
  }
  for (const auto& n : graph.nodes()) {
    for (ir::Value* v : n->outputs) {
      if (v && names.count(v->name)) values.push_back(v);
    }
  }
  return values;
}

// The batch dimension the model fixes, if any input has a static first dimension.
std::optional<int64_t> fixed_batch_size(const ir::Graph& graph) {
  for (const ir::Value* in : graph.inputs) {
    if (in->shape && !in->shape->empty() && (*in->shape)[0].is_known()) {
      return (*in->shape)[0].value;
    }
  }
  return std::nullopt;
}

// Graph inputs and what in-graph preprocessing makes of them before the first real layer:
// tensors computed by elementwise arithmetic with constants or by reshaping from another such
// tensor. Their range is fixed by the data format (pixels in [0, 1], then normalised), nothing
// learnt, so clipping them loses information no later layer can recover; and their histograms
// are combs of a few hundred discrete values with a spike at the background value, which
// misleads the entropy search (Fashion-MNIST's normalised input is clipped at 40% of its range,
// costing 5 points of top-1). They are calibrated with MinMax whatever the method.
std::set<std::string> data_tensor_names(const ir::Graph& graph) {
  static const std::set<std::string> kPreprocessing = {
      "Sub",     "Div",     "Mul",       "Add",     "Cast",     "Identity",
      "Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze"};
  std::set<const ir::Value*> data(graph.inputs.begin(), graph.inputs.end());
  std::set<std::string> names;
  for (const ir::Value* v : graph.inputs) names.insert(v->name);
  for (const auto& n : graph.nodes()) {
    if (!kPreprocessing.count(n->op_type) || n->outputs.size() != 1 || !n->outputs[0]) continue;
    int data_inputs = 0, other_inputs = 0;
    for (const ir::Value* v : n->inputs) {
      if (!v) continue;
      if (data.count(v)) {
        ++data_inputs;
      } else if (!v->is_constant()) {
        ++other_inputs;
      }
    }
    if (data_inputs == 1 && other_inputs == 0) {
      data.insert(n->outputs[0]);
      names.insert(n->outputs[0]->name);
    }
  }
  return names;
}

float max_abs(const Tensor& t) {
  float m = 0.f;
  for (float v : t.span<float>()) m = std::max(m, std::abs(v));
  return m;
}

}  // namespace

std::set<std::string> calibrated_tensor_names(const ir::Graph& graph) {
  std::set<std::string> names;
  for (const ir::Value* v : ir::run_time_values(graph)) {
    if (v->dtype == DType::kF32) names.insert(v->name);
  }
  return names;
}

Result<std::vector<data::InputSpec>> sample_specs(const ir::Graph& graph) {
  std::vector<data::InputSpec> specs;
  for (const ir::Value* in : graph.inputs) {
    if (!in->shape || in->shape->empty()) {
      return unsupported(
          "input '{}': calibration needs a batched input shape (N x ...); give one "
          "with --shape {}=...",
          in->name, in->name);
    }
    data::InputSpec spec{in->name, in->dtype, {}};
    for (size_t i = 1; i < in->shape->size(); ++i) {
      const ir::Dim& d = (*in->shape)[i];
      if (!d.is_known()) {
        return unsupported("input '{}' has the dynamic dimension {} ({}); fix it with --shape",
                           in->name, i, ir::sym_shape_str(in->shape));
      }
      spec.sample_shape.push_back(d.value);
    }
    specs.push_back(std::move(spec));
  }
  return specs;
}

Result<CalibrationResult> calibrate(std::unique_ptr<ir::Graph> graph, data::SampleSource& data,
                                    const CalibrationOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  if (options.method == CalibMethod::kPercentile &&
      !(options.percentile > 0 && options.percentile <= 100)) {
    return usage_error("--percentile {}: must be in (0, 100]", options.percentile);
  }
  const int64_t samples = data.size();
  if (samples <= 0) return invalid_input("{}: no calibration samples", data.describe());
  const std::optional<int64_t> fixed_batch = fixed_batch_size(*graph);
  if (!fixed_batch && options.batch_size <= 0) {
    return usage_error("calibration batch size must be at least 1");
  }
  const int64_t batch = fixed_batch.value_or(std::min(options.batch_size, samples));
  int64_t batches = samples / batch;
  if (batches == 0) {
    return invalid_input("{}: {} samples are fewer than the model's fixed batch size {}",
                         data.describe(), samples, batch);
  }
  // A dynamic batch dimension takes the remainder as a last, smaller batch; a fixed one cannot.
  if (!fixed_batch && samples % batch != 0) ++batches;
  if (options.max_batches > 0) batches = std::min(batches, options.max_batches);
  auto batch_range = [&](int64_t b) {
    const int64_t begin = b * batch;
    return std::pair{begin, std::min(batch, samples - begin)};
  };

  const std::vector<ir::Value*> observed = observed_values(*graph);
  const std::set<std::string> data_tensors = data_tensor_names(*graph);
  if (observed.empty()) return unsupported("the model has no float activations to calibrate");
  graph->outputs = observed;
  const runtime::Backend* backend = runtime::find_backend(options.backend);
  if (!backend) backend = runtime::find_backend("reference");
  QF_ASSIGN_OR_RETURN(
      std::unique_ptr<runtime::Engine> engine,
      backend->build(std::move(graph), runtime::BuildOptions{runtime::Precision::kFP32}));

  // Pass 1: the range of every tensor.
  std::vector<float> maxima(observed.size(), 0.f);
  const bool needs_histogram = options.method != CalibMethod::kMinMax;
  const int64_t total_batches = batches * (needs_histogram ? 2 : 1);
  int64_t done = 0;
  auto run_batch = [&](int64_t b) -> Result<std::vector<Tensor>> {
    const auto [begin, count] = batch_range(b);
    QF_ASSIGN_OR_RETURN(std::vector<Tensor> inputs, data.batch(begin, count));
    auto outputs = engine->run(inputs);
    if (!outputs.ok()) {
      return outputs.status().with_context(
          fmt::format("calibration batch {} (samples {}..{}): ", b, begin, begin + count - 1));
    }
    if (options.progress) {
      options.progress(done < batches ? "range" : "histogram", done + 1, total_batches);
    }
    ++done;
    return outputs;
  };
  for (int64_t b = 0; b < batches; ++b) {
    QF_ASSIGN_OR_RETURN(std::vector<Tensor> outputs, run_batch(b));
    for (size_t i = 0; i < outputs.size(); ++i)
      maxima[i] = std::max(maxima[i], max_abs(outputs[i]));
  }

  CalibrationResult result;
  result.batch_size = batch;
  for (int64_t b = 0; b < batches; ++b) result.samples += batch_range(b).second;
  // Only what a fixed batch dimension forced out; --calib-batches is the user's own choice.
  const bool limited = options.max_batches > 0 && result.samples < samples - samples % batch;
  result.dropped = limited ? 0 : samples - result.samples;

  if (!needs_histogram) {
    for (size_t i = 0; i < observed.size(); ++i) result.amax[observed[i]->name] = maxima[i];
  } else {
    // Pass 2: histograms over each tensor's own range.
    std::vector<AbsHistogram> histograms;
    histograms.reserve(observed.size());
    for (float m : maxima) histograms.emplace_back(m);
    for (int64_t b = 0; b < batches; ++b) {
      QF_ASSIGN_OR_RETURN(std::vector<Tensor> outputs, run_batch(b));
      for (size_t i = 0; i < outputs.size(); ++i) histograms[i].add(outputs[i].span<float>());
    }
    for (size_t i = 0; i < observed.size(); ++i) {
      const AbsHistogram& h = histograms[i];
      float amax = 0.f;
      if (maxima[i] > 0.f && data_tensors.count(observed[i]->name)) {
        amax = maxima[i];
      } else if (maxima[i] > 0.f) {
        switch (options.method) {
          case CalibMethod::kEntropy:
            amax = entropy_amax(h);
            break;
          case CalibMethod::kPercentile:
            amax = percentile_amax(h, options.percentile);
            break;
          case CalibMethod::kMse:
            amax = mse_amax(h);
            break;
          case CalibMethod::kMinMax:
            amax = maxima[i];
            break;
        }
      }
      result.amax[observed[i]->name] = amax;
    }
  }
  for (const auto& [name, amax] : result.amax) result.scales[name] = amax / 127.f;
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

}  // namespace qf::quant
