// Element types and their short tags (f32, f16, bf16, s8, u8, s32 ...).
//
// The tags are fixed once here and used everywhere a type appears in a name: kernel names,
// engine files, reports. Half-precision types are stored as their bit patterns; conversion
// follows IEEE 754 round-to-nearest-even, as PyTorch, ONNX Runtime and TensorRT do.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace qf {

enum class DType : uint8_t {
  kUndefined,
  kF32,
  kF64,
  kF16,
  kBF16,
  kI8,
  kU8,
  kI16,
  kU16,
  kI32,
  kU32,
  kI64,
  kU64,
  kBool,
};

// Bit-pattern wrappers so that templates can tell half types from uint16_t.
struct f16_t {
  uint16_t bits = 0;
};
struct bf16_t {
  uint16_t bits = 0;
};

size_t dtype_size(DType t);
std::string_view dtype_tag(DType t);  // "f32", "s8", "bool" ...
bool dtype_is_float(DType t);         // f32, f64, f16, bf16
bool dtype_is_integer(DType t);       // signed and unsigned integers, not bool

// ONNX TensorProto.DataType <-> DType. Unknown ONNX types map to kUndefined.
DType dtype_from_onnx(int32_t onnx_type);
int32_t dtype_to_onnx(DType t);
std::string_view onnx_type_name(int32_t onnx_type);  // "FLOAT", "STRING" ... for messages

float f16_to_f32(f16_t h);
f16_t f32_to_f16(float f);
float bf16_to_f32(bf16_t h);
bf16_t f32_to_bf16(float f);

// C++ type for each DType, for templated kernels.
template <DType T>
struct dtype_traits;
#define QF_DTYPE_TRAITS(tag, ctype) \
  template <>                       \
  struct dtype_traits<DType::tag> { \
    using type = ctype;             \
  };
QF_DTYPE_TRAITS(kF32, float)
QF_DTYPE_TRAITS(kF64, double)
QF_DTYPE_TRAITS(kF16, f16_t)
QF_DTYPE_TRAITS(kBF16, bf16_t)
QF_DTYPE_TRAITS(kI8, int8_t)
QF_DTYPE_TRAITS(kU8, uint8_t)
QF_DTYPE_TRAITS(kI16, int16_t)
QF_DTYPE_TRAITS(kU16, uint16_t)
QF_DTYPE_TRAITS(kI32, int32_t)
QF_DTYPE_TRAITS(kU32, uint32_t)
QF_DTYPE_TRAITS(kI64, int64_t)
QF_DTYPE_TRAITS(kU64, uint64_t)
QF_DTYPE_TRAITS(kBool, bool)
#undef QF_DTYPE_TRAITS

template <typename T>
constexpr DType dtype_of();
#define QF_DTYPE_OF(ctype, tag)       \
  template <>                         \
  constexpr DType dtype_of<ctype>() { \
    return DType::tag;                \
  }
QF_DTYPE_OF(float, kF32)
QF_DTYPE_OF(double, kF64)
QF_DTYPE_OF(f16_t, kF16)
QF_DTYPE_OF(bf16_t, kBF16)
QF_DTYPE_OF(int8_t, kI8)
QF_DTYPE_OF(uint8_t, kU8)
QF_DTYPE_OF(int16_t, kI16)
QF_DTYPE_OF(uint16_t, kU16)
QF_DTYPE_OF(int32_t, kI32)
QF_DTYPE_OF(uint32_t, kU32)
QF_DTYPE_OF(int64_t, kI64)
QF_DTYPE_OF(uint64_t, kU64)
QF_DTYPE_OF(bool, kBool)
#undef QF_DTYPE_OF

// Calls `fn.template operator()<CType>()` for the C++ type of `t`; returns false for kUndefined.
// Usage: visit_dtype(t, [&]<typename T>() { ... });
template <typename Fn>
bool visit_dtype(DType t, Fn&& fn) {
  switch (t) {
#define QF_VISIT_CASE(tag)                                             \
  case DType::tag:                                                     \
    fn.template operator()<typename dtype_traits<DType::tag>::type>(); \
    return true;
    QF_VISIT_CASE(kF32)
    QF_VISIT_CASE(kF64)
    QF_VISIT_CASE(kF16)
    QF_VISIT_CASE(kBF16)
    QF_VISIT_CASE(kI8)
    QF_VISIT_CASE(kU8)
    QF_VISIT_CASE(kI16)
    QF_VISIT_CASE(kU16)
    QF_VISIT_CASE(kI32)
    QF_VISIT_CASE(kU32)
    QF_VISIT_CASE(kI64)
    QF_VISIT_CASE(kU64)
    QF_VISIT_CASE(kBool)
#undef QF_VISIT_CASE
    case DType::kUndefined:
      break;
  }
  return false;
}

// Converting any element to/from double, the reference backend's common currency for
// type-generic ops (Cast, comparisons). Half types go through f32.
template <typename T>
inline double to_double(T v) {
  if constexpr (std::is_same_v<T, f16_t>) {
    return f16_to_f32(v);
  } else if constexpr (std::is_same_v<T, bf16_t>) {
    return bf16_to_f32(v);
  } else {
    return static_cast<double>(v);
  }
}
template <typename T>
inline T from_double(double v) {
  if constexpr (std::is_same_v<T, f16_t>) {
    return f32_to_f16(static_cast<float>(v));
  } else if constexpr (std::is_same_v<T, bf16_t>) {
    return f32_to_bf16(static_cast<float>(v));
  } else if constexpr (std::is_same_v<T, bool>) {
    return v != 0.0;
  } else {
    return static_cast<T>(v);
  }
}

}  // namespace qf
