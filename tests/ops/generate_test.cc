// Range and Tile: static folding, symbolic shapes, errors.
#include <gtest/gtest.h>

#include "data_movement_test_util.h"

namespace qf {
namespace {

using onnx::TensorProto;
using testing::ModelBuilder;
using testing::untyped_output;

TEST(RangeTest, ConstantArgumentsGiveAStaticLength) {
  ModelBuilder b(11);
  b.input("limit", TensorProto::INT32, {});
  b.initializer("start", Tensor::from_vector<int32_t>({}, {10}));
  b.initializer("stop", Tensor::from_vector<int32_t>({}, {0}));
  b.initializer("delta", Tensor::from_vector<int32_t>({}, {-3}));
  b.node("Range", {"start", "stop", "delta"}, {"down"});
  b.node("Range", {"stop", "limit", "delta"}, {"dynamic"});
  untyped_output(b, "down");
  untyped_output(b, "dynamic");
  auto m = testing::import(b);
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(testing::inferred_shape(*m, "down"), "4");
  EXPECT_EQ(testing::inferred_shape(*m, "dynamic"), "?");
  auto out = testing::run(*m, {Tensor::from_vector<int32_t>({}, {-7})});
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ(testing::values_of<int32_t>(out->at(0)), (std::vector<int32_t>{10, 7, 4, 1}));
  EXPECT_EQ(testing::values_of<int32_t>(out->at(1)), (std::vector<int32_t>{0, -3, -6}));
}

TEST(RangeTest, ZeroDeltaIsAnError) {
  ModelBuilder b(11);
  b.initializer("s", Tensor::from_vector<float>({}, {0}));
  b.initializer("d", Tensor::from_vector<float>({}, {0}));
  b.node("Range", {"s", "s", "d"}, {"y"}, "r");
  untyped_output(b, "y");
  auto m = testing::import(b);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("node 'r' (Range): delta is 0"), std::string::npos)
      << m.status().message();
}

TEST(TileTest, SymbolicDimsAndBoolData) {
  ModelBuilder b(13);
  b.input("x", TensorProto::BOOL, {-1, 2});
  b.initializer("reps", Tensor::from_vector<int64_t>({2}, {1, 2}));
  b.node("Tile", {"x", "reps"}, {"y"});
  untyped_output(b, "y");
  auto m = testing::import(b);
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(testing::inferred_shape(*m, "y"), "Nx4");
  auto out = testing::run(*m, {Tensor::from_vector<bool>({1, 2}, {true, false})});
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ(testing::values_of<bool>(out->at(0)), (std::vector<bool>{true, false, true, false}));
}

TEST(TileTest, RepeatsMustMatchTheRank) {
  ModelBuilder b(13);
  b.input("x", TensorProto::FLOAT, {2, 2});
  b.initializer("reps", Tensor::from_vector<int64_t>({1}, {2}));
  b.node("Tile", {"x", "reps"}, {"y"}, "t");
  untyped_output(b, "y");
  auto m = testing::import(b);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("repeats has 1 entries but the input has rank 2"),
            std::string::npos)
      << m.status().message();
}

}  // namespace
}  // namespace qf
