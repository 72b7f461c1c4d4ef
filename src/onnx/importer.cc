#include "onnx/importer.h"

#include <onnx/onnx_pb.h>

#include <set>

#include "core/file_util.h"
#include "ir/op_registry.h"
#include "onnx/tensor_proto.h"

namespace qf::onnx_io {

namespace {

class Importer {
 public:
  Importer(const onnx::ModelProto& model, std::filesystem::path path)
      : model_(model), path_(std::move(path)), base_dir_(path_.parent_path()) {}

  Result<ImportedModel> run() {
    ImportedModel out;
    out.graph = std::make_unique<ir::Graph>();
    out.ir_version = model_.ir_version();
    out.producer = model_.producer_name() +
                   (model_.producer_version().empty() ? "" : " " + model_.producer_version());
    out.path = path_;
    graph_ = out.graph.get();
    QF_RETURN_IF_ERROR(check_header());
    const onnx::GraphProto& g = model_.graph();
    graph_->name = g.name();
    QF_RETURN_IF_ERROR(import_initializers(g));
    QF_RETURN_IF_ERROR(import_inputs(g));
    QF_RETURN_IF_ERROR(declare_node_outputs(g));
    QF_RETURN_IF_ERROR(import_nodes(g));
    QF_RETURN_IF_ERROR(import_outputs(g));
    for (const auto& vi : g.value_info()) {
      if (ir::Value* v = graph_->find_value(vi.name())) apply_type(vi, v);
    }
    QF_RETURN_IF_ERROR(graph_->sort_topologically());
    QF_RETURN_IF_ERROR(canonicalize());
    QF_RETURN_IF_ERROR(ir::infer_shapes(*graph_));
    return out;
  }

 private:
  Status check_header() {
    if (!model_.has_graph() || model_.opset_import_size() == 0 || model_.ir_version() <= 0) {
      return invalid_input("not an ONNX model (no graph, IR version or opset import)");
    }
    for (const auto& op : model_.opset_import()) {
      graph_->opset_imports[op.domain() == "ai.onnx" ? "" : op.domain()] = op.version();
    }
    if (graph_->opset() == 0) graph_->opset_imports[""] = 1;  // ONNX: default domain implied
    return {};
  }

  Status import_initializers(const onnx::GraphProto& g) {
    if (g.sparse_initializer_size() > 0) {
      return unsupported("sparse initializer '{}' is not supported",
                         g.sparse_initializer(0).values().name());
    }
    for (const auto& init : g.initializer()) {
      const std::string what = "initializer '" + init.name() + "'";
      QF_ASSIGN_OR_RETURN(Tensor t, tensor_from_proto(init, base_dir_, what));
      QF_ASSIGN_OR_RETURN(ir::Value * v, graph_->add_value(init.name()));
      v->dtype = t.dtype();
      v->shape = ir::to_sym_shape(t.shape());
      v->constant = std::move(t);
    }
    return {};
  }

  // Reads element type and shape from a ValueInfoProto into `v` (when it declares them).
  static void apply_type(const onnx::ValueInfoProto& vi, ir::Value* v) {
    if (!vi.type().has_tensor_type() || v->is_constant()) return;
    const auto& tt = vi.type().tensor_type();
    if (tt.elem_type() != 0 && v->dtype == DType::kUndefined) {
      v->dtype = dtype_from_onnx(tt.elem_type());
    }
    if (!tt.has_shape() || v->shape) return;
    ir::SymShape shape;
    for (const auto& d : tt.shape().dim()) {
      if (d.has_dim_value() && d.dim_value() >= 0) {
        shape.push_back(ir::Dim::known(d.dim_value()));
      } else {
        shape.push_back(ir::Dim::symbolic(d.has_dim_param() ? d.dim_param() : ""));
      }
    }
    v->shape = std::move(shape);
  }

  Status import_inputs(const onnx::GraphProto& g) {
    for (const auto& in : g.input()) {
      if (ir::Value* existing = graph_->find_value(in.name())) {
        if (existing->is_constant()) continue;  // old exporters list initializers as inputs
        return invalid_input("graph input '{}' is declared twice", in.name());
      }
      if (!in.type().has_tensor_type()) {
        return unsupported(
            "graph input '{}' is not a tensor (sequences and maps are not supported)", in.name());
      }
      const int32_t elem = in.type().tensor_type().elem_type();
      if (dtype_from_onnx(elem) == DType::kUndefined) {
        return unsupported("graph input '{}' has element type {}, which is not supported",
                           in.name(), onnx_type_name(elem));
      }
      QF_ASSIGN_OR_RETURN(ir::Value * v, graph_->add_value(in.name()));
      apply_type(in, v);
      graph_->inputs.push_back(v);
    }
    return {};
  }

  Status declare_node_outputs(const onnx::GraphProto& g) {
    for (int i = 0; i < g.node_size(); ++i) {
      for (const std::string& name : g.node(i).output()) {
        if (name.empty()) continue;
        auto v = graph_->add_value(name);
        if (!v.ok()) {
          return invalid_input(
              "{}: output '{}' is already defined by another node, initializer "
              "or graph input",
              node_label(g.node(i), i), name);
        }
      }
    }
    return {};
  }

  static std::string node_label(const onnx::NodeProto& n, int index) {
    ir::Node tmp;
    tmp.name = n.name();
    tmp.op_type = n.op_type();
    tmp.index = index;
    return tmp.label();
  }

  Result<ir::AttrValue> convert_attribute(const onnx::AttributeProto& a, const std::string& label) {
    using A = onnx::AttributeProto;
    switch (a.type()) {
      case A::INT:
        return ir::AttrValue(static_cast<int64_t>(a.i()));
      case A::FLOAT:
        return ir::AttrValue(a.f());
      case A::STRING:
        return ir::AttrValue(a.s());
      case A::INTS:
        return ir::AttrValue(std::vector<int64_t>(a.ints().begin(), a.ints().end()));
      case A::FLOATS:
        return ir::AttrValue(std::vector<float>(a.floats().begin(), a.floats().end()));
      case A::STRINGS:
        return ir::AttrValue(std::vector<std::string>(a.strings().begin(), a.strings().end()));
      case A::TENSOR: {
        QF_ASSIGN_OR_RETURN(Tensor t, tensor_from_proto(a.t(), base_dir_,
                                                        label + ": attribute '" + a.name() + "'"));
        return ir::AttrValue(std::move(t));
      }
      default:
        // Subgraphs, sparse tensors and type protos: only ops qforge does not support use them.
        return unsupported("{}: attribute '{}' has a type qforge does not support ({})", label,
                           a.name(), A::AttributeType_Name(a.type()));
    }
  }

  Status import_nodes(const onnx::GraphProto& g) {
    for (int i = 0; i < g.node_size(); ++i) {
      const onnx::NodeProto& np = g.node(i);
      const std::string label = node_label(np, i);
      std::vector<ir::Value*> inputs;
      for (const std::string& name : np.input()) {
        if (name.empty()) {
          inputs.push_back(nullptr);
          continue;
        }
        ir::Value* v = graph_->find_value(name);
        if (!v) {
          return invalid_input(
              "{}: input '{}' is not produced by any node, initializer or graph "
              "input (missing initializer?)",
              label, name);
        }
        inputs.push_back(v);
      }
      std::vector<ir::Value*> outputs;
      for (const std::string& name : np.output()) {
        outputs.push_back(name.empty() ? nullptr : graph_->find_value(name));
      }
      ir::Node* node =
          graph_->add_node(np.op_type(), np.name(), std::move(inputs), std::move(outputs));
      node->index = i;
      node->domain = np.domain() == "ai.onnx" ? "" : np.domain();
      auto it = graph_->opset_imports.find(node->domain);
      node->opset = it == graph_->opset_imports.end() ? 0 : static_cast<int>(it->second);
      for (const auto& a : np.attribute()) {
        auto value = convert_attribute(a, label);
        if (!value.ok()) {
          // Keep going: an unsupported op with a subgraph must still show up in `inspect`.
          if (ir::OpRegistry::global().find(node->domain, node->op_type, node->opset)) {
            return value.status();
          }
          continue;
        }
        node->attrs.set(a.name(), std::move(value).value());
      }
    }
    return {};
  }

  Status import_outputs(const onnx::GraphProto& g) {
    for (const auto& out : g.output()) {
      ir::Value* v = graph_->find_value(out.name());
      if (!v) return invalid_input("graph output '{}' is not produced by any node", out.name());
      apply_type(out, v);
      graph_->outputs.push_back(v);
    }
    return {};
  }

  Status canonicalize() {
    for (const auto& n : graph_->nodes()) {
      const ir::OpDef* def = ir::OpRegistry::global().find(n->domain, n->op_type, n->opset);
      if (def && def->canonicalize) QF_RETURN_IF_ERROR(def->canonicalize(*n, *graph_));
    }
    return {};
  }

  const onnx::ModelProto& model_;
  std::filesystem::path path_;
  std::filesystem::path base_dir_;
  ir::Graph* graph_ = nullptr;
};

}  // namespace

Result<ImportedModel> import_model_bytes(const std::string& bytes,
                                         const std::filesystem::path& path) {
  onnx::ModelProto model;
  try {
    if (bytes.empty()) return invalid_input("{}: file is empty", path.string());
    if (!model.ParseFromString(bytes)) {
      return invalid_input(
          "{}: not an ONNX model (protobuf parsing failed; truncated or not ONNX?)", path.string());
    }
    Importer importer(model, path);
    auto result = importer.run();
    if (!result.ok()) return result.status().with_context(path.string() + ": ");
    return result;
  } catch (const std::exception& e) {
    return invalid_input("{}: cannot import: {}", path.string(), e.what());
  }
}

Result<ImportedModel> load_model(const std::filesystem::path& path) {
  QF_ASSIGN_OR_RETURN(std::string bytes, read_file_bytes(path));
  return import_model_bytes(bytes, path);
}

std::vector<Status> unsupported_nodes(const ir::Graph& graph) {
  std::vector<Status> out;
  for (const auto& n : graph.nodes()) {
    Status s = ir::check_supported(*n);
    if (!s.ok()) out.push_back(std::move(s));
  }
  return out;
}

}  // namespace qf::onnx_io
