// Pooling: ceil_mode's dropped last window, count_include_pad, Indices with storage_order,
// global pools on symbolic shapes, and errors.
#include <gtest/gtest.h>

#include <limits>

#include "data_movement_test_util.h"

namespace qf {
namespace {

using onnx::TensorProto;
using testing::ModelBuilder;
using testing::untyped_output;
using testing::values_of;

TEST(PoolTest, CeilModeDropsAWindowThatWouldStartInThePadding) {
  // Length 4, kernel 2, stride 2, one pad at the end: ceil((4 + 1 - 2) / 2) + 1 = 3 windows, but
  // the third would start at position 4, inside the padding, so there are 2.
  ModelBuilder b(12);
  b.input("x", TensorProto::FLOAT, {-1, 1, 4});
  auto& n = b.node("MaxPool", {"x"}, {"y"});
  testing::set_ints_attr(n, "kernel_shape", {2});
  testing::set_ints_attr(n, "strides", {2});
  testing::set_ints_attr(n, "pads", {0, 1});
  testing::set_int_attr(n, "ceil_mode", 1);
  untyped_output(b, "y");
  auto m = testing::import(b);
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(testing::inferred_shape(*m, "y"), "Nx1x2");

  // Length 5: the third window starts at 4, inside the input, and is kept.
  ModelBuilder c(12);
  c.input("x", TensorProto::FLOAT, {1, 1, 5});
  auto& n2 = c.node("MaxPool", {"x"}, {"y"});
  testing::set_ints_attr(n2, "kernel_shape", {2});
  testing::set_ints_attr(n2, "strides", {2});
  testing::set_int_attr(n2, "ceil_mode", 1);
  untyped_output(c, "y");
  auto m2 = testing::import(c);
  ASSERT_TRUE(m2.ok()) << m2.status().message();
  auto out = testing::run(*m2, {Tensor::from_vector<float>({1, 1, 5}, {3, 1, 4, 1, 5})});
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ(values_of<float>(out->at(0)), (std::vector<float>{3, 4, 5}));
}

std::vector<float> average_of_ones(int64_t count_include_pad) {
  ModelBuilder b(11);
  b.input("x", TensorProto::FLOAT, {1, 1, 2, 2});
  auto& n = b.node("AveragePool", {"x"}, {"y"});
  testing::set_ints_attr(n, "kernel_shape", {2, 2});
  testing::set_ints_attr(n, "pads", {1, 1, 1, 1});
  testing::set_int_attr(n, "count_include_pad", count_include_pad);
  untyped_output(b, "y");
  auto m = testing::import(b);
  EXPECT_TRUE(m.ok()) << m.status().message();
  if (!m.ok()) return {};
  auto out = testing::run(*m, {Tensor::from_vector<float>({1, 1, 2, 2}, {1, 1, 1, 1})});
  EXPECT_TRUE(out.ok()) << out.status().message();
  return out.ok() ? values_of<float>(out->at(0)) : std::vector<float>{};
}

TEST(PoolTest, CountIncludePadDividesByTheWholeWindow) {
  EXPECT_EQ(average_of_ones(0), std::vector<float>(9, 1.0f));
  EXPECT_EQ(average_of_ones(1),
            (std::vector<float>{0.25f, 0.5f, 0.25f, 0.5f, 1.0f, 0.5f, 0.25f, 0.5f, 0.25f}));
}

TEST(PoolTest, IndicesAreFlatOverTheTensorAndHonourStorageOrder) {
  for (int64_t order : {0, 1}) {
    ModelBuilder b(12);
    b.input("x", TensorProto::FLOAT, {1, 2, 2, 3});
    auto& n = b.node("MaxPool", {"x"}, {"y", "i"});
    testing::set_ints_attr(n, "kernel_shape", {2, 2});
    testing::set_int_attr(n, "storage_order", order);
    untyped_output(b, "y");
    untyped_output(b, "i");
    auto m = testing::import(b);
    ASSERT_TRUE(m.ok()) << m.status().message();
    EXPECT_EQ(testing::inferred_shape(*m, "i"), "1x2x1x2");
    EXPECT_EQ(m->graph->find_value("i")->dtype, DType::kI64);
    // Channel 0 peaks at (1, 1) and (1, 2); channel 1 at (0, 0) and (0, 2).
    auto out = testing::run(
        *m, {Tensor::from_vector<float>({1, 2, 2, 3}, {0, 0, 0, 0, 9, 8, 7, 0, 6, 0, 0, 0})});
    ASSERT_TRUE(out.ok()) << out.status().message();
    EXPECT_EQ(values_of<float>(out->at(0)), (std::vector<float>{9, 9, 7, 6}));
    // Row-major: h * 3 + w; column-major: w * 2 + h. Channel 1 starts at 6 either way.
    const std::vector<int64_t> want =
        order == 0 ? std::vector<int64_t>{4, 4, 6, 8} : std::vector<int64_t>{3, 3, 6, 10};
    EXPECT_EQ(values_of<int64_t>(out->at(1)), want) << "storage_order " << order;
  }
}

TEST(PoolTest, GlobalPoolsKeepSymbolsAndReduceEverySpatialDim) {
  ModelBuilder b(13);
  b.input("x", TensorProto::FLOAT, {-1, 8, 7, 7, 3});
  b.node("GlobalAveragePool", {"x"}, {"a"});
  b.node("GlobalMaxPool", {"x"}, {"m"});
  untyped_output(b, "a");
  untyped_output(b, "m");
  auto m = testing::import(b);
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(testing::inferred_shape(*m, "a"), "Nx8x1x1x1");
  EXPECT_EQ(testing::inferred_shape(*m, "m"), "Nx8x1x1x1");
}

TEST(PoolTest, Int8MaxPoolRunsAndOtherIntegersAreUnsupported) {
  ModelBuilder b(12);
  b.input("x", TensorProto::INT8, {1, 1, 3});
  testing::set_ints_attr(b.node("MaxPool", {"x"}, {"y"}), "kernel_shape", {2});
  untyped_output(b, "y");
  auto m = testing::import(b);
  ASSERT_TRUE(m.ok()) << m.status().message();
  auto out = testing::run(*m, {Tensor::from_vector<int8_t>({1, 1, 3}, {-5, -7, 3})});
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ(values_of<int8_t>(out->at(0)), (std::vector<int8_t>{-5, 3}));

  ModelBuilder c(12);
  c.input("x", TensorProto::INT32, {1, 1, 3});
  testing::set_ints_attr(c.node("AveragePool", {"x"}, {"y"}), "kernel_shape", {2});
  untyped_output(c, "y");
  auto bad = testing::import(c);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kUnsupported);
}

TEST(PoolTest, MissingKernelShapeAndWrongPadsAreErrors) {
  ModelBuilder b(12);
  b.input("x", TensorProto::FLOAT, {1, 1, 4, 4});
  b.node("MaxPool", {"x"}, {"y"}, "pool");
  untyped_output(b, "y");
  auto m = testing::import(b);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("node 'pool' (MaxPool): attribute kernel_shape is required"),
            std::string::npos)
      << m.status().message();

  ModelBuilder c(12);
  c.input("x", TensorProto::FLOAT, {1, 1, 4, 4});
  auto& n = c.node("AveragePool", {"x"}, {"y"});
  testing::set_ints_attr(n, "kernel_shape", {2, 2});
  testing::set_ints_attr(n, "pads", {1, 1});
  untyped_output(c, "y");
  auto m2 = testing::import(c);
  ASSERT_FALSE(m2.ok());
  EXPECT_NE(m2.status().message().find("attribute 'pads' has 2 values, expected 4"),
            std::string::npos)
      << m2.status().message();
}

}  // namespace
}  // namespace qf
