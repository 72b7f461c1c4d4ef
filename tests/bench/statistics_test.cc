#include "bench/statistics.h"

#include <gtest/gtest.h>

#include "bench/accuracy.h"
#include "bench/timing_loop.h"

namespace qf::bench {
namespace {

TEST(StatisticsTest, PercentileFollowsTrtexecRule) {
  // N = 10 sorted 1..10. p90: floor(0.1 * 10) = 1 -> index 10 - 1 - 1 = 8 -> 9.
  // p99: floor(0.01 * 10) = 0 -> index 9 -> 10. p50: floor(5) = 5 -> index 4 -> 5.
  std::vector<double> v = {10, 9, 8, 7, 6, 5, 4, 3, 2, 1};
  const LatencyStats s = compute_stats(v, {50, 90, 99});
  EXPECT_EQ(s.percentiles[0].second, 5);
  EXPECT_EQ(s.percentiles[1].second, 9);
  EXPECT_EQ(s.percentiles[2].second, 10);
  // p0 would index past the start: clamped to the smallest sample.
  EXPECT_EQ(percentile_of_sorted({1, 2, 3}, 0), 1);
  // p99.9 of 1000 samples excludes exactly one: index 998.
  std::vector<double> thousand(1000);
  for (size_t i = 0; i < thousand.size(); ++i) thousand[i] = static_cast<double>(i);
  EXPECT_EQ(percentile_of_sorted(thousand, 99.9), 998);
}

TEST(StatisticsTest, MedianOfEvenAndOddCounts) {
  EXPECT_EQ(compute_stats({4, 1, 3, 2}, {}).median, 2.5);
  EXPECT_EQ(compute_stats({5, 1, 3}, {}).median, 3);
}

TEST(StatisticsTest, MeanStddevAndCoefficientOfVariation) {
  const LatencyStats s = compute_stats({2, 4, 4, 4, 5, 5, 7, 9}, {});
  EXPECT_DOUBLE_EQ(s.mean, 5.0);
  EXPECT_DOUBLE_EQ(s.stddev, 2.0);  // population standard deviation
  EXPECT_DOUBLE_EQ(s.cov, 0.4);
  EXPECT_EQ(s.min, 2);
  EXPECT_EQ(s.max, 9);
}

// A clock that only moves when a query runs: each query takes `step` seconds.
class FakeClock final : public Clock {
 public:
  double now_s() override { return t; }
  double t = 100.0;
};

TEST(TimingLoopTest, WarmupThenUntilBothDurationAndIterations) {
  FakeClock clock;
  int calls = 0;
  auto query = [&]() -> Status {
    ++calls;
    clock.t += 0.010;  // 10 ms per query
    return {};
  };
  // Warm-up 25 ms -> 3 queries (0, 10, 20 ms start before 25 ms). Then at least 5 iterations
  // and at least 0.1 s: 10 queries of 10 ms.
  auto r = run_timing_loop({.warmup_ms = 25, .duration_s = 0.1, .iterations = 5}, clock, query);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->warmup_queries, 3);
  EXPECT_EQ(r->latencies_ms.size(), 10u);
  EXPECT_NEAR(r->latencies_ms[0], 10.0, 1e-9);
  EXPECT_NEAR(r->walltime_s, 0.1, 1e-9);
  EXPECT_EQ(calls, 13);

  // Iterations dominate when queries are slow: 0.01 s minimum but 4 iterations of 10 ms.
  auto r2 = run_timing_loop({.warmup_ms = 0, .duration_s = 0.01, .iterations = 4}, clock, query);
  ASSERT_TRUE(r2.ok());
  EXPECT_EQ(r2->latencies_ms.size(), 4u);
}

TEST(TimingLoopTest, StopsAtTheFirstError) {
  FakeClock clock;
  int calls = 0;
  auto query = [&]() -> Status {
    clock.t += 0.001;
    return ++calls == 3 ? invalid_input("boom") : Status();
  };
  auto r = run_timing_loop({.warmup_ms = 0, .duration_s = 1, .iterations = 10}, clock, query);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "boom");
  EXPECT_EQ(calls, 3);
}

TEST(TimingLoopTest, ConcurrentStreamsMergeLatenciesAndTakeTheLongestWalltime) {
  // Stream 0 takes 10 ms per query, stream 1 40 ms: with 0.1 s minimum and 2 iterations, stream
  // 0 times 10 queries over 0.1 s, stream 1 3 queries over 0.12 s.
  FakeClock fast, slow;
  auto fast_query = [&]() -> Status {
    fast.t += 0.010;
    return {};
  };
  auto slow_query = [&]() -> Status {
    slow.t += 0.040;
    return {};
  };
  auto r = run_concurrent_timing_loops({.warmup_ms = 0, .duration_s = 0.1, .iterations = 2},
                                       {&fast, &slow}, {fast_query, slow_query});
  ASSERT_TRUE(r.ok()) << r.status().message();
  ASSERT_EQ(r->latencies_ms.size(), 13u);
  EXPECT_NEAR(r->latencies_ms.front(), 10.0, 1e-9);
  EXPECT_NEAR(r->latencies_ms.back(), 40.0, 1e-9);
  EXPECT_NEAR(r->walltime_s, 0.12, 1e-9);

  auto failing = []() -> Status { return invalid_input("stream failed"); };
  auto bad = run_concurrent_timing_loops({.warmup_ms = 0, .duration_s = 0.1, .iterations = 2},
                                         {&fast, &slow}, {fast_query, failing});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "stream failed");
}

TEST(AccuracyTest, AgreementMetrics) {
  Tensor ref = Tensor::from_vector<float>({2, 3}, {1, 2, 3, 3, 2, 1});
  Tensor same = ref.clone();
  Agreement a = compare_outputs(ref, same);
  EXPECT_DOUBLE_EQ(a.cosine, 1.0);
  EXPECT_TRUE(std::isinf(a.sqnr_db));
  EXPECT_EQ(a.top1_agreement, 1.0);

  // Noise of 0.1 on one of six elements: |ref|^2 = 28, |noise|^2 = 0.01 -> 10 log10(2800).
  Tensor noisy = Tensor::from_vector<float>({2, 3}, {1, 2, 3, 3, 2, 1.1f});
  a = compare_outputs(ref, noisy);
  EXPECT_NEAR(a.sqnr_db, 10 * std::log10(28.0 / 0.01), 1e-4);
  EXPECT_NEAR(a.max_abs_error, 0.1, 1e-6);
  EXPECT_EQ(a.top1_agreement, 1.0);

  // Row 1's argmax moves from 0 to 2.
  Tensor flipped = Tensor::from_vector<float>({2, 3}, {1, 2, 3, 3, 2, 4});
  EXPECT_EQ(compare_outputs(ref, flipped).top1_agreement, 0.5);
}

}  // namespace
}  // namespace qf::bench
