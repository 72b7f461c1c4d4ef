// `qforge bench --html FILE`: one self-contained HTML page (inline CSS and SVG, no scripts, no
// fonts, no network) with the summary table and four charts: latency vs accuracy (the Pareto
// picture), throughput per precision and batch, the latency CDF of every row, and the per-layer
// time of profiled rows. Self-contained so that it can be attached to CI runs and opened offline.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "bench/json_report.h"

namespace qf::bench {

std::string to_html(const BenchReport& report);

// The CDF of a row's latencies as (latency ms, fraction of queries at or below it), one point
// per query in ascending order. Runs with more than `max_points` queries are thinned to
// `max_points` evenly spaced quantiles (always keeping the maximum) to bound the page size.
std::vector<std::pair<double, double>> latency_cdf(const std::vector<double>& latencies_ms,
                                                   size_t max_points = 2000);

}  // namespace qf::bench
