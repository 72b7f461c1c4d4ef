#include "ir/graph.h"

#include <algorithm>
#include <set>
#include <unordered_map>

#include <fmt/format.h>

namespace qf::ir {

SymShape to_sym_shape(const Shape& shape) {
  SymShape out;
  out.reserve(shape.size());
  for (int64_t d : shape) out.push_back(Dim::known(d));
  return out;
}

std::optional<Shape> to_concrete(const SymShape& shape) {
  Shape out;
  out.reserve(shape.size());
  for (const Dim& d : shape) {
    if (!d.is_known()) return std::nullopt;
    out.push_back(d.value);
  }
  return out;
}

std::string sym_shape_str(const std::optional<SymShape>& shape) {
  if (!shape) return "?";
  if (shape->empty()) return "scalar";
  std::vector<std::string> parts;
  for (const Dim& d : *shape) {
    parts.push_back(d.is_known() ? std::to_string(d.value) : (d.symbol.empty() ? "?" : d.symbol));
  }
  return fmt::format("{}", fmt::join(parts, "x"));
}

std::string Node::label() const {
  if (!name.empty()) return fmt::format("node '{}' ({})", name, op_type);
  return fmt::format("node #{} ({})", index, op_type);
}

Result<Value*> Graph::add_value(const std::string& name) {
  if (values_.count(name)) return invalid_input("tensor name '{}' is defined twice", name);
  auto v = std::make_unique<Value>();
  v->name = name;
  Value* raw = v.get();
  values_.emplace(name, std::move(v));
  return raw;
}

Value* Graph::get_or_add_value(const std::string& name) {
  if (Value* v = find_value(name)) return v;
  return add_value(name).value();
}

Value* Graph::find_value(const std::string& name) const {
  auto it = values_.find(name);
  return it == values_.end() ? nullptr : it->second.get();
}

Value* Graph::add_constant(const std::string& hint, Tensor data) {
  std::string name = hint;
  for (int i = 1; values_.count(name); ++i) name = fmt::format("{}_{}", hint, i);
  Value* v = add_value(name).value();
  v->dtype = data.dtype();
  v->shape = to_sym_shape(data.shape());
  v->constant = std::move(data);
  return v;
}

Node* Graph::add_node(std::string op_type, std::string name, std::vector<Value*> inputs,
                      std::vector<Value*> outputs) {
  auto n = std::make_unique<Node>();
  n->op_type = std::move(op_type);
  n->name = std::move(name);
  n->inputs = std::move(inputs);
  n->outputs = std::move(outputs);
  n->opset = static_cast<int>(opset());
  n->index = static_cast<int>(nodes_.size());
  for (Value* in : n->inputs) {
    if (in) in->consumers.push_back(n.get());
  }
  for (Value* out : n->outputs) {
    if (out) out->producer = n.get();
  }
  nodes_.push_back(std::move(n));
  return nodes_.back().get();
}

void Graph::remove_node(Node* node) {
  for (Value* in : node->inputs) {
    if (!in) continue;
    auto& c = in->consumers;
    auto it = std::find(c.begin(), c.end(), node);
    if (it != c.end()) c.erase(it);
  }
  for (Value* out : node->outputs) {
    if (out && out->producer == node) out->producer = nullptr;
  }
  nodes_.remove_if([node](const std::unique_ptr<Node>& n) { return n.get() == node; });
}

void Graph::set_input(Node* node, size_t i, Value* value) {
  if (node->inputs.size() <= i) node->inputs.resize(i + 1, nullptr);
  if (Value* old = node->inputs[i]) {
    auto it = std::find(old->consumers.begin(), old->consumers.end(), node);
    if (it != old->consumers.end()) old->consumers.erase(it);
  }
  node->inputs[i] = value;
  if (value) value->consumers.push_back(node);
}

void Graph::replace_all_uses(Value* from, Value* to) {
  for (Node* consumer : std::vector<Node*>(from->consumers)) {
    for (size_t i = 0; i < consumer->inputs.size(); ++i) {
      if (consumer->inputs[i] == from) set_input(consumer, i, to);
    }
  }
  for (Value*& out : outputs) {
    if (out == from) out = to;
  }
}

Status Graph::sort_topologically() {
  // Kahn's algorithm, stable with respect to the current order so that a sorted graph keeps
  // its original node order (messages and profiles follow the model file).
  std::unordered_map<const Node*, size_t> pending;
  for (const auto& n : nodes_) {
    size_t count = 0;
    for (const Value* in : n->inputs) {
      if (in && in->producer) ++count;
    }
    pending[n.get()] = count;
  }
  std::list<std::unique_ptr<Node>> sorted;
  std::list<std::unique_ptr<Node>> remaining = std::move(nodes_);
  bool progress = true;
  while (!remaining.empty() && progress) {
    progress = false;
    for (auto it = remaining.begin(); it != remaining.end();) {
      if (pending[it->get()] != 0) {
        ++it;
        continue;
      }
      // A consumer appears once per use in `consumers`, and each use was counted once.
      for (const Value* out : (*it)->outputs) {
        if (!out) continue;
        for (const Node* c : out->consumers) --pending[c];
      }
      sorted.push_back(std::move(*it));
      it = remaining.erase(it);
      progress = true;
    }
  }
  const bool has_cycle = !remaining.empty();
  std::string culprit = has_cycle ? remaining.front()->label() : "";
  sorted.splice(sorted.end(), remaining);
  nodes_ = std::move(sorted);
  if (has_cycle) {
    return invalid_input("graph has a cycle or an input that is never produced, at {}", culprit);
  }
  return {};
}

int64_t Graph::opset() const {
  for (const char* domain : {"", "ai.onnx"}) {
    auto it = opset_imports.find(domain);
    if (it != opset_imports.end()) return it->second;
  }
  return 0;
}

std::vector<const Value*> Graph::constants() const {
  std::vector<const Value*> out;
  for (const auto& [name, v] : values_) {
    if (v->is_constant()) out.push_back(v.get());
  }
  return out;
}

size_t Graph::remove_unused_values() {
  std::set<const Value*> boundary(inputs.begin(), inputs.end());
  boundary.insert(outputs.begin(), outputs.end());
  return std::erase_if(values_, [&](const auto& entry) {
    const Value* v = entry.second.get();
    return !v->producer && v->consumers.empty() && !boundary.count(v);
  });
}

}  // namespace qf::ir
