// How far a lower-precision engine's outputs are from FP32's on the same inputs.
#pragma once

#include "qforge/tensor.h"

namespace qf::bench {

struct Agreement {
  double cosine = 0;   // cosine similarity of the flattened outputs
  double sqnr_db = 0;  // 10 log10(|ref|^2 / |ref - test|^2); +inf when identical
  double max_abs_error = 0;
  double top1_agreement = 0;  // fraction of rows (first dim) whose argmax matches
};

// Both tensors f32 of the same shape; rows are the first dim (batch) for top-1.
Agreement compare_outputs(const Tensor& reference, const Tensor& test);

}  // namespace qf::bench
