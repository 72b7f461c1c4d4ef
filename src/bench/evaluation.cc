#include "bench/evaluation.h"

#include <algorithm>
#include <chrono>
#include <cstring>

#include "data/dataset.h"

namespace qf::bench {

Result<EvalOutcome> evaluate(runtime::Engine& engine, data::SampleSource& data,
                             const EvalOptions& options) {
  const ir::Graph& g = engine.graph();
  if (g.inputs.empty() || g.outputs.empty()) {
    return unsupported("evaluation needs a model with inputs and a logits output");
  }
  int64_t total = data.size();
  if (options.limit > 0) total = std::min(total, options.limit);
  if (options.labels && options.labels->dim(0) < total) {
    return invalid_input("{} has {} samples but only {} labels", data.describe(), total,
                         options.labels->dim(0));
  }
  const ir::Value& input = *g.inputs[0];
  const bool fixed = input.shape && !input.shape->empty() && (*input.shape)[0].is_known();
  const int64_t batch = fixed ? (*input.shape)[0].value : options.batch;
  if (batch <= 0) return usage_error("evaluation batch size must be positive");
  if (fixed) total -= total % batch;
  if (total <= 0) {
    return invalid_input("{}: no complete batch of {} samples to evaluate", data.describe(), batch);
  }

  EvalOutcome out;
  int64_t classes = 0;
  for (int64_t begin = 0; begin < total; begin += batch) {
    const int64_t count = std::min(batch, total - begin);
    QF_ASSIGN_OR_RETURN(std::vector<Tensor> inputs, data.batch(begin, count));
    const auto start = std::chrono::steady_clock::now();
    QF_ASSIGN_OR_RETURN(std::vector<Tensor> outputs, engine.run(inputs));
    out.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const Tensor& logits = outputs[0];
    if (logits.dtype() != DType::kF32 || logits.rank() != 2 || logits.dim(0) != count) {
      return unsupported(
          "output '{}' is {} {}; evaluation needs f32 logits of shape batch x "
          "classes",
          g.outputs[0]->name, dtype_tag(logits.dtype()), shape_str(logits.shape()));
    }
    if (!out.logits.defined()) {
      classes = logits.dim(1);
      out.logits = Tensor(DType::kF32, {total, classes});
    }
    std::memcpy(out.logits.span<float>().data() + begin * classes, logits.span<float>().data(),
                sizeof(float) * count * classes);
    if (options.labels) {
      out.top1 += data::count_topk_correct(logits, *options.labels, begin, 1);
      out.top5 += data::count_topk_correct(logits, *options.labels, begin, 5);
    }
    out.samples += count;
    if (options.progress) options.progress(out.samples, total);
  }
  return out;
}

}  // namespace qf::bench
