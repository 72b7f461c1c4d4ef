#include "quant/calib_cache.h"

#include <gtest/gtest.h>

#include <bit>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace qf::quant {
namespace {

// A cache as TensorRT 8.6 writes it (hand-written): 3c010204 is 1/127, 3d4ccccd is 0.05f,
// 3f800000 is 1.0f; "relu:0" is an all-zero tensor.
constexpr std::string_view kTrtFixture =
    "TRT-8601-EntropyCalibration2\n"
    "input: 3c010204\n"
    "conv1_out: 3d4ccccd\n"
    "relu:0: 00000000\n"
    "a: b: 3f800000\n";

void expect_error_at(std::string_view text, int line, std::string_view needle) {
  auto r = parse_calibration_cache(text, "calib.cache");
  ASSERT_FALSE(r.ok()) << "parsed: " << text;
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidInput);
  const std::string& msg = r.status().message();
  EXPECT_NE(msg.find(fmt::format("calib.cache: line {}:", line)), std::string::npos) << msg;
  EXPECT_NE(msg.find(needle), std::string::npos) << msg;
}

TEST(CalibCacheTest, ParsesTensorRTFixture) {
  auto r = parse_calibration_cache(kTrtFixture, "fixture");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->version, "8601");
  EXPECT_EQ(r->algorithm, "EntropyCalibration2");
  ASSERT_EQ(r->scales.size(), 4u);
  EXPECT_EQ(r->scales.at("input"), 1.0f / 127.0f);
  EXPECT_EQ(std::bit_cast<uint32_t>(1.0f / 127.0f), 0x3c010204u);
  EXPECT_EQ(r->scales.at("conv1_out"), 0.05f);
  EXPECT_EQ(r->scales.at("relu:0"), 0.0f);
  EXPECT_EQ(r->scales.at("a: b"), 1.0f);  // split at the last ": "
}

TEST(CalibCacheTest, NamesEndingInColon) {
  auto r = parse_calibration_cache("TRT-100300-MinMaxCalibration\nx:: 3f800000\n", "c");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->scales.at("x:"), 1.0f);
}

TEST(CalibCacheTest, ToleratesCrlfTrailingBlanksAndMissingFinalNewline) {
  for (std::string_view text : {
           "TRT-8601-EntropyCalibration2\r\ninput:0: 3C010204\r\n",
           "TRT-8601-EntropyCalibration2  \ninput:0: 3c010204 \t\n\n",
           "TRT-8601-EntropyCalibration2\ninput:0: 3c010204",
       }) {
    auto r = parse_calibration_cache(text, "c");
    ASSERT_TRUE(r.ok()) << r.status().message();
    EXPECT_EQ(r->algorithm, "EntropyCalibration2");
    EXPECT_EQ(r->scales.at("input:0"), 1.0f / 127.0f);
  }
}

TEST(CalibCacheTest, HeaderOnlyIsAnEmptyCache) {
  auto r = parse_calibration_cache("TRT-7000-EntropyCalibration2\n", "c");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->version, "7000");
  EXPECT_TRUE(r->scales.empty());
}

TEST(CalibCacheTest, BadHeaderIsLineOne) {
  expect_error_at("", 1, "TRT-<version>-<algorithm>");
  expect_error_at("input: 3c010204\n", 1, "'input: 3c010204'");
  expect_error_at("TRT-86a1-EntropyCalibration2\n", 1, "TRT-<version>-<algorithm>");
  expect_error_at("TRT--EntropyCalibration2\n", 1, "TRT-<version>-<algorithm>");
  expect_error_at("TRT-8601-\n", 1, "TRT-<version>-<algorithm>");
  expect_error_at("TRT-8601\n", 1, "TRT-<version>-<algorithm>");
}

TEST(CalibCacheTest, MalformedEntriesNameTheLine) {
  const std::string header = "TRT-8601-EntropyCalibration2\n";
  expect_error_at(header + "a: 3c010204\nb 3c010204\n", 3, "'b 3c010204'");
  expect_error_at(header + "a:3c010204\n", 2, "expected '<tensor name>: <8 hex digits>'");
  expect_error_at(header + "a: 3c01020\n", 2, "'3c01020', not 8 hex digits");
  expect_error_at(header + "a: 3c0102040\n", 2, "not 8 hex digits");
  expect_error_at(header + "a: 3c01020g\n", 2, "not 8 hex digits");
  expect_error_at(header + "a: 0x3c0102\n", 2, "not 8 hex digits");
  expect_error_at(header + "a: \n", 2, "expected '<tensor name>: <8 hex digits>'");
  expect_error_at(header + ": 3c010204\n", 2, "empty tensor name");
  expect_error_at(header + "a: 7fc00000\n", 2, "not a finite number");  // NaN
  expect_error_at(header + "a: bf800000\n", 2, "not a finite number");  // -1
}

TEST(CalibCacheTest, DuplicateNameNamesBothLines) {
  expect_error_at("TRT-8601-EntropyCalibration2\nx: 3c010204\ny: 3c010204\n\nx: 3f800000\n", 5,
                  "duplicate tensor 'x' (first on line 2)");
}

TEST(CalibCacheTest, FormatsSortedLowercaseNewlineTerminated) {
  CalibrationCache cache;
  cache.scales["relu:0"] = 0.0f;
  cache.scales["input"] = 1.0f / 127.0f;
  cache.scales["conv1_out"] = 0.05f;
  cache.scales["B"] = 1.0f;
  EXPECT_EQ(format_calibration_cache(cache),
            "TRT-100300-EntropyCalibration2\n"
            "B: 3f800000\n"
            "conv1_out: 3d4ccccd\n"
            "input: 3c010204\n"
            "relu:0: 00000000\n");
}

TEST(CalibCacheTest, RoundTripIsByteIdentical) {
  auto first = parse_calibration_cache(kTrtFixture, "fixture");
  ASSERT_TRUE(first.ok()) << first.status().message();
  const std::string written = format_calibration_cache(*first);
  auto second = parse_calibration_cache(written, "written");
  ASSERT_TRUE(second.ok()) << second.status().message();
  EXPECT_EQ(second->version, "8601");
  EXPECT_EQ(second->scales, first->scales);
  EXPECT_EQ(format_calibration_cache(*second), written);
  // Already canonical apart from order: same lines, sorted.
  EXPECT_EQ(written,
            "TRT-8601-EntropyCalibration2\n"
            "a: b: 3f800000\n"
            "conv1_out: 3d4ccccd\n"
            "input: 3c010204\n"
            "relu:0: 00000000\n");
}

TEST(CalibCacheTest, WritesAndReadsFiles) {
  const std::filesystem::path dir =
      std::filesystem::path(::testing::TempDir()) / "qforge_calib_cache_test";
  std::filesystem::create_directories(dir);
  const std::filesystem::path path = dir / "model.cache";
  CalibrationCache cache;
  cache.algorithm = "MSECalibration";
  cache.scales["input:0"] = 1.0f / 127.0f;
  cache.scales["out"] = 0.0f;
  ASSERT_TRUE(write_calibration_cache(path, cache).ok());

  std::ifstream in(path, std::ios::binary);
  std::stringstream bytes;
  bytes << in.rdbuf();
  EXPECT_EQ(bytes.str(), "TRT-100300-MSECalibration\ninput:0: 3c010204\nout: 00000000\n");

  auto back = read_calibration_cache(path);
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(back->version, "100300");
  EXPECT_EQ(back->algorithm, "MSECalibration");
  EXPECT_EQ(back->scales, cache.scales);
  std::filesystem::remove_all(dir);
}

TEST(CalibCacheTest, ReadErrorsNameTheFile) {
  const std::filesystem::path dir =
      std::filesystem::path(::testing::TempDir()) / "qforge_calib_cache_read_test";
  std::filesystem::create_directories(dir);
  const std::filesystem::path missing = dir / "missing.cache";
  auto r = read_calibration_cache(missing);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidInput);
  EXPECT_NE(r.status().message().find(missing.string()), std::string::npos);

  const std::filesystem::path bad = dir / "bad.cache";
  std::ofstream(bad) << "TRT-8601-EntropyCalibration2\nx: zz\n";
  auto b = read_calibration_cache(bad);
  ASSERT_FALSE(b.ok());
  EXPECT_NE(b.status().message().find(bad.string() + ": line 2:"), std::string::npos)
      << b.status().message();
  std::filesystem::remove_all(dir);
}

TEST(CalibCacheTest, WriteRefusesWhatCannotBeReadBack) {
  const std::filesystem::path dir =
      std::filesystem::path(::testing::TempDir()) / "qforge_calib_cache_write_test";
  std::filesystem::create_directories(dir);
  const std::filesystem::path path = dir / "x.cache";
  CalibrationCache cache;
  cache.scales["two\nlines"] = 1.0f;
  Status s = write_calibration_cache(path, cache);
  EXPECT_EQ(s.code(), StatusCode::kInvalidInput);
  EXPECT_FALSE(std::filesystem::exists(path));

  cache.scales.clear();
  cache.scales[""] = 1.0f;
  EXPECT_EQ(write_calibration_cache(path, cache).code(), StatusCode::kInvalidInput);

  cache.scales.clear();
  cache.scales["nan"] = std::bit_cast<float>(0x7fc00000u);
  EXPECT_FALSE(write_calibration_cache(path, cache).ok());
  EXPECT_FALSE(std::filesystem::exists(path));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace qf::quant
