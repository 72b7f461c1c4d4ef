#include "onnx/importer.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "backends/reference/executor.h"
#include "onnx/tensor_proto.h"
#include "testing/model_builder.h"

namespace qf::onnx_io {
namespace {

using qf::testing::ModelBuilder;

TEST(ImporterTest, InitializersListedAsInputsAreConstantsNotRuntimeInputs) {
  ModelBuilder b(9);
  b.input("x", onnx::TensorProto::FLOAT, {-1, 2});
  b.input("w", onnx::TensorProto::FLOAT, {2});  // IR < 4 style: initializer also an input
  b.initializer("w", Tensor::from_vector<float>({2}, {1, 2}));
  b.output("y", onnx::TensorProto::FLOAT, {-1, 2});
  b.node("Relu", {"x"}, {"r"});
  b.node("Neg", {"r"}, {"y"});
  auto m = import_model_bytes(b.serialize(), "m.onnx");
  ASSERT_TRUE(m.ok()) << m.status().message();
  ASSERT_EQ(m->graph->inputs.size(), 1u);
  EXPECT_EQ(m->graph->inputs[0]->name, "x");
  EXPECT_TRUE(m->graph->find_value("w")->is_constant());
  EXPECT_EQ(m->graph->opset(), 9);
  // Shapes propagate with the symbolic batch dim.
  EXPECT_EQ(ir::sym_shape_str(m->graph->find_value("r")->shape), "Nx2");
}

TEST(ImporterTest, TypedFieldAndRawDataInitializersAgree) {
  onnx::TensorProto typed;
  typed.set_data_type(onnx::TensorProto::FLOAT);
  typed.add_dims(3);
  for (float v : {1.5f, -2.0f, 3.25f}) typed.add_float_data(v);
  auto a = tensor_from_proto(typed, ".", "typed");
  onnx::TensorProto raw;
  tensor_to_proto(*a, "raw", &raw);
  auto b = tensor_from_proto(raw, ".", "raw");
  ASSERT_TRUE(a.ok() && b.ok());
  for (int i = 0; i < 3; ++i) EXPECT_EQ(a->data<float>()[i], b->data<float>()[i]);
}

TEST(ImporterTest, Float16TypedDataIsBitPattern) {
  onnx::TensorProto p;
  p.set_data_type(onnx::TensorProto::FLOAT16);
  p.add_dims(1);
  p.add_int32_data(0x3c00);  // 1.0 in f16
  auto t = tensor_from_proto(p, ".", "h");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(f16_to_f32(t->data<f16_t>()[0]), 1.0f);
}

TEST(ImporterTest, WrongElementCountNamesTheInitializer) {
  onnx::TensorProto p;
  p.set_data_type(onnx::TensorProto::FLOAT);
  p.add_dims(4);
  p.add_float_data(1.0f);
  auto t = tensor_from_proto(p, ".", "initializer 'conv.weight'");
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find(
                "initializer 'conv.weight': holds 1 values but its shape 4 needs 4"),
            std::string::npos)
      << t.status().message();
}

TEST(ImporterTest, MissingExternalDataFileIsAnError) {
  onnx::TensorProto p;
  p.set_data_type(onnx::TensorProto::FLOAT);
  p.add_dims(2);
  p.set_data_location(onnx::TensorProto::EXTERNAL);
  auto* e = p.add_external_data();
  e->set_key("location");
  e->set_value("weights.bin");
  auto t = tensor_from_proto(p, "/nonexistent", "w");
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("weights.bin: no such file"), std::string::npos);
}

TEST(ImporterTest, ExternalDataIsReadAtItsOffset) {
  const auto dir = std::filesystem::temp_directory_path() / "qforge_external_data_test";
  std::filesystem::create_directories(dir);
  const float values[] = {9.0f, 1.5f, -2.5f};
  std::ofstream(dir / "weights.bin", std::ios::binary)
      .write(reinterpret_cast<const char*>(values), sizeof(values));
  onnx::TensorProto p;
  p.set_data_type(onnx::TensorProto::FLOAT);
  p.add_dims(2);
  p.set_data_location(onnx::TensorProto::EXTERNAL);
  for (auto [key, value] :
       {std::pair{"location", "weights.bin"}, {"offset", "4"}, {"length", "8"}}) {
    auto* e = p.add_external_data();
    e->set_key(key);
    e->set_value(value);
  }
  auto t = tensor_from_proto(p, dir, "w");
  std::filesystem::remove_all(dir);
  ASSERT_TRUE(t.ok()) << t.status().message();
  EXPECT_EQ(t->data<float>()[0], 1.5f);
  EXPECT_EQ(t->data<float>()[1], -2.5f);
}

TEST(ImporterTest, NodeOutputDefinedTwiceIsRejected) {
  ModelBuilder b(13);
  b.input("x", onnx::TensorProto::FLOAT, {1});
  b.output("y", onnx::TensorProto::FLOAT, {1});
  b.node("Relu", {"x"}, {"y"}, "a");
  b.node("Neg", {"x"}, {"y"}, "b");
  auto m = import_model_bytes(b.serialize(), "m.onnx");
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("node 'b' (Neg): output 'y' is already defined"),
            std::string::npos)
      << m.status().message();
}

TEST(ImporterTest, ExecutorRunsImportedGraph) {
  ModelBuilder b(13);
  b.input("x", onnx::TensorProto::FLOAT, {3});
  b.output("y", onnx::TensorProto::FLOAT, {3});
  b.node("Neg", {"x"}, {"n"});
  b.node("Relu", {"n"}, {"y"});
  auto m = import_model_bytes(b.serialize(), "m.onnx");
  ASSERT_TRUE(m.ok());
  auto exec = reference::Executor::create(*m->graph);
  ASSERT_TRUE(exec.ok());
  auto out = exec->run({Tensor::from_vector<float>({3}, {1, -2, 0})});
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ((*out)[0].data<float>()[0], 0.0f);
  EXPECT_EQ((*out)[0].data<float>()[1], 2.0f);
}

}  // namespace
}  // namespace qf::onnx_io
