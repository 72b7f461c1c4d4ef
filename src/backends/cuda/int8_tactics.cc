// The candidates of an int8 layer's tactic choice (tactic_choice.cc): our implicit-GEMM kernel's
// tile shapes and split-K factors (int8_launch_candidates), each timed as the step runs it. The
// shape heuristic alone (int8_launch_for) cannot see what a layer is bound by: at batch 1 a deep
// layer has a handful of tiles and lives on split-K, a 1x1 layer with a residual on memory
// traffic, a large 3x3 layer on the tensor cores.
#include <fmt/format.h>

#include "backends/cuda/int8_kernels.h"
#include "backends/cuda/lowering.h"
#include "backends/cuda/tactic_timer.h"

namespace qf::cuda {

const char* int8_tile_name(Int8Tile t) {
  switch (t) {
    case Int8Tile::k128x128:
      return "128x128";
    case Int8Tile::k128x64:
      return "128x64";
    case Int8Tile::k64x64:
      return "64x64";
    case Int8Tile::kDirect:
      break;
  }
  return "direct";
}

std::string int8_tactic_name(const Int8Launch& l) {
  return fmt::format("int8 {} split {}", int8_tile_name(l.tile), l.splits);
}

Result<float> Builder::time_int8_candidate(Int8Conv g, bool with_z) {
  const int64_t rows = g.n * g.oh * g.ow;
  // Scratch activations of the layer's shapes and types (the time of tensor-core kernels does
  // not depend on the values); the weights and epilogue vectors are the real ones.
  QF_ASSIGN_OR_RETURN(auto x, DeviceMemory::allocate(g.n * g.h * g.w * g.c));
  QF_CUDA_RETURN(cudaMemset(x->ptr, 0, static_cast<size_t>(x->bytes)));
  QF_ASSIGN_OR_RETURN(
      auto y, DeviceMemory::allocate(rows * g.out_c * static_cast<int64_t>(dtype_size(g.y_type))));
  std::shared_ptr<DeviceMemory> z, split;
  if (with_z) {
    QF_ASSIGN_OR_RETURN(
        z, DeviceMemory::allocate(rows * g.out_c * static_cast<int64_t>(dtype_size(g.z_type))));
    QF_CUDA_RETURN(cudaMemset(z->ptr, 0, static_cast<size_t>(z->bytes)));
  }
  // Split-K's sums and counters start at zero, and every launch leaves them so.
  const int64_t sum_bytes = int8_split_sum_bytes(g);
  if (sum_bytes > 0) {
    QF_ASSIGN_OR_RETURN(
        split, DeviceMemory::allocate(sum_bytes + int8_split_counter_count(g) *
                                                      static_cast<int64_t>(sizeof(int32_t))));
    QF_CUDA_RETURN(cudaMemset(split->ptr, 0, static_cast<size_t>(split->bytes)));
    g.split_sums = static_cast<int32_t*>(split->ptr);
    g.split_counters = reinterpret_cast<int32_t*>(static_cast<std::byte*>(split->ptr) + sum_bytes);
  }
  g.x = x->ptr;
  g.y = y->ptr;
  g.z = z ? z->ptr : nullptr;
  QF_RETURN_IF_ERROR(launch_status(prepare_int8_conv(g), "preparing an int8 convolution"));
  return time_tactic(ctx_.stream, [&] {
    return launch_status(launch_int8_conv(g, ctx_.stream), "an int8 tactic");
  });
}

}  // namespace qf::cuda
