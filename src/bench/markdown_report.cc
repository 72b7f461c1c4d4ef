#include "bench/markdown_report.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <optional>

namespace qf::bench {

namespace {

// p99 from the requested percentiles when it was asked for, else from the raw latencies.
std::string p99_ms(const BenchRow& r) {
  for (const auto& [p, v] : r.latency_ms.percentiles) {
    if (p == 99) return fmt::format("{:.3f}", v);
  }
  if (!r.latencies_ms.empty()) {
    std::vector<double> sorted = r.latencies_ms;
    std::sort(sorted.begin(), sorted.end());
    return fmt::format("{:.3f}", percentile_of_sorted(sorted, 99));
  }
  return "-";
}

std::string percent(double fraction) {
  return fmt::format("{:.2f}%", 100 * fraction);
}

// Escapes what GitHub-flavoured Markdown would interpret in running text and table cells. A
// raw '<' would start an HTML tag and swallow text such as "<model&name>".
std::string md_text(const std::string& s) {
  std::string out;
  for (const char c : s) {
    switch (c) {
      case '\\':
      case '|':
      case '*':
      case '_':
      case '`':
      case '[':
      case ']':
        out += '\\';
        out += c;
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '&':
        out += "&amp;";
        break;
      case '\n':
      case '\r':
        out += ' ';
        break;
      default:
        out += c;
    }
  }
  return out;
}

// Identifiers go into code spans, where nothing but backticks is special: the fence is one
// backtick longer than the longest run inside. A '|' still ends a table cell in GFM even inside
// code, so it is escaped (GFM removes that backslash again).
std::string md_code(const std::string& s, bool in_table) {
  size_t longest = 0, run = 0;
  for (const char c : s) {
    run = c == '`' ? run + 1 : 0;
    longest = std::max(longest, run);
  }
  std::string body;
  for (const char c : s) {
    if (c == '\n' || c == '\r') {
      body += ' ';
    } else if (c == '|' && in_table) {
      body += "\\|";
    } else {
      body += c;
    }
  }
  if (!body.empty() && (body.front() == '`' || body.back() == '`')) body = " " + body + " ";
  const std::string fence(longest + 1, '`');
  return fence + body + fence;
}

std::string render_table(const TextTable& t) {
  std::string out = "|";
  for (const std::string& h : t.header) out += " " + md_text(h) + " |";
  out += "\n|";
  for (size_t c = 0; c < t.header.size(); ++c) {
    out += c < t.numeric.size() && t.numeric[c] ? " ---: |" : " --- |";
  }
  out += "\n";
  for (const auto& row : t.rows) {
    out += "|";
    for (size_t c = 0; c < row.size(); ++c) {
      const bool code = c < t.code.size() && t.code[c];
      out += " " + (code ? md_code(row[c], true) : md_text(row[c])) + " |";
    }
    out += "\n";
  }
  return out;
}

}  // namespace

std::string precision_label(const BenchRow& row) {
  return row.calib_method.empty() ? row.precision : row.precision + "/" + row.calib_method;
}

std::string row_label(const BenchRow& row) {
  return fmt::format("{} b{}", precision_label(row), row.batch);
}

std::string format_bytes(int64_t bytes) {
  if (bytes < 1024) return fmt::format("{} B", bytes);
  static constexpr const char* kUnits[] = {"KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes) / 1024;
  size_t unit = 0;
  while (v >= 1024 && unit + 1 < std::size(kUnits)) v /= 1024, ++unit;
  return fmt::format("{:.1f} {}", v, kUnits[unit]);
}

std::string speedup_vs_fp32(const BenchReport& report, const BenchRow& row) {
  for (const BenchRow& base : report.rows) {
    if (base.precision != "fp32" || base.batch != row.batch) continue;
    if (base.latency_ms.median > 0 && row.latency_ms.median > 0) {
      return fmt::format("{:.2f}x", base.latency_ms.median / row.latency_ms.median);
    }
    return "-";
  }
  return "-";
}

TextTable summary_table(const BenchReport& report) {
  const bool labels = std::any_of(report.rows.begin(), report.rows.end(),
                                  [](const BenchRow& r) { return r.vs_labels.has_value(); });
  TextTable t;
  t.header = {"precision", "batch",           "median ms",     "p99 ms",  "qps",
              "samples/s", "speedup vs fp32", "top-1 vs fp32", "SQNR dB", "cosine"};
  if (labels) {
    t.header.push_back("top-1");
    t.header.push_back("top-5");
  }
  t.header.push_back("weights");
  t.numeric.assign(t.header.size(), true);
  t.numeric[0] = false;
  t.code.assign(t.header.size(), false);
  for (const BenchRow& r : report.rows) {
    std::string top1 = "-", sqnr = "-", cosine = "-";
    if (r.vs_fp32) {
      top1 = percent(r.vs_fp32->top1_agreement);
      sqnr =
          std::isfinite(r.vs_fp32->sqnr_db) ? fmt::format("{:.1f}", r.vs_fp32->sqnr_db) : "exact";
      cosine = fmt::format("{:.6f}", r.vs_fp32->cosine);
    }
    std::vector<std::string> row = {precision_label(r),
                                    fmt::format("{}", r.batch),
                                    fmt::format("{:.3f}", r.latency_ms.median),
                                    p99_ms(r),
                                    fmt::format("{:.1f}", r.throughput_qps),
                                    fmt::format("{:.1f}", r.throughput_qps * double(r.batch)),
                                    speedup_vs_fp32(report, r),
                                    top1,
                                    sqnr,
                                    cosine};
    if (labels) {
      row.push_back(r.vs_labels ? percent(r.vs_labels->top1) : "-");
      row.push_back(r.vs_labels ? percent(r.vs_labels->top5) : "-");
    }
    row.push_back(r.weights_bytes > 0 ? format_bytes(r.weights_bytes) : "-");
    t.rows.push_back(std::move(row));
  }
  return t;
}

TextTable layer_table(const BenchRow& row, size_t top_n) {
  TextTable t;
  t.header = {"#", "layer", "op", "impl", "ms", "share"};
  t.numeric = {true, false, false, false, true, true};
  t.code = {false, true, false, false, false, false};
  std::vector<LayerTime> layers = row.profile;
  // Stable, so that equal times keep the execution order the profile lists them in.
  std::stable_sort(layers.begin(), layers.end(),
                   [](const LayerTime& a, const LayerTime& b) { return a.ms > b.ms; });
  const double total = std::accumulate(layers.begin(), layers.end(), 0.0,
                                       [](double s, const LayerTime& l) { return s + l.ms; });
  for (size_t i = 0; i < std::min(top_n, layers.size()); ++i) {
    const LayerTime& l = layers[i];
    t.rows.push_back({fmt::format("{}", i + 1), l.name, l.op, l.impl, fmt::format("{:.4f}", l.ms),
                      total > 0 ? fmt::format("{:.1f}%", 100 * l.ms / total) : "-"});
  }
  return t;
}

std::string summary_note(const BenchReport& report) {
  std::string note =
      "qps = queries (batches) per second; samples/s = batch x qps; latency is host wall time "
      "per query. Speedup is the fp32 median of the same batch over the row's median. top-1 vs "
      "fp32 is the fraction of samples whose argmax matches fp32's.";
  if (std::any_of(report.rows.begin(), report.rows.end(),
                  [](const BenchRow& r) { return !r.data_transfers; })) {
    note +=
        " No data transfers (--no-data-transfers): the inputs were copied to the device once "
        "and no outputs were copied back, so latency and throughput are compute only.";
  }
  for (const BenchRow& r : report.rows) {
    if (r.vs_labels) {
      note += fmt::format(" top-1/top-5 are accuracies against the labels on {} samples.",
                          r.vs_labels->samples);
      break;
    }
  }
  return note;
}

std::string run_mode(const BenchRow& row) {
  std::vector<std::string> parts;
  if (row.cuda_graph) parts.push_back(*row.cuda_graph ? "CUDA graph" : "eager launches");
  if (row.spin_wait) parts.push_back(*row.spin_wait ? "spin-wait" : "blocking sync");
  if (!row.data_transfers) parts.push_back("no data transfers");
  if (parts.empty()) return "-";
  std::string out = parts[0];
  for (size_t i = 1; i < parts.size(); ++i) out += ", " + parts[i];
  return out;
}

TextTable split_table(const BenchReport& report) {
  TextTable t;
  const auto with_split = std::find_if(report.rows.begin(), report.rows.end(),
                                       [](const BenchRow& r) { return r.split.has_value(); });
  if (with_split == report.rows.end()) return t;
  std::vector<double> ps;
  for (const auto& [p, v] : with_split->split->compute_ms.percentiles) ps.push_back(p);
  t.header = {"precision", "batch", "run", "part", "mean ms", "median ms"};
  for (double p : ps) t.header.push_back(fmt::format("p{:g} ms", p));
  t.numeric.assign(t.header.size(), true);
  t.numeric[0] = t.numeric[2] = t.numeric[3] = false;
  t.code.assign(t.header.size(), false);
  const size_t values = 2 + ps.size();
  for (const BenchRow& r : report.rows) {
    std::vector<std::string> lead = {precision_label(r), fmt::format("{}", r.batch), run_mode(r)};
    auto add = [&](const std::string& part, const std::optional<LatencyStats>& s,
                   const std::string& missing) {
      std::vector<std::string> row = lead;
      row.push_back(part);
      if (!s) {
        row.insert(row.end(), values, missing);
      } else {
        row.push_back(fmt::format("{:.4f}", s->mean));
        row.push_back(fmt::format("{:.4f}", s->median));
        for (double p : ps) {
          std::string cell = "-";
          for (const auto& [q, v] : s->percentiles) {
            if (q == p) cell = fmt::format("{:.4f}", v);
          }
          row.push_back(cell);
        }
      }
      t.rows.push_back(std::move(row));
      lead = {"", "", ""};  // the row's other parts leave its name blank
    };
    if (!r.split) {
      add("all", std::nullopt, "n/a");
      continue;
    }
    add("H2D", r.split->h2d_ms, "not run");
    add("GPU compute", r.split->compute_ms, "not run");
    add("D2H", r.split->d2h_ms, "not run");
    add("enqueue (host)", r.split->enqueue_ms, "not run");
  }
  return t;
}

std::string split_note(const BenchReport& report) {
  if (split_table(report).rows.empty()) {
    return fmt::format(
        "Latency split (H2D, GPU compute, D2H, enqueue): n/a, the {} backend does not measure "
        "it.",
        report.backend.empty() ? std::string("benched") : report.backend);
  }
  return "Latency split as trtexec reports it: H2D, GPU compute and D2H are device times between "
         "CUDA events recorded around the input copies, the enqueued work (host fallbacks and "
         "their copies included) and the output copies; enqueue is the host's time to launch "
         "the work. The host latency also covers staging the inputs in pinned memory, copying "
         "the outputs out and waking the waiting thread (--spin-wait avoids the wake-up). n/a: "
         "the backend does not measure it; not run: the queries made no such copies.";
}

std::string to_markdown(const BenchReport& report) {
  std::string out = "# qforge bench report\n\n";
  std::string model = "- model: " + md_code(report.model_path, false);
  if (!report.model_producer.empty()) model += " (" + md_text(report.model_producer);
  if (report.model_opset > 0) {
    model +=
        fmt::format("{}opset {}", report.model_producer.empty() ? " (" : ", ", report.model_opset);
  }
  if (!report.model_producer.empty() || report.model_opset > 0) model += ")";
  out += model + "\n";
  std::string device = "- device: backend " + md_text(report.backend);
  if (!report.cpu.empty()) device += ", CPU " + md_text(report.cpu);
  if (!report.gpu.empty()) device += ", GPU " + md_text(report.gpu);
  out += device + "\n";
  if (!report.qforge_version.empty()) out += "- qforge " + md_text(report.qforge_version) + "\n";
  out += "\n" + render_table(summary_table(report)) + "\n" + md_text(summary_note(report)) + "\n";
  const TextTable split = split_table(report);
  if (!split.rows.empty()) out += "\n## Latency split\n\n" + render_table(split);
  out += "\n" + md_text(split_note(report)) + "\n";

  for (const BenchRow& r : report.rows) {
    if (r.profile.empty()) continue;
    constexpr size_t kTop = 10;
    out += fmt::format("\n## Per-layer time: {} (top {} of {} layers)\n\n", md_text(row_label(r)),
                       std::min(kTop, r.profile.size()), r.profile.size());
    out += render_table(layer_table(r, kTop));
  }
  return out;
}

}  // namespace qf::bench
