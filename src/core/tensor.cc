#include "qforge/tensor.h"

#include <cassert>
#include <cstring>
#include <new>

#include <fmt/format.h>

namespace qf {

int64_t shape_numel(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string shape_str(const Shape& shape) {
  if (shape.empty()) return "scalar";
  return fmt::format("{}", fmt::join(shape, "x"));
}

namespace {
constexpr std::align_val_t kAlignment{64};

std::shared_ptr<std::byte[]> allocate_zeroed(size_t nbytes) {
  // Always allocate at least one byte so that data pointers of empty tensors are non-null.
  const size_t size = nbytes == 0 ? 1 : nbytes;
  auto* p = static_cast<std::byte*>(::operator new[](size, kAlignment));
  std::memset(p, 0, size);
  return std::shared_ptr<std::byte[]>(p, [](std::byte* q) { ::operator delete[](q, kAlignment); });
}
}  // namespace

Tensor::Tensor(DType dtype, Shape shape)
    : dtype_(dtype), shape_(std::move(shape)), data_(allocate_zeroed(nbytes())) {}

Tensor Tensor::view(DType dtype, Shape shape, std::shared_ptr<std::byte[]> storage) {
  Tensor t;
  t.dtype_ = dtype;
  t.shape_ = std::move(shape);
  t.data_ = std::move(storage);
  return t;
}

Tensor Tensor::reshaped(Shape shape) const {
  assert(shape_numel(shape) == numel());
  Tensor t = *this;
  t.shape_ = std::move(shape);
  return t;
}

Tensor Tensor::clone() const {
  Tensor t(dtype_, shape_);
  if (nbytes() > 0) std::memcpy(t.raw(), raw(), nbytes());
  return t;
}

double Tensor::element_as_double(int64_t i) const {
  double v = 0;
  visit_dtype(dtype_, [&]<typename T>() { v = to_double(static_cast<const T*>(raw())[i]); });
  return v;
}

std::vector<int64_t> Tensor::to_int64_vector() const {
  std::vector<int64_t> out(static_cast<size_t>(numel()));
  for (int64_t i = 0; i < numel(); ++i) {
    if (dtype_ == DType::kI64) {
      out[static_cast<size_t>(i)] = static_cast<const int64_t*>(raw())[i];
    } else {
      out[static_cast<size_t>(i)] = static_cast<int64_t>(element_as_double(i));
    }
  }
  return out;
}

void Tensor::check_type([[maybe_unused]] DType requested) const {
  assert(requested == dtype_ && "Tensor::data<T>() with a T that does not match dtype()");
}

}  // namespace qf
