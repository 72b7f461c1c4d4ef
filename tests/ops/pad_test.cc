// Pad: opset canonicalisation (Pad-2 attributes, Pad-18 axes), modes, negative pads, symbolic
// shapes and errors.
#include <gtest/gtest.h>

#include "data_movement_test_util.h"

namespace qf {
namespace {

using onnx::TensorProto;
using testing::ModelBuilder;
using testing::untyped_output;

TEST(PadTest, OldAttributesBecomeInputs) {
  ModelBuilder b(2);
  b.input("x", TensorProto::FLOAT, {-1, 2});
  auto& n = b.node("Pad", {"x"}, {"y"});
  testing::set_ints_attr(n, "pads", {0, 1, 0, 0});
  testing::set_float_attr(n, "value", 1.5f);
  untyped_output(b, "y");
  auto m = testing::import(b);
  ASSERT_TRUE(m.ok()) << m.status().message();
  const ir::Node& node = *m->graph->nodes().front();
  ASSERT_EQ(node.inputs.size(), 3u);
  EXPECT_TRUE(node.inputs[1]->is_constant() && node.inputs[2]->is_constant());
  EXPECT_FALSE(node.attrs.has("pads") || node.attrs.has("value"));
  EXPECT_EQ(testing::inferred_shape(*m, "y"), "Nx3");
  auto out = testing::run(*m, {Tensor::from_vector<float>({1, 2}, {7, 8})});
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ(testing::values_of<float>(out->at(0)), (std::vector<float>{1.5f, 7, 8}));
}

// The canonical fill value is an f32 constant; it must still fill integer tensors.
TEST(PadTest, OldValueAttributeFillsIntegers) {
  ModelBuilder b(7);
  b.input("x", TensorProto::INT32, {2});
  auto& n = b.node("Pad", {"x"}, {"y"});
  testing::set_ints_attr(n, "pads", {1, 1});
  testing::set_float_attr(n, "value", -3.0f);
  untyped_output(b, "y");
  auto m = testing::import(b);
  ASSERT_TRUE(m.ok()) << m.status().message();
  auto out = testing::run(*m, {Tensor::from_vector<int32_t>({2}, {5, 6})});
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ(testing::values_of<int32_t>(out->at(0)), (std::vector<int32_t>{-3, 5, 6, -3}));
}

TEST(PadTest, AxesInputPadsOnlyTheListedAxes) {
  ModelBuilder b(18);
  b.input("x", TensorProto::FLOAT, {-1, 2, 2});
  b.initializer("pads", Tensor::from_vector<int64_t>({2}, {1, 0}));
  b.initializer("axes", Tensor::from_vector<int64_t>({1}, {-1}));
  b.node("Pad", {"x", "pads", "", "axes"}, {"y"});
  untyped_output(b, "y");
  auto m = testing::import(b);
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(testing::inferred_shape(*m, "y"), "Nx2x3");
  auto out = testing::run(*m, {Tensor::from_vector<float>({1, 2, 2}, {1, 2, 3, 4})});
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ(testing::values_of<float>(out->at(0)), (std::vector<float>{0, 1, 2, 0, 3, 4}));
}

TEST(PadTest, ModesOnOneAxis) {
  const std::vector<std::pair<std::string, std::vector<int64_t>>> cases = {
      {"constant", {0, 0, 1, 2, 3, 0, 0}},
      {"edge", {1, 1, 1, 2, 3, 3, 3}},
      {"reflect", {3, 2, 1, 2, 3, 2, 1}},
      {"wrap", {2, 3, 1, 2, 3, 1, 2}},
  };
  for (const auto& [mode, want] : cases) {
    ModelBuilder b(19);
    b.input("x", TensorProto::INT64, {3});
    b.initializer("pads", Tensor::from_vector<int64_t>({2}, {2, 2}));
    testing::set_string_attr(b.node("Pad", {"x", "pads"}, {"y"}), "mode", mode);
    untyped_output(b, "y");
    auto m = testing::import(b);
    ASSERT_TRUE(m.ok()) << m.status().message();
    auto out = testing::run(*m, {Tensor::from_vector<int64_t>({3}, {1, 2, 3})});
    ASSERT_TRUE(out.ok()) << out.status().message();
    EXPECT_EQ(testing::values_of<int64_t>(out->at(0)), want) << mode;
  }
}

TEST(PadTest, NegativePadsCrop) {
  ModelBuilder b(13);
  b.input("x", TensorProto::FLOAT, {2, 3});
  b.initializer("pads", Tensor::from_vector<int64_t>({4}, {0, -1, 1, 0}));
  b.node("Pad", {"x", "pads"}, {"y"});
  untyped_output(b, "y");
  auto m = testing::import(b);
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(testing::inferred_shape(*m, "y"), "3x2");
  auto out = testing::run(*m, {Tensor::from_vector<float>({2, 3}, {1, 2, 3, 4, 5, 6})});
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ(testing::values_of<float>(out->at(0)), (std::vector<float>{2, 3, 5, 6, 0, 0}));
}

TEST(PadTest, RuntimePadsKeepTheRank) {
  ModelBuilder b(13);
  b.input("x", TensorProto::FLOAT, {-1, 3});
  b.input("pads", TensorProto::INT64, {4});
  b.node("Pad", {"x", "pads"}, {"y"});
  untyped_output(b, "y");
  auto m = testing::import(b);
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(testing::inferred_shape(*m, "y"), "?x?");
}

TEST(PadTest, ErrorsNameTheNode) {
  ModelBuilder b(13);
  b.input("x", TensorProto::FLOAT, {2, 3});
  b.initializer("pads", Tensor::from_vector<int64_t>({2}, {1, 1}));
  b.node("Pad", {"x", "pads"}, {"y"}, "p");
  untyped_output(b, "y");
  auto m = testing::import(b);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("node 'p' (Pad): pads has 2 entries; 2 axes need 4"),
            std::string::npos)
      << m.status().message();

  ModelBuilder c(13);
  c.input("x", TensorProto::FLOAT, {2, 3});
  c.initializer("pads", Tensor::from_vector<int64_t>({4}, {0, 0, 0, 0}));
  testing::set_string_attr(c.node("Pad", {"x", "pads"}, {"y"}, "p"), "mode", "mirror");
  untyped_output(c, "y");
  auto n = testing::import(c);
  ASSERT_FALSE(n.ok());
  EXPECT_NE(n.status().message().find("unknown mode 'mirror'"), std::string::npos);
}

}  // namespace
}  // namespace qf
