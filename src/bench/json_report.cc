#include "bench/json_report.h"

#include <cmath>
#include <fstream>

#include <fmt/format.h>

namespace qf::bench {

namespace {
// JSON has no infinity: an exact match's SQNR is written as null.
nlohmann::json finite_or_null(double v) {
  return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr);
}

nlohmann::json stats_json(const LatencyStats& s) {
  nlohmann::json j = {{"min", s.min},       {"max", s.max},       {"mean", s.mean},
                      {"median", s.median}, {"stddev", s.stddev}, {"cov", s.cov}};
  for (const auto& [p, v] : s.percentiles) j[fmt::format("p{:g}", p)] = v;
  return j;
}

nlohmann::json optional_stats_json(const std::optional<LatencyStats>& s) {
  return s ? stats_json(*s) : nlohmann::json(nullptr);
}

nlohmann::json optional_bool(const std::optional<bool>& b) {
  return b ? nlohmann::json(*b) : nlohmann::json(nullptr);
}

// null when the engine does not measure the split; a part is null when no query had it (no
// copies with --no-data-transfers).
nlohmann::json split_json(const std::optional<LatencySplit>& split) {
  if (!split) return nullptr;
  return {{"h2d", optional_stats_json(split->h2d_ms)},
          {"compute", stats_json(split->compute_ms)},
          {"d2h", optional_stats_json(split->d2h_ms)},
          {"enqueue", stats_json(split->enqueue_ms)}};
}
}  // namespace

nlohmann::json to_json(const BenchReport& report) {
  nlohmann::json results = nlohmann::json::array();
  for (const BenchRow& r : report.rows) {
    const nlohmann::json latency = stats_json(r.latency_ms);
    nlohmann::json accuracy = nlohmann::json::object();
    if (r.vs_fp32) {
      accuracy = {{"top1_vs_fp32", r.vs_fp32->top1_agreement},
                  {"cosine", r.vs_fp32->cosine},
                  {"sqnr_db", finite_or_null(r.vs_fp32->sqnr_db)},
                  {"max_abs_error", r.vs_fp32->max_abs_error}};
    }
    // Accuracy against labels applies to every row, the fp32 one included.
    if (r.vs_labels) {
      accuracy["top1"] = r.vs_labels->top1;
      accuracy["top5"] = r.vs_labels->top5;
      accuracy["eval_samples"] = r.vs_labels->samples;
    }
    results.push_back(
        {{"precision", r.precision},
         {"calib_method",
          r.calib_method.empty() ? nlohmann::json(nullptr) : nlohmann::json(r.calib_method)},
         {"source", r.source.empty() ? nlohmann::json(nullptr) : nlohmann::json(r.source)},
         {"backend", r.backend},
         {"compute", r.compute},
         {"batch", r.batch},
         {"streams", r.streams},
         {"latency_ms", latency},
         {"latency_split_ms", split_json(r.split)},
         {"data_transfers", r.data_transfers},
         {"cuda_graph", optional_bool(r.cuda_graph)},
         {"spin_wait", optional_bool(r.spin_wait)},
         {"throughput_qps", r.throughput_qps},
         {"throughput_samples_per_s", r.throughput_qps * static_cast<double>(r.batch)},
         {"queries", r.queries},
         {"walltime_s", r.walltime_s},
         {"accuracy", accuracy},
         {"weights_bytes", r.weights_bytes},
         {"activation_bytes", r.activation_bytes},
         {"build_s", r.build_s},
         {"calib_s", r.calib_s}});
    if (!r.profile.empty()) {
      nlohmann::json profile = nlohmann::json::array();
      for (const LayerTime& l : r.profile) {
        profile.push_back({{"name", l.name}, {"op", l.op}, {"impl", l.impl}, {"ms", l.ms}});
      }
      results.back()["profile"] = std::move(profile);
    }
  }
  return {{"schema", 1},
          {"qforge_version", report.qforge_version},
          {"model",
           {{"path", report.model_path},
            {"producer", report.model_producer},
            {"opset", report.model_opset}}},
          {"device",
           {{"backend", report.backend},
            {"cpu", report.cpu},
            {"gpu", report.gpu.empty() ? nlohmann::json(nullptr) : nlohmann::json(report.gpu)}}},
          {"results", results}};
}

std::string cpu_model_name() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      const size_t colon = line.find(':');
      if (colon != std::string::npos) return line.substr(line.find_first_not_of(' ', colon + 1));
    }
  }
  return "unknown";
}

}  // namespace qf::bench
