// Helpers for the data-movement op tests (shape ops, transpose, concat/split, slice/gather, pad,
// resize): build a model, import it (canonicalisation + static shape inference), read inferred
// shapes and run it on the reference executor.
#pragma once

#include <string>
#include <vector>

#include "backends/reference/executor.h"
#include "onnx/importer.h"
#include "onnx/tensor_proto.h"
#include "testing/model_builder.h"

namespace qf::testing {

inline void set_string_attr(onnx::NodeProto& node, const std::string& name,
                            const std::string& value) {
  auto* a = node.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::STRING);
  a->set_s(value);
}

inline void set_floats_attr(onnx::NodeProto& node, const std::string& name,
                            const std::vector<float>& values) {
  auto* a = node.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::FLOATS);
  for (float v : values) a->add_floats(v);
}

inline void set_tensor_attr(onnx::NodeProto& node, const std::string& name, const Tensor& value) {
  auto* a = node.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::TENSOR);
  onnx_io::tensor_to_proto(value, "", a->mutable_t());
}

// A graph output with no declared type or shape, so that what a test reads is what inference
// found.
inline void untyped_output(ModelBuilder& b, const std::string& name) {
  b.proto().mutable_graph()->add_output()->set_name(name);
}

inline Result<onnx_io::ImportedModel> import(const ModelBuilder& b) {
  return onnx_io::import_model_bytes(b.serialize(), "test.onnx");
}

// "Nx3x224x224", "?" for unknown rank, "<none>" when the graph has no such value.
inline std::string inferred_shape(const onnx_io::ImportedModel& m, const std::string& name) {
  const ir::Value* v = m.graph->find_value(name);
  return v ? ir::sym_shape_str(v->shape) : "<none>";
}

inline Result<std::vector<Tensor>> run(const onnx_io::ImportedModel& m,
                                       const std::vector<Tensor>& inputs) {
  QF_ASSIGN_OR_RETURN(reference::Executor e, reference::Executor::create(*m.graph));
  return e.run(inputs);
}

template <typename T>
std::vector<T> values_of(const Tensor& t) {
  return std::vector<T>(t.data<T>(), t.data<T>() + t.numel());
}

}  // namespace qf::testing
