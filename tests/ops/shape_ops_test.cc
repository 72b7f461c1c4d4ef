// Shape, Size, Reshape, Flatten, Squeeze, Unsqueeze, Expand, Identity, Dropout, Constant and
// ConstantOfShape: symbolic shape inference, static resolution of shape subgraphs, opset
// canonicalisation and error messages (the conformance suite checks the values).
#include <gtest/gtest.h>

#include "data_movement_test_util.h"

namespace qf {
namespace {

using onnx::TensorProto;
using testing::ModelBuilder;
using testing::untyped_output;

TEST(ShapeOpsTest, FlattenKeepsTheBatchSymbol) {
  ModelBuilder b(13);
  b.input("x", TensorProto::FLOAT, {-1, 512, 1, 1});
  b.node("Flatten", {"x"}, {"y"});
  untyped_output(b, "y");
  auto m = testing::import(b);
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(testing::inferred_shape(*m, "y"), "Nx512");
}

TEST(ShapeOpsTest, FlattenAxisZeroAndUnknownProducts) {
  ModelBuilder b(13);
  b.input("x", TensorProto::FLOAT, {-1, 3, 4});
  testing::set_int_attr(b.node("Flatten", {"x"}, {"a"}), "axis", 0);
  testing::set_int_attr(b.node("Flatten", {"x"}, {"c"}), "axis", -1);
  untyped_output(b, "a");
  untyped_output(b, "c");
  auto m = testing::import(b);
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(testing::inferred_shape(*m, "a"), "1x?");  // N*12 is not a single symbol
  EXPECT_EQ(testing::inferred_shape(*m, "c"), "?x4");
}

// Shape -> Gather -> Unsqueeze -> Concat -> Reshape, as exporters write `x.view(x.size(0), -1)`:
// with the input shape known, the target shape is folded during import.
TEST(ShapeOpsTest, ShapeGatherConcatReshapeChainResolvesStatically) {
  ModelBuilder b(13);
  b.input("x", TensorProto::FLOAT, {2, 3, 4});
  b.initializer("zero", Tensor::from_vector<int64_t>({}, {0}));
  b.initializer("axes0", Tensor::from_vector<int64_t>({1}, {0}));
  b.initializer("minus1", Tensor::from_vector<int64_t>({1}, {-1}));
  b.node("Shape", {"x"}, {"s"});
  b.node("Gather", {"s", "zero"}, {"n"});
  b.node("Unsqueeze", {"n", "axes0"}, {"n1"});
  testing::set_int_attr(b.node("Concat", {"n1", "minus1"}, {"target"}), "axis", 0);
  b.node("Reshape", {"x", "target"}, {"y"});
  untyped_output(b, "y");
  auto m = testing::import(b);
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(testing::inferred_shape(*m, "target"), "2");
  EXPECT_EQ(testing::inferred_shape(*m, "y"), "2x12");
}

// Shape's start/end (opset 15) can skip a symbolic batch dim: the rest is still a known value.
TEST(ShapeOpsTest, ShapeOfTheKnownTailFeedsReshape) {
  ModelBuilder b(15);
  b.input("x", TensorProto::FLOAT, {-1, 3, 4});
  b.input("y", TensorProto::FLOAT, {12});
  testing::set_int_attr(b.node("Shape", {"x"}, {"s"}), "start", 1);
  b.node("Reshape", {"y", "s"}, {"r"});
  b.node("Size", {"y"}, {"n"});
  untyped_output(b, "r");
  untyped_output(b, "n");
  auto m = testing::import(b);
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(testing::inferred_shape(*m, "s"), "2");
  EXPECT_EQ(testing::inferred_shape(*m, "r"), "3x4");
  EXPECT_EQ(testing::inferred_shape(*m, "n"), "scalar");
  auto out = testing::run(*m, {Tensor(DType::kF32, {5, 3, 4}), Tensor(DType::kF32, {12})});
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ(out->at(0).shape(), (Shape{3, 4}));
  EXPECT_EQ(out->at(1).data<int64_t>()[0], 12);
}

TEST(ShapeOpsTest, ReshapeMinusOneCancelsTheBatchSymbol) {
  ModelBuilder b(14);
  b.input("x", TensorProto::FLOAT, {-1, 3, 4});
  b.initializer("keep_batch", Tensor::from_vector<int64_t>({2}, {0, -1}));
  b.initializer("infer_batch", Tensor::from_vector<int64_t>({2}, {-1, 12}));
  b.initializer("split_last", Tensor::from_vector<int64_t>({4}, {0, 0, 2, 2}));
  b.node("Reshape", {"x", "keep_batch"}, {"a"});
  b.node("Reshape", {"x", "infer_batch"}, {"c"});
  b.node("Reshape", {"x", "split_last"}, {"d"});
  for (const char* o : {"a", "c", "d"}) untyped_output(b, o);
  auto m = testing::import(b);
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(testing::inferred_shape(*m, "a"), "Nx12");
  EXPECT_EQ(testing::inferred_shape(*m, "c"), "Nx12");
  EXPECT_EQ(testing::inferred_shape(*m, "d"), "Nx3x2x2");
}

TEST(ShapeOpsTest, ReshapeToARuntimeShapeKnowsOnlyTheRank) {
  ModelBuilder b(14);
  b.input("x", TensorProto::FLOAT, {2, 6});
  b.input("shape", TensorProto::INT64, {3});
  b.node("Reshape", {"x", "shape"}, {"y"});
  untyped_output(b, "y");
  auto m = testing::import(b);
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(testing::inferred_shape(*m, "y"), "?x?x?");
  auto out =
      testing::run(*m, {Tensor::from_vector<float>({2, 6}, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}),
                        Tensor::from_vector<int64_t>({3}, {3, -1, 2})});
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ(out->at(0).shape(), (Shape{3, 2, 2}));
  EXPECT_EQ(out->at(0).data<float>()[11], 11.0f);
}

TEST(ShapeOpsTest, ReshapeErrorsNameTheNode) {
  ModelBuilder b(14);
  b.input("x", TensorProto::FLOAT, {2, 6});
  b.initializer("two_minus", Tensor::from_vector<int64_t>({2}, {-1, -1}));
  b.node("Reshape", {"x", "two_minus"}, {"y"}, "bad_reshape");
  untyped_output(b, "y");
  auto m = testing::import(b);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), StatusCode::kInvalidInput);
  EXPECT_NE(m.status().message().find("node 'bad_reshape' (Reshape)"), std::string::npos);
  EXPECT_NE(m.status().message().find("more than one -1"), std::string::npos);

  ModelBuilder c(14);
  c.input("x", TensorProto::FLOAT, {2, 6});
  c.initializer("five", Tensor::from_vector<int64_t>({2}, {5, -1}));
  c.node("Reshape", {"x", "five"}, {"y"}, "r");
  untyped_output(c, "y");
  auto n = testing::import(c);
  ASSERT_FALSE(n.ok());
  EXPECT_NE(n.status().message().find("cannot reshape 2x6"), std::string::npos)
      << n.status().message();
}

// Target shapes come from data: absurd values must fail cleanly, not overflow.
TEST(ShapeOpsTest, HugeTargetShapesAreRejected) {
  ModelBuilder b(14);
  b.input("x", TensorProto::FLOAT, {2, 6});
  b.initializer("huge", Tensor::from_vector<int64_t>({3}, {int64_t{1} << 62, 2, 6}));
  b.node("Expand", {"x", "huge"}, {"y"}, "ex");
  untyped_output(b, "y");
  auto m = testing::import(b);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), StatusCode::kInvalidInput);
  EXPECT_NE(m.status().message().find("node 'ex' (Expand): output shape"), std::string::npos)
      << m.status().message();
}

TEST(ShapeOpsTest, ReshapeAllowZeroMakesAnEmptyDim) {
  ModelBuilder b(14);
  b.input("x", TensorProto::FLOAT, {0, 3});
  b.initializer("shape", Tensor::from_vector<int64_t>({2}, {3, 0}));
  testing::set_int_attr(b.node("Reshape", {"x", "shape"}, {"y"}), "allowzero", 1);
  untyped_output(b, "y");
  auto m = testing::import(b);
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(testing::inferred_shape(*m, "y"), "3x0");
}

// Squeeze-11 and Unsqueeze-11 take `axes` as an attribute; import turns it into input 1.
TEST(ShapeOpsTest, OldSqueezeAndUnsqueezeAxesBecomeInputs) {
  ModelBuilder b(11);
  b.input("x", TensorProto::INT32, {-1, 1, 3});
  testing::set_ints_attr(b.node("Squeeze", {"x"}, {"s"}, "sq"), "axes", {1});
  testing::set_ints_attr(b.node("Unsqueeze", {"s"}, {"u"}, "unsq"), "axes", {0, -1});
  untyped_output(b, "u");
  auto m = testing::import(b);
  ASSERT_TRUE(m.ok()) << m.status().message();
  for (const auto& n : m->graph->nodes()) {
    ASSERT_EQ(n->inputs.size(), 2u) << n->label();
    EXPECT_TRUE(n->inputs[1]->is_constant());
    EXPECT_FALSE(n->attrs.has("axes"));
  }
  EXPECT_EQ(testing::inferred_shape(*m, "s"), "Nx3");
  EXPECT_EQ(testing::inferred_shape(*m, "u"), "1xNx3x1");
  auto out = testing::run(*m, {Tensor::from_vector<int32_t>({2, 1, 3}, {1, 2, 3, 4, 5, 6})});
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ(out->at(0).shape(), (Shape{1, 2, 3, 1}));
  EXPECT_EQ(testing::values_of<int32_t>(out->at(0)), (std::vector<int32_t>{1, 2, 3, 4, 5, 6}));
}

TEST(ShapeOpsTest, SqueezeOfADimOtherThanOneIsAnError) {
  ModelBuilder b(13);
  b.input("x", TensorProto::FLOAT, {2, 3});
  b.initializer("axes", Tensor::from_vector<int64_t>({1}, {1}));
  b.node("Squeeze", {"x", "axes"}, {"y"}, "sq");
  untyped_output(b, "y");
  auto m = testing::import(b);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("cannot squeeze axis 1"), std::string::npos)
      << m.status().message();
}

TEST(ShapeOpsTest, SqueezeOfAScalarIsAnError) {
  ModelBuilder b(11);
  b.input("x", TensorProto::FLOAT, {});
  testing::set_ints_attr(b.node("Squeeze", {"x"}, {"y"}, "sq"), "axes", {0});
  untyped_output(b, "y");
  auto m = testing::import(b);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), StatusCode::kInvalidInput);
}

TEST(ShapeOpsTest, SqueezeWithoutAxesNeedsKnownDims) {
  ModelBuilder b(13);
  b.input("x", TensorProto::FLOAT, {1, 3, 1});
  b.input("z", TensorProto::FLOAT, {-1, 3, 1});
  b.node("Squeeze", {"x"}, {"y"});
  b.node("Squeeze", {"z"}, {"w"});
  untyped_output(b, "y");
  untyped_output(b, "w");
  auto m = testing::import(b);
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(testing::inferred_shape(*m, "y"), "3");
  EXPECT_EQ(testing::inferred_shape(*m, "w"), "?");  // N might be 1
}

TEST(ShapeOpsTest, ExpandBroadcastsSymbolsAndAnyElementType) {
  ModelBuilder b(13);
  b.input("x", TensorProto::INT64, {-1, 1, 2});
  b.initializer("shape", Tensor::from_vector<int64_t>({3}, {1, 3, 1}));
  b.node("Expand", {"x", "shape"}, {"y"});
  untyped_output(b, "y");
  auto m = testing::import(b);
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(testing::inferred_shape(*m, "y"), "Nx3x2");
  auto out = testing::run(*m, {Tensor::from_vector<int64_t>({2, 1, 2}, {1, 2, 3, 4})});
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ(out->at(0).shape(), (Shape{2, 3, 2}));
  EXPECT_EQ(testing::values_of<int64_t>(out->at(0)),
            (std::vector<int64_t>{1, 2, 1, 2, 1, 2, 3, 4, 3, 4, 3, 4}));
}

TEST(ShapeOpsTest, ExpandToARuntimeShapeKeepsDimsLargerThanOne) {
  ModelBuilder b(13);
  b.input("x", TensorProto::FLOAT, {1, 5});
  b.input("shape", TensorProto::INT64, {3});
  b.node("Expand", {"x", "shape"}, {"y"});
  untyped_output(b, "y");
  auto m = testing::import(b);
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(testing::inferred_shape(*m, "y"), "?x?x5");
}

TEST(ShapeOpsTest, IdentityCopiesHalfBitPatterns) {
  ModelBuilder b(13);
  b.input("x", TensorProto::FLOAT16, {3});
  b.node("Identity", {"x"}, {"y"});
  untyped_output(b, "y");
  auto m = testing::import(b);
  ASSERT_TRUE(m.ok()) << m.status().message();
  Tensor x(DType::kF16, {3});
  x.data<f16_t>()[0] = f32_to_f16(1.5f);
  x.data<f16_t>()[1] = f16_t{0x7e01};  // a NaN payload must survive
  x.data<f16_t>()[2] = f32_to_f16(-0.0f);
  auto out = testing::run(*m, {x});
  ASSERT_TRUE(out.ok()) << out.status().message();
  ASSERT_EQ(out->at(0).dtype(), DType::kF16);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(out->at(0).data<f16_t>()[i].bits, x.data<f16_t>()[i].bits);
}

TEST(ShapeOpsTest, DropoutMaskTypeFollowsTheOpset) {
  for (int opset : {7, 12}) {
    ModelBuilder b(opset);
    b.input("x", TensorProto::FLOAT, {-1, 4});
    b.node("Dropout", {"x"}, {"y", "mask"});
    untyped_output(b, "y");
    untyped_output(b, "mask");
    auto m = testing::import(b);
    ASSERT_TRUE(m.ok()) << m.status().message();
    EXPECT_EQ(m->graph->find_value("mask")->dtype, opset >= 10 ? DType::kBool : DType::kF32);
    EXPECT_EQ(testing::inferred_shape(*m, "mask"), "Nx4");
    auto out = testing::run(*m, {Tensor::from_vector<float>({1, 4}, {1, -2, 3, -4})});
    ASSERT_TRUE(out.ok()) << out.status().message();
    EXPECT_EQ(testing::values_of<float>(out->at(0)), (std::vector<float>{1, -2, 3, -4}));
    if (opset >= 10) {
      EXPECT_EQ(testing::values_of<bool>(out->at(1)), (std::vector<bool>{true, true, true, true}));
    } else {
      EXPECT_EQ(testing::values_of<float>(out->at(1)), (std::vector<float>{1, 1, 1, 1}));
    }
  }
}

TEST(ShapeOpsTest, DropoutInTrainingModeIsUnsupportedAtRunTime) {
  ModelBuilder b(13);
  b.input("x", TensorProto::FLOAT, {4});
  b.initializer("ratio", Tensor::from_vector<float>({}, {0.5f}));
  b.initializer("training", Tensor::from_vector<bool>({}, {true}));
  b.node("Dropout", {"x", "ratio", "training"}, {"y"}, "drop");
  untyped_output(b, "y");
  auto m = testing::import(b);
  ASSERT_TRUE(m.ok()) << m.status().message();  // inspect must still see the model
  auto out = testing::run(*m, {Tensor(DType::kF32, {4})});
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(out.status().message().find("node 'drop' (Dropout)"), std::string::npos);
}

TEST(ShapeOpsTest, ConstantIntsFeedReshapeStatically) {
  ModelBuilder b(13);
  b.input("x", TensorProto::FLOAT, {-1, 6});
  testing::set_ints_attr(b.node("Constant", {}, {"shape"}), "value_ints", {0, 2, 3});
  b.node("Reshape", {"x", "shape"}, {"y"});
  untyped_output(b, "y");
  auto m = testing::import(b);
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(m->graph->find_value("shape")->dtype, DType::kI64);
  EXPECT_EQ(testing::inferred_shape(*m, "y"), "Nx2x3");
}

TEST(ShapeOpsTest, ConstantWithoutValueIsAnError) {
  ModelBuilder b(13);
  b.node("Constant", {}, {"c"}, "empty_const");
  untyped_output(b, "c");
  auto m = testing::import(b);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("node 'empty_const' (Constant): Constant has no value"),
            std::string::npos)
      << m.status().message();
}

TEST(ShapeOpsTest, ConstantOfShapeFromShapeOfAnInput) {
  ModelBuilder b(13);
  b.input("x", TensorProto::FLOAT, {2, 3});
  b.input("dyn", TensorProto::INT64, {2});
  b.node("Shape", {"x"}, {"s"});
  testing::set_tensor_attr(b.node("ConstantOfShape", {"s"}, {"c"}), "value",
                           Tensor::from_vector<int32_t>({1}, {7}));
  b.node("ConstantOfShape", {"dyn"}, {"d"});
  untyped_output(b, "c");
  untyped_output(b, "d");
  auto m = testing::import(b);
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(testing::inferred_shape(*m, "c"), "2x3");
  EXPECT_EQ(m->graph->find_value("c")->dtype, DType::kI32);
  EXPECT_EQ(testing::inferred_shape(*m, "d"), "?x?");
  EXPECT_EQ(m->graph->find_value("d")->dtype, DType::kF32);
  auto out =
      testing::run(*m, {Tensor(DType::kF32, {2, 3}), Tensor::from_vector<int64_t>({2}, {1, 2})});
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ(testing::values_of<int32_t>(out->at(0)), (std::vector<int32_t>(6, 7)));
  EXPECT_EQ(out->at(1).shape(), (Shape{1, 2}));
}

}  // namespace
}  // namespace qf
