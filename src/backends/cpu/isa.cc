#include "backends/cpu/isa.h"

#include <omp.h>
#include <xmmintrin.h>

#include <oneapi/dnnl/dnnl.hpp>

namespace qf::cpu {

namespace {
// Flush-to-zero (bit 15) and denormals-are-zero (bit 6) of MXCSR.
constexpr unsigned kFtzDaz = 0x8040;

bool isa_includes(dnnl::cpu_isa have, dnnl::cpu_isa want) {
  // oneDNN's ISA values are bit sets: a richer ISA contains every bit of the ones it extends.
  const auto h = static_cast<unsigned>(have), w = static_cast<unsigned>(want);
  return (h & w) == w;
}
}  // namespace

std::string isa_name() {
  using dnnl::cpu_isa;
  const cpu_isa isa = dnnl::get_effective_cpu_isa();
  switch (isa) {
    case cpu_isa::avx512_core_amx:
      return "avx512_core_amx";
    case cpu_isa::avx512_core_bf16:
      return "avx512_core_bf16";
    case cpu_isa::avx512_core_vnni:
      return "avx512_core_vnni";
    case cpu_isa::avx512_core:
      return "avx512_core";
    case cpu_isa::avx2_vnni:
      return "avx2_vnni";
    case cpu_isa::avx2:
      return "avx2";
    case cpu_isa::avx:
      return "avx";
    case cpu_isa::sse41:
      return "sse41";
    default:
      return "isa_" + std::to_string(static_cast<unsigned>(isa));
  }
}

bool has_native_bf16() {
  return isa_includes(dnnl::get_effective_cpu_isa(), dnnl::cpu_isa::avx512_core_bf16);
}

std::string bf16_unavailable_reason() {
  if (has_native_bf16()) return "";
  return "this CPU's effective oneDNN ISA is " + isa_name() +
         ", without native bf16 arithmetic (AVX512-BF16 or AMX-BF16); oneDNN 2.6 would emulate "
         "it more slowly than fp32";
}

std::string int8_unavailable_reason() {
  const dnnl::cpu_isa isa = dnnl::get_effective_cpu_isa();
  if (isa_includes(isa, dnnl::cpu_isa::avx512_core_vnni) ||
      isa_includes(isa, dnnl::cpu_isa::avx2_vnni)) {
    return "";
  }
  return "this CPU's effective oneDNN ISA is " + isa_name() +
         ", without VNNI (AVX512-VNNI, AVX-VNNI or AMX), where oneDNN's int8 kernels are not "
         "faster than fp32";
}

bool onednn_uses_openmp() {
  return dnnl::version()->cpu_runtime == DNNL_RUNTIME_OMP;
}

int resolve_threads(int requested) {
  return requested > 0 ? requested : omp_get_num_procs();
}

RunEnvironment::RunEnvironment(int threads)
    : saved_csr_(_mm_getcsr()), saved_threads_(omp_get_max_threads()) {
  _mm_setcsr(saved_csr_ | kFtzDaz);
  omp_set_num_threads(threads);
  // One parallel region of the size oneDNN will use reaches every worker of the team.
#pragma omp parallel num_threads(threads)
  { _mm_setcsr(_mm_getcsr() | kFtzDaz); }
}

RunEnvironment::~RunEnvironment() {
  _mm_setcsr(saved_csr_);
}

}  // namespace qf::cpu
