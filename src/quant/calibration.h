// Post-training calibration: run FP32 over calibration data and turn what every activation
// looked like into an INT8 scale per tensor.
//
// The model runs with every float activation made a graph output, so the statistics are those
// of the source model's tensors under their ONNX names (what a TensorRT calibration cache
// holds), before any fusion. Two passes over the data: the first finds max |x| per tensor, the
// second fills a 2048-bin histogram of |x| over [0, max]; MinMax needs only the first. Counts
// and maxima do not depend on batch order, so the result is bit-for-bit repeatable for the same
// data, method and backend. Graph inputs and their in-graph preprocessing (elementwise
// arithmetic with constants, reshapes) always get MinMax: their range is the data format's.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>

#include "data/calibration_data.h"
#include "ir/graph.h"
#include "qforge/status.h"
#include "quant/calib_method.h"

namespace qf::quant {

struct CalibrationOptions {
  CalibMethod method = CalibMethod::kEntropy;
  double percentile = 99.99;    // for kPercentile, in (0, 100]
  int64_t batch_size = 32;      // used when the model's batch dimension is dynamic
  int64_t max_batches = 0;      // 0: every sample
  std::string backend = "cpu";  // runs the FP32 model; "reference" when cpu is not built
  // Called after each batch: phase ("range" or "histogram"), batches done, batches in total.
  std::function<void(std::string_view phase, int64_t done, int64_t total)> progress;
};

struct CalibrationResult {
  std::map<std::string, float> scales;  // tensor name -> amax / 127 (0 for an all-zero tensor)
  std::map<std::string, float> amax;    // tensor name -> the chosen threshold
  int64_t samples = 0;                  // samples the statistics cover
  int64_t batch_size = 0;
  int64_t dropped = 0;  // samples left out because a static batch dimension did not divide them
  double seconds = 0;
};

// The float tensors whose values depend on a graph input: the ones an INT8 engine may need a
// scale for, and the names a calibration cache for this model must contain.
std::set<std::string> calibrated_tensor_names(const ir::Graph& graph);

// Consumes `graph` (the imported FP32 model; its outputs are rewritten). The data must fit the
// graph's inputs (data::open_samples checks that). Fails with kInvalidInput for a set too small
// for one batch.
Result<CalibrationResult> calibrate(std::unique_ptr<ir::Graph> graph, data::SampleSource& data,
                                    const CalibrationOptions& options);

// The per-sample input specs data::open_samples needs for `graph`'s inputs (shape without the
// first, batch dimension; every other dimension must be known).
Result<std::vector<data::InputSpec>> sample_specs(const ir::Graph& graph);

}  // namespace qf::quant
