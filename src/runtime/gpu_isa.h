// The cuda backend's ISA: a GPU model and its compute capability, as one string that engine
// files record and compare ("NVIDIA H100 80GB HBM3 (sm_90)"). Written and read here only, so the
// backend that writes it and the engine-file check that explains a mismatch agree on the form.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace qf::runtime {

struct GpuIsa {
  std::string name;  // cudaDeviceProp::name
  int major = 0;     // compute capability
  int minor = 0;
};

// "NAME (sm_<major><minor>)".
std::string format_gpu_isa(const GpuIsa& gpu);

// The parts of a string format_gpu_isa wrote; nullopt for any other ISA (a cpu one, "").
std::optional<GpuIsa> parse_gpu_isa(std::string_view isa);

}  // namespace qf::runtime
