// Running an engine over a data set: the logits of every sample and, with labels, top-1/top-5.
// Shared by `qforge eval` and `qforge bench --eval`.
#pragma once

#include <cstdint>
#include <functional>

#include "data/calibration_data.h"
#include "qforge/status.h"
#include "qforge/tensor.h"
#include "runtime/engine.h"

namespace qf::bench {

struct EvalOptions {
  int64_t batch = 100;             // for a dynamic batch dimension; a static one is used as it is
  int64_t limit = 0;               // 0: every sample
  const Tensor* labels = nullptr;  // s64, one per sample; nullptr: no accuracy
  std::function<void(int64_t done, int64_t total)> progress;
};

struct EvalOutcome {
  Tensor logits;  // f32, samples x classes: the first output of every evaluated sample
  int64_t samples = 0;
  int64_t top1 = 0;  // correct counts (0 without labels)
  int64_t top5 = 0;
  double seconds = 0;  // inference time only, without data loading
};

// Fails (kUnsupported) when the first output is not f32 batch x classes, (kInvalidInput) when
// the labels do not cover the samples. A static batch dimension drops the remainder.
Result<EvalOutcome> evaluate(runtime::Engine& engine, data::SampleSource& data,
                             const EvalOptions& options);

}  // namespace qf::bench
