// `qforge bench --markdown FILE`: the bench report as a GitHub-flavoured Markdown document, for
// pasting into pull requests and issues. The summary table is built once here as plain text cells
// and shared with the HTML report, so both show the same numbers with the same formatting.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "bench/json_report.h"

namespace qf::bench {

// "int8/entropy" (precision, and the calibration method when there is one).
std::string precision_label(const BenchRow& row);
// "int8/entropy b1": names a row in tables, chart labels and legends.
std::string row_label(const BenchRow& row);

// 1536 -> "1.5 KiB"; below 1 KiB in bytes ("512 B").
std::string format_bytes(int64_t bytes);

// The fp32 row's median over this row's median, for the fp32 row of the same batch (the first
// such row), as "4.00x"; "-" when there is no such row or a median is not positive.
std::string speedup_vs_fp32(const BenchReport& report, const BenchRow& row);

// A table of plain-text cells (not yet escaped for any output format).
struct TextTable {
  std::vector<std::string> header;
  std::vector<bool> numeric;  // per column: right-aligned
  std::vector<bool> code;     // per column: identifiers (node names), set in monospace
  std::vector<std::vector<std::string>> rows;
};

// One row per BenchRow: precision, batch, median and p99 ms, qps, samples/s, speedup vs fp32,
// top-1 agreement, SQNR, cosine, top-1/top-5 vs labels (only when some row has them), weights.
TextTable summary_table(const BenchReport& report);

// The `top_n` slowest layers of a profiled row, slowest first, with their share of the total.
TextTable layer_table(const BenchRow& row, size_t top_n);

// The explanation printed under the summary table.
std::string summary_note(const BenchReport& report);

// How a row's queries ran: "CUDA graph, blocking sync", "eager launches, spin-wait, no data
// transfers"; "-" for a backend without these switches.
std::string run_mode(const BenchRow& row);

// trtexec's latency split: for each row with a split, one line per part (H2D, GPU compute, D2H,
// enqueue) with mean, median and the rows' percentiles, "not run" for copies the queries did
// not make; a row without a split gets one line of "n/a". No rows at all when no row has a
// split: split_note() then says so instead of a table of "n/a".
TextTable split_table(const BenchReport& report);

// What the split is, printed under its table, or alone when no row has a split.
std::string split_note(const BenchReport& report);

std::string to_markdown(const BenchReport& report);

}  // namespace qf::bench
