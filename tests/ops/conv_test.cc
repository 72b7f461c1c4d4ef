// Conv and ConvTranspose: static shape inference with symbolic dims, MAC counts, error messages,
// and the GEMM loop nest the reference kernels share (against a naive triple loop).
#include <gtest/gtest.h>

#include "data_movement_test_util.h"
#include "ir/op_registry.h"
#include "ops/nn_common.h"

namespace qf {
namespace {

using onnx::TensorProto;
using testing::ModelBuilder;
using testing::untyped_output;
using testing::values_of;

// Names dim `dim` of graph input `input` symbolically (ModelBuilder only knows "N").
void rename_dim(ModelBuilder& b, int input, int dim, const std::string& symbol) {
  b.proto()
      .mutable_graph()
      ->mutable_input(input)
      ->mutable_type()
      ->mutable_tensor_type()
      ->mutable_shape()
      ->mutable_dim(dim)
      ->set_dim_param(symbol);
}

std::optional<int64_t> macs_of(const onnx_io::ImportedModel& m, const std::string& op_type) {
  for (const auto& n : m.graph->nodes()) {
    if (n->op_type != op_type) continue;
    const ir::OpDef* def = ir::OpRegistry::global().find(n->domain, n->op_type, n->opset);
    return def && def->macs ? def->macs(*n) : std::nullopt;
  }
  return std::nullopt;
}

Tensor filled(Shape shape, float start, float step) {
  Tensor t(DType::kF32, std::move(shape));
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = start + step * static_cast<float>(i);
  return t;
}

TEST(ConvTest, SymbolicBatchKeepsItsNameAndSpatialDimsFollowStridesAndPads) {
  ModelBuilder b(13);
  b.input("x", TensorProto::FLOAT, {-1, 3, 32, 30});
  b.initializer("w", Tensor(DType::kF32, {8, 3, 3, 3}));
  auto& n = b.node("Conv", {"x", "w"}, {"y"});
  testing::set_ints_attr(n, "strides", {2, 2});
  testing::set_ints_attr(n, "pads", {1, 1, 1, 1});
  untyped_output(b, "y");
  auto m = testing::import(b);
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(testing::inferred_shape(*m, "y"), "Nx8x16x15");
  EXPECT_EQ(macs_of(*m, "Conv"), std::nullopt);  // the batch is unknown
}

TEST(ConvTest, UnknownSpatialDimsAreUnknownInTheOutputAndMacsCountGroups) {
  ModelBuilder b(11);
  b.input("x", TensorProto::FLOAT, {1, 4, 10, 10});
  rename_dim(b, 0, 2, "H");
  b.initializer("w", Tensor(DType::kF32, {6, 2, 3, 3}));  // group 2: 2 input channels each
  auto& n = b.node("Conv", {"x", "w"}, {"y"});
  testing::set_int_attr(n, "group", 2);
  testing::set_string_attr(n, "auto_pad", "SAME_UPPER");
  untyped_output(b, "y");
  auto m = testing::import(b);
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(testing::inferred_shape(*m, "y"), "1x6x?x10");

  ModelBuilder c(11);
  c.input("x", TensorProto::FLOAT, {2, 4, 10, 10});
  c.initializer("w", Tensor(DType::kF32, {6, 2, 3, 3}));
  testing::set_int_attr(c.node("Conv", {"x", "w"}, {"y"}), "group", 2);
  untyped_output(c, "y");
  auto m2 = testing::import(c);
  ASSERT_TRUE(m2.ok()) << m2.status().message();
  // N * Cout * out spatial * (Cin / group) * kernel.
  EXPECT_EQ(macs_of(*m2, "Conv"), int64_t{2} * 6 * 8 * 8 * 2 * 9);
}

TEST(ConvTest, DepthwiseWithBiasAndDilation) {
  // Two 4x4 channels, each convolved with its own dilated 2x2 kernel (taps 2 apart).
  ModelBuilder b(13);
  b.input("x", TensorProto::FLOAT, {1, 2, 4, 4});
  b.initializer("w", Tensor::from_vector<float>({2, 1, 2, 2}, {1, 0, 0, 1, 0, 1, 1, 0}));
  b.initializer("b", Tensor::from_vector<float>({2}, {100, 200}));
  auto& n = b.node("Conv", {"x", "w", "b"}, {"y"});
  testing::set_int_attr(n, "group", 2);
  testing::set_ints_attr(n, "dilations", {2, 2});
  untyped_output(b, "y");
  auto m = testing::import(b);
  ASSERT_TRUE(m.ok()) << m.status().message();
  auto out = testing::run(*m, {filled({1, 2, 4, 4}, 0, 1)});
  ASSERT_TRUE(out.ok()) << out.status().message();
  ASSERT_EQ(out->at(0).shape(), (Shape{1, 2, 2, 2}));
  // Channel 0: x[i][j] + x[i+2][j+2]; channel 1: x[i][j+2] + x[i+2][j] (channel 1 starts at 16).
  EXPECT_EQ(values_of<float>(out->at(0)),
            (std::vector<float>{110, 112, 118, 120, 242, 244, 250, 252}));
}

TEST(ConvTest, ErrorsNameTheNodeAndTheProblem) {
  auto import_conv = [](Shape x, Shape w, const std::string& auto_pad) {
    ModelBuilder b(13);
    b.input("x", TensorProto::FLOAT, x);
    b.initializer("w", Tensor(DType::kF32, w));
    auto& n = b.node("Conv", {"x", "w"}, {"y"}, "conv1");
    if (!auto_pad.empty()) testing::set_string_attr(n, "auto_pad", auto_pad);
    untyped_output(b, "y");
    return testing::import(b);
  };
  auto channels = import_conv({1, 4, 8, 8}, {8, 3, 3, 3}, "");
  ASSERT_FALSE(channels.ok());
  EXPECT_EQ(channels.status().code(), StatusCode::kInvalidInput);
  EXPECT_NE(
      channels.status().message().find("node 'conv1' (Conv): X has 4 channels but W expects 3"),
      std::string::npos)
      << channels.status().message();

  auto small = import_conv({1, 3, 2, 8}, {8, 3, 3, 3}, "");
  ASSERT_FALSE(small.ok());
  EXPECT_NE(small.status().message().find("smaller than the kernel's extent 3"), std::string::npos)
      << small.status().message();

  auto bad_pad = import_conv({1, 3, 8, 8}, {8, 3, 3, 3}, "SAME");
  ASSERT_FALSE(bad_pad.ok());
  EXPECT_NE(bad_pad.status().message().find("auto_pad 'SAME' is not one of"), std::string::npos);

  auto rank = import_conv({1, 3, 8, 8}, {8, 3, 3}, "");
  ASSERT_FALSE(rank.ok());
  EXPECT_NE(rank.status().message().find("X has rank 4 but W has rank 3"), std::string::npos);
}

TEST(ConvTest, IntegerInputsAreUnsupported) {
  ModelBuilder b(13);
  b.input("x", TensorProto::INT32, {1, 1, 3, 3});
  b.input("w", TensorProto::INT32, {1, 1, 1, 1});
  b.node("Conv", {"x", "w"}, {"y"});
  untyped_output(b, "y");
  auto m = testing::import(b);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), StatusCode::kUnsupported);
}

TEST(ConvTransposeTest, OutputShapeAttributeAndMacs) {
  ModelBuilder b(13);
  b.input("x", TensorProto::FLOAT, {-1, 2, 3, 3});
  b.initializer("w", Tensor(DType::kF32, {2, 4, 3, 3}));
  auto& n = b.node("ConvTranspose", {"x", "w"}, {"y"});
  testing::set_ints_attr(n, "strides", {3, 2});
  testing::set_ints_attr(n, "output_shape", {10, 8});
  untyped_output(b, "y");
  auto m = testing::import(b);
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(testing::inferred_shape(*m, "y"), "Nx4x10x8");

  ModelBuilder c(13);
  c.input("x", TensorProto::FLOAT, {1, 2, 3, 3});
  c.initializer("w", Tensor(DType::kF32, {2, 4, 3, 3}));
  auto& n2 = c.node("ConvTranspose", {"x", "w"}, {"y"});
  testing::set_ints_attr(n2, "strides", {2, 2});
  testing::set_ints_attr(n2, "pads", {1, 1, 1, 1});
  testing::set_ints_attr(n2, "output_padding", {1, 0});
  untyped_output(c, "y");
  auto m2 = testing::import(c);
  ASSERT_TRUE(m2.ok()) << m2.status().message();
  // 2 * (3 - 1) + output_padding + 3 - pads.
  EXPECT_EQ(testing::inferred_shape(*m2, "y"), "1x4x6x5");
  EXPECT_EQ(macs_of(*m2, "ConvTranspose"), int64_t{2} * 3 * 3 * 4 * 9);
}

TEST(ConvTransposeTest, StrideTwoScattersEachInputIntoItsWindow) {
  // One input channel of [[1, 2]], kernel [[1, 10], [100, 1000]], stride 2: no overlap.
  ModelBuilder b(13);
  b.input("x", TensorProto::FLOAT, {1, 1, 1, 2});
  b.initializer("w", Tensor::from_vector<float>({1, 1, 2, 2}, {1, 10, 100, 1000}));
  testing::set_ints_attr(b.node("ConvTranspose", {"x", "w"}, {"y"}), "strides", {2, 2});
  untyped_output(b, "y");
  auto m = testing::import(b);
  ASSERT_TRUE(m.ok()) << m.status().message();
  auto out = testing::run(*m, {Tensor::from_vector<float>({1, 1, 1, 2}, {1, 2})});
  ASSERT_TRUE(out.ok()) << out.status().message();
  ASSERT_EQ(out->at(0).shape(), (Shape{1, 1, 2, 4}));
  EXPECT_EQ(values_of<float>(out->at(0)), (std::vector<float>{1, 10, 2, 20, 100, 1000, 200, 2000}));
}

TEST(GemmAccumulateTest, MatchesANaiveLoopForTransposedAAndOddSizes) {
  // Sizes straddle the 4-row micro-kernel and the column/depth blocks.
  const int64_t m = 7, n = 530, k = 131;
  std::vector<double> a(static_cast<size_t>(k * m)), b(static_cast<size_t>(k * n));
  for (size_t i = 0; i < a.size(); ++i) a[i] = static_cast<double>((i * 7) % 13) - 6;
  for (size_t i = 0; i < b.size(); ++i) b[i] = static_cast<double>((i * 5) % 11) - 5;
  std::vector<double> c(static_cast<size_t>(m * n), 1.0);
  // A is stored transposed (k x m): A(i, p) = a[p * m + i].
  ops::gemm_accumulate<double>(m, n, k, a.data(), 1, m, b.data(), n, c.data(), n);
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double want = 1.0;
      for (int64_t p = 0; p < k; ++p) want += a[p * m + i] * b[p * n + j];
      ASSERT_EQ(c[i * n + j], want) << i << "," << j;
    }
  }
}

}  // namespace
}  // namespace qf
