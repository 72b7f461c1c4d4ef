// `qforge build` and `qforge run x.engine`: the engine file path through the binary.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "core/file_util.h"
#include "io/npy.h"
#include "testing/cli_runner.h"
#include "testing/model_builder.h"

namespace qf {
namespace {

namespace fs = std::filesystem;
using testing::ModelBuilder;

using testing::CommandResult;
using testing::run_qforge;

using testing::fashion_mnist_model;

class EngineCliTest : public testing::ScratchDirTest {
 protected:
  // y = Relu(x) * w with x: f32 [N, 3] and a constant w.
  std::string small_model() {
    ModelBuilder b(13);
    b.input("x", onnx::TensorProto::FLOAT, {-1, 3});
    b.output("y", onnx::TensorProto::FLOAT, {-1, 3});
    b.initializer("w", Tensor::from_vector<float>({3}, {2.0f, -1.0f, 0.5f}));
    b.node("Relu", {"x"}, {"r"}, "relu");
    b.node("Mul", {"r", "w"}, {"y"}, "mul");
    b.save(path("small.onnx"));
    return path("small.onnx");
  }
  std::string input_npy() {
    const Tensor x = Tensor::from_vector<float>({2, 3}, {-1, 2, 3, 4, -5, 6});
    EXPECT_TRUE(io::write_npy(path("x.npy"), x).ok());
    return path("x.npy");
  }
  std::vector<float> read_output(const std::string& dir, const std::string& name) {
    auto t = io::read_npy(path(dir + "/" + name + ".npy"));
    EXPECT_TRUE(t.ok()) << t.status().message();
    return t.ok() ? std::vector<float>(t->span<float>().begin(), t->span<float>().end())
                  : std::vector<float>{};
  }
  bool no_output(const std::string& dir) const {
    return !fs::exists(dir_ / dir) || fs::is_empty(dir_ / dir);
  }
  std::string file_bytes(const std::string& p) { return read_file_bytes(p).value(); }
  void write_bytes(const std::string& p, const std::string& bytes) {
    std::ofstream(p, std::ios::binary) << bytes;
  }
};

TEST_F(EngineCliTest, BuildPrintsSummaryAndRunMatchesTheModel) {
  const std::string model = small_model();
  CommandResult r = run_qforge("build " + model +
                               " --backend reference --precision fp32 --shape "
                               "x=2x3 -o " +
                               path("small.engine"));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  for (const char* line :
       {"backend:     reference", "precision:   fp32", "ISA:         portable C++",
        "weights:     12 B", "activations: not planned", "kernels:     2", "reference_Mul   1",
        "reference_Relu  1"}) {
    EXPECT_NE(r.out.find(line), std::string::npos) << line << "\n" << r.out;
  }
  ASSERT_TRUE(fs::exists(path("small.engine")));
  EXPECT_FALSE(fs::exists(path("small.engine.qforge-tmp")));

  const std::string x = input_npy();
  r = run_qforge("run " + path("small.engine") + " --input x=" + x + " -o " + path("from_engine"));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  r = run_qforge("run " + model + " --input x=" + x + " -o " + path("from_onnx"));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const std::vector<float> want = {0, -2, 1.5f, 8, 0, 3};
  EXPECT_EQ(read_output("from_engine", "y"), want);
  EXPECT_EQ(read_output("from_onnx", "y"), want);

  // The shape was fixed at build time: generated inputs need no --shape.
  r = run_qforge("run " + path("small.engine") + " -o " + path("generated"));
  EXPECT_EQ(r.exit_code, 0) << r.out;
}

TEST_F(EngineCliTest, FashionMnistEngineMatchesTheModel) {
  CommandResult r =
      run_qforge("build " + fashion_mnist_model() + " --backend reference -o " + path("fm.engine"));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  r = run_qforge("run " + path("fm.engine") + " --shape input=2x1x28x28 --seed 5 -o " + path("a"));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  r = run_qforge("run " + fashion_mnist_model() +
                 " --backend reference --shape input=2x1x28x28 --seed 5 -o " + path("b"));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const std::vector<float> a = read_output("a", "logits");
  EXPECT_EQ(a.size(), 20u);
  EXPECT_EQ(a, read_output("b", "logits"));
}

TEST_F(EngineCliTest, EnginesAreToldByMagicNotExtension) {
  const std::string model = small_model();
  ASSERT_EQ(
      run_qforge("build " + model + " --backend reference -o " + path("engine.onnx")).exit_code, 0);
  fs::copy_file(model, path("model.engine"));
  const std::string x = input_npy();
  CommandResult r =
      run_qforge("run " + path("engine.onnx") + " --input x=" + x + " -o " + path("a"));
  EXPECT_EQ(r.exit_code, 0) << r.out;
  r = run_qforge("run " + path("model.engine") + " --input x=" + x + " -o " + path("b"));
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(read_output("a", "y"), read_output("b", "y"));
}

TEST_F(EngineCliTest, DefaultsAreTheBestBackendAndModelDotEngine) {
  const CommandResult r = run_qforge("build " + small_model());
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_TRUE(fs::exists(path("small.engine")));
  const bool cpu = run_qforge("build --help").out.find("default: cpu") != std::string::npos;
  EXPECT_NE(r.out.find(cpu ? "backend:     cpu" : "backend:     reference"), std::string::npos)
      << r.out;

  // run and eval default to the same backend (the reference executor only when asked for).
  const std::string want = cpu ? "(default: cpu)" : "(default: reference)";
  for (const char* command : {"run", "eval"}) {
    const std::string help = run_qforge(std::string(command) + " --help").out;
    EXPECT_NE(help.find(want), std::string::npos) << command << "\n" << help;
  }
  const std::string data = "/usr/share/datasets/fashion-mnist/";
  const CommandResult e = run_qforge("eval " + fashion_mnist_model() + " --data " + data +
                                     "t10k-images-idx3-ubyte.gz --labels " + data +
                                     "t10k-labels-idx1-ubyte.gz --limit 100");
  EXPECT_EQ(e.exit_code, 0) << e.out;
  EXPECT_NE(e.out.find(cpu ? "engine:   cpu backend" : "engine:   reference backend"),
            std::string::npos)
      << e.out;
}

TEST_F(EngineCliTest, CorruptedEngineIsRefusedWithoutOutput) {
  ASSERT_EQ(run_qforge("build " + small_model() + " --backend reference -o " + path("m.engine"))
                .exit_code,
            0);
  std::string bytes = file_bytes(path("m.engine"));
  bytes[bytes.size() - 10] ^= 0x40;
  write_bytes(path("bad.engine"), bytes);
  const CommandResult r =
      run_qforge("run " + path("bad.engine") + " --shape x=1x3 -o " + path("out"));
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_NE(r.out.find("bad.engine: engine file is corrupted (checksum mismatch"),
            std::string::npos)
      << r.out;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
  EXPECT_TRUE(no_output("out"));
}

TEST_F(EngineCliTest, TruncatedEngineIsRefused) {
  ASSERT_EQ(run_qforge("build " + small_model() + " --backend reference -o " + path("m.engine"))
                .exit_code,
            0);
  const std::string bytes = file_bytes(path("m.engine"));
  write_bytes(path("cut.engine"), bytes.substr(0, bytes.size() - 1));
  const CommandResult r =
      run_qforge("run " + path("cut.engine") + " --shape x=1x3 -o " + path("out"));
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_NE(r.out.find("cut.engine: truncated engine file"), std::string::npos) << r.out;
  EXPECT_TRUE(no_output("out"));
}

TEST_F(EngineCliTest, EngineFixesBackendAndPrecision) {
  ASSERT_EQ(run_qforge("build " + small_model() + " --backend reference -o " + path("m.engine"))
                .exit_code,
            0);
  CommandResult r =
      run_qforge("run " + path("m.engine") + " --shape x=1x3 --precision bf16 -o " + path("out"));
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("the engine was built for fp32, not bf16"), std::string::npos) << r.out;
  // Naming the engine's own backend and precision is fine.
  r = run_qforge("run " + path("m.engine") +
                 " --shape x=1x3 --backend reference --precision fp32 -o " + path("out"));
  EXPECT_EQ(r.exit_code, 0) << r.out;
}

TEST_F(EngineCliTest, BuildRefusesBadRequestsAndWritesNothing) {
  const std::string model = small_model();
  CommandResult r =
      run_qforge("build " + model + " --backend reference --precision int8 -o " + path("m.engine"));
  EXPECT_EQ(r.exit_code, 3) << r.out;
  EXPECT_FALSE(fs::exists(path("m.engine")));

  r = run_qforge("build " + model + " --backend nosuch -o " + path("m.engine"));
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_FALSE(fs::exists(path("m.engine")));

  r = run_qforge("build " + path("missing.onnx") + " --backend reference -o " + path("m.engine"));
  EXPECT_EQ(r.exit_code, 2) << r.out;

  ASSERT_EQ(run_qforge("build " + model + " --backend reference -o " + path("m.engine")).exit_code,
            0);
  r = run_qforge("build " + path("m.engine") + " --backend reference -o " + path("again.engine"));
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("is already an engine file"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace qf
