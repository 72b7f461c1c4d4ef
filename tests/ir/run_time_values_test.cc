#include "ir/run_time_values.h"

#include <gtest/gtest.h>

namespace qf::ir {
namespace {

TEST(RunTimeValuesTest, InputsTheirDescendantsAndRandomOpsButNotConstantChains) {
  Graph g;
  Value* x = g.add_value("x").value();
  g.inputs.push_back(x);
  Value* w = g.add_constant("w", Tensor::from_vector<float>({2}, {1.f, 2.f}));
  Value* wt = g.add_value("wt").value();        // a function of the constant only
  Value* y = g.add_value("y").value();          // depends on x
  Value* noise = g.add_value("noise").value();  // a random op: new values every run
  Value* z = g.add_value("z").value();          // depends on the random op only
  g.add_node("Neg", "neg_w", {w}, {wt});
  g.add_node("Mul", "mul", {x, wt}, {y});
  g.add_node("RandomNormal", "rand", {}, {noise});
  g.add_node("Add", "add", {noise, wt}, {z});
  const std::unordered_set<const Value*> values = run_time_values(g);
  EXPECT_EQ(values, (std::unordered_set<const Value*>{x, y, noise, z}));
}

}  // namespace
}  // namespace qf::ir
