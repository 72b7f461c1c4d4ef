// Resize and Upsample: opset canonicalisation (Upsample-7/9, Resize-10), symbolic shapes,
// N-d linear interpolation, integer rounding, opset-18/19 attributes and errors.
#include <gtest/gtest.h>

#include "data_movement_test_util.h"

namespace qf {
namespace {

using onnx::TensorProto;
using testing::ModelBuilder;
using testing::untyped_output;

TEST(ResizeTest, Upsample7ScalesAttributeBecomesResizeInputs) {
  ModelBuilder b(7);
  b.input("x", TensorProto::FLOAT, {-1, 1, 2, 2});
  auto& n = b.node("Upsample", {"x"}, {"y"});
  testing::set_floats_attr(n, "scales", {1, 1, 2, 3});
  testing::set_string_attr(n, "mode", "nearest");
  untyped_output(b, "y");
  auto m = testing::import(b);
  ASSERT_TRUE(m.ok()) << m.status().message();
  const ir::Node& node = *m->graph->nodes().front();
  ASSERT_EQ(node.inputs.size(), 3u);
  EXPECT_EQ(node.inputs[1], nullptr);  // roi
  ASSERT_NE(node.inputs[2], nullptr);
  EXPECT_TRUE(node.inputs[2]->is_constant());
  EXPECT_FALSE(node.attrs.has("scales"));
  EXPECT_EQ(node.attrs.get_string("coordinate_transformation_mode", ""), "asymmetric");
  EXPECT_EQ(testing::inferred_shape(*m, "y"), "Nx1x4x6");
  auto out = testing::run(*m, {Tensor::from_vector<float>({1, 1, 2, 2}, {1, 2, 3, 4})});
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ(
      testing::values_of<float>(out->at(0)),
      (std::vector<float>{1, 1, 1, 2, 2, 2, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 3, 3, 3, 4, 4, 4}));
}

TEST(ResizeTest, Upsample9LinearIsAsymmetric) {
  ModelBuilder b(9);
  b.input("x", TensorProto::FLOAT, {1, 2});
  b.initializer("scales", Tensor::from_vector<float>({2}, {1, 2}));
  testing::set_string_attr(b.node("Upsample", {"x", "scales"}, {"y"}), "mode", "linear");
  untyped_output(b, "y");
  auto m = testing::import(b);
  ASSERT_TRUE(m.ok()) << m.status().message();
  auto out = testing::run(*m, {Tensor::from_vector<float>({1, 2}, {1, 2})});
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ(testing::values_of<float>(out->at(0)), (std::vector<float>{1, 1.5f, 2, 2}));
}

// Resize-10 rounds nearest downsampling up (the opset-10 test data and ONNX Runtime agree).
TEST(ResizeTest, Resize10NearestDownsampleTakesTheCeiling) {
  ModelBuilder b(10);
  b.input("x", TensorProto::FLOAT, {1, 1, 2, 4});
  b.initializer("scales", Tensor::from_vector<float>({4}, {1, 1, 0.6f, 0.6f}));
  testing::set_string_attr(b.node("Resize", {"x", "scales"}, {"y"}), "mode", "nearest");
  untyped_output(b, "y");
  auto m = testing::import(b);
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(testing::inferred_shape(*m, "y"), "1x1x1x2");
  auto out = testing::run(*m, {Tensor::from_vector<float>({1, 1, 2, 4}, {1, 2, 3, 4, 5, 6, 7, 8})});
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ(testing::values_of<float>(out->at(0)), (std::vector<float>{1, 3}));
}

TEST(ResizeTest, SymbolicShapes) {
  ModelBuilder b(18);
  b.input("x", TensorProto::FLOAT, {-1, 3, 8, 8});
  b.input("sizes", TensorProto::INT64, {2});
  b.input("all_sizes", TensorProto::INT64, {4});
  b.initializer("scales", Tensor::from_vector<float>({4}, {1, 1, 2, 0.5f}));
  b.node("Resize", {"x", "", "scales"}, {"scaled"});
  testing::set_ints_attr(b.node("Resize", {"x", "", "", "sizes"}, {"hw"}), "axes", {2, 3});
  b.node("Resize", {"x", "", "", "all_sizes"}, {"any"});
  for (const char* o : {"scaled", "hw", "any"}) untyped_output(b, o);
  auto m = testing::import(b);
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(testing::inferred_shape(*m, "scaled"), "Nx3x16x4");
  EXPECT_EQ(testing::inferred_shape(*m, "hw"), "Nx3x?x?");
  EXPECT_EQ(testing::inferred_shape(*m, "any"), "?x?x?x?");
}

TEST(ResizeTest, BilinearHalfPixelMatchesHandComputedValues) {
  ModelBuilder b(13);
  b.input("x", TensorProto::FLOAT, {1, 1, 2, 2});
  b.initializer("scales", Tensor::from_vector<float>({4}, {1, 1, 2, 2}));
  testing::set_string_attr(b.node("Resize", {"x", "", "scales"}, {"y"}), "mode", "linear");
  untyped_output(b, "y");
  auto m = testing::import(b);
  ASSERT_TRUE(m.ok()) << m.status().message();
  auto out = testing::run(*m, {Tensor::from_vector<float>({1, 1, 2, 2}, {1, 2, 3, 4})});
  ASSERT_TRUE(out.ok()) << out.status().message();
  // Rows interpolate 1,2 -> 1, 1.25, 1.75, 2 and 3,4 -> 3, 3.25, 3.75, 4; columns likewise.
  const std::vector<float> want = {1,   1.25, 1.75, 2,   1.5, 1.75, 2.25, 2.5,
                                   2.5, 2.75, 3.25, 3.5, 3,   3.25, 3.75, 4};
  EXPECT_EQ(testing::values_of<float>(out->at(0)), want);
}

TEST(ResizeTest, TrilinearOnFiveDims) {
  ModelBuilder b(13);
  b.input("x", TensorProto::DOUBLE, {1, 1, 2, 1, 1});
  b.initializer("sizes", Tensor::from_vector<int64_t>({5}, {1, 1, 3, 2, 1}));
  auto& n = b.node("Resize", {"x", "", "", "sizes"}, {"y"});
  testing::set_string_attr(n, "mode", "linear");
  testing::set_string_attr(n, "coordinate_transformation_mode", "align_corners");
  untyped_output(b, "y");
  auto m = testing::import(b);
  ASSERT_TRUE(m.ok()) << m.status().message();
  auto out = testing::run(*m, {Tensor::from_vector<double>({1, 1, 2, 1, 1}, {0, 10})});
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ(testing::values_of<double>(out->at(0)), (std::vector<double>{0, 0, 5, 5, 10, 10}));
}

TEST(ResizeTest, IntegerLinearRoundsToNearest) {
  ModelBuilder b(13);
  b.input("x", TensorProto::UINT8, {2});
  b.initializer("scales", Tensor::from_vector<float>({1}, {2}));
  testing::set_string_attr(b.node("Resize", {"x", "", "scales"}, {"y"}), "mode", "linear");
  untyped_output(b, "y");
  auto m = testing::import(b);
  ASSERT_TRUE(m.ok()) << m.status().message();
  auto out = testing::run(*m, {Tensor::from_vector<uint8_t>({2}, {0, 255})});
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ(testing::values_of<uint8_t>(out->at(0)), (std::vector<uint8_t>{0, 64, 191, 255}));
}

// half_pixel_symmetric (opset 19) centres the sampling grid when the output length is rounded.
TEST(ResizeTest, HalfPixelSymmetricIsSymmetric) {
  ModelBuilder b(19);
  b.input("x", TensorProto::FLOAT, {2});
  b.initializer("scales", Tensor::from_vector<float>({1}, {2.3f}));
  auto& n = b.node("Resize", {"x", "", "scales"}, {"y"});
  testing::set_string_attr(n, "mode", "linear");
  testing::set_string_attr(n, "coordinate_transformation_mode", "half_pixel_symmetric");
  untyped_output(b, "y");
  auto m = testing::import(b);
  ASSERT_TRUE(m.ok()) << m.status().message();
  auto out = testing::run(*m, {Tensor::from_vector<float>({2}, {1, 2})});
  ASSERT_TRUE(out.ok()) << out.status().message();
  const std::vector<float> y = testing::values_of<float>(out->at(0));
  ASSERT_EQ(y.size(), 4u);
  EXPECT_FLOAT_EQ(y[0], 1.0f);
  EXPECT_NEAR(y[1], 1.282609f, 1e-5);
  EXPECT_FLOAT_EQ(y[1] + y[2], 3.0f);
  EXPECT_FLOAT_EQ(y[3], 2.0f);
}

TEST(ResizeTest, KeepAspectRatioPolicies) {
  for (const auto& [policy, want] : std::vector<std::pair<std::string, std::string>>{
           {"stretch", "1x1x4x4"}, {"not_larger", "1x1x2x4"}, {"not_smaller", "1x1x4x8"}}) {
    ModelBuilder b(18);
    b.input("x", TensorProto::FLOAT, {1, 1, 2, 4});
    b.initializer("sizes", Tensor::from_vector<int64_t>({2}, {4, 4}));
    auto& n = b.node("Resize", {"x", "", "", "sizes"}, {"y"});
    testing::set_ints_attr(n, "axes", {2, 3});
    testing::set_string_attr(n, "keep_aspect_ratio_policy", policy);
    untyped_output(b, "y");
    auto m = testing::import(b);
    ASSERT_TRUE(m.ok()) << m.status().message();
    EXPECT_EQ(testing::inferred_shape(*m, "y"), want) << policy;
  }
}

TEST(ResizeTest, AntialiasedDownsamplingIsUnsupported) {
  ModelBuilder b(18);
  b.input("x", TensorProto::FLOAT, {4});
  b.initializer("scales", Tensor::from_vector<float>({1}, {0.5f}));
  auto& n = b.node("Resize", {"x", "", "scales"}, {"y"}, "rs");
  testing::set_string_attr(n, "mode", "linear");
  testing::set_int_attr(n, "antialias", 1);
  untyped_output(b, "y");
  auto m = testing::import(b);
  ASSERT_TRUE(m.ok()) << m.status().message();
  auto out = testing::run(*m, {Tensor(DType::kF32, {4})});
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(out.status().message().find("node 'rs' (Resize)"), std::string::npos);
}

TEST(ResizeTest, ErrorsNameTheNode) {
  ModelBuilder b(13);
  b.input("x", TensorProto::FLOAT, {1, 1, 2, 2});
  b.initializer("scales", Tensor::from_vector<float>({2}, {2, 2}));
  b.node("Resize", {"x", "", "scales"}, {"y"}, "rs");
  untyped_output(b, "y");
  auto m = testing::import(b);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("node 'rs' (Resize): scales has 2 entries but 4 axes"),
            std::string::npos)
      << m.status().message();

  ModelBuilder c(13);
  c.input("x", TensorProto::FLOAT, {2});
  c.initializer("scales", Tensor::from_vector<float>({1}, {2}));
  testing::set_string_attr(c.node("Resize", {"x", "", "scales"}, {"y"}, "rs"), "mode", "area");
  untyped_output(c, "y");
  auto n = testing::import(c);
  ASSERT_FALSE(n.ok());
  EXPECT_NE(n.status().message().find("unknown mode 'area'"), std::string::npos);
}

}  // namespace
}  // namespace qf
