// Runs the qforge binary under test (QFORGE_BIN, set by tests/CMakeLists.txt) and captures its
// exit code and output, for the CLI tests.
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <string>

namespace qf::testing {

struct CommandResult {
  int exit_code;
  std::string out;  // stdout and stderr together
};

inline CommandResult run_qforge(const std::string& args) {
  const std::string cmd = std::string(QFORGE_BIN) + " " + args + " 2>&1";
  FILE* pipe = popen(cmd.c_str(), "r");
  std::string out;
  std::array<char, 4096> buf{};
  size_t n = 0;
  while ((n = fread(buf.data(), 1, buf.size(), pipe)) > 0) out.append(buf.data(), n);
  const int status = pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

// The embedded Fashion-MNIST model (models/fashion_mnist_cnn.onnx).
inline std::string fashion_mnist_model() {
  // __FILE__ may read "tests/./testing/...": normalise before walking up to the repository.
  const std::filesystem::path here = std::filesystem::path(__FILE__).lexically_normal();
  return (here.parent_path().parent_path().parent_path() / "models" / "fashion_mnist_cnn.onnx")
      .string();
}

// A fresh, empty folder per test (named after the suite and test), removed afterwards.
class ScratchDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = std::filesystem::temp_directory_path() /
           (std::string("qforge_") + info->test_suite_name() + "_" + info->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  std::filesystem::path dir_;
};

}  // namespace qf::testing
