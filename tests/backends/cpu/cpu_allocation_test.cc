// The cpu backend's hot path allocates no tensor memory but the outputs': every activation lives
// in the plan's arena. Measured by replacing the global operator new of this test binary with one
// that records, on the calling thread and while a test asks, each allocation's size (not under
// AddressSanitizer, which owns operator new there). What remains is small bookkeeping:
// oneDNN 2.6 builds a hash map of the arguments inside every primitive execution.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <new>

#include "backends/cpu/cpu_test_util.h"

#if !defined(__SANITIZE_ADDRESS__)
namespace {
thread_local bool g_counting = false;
thread_local int64_t g_allocations = 0;
thread_local size_t g_largest = 0;
}  // namespace

void* operator new(std::size_t n) {
  if (g_counting) {
    ++g_allocations;
    g_largest = std::max(g_largest, n);
  }
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}
#endif

namespace qf {
namespace {

using onnx::TensorProto;
using runtime::Precision;

TEST(CpuAllocationTest, RunAllocatesNoTensorMemoryButTheOutputs) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "operator new belongs to AddressSanitizer in this build";
#else
  QF_REQUIRE_CPU_BACKEND();
  testing::ModelBuilder b(17);
  b.input("x", TensorProto::FLOAT, {1, 3, 32, 32});
  b.initializer("w1", testing::layer_weights({16, 3, 3, 3}, 1));
  b.initializer("w2", testing::layer_weights({16, 16, 3, 3}, 2));
  b.initializer("fc", testing::layer_weights({10, 16}, 3));
  testing::set_ints_attr(b.node("Conv", {"x", "w1"}, {"c1"}), "pads", {1, 1, 1, 1});
  b.node("Relu", {"c1"}, {"r1"});
  testing::set_ints_attr(b.node("Conv", {"r1", "w2"}, {"c2"}), "pads", {1, 1, 1, 1});
  b.node("Add", {"c2", "r1"}, {"a"});
  b.node("Relu", {"a"}, {"r2"});
  b.node("GlobalAveragePool", {"r2"}, {"g"});
  b.node("Flatten", {"g"}, {"f"});
  testing::set_int_attr(b.node("Gemm", {"f", "fc"}, {"logits"}), "transB", 1);
  b.node("Softmax", {"logits"}, {"prob"});
  testing::untyped_output(b, "prob");
  testing::untyped_output(b, "r2");
  auto m = testing::import(b);
  ASSERT_TRUE(m.ok()) << m.status().message();
  for (Precision p : {Precision::kFP32, Precision::kBF16}) {
    if (!testing::cpu_backend()->supports(p)) continue;
    auto m2 = testing::import(b);
    ASSERT_TRUE(m2.ok());
    auto engine = testing::cpu_backend()->build(std::move(m2->graph), {p, 2});
    ASSERT_TRUE(engine.ok()) << engine.status().message();
    for (const runtime::KernelInfo& k : (*engine)->info().kernels) {
      ASSERT_EQ(k.impl.find("reference"), std::string::npos) << k.node << " " << k.impl;
    }
    const std::vector<Tensor> inputs = {testing::random_tensor({1, 3, 32, 32}, 4)};
    ASSERT_TRUE((*engine)->run(inputs).ok());  // warm-up: OpenMP's team, first-touch
    g_allocations = 0;
    g_largest = 0;
    g_counting = true;
    auto out = (*engine)->run(inputs);
    g_counting = false;
    ASSERT_TRUE(out.ok()) << out.status().message();
    // The convolutions' activations are 64 KB (16x32x32 floats) each; no allocation comes near
    // that size: they all live in the arena.
    EXPECT_LT(g_largest, size_t{256}) << runtime::precision_name(p);
    // A handful per primitive (oneDNN's argument maps), not per element or per byte.
    const int64_t steps = static_cast<int64_t>((*engine)->info().kernels.size());
    EXPECT_LE(g_allocations, 8 * steps + 8) << runtime::precision_name(p);
  }
#endif
}

}  // namespace
}  // namespace qf
