#include "testing/model_builder.h"

#include <fstream>

#include "onnx/tensor_proto.h"

namespace qf::testing {

namespace {
void fill_value_info(onnx::ValueInfoProto* vi, const std::string& name, int32_t onnx_type,
                     const std::vector<int64_t>& dims) {
  vi->set_name(name);
  auto* tt = vi->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(onnx_type);
  auto* shape = tt->mutable_shape();
  for (int64_t d : dims) {
    auto* dim = shape->add_dim();
    if (d < 0) {
      dim->set_dim_param("N");
    } else {
      dim->set_dim_value(d);
    }
  }
}
}  // namespace

ModelBuilder::ModelBuilder(int opset) {
  model_.set_ir_version(8);
  model_.set_producer_name("qforge-tests");
  auto* op = model_.add_opset_import();
  op->set_domain("");
  op->set_version(opset);
  model_.mutable_graph()->set_name("test");
}

ModelBuilder& ModelBuilder::input(const std::string& name, int32_t onnx_type,
                                  const std::vector<int64_t>& dims) {
  fill_value_info(model_.mutable_graph()->add_input(), name, onnx_type, dims);
  return *this;
}

ModelBuilder& ModelBuilder::output(const std::string& name, int32_t onnx_type,
                                   const std::vector<int64_t>& dims) {
  fill_value_info(model_.mutable_graph()->add_output(), name, onnx_type, dims);
  return *this;
}

ModelBuilder& ModelBuilder::initializer(const std::string& name, const Tensor& value) {
  onnx_io::tensor_to_proto(value, name, model_.mutable_graph()->add_initializer());
  return *this;
}

onnx::NodeProto& ModelBuilder::node(const std::string& op_type,
                                    const std::vector<std::string>& inputs,
                                    const std::vector<std::string>& outputs,
                                    const std::string& name) {
  onnx::NodeProto* n = model_.mutable_graph()->add_node();
  n->set_op_type(op_type);
  n->set_name(name);
  for (const auto& i : inputs) n->add_input(i);
  for (const auto& o : outputs) n->add_output(o);
  return *n;
}

std::string ModelBuilder::serialize() const {
  return model_.SerializeAsString();
}

void ModelBuilder::save(const std::string& path) const {
  std::ofstream out(path, std::ios::binary);
  out << serialize();
}

void set_int_attr(onnx::NodeProto& node, const std::string& name, int64_t value) {
  auto* a = node.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INT);
  a->set_i(value);
}

void set_ints_attr(onnx::NodeProto& node, const std::string& name,
                   const std::vector<int64_t>& values) {
  auto* a = node.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INTS);
  for (int64_t v : values) a->add_ints(v);
}

void set_float_attr(onnx::NodeProto& node, const std::string& name, float value) {
  auto* a = node.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::FLOAT);
  a->set_f(value);
}

}  // namespace qf::testing
