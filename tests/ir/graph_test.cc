#include "ir/graph.h"

#include <gtest/gtest.h>

#include "ir/shape_utils.h"

namespace qf::ir {
namespace {

TEST(GraphTest, TopologicalSortHandlesRepeatedUseAndKeepsOrder) {
  Graph g;
  g.opset_imports[""] = 17;
  Value* x = g.add_value("x").value();
  Value* a = g.add_value("a").value();
  Value* b = g.add_value("b").value();
  Value* c = g.add_value("c").value();
  // Deliberately out of order; `b` uses `a` twice.
  g.add_node("Relu", "last", {b}, {c});
  g.add_node("Add", "middle", {a, a}, {b});
  g.add_node("Relu", "first", {x}, {a});
  ASSERT_TRUE(g.sort_topologically().ok());
  std::vector<std::string> order;
  for (const auto& n : g.nodes()) order.push_back(n->name);
  EXPECT_EQ(order, (std::vector<std::string>{"first", "middle", "last"}));
}

TEST(GraphTest, CycleIsReportedWithANode) {
  Graph g;
  Value* a = g.add_value("a").value();
  Value* b = g.add_value("b").value();
  g.add_node("Relu", "n1", {a}, {b});
  g.add_node("Relu", "n2", {b}, {a});
  const Status s = g.sort_topologically();
  EXPECT_EQ(s.code(), StatusCode::kInvalidInput);
  EXPECT_NE(s.message().find("cycle"), std::string::npos);
}

TEST(GraphTest, ReplaceAllUsesUpdatesConsumersAndOutputs) {
  Graph g;
  Value* x = g.add_value("x").value();
  Value* y = g.add_value("y").value();
  Value* z = g.add_value("z").value();
  Node* n = g.add_node("Relu", "r", {x}, {y});
  g.outputs.push_back(x);
  g.replace_all_uses(x, z);
  EXPECT_EQ(n->inputs[0], z);
  EXPECT_TRUE(x->consumers.empty());
  ASSERT_EQ(z->consumers.size(), 1u);
  EXPECT_EQ(g.outputs[0], z);
}

TEST(GraphTest, DuplicateValueNameIsAnError) {
  Graph g;
  ASSERT_TRUE(g.add_value("w").ok());
  EXPECT_FALSE(g.add_value("w").ok());
  EXPECT_EQ(g.add_constant("w", Tensor(DType::kF32, {1}))->name, "w_1");
}

TEST(ShapeUtilsTest, BroadcastKeepsSymbolsAndRejectsMismatch) {
  Node node;
  node.op_type = "Add";
  node.name = "add";
  InferContext ctx{node, {}, {}};
  SymShape a = {Dim::symbolic("N"), Dim::known(3), Dim::known(1)};
  SymShape b = {Dim::known(1), Dim::known(5)};
  auto r = broadcast_shapes(ctx, a, b);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(sym_shape_str(*r), "Nx3x5");
  auto bad = broadcast_shapes(ctx, {Dim::known(2)}, {Dim::known(3)});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("node 'add' (Add): shapes 2 and 3 cannot be broadcast"),
            std::string::npos);
}

TEST(ShapeUtilsTest, BroadcastStridesZeroOnExpandedDims) {
  EXPECT_EQ(broadcast_strides({3, 1}, {2, 3, 4}), (std::vector<int64_t>{0, 1, 0}));
  EXPECT_EQ(strides_of({2, 3, 4}), (std::vector<int64_t>{12, 4, 1}));
}

}  // namespace
}  // namespace qf::ir
