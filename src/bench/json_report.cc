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
}  // namespace

nlohmann::json to_json(const BenchReport& report) {
  nlohmann::json results = nlohmann::json::array();
  for (const BenchRow& r : report.rows) {
    nlohmann::json latency = {{"min", r.latency_ms.min},       {"max", r.latency_ms.max},
                              {"mean", r.latency_ms.mean},     {"median", r.latency_ms.median},
                              {"stddev", r.latency_ms.stddev}, {"cov", r.latency_ms.cov}};
    for (const auto& [p, v] : r.latency_ms.percentiles) latency[fmt::format("p{:g}", p)] = v;
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
