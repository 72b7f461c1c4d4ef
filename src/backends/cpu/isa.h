// What the CPU can do, as oneDNN sees it, and the per-run thread environment of the cpu backend.
#pragma once

#include <string>

namespace qf::cpu {

// oneDNN's effective ISA in its own words: "avx512_core_bf16", "avx2" ...
std::string isa_name();

// Whether bf16 arithmetic is native here (AVX512-BF16 or AMX-BF16). oneDNN 2.6 would emulate
// bf16 on plain AVX-512, slower than fp32, so the backend does not offer bf16 there.
bool has_native_bf16();
// Why bf16 is not offered on this machine ("" when it is).
std::string bf16_unavailable_reason();

// Why int8 is not offered on this machine ("" when it is): oneDNN's int8 kernels need VNNI
// (AVX512-VNNI, AVX-VNNI or AMX) to be faster than fp32.
std::string int8_unavailable_reason();

// Whether oneDNN runs on OpenMP here (Debian's build does), so that the thread count can be set.
bool onednn_uses_openmp();

// Worker threads for `requested` (0: every core the process may use).
int resolve_threads(int requested);

// For the duration of one run: oneDNN's OpenMP pool uses `threads` threads, and the caller and
// every worker flush denormals to zero (oneDNN's fp32 convolutions slow down several times on
// denormal inputs). The caller's MXCSR and OpenMP thread count are restored on exit; the workers
// keep FTZ/DAZ, which only oneDNN's kernels ever run on.
class RunEnvironment {
 public:
  explicit RunEnvironment(int threads);
  ~RunEnvironment();
  RunEnvironment(const RunEnvironment&) = delete;
  RunEnvironment& operator=(const RunEnvironment&) = delete;

 private:
  unsigned saved_csr_;
  int saved_threads_;
};

}  // namespace qf::cpu
