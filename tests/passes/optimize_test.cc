// The whole pipeline: small blocks in the shapes exporters write, and the Fashion-MNIST model.
#include "passes/optimize.h"

#include <filesystem>

#include "pass_test_util.h"

namespace qf::passes::testing {
namespace {

void add_bn(ModelBuilder& b, const std::string& prefix, const std::string& in,
            const std::string& out, int64_t c, uint32_t seed) {
  b.initializer(prefix + ".scale", random_tensor({c}, seed, 0.5f, 1.5f));
  b.initializer(prefix + ".bias", random_tensor({c}, seed + 1));
  b.initializer(prefix + ".mean", random_tensor({c}, seed + 2));
  b.initializer(prefix + ".var", random_tensor({c}, seed + 3, 0.25f, 2.0f));
  b.node("BatchNormalization",
         {in, prefix + ".scale", prefix + ".bias", prefix + ".mean", prefix + ".var"}, {out});
}

// Every constant left in the graph is read by a node or is a graph output.
void expect_no_orphan_constants(const ir::Graph& g) {
  for (const ir::Value* c : g.constants()) {
    const bool output = std::find(g.outputs.begin(), g.outputs.end(), c) != g.outputs.end();
    EXPECT_TRUE(!c->consumers.empty() || output) << "unused constant " << c->name;
  }
}

TEST(OptimizeTest, ResNetBasicBlockBecomesTwoFusedConvs) {
  ModelBuilder b(13);
  b.input("x", kF32, {-1, 4, 6, 6});
  b.output("y", kF32, {-1, 4, 6, 6});
  b.initializer("w1", random_tensor({4, 4, 3, 3}, 1));
  b.initializer("w2", random_tensor({4, 4, 3, 3}, 2));
  set_ints_attr(b.node("Conv", {"x", "w1"}, {"c1"}), "pads", {1, 1, 1, 1});
  add_bn(b, "bn1", "c1", "n1", 4, 10);
  b.node("Relu", {"n1"}, {"r1"});
  set_ints_attr(b.node("Conv", {"r1", "w2"}, {"c2"}), "pads", {1, 1, 1, 1});
  add_bn(b, "bn2", "c2", "n2", 4, 20);
  b.node("Add", {"n2", "x"}, {"s"});
  b.node("Relu", {"s"}, {"y"});
  auto r = run_optimize(b);
  EXPECT_EQ(histogram(*r.after), (Histogram{{"qforge::FusedConv", 2}}));
  const auto& nodes = r.after->nodes();
  ASSERT_EQ(nodes.size(), 2u);
  EXPECT_EQ(nodes.front()->attrs.get_string("activation", ""), "Relu");
  EXPECT_FALSE(nodes.front()->has_input(3));
  EXPECT_EQ(nodes.back()->attrs.get_string("activation", ""), "Relu");
  ASSERT_TRUE(nodes.back()->has_input(3));
  EXPECT_EQ(nodes.back()->inputs[3]->name, "x");
  EXPECT_EQ(ir::sym_shape_str(r.after->outputs[0]->shape), "Nx4x6x6");
  expect_no_orphan_constants(*r.after);
  expect_same_outputs(*r.before, *r.after);
}

TEST(OptimizeTest, TransformerMlpBecomesTwoFusedMatMuls) {
  ModelBuilder b(13);
  b.input("x", kF32, {-1, 3, 6});
  b.output("y", kF32, {-1, 3, 6});
  b.initializer("w1", random_tensor({6, 8}, 1));
  b.initializer("b1", random_tensor({8}, 2));
  b.initializer("w2", random_tensor({8, 6}, 3));
  b.initializer("b2", random_tensor({6}, 4));
  b.initializer("sqrt2", scalar(1.4142135381698608f));
  b.initializer("one", scalar(1.0f));
  b.initializer("half", scalar(0.5f));
  b.node("MatMul", {"x", "w1"}, {"m1"});
  b.node("Add", {"b1", "m1"}, {"h"});
  b.node("Div", {"h", "sqrt2"}, {"d"});
  b.node("Erf", {"d"}, {"e"});
  b.node("Add", {"e", "one"}, {"a"});
  b.node("Mul", {"h", "a"}, {"p"});
  b.node("Mul", {"p", "half"}, {"g"});
  b.node("MatMul", {"g", "w2"}, {"m2"});
  b.node("Add", {"m2", "b2"}, {"o"});
  b.node("Dropout", {"o"}, {"od"});
  b.node("Add", {"x", "od"}, {"y"});
  auto r = run_optimize(b);
  EXPECT_EQ(histogram(*r.after), (Histogram{{"qforge::FusedMatMul", 2}}));
  const auto& nodes = r.after->nodes();
  ASSERT_EQ(nodes.size(), 2u);
  EXPECT_EQ(nodes.front()->attrs.get_string("activation", ""), "GELU");
  EXPECT_TRUE(nodes.front()->has_input(2));
  EXPECT_TRUE(nodes.back()->has_input(2));
  ASSERT_TRUE(nodes.back()->has_input(3));
  EXPECT_EQ(nodes.back()->inputs[3]->name, "x");
  expect_no_orphan_constants(*r.after);
  expect_same_outputs(*r.before, *r.after);
}

TEST(OptimizeTest, NothingToDoChangesNothing) {
  ModelBuilder b(13);
  b.input("x", kF32, {-1, 3, 6, 6});
  b.output("y", kF32, {-1, 3, 3, 3});
  auto& pool = b.node("MaxPool", {"x"}, {"p"});
  set_ints_attr(pool, "kernel_shape", {2, 2});
  set_ints_attr(pool, "strides", {2, 2});
  b.node("Softmax", {"p"}, {"y"});
  auto r = run_optimize(b);
  EXPECT_FALSE(r.changed);
  EXPECT_EQ(dump(*r.after), dump(*r.before));
  EXPECT_EQ(r.after->opset_imports.count("qforge"), 0u);
}

TEST(OptimizeTest, FashionMnistModel) {
  const auto path = std::filesystem::path(__FILE__).parent_path().parent_path().parent_path() /
                    "models" / "fashion_mnist_cnn.onnx";
  auto before = onnx_io::load_model(path);
  auto after = onnx_io::load_model(path);
  ASSERT_TRUE(before.ok()) << before.status().message();
  ASSERT_TRUE(after.ok());
  ir::Graph& g = *after->graph;
  auto counts = run_passes(g, standard_passes());
  ASSERT_TRUE(counts.ok()) << counts.status().message();
  EXPECT_EQ(counts->count("batch-norm-folding"), 1u);
  EXPECT_EQ(counts->count("activation-fusion"), 1u);
  // Conv1,2 + BN + Relu and Conv3 + Relu are one FusedConv each; the in-graph normalisation,
  // pools, Flatten and the classifier stay.
  EXPECT_EQ(histogram(g), (Histogram{{"Sub", 1},
                                     {"Div", 1},
                                     {"qforge::FusedConv", 3},
                                     {"MaxPool", 2},
                                     {"Flatten", 1},
                                     {"Gemm", 1}}));
  for (const auto& n : g.nodes()) {
    if (n->op_type == "FusedConv") {
      EXPECT_EQ(n->attrs.get_string("activation", ""), "Relu");
    }
  }
  EXPECT_EQ(g.outputs[0]->name, "logits");
  EXPECT_EQ(ir::sym_shape_str(g.outputs[0]->shape), "batchx10");
  expect_no_orphan_constants(g);
  expect_same_outputs(*before->graph, g, 3);

  // A second run finds nothing left to do.
  const std::string once = dump(g);
  ASSERT_TRUE(optimize(g).ok());
  EXPECT_EQ(dump(g), once);
}

}  // namespace
}  // namespace qf::passes::testing
