// Graph passes and the rewrite rules most of them are made of.
//
// A Pass rewrites a graph in place and says whether it changed anything; a pass that does not
// apply leaves the graph exactly as it was. Most passes are a RulePass: a list of small Rule
// objects, each of which looks at one anchor node, checks its pattern and either rewrites it or
// returns false having touched nothing (ONNX Runtime's RewriteRule, not ncnn's long loops).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "ir/graph.h"
#include "qforge/status.h"

namespace qf::passes {

class Pass {
 public:
  virtual ~Pass() = default;
  virtual std::string_view name() const = 0;
  // Whether the graph changed. Values' shapes are not re-inferred here: the pipeline does that.
  virtual Result<bool> run(ir::Graph& graph) const = 0;
};

// The graph under rewrite, remembering which nodes a rule removed so that a sweep over a
// snapshot of the node list skips them.
class Rewriter {
 public:
  explicit Rewriter(ir::Graph& graph) : graph_(graph) {}
  ir::Graph& graph() { return graph_; }
  const ir::Graph& graph() const { return graph_; }
  void remove(ir::Node* node);
  bool removed(const ir::Node* node) const { return removed_.count(node) != 0; }

 private:
  ir::Graph& graph_;
  std::unordered_set<const ir::Node*> removed_;
};

// One local rewrite anchored at a node.
class Rule {
 public:
  virtual ~Rule() = default;
  virtual std::string_view name() const = 0;
  // Rewrites the pattern anchored at `node` and returns true, or returns false having changed
  // nothing. It may remove `node` and other nodes (through `rw.remove`).
  virtual Result<bool> apply(Rewriter& rw, ir::Node& node) const = 0;
};

// A pass that offers every node (in graph order, as the sweep began) to each rule in turn.
class RulePass : public Pass {
 public:
  RulePass(std::string name, std::vector<std::unique_ptr<Rule>> rules)
      : name_(std::move(name)), rules_(std::move(rules)) {}
  std::string_view name() const override { return name_; }
  Result<bool> run(ir::Graph& graph) const override;

 private:
  std::string name_;
  std::vector<std::unique_ptr<Rule>> rules_;
};

}  // namespace qf::passes
