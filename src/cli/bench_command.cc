// qforge bench MODEL: every precision side by side under trtexec's measurement method, with
// each precision's agreement with FP32 on the same inputs.
#include <fmt/ranges.h>

#include <chrono>
#include <random>
#include <sstream>

#include "bench/json_report.h"
#include "bench/timing_loop.h"
#include "cli/command.h"
#include "core/file_util.h"
#include "runtime/random_input.h"

#ifndef QFORGE_VERSION
#define QFORGE_VERSION "dev"
#endif

namespace qf::cli {
namespace {

struct BenchOptions {
  std::string model;
  std::string backend = "reference";
  std::string precisions;  // empty: all the backend supports
  std::string batches = "1";
  std::string percentiles = "90,95,99";
  std::vector<std::string> shapes;
  bench::TimingOptions timing;
  std::string json_path;
  uint64_t seed = 0;
  int threads = 0;
};

template <typename T>
Result<std::vector<T>> parse_list(const std::string& text, const std::string& option) {
  std::vector<T> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    std::istringstream in(item);
    T v{};
    if (!(in >> v) || !in.eof())
      return usage_error("{} '{}': '{}' is not a number", option, text, item);
    out.push_back(v);
  }
  if (out.empty()) return usage_error("{} is empty", option);
  return out;
}

Result<std::vector<runtime::Precision>> choose_precisions(const BenchOptions& opt,
                                                          const runtime::Backend& backend) {
  std::vector<runtime::Precision> out;
  if (opt.precisions.empty()) {
    for (auto p : {runtime::Precision::kFP32, runtime::Precision::kTF32, runtime::Precision::kFP16,
                   runtime::Precision::kBF16, runtime::Precision::kINT8}) {
      if (backend.supports(p)) {
        out.push_back(p);
      } else {
        fmt::print("note: {} is not available on the {} backend here; no row for it\n",
                   runtime::precision_name(p), backend.name());
      }
    }
    return out;
  }
  std::stringstream ss(opt.precisions);
  std::string item;
  while (std::getline(ss, item, ',')) {
    QF_ASSIGN_OR_RETURN(runtime::Precision p, runtime::parse_precision(item));
    if (!backend.supports(p)) {
      return unsupported("--precisions: {} is not supported by the {} backend on this machine",
                         item, backend.name());
    }
    out.push_back(p);
  }
  return out;
}

// The declared input shapes with the batch (dim 0) set; fixed batch dims must match.
Result<std::vector<Tensor>> make_inputs(const ir::Graph& g, int64_t batch, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<Tensor> inputs;
  for (const ir::Value* in : g.inputs) {
    if (!in->shape || in->shape->empty()) {
      return unsupported("input '{}' needs a declared shape with a batch dim", in->name);
    }
    Shape shape;
    for (size_t d = 0; d < in->shape->size(); ++d) {
      const ir::Dim& dim = (*in->shape)[d];
      if (d == 0) {
        if (dim.is_known() && dim.value != batch) {
          return usage_error("--batch {}: input '{}' has a fixed batch of {}", batch, in->name,
                             dim.value);
        }
        shape.push_back(batch);
      } else if (dim.is_known()) {
        shape.push_back(dim.value);
      } else {
        return usage_error("input '{}' has dynamic dim {} besides the batch: pass --shape",
                           in->name, d);
      }
    }
    QF_ASSIGN_OR_RETURN(Tensor t, runtime::random_tensor(in->dtype, shape, rng));
    inputs.push_back(std::move(t));
  }
  return inputs;
}

void print_table(const bench::BenchReport& report) {
  fmt::print("\n{:<10} {:>5}  {:>11} {:>11} {:>10} {:>12} {:>8}  {:>10} {:>9} {:>8}\n", "precision",
             "batch", "median ms", "p99 ms", "qps", "samples/s", "speedup", "top1 vs32", "SQNR dB",
             "cosine");
  for (const bench::BenchRow& r : report.rows) {
    double fp32_median = 0;
    for (const bench::BenchRow& base : report.rows) {
      if (base.precision == "fp32" && base.batch == r.batch) fp32_median = base.latency_ms.median;
    }
    const double p99 =
        r.latency_ms.percentiles.empty() ? 0 : r.latency_ms.percentiles.back().second;
    const std::string speedup =
        fp32_median > 0 ? fmt::format("{:.2f}x", fp32_median / r.latency_ms.median) : "-";
    std::string top1 = "-", sqnr = "-", cosine = "-";
    if (r.vs_fp32) {
      top1 = fmt::format("{:.2f}%", 100 * r.vs_fp32->top1_agreement);
      sqnr =
          std::isfinite(r.vs_fp32->sqnr_db) ? fmt::format("{:.1f}", r.vs_fp32->sqnr_db) : "exact";
      cosine = fmt::format("{:.6f}", r.vs_fp32->cosine);
    }
    fmt::print("{:<10} {:>5}  {:>11.3f} {:>11.3f} {:>10.1f} {:>12.1f} {:>8}  {:>10} {:>9} {:>8}\n",
               r.precision, r.batch, r.latency_ms.median, p99, r.throughput_qps,
               r.throughput_qps * double(r.batch), speedup, top1, sqnr, cosine);
    if (r.latency_ms.cov > 0.01) {
      fmt::print("  warning: timing is unstable (coefficient of variation {:.1f}% > 1%)\n",
                 100 * r.latency_ms.cov);
    }
  }
  fmt::print(
      "qps = queries (batches) per second; samples/s = batch x qps. Latency is host wall "
      "time per query.\n");
}

Status bench_model(const BenchOptions& opt) {
  const runtime::Backend* backend = runtime::find_backend(opt.backend);
  if (!backend) return usage_error("--backend {}: no such backend in this build", opt.backend);
  QF_ASSIGN_OR_RETURN(std::vector<int64_t> batches, parse_list<int64_t>(opt.batches, "--batch"));
  for (int64_t b : batches) {
    if (b <= 0) return usage_error("--batch {}: batch sizes must be positive", b);
  }
  QF_ASSIGN_OR_RETURN(std::vector<double> percentiles,
                      parse_list<double>(opt.percentiles, "--percentile"));
  if (opt.timing.iterations <= 0 || opt.timing.duration_s < 0 || opt.timing.warmup_ms < 0) {
    return usage_error("--iterations must be positive, --duration and --warmup non-negative");
  }
  QF_ASSIGN_OR_RETURN(std::vector<runtime::Precision> precisions, choose_precisions(opt, *backend));
  QF_ASSIGN_OR_RETURN(auto shapes, parse_shape_options(opt.shapes));

  bench::BenchReport report;
  report.qforge_version = QFORGE_VERSION;
  report.model_path = opt.model;
  report.backend = opt.backend;
  report.cpu = bench::cpu_model_name();
  bench::SteadyClock clock;

  // FP32 outputs per batch, the baseline every other precision is compared with.
  std::map<int64_t, std::vector<Tensor>> fp32_outputs;
  for (runtime::Precision precision : precisions) {
    QF_ASSIGN_OR_RETURN(onnx_io::ImportedModel model, onnx_io::load_model(opt.model));
    report.model_producer = model.producer;
    report.model_opset = model.graph->opset();
    QF_RETURN_IF_ERROR(apply_input_shapes(*model.graph, shapes));
    const auto build_start = std::chrono::steady_clock::now();
    QF_ASSIGN_OR_RETURN(
        std::unique_ptr<runtime::Engine> engine,
        backend->build(std::move(model.graph), {.precision = precision, .threads = opt.threads}));
    const double build_s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - build_start).count();
    for (int64_t batch : batches) {
      QF_ASSIGN_OR_RETURN(std::vector<Tensor> inputs,
                          make_inputs(engine->graph(), batch, opt.seed));
      QF_ASSIGN_OR_RETURN(std::vector<Tensor> first, engine->run(inputs));
      std::vector<Tensor> outputs;
      auto query = [&]() -> Status {
        QF_ASSIGN_OR_RETURN(outputs, engine->run(inputs));
        return {};
      };
      QF_ASSIGN_OR_RETURN(bench::TimingResult timing,
                          bench::run_timing_loop(opt.timing, clock, query));

      bench::BenchRow row;
      row.precision = std::string(runtime::precision_name(precision));
      row.backend = engine->info().backend;
      row.compute = engine->info().compute;
      row.batch = batch;
      row.latency_ms = bench::compute_stats(timing.latencies_ms, percentiles);
      row.queries = static_cast<int>(timing.latencies_ms.size());
      row.walltime_s = timing.walltime_s;
      row.throughput_qps = timing.walltime_s > 0 ? row.queries / timing.walltime_s : 0;
      row.weights_bytes = engine->info().weights_bytes;
      row.activation_bytes = engine->info().activation_bytes;
      row.build_s = build_s;
      if (precision == runtime::Precision::kFP32) {
        fp32_outputs[batch] = first;
      } else if (fp32_outputs.count(batch) && first[0].dtype() == DType::kF32) {
        row.vs_fp32 = bench::compare_outputs(fp32_outputs[batch][0], first[0]);
      }
      fmt::print("{} batch {}: {} queries in {:.2f} s ({})\n", row.precision, batch, row.queries,
                 row.walltime_s, row.compute);
      report.rows.push_back(std::move(row));
    }
  }
  print_table(report);
  if (!opt.json_path.empty()) {
    QF_RETURN_IF_ERROR(write_file_atomic(opt.json_path, bench::to_json(report).dump(2) + "\n"));
    fmt::print("wrote {}\n", opt.json_path);
  }
  return {};
}

}  // namespace

void add_bench_command(CLI::App& app, Dispatch& dispatch) {
  auto opt = std::make_shared<BenchOptions>();
  CLI::App* cmd = app.add_subcommand("bench", "Time every precision side by side (trtexec method)");
  cmd->add_option("model", opt->model, "ONNX model")->required();
  cmd->add_option("--backend", opt->backend, "Backend")->capture_default_str();
  cmd->add_option("--precisions", opt->precisions,
                  "Comma-separated precisions (default: all the backend supports here)");
  cmd->add_option("--batch", opt->batches, "Comma-separated batch sizes")->capture_default_str();
  cmd->add_option("--warmup", opt->timing.warmup_ms, "Warm-up time in ms")->capture_default_str();
  cmd->add_option("--duration", opt->timing.duration_s, "Minimum timed duration in s")
      ->capture_default_str();
  cmd->add_option("--iterations", opt->timing.iterations, "Minimum timed queries")
      ->capture_default_str();
  cmd->add_option("--percentile", opt->percentiles, "Latency percentiles to report")
      ->capture_default_str();
  cmd->add_option("--shape", opt->shapes, "Fix a dynamic input shape: NAME=1x3x224x224");
  cmd->add_option("--json", opt->json_path, "Write the summary (schema 1) to FILE");
  cmd->add_option("--threads", opt->threads, "CPU threads (0: all cores)")->capture_default_str();
  cmd->add_option("--seed", opt->seed, "Seed for the random inputs")->capture_default_str();
  cmd->callback([opt, &dispatch] { dispatch.handler = [opt] { return bench_model(*opt); }; });
}

}  // namespace qf::cli
