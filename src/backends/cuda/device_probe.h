// What the cuda backend knows about the machine it runs on, asked once per process: whether a
// usable device is there (and why not), its ISA (gpu_isa.h: the GPU model and compute
// capability, which engine files must match), and the versions engine files record only to
// warn about (Engine::platform()).
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace qf::cuda {

struct DeviceProbe {
  bool ok = false;
  std::string why;  // when !ok
  std::string isa;  // "NVIDIA H100 80GB HBM3 (sm_90)"
  int major = 0;
  // ("GPU", name), ("compute capability", "9.0"), ("CUDA driver", "13.0 (580.95.05)"),
  // ("CUDA runtime", "13.0"), ("cuDNN", "9.19.0"), ("cuBLASLt", "13.1.0"), in that order.
  std::vector<std::pair<std::string, std::string>> facts;
};

// The first CUDA call initializes the runtime, which is slow and, without a driver, fails the
// same way every time: so it is asked once.
const DeviceProbe& probe();

}  // namespace qf::cuda
