// The activation arena's liveness-based placement.
#include "runtime/arena.h"

#include <gtest/gtest.h>

namespace qf::runtime {
namespace {

bool overlap(const ArenaRequest& a, int64_t oa, const ArenaRequest& b, int64_t ob) {
  const bool in_time = a.first <= b.last && b.first <= a.last;
  const bool in_space = oa < ob + b.bytes && ob < oa + a.bytes;
  return in_time && in_space;
}

void expect_valid(const std::vector<ArenaRequest>& reqs, const ArenaLayout& layout) {
  ASSERT_EQ(layout.offsets.size(), reqs.size());
  for (size_t i = 0; i < reqs.size(); ++i) {
    EXPECT_EQ(layout.offsets[i] % 64, 0) << i;
    EXPECT_LE(layout.offsets[i] + reqs[i].bytes, layout.size) << i;
    for (size_t j = i + 1; j < reqs.size(); ++j) {
      EXPECT_FALSE(overlap(reqs[i], layout.offsets[i], reqs[j], layout.offsets[j]))
          << "buffers " << i << " and " << j << " share bytes while both are live";
    }
  }
}

TEST(ArenaTest, AChainReusesMemoryOfDeadBuffers) {
  // a -> b -> c -> d: each buffer is read by the next step only, so two slots suffice.
  const std::vector<ArenaRequest> reqs = {{1000, 0, 1}, {1000, 1, 2}, {1000, 2, 3}, {1000, 3, 4}};
  const ArenaLayout layout = plan_arena(reqs);
  expect_valid(reqs, layout);
  EXPECT_EQ(layout.size, 2 * 1024);  // two 64-aligned slots of 1000 bytes
  EXPECT_EQ(layout.offsets[0], layout.offsets[2]);
}

TEST(ArenaTest, ALongLivedBufferKeepsItsPlaceAndThePeakIsTheLiveSum) {
  // A residual kept alive across three steps, while two temporaries come and go beside it.
  const std::vector<ArenaRequest> reqs = {{4096, 0, 4}, {2048, 1, 2}, {2048, 2, 3}, {512, 3, 4}};
  const ArenaLayout layout = plan_arena(reqs);
  expect_valid(reqs, layout);
  EXPECT_EQ(layout.size, 4096 + 2048 + 2048);  // step 2: all three of the first ones are live
}

TEST(ArenaTest, ManyRandomLifetimesNeverOverlapAndStayBelowTheNaiveSum) {
  std::vector<ArenaRequest> reqs;
  int64_t total = 0;
  uint32_t s = 12345;
  auto next = [&] { return s = s * 1664525u + 1013904223u; };
  for (int i = 0; i < 200; ++i) {
    const int first = static_cast<int>(next() % 100);
    reqs.push_back(
        {static_cast<int64_t>(next() % 10000 + 1), first, first + static_cast<int>(next() % 10)});
    total += reqs.back().bytes;
  }
  const ArenaLayout layout = plan_arena(reqs);
  expect_valid(reqs, layout);
  EXPECT_LT(layout.size, total / 2);
}

TEST(ArenaTest, NoBuffersNeedNoMemory) {
  EXPECT_EQ(plan_arena({}).size, 0);
}

}  // namespace
}  // namespace qf::runtime
