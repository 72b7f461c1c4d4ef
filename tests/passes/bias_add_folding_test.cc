#include "pass_test_util.h"
#include "passes/passes.h"

namespace qf::passes::testing {
namespace {

// x [N, 3, 6, 6] -> Conv (5 channels, 3x3) -> Add(bias of `bias_shape`, constant first or
// second) -> y.
ModelBuilder conv_add(const Shape& bias_shape, bool constant_first, bool conv_bias,
                      const std::vector<int64_t>& y_dims = {-1, 5, 4, 4}) {
  ModelBuilder b(13);
  b.input("x", kF32, {-1, 3, 6, 6});
  b.output("y", kF32, y_dims);
  b.initializer("w", random_tensor({5, 3, 3, 3}, 1));
  b.initializer("bias", random_tensor(bias_shape, 2));
  std::vector<std::string> inputs = {"x", "w"};
  if (conv_bias) {
    b.initializer("b", random_tensor({5}, 3));
    inputs.push_back("b");
  }
  b.node("Conv", inputs, {"c"});
  b.node("Add",
         constant_first ? std::vector<std::string>{"bias", "c"}
                        : std::vector<std::string>{"c", "bias"},
         {"y"});
  return b;
}

TEST(BiasAddFoldingTest, FoldsPerChannelAddIntoConvBias) {
  for (const Shape& shape : {Shape{5, 1, 1}, Shape{1, 5, 1, 1}, Shape{1}}) {
    for (bool constant_first : {false, true}) {
      for (bool conv_bias : {false, true}) {
        SCOPED_TRACE(shape_str(shape) + (constant_first ? " bias+conv" : " conv+bias") +
                     (conv_bias ? " with B" : ""));
        auto r =
            run_pass(conv_add(shape, constant_first, conv_bias), *make_bias_add_folding_pass());
        EXPECT_TRUE(r.changed);
        EXPECT_EQ(histogram(*r.after), (Histogram{{"Conv", 1}}));
        const ir::Node* conv = only_node(*r.after, "Conv");
        ASSERT_TRUE(conv);
        EXPECT_EQ(conv->outputs[0]->name, "y");
        EXPECT_EQ(conv->inputs[2]->constant.shape(), (Shape{5}));
        expect_same_outputs(*r.before, *r.after);
      }
    }
  }
}

TEST(BiasAddFoldingTest, DoesNotApplyToAddThatIsNotPerChannel) {
  for (const Shape& shape : {Shape{1, 5, 4, 4}, Shape{4}, Shape{2, 1, 5, 1, 1}}) {
    SCOPED_TRACE(shape_str(shape));
    // A rank-5 addend broadcasts the output up a dim.
    const ModelBuilder b = conv_add(shape, false, false,
                                    shape.size() == 5 ? std::vector<int64_t>{2, -1, 5, 4, 4}
                                                      : std::vector<int64_t>{-1, 5, 4, 4});
    auto r = run_pass(b, *make_bias_add_folding_pass());
    EXPECT_FALSE(r.changed);
    EXPECT_EQ(dump(*r.after), dump(*r.before));
  }
}

TEST(BiasAddFoldingTest, DoesNotApplyToRuntimeAddend) {
  ModelBuilder b(13);
  b.input("x", kF32, {1, 3, 4, 4});
  b.input("bias", kF32, {5, 1, 1});
  b.output("y", kF32, {1, 5, 4, 4});
  b.initializer("w", random_tensor({5, 3, 1, 1}, 1));
  b.node("Conv", {"x", "w"}, {"c"});
  b.node("Add", {"c", "bias"}, {"y"});
  auto r = run_pass(b, *make_bias_add_folding_pass());
  EXPECT_FALSE(r.changed);
  EXPECT_EQ(dump(*r.after), dump(*r.before));
}

TEST(BiasAddFoldingTest, FoldsAddIntoGemmC) {
  for (bool with_c : {false, true}) {
    SCOPED_TRACE(with_c ? "with C" : "without C");
    ModelBuilder b(13);
    b.input("x", kF32, {-1, 6});
    b.output("y", kF32, {-1, 4});
    b.initializer("w", random_tensor({6, 4}, 1));
    b.initializer("c", random_tensor({1, 4}, 2));
    b.initializer("bias", random_tensor({4}, 3));
    auto& gemm = b.node(
        "Gemm",
        with_c ? std::vector<std::string>{"x", "w", "c"} : std::vector<std::string>{"x", "w"},
        {"g"});
    set_float_attr(gemm, "beta", 0.5f);
    b.node("Add", {"bias", "g"}, {"y"});
    auto r = run_pass(b, *make_bias_add_folding_pass());
    EXPECT_TRUE(r.changed);
    EXPECT_EQ(histogram(*r.after), (Histogram{{"Gemm", 1}}));
    expect_same_outputs(*r.before, *r.after);
  }
}

TEST(BiasAddFoldingTest, MatMulPlusBiasBecomesFusedMatMul) {
  ModelBuilder b(13);
  b.input("x", kF32, {-1, 3, 6});
  b.output("y", kF32, {-1, 3, 4});
  b.initializer("w", random_tensor({6, 4}, 1));
  b.initializer("bias", random_tensor({1, 1, 4}, 2));
  b.node("MatMul", {"x", "w"}, {"m"});
  b.node("Add", {"m", "bias"}, {"y"});
  auto r = run_pass(b, *make_bias_add_folding_pass());
  EXPECT_TRUE(r.changed);
  EXPECT_EQ(histogram(*r.after), (Histogram{{"qforge::FusedMatMul", 1}}));
  const ir::Node* fused = only_node(*r.after, "FusedMatMul");
  ASSERT_TRUE(fused);
  EXPECT_EQ(fused->inputs[2]->constant.shape(), (Shape{4}));
  EXPECT_EQ(r.after->opset_imports.at("qforge"), 1);
  expect_same_outputs(*r.before, *r.after);
}

TEST(BiasAddFoldingTest, DoesNotApplyToMatMulWithVectorB) {
  ModelBuilder b(13);
  b.input("x", kF32, {3, 6});
  b.output("y", kF32, {3});
  b.initializer("w", random_tensor({6}, 1));
  b.initializer("bias", random_tensor({3}, 2));
  b.node("MatMul", {"x", "w"}, {"m"});  // [3, 6] x [6] = [3]: no N axis for a Bias
  b.node("Add", {"m", "bias"}, {"y"});
  auto r = run_pass(b, *make_bias_add_folding_pass());
  EXPECT_FALSE(r.changed);
  EXPECT_EQ(dump(*r.after), dump(*r.before));
}

}  // namespace
}  // namespace qf::passes::testing
