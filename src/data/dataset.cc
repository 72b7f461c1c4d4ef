#include "data/dataset.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <numeric>

#include "data/idx.h"
#include "io/npy.h"

namespace qf::data {

namespace {
Result<Tensor> load_array(const std::filesystem::path& path) {
  if (path.extension() == ".npy") return io::read_npy(path);
  return read_idx(path);
}
}  // namespace

Result<Tensor> load_samples(const std::filesystem::path& path) {
  QF_ASSIGN_OR_RETURN(Tensor raw, load_array(path));
  if (raw.rank() < 2 || raw.dim(0) == 0) {
    return invalid_input("{}: expected N samples (N x ...), got shape {}", path.string(),
                         shape_str(raw.shape()));
  }
  if (raw.dtype() == DType::kF32) return raw;
  if (raw.dtype() != DType::kU8) {
    return unsupported("{}: sample type {} is not supported (u8 or f32)", path.string(),
                       dtype_tag(raw.dtype()));
  }
  Tensor out(DType::kF32, raw.shape());
  const uint8_t* src = raw.data<uint8_t>();
  float* dst = out.data<float>();
  for (int64_t i = 0; i < raw.numel(); ++i) dst[i] = static_cast<float>(src[i]) / 255.0f;
  return out;
}

Result<Tensor> load_labels(const std::filesystem::path& path) {
  Tensor raw;
  const std::string ext = path.extension().string();
  if (ext == ".txt") {
    std::ifstream in(path);
    if (!in) return invalid_input("{}: cannot open", path.string());
    std::vector<int64_t> values;
    int64_t v = 0;
    while (in >> v) values.push_back(v);
    if (!in.eof())
      return invalid_input("{}: line {} is not an integer label", path.string(), values.size() + 1);
    raw = Tensor::from_vector<int64_t>({static_cast<int64_t>(values.size())}, values);
  } else {
    QF_ASSIGN_OR_RETURN(raw, load_array(path));
  }
  if (!dtype_is_integer(raw.dtype()) || raw.rank() != 1) {
    return invalid_input("{}: labels must be a 1-D integer array, got {} {}", path.string(),
                         dtype_tag(raw.dtype()), shape_str(raw.shape()));
  }
  Tensor out(DType::kI64, raw.shape());
  for (int64_t i = 0; i < raw.numel(); ++i) {
    out.data<int64_t>()[i] = static_cast<int64_t>(raw.element_as_double(i));
  }
  return out;
}

Result<Tensor> slice_batch(const Tensor& samples, int64_t begin, int64_t end, Shape batch_shape) {
  const int64_t per_sample = samples.numel() / samples.dim(0);
  if (batch_shape.empty() || batch_shape[0] != end - begin ||
      shape_numel(batch_shape) != per_sample * (end - begin)) {
    return invalid_input("samples of shape {} do not fit the model input {}",
                         shape_str(samples.shape()), shape_str(batch_shape));
  }
  Tensor batch(samples.dtype(), std::move(batch_shape));
  const size_t bytes = static_cast<size_t>(per_sample) * dtype_size(samples.dtype());
  std::memcpy(batch.raw(), static_cast<const std::byte*>(samples.raw()) + begin * bytes,
              bytes * static_cast<size_t>(end - begin));
  return batch;
}

int64_t count_topk_correct(const Tensor& logits, const Tensor& labels, int64_t label_offset,
                           int64_t k) {
  const int64_t rows = logits.dim(0);
  const int64_t classes = logits.numel() / rows;
  const float* p = logits.data<float>();
  int64_t correct = 0;
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = p + r * classes;
    const int64_t label = labels.data<int64_t>()[label_offset + r];
    if (label < 0 || label >= classes) continue;
    // The label is in the top k when fewer than k classes score strictly higher.
    int64_t higher = 0;
    for (int64_t c = 0; c < classes; ++c) higher += row[c] > row[label] ? 1 : 0;
    correct += higher < k ? 1 : 0;
  }
  return correct;
}

}  // namespace qf::data
