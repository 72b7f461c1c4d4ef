#include "backends/cuda/device_probe.h"

#include <cublasLt.h>
#include <cuda_runtime.h>
#include <cudnn.h>
#include <dlfcn.h>
#include <fmt/format.h>

#include "runtime/gpu_isa.h"

namespace qf::cuda {
namespace {

// CUDA encodes versions as 1000 * major + 10 * minor (13000 is 13.0).
std::string cuda_version(int v) {
  return fmt::format("{}.{}", v / 1000, (v % 1000) / 10);
}

// cuDNN 9 and cuBLAS encode 10000 * major + 100 * minor + patch.
std::string library_version(size_t v) {
  return fmt::format("{}.{}.{}", v / 10000, (v % 10000) / 100, v % 100);
}

// The driver's release ("580.95.05", what nvidia-smi shows) comes from NVML, which the CUDA
// runtime does not expose. NVML ships with the driver, not the toolkit, so it is opened at run
// time rather than linked: a machine without it still runs, recording the CUDA version alone.
std::string driver_release() {
  void* nvml = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!nvml) return "";
  using InitFn = int (*)();
  using VersionFn = int (*)(char*, unsigned);
  auto init = reinterpret_cast<InitFn>(dlsym(nvml, "nvmlInit_v2"));
  auto version = reinterpret_cast<VersionFn>(dlsym(nvml, "nvmlSystemGetDriverVersion"));
  auto shutdown = reinterpret_cast<InitFn>(dlsym(nvml, "nvmlShutdown"));
  std::string release;
  if (init && version && shutdown && init() == 0) {  // 0: NVML_SUCCESS
    char text[96] = {};
    if (version(text, sizeof(text)) == 0) release = text;
    shutdown();
  }
  dlclose(nvml);
  return release;
}

DeviceProbe run_probe() {
  DeviceProbe r;
  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess) {
    r.why = fmt::format("no CUDA device: {} ({})", cudaGetErrorString(e), cudaGetErrorName(e));
    cudaGetLastError();  // clear the sticky error for later callers
    return r;
  }
  if (count == 0) {
    r.why = "no CUDA device: the driver reports none";
    return r;
  }
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, 0) != cudaSuccess) {
    r.why = "no CUDA device: its properties cannot be read";
    return r;
  }
  r.major = prop.major;
  r.isa = runtime::format_gpu_isa({prop.name, prop.major, prop.minor});
  int driver = 0, runtime = 0;
  cudaDriverGetVersion(&driver);
  cudaRuntimeGetVersion(&runtime);
  const std::string release = driver_release();
  r.facts = {
      {"GPU", prop.name},
      {"compute capability", fmt::format("{}.{}", prop.major, prop.minor)},
      {"CUDA driver", release.empty() ? cuda_version(driver)
                                      : fmt::format("{} ({})", cuda_version(driver), release)},
      {"CUDA runtime", cuda_version(runtime)},
      {"cuDNN", library_version(cudnnGetVersion())},
      {"cuBLASLt", library_version(cublasLtGetVersion())},
  };
  if (prop.major < 8) {
    r.why = fmt::format("{}: compute capability {}.{} is below 8.0, which this build targets",
                        prop.name, prop.major, prop.minor);
    return r;
  }
  r.ok = true;
  return r;
}

}  // namespace

const DeviceProbe& probe() {
  static const DeviceProbe p = run_probe();
  return p;
}

}  // namespace qf::cuda
