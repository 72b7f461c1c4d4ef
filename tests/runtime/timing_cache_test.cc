// The timing cache file: round trip, refusal of another device's cache and of corrupt files,
// and the bookkeeping a build reports (hits, misses, whether anything new must be saved).
#include "runtime/timing_cache.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "core/file_util.h"

namespace qf::runtime {
namespace {

const std::string kDevice = "NVIDIA H200 sm_90 cudnn 91400";

TEST(TimingCacheTest, MissingFileIsAnEmptyCache) {
  const auto file = std::filesystem::temp_directory_path() / "qf_timing_cache_missing.txt";
  std::filesystem::remove(file);
  Result<TimingCache> cache = TimingCache::load(file, kDevice);
  ASSERT_TRUE(cache.ok()) << cache.status().message();
  EXPECT_EQ(cache->size(), 0u);
  EXPECT_FALSE(cache->dirty());
  EXPECT_FALSE(std::filesystem::exists(file));  // loading writes nothing
}

TEST(TimingCacheTest, SaveAndLoadRoundTrip) {
  const auto file = std::filesystem::temp_directory_path() / "qf_timing_cache_round.txt";
  TimingCache cache(kDevice);
  cache.put("conv f16 x1x8x224x224 w64x8x7x7", "cudnn algo 1 math 1");
  cache.put("conv f16 x1x64x56x56 w64x64x3x3", "cudnn algo 6 math 1");
  EXPECT_TRUE(cache.dirty());
  ASSERT_TRUE(cache.save(file).ok());
  EXPECT_FALSE(cache.dirty());

  Result<TimingCache> loaded = TimingCache::load(file, kDevice);
  ASSERT_TRUE(loaded.ok()) << loaded.status().message();
  EXPECT_EQ(loaded->size(), 2u);
  EXPECT_EQ(loaded->find("conv f16 x1x64x56x56 w64x64x3x3"), "cudnn algo 6 math 1");
  EXPECT_EQ(loaded->find("conv f16 x2x64x56x56 w64x64x3x3"), std::nullopt);
  EXPECT_EQ(loaded->hits(), 1);
  EXPECT_EQ(loaded->misses(), 1);
  // The same entry again changes nothing; a new tactic for it does.
  loaded->put("conv f16 x1x64x56x56 w64x64x3x3", "cudnn algo 6 math 1");
  EXPECT_FALSE(loaded->dirty());
  loaded->put("conv f16 x1x64x56x56 w64x64x3x3", "cudnn algo 1 math 1");
  EXPECT_TRUE(loaded->dirty());
  std::filesystem::remove(file);
}

TEST(TimingCacheTest, AnotherDevicesCacheIsRefusedByName) {
  TimingCache other("NVIDIA A100 sm_80 cudnn 91400");
  other.put("conv", "cudnn algo 1 math 1");
  Result<TimingCache> cache = TimingCache::parse(other.serialize(), kDevice, "cache.txt");
  ASSERT_FALSE(cache.ok());
  EXPECT_EQ(cache.status().code(), StatusCode::kInvalidInput);
  EXPECT_NE(cache.status().message().find("cache.txt"), std::string::npos);
  EXPECT_NE(cache.status().message().find("A100"), std::string::npos);
  EXPECT_NE(cache.status().message().find("H200"), std::string::npos);
}

TEST(TimingCacheTest, CorruptFilesAreRefusedWithTheLine) {
  const std::string header = "qforge-timing-cache 1\ndevice " + kDevice + "\n";
  for (const std::string& text :
       {std::string("not a cache\n"), std::string("qforge-timing-cache 1\n"),
        std::string("qforge-timing-cache 1\nmachine x\n"), header + "signature without tactic\n",
        header + "\ttactic\n", header + "a\tb\tc\n"}) {
    Result<TimingCache> cache = TimingCache::parse(text, kDevice, "bad.cache");
    ASSERT_FALSE(cache.ok()) << text;
    EXPECT_EQ(cache.status().code(), StatusCode::kInvalidInput) << text;
    EXPECT_NE(cache.status().message().find("bad.cache"), std::string::npos) << text;
  }
  Result<TimingCache> bad_line = TimingCache::parse(header + "ok\tfine\nbroken\n", kDevice, "f");
  ASSERT_FALSE(bad_line.ok());
  EXPECT_NE(bad_line.status().message().find("line 4"), std::string::npos)
      << bad_line.status().message();
}

TEST(TimingCacheTest, UnrepresentableEntriesAreNotStored) {
  TimingCache cache(kDevice);
  cache.put("has\ttab", "x");
  cache.put("sig", "two\nlines");
  cache.put("", "x");
  EXPECT_EQ(cache.size(), 0u);
  EXPECT_FALSE(cache.dirty());
}

}  // namespace
}  // namespace qf::runtime
