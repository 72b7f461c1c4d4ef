// End-to-end tests of the qforge binary: exit codes, one-line error messages that name the
// culprit, and no partial output on failure.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>

#include "io/npy.h"
#include "testing/cli_runner.h"
#include "testing/model_builder.h"

namespace qf {
namespace {

namespace fs = std::filesystem;
using testing::ModelBuilder;

using testing::CommandResult;
using testing::run_qforge;

class CliTest : public testing::ScratchDirTest {
 protected:
  // y = Relu(x) with x: f32 [N, 3]; the output name needs sanitising for the file name.
  std::string relu_model() {
    ModelBuilder b(13);
    b.input("x", onnx::TensorProto::FLOAT, {-1, 3});
    b.output("y:0", onnx::TensorProto::FLOAT, {-1, 3});
    b.node("Relu", {"x"}, {"y:0"}, "relu");
    b.save(path("relu.onnx"));
    return path("relu.onnx");
  }
  std::string write_npy(const std::string& name, const Tensor& t) {
    EXPECT_TRUE(io::write_npy(path(name), t).ok());
    return path(name);
  }
  bool output_dir_is_empty() const {
    return !fs::exists(dir_ / "out") || fs::is_empty(dir_ / "out");
  }
};

TEST_F(CliTest, RunWritesSanitizedOutputWithCorrectValues) {
  const std::string model = relu_model();
  const std::string x =
      write_npy("x.npy", Tensor::from_vector<float>({2, 3}, {-1, 2, -3, 4, 0, -0.5f}));
  const CommandResult r =
      run_qforge("run " + model + " --input x=" + x + " --output-dir " + path("out"));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  auto y = io::read_npy(path("out/y_0.npy"));
  ASSERT_TRUE(y.ok()) << y.status().message();
  EXPECT_EQ(y->shape(), (Shape{2, 3}));
  const std::vector<float> want = {0, 2, 0, 4, 0, 0};
  for (size_t i = 0; i < want.size(); ++i) EXPECT_EQ(y->data<float>()[i], want[i]);
}

TEST_F(CliTest, BareInputPathBindsInOrder) {
  const std::string model = relu_model();
  const std::string x = write_npy("x.npy", Tensor::from_vector<float>({1, 3}, {1, -1, 1}));
  const CommandResult r = run_qforge("run " + model + " --input " + x + " -o " + path("out"));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_TRUE(fs::exists(path("out/y_0.npy")));
}

TEST_F(CliTest, DynamicInputWithoutShapeIsAUsageError) {
  const CommandResult r = run_qforge("run " + relu_model() + " -o " + path("out"));
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("input 'x' has dynamic shape Nx3"), std::string::npos) << r.out;
  EXPECT_TRUE(output_dir_is_empty());
}

TEST_F(CliTest, MissingModelFile) {
  const CommandResult r = run_qforge("run " + path("nope.onnx"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.out.find("nope.onnx: no such file"), std::string::npos) << r.out;
}

TEST_F(CliTest, RandomBytesAreNotAModel) {
  std::mt19937 rng(7);
  std::string bytes(4096, '\0');
  for (char& c : bytes) c = static_cast<char>(rng());
  std::ofstream(path("random.onnx"), std::ios::binary) << bytes;
  const CommandResult r = run_qforge("inspect " + path("random.onnx"));
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_NE(r.out.find("not an ONNX model"), std::string::npos) << r.out;
}

TEST_F(CliTest, TruncatedModelIsRejected) {
  ModelBuilder b(13);
  b.input("x", onnx::TensorProto::FLOAT, {1, 4});
  b.output("y", onnx::TensorProto::FLOAT, {1, 4});
  b.initializer("w", Tensor(DType::kF32, {4, 4}));
  b.node("MatMul", {"x", "w"}, {"y"});
  const std::string bytes = b.serialize();
  std::ofstream(path("cut.onnx"), std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  const CommandResult r = run_qforge("run " + path("cut.onnx") + " -o " + path("out"));
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_NE(r.out.find("cut.onnx: not an ONNX model"), std::string::npos) << r.out;
  EXPECT_TRUE(output_dir_is_empty());
}

TEST_F(CliTest, UnsupportedOpIsNamedWithNodeAndOpset) {
  ModelBuilder b(17);
  b.input("x", onnx::TensorProto::FLOAT, {1, 3});
  b.output("y", onnx::TensorProto::FLOAT, {1, 3});
  b.node("FancyNewOp", {"x"}, {"y"}, "fancy1");
  b.save(path("m.onnx"));
  const CommandResult r = run_qforge("run " + path("m.onnx") + " -o " + path("out"));
  EXPECT_EQ(r.exit_code, 3) << r.out;
  EXPECT_NE(r.out.find("node 'fancy1' (FancyNewOp): operator FancyNewOp (domain ai.onnx, opset 17) "
                       "is not supported"),
            std::string::npos)
      << r.out;
  EXPECT_TRUE(output_dir_is_empty());

  // inspect still describes the model and lists the op.
  const CommandResult i = run_qforge("inspect " + path("m.onnx"));
  EXPECT_EQ(i.exit_code, 0) << i.out;
  EXPECT_NE(i.out.find("Unsupported ops (1)"), std::string::npos) << i.out;
}

TEST_F(CliTest, MissingInitializerNamesTheTensor) {
  ModelBuilder b(13);
  b.input("x", onnx::TensorProto::FLOAT, {1, 4});
  b.output("y", onnx::TensorProto::FLOAT, {1, 4});
  b.node("MatMul", {"x", "fc.weight"}, {"y"}, "fc");
  b.save(path("m.onnx"));
  const CommandResult r = run_qforge("inspect " + path("m.onnx"));
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_NE(r.out.find("node 'fc' (MatMul): input 'fc.weight' is not produced"), std::string::npos)
      << r.out;
}

TEST_F(CliTest, WrongInputShapeAndDtype) {
  ModelBuilder b(13);
  b.input("x", onnx::TensorProto::FLOAT, {2, 3});
  b.output("y", onnx::TensorProto::FLOAT, {2, 3});
  b.node("Relu", {"x"}, {"y"});
  b.save(path("m.onnx"));
  const std::string shape = write_npy("s.npy", Tensor(DType::kF32, {3, 2}));
  CommandResult r =
      run_qforge("run " + path("m.onnx") + " --input x=" + shape + " -o " + path("out"));
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_NE(r.out.find("input 'x': expected shape 2x3, got 3x2"), std::string::npos) << r.out;

  const std::string type = write_npy("t.npy", Tensor(DType::kI64, {2, 3}));
  r = run_qforge("run " + path("m.onnx") + " --input x=" + type + " -o " + path("out"));
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_NE(r.out.find("input 'x': expected element type f32, got s64"), std::string::npos)
      << r.out;
  EXPECT_TRUE(output_dir_is_empty());
}

TEST_F(CliTest, MalformedNpyIsRejected) {
  const std::string model = relu_model();
  std::string npy = io::serialize_npy(Tensor(DType::kF32, {2, 3}));
  std::ofstream(path("short.npy"), std::ios::binary) << npy.substr(0, npy.size() - 5);
  CommandResult r =
      run_qforge("run " + model + " --input x=" + path("short.npy") + " -o " + path("out"));
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_NE(r.out.find("short.npy: .npy data has 19 bytes but shape 2x3 of f32 needs 24"),
            std::string::npos)
      << r.out;

  std::ofstream(path("junk.npy"), std::ios::binary) << "hello world, not numpy";
  r = run_qforge("run " + model + " --input x=" + path("junk.npy") + " -o " + path("out"));
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_NE(r.out.find("junk.npy: not a .npy file"), std::string::npos) << r.out;
  EXPECT_TRUE(output_dir_is_empty());
}

TEST_F(CliTest, ErrorsAreOneLine) {
  const CommandResult r = run_qforge("run " + path("nope.onnx"));
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
}

TEST_F(CliTest, UnknownOptionIsAUsageError) {
  const CommandResult r = run_qforge("run --frobnicate");
  EXPECT_EQ(r.exit_code, 1) << r.out;
}

}  // namespace
}  // namespace qf
