// Labelled evaluation data: images/features as one N x ... tensor plus integer labels.
#pragma once

#include <filesystem>

#include "qforge/status.h"
#include "qforge/tensor.h"

namespace qf::data {

// Loads samples from an IDX file (gz or not) or a .npy array whose first dim is N. Integer
// pixel data (u8) is scaled to [0, 1] floats; float data is kept as it is.
Result<Tensor> load_samples(const std::filesystem::path& path);

// Loads N integer class labels from an IDX file, a .npy array of integers, or a text file
// with one label per line. Returned as s64.
Result<Tensor> load_labels(const std::filesystem::path& path);

// Copies samples [begin, end) into a batch tensor of `batch_shape` (whose first dim is
// end - begin). Element counts per sample must agree (28x28 fits 1x28x28).
Result<Tensor> slice_batch(const Tensor& samples, int64_t begin, int64_t end, Shape batch_shape);

// Number of rows in `logits` (N x C) whose label is among the k largest scores.
int64_t count_topk_correct(const Tensor& logits, const Tensor& labels, int64_t label_offset,
                           int64_t k);

}  // namespace qf::data
