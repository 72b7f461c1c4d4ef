#include "onnx/exporter.h"

#include <onnx/onnx_pb.h>

#include <algorithm>
#include <limits>
#include <set>
#include <string_view>
#include <type_traits>

#include "onnx/tensor_proto.h"

namespace qf::onnx_io {

namespace {

// Oldest IR version that may carry `opset` of the default domain (IR 9 came with opset 19,
// IR 10 with opset 21); never below what the linked ONNX library writes by default.
int64_t default_ir_version(int64_t opset) {
  int64_t needed = 3;
  if (opset >= 19) needed = 9;
  if (opset >= 21) needed = 10;
  return std::max<int64_t>(needed, onnx::Version::IR_VERSION);
}

void write_type(const ir::Value& v, onnx::ValueInfoProto* vi) {
  vi->set_name(v.name);
  auto* tt = vi->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(dtype_to_onnx(v.dtype));
  if (!v.shape) return;               // rank unknown: no shape field at all
  auto* shape = tt->mutable_shape();  // present even for scalars (rank 0)
  for (const ir::Dim& d : *v.shape) {
    auto* dim = shape->add_dim();
    if (d.is_known()) {
      dim->set_dim_value(d.value);
    } else if (!d.symbol.empty()) {
      dim->set_dim_param(d.symbol);
    }
  }
}

void write_attribute(const std::string& name, const ir::AttrValue& value, onnx::AttributeProto* a) {
  using A = onnx::AttributeProto;
  a->set_name(name);
  std::visit(
      [&](const auto& v) {
        using V = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<V, int64_t>) {
          a->set_type(A::INT);
          a->set_i(v);
        } else if constexpr (std::is_same_v<V, float>) {
          a->set_type(A::FLOAT);
          a->set_f(v);
        } else if constexpr (std::is_same_v<V, std::string>) {
          a->set_type(A::STRING);
          a->set_s(v);
        } else if constexpr (std::is_same_v<V, std::vector<int64_t>>) {
          a->set_type(A::INTS);
          for (int64_t x : v) a->add_ints(x);
        } else if constexpr (std::is_same_v<V, std::vector<float>>) {
          a->set_type(A::FLOATS);
          for (float x : v) a->add_floats(x);
        } else if constexpr (std::is_same_v<V, std::vector<std::string>>) {
          a->set_type(A::STRINGS);
          for (const std::string& x : v) a->add_strings(x);
        } else {
          static_assert(std::is_same_v<V, Tensor>, "unhandled attribute kind");
          a->set_type(A::TENSOR);
          tensor_to_proto(v, "", a->mutable_t());
        }
      },
      value);
}

// ONNX declares one version per domain for the whole model, while IR nodes carry their own.
// Nodes created by passes must agree with the graph's imports (opset 0 means "the graph's").
Result<std::map<std::string, int64_t>> collect_opsets(const ir::Graph& graph) {
  std::map<std::string, int64_t> opsets = graph.opset_imports;
  for (const auto& n : graph.nodes()) {
    auto it = opsets.find(n->domain);
    if (it == opsets.end()) {
      opsets[n->domain] = n->opset > 0 ? n->opset : 1;
    } else if (n->opset > 0 && n->opset != it->second) {
      return invalid_input(
          "{}: has opset {} of domain '{}' but the graph imports version {} (ONNX allows one "
          "version per domain)",
          n->label(), n->opset, n->domain.empty() ? "ai.onnx" : n->domain, it->second);
    }
  }
  if (!opsets.count("")) opsets[""] = graph.opset() > 0 ? graph.opset() : 1;
  return opsets;
}

// Inputs that newer opsets took over from attributes. The importer rewrites every node into the
// input form (so shape functions and kernels know one form); a graph kept at an older opset
// must get the attribute back, or ONNX's checker and other runtimes reject the file.
struct MovedAttribute {
  std::string_view op_type;
  int64_t input_since;  // first opset with the input form
  size_t input;
  std::string_view attribute;
};
constexpr MovedAttribute kMovedAttributes[] = {
    {"ReduceSum", 13, 1, "axes"},    {"ReduceMean", 18, 1, "axes"},
    {"ReduceMax", 18, 1, "axes"},    {"ReduceMin", 18, 1, "axes"},
    {"ReduceProd", 18, 1, "axes"},   {"ReduceSumSquare", 18, 1, "axes"},
    {"ReduceL1", 18, 1, "axes"},     {"ReduceL2", 18, 1, "axes"},
    {"ReduceLogSum", 18, 1, "axes"}, {"ReduceLogSumExp", 18, 1, "axes"},
    {"Squeeze", 13, 1, "axes"},      {"Unsqueeze", 13, 1, "axes"},
    {"Split", 13, 1, "split"},
};

// The node as `opset` spells it: inputs + attributes, with moved attributes restored.
Status write_node_io(const ir::Node& n, int64_t opset, onnx::NodeProto* np) {
  const MovedAttribute* moved = nullptr;
  if (n.domain.empty()) {
    for (const MovedAttribute& m : kMovedAttributes) {
      if (m.op_type == n.op_type && opset < m.input_since && n.has_input(m.input)) moved = &m;
    }
  }
  for (size_t i = 0; i < n.inputs.size(); ++i) {
    if (moved && i == moved->input) continue;
    np->add_input(n.inputs[i] ? n.inputs[i]->name : "");
  }
  for (const auto& [name, value] : n.attrs.all()) write_attribute(name, value, np->add_attribute());
  if (moved) {
    const ir::Value* v = n.inputs[moved->input];
    if (!v->is_constant() || v->constant.dtype() != DType::kI64) {
      return unsupported(
          "{}: its {} are computed at run time, which opset {} cannot express "
          "(an attribute before opset {})",
          n.label(), moved->attribute, opset, moved->input_since);
    }
    std::vector<int64_t> values(v->constant.span<int64_t>().begin(),
                                v->constant.span<int64_t>().end());
    write_attribute(std::string(moved->attribute), values, np->add_attribute());
  }
  return {};
}

}  // namespace

Status export_model(const ir::Graph& graph, onnx::ModelProto* model, const ExportOptions& options) {
  model->Clear();
  QF_ASSIGN_OR_RETURN(auto opsets, collect_opsets(graph));
  const int64_t opset = opsets.at("");
  model->set_ir_version(options.ir_version > 0 ? options.ir_version : default_ir_version(opset));
  model->set_producer_name(options.producer_name);
  model->set_producer_version(options.producer_version);
  if (!options.doc_string.empty()) model->set_doc_string(options.doc_string);
  for (const auto& [domain, version] : opsets) {
    auto* op = model->add_opset_import();
    op->set_domain(domain);
    op->set_version(version);
  }

  onnx::GraphProto* g = model->mutable_graph();
  g->set_name(graph.name.empty() ? "qforge" : graph.name);

  // Only referenced constants are written: passes leave folded-away weights in the value table.
  // A moved attribute's constant is written into its node instead (see kMovedAttributes).
  std::set<const ir::Value*> used;
  for (const auto& n : graph.nodes()) {
    for (size_t i = 0; i < n->inputs.size(); ++i) {
      bool moved = false;
      for (const MovedAttribute& m : kMovedAttributes) {
        moved |= n->domain.empty() && m.op_type == n->op_type && i == m.input &&
                 opsets.at("") < m.input_since;
      }
      if (n->inputs[i] && !moved) used.insert(n->inputs[i]);
    }
  }
  for (const ir::Value* out : graph.outputs) used.insert(out);
  for (const ir::Value* c : graph.constants()) {
    if (!used.count(c)) continue;
    if (c->producer) {
      return invalid_input("tensor '{}' is both a constant and the output of {}", c->name,
                           c->producer->label());
    }
    tensor_to_proto(c->constant, c->name, g->add_initializer());
  }

  for (const ir::Value* in : graph.inputs) {
    if (in->dtype == DType::kUndefined) {
      return invalid_input("graph input '{}' has no element type", in->name);
    }
    write_type(*in, g->add_input());
  }

  std::set<const ir::Value*> declared(graph.inputs.begin(), graph.inputs.end());
  declared.insert(graph.outputs.begin(), graph.outputs.end());
  for (const auto& n : graph.nodes()) {
    onnx::NodeProto* np = g->add_node();
    np->set_op_type(n->op_type);
    if (!n->name.empty()) np->set_name(n->name);
    if (!n->domain.empty()) np->set_domain(n->domain);
    // An omitted optional input or output is an empty name, as in ONNX.
    QF_RETURN_IF_ERROR(write_node_io(*n, opsets.at(n->domain), np));
    for (const ir::Value* out : n->outputs) np->add_output(out ? out->name : "");

    for (const ir::Value* out : n->outputs) {
      if (!out || out->dtype == DType::kUndefined || !declared.insert(out).second) continue;
      write_type(*out, g->add_value_info());
    }
  }

  for (const ir::Value* out : graph.outputs) write_type(*out, g->add_output());
  return {};
}

Result<std::string> export_model_bytes(const ir::Graph& graph, const ExportOptions& options) {
  onnx::ModelProto model;
  QF_RETURN_IF_ERROR(export_model(graph, &model, options));
  const size_t size = model.ByteSizeLong();
  if (size > static_cast<size_t>(std::numeric_limits<int32_t>::max())) {
    return unsupported(
        "the model is {} bytes, over protobuf's 2 GiB limit for one ONNX file "
        "(external data is not written yet)",
        size);
  }
  std::string bytes;
  if (!model.SerializeToString(&bytes)) return internal_error("serializing the ONNX model failed");
  return bytes;
}

}  // namespace qf::onnx_io
