// Builds small ONNX models in C++ for tests (no Python needed at test time).
#pragma once

#include <onnx/onnx_pb.h>

#include <string>
#include <vector>

#include "qforge/tensor.h"

namespace qf::testing {

class ModelBuilder {
 public:
  explicit ModelBuilder(int opset = 17);

  // Graph input/output with element type (ONNX enum) and dims; a negative dim becomes the
  // symbolic dim "N".
  ModelBuilder& input(const std::string& name, int32_t onnx_type, const std::vector<int64_t>& dims);
  ModelBuilder& output(const std::string& name, int32_t onnx_type,
                       const std::vector<int64_t>& dims);
  ModelBuilder& initializer(const std::string& name, const Tensor& value);
  onnx::NodeProto& node(const std::string& op_type, const std::vector<std::string>& inputs,
                        const std::vector<std::string>& outputs, const std::string& name = "");

  std::string serialize() const;
  void save(const std::string& path) const;
  onnx::ModelProto& proto() { return model_; }

 private:
  onnx::ModelProto model_;
};

void set_int_attr(onnx::NodeProto& node, const std::string& name, int64_t value);
void set_ints_attr(onnx::NodeProto& node, const std::string& name,
                   const std::vector<int64_t>& values);
void set_float_attr(onnx::NodeProto& node, const std::string& name, float value);

}  // namespace qf::testing
