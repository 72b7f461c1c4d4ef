// Tensor: a dense, row-major, typed n-d array with shared storage.
//
// Copies share the buffer (cheap to pass around); `clone()` makes a deep copy. Buffers are
// 64-byte aligned so that vector kernels may use aligned loads.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "qforge/dtype.h"

namespace qf {

using Shape = std::vector<int64_t>;

int64_t shape_numel(const Shape& shape);
std::string shape_str(const Shape& shape);  // "1x3x224x224", "scalar" for rank 0

class Tensor {
 public:
  Tensor() = default;
  // Zero-initialised tensor of the given type and shape.
  Tensor(DType dtype, Shape shape);

  template <typename T>
  static Tensor from_vector(Shape shape, const std::vector<T>& values) {
    Tensor t(dtype_of<T>(), std::move(shape));
    for (size_t i = 0; i < values.size() && i < static_cast<size_t>(t.numel()); ++i) {
      t.data<T>()[i] = values[i];
    }
    return t;
  }

  bool defined() const { return dtype_ != DType::kUndefined; }
  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  int64_t dim(int i) const { return shape_[static_cast<size_t>(i)]; }
  int rank() const { return static_cast<int>(shape_.size()); }
  int64_t numel() const { return shape_numel(shape_); }
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype_); }

  void* raw() { return data_.get(); }
  const void* raw() const { return data_.get(); }
  std::span<std::byte> bytes() { return {static_cast<std::byte*>(raw()), nbytes()}; }
  std::span<const std::byte> bytes() const {
    return {static_cast<const std::byte*>(raw()), nbytes()};
  }

  // Typed access. The caller is responsible for T matching dtype() (asserted in debug builds).
  template <typename T>
  T* data() {
    check_type(dtype_of<T>());
    return static_cast<T*>(raw());
  }
  template <typename T>
  const T* data() const {
    check_type(dtype_of<T>());
    return static_cast<const T*>(raw());
  }
  template <typename T>
  std::span<T> span() {
    return {data<T>(), static_cast<size_t>(numel())};
  }
  template <typename T>
  std::span<const T> span() const {
    return {data<T>(), static_cast<size_t>(numel())};
  }

  // A tensor over memory it does not allocate: `storage` (e.g. an aliasing shared_ptr into an
  // activation arena) must hold nbytes() bytes and stay valid while the tensor is used.
  static Tensor view(DType dtype, Shape shape, std::shared_ptr<std::byte[]> storage);

  // Same buffer viewed with another shape of equal element count.
  Tensor reshaped(Shape shape) const;
  Tensor clone() const;

  // Element i converted to double / int64 (for small index-like tensors: shapes, axes, pads).
  double element_as_double(int64_t i) const;
  std::vector<int64_t> to_int64_vector() const;

 private:
  void check_type(DType requested) const;

  DType dtype_ = DType::kUndefined;
  Shape shape_;
  std::shared_ptr<std::byte[]> data_;
};

}  // namespace qf
