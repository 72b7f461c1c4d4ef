#include "onnx/tensor_proto.h"
#include "pass_test_util.h"
#include "passes/passes.h"

namespace qf::passes::testing {
namespace {

// x [2, 3, 4] -> Reshape(x, Concat(Unsqueeze(Gather(Shape(x), 0)), [-1])) -> y [2, 12]: the
// exporters' way of writing a flatten that keeps the batch dim.
ModelBuilder shape_chain(int64_t batch) {
  ModelBuilder b(13);
  b.input("x", kF32, {batch, 3, 4});
  b.output("y", kF32, {batch, 12});
  b.initializer("zero", Tensor::from_vector<int64_t>({}, {0}));
  b.initializer("axes", ints({0}));
  b.initializer("minus_one", ints({-1}));
  b.node("Shape", {"x"}, {"s"});
  auto& gather = b.node("Gather", {"s", "zero"}, {"n"});
  set_int_attr(gather, "axis", 0);
  b.node("Unsqueeze", {"n", "axes"}, {"n1"});
  auto& concat = b.node("Concat", {"n1", "minus_one"}, {"shape"});
  set_int_attr(concat, "axis", 0);
  b.node("Reshape", {"x", "shape"}, {"y"});
  return b;
}

TEST(ConstantFoldingTest, ResolvesShapeGatherConcatChainOnStaticShapes) {
  auto r = run_pass(shape_chain(2), *make_constant_folding_pass());
  EXPECT_TRUE(r.changed);
  EXPECT_EQ(histogram(*r.after), (Histogram{{"Reshape", 1}}));
  const ir::Node* reshape = only_node(*r.after, "Reshape");
  ASSERT_TRUE(reshape && reshape->inputs[1]->is_constant());
  EXPECT_EQ(reshape->inputs[1]->constant.to_int64_vector(), (std::vector<int64_t>{2, -1}));
  expect_same_outputs(*r.before, *r.after);
}

TEST(ConstantFoldingTest, DoesNotApplyToShapesOfDynamicDims) {
  auto r = run_pass(shape_chain(-1), *make_constant_folding_pass());
  EXPECT_FALSE(r.changed);
  EXPECT_EQ(dump(*r.after), dump(*r.before));
  expect_same_outputs(*r.before, *r.after);
}

TEST(ConstantFoldingTest, FoldsConstantArithmeticAndConstantNodes) {
  ModelBuilder b(13);
  b.input("x", kF32, {2, 3});
  b.output("y", kF32, {2, 3});
  b.initializer("a", random_tensor({3}, 1));
  auto& k = b.node("Constant", {}, {"k"});
  auto* attr = k.add_attribute();
  attr->set_name("value");
  attr->set_type(onnx::AttributeProto::TENSOR);
  onnx_io::tensor_to_proto(random_tensor({3}, 2), "k", attr->mutable_t());
  b.node("Add", {"a", "k"}, {"sum"});
  b.node("Sqrt", {"sum"}, {"root"});  // NaN for negative sums: folded like any other value
  b.node("Exp", {"root"}, {"e"});
  b.node("Mul", {"x", "sum"}, {"y"});
  auto r = run_pass(b, *make_constant_folding_pass());
  EXPECT_TRUE(r.changed);
  // Exp and Sqrt become (unread) constants too; dead-node elimination is another pass.
  EXPECT_EQ(histogram(*r.after), (Histogram{{"Mul", 1}}));
  EXPECT_TRUE(r.after->find_value("sum")->is_constant());
  expect_same_outputs(*r.before, *r.after);
}

TEST(ConstantFoldingTest, GraphOutputComputedFromConstantsKeepsItsName) {
  ModelBuilder b(13);
  b.input("x", kF32, {4});
  b.output("y", kF32, {4});
  b.output("c", kF32, {4});
  b.initializer("a", random_tensor({4}, 3));
  b.initializer("b", random_tensor({4}, 4));
  b.node("Relu", {"x"}, {"y"});
  b.node("Add", {"a", "b"}, {"c"});
  auto r = run_pass(b, *make_constant_folding_pass());
  EXPECT_TRUE(r.changed);
  EXPECT_EQ(histogram(*r.after), (Histogram{{"Relu", 1}}));
  ASSERT_EQ(r.after->outputs.size(), 2u);
  EXPECT_EQ(r.after->outputs[1]->name, "c");
  EXPECT_TRUE(r.after->outputs[1]->is_constant());
  expect_same_outputs(*r.before, *r.after);
}

TEST(ConstantFoldingTest, KeepsDequantizeLinearOfConstantWeights) {
  ModelBuilder b(13);
  b.input("x", kF32, {2, 3});
  b.output("y", kF32, {2, 4});
  b.initializer("wq",
                Tensor::from_vector<int8_t>({3, 4}, {1, -2, 3, -4, 5, -6, 7, -8, 9, 10, 11, 12}));
  b.initializer("scale", scalar(0.05f));
  b.initializer("zp", Tensor::from_vector<int8_t>({}, {0}));
  b.node("DequantizeLinear", {"wq", "scale", "zp"}, {"w"});
  b.node("MatMul", {"x", "w"}, {"y"});
  auto r = run_pass(b, *make_constant_folding_pass());
  EXPECT_FALSE(r.changed);
  EXPECT_EQ(dump(*r.after), dump(*r.before));
}

TEST(ConstantFoldingTest, LeavesOutputsAboveTheSizeCap) {
  ModelBuilder b(13);
  b.input("x", kF32, {1});
  b.output("y", kF32, {4097, 4097});
  b.initializer("shape", ints({4097, 4097}));
  auto& fill = b.node("ConstantOfShape", {"shape"}, {"big"});
  auto* attr = fill.add_attribute();
  attr->set_name("value");
  attr->set_type(onnx::AttributeProto::TENSOR);
  onnx_io::tensor_to_proto(Tensor::from_vector<float>({1}, {1.0f}), "v", attr->mutable_t());
  b.node("Add", {"big", "x"}, {"y"});
  auto r = run_pass(b, *make_constant_folding_pass());
  EXPECT_FALSE(r.changed);  // 16.8M elements: more than the 16M cap
  EXPECT_EQ(histogram(*r.after), (Histogram{{"ConstantOfShape", 1}, {"Add", 1}}));
}

}  // namespace
}  // namespace qf::passes::testing
