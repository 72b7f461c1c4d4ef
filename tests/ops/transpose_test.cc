// Transpose: symbolic permutation, default perm, type-generic kernel, perm validation.
#include <gtest/gtest.h>

#include "data_movement_test_util.h"

namespace qf {
namespace {

using onnx::TensorProto;
using testing::ModelBuilder;
using testing::untyped_output;

TEST(TransposeTest, PermutesSymbolicDims) {
  ModelBuilder b(13);
  b.input("x", TensorProto::FLOAT, {-1, 3, 224, 225});
  testing::set_ints_attr(b.node("Transpose", {"x"}, {"nhwc"}), "perm", {0, 2, 3, 1});
  b.node("Transpose", {"x"}, {"rev"});
  untyped_output(b, "nhwc");
  untyped_output(b, "rev");
  auto m = testing::import(b);
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(testing::inferred_shape(*m, "nhwc"), "Nx224x225x3");
  EXPECT_EQ(testing::inferred_shape(*m, "rev"), "225x224x3xN");
}

TEST(TransposeTest, MovesInt8AndBoolElements) {
  ModelBuilder b(13);
  b.input("x", TensorProto::INT8, {2, 3});
  b.input("m", TensorProto::BOOL, {1, 2, 2});
  b.node("Transpose", {"x"}, {"y"});
  testing::set_ints_attr(b.node("Transpose", {"m"}, {"n"}), "perm", {2, 0, 1});
  untyped_output(b, "y");
  untyped_output(b, "n");
  auto m = testing::import(b);
  ASSERT_TRUE(m.ok()) << m.status().message();
  auto out = testing::run(*m, {Tensor::from_vector<int8_t>({2, 3}, {1, 2, 3, -4, -5, -6}),
                               Tensor::from_vector<bool>({1, 2, 2}, {true, false, false, false})});
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ(out->at(0).shape(), (Shape{3, 2}));
  EXPECT_EQ(testing::values_of<int8_t>(out->at(0)), (std::vector<int8_t>{1, -4, 2, -5, 3, -6}));
  EXPECT_EQ(out->at(1).shape(), (Shape{2, 1, 2}));
  EXPECT_EQ(testing::values_of<bool>(out->at(1)), (std::vector<bool>{true, false, false, false}));
}

TEST(TransposeTest, FourDimensionalPermutationMatchesIndexFormula) {
  ModelBuilder b(13);
  b.input("x", TensorProto::FLOAT, {2, 3, 4, 5});
  testing::set_ints_attr(b.node("Transpose", {"x"}, {"y"}), "perm", {3, 1, 0, 2});
  untyped_output(b, "y");
  auto m = testing::import(b);
  ASSERT_TRUE(m.ok()) << m.status().message();
  std::vector<float> data(120);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<float>(i);
  auto out = testing::run(*m, {Tensor::from_vector<float>({2, 3, 4, 5}, data)});
  ASSERT_TRUE(out.ok()) << out.status().message();
  const Tensor& y = out->at(0);
  ASSERT_EQ(y.shape(), (Shape{5, 3, 2, 4}));
  for (int a = 0; a < 2; ++a) {
    for (int c = 0; c < 3; ++c) {
      for (int h = 0; h < 4; ++h) {
        for (int w = 0; w < 5; ++w) {
          const float want = static_cast<float>(((a * 3 + c) * 4 + h) * 5 + w);
          EXPECT_EQ(y.data<float>()[((w * 3 + c) * 2 + a) * 4 + h], want);
        }
      }
    }
  }
}

TEST(TransposeTest, InvalidPermIsAnError) {
  ModelBuilder b(13);
  b.input("x", TensorProto::FLOAT, {2, 3, 4});
  testing::set_ints_attr(b.node("Transpose", {"x"}, {"y"}, "tr"), "perm", {0, 0, 1});
  untyped_output(b, "y");
  auto m = testing::import(b);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), StatusCode::kInvalidInput);
  EXPECT_NE(m.status().message().find("node 'tr' (Transpose): perm repeats axis 0"),
            std::string::npos)
      << m.status().message();

  ModelBuilder c(13);
  c.input("x", TensorProto::FLOAT, {2, 3, 4});
  testing::set_ints_attr(c.node("Transpose", {"x"}, {"y"}, "tr"), "perm", {1, 0});
  untyped_output(c, "y");
  auto n = testing::import(c);
  ASSERT_FALSE(n.ok());
  EXPECT_NE(n.status().message().find("perm has 2 entries but the input has rank 3"),
            std::string::npos)
      << n.status().message();
}

}  // namespace
}  // namespace qf
