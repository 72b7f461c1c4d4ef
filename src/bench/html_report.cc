#include "bench/html_report.h"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <numeric>

#include "bench/markdown_report.h"
#include "bench/svg_chart.h"

namespace qf::bench {

namespace {

using svg::escape_xml;

// Inline so that the page needs nothing else; the system font stack avoids web fonts.
constexpr const char* kStyle = R"(
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 24px auto;
       max-width: 1100px; padding: 0 16px; color: #222; background: #fff; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.25em; margin-top: 1.8em; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
h3 { font-size: 1.05em; }
dl.meta { display: grid; grid-template-columns: max-content auto; gap: 2px 16px; }
dl.meta dt { font-weight: 600; }
dl.meta dd { margin: 0; word-break: break-all; }
table { border-collapse: collapse; font-size: 0.9em; margin: 8px 0; }
th, td { border: 1px solid #d0d0d0; padding: 4px 8px; }
th { background: #f3f3f3; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.code { font-family: ui-monospace, "DejaVu Sans Mono", monospace; word-break: break-all; }
tr:nth-child(even) td { background: #fafafa; }
p.note { color: #555; font-size: 0.85em; max-width: 900px; }
figure { margin: 8px 0; }
svg { max-width: 100%; height: auto; }
)";

std::string html_table(const TextTable& t) {
  std::string out = "<table>\n<thead><tr>";
  for (const std::string& h : t.header) out += "<th>" + escape_xml(h) + "</th>";
  out += "</tr></thead>\n<tbody>\n";
  for (const auto& row : t.rows) {
    out += "<tr>";
    for (size_t c = 0; c < row.size(); ++c) {
      const bool num = c < t.numeric.size() && t.numeric[c];
      const bool code = c < t.code.size() && t.code[c];
      out += num ? "<td class=\"num\">" : code ? "<td class=\"code\">" : "<td>";
      out += escape_xml(row[c]) + "</td>";
    }
    out += "</tr>\n";
  }
  return out + "</tbody>\n</table>\n";
}

// One colour per precision/calibration configuration, in order of first appearance, so that a
// configuration has the same colour in every chart.
std::map<std::string, std::string> config_colors(const BenchReport& report,
                                                 std::vector<std::string>* order) {
  std::map<std::string, std::string> colors;
  for (const BenchRow& r : report.rows) {
    const std::string key = precision_label(r);
    if (colors.count(key)) continue;
    colors[key] = svg::palette_color(colors.size());
    order->push_back(key);
  }
  return colors;
}

// Rows of different batch sizes share a colour; the line style tells them apart in the CDF.
std::string batch_dash(const std::vector<int64_t>& batches, int64_t batch) {
  static const char* const kDashes[] = {"", "7 4", "2 3", "10 3 2 3", "4 4"};
  const size_t i =
      static_cast<size_t>(std::find(batches.begin(), batches.end(), batch) - batches.begin());
  return kDashes[i % std::size(kDashes)];
}

// Batch sizes spread latencies over orders of magnitude; a log axis keeps every row readable.
bool wide_range(double lo, double hi) {
  return lo > 0 && hi / lo > 20;
}

std::vector<int64_t> sorted_batches(const BenchReport& report) {
  std::vector<int64_t> batches;
  for (const BenchRow& r : report.rows) batches.push_back(r.batch);
  std::sort(batches.begin(), batches.end());
  batches.erase(std::unique(batches.begin(), batches.end()), batches.end());
  return batches;
}

std::string pareto_chart(const BenchReport& report,
                         const std::map<std::string, std::string>& colors) {
  // Accuracy against labels is the real quality measure, but it only compares rows when every
  // row has it; otherwise agreement with fp32 (fp32 itself being 100%) is the common scale.
  const bool labels = !report.rows.empty() &&
                      std::all_of(report.rows.begin(), report.rows.end(),
                                  [](const BenchRow& r) { return r.vs_labels.has_value(); });
  svg::ScatterChart chart;
  chart.title =
      labels ? "Latency vs top-1 accuracy (labels)" : "Latency vs top-1 agreement with fp32";
  chart.x_label = "median latency per query (ms)";
  chart.y_label = labels ? "top-1 accuracy" : "top-1 agreement with fp32";
  chart.y_suffix = "%";
  std::vector<int64_t> point_batch;
  for (const BenchRow& r : report.rows) {
    double y = 0;
    if (labels) {
      y = 100 * r.vs_labels->top1;
    } else if (r.vs_fp32) {
      y = 100 * r.vs_fp32->top1_agreement;
    } else if (r.precision == "fp32") {
      y = 100;
    } else {
      continue;  // nothing to compare this row with
    }
    chart.points.push_back({r.latency_ms.median, y, row_label(r), colors.at(precision_label(r))});
    point_batch.push_back(r.batch);
  }
  if (!chart.points.empty()) {
    double x_min = chart.points[0].x, x_max = x_min, y_min = 100, y_max = 0;
    for (const svg::ScatterPoint& p : chart.points) {
      x_min = std::min(x_min, p.x), x_max = std::max(x_max, p.x);
      y_min = std::min(y_min, p.y), y_max = std::max(y_max, p.y);
    }
    chart.log_x = wide_range(x_min, x_max);
    if (labels) {
      // Label accuracy has no fixed reference point, so the axis fits the data (up to 100%).
      chart.y_max = std::min(100.0, y_max + 0.5);
      chart.y_min = std::max(0.0, std::min(y_min - 0.5, chart.y_max - 1));
    } else {
      // Agreement is relative to fp32, whose 100% stays on the chart as the reference.
      chart.y_max = std::max(100.0, y_max);
      // A little room below the worst row keeps its marker off the x axis.
      chart.y_min = std::min(y_min - 0.1 * (chart.y_max - y_min), chart.y_max - 1);
    }
  }
  // The Pareto frontier per batch size (latencies of different batches are not comparable):
  // walking from fastest to slowest, a point is on it when it is more accurate than all faster.
  for (const int64_t b : sorted_batches(report)) {
    std::vector<size_t> idx;
    for (size_t i = 0; i < chart.points.size(); ++i) {
      if (point_batch[i] == b) idx.push_back(i);
    }
    std::stable_sort(idx.begin(), idx.end(), [&](size_t a, size_t c) {
      const auto& pa = chart.points[a];
      const auto& pc = chart.points[c];
      return pa.x != pc.x ? pa.x < pc.x : pa.y > pc.y;
    });
    std::vector<size_t> frontier;
    double best = -1;
    for (size_t i : idx) {
      if (chart.points[i].y > best) {
        frontier.push_back(i);
        best = chart.points[i].y;
      }
    }
    if (frontier.size() >= 2) chart.frontiers.push_back(frontier);
  }
  return svg::render_scatter(chart);
}

std::string throughput_chart(const BenchReport& report,
                             const std::map<std::string, std::string>& colors,
                             const std::vector<std::string>& order) {
  svg::BarChart chart;
  chart.title = "Throughput by precision and batch";
  chart.y_label = "samples / s";
  for (const int64_t b : sorted_batches(report)) {
    svg::BarGroup g;
    g.label = fmt::format("batch {}", b);
    for (const BenchRow& r : report.rows) {
      if (r.batch != b) continue;
      g.bars.push_back({row_label(r), r.throughput_qps * static_cast<double>(r.batch),
                        colors.at(precision_label(r))});
    }
    chart.groups.push_back(std::move(g));
  }
  for (const std::string& key : order) chart.legend.emplace_back(key, colors.at(key));
  return svg::render_bars(chart);
}

std::string cdf_chart(const BenchReport& report, const std::map<std::string, std::string>& colors) {
  svg::LineChart chart;
  chart.title = "Latency distribution (CDF)";
  chart.x_label = "latency per query (ms)";
  chart.y_label = "queries at or below";
  chart.y_suffix = "%";
  chart.y_scale = 100;
  chart.y_min = 0;
  chart.y_max = 1;
  chart.series_class = "cdf";
  const std::vector<int64_t> batches = sorted_batches(report);
  double lo = 0, hi = 0;
  for (const BenchRow& r : report.rows) {
    if (r.latencies_ms.empty()) continue;
    chart.series.push_back({row_label(r), colors.at(precision_label(r)),
                            batch_dash(batches, r.batch), latency_cdf(r.latencies_ms)});
    const double row_lo = chart.series.back().points.front().first;
    const double row_hi = chart.series.back().points.back().first;
    lo = chart.series.size() == 1 ? row_lo : std::min(lo, row_lo);
    hi = std::max(hi, row_hi);
  }
  chart.log_x = wide_range(lo, hi);
  return svg::render_lines(chart);
}

std::string layer_chart(const BenchRow& r) {
  constexpr size_t kTop = 15;
  std::vector<LayerTime> layers = r.profile;
  std::stable_sort(layers.begin(), layers.end(),
                   [](const LayerTime& a, const LayerTime& b) { return a.ms > b.ms; });
  const double total = std::accumulate(layers.begin(), layers.end(), 0.0,
                                       [](double s, const LayerTime& l) { return s + l.ms; });
  svg::HBarChart chart;
  chart.title =
      fmt::format("{}: top {} of {} layers ({} ms in all)", row_label(r),
                  std::min(kTop, layers.size()), layers.size(), svg::format_number(total, 3));
  chart.x_label = "ms per query";
  for (size_t i = 0; i < std::min(kTop, layers.size()); ++i) {
    const LayerTime& l = layers[i];
    chart.items.push_back({fmt::format("{} ({})", l.name, l.op),
                           fmt::format("{} ({}, {})", l.name, l.op, l.impl), l.ms});
  }
  return svg::render_hbars(chart);
}

}  // namespace

std::vector<std::pair<double, double>> latency_cdf(const std::vector<double>& latencies_ms,
                                                   size_t max_points) {
  std::vector<double> sorted = latencies_ms;
  std::sort(sorted.begin(), sorted.end());
  const size_t n = sorted.size();
  std::vector<std::pair<double, double>> points;
  if (n == 0) return points;
  const size_t m = std::max<size_t>(1, std::min(n, max_points));
  points.reserve(m);
  for (size_t k = 0; k < m; ++k) {
    // Index of the (k+1)/m quantile: all n points when m == n, and always the last one.
    const size_t i = (k + 1) * n / m - 1;
    points.emplace_back(sorted[i], static_cast<double>(i + 1) / static_cast<double>(n));
  }
  return points;
}

std::string to_html(const BenchReport& report) {
  const std::string name = report.model_path.empty()
                               ? std::string("(unnamed model)")
                               : std::filesystem::path(report.model_path).filename().string();
  std::string out;
  out += "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n";
  out += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n";
  out += "<title>qforge bench report \u2014 " + escape_xml(name) + "</title>\n";
  out += std::string("<style>") + kStyle + "</style>\n</head>\n<body>\n";
  out += "<h1>qforge bench report \u2014 " + escape_xml(name) + "</h1>\n";

  out += "<dl class=\"meta\">\n";
  const auto meta = [&](const char* key, const std::string& value) {
    if (!value.empty()) out += fmt::format("<dt>{}</dt><dd>{}</dd>\n", key, escape_xml(value));
  };
  meta("model", report.model_path);
  meta("producer", report.model_producer);
  meta("opset", report.model_opset > 0 ? fmt::format("{}", report.model_opset) : "");
  meta("backend", report.backend);
  meta("CPU", report.cpu);
  meta("GPU", report.gpu);
  meta("qforge", report.qforge_version);
  out += "</dl>\n";

  out += "<h2>Summary</h2>\n" + html_table(summary_table(report));
  out += "<p class=\"note\">" + escape_xml(summary_note(report)) + "</p>\n";
  const TextTable split = split_table(report);
  if (!split.rows.empty()) out += "<h2>Latency split</h2>\n" + html_table(split);
  out += "<p class=\"note\">" + escape_xml(split_note(report)) + "</p>\n";

  std::vector<std::string> order;
  const std::map<std::string, std::string> colors = config_colors(report, &order);
  out += "<h2>Latency vs accuracy</h2>\n";
  out +=
      "<p class=\"note\">Up and to the left is better. Dashed lines join the Pareto-optimal "
      "rows of each batch size.</p>\n";
  out += "<figure>" + pareto_chart(report, colors) + "</figure>\n";
  out += "<h2>Throughput</h2>\n<figure>" + throughput_chart(report, colors, order) + "</figure>\n";
  out += "<h2>Latency distribution</h2>\n";
  out +=
      "<p class=\"note\">Fraction of timed queries that finished within a latency; a steep "
      "curve is a stable timing. Line style marks the batch size.</p>\n";
  out += "<figure>" + cdf_chart(report, colors) + "</figure>\n";

  bool any_profile = false;
  for (const BenchRow& r : report.rows) {
    if (r.profile.empty()) continue;
    if (!any_profile) out += "<h2>Per-layer time</h2>\n";
    any_profile = true;
    out += "<h3>" + escape_xml(row_label(r)) + "</h3>\n";
    out += "<figure>" + layer_chart(r) + "</figure>\n";
    out += html_table(layer_table(r, 10));
  }
  out += "</body>\n</html>\n";
  return out;
}

}  // namespace qf::bench
