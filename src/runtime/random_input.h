// Deterministic random input data, for `run` without --input and for `bench`.
#pragma once

#include <random>

#include "qforge/status.h"
#include "qforge/tensor.h"

namespace qf::runtime {

// Uniform in [-1, 1] for floating types; small non-negative integers (0..3) for integer types,
// so that index-like inputs stay in range for typical models.
Result<Tensor> random_tensor(DType dtype, const Shape& shape, std::mt19937_64& rng);

}  // namespace qf::runtime
