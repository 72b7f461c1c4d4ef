// The intermediate representation every stage after import works on.
//
// A Graph owns its Values (edges: name, type, shape, optional constant data) and Nodes
// (operators). Values know their producer and consumers so that passes can rewrite locally.
// Shapes are symbolic: a dimension is a known size, a named symbol ("batch") or unknown.
#pragma once

#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ir/attributes.h"
#include "qforge/status.h"
#include "qforge/tensor.h"

namespace qf::ir {

struct Dim {
  int64_t value = -1;  // >= 0 when known
  std::string symbol;  // name of a dynamic dimension ("batch"), empty when anonymous

  static Dim known(int64_t v) { return Dim{v, {}}; }
  static Dim symbolic(std::string s) { return Dim{-1, std::move(s)}; }
  bool is_known() const { return value >= 0; }
  bool operator==(const Dim& o) const {
    return is_known() ? value == o.value : (!o.is_known() && !symbol.empty() && symbol == o.symbol);
  }
};
using SymShape = std::vector<Dim>;

SymShape to_sym_shape(const Shape& shape);
std::optional<Shape> to_concrete(const SymShape& shape);  // nullopt when any dim is not known
std::string sym_shape_str(const std::optional<SymShape>& shape);  // "Nx3x224x224", "?" if unknown

struct Node;

struct Value {
  std::string name;
  DType dtype = DType::kUndefined;
  std::optional<SymShape> shape;  // nullopt: rank unknown
  Tensor constant;                // defined() for initializers and folded constants
  Node* producer = nullptr;
  std::vector<Node*> consumers;

  bool is_constant() const { return constant.defined(); }
};

struct Node {
  std::string name;
  std::string op_type;
  std::string domain;  // "" for the default ONNX domain
  int opset = 0;       // version of `domain` the model imports; selects opset-specific semantics
  int index = 0;       // position in the source model, for messages when `name` is empty
  Attributes attrs;
  std::vector<Value*> inputs;   // nullptr for an omitted optional input
  std::vector<Value*> outputs;  // nullptr for an omitted optional output

  // "node 'conv1' (Conv)" or "node #12 (Conv)": the prefix of every message about this node.
  std::string label() const;
  bool has_input(size_t i) const { return i < inputs.size() && inputs[i] != nullptr; }
  bool has_output(size_t i) const { return i < outputs.size() && outputs[i] != nullptr; }
};

class Graph {
 public:
  Graph() = default;
  Graph(const Graph&) = delete;
  Graph& operator=(const Graph&) = delete;

  // Values are unique by name. `add_value` fails if the name exists; `get_or_add_value` doesn't.
  Result<Value*> add_value(const std::string& name);
  Value* get_or_add_value(const std::string& name);
  Value* find_value(const std::string& name) const;
  // A fresh constant value with a name derived from `hint` that is not yet taken.
  Value* add_constant(const std::string& hint, Tensor data);

  Node* add_node(std::string op_type, std::string name, std::vector<Value*> inputs,
                 std::vector<Value*> outputs);
  void remove_node(Node* node);
  // Replaces `node`'s input `i` by `value`, keeping consumer lists right.
  void set_input(Node* node, size_t i, Value* value);
  void replace_all_uses(Value* from, Value* to);

  // Nodes in execution order (kept topologically sorted by `sort_topologically`).
  const std::list<std::unique_ptr<Node>>& nodes() const { return nodes_; }
  Status sort_topologically();

  // Graph inputs that must be fed at run time (initializer-backed inputs excluded), outputs.
  std::vector<Value*> inputs;
  std::vector<Value*> outputs;
  std::map<std::string, int64_t> opset_imports;  // domain -> version
  std::string name;

  int64_t opset() const;  // version of the default ONNX domain
  size_t num_values() const { return values_.size(); }
  std::vector<const Value*> constants() const;
  // Drops the values nothing refers to any more (no producer, no consumer, not a graph input or
  // output), such as weights a rewrite replaced. Returns how many were dropped.
  size_t remove_unused_values();

 private:
  std::map<std::string, std::unique_ptr<Value>> values_;
  std::list<std::unique_ptr<Node>> nodes_;
};

}  // namespace qf::ir
