// Shared helpers of the pass tests: build a model, run one pass (or the pipeline) on a copy, and
// compare structure and reference-executor outputs with the unoptimized graph.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "backends/reference/executor.h"
#include "ir/op_registry.h"
#include "onnx/importer.h"
#include "passes/optimize.h"
#include "passes/pass.h"
#include "testing/model_builder.h"

namespace qf::passes::testing {

using qf::testing::ModelBuilder;
using qf::testing::set_float_attr;
using qf::testing::set_int_attr;
using qf::testing::set_ints_attr;
using Histogram = std::map<std::string, int>;

constexpr int32_t kF32 = onnx::TensorProto::FLOAT;

inline void set_string_attr(onnx::NodeProto& node, const std::string& name,
                            const std::string& value) {
  auto* a = node.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::STRING);
  a->set_s(value);
}

inline Tensor random_tensor(const Shape& shape, uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  Tensor t(DType::kF32, shape);
  for (float& v : t.span<float>()) v = dist(rng);
  return t;
}

inline Tensor scalar(float v) {
  return Tensor::from_vector<float>({}, {v});
}
inline Tensor ints(const std::vector<int64_t>& v) {
  return Tensor::from_vector<int64_t>({static_cast<int64_t>(v.size())}, v);
}

inline std::unique_ptr<ir::Graph> import(const ModelBuilder& b) {
  auto m = onnx_io::import_model_bytes(b.serialize(), "test.onnx");
  if (!m.ok()) {
    ADD_FAILURE() << m.status().message();
    return nullptr;
  }
  return std::move(m->graph);
}

// Op types with their counts; fused ops appear as "qforge::FusedConv".
inline Histogram histogram(const ir::Graph& g) {
  Histogram h;
  for (const auto& n : g.nodes()) {
    ++h[n->domain.empty() ? n->op_type : n->domain + "::" + n->op_type];
  }
  return h;
}

// The graph's structure as text (ops, their value names and attributes' names), to check that
// a pass that does not apply left the graph exactly as it was.
inline std::string dump(const ir::Graph& g) {
  std::string s;
  auto name = [](const ir::Value* v) { return v ? v->name : std::string("-"); };
  for (const auto& n : g.nodes()) {
    s += n->domain + "::" + n->op_type + "(";
    for (const ir::Value* v : n->inputs) s += name(v) + ",";
    s += ")->(";
    for (const ir::Value* v : n->outputs) s += name(v) + ",";
    s += ") {";
    for (const auto& [k, v] : n->attrs.all()) s += k + ",";
    s += "}\n";
  }
  for (const ir::Value* v : g.outputs) s += "output " + v->name + "\n";
  return s;
}

// Random inputs for the graph's inputs; unknown or symbolic dims get size `dynamic`.
inline std::vector<Tensor> random_inputs(const ir::Graph& g, uint32_t seed, int64_t dynamic = 2) {
  std::vector<Tensor> inputs;
  for (const ir::Value* in : g.inputs) {
    Shape shape;
    for (const ir::Dim& d : in->shape.value_or(ir::SymShape{})) {
      shape.push_back(d.is_known() ? d.value : dynamic);
    }
    inputs.push_back(random_tensor(shape, seed++));
  }
  return inputs;
}

inline std::vector<Tensor> run(const ir::Graph& g, const std::vector<Tensor>& inputs) {
  auto exec = reference::Executor::create(g);
  if (!exec.ok()) {
    ADD_FAILURE() << exec.status().message();
    return {};
  }
  auto out = exec->run(inputs);
  if (!out.ok()) {
    ADD_FAILURE() << out.status().message();
    return {};
  }
  return std::move(out).value();
}

// Both graphs give the same outputs on random inputs: |a - b| <= 1e-5 |b| + 1e-6 max(1, max|b|).
inline void expect_same_outputs(const ir::Graph& before, const ir::Graph& after, int trials = 2) {
  ASSERT_EQ(before.inputs.size(), after.inputs.size());
  ASSERT_EQ(before.outputs.size(), after.outputs.size());
  for (size_t i = 0; i < before.outputs.size(); ++i) {
    EXPECT_EQ(before.outputs[i]->name, after.outputs[i]->name) << "graph output renamed";
  }
  for (int t = 0; t < trials; ++t) {
    const std::vector<Tensor> inputs = random_inputs(before, 1000u * static_cast<uint32_t>(t + 1));
    const std::vector<Tensor> expected = run(before, inputs);
    const std::vector<Tensor> actual = run(after, inputs);
    ASSERT_EQ(expected.size(), before.outputs.size());
    ASSERT_EQ(actual.size(), expected.size());
    for (size_t o = 0; o < expected.size(); ++o) {
      const Tensor& e = expected[o];
      const Tensor& a = actual[o];
      ASSERT_EQ(e.shape(), a.shape()) << "output " << o;
      ASSERT_EQ(e.dtype(), DType::kF32);
      ASSERT_EQ(a.dtype(), DType::kF32);
      double max_abs = 1.0;
      for (float v : e.span<float>())
        max_abs = std::max(max_abs, static_cast<double>(std::fabs(v)));
      int bad = 0;
      for (int64_t i = 0; i < e.numel(); ++i) {
        const double ev = e.data<float>()[i], av = a.data<float>()[i];
        if (std::fabs(ev - av) > 1e-5 * std::fabs(ev) + 1e-6 * max_abs && bad++ < 5) {
          ADD_FAILURE() << "output " << o << " element " << i << ": optimized " << av
                        << ", unoptimized " << ev;
        }
      }
      EXPECT_EQ(bad, 0) << "output " << o << " differs in " << bad << " elements";
    }
  }
}

// A pass applied to a fresh import of the model, with the untouched import kept to compare.
struct PassRun {
  std::unique_ptr<ir::Graph> before;
  std::unique_ptr<ir::Graph> after;
  bool changed = false;
};

// Runs `pass` once (then re-sorts and re-infers, as the pipeline does).
inline PassRun run_pass(const ModelBuilder& b, const Pass& pass) {
  PassRun r{import(b), import(b)};
  if (!r.before || !r.after) return r;
  auto changed = pass.run(*r.after);
  if (!changed.ok()) {
    ADD_FAILURE() << changed.status().message();
    return r;
  }
  r.changed = *changed;
  EXPECT_TRUE(r.after->sort_topologically().ok());
  EXPECT_TRUE(ir::infer_shapes(*r.after).ok());
  return r;
}

// Runs the whole pipeline.
inline PassRun run_optimize(const ModelBuilder& b) {
  PassRun r{import(b), import(b)};
  if (!r.before || !r.after) return r;
  const std::string before = dump(*r.after);
  const Status s = optimize(*r.after);
  EXPECT_TRUE(s.ok()) << s.message();
  r.changed = dump(*r.after) != before;
  return r;
}

// The attributes of the only node of `op_type` (a failure when there is not exactly one).
inline const ir::Node* only_node(const ir::Graph& g, const std::string& op_type) {
  const ir::Node* found = nullptr;
  int count = 0;
  for (const auto& n : g.nodes()) {
    if (n->op_type == op_type) {
      found = n.get();
      ++count;
    }
  }
  if (count != 1) {
    ADD_FAILURE() << count << " nodes of type " << op_type;
    return nullptr;
  }
  return found;
}

}  // namespace qf::passes::testing
