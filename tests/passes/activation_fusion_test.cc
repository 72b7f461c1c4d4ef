#include <cmath>
#include <functional>
#include <limits>

#include "pass_test_util.h"
#include "passes/passes.h"

namespace qf::passes::testing {
namespace {

// Adds `base` (Conv, Gemm or MatMul) reading x and writing "c"; returns the output dims.
std::vector<int64_t> add_linear(ModelBuilder& b, const std::string& base) {
  if (base == "Conv") {
    b.input("x", kF32, {-1, 3, 5, 5});
    b.initializer("w", random_tensor({4, 3, 3, 3}, 1));
    b.initializer("b", random_tensor({4}, 2));
    set_ints_attr(b.node("Conv", {"x", "w", "b"}, {"c"}), "pads", {1, 1, 1, 1});
    return {-1, 4, 5, 5};
  }
  if (base == "Gemm") {
    b.input("x", kF32, {-1, 6});
    b.initializer("w", random_tensor({4, 6}, 1));
    b.initializer("b", random_tensor({4}, 2));
    set_int_attr(b.node("Gemm", {"x", "w", "b"}, {"c"}), "transB", 1);
    return {-1, 4};
  }
  b.input("x", kF32, {-1, 3, 6});
  b.initializer("w", random_tensor({6, 4}, 1));
  b.node("MatMul", {"x", "w"}, {"c"});
  return {-1, 3, 4};
}

struct ActivationCase {
  std::string name;
  std::string activation;  // expected attribute
  float alpha = 0.0f, beta = 0.0f;
  std::function<void(ModelBuilder&)> build;  // nodes from "c" to "y"
};

std::vector<ActivationCase> activation_cases() {
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<ActivationCase> cases;
  cases.push_back({"Relu", "Relu", 0, 0, [](ModelBuilder& b) { b.node("Relu", {"c"}, {"y"}); }});
  cases.push_back({"LeakyRelu", "LeakyRelu", 0.2f, 0, [](ModelBuilder& b) {
                     set_float_attr(b.node("LeakyRelu", {"c"}, {"y"}), "alpha", 0.2f);
                   }});
  cases.push_back({"Clip(0,6)", "Clip", 0.0f, 6.0f, [](ModelBuilder& b) {
                     b.initializer("lo", scalar(0.0f));
                     b.initializer("hi", scalar(6.0f));
                     b.node("Clip", {"c", "lo", "hi"}, {"y"});
                   }});
  cases.push_back({"Clip(-0.5,)", "Clip", -0.5f, inf, [](ModelBuilder& b) {
                     b.initializer("lo", scalar(-0.5f));
                     b.node("Clip", {"c", "lo"}, {"y"});
                   }});
  cases.push_back(
      {"Sigmoid", "Sigmoid", 0, 0, [](ModelBuilder& b) { b.node("Sigmoid", {"c"}, {"y"}); }});
  cases.push_back({"Tanh", "Tanh", 0, 0, [](ModelBuilder& b) { b.node("Tanh", {"c"}, {"y"}); }});
  cases.push_back({"HardSigmoid", "HardSigmoid", 0.3f, 0.4f, [](ModelBuilder& b) {
                     auto& n = b.node("HardSigmoid", {"c"}, {"y"});
                     set_float_attr(n, "alpha", 0.3f);
                     set_float_attr(n, "beta", 0.4f);
                   }});
  cases.push_back(
      {"HardSwish", "HardSwish", 0, 0, [](ModelBuilder& b) { b.node("HardSwish", {"c"}, {"y"}); }});
  cases.push_back({"x*HardSigmoid(x)", "HardSwish", 0, 0, [](ModelBuilder& b) {
                     auto& n = b.node("HardSigmoid", {"c"}, {"g"});
                     set_float_attr(n, "alpha", 1.0f / 6.0f);
                     b.node("Mul", {"c", "g"}, {"y"});
                   }});
  cases.push_back({"x*Sigmoid(x)", "SiLU", 0, 0, [](ModelBuilder& b) {
                     b.node("Sigmoid", {"c"}, {"s"});
                     b.node("Mul", {"c", "s"}, {"y"});
                   }});
  cases.push_back({"Sigmoid(x)*x", "SiLU", 0, 0, [](ModelBuilder& b) {
                     b.node("Sigmoid", {"c"}, {"s"});
                     b.node("Mul", {"s", "c"}, {"y"});
                   }});
  // PyTorch's exact GELU: ((x * (erf(x / sqrt2) + 1)) * 0.5).
  cases.push_back({"GELU (x*a)*0.5", "GELU", 0, 0, [](ModelBuilder& b) {
                     b.initializer("sqrt2", scalar(1.4142135381698608f));
                     b.initializer("one", scalar(1.0f));
                     b.initializer("half", scalar(0.5f));
                     b.node("Div", {"c", "sqrt2"}, {"d"});
                     b.node("Erf", {"d"}, {"e"});
                     b.node("Add", {"e", "one"}, {"a"});
                     b.node("Mul", {"c", "a"}, {"m"});
                     b.node("Mul", {"m", "half"}, {"y"});
                   }});
  cases.push_back({"GELU (x*0.5)*a", "GELU", 0, 0, [](ModelBuilder& b) {
                     b.initializer("sqrt2", scalar(1.4142135381698608f));
                     b.initializer("one", scalar(1.0f));
                     b.initializer("half", scalar(0.5f));
                     b.node("Mul", {"c", "half"}, {"h"});
                     b.node("Div", {"c", "sqrt2"}, {"d"});
                     b.node("Erf", {"d"}, {"e"});
                     b.node("Add", {"one", "e"}, {"a"});
                     b.node("Mul", {"h", "a"}, {"y"});
                   }});
  cases.push_back({"GELU x*(a*0.5), x*(1/sqrt2)", "GELU", 0, 0, [](ModelBuilder& b) {
                     b.initializer("rsqrt2", scalar(0.70710678f));
                     b.initializer("one", scalar(1.0f));
                     b.initializer("half", scalar(0.5f));
                     b.node("Mul", {"rsqrt2", "c"}, {"d"});
                     b.node("Erf", {"d"}, {"e"});
                     b.node("Add", {"e", "one"}, {"a"});
                     b.node("Mul", {"a", "half"}, {"h"});
                     b.node("Mul", {"c", "h"}, {"y"});
                   }});
  return cases;
}

ModelBuilder linear_with(const std::string& base, const ActivationCase& c) {
  ModelBuilder b(14);
  const std::vector<int64_t> dims = add_linear(b, base);
  b.output("y", kF32, dims);
  c.build(b);
  return b;
}

TEST(ActivationFusionTest, EveryActivationFusesIntoEveryLinearOp) {
  for (const std::string base : {"Conv", "Gemm", "MatMul"}) {
    for (const ActivationCase& c : activation_cases()) {
      SCOPED_TRACE(base + " + " + c.name);
      auto r = run_pass(linear_with(base, c), *make_activation_fusion_pass());
      EXPECT_TRUE(r.changed);
      EXPECT_EQ(histogram(*r.after), (Histogram{{"qforge::Fused" + base, 1}}));
      const ir::Node* fused = only_node(*r.after, "Fused" + base);
      ASSERT_TRUE(fused);
      EXPECT_EQ(fused->attrs.get_string("activation", "?"), c.activation);
      EXPECT_EQ(fused->attrs.get_float("activation_alpha", -1), c.alpha);
      EXPECT_EQ(fused->attrs.get_float("activation_beta", -1), c.beta);
      EXPECT_EQ(fused->outputs[0]->name, "y");
      expect_same_outputs(*r.before, *r.after);
    }
  }
}

TEST(ActivationFusionTest, DoesNotApplyWhenThePatternsIntermediateLeaks) {
  // x * Sigmoid(x) where Sigmoid(x) is a graph output too: neither SiLU nor a plain Sigmoid
  // (whose input has a second reader) can be fused.
  ModelBuilder b(14);
  b.output("y", kF32, add_linear(b, "Conv"));
  b.output("s", kF32, {-1, 4, 5, 5});
  b.node("Sigmoid", {"c"}, {"s"});
  b.node("Mul", {"c", "s"}, {"y"});
  auto r = run_pass(b, *make_activation_fusion_pass());
  EXPECT_FALSE(r.changed);
  EXPECT_EQ(dump(*r.after), dump(*r.before));
  expect_same_outputs(*r.before, *r.after);
}

TEST(ActivationFusionTest, DoesNotApplyToNearMissesOfGelu) {
  // x * 0.5 * (1 + erf(x / 2)) is not GELU, nor is 0.5 * x * (2 + erf(x / sqrt2)).
  for (const auto& [divisor, addend] : {std::pair{2.0f, 1.0f}, std::pair{1.4142135f, 2.0f}}) {
    ModelBuilder b(14);
    b.output("y", kF32, add_linear(b, "Conv"));
    b.initializer("div", scalar(divisor));
    b.initializer("add", scalar(addend));
    b.initializer("half", scalar(0.5f));
    b.node("Div", {"c", "div"}, {"d"});
    b.node("Erf", {"d"}, {"e"});
    b.node("Add", {"e", "add"}, {"a"});
    b.node("Mul", {"c", "a"}, {"m"});
    b.node("Mul", {"m", "half"}, {"y"});
    auto r = run_pass(b, *make_activation_fusion_pass());
    EXPECT_FALSE(r.changed);
    EXPECT_EQ(dump(*r.after), dump(*r.before));
  }
}

TEST(ActivationFusionTest, DoesNotApplyWhenTheLinearOutputIsAGraphOutput) {
  ModelBuilder b(14);
  b.output("c", kF32, add_linear(b, "Conv"));
  b.output("y", kF32, {-1, 4, 5, 5});
  b.node("Relu", {"c"}, {"y"});
  auto r = run_pass(b, *make_activation_fusion_pass());
  EXPECT_FALSE(r.changed);
  EXPECT_EQ(dump(*r.after), dump(*r.before));
}

TEST(ActivationFusionTest, DoesNotApplyToAGateOfAnotherValue) {
  // Squeeze-and-excitation: x * Sigmoid(f(x)) is no SiLU.
  ModelBuilder b(14);
  b.output("y", kF32, add_linear(b, "Conv"));
  b.node("Neg", {"c"}, {"n"});
  b.node("Sigmoid", {"n"}, {"s"});
  b.node("Mul", {"c", "s"}, {"y"});
  auto r = run_pass(b, *make_activation_fusion_pass());
  EXPECT_FALSE(r.changed);
  EXPECT_EQ(dump(*r.after), dump(*r.before));
}

TEST(ActivationFusionTest, OnlyOneActivationPerNode) {
  ModelBuilder b(14);
  b.output("y", kF32, add_linear(b, "Conv"));
  b.node("Relu", {"c"}, {"r"});
  b.node("Tanh", {"r"}, {"y"});
  auto first = run_pass(b, *make_activation_fusion_pass());
  EXPECT_TRUE(first.changed);
  EXPECT_EQ(histogram(*first.after), (Histogram{{"qforge::FusedConv", 1}, {"Tanh", 1}}));
  expect_same_outputs(*first.before, *first.after);
  // Running the pass again on the fused graph finds nothing more to do.
  const std::string before = dump(*first.after);
  auto again = make_activation_fusion_pass()->run(*first.after);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(*again);
  EXPECT_EQ(dump(*first.after), before);
}

}  // namespace
}  // namespace qf::passes::testing
