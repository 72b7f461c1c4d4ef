// qforge bench MODEL: every precision side by side under trtexec's measurement method, with
// what each costs in accuracy: agreement with FP32 on the same inputs and, with --eval and
// --labels, top-1/top-5 on labelled data. INT8 appears once per calibration method.
#include <fmt/ranges.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <random>
#include <sstream>
#include <thread>

#include "bench/evaluation.h"
#include "bench/html_report.h"
#include "bench/json_report.h"
#include "bench/markdown_report.h"
#include "bench/timing_loop.h"
#include "cli/calibration_options.h"
#include "cli/command.h"
#include "cli/progress.h"
#include "cli/timing_cache_option.h"
#include "core/file_util.h"
#include "data/dataset.h"
#include "quant/calibration.h"
#include "quant/qdq_import.h"
#include "runtime/gpu_isa.h"
#include "runtime/random_input.h"

#ifndef QFORGE_VERSION
#define QFORGE_VERSION "dev"
#endif

namespace qf::cli {
namespace {

struct BenchOptions {
  std::string model;
  std::string backend;
  std::string precisions;  // empty: all the backend supports
  std::string batches = "1";
  std::string percentiles = "90,95,99";
  std::vector<std::string> shapes;
  bench::TimingOptions timing;
  std::string json_path;
  std::string report_dir;
  std::string export_times;
  bool profile = false;
  uint64_t seed = 0;
  int threads = 0;
  int streams = 1;
  std::string timing_cache;
  CalibrationCliOptions calibration;
  std::string calib_methods = "entropy";
  std::vector<std::string> compare;
  std::string eval_data;
  std::string labels;
  int64_t eval_limit = 0;
  // trtexec's run-time switches (--noDataTransfers, --useCudaGraph, --useSpinWait) for engines on
  // a device; the cpu and reference backends refuse them.
  bool no_data_transfers = false;
  std::string cuda_graph;  // "", "on", "off"; "": the engine's default (on)
  bool spin_wait = false;
};

// One row family of the table: a precision, and for INT8 where its scales come from.
struct RowSpec {
  runtime::Precision precision;
  std::string calib_method;  // "entropy".. from data, "cache", "synthetic", "qdq"; "" for float
  std::string model;         // another model (--compare); empty: the benched one
};

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

template <typename T>
Result<std::vector<T>> parse_list(const std::string& text, const std::string& option) {
  std::vector<T> out;
  for (const std::string& item : split_list(text)) {
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
        fmt::print("note: no {} row: {}\n", runtime::precision_name(p),
                   backend.unsupported_reason(p));
      }
    }
    return out;
  }
  // FP32 is the baseline of every speedup and accuracy column, so it always runs first.
  out.push_back(runtime::Precision::kFP32);
  for (const std::string& item : split_list(opt.precisions)) {
    QF_ASSIGN_OR_RETURN(runtime::Precision p, runtime::parse_precision(item));
    if (const std::string why = backend.unsupported_reason(p); !why.empty()) {
      return unsupported("--precisions {}: the {} backend cannot run it here: {}", item,
                         backend.name(), why);
    }
    if (std::find(out.begin(), out.end(), p) == out.end()) out.push_back(p);
  }
  return out;
}

Result<std::vector<RowSpec>> plan_rows(const BenchOptions& opt, const runtime::Backend& backend) {
  QF_ASSIGN_OR_RETURN(std::vector<runtime::Precision> precisions, choose_precisions(opt, backend));
  const std::vector<std::string> methods = split_list(opt.calib_methods);
  if (methods.empty()) return usage_error("--calib-method is empty");
  for (const std::string& m : methods) QF_RETURN_IF_ERROR(quant::parse_calib_method(m).status());
  const bool cache_exists =
      !opt.calibration.cache.empty() && std::filesystem::exists(opt.calibration.cache);
  if (!opt.calibration.cache.empty() && methods.size() > 1) {
    return usage_error("--calib-cache holds one method's scales; give one --calib-method");
  }
  std::vector<RowSpec> rows;
  for (runtime::Precision p : precisions) {
    if (p != runtime::Precision::kINT8) {
      rows.push_back({p, "", ""});
    } else if (cache_exists) {
      rows.push_back({p, "cache", ""});
    } else if (!opt.calibration.data.empty()) {
      for (const std::string& m : methods) rows.push_back({p, m, ""});
    } else if (!opt.precisions.empty()) {
      return usage_error("--precisions int8 needs calibration: --calib DATA or --calib-cache FILE");
    } else {
      fmt::print(
          "note: the int8 row uses synthetic scales (no --calib): its speed is real, its "
          "accuracy is not\n");
      rows.push_back({p, "synthetic", ""});
    }
  }
  // A compared model runs as it is meant to: INT8 with its own scales when it carries Q/DQ
  // nodes (a QAT export, `qforge quantize`), else FP32.
  for (const std::string& other : opt.compare) {
    QF_ASSIGN_OR_RETURN(onnx_io::ImportedModel m, onnx_io::load_model(other));
    const bool qdq = quant::has_qdq(*m.graph) && backend.supports(runtime::Precision::kINT8);
    rows.push_back(qdq ? RowSpec{runtime::Precision::kINT8, "qdq", other}
                       : RowSpec{runtime::Precision::kFP32, "", other});
  }
  return rows;
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

std::string row_name(const bench::BenchRow& r) {
  std::string name = r.calib_method.empty() ? r.precision : r.precision + "/" + r.calib_method;
  if (!r.source.empty()) name += " " + std::filesystem::path(r.source).filename().string();
  return name;
}

void print_table(const bench::BenchReport& report) {
  const bool labelled = std::any_of(report.rows.begin(), report.rows.end(),
                                    [](const bench::BenchRow& r) { return r.vs_labels; });
  fmt::print("\n{:<16} {:>5}  {:>10} {:>10} {:>9} {:>11} {:>8}  {:>9} {:>8} {:>9}", "precision",
             "batch", "median ms", "p99 ms", "qps", "samples/s", "speedup", "top1 vs32", "SQNR dB",
             "cosine");
  if (labelled) fmt::print(" {:>7} {:>7} {:>7}", "top-1", "Δ fp32", "top-5");
  fmt::print("\n");
  for (const bench::BenchRow& r : report.rows) {
    const bench::BenchRow* base = nullptr;
    for (const bench::BenchRow& b : report.rows) {
      if (b.precision == "fp32" && b.batch == r.batch) base = &b;
    }
    const double p99 =
        r.latency_ms.percentiles.empty() ? 0 : r.latency_ms.percentiles.back().second;
    const std::string speedup =
        base ? fmt::format("{:.2f}x", base->latency_ms.median / r.latency_ms.median) : "-";
    std::string top1 = "-", sqnr = "-", cosine = "-";
    if (r.vs_fp32) {
      top1 = fmt::format("{:.2f}%", 100 * r.vs_fp32->top1_agreement);
      sqnr =
          std::isfinite(r.vs_fp32->sqnr_db) ? fmt::format("{:.1f}", r.vs_fp32->sqnr_db) : "exact";
      cosine = fmt::format("{:.6f}", r.vs_fp32->cosine);
    }
    fmt::print("{:<16} {:>5}  {:>10.3f} {:>10.3f} {:>9.1f} {:>11.1f} {:>8}  {:>9} {:>8} {:>9}",
               row_name(r), r.batch, r.latency_ms.median, p99, r.throughput_qps,
               r.throughput_qps * double(r.batch), speedup, top1, sqnr, cosine);
    if (labelled && r.vs_labels) {
      const std::string delta =
          base && base->vs_labels
              ? fmt::format("{:+.2f}", 100 * (r.vs_labels->top1 - base->vs_labels->top1))
              : "-";
      fmt::print(" {:>6.2f}% {:>7} {:>6.2f}%", 100 * r.vs_labels->top1, delta,
                 100 * r.vs_labels->top5);
    }
    fmt::print("\n");
    if (r.latency_ms.cov > 0.01) {
      fmt::print("  warning: timing is unstable (coefficient of variation {:.1f}% > 1%)\n",
                 100 * r.latency_ms.cov);
    }
  }
  fmt::print(
      "qps = queries (batches) per second; samples/s = batch x qps. Latency is host wall "
      "time per query.");
  if (labelled) fmt::print(" top-1/top-5 on the --eval data; Δ fp32 in points.");
  if (std::any_of(report.rows.begin(), report.rows.end(),
                  [](const bench::BenchRow& r) { return !r.data_transfers; })) {
    fmt::print(
        " --no-data-transfers: inputs were copied to the device once, outputs not copied "
        "back; latency is compute only.");
  }
  fmt::print("\n");
}

// A TextTable as aligned plain text: numeric columns right-aligned, the others left.
void print_text_table(const bench::TextTable& t) {
  std::vector<size_t> width(t.header.size(), 0);
  for (size_t c = 0; c < t.header.size(); ++c) width[c] = t.header[c].size();
  for (const auto& row : t.rows) {
    for (size_t c = 0; c < row.size() && c < width.size(); ++c)
      width[c] = std::max(width[c], row[c].size());
  }
  auto line = [&](const std::vector<std::string>& cells) {
    std::string out;
    for (size_t c = 0; c < cells.size() && c < width.size(); ++c) {
      const bool right = c < t.numeric.size() && t.numeric[c];
      out += c == 0 ? "" : "  ";
      out += right ? fmt::format("{:>{}}", cells[c], width[c])
                   : fmt::format("{:<{}}", cells[c], width[c]);
    }
    while (!out.empty() && out.back() == ' ') out.pop_back();
    fmt::print("{}\n", out);
  };
  line(t.header);
  for (const auto& row : t.rows) line(row);
}

void print_split(const bench::BenchReport& report) {
  const bench::TextTable split = bench::split_table(report);
  if (!split.rows.empty()) {
    fmt::print("\nlatency split\n");
    print_text_table(split);
  }
  fmt::print("{}\n", bench::split_note(report));
}

// Applies trtexec's run-time switches to one engine and asks it for the timing breakdown. A
// switch the engine does not have (a cpu engine has no CUDA graph) is a usage error naming the
// flag; the breakdown is optional, and without it the reports say n/a. Returns whether the
// engine splits its runs.
Result<bool> configure_engine(runtime::Engine& engine, const BenchOptions& opt) {
  if (!opt.cuda_graph.empty()) {
    runtime::RunOptions o;
    o.cuda_graph = opt.cuda_graph == "on";
    if (const Status s = engine.set_run_options(o); !s.ok()) {
      return usage_error("--cuda-graph {}: {}; it applies to --backend cuda", opt.cuda_graph,
                         s.message());
    }
  }
  if (opt.spin_wait) {
    runtime::RunOptions o;
    o.spin_wait = true;
    if (const Status s = engine.set_run_options(o); !s.ok()) {
      return usage_error("--spin-wait: {}; it applies to --backend cuda", s.message());
    }
  }
  return engine.set_timing_breakdown(true).ok();
}

// After an engine's first, untimed run (which uploaded the inputs --no-data-transfers keeps on
// the device, and captured the CUDA graph): whether it can run without transfers at all.
Status check_no_data_transfers(runtime::Engine& engine, const BenchOptions& opt) {
  if (!opt.no_data_transfers) return {};
  if (const Status s = engine.run_on_device(); !s.ok()) {
    if (s.code() != StatusCode::kUnsupported) return s;
    return usage_error("--no-data-transfers: {}; it applies to --backend cuda", s.message());
  }
  return {};
}

void print_profile(const bench::BenchRow& r) {
  std::vector<bench::LayerTime> layers = r.profile;
  double total = 0;
  for (const auto& l : layers) total += l.ms;
  std::stable_sort(layers.begin(), layers.end(),
                   [](const auto& a, const auto& b) { return a.ms > b.ms; });
  fmt::print("\nprofile: {} batch {} ({} kernels, {:.3f} ms per query)\n", row_name(r), r.batch,
             layers.size(), total);
  // Where the time goes by kind of kernel first: a per-layer list hides many small ones.
  std::map<std::string, double> by_kind;
  for (const auto& l : layers) by_kind[l.op] += l.ms;
  std::vector<std::pair<std::string, double>> kinds(by_kind.begin(), by_kind.end());
  std::stable_sort(kinds.begin(), kinds.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  std::string summary;
  for (const auto& [kind, ms] : kinds) {
    summary += fmt::format("{}{} {:.3f} ms", summary.empty() ? "" : ", ", kind, ms);
  }
  fmt::print("  by kind: {}\n", summary);
  for (size_t i = 0; i < std::min<size_t>(layers.size(), 15); ++i) {
    fmt::print("  {:>8.3f} ms {:>5.1f}%  {:<12} {}\n", layers[i].ms,
               total > 0 ? 100 * layers[i].ms / total : 0.0, layers[i].op, layers[i].name);
  }
}

// The labelled data of --eval/--labels, opened once for every row.
struct EvalData {
  std::unique_ptr<data::SampleSource> samples;
  Tensor labels;
};

Result<std::optional<EvalData>> open_eval_data(const BenchOptions& opt, const ir::Graph& graph) {
  if (opt.eval_data.empty() != opt.labels.empty()) {
    return usage_error("--eval and --labels go together");
  }
  if (opt.eval_data.empty()) return std::optional<EvalData>();
  EvalData e;
  QF_ASSIGN_OR_RETURN(std::vector<data::InputSpec> specs, quant::sample_specs(graph));
  QF_ASSIGN_OR_RETURN(data::ImagePreprocess pre,
                      data::parse_image_preprocess(opt.calibration.preprocess));
  QF_ASSIGN_OR_RETURN(e.samples, data::open_samples(opt.eval_data, specs, pre));
  QF_ASSIGN_OR_RETURN(e.labels, data::load_labels(opt.labels));
  if (e.labels.dim(0) != e.samples->size()) {
    return usage_error("--labels {} has {} labels but --eval {} has {} samples", opt.labels,
                       e.labels.dim(0), opt.eval_data, e.samples->size());
  }
  return std::optional<EvalData>(std::move(e));
}

Status bench_model(BenchOptions opt) {
  if (opt.backend.empty()) opt.backend = default_backend();
  const runtime::Backend* backend = runtime::find_backend(opt.backend);
  if (!backend) return usage_error("--backend {}: no such backend in this build", opt.backend);
  QF_ASSIGN_OR_RETURN(std::vector<int64_t> batches, parse_list<int64_t>(opt.batches, "--batch"));
  for (int64_t b : batches) {
    if (b <= 0) return usage_error("--batch {}: batch sizes must be positive", b);
  }
  QF_ASSIGN_OR_RETURN(std::vector<double> percentiles,
                      parse_list<double>(opt.percentiles, "--percentile"));
  if (opt.streams < 1) return usage_error("--streams {}: must be at least 1", opt.streams);
  if (opt.timing.iterations <= 0 || opt.timing.duration_s < 0 || opt.timing.warmup_ms < 0) {
    return usage_error("--iterations must be positive, --duration and --warmup non-negative");
  }
  if (!opt.cuda_graph.empty() && opt.cuda_graph != "on" && opt.cuda_graph != "off") {
    return usage_error("--cuda-graph {}: expected on or off", opt.cuda_graph);
  }
  QF_ASSIGN_OR_RETURN(std::vector<RowSpec> rows, plan_rows(opt, *backend));
  QF_ASSIGN_OR_RETURN(auto shapes, parse_shape_options(opt.shapes));
  QF_ASSIGN_OR_RETURN(std::string model_bytes, read_file_bytes(opt.model));

  bench::BenchReport report;
  report.qforge_version = QFORGE_VERSION;
  report.model_path = opt.model;
  report.backend = opt.backend;
  report.cpu = bench::cpu_model_name();
  bench::SteadyClock clock;

  std::optional<EvalData> eval;
  std::map<int64_t, std::vector<Tensor>> fp32_outputs;  // per batch: the agreement baseline
  Tensor fp32_eval_logits;
  for (const RowSpec& spec : rows) {
    std::string compared_bytes;
    if (!spec.model.empty()) {
      QF_ASSIGN_OR_RETURN(compared_bytes, read_file_bytes(spec.model));
    }
    const std::string& bytes = spec.model.empty() ? model_bytes : compared_bytes;
    const std::string& model_path = spec.model.empty() ? opt.model : spec.model;
    QF_ASSIGN_OR_RETURN(onnx_io::ImportedModel model,
                        onnx_io::import_model_bytes(bytes, model_path));
    if (spec.model.empty()) {
      report.model_producer = model.producer;
      report.model_opset = model.graph->opset();
    }
    QF_RETURN_IF_ERROR(apply_input_shapes(*model.graph, shapes));
    if (!eval) {
      QF_ASSIGN_OR_RETURN(eval, open_eval_data(opt, *model.graph));
    }

    runtime::BuildOptions build_options{.precision = spec.precision, .threads = opt.threads};
    QF_ASSIGN_OR_RETURN(build_options.timing_cache, timing_cache_for(*backend, opt.timing_cache));
    double calib_s = 0;
    if (spec.calib_method != "" && spec.calib_method != "synthetic" && spec.calib_method != "qdq") {
      const auto calib_start = std::chrono::steady_clock::now();
      QF_ASSIGN_OR_RETURN(
          quant::CalibMethod method,
          quant::parse_calib_method(spec.calib_method == "cache" ? opt.calib_methods
                                                                 : spec.calib_method));
      QF_ASSIGN_OR_RETURN(Int8Scales scales, obtain_int8_scales(opt.calibration, method,
                                                                model_bytes, opt.model, shapes));
      build_options.activation_scales = std::move(scales.cache.scales);
      build_options.calibration = std::move(scales.description);
      calib_s =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - calib_start).count();
    }
    if (opt.streams > 1 && opt.threads == 0) {
      // Streams share the cores rather than each claiming all of them.
      build_options.threads =
          std::max(1, static_cast<int>(std::thread::hardware_concurrency()) / opt.streams);
    }
    const auto build_start = std::chrono::steady_clock::now();
    QF_ASSIGN_OR_RETURN(std::unique_ptr<runtime::Engine> engine,
                        backend->build(std::move(model.graph), build_options));
    const double build_s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - build_start).count();
    QF_ASSIGN_OR_RETURN(const bool split, configure_engine(*engine, opt));
    if (report.gpu.empty() && runtime::parse_gpu_isa(engine->info().isa)) {
      report.gpu = engine->info().isa;
    }
    // One more engine per extra stream (an engine runs one query at a time).
    std::vector<std::unique_ptr<runtime::Engine>> stream_engines;
    for (int s = 1; s < opt.streams; ++s) {
      QF_ASSIGN_OR_RETURN(onnx_io::ImportedModel copy,
                          onnx_io::import_model_bytes(bytes, model_path));
      QF_RETURN_IF_ERROR(apply_input_shapes(*copy.graph, shapes));
      QF_ASSIGN_OR_RETURN(std::unique_ptr<runtime::Engine> e,
                          backend->build(std::move(copy.graph), build_options));
      QF_RETURN_IF_ERROR(configure_engine(*e, opt).status());
      stream_engines.push_back(std::move(e));
    }

    std::optional<bench::LabelAccuracy> accuracy;
    std::optional<bench::Agreement> eval_agreement;
    if (eval) {
      bench::EvalOptions eopt;
      eopt.labels = &eval->labels;
      eopt.limit = opt.eval_limit;
      ProgressBar bar("evaluating " + std::string(runtime::precision_name(spec.precision)));
      eopt.progress = [&bar](int64_t done, int64_t total) { bar.update("", done, total); };
      QF_ASSIGN_OR_RETURN(bench::EvalOutcome r, bench::evaluate(*engine, *eval->samples, eopt));
      const double n = static_cast<double>(r.samples);
      accuracy = bench::LabelAccuracy{double(r.top1) / n, double(r.top5) / n, r.samples};
      if (spec.precision == runtime::Precision::kFP32) {
        fp32_eval_logits = std::move(r.logits);
      } else if (fp32_eval_logits.defined()) {
        eval_agreement = bench::compare_outputs(fp32_eval_logits, r.logits);
      }
    }

    for (int64_t batch : batches) {
      QF_ASSIGN_OR_RETURN(std::vector<Tensor> inputs,
                          make_inputs(engine->graph(), batch, opt.seed));
      QF_ASSIGN_OR_RETURN(std::vector<Tensor> first, engine->run(inputs));
      QF_RETURN_IF_ERROR(check_no_data_transfers(*engine, opt));
      for (auto& e : stream_engines) {
        QF_RETURN_IF_ERROR(e->run(inputs).status());
        QF_RETURN_IF_ERROR(check_no_data_transfers(*e, opt));
      }
      if (opt.profile) QF_RETURN_IF_ERROR(engine->set_profiling(true));
      std::vector<Tensor> outputs;
      auto query = [&]() -> Status {
        if (opt.no_data_transfers) return engine->run_on_device();
        QF_ASSIGN_OR_RETURN(outputs, engine->run(inputs));
        return {};
      };
      // One recorder per engine, each filled on its own stream's thread.
      std::vector<bench::SplitRecorder> splits(stream_engines.size() + 1);
      std::vector<std::function<void()>> hooks;
      if (split) {
        hooks.push_back([&splits, e = engine.get()] { splits[0].add(e->last_run_timing()); });
        for (size_t s = 0; s < stream_engines.size(); ++s) {
          hooks.push_back([&splits, s, e = stream_engines[s].get()] {
            splits[s + 1].add(e->last_run_timing());
          });
        }
      }
      bench::TimingResult timing;
      if (stream_engines.empty()) {
        QF_ASSIGN_OR_RETURN(
            timing, bench::run_timing_loop(opt.timing, clock, query, split ? hooks[0] : nullptr));
      } else {
        std::vector<bench::SteadyClock> clocks(stream_engines.size() + 1);
        std::vector<bench::Clock*> clock_ptrs;
        std::vector<std::function<Status()>> queries = {query};
        for (auto& c : clocks) clock_ptrs.push_back(&c);
        for (auto& e : stream_engines) {
          queries.push_back([&inputs, &opt, engine = e.get()]() -> Status {
            if (opt.no_data_transfers) return engine->run_on_device();
            return engine->run(inputs).status();
          });
        }
        QF_ASSIGN_OR_RETURN(
            timing, bench::run_concurrent_timing_loops(opt.timing, clock_ptrs, queries, hooks));
      }

      bench::BenchRow row;
      row.precision = std::string(runtime::precision_name(spec.precision));
      row.calib_method = spec.calib_method;
      row.source = spec.model;
      row.backend = engine->info().backend;
      row.compute = engine->info().compute;
      row.batch = batch;
      row.streams = opt.streams;
      row.latency_ms = bench::compute_stats(timing.latencies_ms, percentiles);
      if (split) {
        for (size_t s = 1; s < splits.size(); ++s) splits[0].append(splits[s]);
        row.split = splits[0].summarize(percentiles);
      }
      row.data_transfers = !opt.no_data_transfers;
      const runtime::RunOptions ran = engine->run_options();
      row.cuda_graph = ran.cuda_graph;
      row.spin_wait = ran.spin_wait;
      row.latencies_ms = timing.latencies_ms;
      row.queries = static_cast<int>(timing.latencies_ms.size());
      row.walltime_s = timing.walltime_s;
      row.throughput_qps = timing.walltime_s > 0 ? row.queries / timing.walltime_s : 0;
      row.weights_bytes = engine->info().weights_bytes;
      row.activation_bytes = engine->info().activation_bytes;
      row.build_s = build_s;
      row.calib_s = calib_s;
      row.vs_labels = accuracy;
      if (opt.profile) {
        for (const runtime::LayerProfile& l : engine->profile()) {
          row.profile.push_back({.name = l.name, .op = l.kind, .impl = "", .ms = l.ms});
        }
        QF_RETURN_IF_ERROR(engine->set_profiling(false));
      }
      // Agreement is measured on the labelled data when there is some (many samples), else on
      // the timed random batch.
      if (spec.precision == runtime::Precision::kFP32) {
        fp32_outputs[batch] = first;
      } else if (eval_agreement) {
        row.vs_fp32 = eval_agreement;
      } else if (fp32_outputs.count(batch) && first[0].dtype() == DType::kF32) {
        row.vs_fp32 = bench::compare_outputs(fp32_outputs[batch][0], first[0]);
      }
      const std::string mode = bench::run_mode(row);
      fmt::print("{} batch {}: {} queries in {:.2f} s ({}{}{})\n", row_name(row), batch,
                 row.queries, row.walltime_s, row.compute, mode == "-" ? "" : "; ",
                 mode == "-" ? "" : mode);
      report.rows.push_back(std::move(row));
    }
  }
  if (!report.gpu.empty()) fmt::print("\nGPU: {}\n", report.gpu);
  print_table(report);
  print_split(report);
  for (const bench::BenchRow& r : report.rows) {
    if (!r.profile.empty()) print_profile(r);
  }
  if (!opt.json_path.empty()) {
    QF_RETURN_IF_ERROR(write_file_atomic(opt.json_path, bench::to_json(report).dump(2) + "\n"));
    fmt::print("wrote {}\n", opt.json_path);
  }
  if (!opt.export_times.empty()) {
    nlohmann::json times = nlohmann::json::array();
    for (const bench::BenchRow& r : report.rows) {
      times.push_back({{"precision", r.precision},
                       {"calib_method", r.calib_method},
                       {"batch", r.batch},
                       {"latency_ms", r.latencies_ms}});
    }
    QF_RETURN_IF_ERROR(write_file_atomic(opt.export_times, times.dump(1) + "\n"));
    fmt::print("wrote {}\n", opt.export_times);
  }
  if (!opt.report_dir.empty()) {
    const std::filesystem::path dir(opt.report_dir);
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec)
      return invalid_input("{}: cannot create the report folder: {}", opt.report_dir, ec.message());
    QF_RETURN_IF_ERROR(write_file_atomic(dir / "report.json", bench::to_json(report).dump(2)));
    QF_RETURN_IF_ERROR(write_file_atomic(dir / "report.md", bench::to_markdown(report)));
    QF_RETURN_IF_ERROR(write_file_atomic(dir / "report.html", bench::to_html(report)));
    fmt::print("wrote {}/report.html (and report.md, report.json)\n", dir.string());
  }
  return {};
}

}  // namespace

void add_bench_command(CLI::App& app, Dispatch& dispatch) {
  auto opt = std::make_shared<BenchOptions>();
  CLI::App* cmd = app.add_subcommand("bench", "Time every precision side by side (trtexec method)");
  cmd->add_option("model", opt->model, "ONNX model")->required();
  cmd->add_option("--backend", opt->backend, "Backend (default: cpu when built, else reference)");
  cmd->add_option("--precisions", opt->precisions,
                  "Comma-separated precisions (default: all the backend supports here); fp32, "
                  "the baseline, always runs");
  cmd->add_option("--batch", opt->batches, "Comma-separated batch sizes")->capture_default_str();
  cmd->add_option("--warmup", opt->timing.warmup_ms, "Warm-up time in ms")->capture_default_str();
  cmd->add_option("--duration", opt->timing.duration_s, "Minimum timed duration in s")
      ->capture_default_str();
  cmd->add_option("--iterations", opt->timing.iterations, "Minimum timed queries")
      ->capture_default_str();
  cmd->add_option("--percentile", opt->percentiles, "Latency percentiles to report")
      ->capture_default_str();
  cmd->add_option("--shape", opt->shapes, "Fix a dynamic input shape: NAME=1x3x224x224");
  add_timing_cache_option(*cmd, opt->timing_cache);
  cmd->add_option("--json", opt->json_path, "Write the summary (schema 1) to FILE");
  cmd->add_option("--report", opt->report_dir, "Write report.md, report.json, report.html to DIR");
  cmd->add_option("--export-times", opt->export_times, "Write every query's latency to FILE");
  cmd->add_flag("--profile", opt->profile, "Time each kernel and print the top 15 per row");
  cmd->add_option("--threads", opt->threads, "CPU threads per stream (0: cores / streams)")
      ->capture_default_str();
  cmd->add_option("--streams", opt->streams,
                  "Concurrent engines for throughput; latency is then per query under load")
      ->capture_default_str();
  cmd->add_option("--seed", opt->seed, "Seed for the random inputs")->capture_default_str();
  cmd->add_option("--calib-method", opt->calib_methods,
                  "INT8 rows: comma-separated entropy, minmax, percentile, mse")
      ->capture_default_str();
  add_calibration_options(*cmd, opt->calibration, /*with_method=*/false);
  cmd->add_option("--compare", opt->compare,
                  "Another model as extra rows (a Q/DQ model runs as INT8 with its own scales)");
  cmd->add_option("--eval", opt->eval_data, "Labelled data for top-1/top-5 (with --labels)");
  cmd->add_option("--labels", opt->labels, "Labels of --eval: IDX, .npy of integers or text");
  cmd->add_option("--eval-limit", opt->eval_limit, "Evaluate only the first N samples");
  cmd->add_flag("--no-data-transfers", opt->no_data_transfers,
                "GPU: copy the inputs to the device once and no outputs back; time compute only");
  cmd->add_option("--cuda-graph", opt->cuda_graph,
                  "GPU: on|off, replay each query as one captured CUDA graph (default on)");
  cmd->add_flag("--spin-wait", opt->spin_wait,
                "GPU: busy-wait for each query's end instead of blocking (lower latency, one "
                "core busy)");
  cmd->callback([opt, &dispatch] { dispatch.handler = [opt] { return bench_model(*opt); }; });
}

}  // namespace qf::cli
