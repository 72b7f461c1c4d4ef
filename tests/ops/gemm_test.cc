// MatMul and Gemm: numpy broadcasting and 1-D promotion on symbolic shapes, Gemm's transposes,
// C broadcasting and old opsets, MAC counts and error messages.
#include <gtest/gtest.h>

#include "data_movement_test_util.h"
#include "ir/op_registry.h"

namespace qf {
namespace {

using onnx::TensorProto;
using testing::ModelBuilder;
using testing::untyped_output;
using testing::values_of;

Result<onnx_io::ImportedModel> import_matmul(const std::vector<int64_t>& a,
                                             const std::vector<int64_t>& b) {
  ModelBuilder mb(13);
  mb.input("a", TensorProto::FLOAT, a);
  mb.input("b", TensorProto::FLOAT, b);
  mb.node("MatMul", {"a", "b"}, {"y"}, "mm");
  untyped_output(mb, "y");
  return testing::import(mb);
}

std::string matmul_shape(const std::vector<int64_t>& a, const std::vector<int64_t>& b) {
  auto m = import_matmul(a, b);
  return m.ok() ? testing::inferred_shape(*m, "y") : m.status().message();
}

std::optional<int64_t> macs_of(const onnx_io::ImportedModel& m) {
  const ir::Node& n = *m.graph->nodes().front();
  const ir::OpDef* def = ir::OpRegistry::global().find(n.domain, n.op_type, n.opset);
  return def && def->macs ? def->macs(n) : std::nullopt;
}

TEST(MatMulTest, BatchDimsBroadcastAndOneDimensionalOperandsArePromoted) {
  EXPECT_EQ(matmul_shape({-1, 1, 4, 5}, {3, 5, 6}), "Nx3x4x6");
  EXPECT_EQ(matmul_shape({5}, {-1, 5, 6}), "Nx6");
  EXPECT_EQ(matmul_shape({-1, 4, 5}, {5}), "Nx4");
  EXPECT_EQ(matmul_shape({5}, {5}), "scalar");
  EXPECT_EQ(matmul_shape({2, 4, 5}, {-1, 5, 6}), "2x4x6");
}

TEST(MatMulTest, InnerDimensionMismatchAndScalarsAreErrors) {
  auto m = import_matmul({2, 3}, {4, 5});
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find(
                "node 'mm' (MatMul): inner dimensions differ: A is 2x3 and B is 4x5"),
            std::string::npos)
      << m.status().message();
  auto s = import_matmul({}, {4, 5});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("scalar"), std::string::npos);
  auto batch = import_matmul({2, 1, 3}, {3, 3, 1});
  ASSERT_FALSE(batch.ok());
  EXPECT_NE(batch.status().message().find("cannot be broadcast"), std::string::npos);
}

TEST(MatMulTest, BroadcastBatchValuesAndMacs) {
  // A: two 1x2 rows; B: one 2x2 matrix shared by both batches.
  auto m = import_matmul({2, 1, 2}, {2, 2});
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(macs_of(*m), int64_t{2} * 1 * 2 * 2);
  auto out = testing::run(*m, {Tensor::from_vector<float>({2, 1, 2}, {1, 2, 3, 4}),
                               Tensor::from_vector<float>({2, 2}, {1, 10, 100, 1000})});
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ(values_of<float>(out->at(0)), (std::vector<float>{201, 2010, 403, 4030}));
}

TEST(GemmTest, TransposesAlphaBetaAndRowBroadcastOfC) {
  ModelBuilder b(13);
  b.input("a", TensorProto::FLOAT, {3, 2});  // A' = A^T: 2x3
  b.input("b", TensorProto::FLOAT, {4, 3});  // B' = B^T: 3x4
  b.initializer("c", Tensor::from_vector<float>({4}, {1, 2, 3, 4}));
  auto& n = b.node("Gemm", {"a", "b", "c"}, {"y"});
  testing::set_int_attr(n, "transA", 1);
  testing::set_int_attr(n, "transB", 1);
  testing::set_float_attr(n, "alpha", 2.0f);
  testing::set_float_attr(n, "beta", 10.0f);
  untyped_output(b, "y");
  auto m = testing::import(b);
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(testing::inferred_shape(*m, "y"), "2x4");
  EXPECT_EQ(macs_of(*m), int64_t{2} * 4 * 3);
  // A^T = [[1, 1, 1], [0, 1, 2]]; B^T has columns e0, e1, e2 and all-ones.
  auto out =
      testing::run(*m, {Tensor::from_vector<float>({3, 2}, {1, 0, 1, 1, 1, 2}),
                        Tensor::from_vector<float>({4, 3}, {1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 1, 1})});
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ(values_of<float>(out->at(0)), (std::vector<float>{12, 22, 32, 46, 10, 22, 34, 46}));
}

TEST(GemmTest, OldOpsetIntegerGemmAndBadC) {
  ModelBuilder b(7);
  b.input("a", TensorProto::INT32, {-1, 2});
  b.input("b", TensorProto::INT32, {2, 2});
  b.input("c", TensorProto::INT32, {-1, 1});
  b.node("Gemm", {"a", "b", "c"}, {"y"});
  untyped_output(b, "y");
  auto m = testing::import(b);
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(testing::inferred_shape(*m, "y"), "Nx2");
  auto out = testing::run(*m, {Tensor::from_vector<int32_t>({1, 2}, {1, 2}),
                               Tensor::from_vector<int32_t>({2, 2}, {3, 4, 5, 6}),
                               Tensor::from_vector<int32_t>({1, 1}, {-100})});
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ(values_of<int32_t>(out->at(0)), (std::vector<int32_t>{-87, -84}));

  ModelBuilder c(13);
  c.input("a", TensorProto::FLOAT, {2, 3});
  c.input("b", TensorProto::FLOAT, {3, 4});
  c.input("c", TensorProto::FLOAT, {3});
  c.node("Gemm", {"a", "b", "c"}, {"y"}, "fc");
  untyped_output(c, "y");
  auto bad = testing::import(c);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find(
                "node 'fc' (Gemm): C of shape 3 cannot be broadcast to the output 2x4"),
            std::string::npos)
      << bad.status().message();
}

}  // namespace
}  // namespace qf
