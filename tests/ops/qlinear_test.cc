// QLinearConv, QLinearMatMul, ConvInteger and MatMulInteger: hand-computed cases (rounding half
// to even, saturation, negative and per-channel zero points, per-channel/per-row/per-column
// scales, groups, strides, padding), errors naming the node, and randomized comparisons over
// awkward shapes against the float composition DequantizeLinear -> Conv/MatMul -> QuantizeLinear.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "data_movement_test_util.h"
#include "testing/quant_test_util.h"

namespace qf {
namespace {

using onnx::TensorProto;
using testing::ModelBuilder;
using testing::random_q;
using testing::random_zero_points;
using testing::set_int_attr;
using testing::set_ints_attr;
using testing::untyped_output;
using testing::values_of;

template <typename T>
Tensor scalar(T v) {
  return Tensor::from_vector<T>({}, {v});
}

// Imports the model (all data in initializers) and runs it with no inputs.
Result<std::vector<Tensor>> run_model(const ModelBuilder& b) {
  QF_ASSIGN_OR_RETURN(onnx_io::ImportedModel m, testing::import(b));
  return testing::run(m, {});
}

std::vector<int64_t> as_int64(const Tensor& t) {
  std::vector<int64_t> out;
  for (int64_t i = 0; i < t.numel(); ++i) {
    out.push_back(static_cast<int64_t>(t.element_as_double(i)));
  }
  return out;
}

// Adds initializers named by the leading `names` with `values` (an undefined tensor adds none).
void add_initializers(ModelBuilder& b, const std::vector<std::string>& names,
                      const std::vector<Tensor>& values) {
  for (size_t i = 0; i < names.size() && i < values.size(); ++i) {
    if (values[i].defined()) b.initializer(names[i], values[i]);
  }
}

const std::vector<std::string> kQLinearConvInputs = {"x",  "xs", "xz", "w",   "ws",
                                                     "wz", "ys", "yz", "bias"};

// ---- hand-computed cases ------------------------------------------------------------------------

TEST(QLinearConvTest, RoundsHalfToEvenAndSaturatesWithNegativeZeroPoints) {
  // A 1x1 kernel: acc = (x - 100) * (1 - -2) = 3 * (x - 100); m = 1 * 1 / 2 = 0.5.
  ModelBuilder b(10);
  add_initializers(
      b, kQLinearConvInputs,
      {Tensor::from_vector<uint8_t>({1, 1, 1, 8}, {101, 99, 103, 97, 105, 100, 255, 0}),
       scalar(1.0f), scalar<uint8_t>(100), Tensor::from_vector<int8_t>({1, 1, 1, 1}, {1}),
       scalar(1.0f), scalar<int8_t>(-2), scalar(2.0f), scalar<int8_t>(-3)});
  b.node("QLinearConv", {"x", "xs", "xz", "w", "ws", "wz", "ys", "yz"}, {"y"});
  untyped_output(b, "y");
  auto out = run_model(b);
  ASSERT_TRUE(out.ok()) << out.status().message();
  ASSERT_EQ(out->at(0).dtype(), DType::kI8);
  // acc * m = 1.5, -1.5, 4.5, -4.5, 7.5, 0, 232.5, -150 -> ties to even, then + (-3), saturated.
  EXPECT_EQ(values_of<int8_t>(out->at(0)), (std::vector<int8_t>{-1, -5, 1, -7, 5, -3, 127, -128}));
}

TEST(QLinearConvTest, PerChannelScalesAndZeroPointsGroupsStrideTwoPaddingAndBias) {
  // Two groups of one channel each; x - 2 is channel 0: 1..9, channel 1: a small +-1 pattern.
  const std::vector<uint8_t> x = {3, 4, 5, 6, 7, 8, 9, 10, 11,  //
                                  1, 2, 3, 2, 4, 2, 3, 2,  1};
  ModelBuilder b(10);
  add_initializers(
      b, kQLinearConvInputs,
      {Tensor::from_vector<uint8_t>({1, 2, 3, 3}, x), scalar(0.25f), scalar<uint8_t>(2),
       // w - w_zp: channel 0 the diagonal [[1, 0], [0, 1]], channel 1 all ones (zero point -1).
       Tensor::from_vector<int8_t>({2, 1, 2, 2}, {1, 0, 0, 1, 0, 0, 0, 0}),
       Tensor::from_vector<float>({2}, {0.5f, 1.0f}), Tensor::from_vector<int8_t>({2}, {0, -1}),
       scalar(0.25f), scalar<uint8_t>(128), Tensor::from_vector<int32_t>({2}, {4, 3})});
  auto& n = b.node("QLinearConv", kQLinearConvInputs, {"y"});
  set_int_attr(n, "group", 2);
  set_ints_attr(n, "strides", {2, 2});
  set_ints_attr(n, "pads", {1, 1, 1, 1});
  untyped_output(b, "y");
  auto out = run_model(b);
  ASSERT_TRUE(out.ok()) << out.status().message();
  ASSERT_EQ(out->at(0).shape(), (Shape{1, 2, 2, 2}));
  // Windows start at (2 * oh - 1, 2 * ow - 1); the padding is x's zero point, real 0.
  // Channel 0: acc = 1, 3, 7, 5 + 9 -> + bias 4 = 5, 7, 11, 18; m = 0.25 * 0.5 / 0.25 = 0.5
  //   -> 2.5, 3.5, 5.5, 9 -> 2, 4, 6, 9.
  // Channel 1: acc = -1, 0 + 1, 0 + 1, 2 + 0 + 0 - 1 -> + bias 3 = 2, 4, 4, 4; m = 1.
  EXPECT_EQ(values_of<uint8_t>(out->at(0)),
            (std::vector<uint8_t>{130, 132, 134, 137, 130, 132, 132, 132}));
}

TEST(QLinearMatMulTest, PerRowAndPerColumnScalesAndZeroPoints) {
  ModelBuilder b(10);
  add_initializers(
      b, {"a", "as", "az", "b", "bs", "bz", "ys", "yz"},
      {Tensor::from_vector<uint8_t>({2, 3}, {11, 12, 13, 19, 20, 22}),
       Tensor::from_vector<float>({2}, {1.0f, 2.0f}), Tensor::from_vector<uint8_t>({2}, {10, 20}),
       Tensor::from_vector<int8_t>({3, 2}, {1, 0, 2, -4, 3, -8}),
       Tensor::from_vector<float>({2}, {0.5f, 0.25f}), Tensor::from_vector<int8_t>({2}, {0, -4}),
       scalar(1.0f), scalar<int8_t>(5)});
  b.node("QLinearMatMul", {"a", "as", "az", "b", "bs", "bz", "ys", "yz"}, {"y"});
  untyped_output(b, "y");
  auto out = run_model(b);
  ASSERT_TRUE(out.ok()) << out.status().message();
  // a - az = [[1, 2, 3], [-1, 0, 2]], b - bz = [[1, 4], [2, 0], [3, -4]]: acc = [[14, -8],
  // [5, -12]]; multipliers as[i] * bs[j] = [[0.5, 0.25], [1, 0.5]] -> 7, -2, 5, -6, + 5.
  EXPECT_EQ(values_of<int8_t>(out->at(0)), (std::vector<int8_t>{12, 3, 10, -1}));
}

TEST(QLinearMatMulTest, Opset21TakesFloat16Scales) {
  // The case above with its (exactly representable) scales as float16.
  auto half = [](Shape shape, const std::vector<float>& v) {
    std::vector<f16_t> h;
    for (float f : v) h.push_back(f32_to_f16(f));
    return Tensor::from_vector<f16_t>(std::move(shape), h);
  };
  ModelBuilder b(21);
  add_initializers(
      b, {"a", "as", "az", "b", "bs", "bz", "ys", "yz"},
      {Tensor::from_vector<uint8_t>({2, 3}, {11, 12, 13, 19, 20, 22}), half({2}, {1.0f, 2.0f}),
       Tensor::from_vector<uint8_t>({2}, {10, 20}),
       Tensor::from_vector<int8_t>({3, 2}, {1, 0, 2, -4, 3, -8}), half({2}, {0.5f, 0.25f}),
       Tensor::from_vector<int8_t>({2}, {0, -4}), half({}, {1.0f}), scalar<int8_t>(5)});
  b.node("QLinearMatMul", {"a", "as", "az", "b", "bs", "bz", "ys", "yz"}, {"y"});
  untyped_output(b, "y");
  auto out = run_model(b);
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ(values_of<int8_t>(out->at(0)), (std::vector<int8_t>{12, 3, 10, -1}));
}

TEST(QLinearMatMulTest, NdPerRowScalesEqualOneMatMulPerBatch) {
  // a [2, 2, 3] with scale and zero point [2, 2, 1] (per row of each batch) against running each
  // batch on its own with 1-D per-row parameters.
  const std::vector<int8_t> a = {5, -7, 9, 0, 3, -2, 11, 4, -6, 2, 8, -1};
  const std::vector<float> as = {0.02f, 0.03f, 0.05f, 0.07f};
  const std::vector<int8_t> az = {1, -2, 3, 0};
  const Tensor bm = Tensor::from_vector<uint8_t>({3, 2}, {10, 200, 130, 7, 66, 99});
  auto model = [&](Tensor at, Tensor ast, Tensor azt) {
    ModelBuilder b(10);
    add_initializers(b, {"a", "as", "az", "b", "bs", "bz", "ys", "yz"},
                     {at, ast, azt, bm, scalar(0.04f), scalar<uint8_t>(128), scalar(0.1f),
                      scalar<uint8_t>(100)});
    b.node("QLinearMatMul", {"a", "as", "az", "b", "bs", "bz", "ys", "yz"}, {"y"});
    untyped_output(b, "y");
    return run_model(b);
  };
  auto whole =
      model(Tensor::from_vector<int8_t>({2, 2, 3}, a), Tensor::from_vector<float>({2, 2, 1}, as),
            Tensor::from_vector<int8_t>({2, 2, 1}, az));
  ASSERT_TRUE(whole.ok()) << whole.status().message();
  ASSERT_EQ(whole->at(0).shape(), (Shape{2, 2, 2}));
  for (int batch = 0; batch < 2; ++batch) {
    auto part =
        model(Tensor::from_vector<int8_t>(
                  {2, 3}, std::vector<int8_t>(a.begin() + 6 * batch, a.begin() + 6 * batch + 6)),
              Tensor::from_vector<float>({2}, {as[2 * batch], as[2 * batch + 1]}),
              Tensor::from_vector<int8_t>({2}, {az[2 * batch], az[2 * batch + 1]}));
    ASSERT_TRUE(part.ok()) << part.status().message();
    const std::vector<uint8_t> all = values_of<uint8_t>(whole->at(0));
    EXPECT_EQ(std::vector<uint8_t>(all.begin() + 4 * batch, all.begin() + 4 * batch + 4),
              values_of<uint8_t>(part->at(0)))
        << "batch " << batch;
  }
}

TEST(ConvIntegerTest, PaddingReadsAsTheZeroPoint) {
  ModelBuilder b(10);
  add_initializers(b, {"x", "w", "xz", "wz"},
                   {Tensor::from_vector<uint8_t>({1, 1, 2, 2}, {5, 6, 7, 8}),
                    Tensor::from_vector<uint8_t>({1, 1, 2, 2}, {3, 3, 3, 3}), scalar<uint8_t>(5),
                    scalar<uint8_t>(1)});
  set_ints_attr(b.node("ConvInteger", {"x", "w", "xz", "wz"}, {"y"}), "pads", {1, 1, 1, 1});
  untyped_output(b, "y");
  auto out = run_model(b);
  ASSERT_TRUE(out.ok()) << out.status().message();
  ASSERT_EQ(out->at(0).dtype(), DType::kI32);
  // x - 5 = [[0, 1], [2, 3]] under a 2x2 window of 2s, sliding over the padded 4x4 grid.
  EXPECT_EQ(values_of<int32_t>(out->at(0)), (std::vector<int32_t>{0, 2, 2, 4, 12, 8, 4, 10, 6}));
}

TEST(MatMulIntegerTest, NegativeZeroPointAndPerColumnZeroPoints) {
  ModelBuilder b(10);
  add_initializers(b, {"a", "b", "az", "bz"},
                   {Tensor::from_vector<int8_t>({2, 2}, {-3, 0, 1, 2}),
                    Tensor::from_vector<uint8_t>({2, 3}, {1, 2, 3, 4, 5, 6}), scalar<int8_t>(-2),
                    Tensor::from_vector<uint8_t>({3}, {1, 0, 3})});
  b.node("MatMulInteger", {"a", "b", "az", "bz"}, {"y"});
  untyped_output(b, "y");
  auto out = run_model(b);
  ASSERT_TRUE(out.ok()) << out.status().message();
  // [[-1, 2], [3, 4]] x [[0, 2, 0], [3, 5, 3]].
  EXPECT_EQ(values_of<int32_t>(out->at(0)), (std::vector<int32_t>{6, 8, 6, 12, 26, 12}));
}

// ---- errors -------------------------------------------------------------------------------------

struct ConvInputs {
  Tensor x = Tensor(DType::kU8, {1, 2, 4, 4});
  Tensor xs = scalar(0.5f), xz = scalar<uint8_t>(0);
  Tensor w = Tensor(DType::kI8, {3, 2, 3, 3});
  Tensor ws = scalar(0.5f), wz = scalar<int8_t>(0);
  Tensor ys = scalar(0.5f), yz = scalar<uint8_t>(0);
  Tensor bias;
};

Status import_qlinear_conv(const ConvInputs& in) {
  ModelBuilder b(10);
  std::vector<std::string> names = kQLinearConvInputs;
  if (!in.bias.defined()) names.pop_back();
  add_initializers(b, names, {in.x, in.xs, in.xz, in.w, in.ws, in.wz, in.ys, in.yz, in.bias});
  b.node("QLinearConv", names, {"y"}, "qc");
  untyped_output(b, "y");
  return testing::import(b).status();
}

void expect_error(const Status& s, StatusCode code, const std::string& text) {
  ASSERT_FALSE(s.ok()) << "expected: " << text;
  EXPECT_EQ(s.code(), code) << s.message();
  EXPECT_NE(s.message().find(text), std::string::npos) << s.message();
}

TEST(QLinearConvTest, BadInputsAreErrorsNamingTheNode) {
  EXPECT_TRUE(import_qlinear_conv({}).ok());
  ConvInputs in;
  in.x = Tensor(DType::kF32, {1, 2, 4, 4});
  expect_error(import_qlinear_conv(in), StatusCode::kUnsupported,
               "node 'qc' (QLinearConv): x has element type f32; int8 and uint8 are supported");
  in = {};
  in.xz = scalar<int8_t>(0);
  expect_error(import_qlinear_conv(in), StatusCode::kInvalidInput,
               "node 'qc' (QLinearConv): x_zero_point has element type s8 but x has u8");
  in = {};
  in.ws = Tensor::from_vector<float>({2}, {1, 1});
  expect_error(import_qlinear_conv(in), StatusCode::kInvalidInput,
               "node 'qc' (QLinearConv): w_scale must have 1 or 3 elements (output channels), "
               "got shape 2");
  in = {};
  in.ys = scalar(0.0f);
  expect_error(import_qlinear_conv(in), StatusCode::kInvalidInput,
               "node 'qc' (QLinearConv): y_scale must be positive and finite, got 0");
  in = {};
  in.xs = scalar(-1.0f);
  expect_error(import_qlinear_conv(in), StatusCode::kInvalidInput, "x_scale must be positive");
  in = {};
  in.x = Tensor(DType::kU8, {1, 3, 4, 4});
  expect_error(import_qlinear_conv(in), StatusCode::kInvalidInput,
               "node 'qc' (QLinearConv): X has 3 channels but W expects 2");
  in = {};
  in.bias = Tensor(DType::kF32, {3});
  expect_error(import_qlinear_conv(in), StatusCode::kInvalidInput, "bias B must be int32, got f32");
  in = {};
  in.bias = Tensor(DType::kI32, {2});
  expect_error(import_qlinear_conv(in), StatusCode::kInvalidInput,
               "B must have 3 elements (output channels), got shape 2");
  in = {};
  in.yz = Tensor(DType::kI32, {});
  expect_error(import_qlinear_conv(in), StatusCode::kUnsupported,
               "y_zero_point has element type s32");
}

TEST(QLinearMatMulTest, BadInputsAreErrorsNamingTheNode) {
  auto import = [](Shape a, Shape as, Shape b, Shape bs, DType bz_type) {
    ModelBuilder m(10);
    add_initializers(
        m, {"a", "as", "az", "b", "bs", "bz", "ys", "yz"},
        {Tensor(DType::kU8, a), Tensor::from_vector<float>(as, std::vector<float>(64, 1.0f)),
         Tensor(DType::kU8, as), Tensor(DType::kI8, b),
         Tensor::from_vector<float>(bs, std::vector<float>(64, 1.0f)), Tensor(bz_type, bs),
         scalar(1.0f), scalar<uint8_t>(0)});
    m.node("QLinearMatMul", {"a", "as", "az", "b", "bs", "bz", "ys", "yz"}, {"y"}, "qmm");
    untyped_output(m, "y");
    return testing::import(m).status();
  };
  EXPECT_TRUE(import({2, 3}, {2}, {3, 4}, {4}, DType::kI8).ok());
  EXPECT_TRUE(import({5, 2, 3}, {5, 2, 1}, {3, 4}, {1, 4}, DType::kI8).ok());
  expect_error(import({2, 3}, {3}, {3, 4}, {}, DType::kI8), StatusCode::kInvalidInput,
               "node 'qmm' (QLinearMatMul): a_scale of shape 3 is neither per tensor nor per row "
               "of a (shape 2x3)");
  expect_error(import({2, 3}, {}, {3, 4}, {3, 1}, DType::kI8), StatusCode::kInvalidInput,
               "b_scale of shape 3x1 is neither per tensor nor per column of b (shape 3x4)");
  expect_error(import({2, 3}, {}, {3, 4}, {}, DType::kU8), StatusCode::kInvalidInput,
               "b_zero_point has element type u8 but b has s8");
  expect_error(import({2, 3}, {}, {2, 4}, {}, DType::kI8), StatusCode::kInvalidInput,
               "node 'qmm' (QLinearMatMul): inner dimensions differ");
}

TEST(QLinearMatMulTest, ScaleFedAtRunTimeIsCheckedWhenItArrives) {
  ModelBuilder b(10);
  b.input("as", TensorProto::FLOAT, {});
  add_initializers(b, {"a", "az", "b", "bs", "bz", "ys", "yz"},
                   {Tensor(DType::kU8, {2, 2}), scalar<uint8_t>(0), Tensor(DType::kU8, {2, 2}),
                    scalar(1.0f), scalar<uint8_t>(0), scalar(1.0f), scalar<uint8_t>(0)});
  b.node("QLinearMatMul", {"a", "as", "az", "b", "bs", "bz", "ys", "yz"}, {"y"}, "qmm");
  untyped_output(b, "y");
  auto m = testing::import(b);
  ASSERT_TRUE(m.ok()) << m.status().message();
  auto out = testing::run(*m, {scalar(std::nanf(""))});
  expect_error(out.status(), StatusCode::kInvalidInput,
               "node 'qmm' (QLinearMatMul): a_scale must be positive and finite, got nan");
}

TEST(MatMulIntegerTest, ZeroPointTypeAndLayoutAreChecked) {
  ModelBuilder b(10);
  add_initializers(b, {"a", "b", "az", "bz"},
                   {Tensor(DType::kU8, {2, 3}), Tensor(DType::kU8, {3, 4}), scalar<uint8_t>(0),
                    Tensor(DType::kU8, {3})});
  b.node("MatMulInteger", {"a", "b", "az", "bz"}, {"y"}, "mmi");
  untyped_output(b, "y");
  expect_error(testing::import(b).status(), StatusCode::kInvalidInput,
               "node 'mmi' (MatMulInteger): b_zero_point of shape 3 is neither per tensor nor per "
               "column of b (shape 3x4)");
}

// ---- randomized comparisons ---------------------------------------------------------------------

struct Types {
  DType x, w, y;
};
constexpr Types kTypeCycle[] = {{DType::kU8, DType::kI8, DType::kU8},
                                {DType::kI8, DType::kI8, DType::kI8},
                                {DType::kU8, DType::kU8, DType::kI8},
                                {DType::kI8, DType::kU8, DType::kU8}};

// The quantized result may differ from the float composition by one step: the composition sums
// dequantized products in float (each product and partial sum rounded to 24 bits, the bias
// dequantized on its own) where the QLinear kernels sum exactly in int32 and round once, so a
// value that lies within float error of a rounding boundary (k + 0.5 steps) can land on either
// side. A larger difference, or more than a handful of them, would be a real bug.
void expect_within_one_step(const Tensor& got, const Tensor& want, const std::string& what) {
  ASSERT_EQ(got.dtype(), want.dtype()) << what;
  ASSERT_EQ(got.shape(), want.shape()) << what;
  const std::vector<int64_t> g = as_int64(got), w = as_int64(want);
  int64_t off_by_one = 0;
  for (size_t i = 0; i < g.size(); ++i) {
    ASSERT_LE(std::abs(g[i] - w[i]), 1) << what << ": element " << i;
    off_by_one += g[i] != w[i] ? 1 : 0;
  }
  EXPECT_LE(off_by_one * 100, static_cast<int64_t>(g.size()))
      << what << ": " << off_by_one << " of " << g.size();
}

struct ConvCase {
  std::string what;
  Shape x, w;  // [N, C, spatial...], [M, C / group, kernel...]
  int64_t group = 1;
  std::vector<int64_t> strides, pads, dilations;
  std::string auto_pad;
};

const std::vector<ConvCase>& conv_cases() {
  static const std::vector<ConvCase> cases = {
      {"odd sizes", {2, 3, 7, 9}, {5, 3, 3, 3}, 1, {}, {1, 1, 1, 1}, {}, ""},
      {"depthwise stride 2, uneven pads",
       {1, 17, 6, 5},
       {17, 1, 3, 3},
       17,
       {2, 2},
       {1, 0, 1, 1},
       {},
       ""},
      {"groups, dilation", {1, 6, 11, 8}, {9, 2, 2, 3}, 3, {2, 1}, {}, {2, 1}, ""},
      {"1-D", {2, 5, 13}, {7, 5, 4}, 1, {3}, {2, 1}, {}, ""},
      {"3-D SAME_UPPER", {1, 3, 5, 4, 6}, {4, 3, 2, 3, 2}, 1, {1, 2, 1}, {}, {}, "SAME_UPPER"},
      {"SAME_LOWER stride 2", {1, 20, 7, 7}, {18, 20, 3, 3}, 1, {2, 2}, {}, {}, "SAME_LOWER"},
      {"pointwise VALID", {3, 33, 5, 3}, {19, 33, 1, 1}, 1, {}, {}, {}, "VALID"},
      {"deep (K = 576)", {1, 64, 6, 6}, {3, 64, 3, 3}, 1, {}, {1, 1, 1, 1}, {}, ""},
  };
  return cases;
}

void set_conv_attrs(onnx::NodeProto& n, const ConvCase& c) {
  if (c.group != 1) set_int_attr(n, "group", c.group);
  if (!c.strides.empty()) set_ints_attr(n, "strides", c.strides);
  if (!c.pads.empty()) set_ints_attr(n, "pads", c.pads);
  if (!c.dilations.empty()) set_ints_attr(n, "dilations", c.dilations);
  if (!c.auto_pad.empty()) testing::set_string_attr(n, "auto_pad", c.auto_pad);
}

TEST(QLinearConvTest, MatchesDequantizeConvQuantizeWithinOneStep) {
  std::mt19937 rng(1234);
  size_t round = 0;
  for (const ConvCase& c : conv_cases()) {
    for (const bool per_channel : {false, true}) {
      const Types t = kTypeCycle[round % std::size(kTypeCycle)];
      const bool with_bias = round % 3 != 1;
      ++round;
      const int64_t m = c.w[0];
      const int64_t depth = shape_numel(Shape(c.w.begin() + 1, c.w.end()));
      const Shape param = per_channel ? Shape{m} : Shape{};
      const Tensor xs = testing::random_floats({}, 0.01f, 0.05f, rng);
      const Tensor ws = testing::random_floats(param, 0.002f, 0.02f, rng);
      // Centred 8-bit values have a standard deviation near 74, the accumulator about acc_sd;
      // y_scale puts the output's at 25 to 60 steps, so a few values saturate.
      const float acc_sd = 74.0f * 74.0f * std::sqrt(static_cast<float>(depth));
      const float typical = xs.data<float>()[0] * 0.011f * acc_sd;
      const Tensor ys = testing::random_floats({}, typical / 60, typical / 25, rng);
      Tensor bias(DType::kI32, {m});
      std::uniform_int_distribution<int32_t> bd(-static_cast<int32_t>(acc_sd),
                                                static_cast<int32_t>(acc_sd));
      for (int32_t& v : bias.span<int32_t>()) v = bd(rng);
      Tensor bias_scale(DType::kF32, param);
      for (int64_t i = 0; i < bias_scale.numel(); ++i) {
        bias_scale.data<float>()[i] = xs.data<float>()[0] * ws.data<float>()[i];
      }
      ModelBuilder b(13);
      add_initializers(b, {"x", "xs", "xz", "w", "ws", "wz", "ys", "yz", "bias", "bs"},
                       {random_q(t.x, c.x, rng), xs, random_zero_points(t.x, {}, rng),
                        random_q(t.w, c.w, rng), ws, random_zero_points(t.w, param, rng), ys,
                        random_zero_points(t.y, {}, rng), bias, bias_scale});
      std::vector<std::string> inputs = kQLinearConvInputs;
      if (!with_bias) inputs.pop_back();
      set_conv_attrs(b.node("QLinearConv", inputs, {"y"}), c);
      b.node("DequantizeLinear", {"x", "xs", "xz"}, {"xf"});
      set_int_attr(b.node("DequantizeLinear", {"w", "ws", "wz"}, {"wf"}), "axis", 0);
      set_int_attr(b.node("DequantizeLinear", {"bias", "bs"}, {"bf"}), "axis", 0);
      std::vector<std::string> conv_inputs = {"xf", "wf"};
      if (with_bias) conv_inputs.push_back("bf");
      set_conv_attrs(b.node("Conv", conv_inputs, {"yf"}), c);
      b.node("QuantizeLinear", {"yf", "ys", "yz"}, {"want"});
      untyped_output(b, "y");
      untyped_output(b, "want");
      const std::string what =
          c.what + (per_channel ? ", per channel" : ", per tensor") + (with_bias ? ", bias" : "");
      auto out = run_model(b);
      ASSERT_TRUE(out.ok()) << what << ": " << out.status().message();
      expect_within_one_step(out->at(0), out->at(1), what);
    }
  }
}

// x - zero point as float, for the float reference of the *Integer ops.
Tensor centered_float(const Tensor& q, const Tensor& zp, int64_t zp_period, int64_t zp_stride) {
  Tensor out(DType::kF32, q.shape());
  for (int64_t i = 0; i < q.numel(); ++i) {
    const int64_t z = zp.numel() == 1 ? 0 : (i / zp_stride) % zp_period;
    out.data<float>()[i] = static_cast<float>(q.element_as_double(i) - zp.element_as_double(z));
  }
  return out;
}

TEST(ConvIntegerTest, EqualsFloatConvOfCenteredValuesExactly) {
  // Float sums are exact while every partial sum stays below 2^24: products of centred 8-bit
  // values are at most 255 * 255, so depths up to 256 are safe (the deep case is left out).
  std::mt19937 rng(99);
  size_t round = 0;
  for (const ConvCase& c : conv_cases()) {
    const int64_t depth = shape_numel(Shape(c.w.begin() + 1, c.w.end()));
    if (depth > 256) continue;
    const Types t = kTypeCycle[round++ % std::size(kTypeCycle)];
    const int64_t m = c.w[0];
    const bool per_channel = round % 2 == 0;
    const Tensor x = random_q(t.x, c.x, rng), w = random_q(t.w, c.w, rng);
    const Tensor xz = random_q(t.x, {}, rng);
    const Tensor wz = random_q(t.w, per_channel ? Shape{m} : Shape{}, rng);
    ModelBuilder b(10);
    add_initializers(
        b, {"x", "w", "xz", "wz", "xf", "wf"},
        {x, w, xz, wz, centered_float(x, xz, 1, 1), centered_float(w, wz, m, w.numel() / m)});
    set_conv_attrs(b.node("ConvInteger", {"x", "w", "xz", "wz"}, {"y"}), c);
    set_conv_attrs(b.node("Conv", {"xf", "wf"}, {"want"}), c);
    untyped_output(b, "y");
    untyped_output(b, "want");
    auto out = run_model(b);
    ASSERT_TRUE(out.ok()) << c.what << ": " << out.status().message();
    ASSERT_EQ(out->at(0).dtype(), DType::kI32);
    EXPECT_EQ(as_int64(out->at(0)), as_int64(out->at(1))) << c.what;
  }
}

struct MatMulCase {
  std::string what;
  Shape a, b;
  bool per_row, per_column;  // 1-D scales (and zero points) along a's rows / b's columns
};

const std::vector<MatMulCase>& matmul_cases() {
  static const std::vector<MatMulCase> cases = {
      {"2-D", {7, 13}, {13, 5}, true, true},
      {"broadcast batch", {3, 1, 4, 17}, {2, 17, 6}, false, false},
      {"batched, per row and column", {2, 5, 31}, {2, 31, 19}, true, true},
      {"1-D a", {9}, {9, 4}, false, true},
      {"1-D b", {5, 11}, {11}, true, false},
      {"channels not a multiple of 16", {33, 47}, {47, 35}, false, true},
  };
  return cases;
}

TEST(QLinearMatMulTest, MatchesDequantizeMatMulQuantizeWithinOneStep) {
  std::mt19937 rng(77);
  size_t round = 0;
  for (const MatMulCase& c : matmul_cases()) {
    const Types t = kTypeCycle[round++ % std::size(kTypeCycle)];
    const int64_t k = c.a.back();
    const Shape a_param = c.per_row ? Shape{c.a[c.a.size() - 2]} : Shape{};
    const Shape b_param = c.per_column ? Shape{c.b.back()} : Shape{};
    const Tensor as = testing::random_floats(a_param, 0.01f, 0.05f, rng);
    const Tensor bs = testing::random_floats(b_param, 0.002f, 0.02f, rng);
    const float typical = 0.03f * 0.011f * 74.0f * 74.0f * std::sqrt(static_cast<float>(k));
    ModelBuilder b(13);
    add_initializers(b, {"a", "as", "az", "b", "bs", "bz", "ys", "yz"},
                     {random_q(t.x, c.a, rng), as, random_zero_points(t.x, a_param, rng),
                      random_q(t.w, c.b, rng), bs, random_zero_points(t.w, b_param, rng),
                      testing::random_floats({}, typical / 60, typical / 25, rng),
                      random_zero_points(t.y, {}, rng)});
    b.node("QLinearMatMul", {"a", "as", "az", "b", "bs", "bz", "ys", "yz"}, {"y"});
    set_int_attr(b.node("DequantizeLinear", {"a", "as", "az"}, {"af"}), "axis",
                 static_cast<int64_t>(c.a.size()) - 2);
    set_int_attr(b.node("DequantizeLinear", {"b", "bs", "bz"}, {"bf"}), "axis",
                 static_cast<int64_t>(c.b.size()) - 1);
    b.node("MatMul", {"af", "bf"}, {"yf"});
    b.node("QuantizeLinear", {"yf", "ys", "yz"}, {"want"});
    untyped_output(b, "y");
    untyped_output(b, "want");
    auto out = run_model(b);
    ASSERT_TRUE(out.ok()) << c.what << ": " << out.status().message();
    expect_within_one_step(out->at(0), out->at(1), c.what);
  }
}

TEST(MatMulIntegerTest, EqualsFloatMatMulOfCenteredValuesExactly) {
  std::mt19937 rng(5);
  size_t round = 0;
  for (const MatMulCase& c : matmul_cases()) {
    const Types t = kTypeCycle[round++ % std::size(kTypeCycle)];
    // Per-row zero points of a ([M] for a matrix), per-column ones of b ([N]).
    const int64_t rows = c.a.size() >= 2 ? c.a[c.a.size() - 2] : 1, cols = c.b.back();
    const int64_t k = c.a.back();
    const Tensor a = random_q(t.x, c.a, rng), b = random_q(t.w, c.b, rng);
    const Tensor az = random_q(t.x, c.per_row ? Shape{rows} : Shape{}, rng);
    const Tensor bz = random_q(t.w, c.per_column ? Shape{cols} : Shape{}, rng);
    ModelBuilder m(10);
    add_initializers(
        m, {"a", "b", "az", "bz", "af", "bf"},
        {a, b, az, bz, centered_float(a, az, rows, k), centered_float(b, bz, cols, 1)});
    m.node("MatMulInteger", {"a", "b", "az", "bz"}, {"y"});
    m.node("MatMul", {"af", "bf"}, {"want"});
    untyped_output(m, "y");
    untyped_output(m, "want");
    auto out = run_model(m);
    ASSERT_TRUE(out.ok()) << c.what << ": " << out.status().message();
    ASSERT_EQ(out->at(0).dtype(), DType::kI32);
    EXPECT_EQ(as_int64(out->at(0)), as_int64(out->at(1))) << c.what;
  }
}

}  // namespace
}  // namespace qf
