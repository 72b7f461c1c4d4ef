#include "bench/markdown_report.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

namespace qf::bench {
namespace {

BenchRow make_row(std::string precision, std::string calib, int64_t batch, double median_ms) {
  BenchRow r;
  r.precision = std::move(precision);
  r.calib_method = std::move(calib);
  r.backend = "cpu";
  r.batch = batch;
  r.latency_ms = compute_stats({median_ms}, {99});
  r.latencies_ms = {median_ms};
  r.throughput_qps = 1000 / median_ms;
  return r;
}

// fp32 b1 at 10 ms and int8/entropy b1 at 2.5 ms: a speedup of exactly 4.
BenchReport sample_report() {
  BenchReport report;
  report.qforge_version = "0.1.0";
  report.model_path = "/models/<model&name>.onnx";
  report.model_producer = "pytorch";
  report.model_opset = 17;
  report.backend = "cpu";
  report.cpu = "Test CPU";
  BenchRow fp32 = make_row("fp32", "", 1, 10);
  fp32.weights_bytes = 4 * 1024 * 1024;
  BenchRow int8 = make_row("int8", "entropy", 1, 2.5);
  int8.vs_fp32 = Agreement{0.9995, 31.04, 0.5, 0.985};
  int8.weights_bytes = 1024 * 1024 + 512 * 1024;
  report.rows = {fp32, int8};
  return report;
}

std::vector<std::string> lines_of(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// The table line that starts with "| <first cell> |".
std::string table_line(const std::string& md, const std::string& first_cell) {
  for (const std::string& line : lines_of(md)) {
    if (line.rfind("| " + first_cell + " |", 0) == 0) return line;
  }
  return "";
}

// Cells of a Markdown table line, split at unescaped '|'.
std::vector<std::string> cells(const std::string& line) {
  std::vector<std::string> out;
  std::string cur;
  for (size_t i = 1; i < line.size(); ++i) {
    if (line[i] == '\\' && i + 1 < line.size()) {
      cur += line[i];
      cur += line[++i];
    } else if (line[i] == '|') {
      out.push_back(cur.substr(1, cur.size() - 2));  // drop the padding spaces
      cur.clear();
    } else {
      cur += line[i];
    }
  }
  return out;
}

TEST(MarkdownReportTest, RowLabels) {
  BenchRow r = make_row("int8", "entropy", 8, 1);
  EXPECT_EQ(precision_label(r), "int8/entropy");
  EXPECT_EQ(row_label(r), "int8/entropy b8");
  r.calib_method.clear();
  EXPECT_EQ(row_label(r), "int8 b8");
}

TEST(MarkdownReportTest, FormatsBytes) {
  EXPECT_EQ(format_bytes(512), "512 B");
  EXPECT_EQ(format_bytes(1536), "1.5 KiB");
  EXPECT_EQ(format_bytes(4 * 1024 * 1024), "4.0 MiB");
  EXPECT_EQ(format_bytes(int64_t{3} << 30), "3.0 GiB");
}

TEST(MarkdownReportTest, SpeedupIsAgainstFp32OfTheSameBatch) {
  BenchReport report = sample_report();
  report.rows.push_back(make_row("int8", "entropy", 8, 5));  // no fp32 row at batch 8
  EXPECT_EQ(speedup_vs_fp32(report, report.rows[0]), "1.00x");
  EXPECT_EQ(speedup_vs_fp32(report, report.rows[1]), "4.00x");
  EXPECT_EQ(speedup_vs_fp32(report, report.rows[2]), "-");
}

TEST(MarkdownReportTest, SummaryTableHasHandCheckableValues) {
  const std::string md = to_markdown(sample_report());
  EXPECT_EQ(md.rfind("# qforge bench report\n", 0), 0u);
  const std::vector<std::string> header = cells(table_line(md, "precision"));
  const std::vector<std::string> fp32 = cells(table_line(md, "fp32"));
  const std::vector<std::string> int8 = cells(table_line(md, "int8/entropy"));
  ASSERT_EQ(header.size(), 11u);  // no label columns without labels
  ASSERT_EQ(fp32.size(), header.size());
  ASSERT_EQ(int8.size(), header.size());
  const auto col = [&](const std::string& name) {
    for (size_t i = 0; i < header.size(); ++i) {
      if (header[i] == name) return i;
    }
    ADD_FAILURE() << "no column " << name;
    return size_t{0};
  };
  EXPECT_EQ(int8[col("batch")], "1");
  EXPECT_EQ(int8[col("median ms")], "2.500");
  EXPECT_EQ(int8[col("p99 ms")], "2.500");
  EXPECT_EQ(int8[col("qps")], "400.0");
  EXPECT_EQ(int8[col("samples/s")], "400.0");
  EXPECT_EQ(int8[col("speedup vs fp32")], "4.00x");
  EXPECT_EQ(fp32[col("speedup vs fp32")], "1.00x");
  EXPECT_EQ(int8[col("top-1 vs fp32")], "98.50%");
  EXPECT_EQ(int8[col("SQNR dB")], "31.0");
  EXPECT_EQ(int8[col("cosine")], "0.999500");
  EXPECT_EQ(fp32[col("top-1 vs fp32")], "-");
  EXPECT_EQ(fp32[col("weights")], "4.0 MiB");
  EXPECT_EQ(int8[col("weights")], "1.5 MiB");
  // Numbers are right-aligned, the precision column is not.
  EXPECT_NE(md.find("| --- | ---: |"), std::string::npos);
}

TEST(MarkdownReportTest, EscapesTheModelPath) {
  const std::string md = to_markdown(sample_report());
  // In a code span '<' and '&' are literal, so the path is shown exactly as it is.
  EXPECT_NE(md.find("- model: `/models/<model&name>.onnx` (pytorch, opset 17)"), std::string::npos);
  BenchReport report = sample_report();
  report.model_path = "odd`name.onnx";
  EXPECT_NE(to_markdown(report).find("``odd`name.onnx``"), std::string::npos);
}

TEST(MarkdownReportTest, LabelColumnsOnlyWithLabels) {
  BenchReport report = sample_report();
  report.rows[0].vs_labels = LabelAccuracy{0.9125, 0.995, 10000};
  report.rows[1].vs_labels = LabelAccuracy{0.905, 0.9949, 10000};
  const std::string md = to_markdown(report);
  const std::vector<std::string> header = cells(table_line(md, "precision"));
  ASSERT_EQ(header.size(), 13u);
  EXPECT_EQ(header[10], "top-1");
  EXPECT_EQ(header[11], "top-5");
  const std::vector<std::string> int8 = cells(table_line(md, "int8/entropy"));
  EXPECT_EQ(int8[10], "90.50%");
  EXPECT_EQ(int8[11], "99.49%");
  EXPECT_NE(md.find("on 10000 samples"), std::string::npos);

  // A row without labels next to rows with them shows a dash.
  report.rows[1].vs_labels.reset();
  const std::vector<std::string> without = cells(table_line(to_markdown(report), "int8/entropy"));
  EXPECT_EQ(without[10], "-");
}

TEST(MarkdownReportTest, P99ComesFromLatenciesWhenNotRequested) {
  BenchReport report;
  BenchRow r = make_row("fp32", "", 1, 1);
  r.latencies_ms.clear();
  for (int i = 1; i <= 100; ++i) r.latencies_ms.push_back(i);
  r.latency_ms = compute_stats(r.latencies_ms, {});  // no p99 among the percentiles
  report.rows = {r};
  const std::vector<std::string> row = cells(table_line(to_markdown(report), "fp32"));
  EXPECT_EQ(row[3], "99.000");  // sorted[100 - 1 - floor(1 * 100 / 100)]
}

TEST(MarkdownReportTest, PerLayerTopTenTable) {
  BenchReport report = sample_report();
  BenchRow& int8 = report.rows[1];
  for (int i = 0; i < 12; ++i) {
    int8.profile.push_back({fmt::format("layer{}", i), "Conv", "ref", 0.5 + i * 0.25});
  }
  int8.profile[3].name = "a|b";  // a pipe must not split the cell
  const std::string md = to_markdown(report);
  EXPECT_NE(md.find("## Per-layer time: int8/entropy b1 (top 10 of 12 layers)"), std::string::npos);
  // Slowest first: layer11 at 3.25 ms of 3.25 * 12 / 2 + ... = 22.5 ms in all.
  const std::vector<std::string> first = cells(table_line(md, "1"));
  ASSERT_EQ(first.size(), 6u);
  EXPECT_EQ(first[1], "`layer11`");
  EXPECT_EQ(first[4], "3.2500");
  EXPECT_EQ(first[5], "14.4%");         // 3.25 / 22.5
  EXPECT_EQ(table_line(md, "11"), "");  // only ten
  EXPECT_NE(md.find("`a\\|b`"), std::string::npos);
  EXPECT_EQ(cells(table_line(md, "10")).size(), 6u);
  // Unprofiled rows get no section.
  EXPECT_EQ(md.find("Per-layer time: fp32"), std::string::npos);
}

}  // namespace
}  // namespace qf::bench
