// trtexec's latency split in the bench: recording each timed query's RunTiming, its statistics,
// and how the JSON, Markdown and HTML reports show it (and "n/a" where an engine has none).
#include "bench/latency_split.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "bench/html_report.h"
#include "bench/json_report.h"
#include "bench/markdown_report.h"
#include "bench/timing_loop.h"

namespace qf::bench {
namespace {

runtime::RunTiming timing(double h2d, double compute, double d2h, double enqueue) {
  runtime::RunTiming t;
  t.h2d_ms = h2d;
  t.compute_ms = compute;
  t.d2h_ms = d2h;
  t.enqueue_ms = enqueue;
  return t;
}

runtime::RunTiming compute_only(double compute, double enqueue) {
  runtime::RunTiming t;
  t.compute_ms = compute;
  t.enqueue_ms = enqueue;
  return t;
}

TEST(SplitRecorderTest, SummarizesEveryPartWithTheLatencyRules) {
  SplitRecorder rec;
  for (int i = 1; i <= 4; ++i) rec.add(timing(0.1 * i, 1.0 * i, 0.01 * i, 0.5));
  const auto s = rec.summarize({50, 99});
  ASSERT_TRUE(s.has_value());
  ASSERT_TRUE(s->h2d_ms && s->d2h_ms);
  EXPECT_DOUBLE_EQ(s->compute_ms.mean, 2.5);
  EXPECT_DOUBLE_EQ(s->compute_ms.median, 2.5);
  EXPECT_DOUBLE_EQ(s->compute_ms.max, 4.0);
  EXPECT_DOUBLE_EQ(s->h2d_ms->min, 0.1);
  EXPECT_DOUBLE_EQ(s->d2h_ms->max, 0.04);
  EXPECT_DOUBLE_EQ(s->enqueue_ms.stddev, 0.0);
  ASSERT_EQ(s->compute_ms.percentiles.size(), 2u);
  EXPECT_DOUBLE_EQ(s->compute_ms.percentiles[1].second, 4.0);  // p99 of 4: the largest
}

TEST(SplitRecorderTest, QueriesWithoutCopiesHaveNoH2DOrD2H) {
  SplitRecorder rec;
  rec.add(compute_only(1.0, 0.1));
  rec.add(compute_only(3.0, 0.1));
  const auto s = rec.summarize({99});
  ASSERT_TRUE(s.has_value());
  EXPECT_FALSE(s->h2d_ms.has_value());
  EXPECT_FALSE(s->d2h_ms.has_value());
  EXPECT_DOUBLE_EQ(s->compute_ms.mean, 2.0);
}

TEST(SplitRecorderTest, AnUntimedQueryOrNoQueryMeansNoSplit) {
  SplitRecorder none;
  EXPECT_FALSE(none.summarize({99}).has_value());
  SplitRecorder partial;
  partial.add(timing(1, 1, 1, 1));
  partial.add(std::nullopt);  // the engine did not split this one: no honest row split
  EXPECT_FALSE(partial.summarize({99}).has_value());
}

TEST(SplitRecorderTest, StreamsAppend) {
  SplitRecorder a, b;
  a.add(timing(1, 2, 3, 4));
  b.add(timing(1, 4, 3, 4));
  a.append(b);
  const auto s = a.summarize({});
  ASSERT_TRUE(s.has_value());
  EXPECT_DOUBLE_EQ(s->compute_ms.mean, 3.0);
  SplitRecorder c;
  c.add(std::nullopt);
  a.append(c);
  EXPECT_FALSE(a.summarize({}).has_value());
}

class StepClock final : public Clock {
 public:
  double now_s() override { return t; }
  double t = 0;
};

TEST(SplitTimingLoopTest, HookRunsAfterEachTimedQueryOnlyAndOutsideItsLatency) {
  StepClock clock;
  int queries = 0, hooks = 0;
  auto query = [&]() -> Status {
    ++queries;
    clock.t += 0.010;
    return {};
  };
  auto hook = [&] {
    ++hooks;
    clock.t += 1.0;  // a slow hook must not show in any query's latency
  };
  auto r = run_timing_loop({.warmup_ms = 15, .duration_s = 0, .iterations = 3}, clock, query, hook);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->warmup_queries, 2);
  EXPECT_EQ(hooks, 3);  // not after the two warm-up queries
  EXPECT_EQ(queries, 5);
  for (double ms : r->latencies_ms) EXPECT_NEAR(ms, 10.0, 1e-9);

  StepClock c0, c1;
  int h0 = 0, h1 = 0;
  auto q0 = [&]() -> Status {
    c0.t += 0.01;
    return {};
  };
  auto q1 = [&]() -> Status {
    c1.t += 0.01;
    return {};
  };
  auto streams = run_concurrent_timing_loops({.warmup_ms = 0, .duration_s = 0, .iterations = 2},
                                             {&c0, &c1}, {q0, q1}, {[&] { ++h0; }, [&] { ++h1; }});
  ASSERT_TRUE(streams.ok()) << streams.status().message();
  EXPECT_EQ(h0, 2);
  EXPECT_EQ(h1, 2);
  auto mismatched = run_concurrent_timing_loops({.warmup_ms = 0, .duration_s = 0, .iterations = 2},
                                                {&c0, &c1}, {q0, q1}, {[] {}});
  EXPECT_FALSE(mismatched.ok());
}

BenchRow gpu_row(bool transfers) {
  BenchRow r;
  r.precision = "fp16";
  r.backend = "cuda";
  r.batch = 256;
  r.latency_ms = compute_stats({1.0, 1.2}, {90, 99});
  SplitRecorder rec;
  if (transfers) {
    rec.add(timing(0.125, 0.5, 0.0625, 0.02));
    rec.add(timing(0.125, 0.5, 0.0625, 0.02));
  } else {
    rec.add(compute_only(0.5, 0.02));
  }
  r.split = rec.summarize({90, 99});
  r.data_transfers = transfers;
  r.cuda_graph = true;
  r.spin_wait = false;
  return r;
}

BenchRow cpu_row() {
  BenchRow r;
  r.precision = "fp32";
  r.backend = "cpu";
  r.batch = 1;
  r.latency_ms = compute_stats({2.0}, {90, 99});
  return r;
}

TEST(SplitReportTest, JsonHasTheSplitRunOptionsAndNullsForWhatDidNotHappen) {
  BenchReport report;
  report.backend = "cuda";
  report.rows = {gpu_row(true), gpu_row(false)};
  const nlohmann::json j = to_json(report);
  const auto& with = j["results"][0];
  EXPECT_EQ(with["data_transfers"], true);
  EXPECT_EQ(with["cuda_graph"], true);
  EXPECT_EQ(with["spin_wait"], false);
  EXPECT_EQ(with["latency_split_ms"]["h2d"]["mean"], 0.125);
  EXPECT_EQ(with["latency_split_ms"]["compute"]["median"], 0.5);
  EXPECT_EQ(with["latency_split_ms"]["d2h"]["p99"], 0.0625);
  EXPECT_EQ(with["latency_split_ms"]["enqueue"]["max"], 0.02);
  for (const char* key : {"min", "max", "mean", "median", "stddev", "cov", "p90", "p99"}) {
    EXPECT_TRUE(with["latency_split_ms"]["compute"].contains(key)) << key;
  }
  const auto& without = j["results"][1];
  EXPECT_EQ(without["data_transfers"], false);
  EXPECT_TRUE(without["latency_split_ms"]["h2d"].is_null());
  EXPECT_TRUE(without["latency_split_ms"]["d2h"].is_null());
  EXPECT_EQ(without["latency_split_ms"]["compute"]["mean"], 0.5);

  BenchReport cpu;
  cpu.backend = "cpu";
  cpu.rows = {cpu_row()};
  const nlohmann::json c = to_json(cpu)["results"][0];
  EXPECT_TRUE(c.contains("latency_split_ms"));
  EXPECT_TRUE(c["latency_split_ms"].is_null());
  EXPECT_TRUE(c["cuda_graph"].is_null());
  EXPECT_TRUE(c["spin_wait"].is_null());
  EXPECT_EQ(c["data_transfers"], true);
}

TEST(SplitReportTest, RunModeNamesTheSwitches) {
  EXPECT_EQ(run_mode(cpu_row()), "-");
  EXPECT_EQ(run_mode(gpu_row(true)), "CUDA graph, blocking sync");
  BenchRow r = gpu_row(false);
  r.cuda_graph = false;
  r.spin_wait = true;
  EXPECT_EQ(run_mode(r), "eager launches, spin-wait, no data transfers");
}

TEST(SplitReportTest, TableHasOneLinePerPartAndNaForRowsWithoutSplit) {
  BenchReport report;
  report.backend = "cuda";
  report.rows = {gpu_row(true), gpu_row(false), cpu_row()};
  const TextTable t = split_table(report);
  const std::vector<std::string> header = {"precision", "batch",     "run",    "part",
                                           "mean ms",   "median ms", "p90 ms", "p99 ms"};
  EXPECT_EQ(t.header, header);
  ASSERT_EQ(t.rows.size(), 9u);  // 4 + 4 parts, 1 line for the row without a split
  EXPECT_EQ(t.rows[0][0], "fp16");
  EXPECT_EQ(t.rows[0][3], "H2D");
  EXPECT_EQ(t.rows[0][4], "0.1250");
  EXPECT_EQ(t.rows[1][0], "");  // the row's name only on its first line
  EXPECT_EQ(t.rows[1][3], "GPU compute");
  EXPECT_EQ(t.rows[1][5], "0.5000");
  EXPECT_EQ(t.rows[2][3], "D2H");
  EXPECT_EQ(t.rows[3][3], "enqueue (host)");
  EXPECT_EQ(t.rows[4][2], "CUDA graph, blocking sync, no data transfers");
  EXPECT_EQ(t.rows[4][4], "not run");  // no H2D without transfers
  EXPECT_EQ(t.rows[5][4], "0.5000");
  EXPECT_EQ(t.rows[6][7], "not run");
  EXPECT_EQ(t.rows[8][3], "all");
  for (size_t c = 4; c < t.rows[8].size(); ++c) EXPECT_EQ(t.rows[8][c], "n/a");
}

TEST(SplitReportTest, ReportsWithoutAnySplitSayNaOnceInsteadOfATable) {
  BenchReport report;
  report.backend = "cpu";
  report.rows = {cpu_row()};
  EXPECT_TRUE(split_table(report).rows.empty());
  const std::string md = to_markdown(report);
  EXPECT_EQ(md.find("## Latency split"), std::string::npos);
  EXPECT_NE(md.find("n/a, the cpu backend does not measure it"), std::string::npos) << md;
  const std::string html = to_html(report);
  EXPECT_EQ(html.find("<h2>Latency split</h2>"), std::string::npos);
  EXPECT_NE(html.find("n/a, the cpu backend does not measure it"), std::string::npos);
}

TEST(SplitReportTest, MarkdownAndHtmlShowTheSplitAndSayWhenNothingWasCopied) {
  BenchReport report;
  report.backend = "cuda";
  report.gpu = "NVIDIA H200 (sm_90)";
  report.rows = {gpu_row(true), gpu_row(false)};
  const std::string md = to_markdown(report);
  EXPECT_NE(md.find("## Latency split"), std::string::npos) << md;
  EXPECT_NE(md.find("| GPU compute | 0.5000 | 0.5000 | 0.5000 | 0.5000 |"), std::string::npos)
      << md;
  EXPECT_NE(md.find("no data transfers"), std::string::npos);
  EXPECT_NE(md.find("so latency and throughput are compute only"), std::string::npos) << md;
  EXPECT_NE(md.find("CUDA events"), std::string::npos);
  const std::string html = to_html(report);
  EXPECT_NE(html.find("<h2>Latency split</h2>"), std::string::npos);
  EXPECT_NE(html.find("<td>enqueue (host)</td>"), std::string::npos);
  EXPECT_NE(html.find("<td class=\"num\">not run</td>"), std::string::npos);
}

}  // namespace
}  // namespace qf::bench
