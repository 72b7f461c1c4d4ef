// `qforge bench --json FILE`: the versioned summary other tools read. Schema 1 fields are never
// renamed; new fields may be added (docs/ARCHITECTURE.md, "bench JSON").
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

#include "bench/accuracy.h"
#include "bench/latency_split.h"
#include "bench/statistics.h"

namespace qf::bench {

// One kernel's share of a profiled run (`--profile`).
struct LayerTime {
  std::string name;  // the node (or fused node) it implements
  std::string op;    // op or fused pattern
  std::string impl;  // kernel
  double ms = 0;     // mean time per query
};

// Accuracy against labels (`--eval DATA --labels FILE`).
struct LabelAccuracy {
  double top1 = 0;  // fractions in [0, 1]
  double top5 = 0;
  int64_t samples = 0;
};

struct BenchRow {
  std::string precision;
  std::string calib_method;  // empty unless INT8 from calibration; "qdq": the model's own scales
  std::string source;        // the compared model (`--compare`); empty for the benched model
  std::string backend;
  std::string compute;  // what the kernels really compute in
  int64_t batch = 1;
  int streams = 1;  // concurrent engines (`--streams`)
  LatencyStats latency_ms;
  // trtexec's split of the latency (H2D, GPU compute, D2H, enqueue); absent where the engine
  // does not measure it (reports say "n/a").
  std::optional<LatencySplit> split;
  // false: --no-data-transfers, the timed queries copied nothing between host and device.
  bool data_transfers = true;
  // Whether the timed queries replayed a CUDA graph and busy-waited; absent for backends that
  // have no such thing (the cpu backend).
  std::optional<bool> cuda_graph;
  std::optional<bool> spin_wait;
  double throughput_qps = 0;
  double walltime_s = 0;
  int queries = 0;
  std::optional<Agreement> vs_fp32;  // absent for the FP32 row itself
  std::optional<LabelAccuracy> vs_labels;
  std::vector<double> latencies_ms;  // every timed query in order (CDF, --export-times)
  std::vector<LayerTime> profile;    // empty unless profiled
  double calib_s = 0;                // calibration time (INT8 from data)
  int64_t weights_bytes = 0;
  int64_t activation_bytes = 0;
  double build_s = 0;
};

struct BenchReport {
  std::string qforge_version;
  std::string model_path;
  std::string model_producer;
  int64_t model_opset = 0;
  std::string backend;
  std::string cpu;
  std::string gpu;
  std::vector<BenchRow> rows;
};

nlohmann::json to_json(const BenchReport& report);

// "model name" from /proc/cpuinfo, or "unknown".
std::string cpu_model_name();

}  // namespace qf::bench
