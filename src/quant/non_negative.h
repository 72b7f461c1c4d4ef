// Whether a tensor is known to be >= 0 from the op that makes it: an INT8 engine then stores it
// as u8 on half the symmetric scale, twice the resolution of s8. Both backends ask this, so that
// engines built with the same scales pick the same storage type for every tensor.
#pragma once

#include <functional>

#include "ir/graph.h"
#include "qforge/tensor.h"

namespace qf::quant {

// `constant` returns a value's tensor where the builder knows it (Clip's bounds), else nullptr.
using ConstantLookup = std::function<const Tensor*(const ir::Value*)>;

bool known_non_negative(const ir::Value& v, const ConstantLookup& constant);

}  // namespace qf::quant
