// Helpers shared by shape functions: axis normalisation, numpy broadcasting on symbolic shapes.
#pragma once

#include <optional>
#include <vector>

#include "ir/graph.h"
#include "ir/op_registry.h"

namespace qf::ir {

// Maps a possibly negative axis into [0, rank); error naming the node when out of range.
Result<int> normalize_axis(const InferContext& ctx, int64_t axis, int64_t rank);
Result<int> normalize_axis(const KernelContext& ctx, int64_t axis, int64_t rank);

// normalize_axis lets axis 0 name a scalar (ops that treat a scalar as one element); ops that
// index a real dimension use dim_axis, for which a scalar has no axis at all.
template <typename Ctx>
Result<int> dim_axis(const Ctx& ctx, int64_t axis, int64_t rank) {
  if (rank == 0) return ctx.error("axis {} given for a scalar (rank 0) tensor", axis);
  return normalize_axis(ctx, axis, rank);
}

// Multidirectional (numpy) broadcasting of two symbolic shapes. A symbolic dim against 1 keeps
// the symbol; against another unknown dim the result is unknown. Incompatible sizes: error.
Result<SymShape> broadcast_shapes(const InferContext& ctx, const SymShape& a, const SymShape& b);

// Broadcast of all present inputs' shapes; nullopt if any input's rank is unknown.
Result<std::optional<SymShape>> broadcast_inputs(const InferContext& ctx);

// Concrete broadcasting for kernels.
Shape broadcast_concrete(const Shape& a, const Shape& b);

// Row-major strides of `shape`, and strides for reading `shape` as if broadcast to `target`
// (0 along broadcast dims), for use by elementwise kernels.
std::vector<int64_t> strides_of(const Shape& shape);
std::vector<int64_t> broadcast_strides(const Shape& shape, const Shape& target);

// Reads an int64 list from a constant/known input (axes, pads, shape ...): nullopt if unknown.
std::optional<std::vector<int64_t>> known_ints(const InferContext& ctx, size_t input);

// Error naming the node when the known dims of `shape` multiply past what a tensor can index
// (2^56 elements, so that the byte size of any element type fits int64). Shape functions whose
// output dims come from input data (Reshape, Expand, Tile, Pad, Resize ...) call it so that
// hostile values fail cleanly instead of overflowing.
Status check_element_count(const InferContext& ctx, const SymShape& shape);

}  // namespace qf::ir
