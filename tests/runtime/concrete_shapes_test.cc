// Concrete shape inference shared by the cpu and cuda plan builders.
#include "runtime/concrete_shapes.h"

#include <gtest/gtest.h>

#include "onnx/importer.h"
#include "testing/model_builder.h"

namespace qf::runtime {
namespace {

using qf::testing::ModelBuilder;

constexpr int32_t kF32 = onnx::TensorProto::FLOAT;
constexpr int32_t kI64 = onnx::TensorProto::INT64;

std::unique_ptr<ir::Graph> import(const ModelBuilder& b) {
  auto m = onnx_io::import_model_bytes(b.serialize(), "test.onnx");
  if (!m.ok()) {
    ADD_FAILURE() << m.status().message();
    return nullptr;
  }
  return std::move(m->graph);
}

TEST(ConcreteShapesTest, ShapesFollowTheInputsAndSmallConstantsFold) {
  ModelBuilder b(13);
  b.input("x", kF32, {-1, 3});
  b.output("y", kF32, {-1, 3});
  b.output("d", kI64, {2});
  b.initializer("c", Tensor::from_vector<int64_t>({2}, {2, 3}));
  b.node("Shape", {"x"}, {"s"});
  b.node("Relu", {"x"}, {"r"});
  b.node("Reshape", {"r", "s"}, {"y"});
  b.node("Add", {"c", "c"}, {"d"});
  auto g = import(b);
  ASSERT_TRUE(g);
  auto values = infer_concrete_shapes(*g, {{4, 3}}, {DType::kF32}, "cpu");
  ASSERT_TRUE(values.ok()) << values.status().message();
  const ConcreteValue& y = values->at(g->find_value("y"));
  EXPECT_EQ(y.dtype, DType::kF32);
  EXPECT_EQ(y.shape, (Shape{4, 3}));
  EXPECT_FALSE(y.known.defined());
  const ConcreteValue& d = values->at(g->find_value("d"));
  ASSERT_TRUE(d.known.defined());
  EXPECT_EQ(d.known.to_int64_vector(), (std::vector<int64_t>{4, 6}));
}

TEST(ConcreteShapesTest, AShapeThatDependsOnInputDataNamesTheBackend) {
  ModelBuilder b(13);
  b.input("x", kF32, {2, 3});
  b.input("shape", kI64, {2});
  b.output("y", kF32, {-1, -1});
  b.node("Reshape", {"x", "shape"}, {"y"});
  auto g = import(b);
  ASSERT_TRUE(g);
  auto values = infer_concrete_shapes(*g, {{2, 3}, {2}}, {DType::kF32, DType::kI64}, "cuda");
  ASSERT_FALSE(values.ok());
  EXPECT_NE(values.status().message().find("which the cuda backend cannot plan ahead"),
            std::string::npos)
      << values.status().message();
}

}  // namespace
}  // namespace qf::runtime
