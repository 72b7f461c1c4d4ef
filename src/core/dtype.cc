#include "qforge/dtype.h"

#include <onnx/onnx_pb.h>

#include <bit>
#include <cmath>

namespace qf {

size_t dtype_size(DType t) {
  switch (t) {
    case DType::kF64:
    case DType::kI64:
    case DType::kU64:
      return 8;
    case DType::kF32:
    case DType::kI32:
    case DType::kU32:
      return 4;
    case DType::kF16:
    case DType::kBF16:
    case DType::kI16:
    case DType::kU16:
      return 2;
    case DType::kI8:
    case DType::kU8:
    case DType::kBool:
      return 1;
    case DType::kUndefined:
      return 0;
  }
  return 0;
}

std::string_view dtype_tag(DType t) {
  switch (t) {
    case DType::kF32:
      return "f32";
    case DType::kF64:
      return "f64";
    case DType::kF16:
      return "f16";
    case DType::kBF16:
      return "bf16";
    case DType::kI8:
      return "s8";
    case DType::kU8:
      return "u8";
    case DType::kI16:
      return "s16";
    case DType::kU16:
      return "u16";
    case DType::kI32:
      return "s32";
    case DType::kU32:
      return "u32";
    case DType::kI64:
      return "s64";
    case DType::kU64:
      return "u64";
    case DType::kBool:
      return "bool";
    case DType::kUndefined:
      return "undefined";
  }
  return "undefined";
}

bool dtype_is_float(DType t) {
  return t == DType::kF32 || t == DType::kF64 || t == DType::kF16 || t == DType::kBF16;
}

bool dtype_is_integer(DType t) {
  switch (t) {
    case DType::kI8:
    case DType::kU8:
    case DType::kI16:
    case DType::kU16:
    case DType::kI32:
    case DType::kU32:
    case DType::kI64:
    case DType::kU64:
      return true;
    default:
      return false;
  }
}

namespace {
struct OnnxTypePair {
  int32_t onnx;
  DType dtype;
};
constexpr OnnxTypePair kOnnxTypes[] = {
    {onnx::TensorProto::FLOAT, DType::kF32},   {onnx::TensorProto::DOUBLE, DType::kF64},
    {onnx::TensorProto::FLOAT16, DType::kF16}, {onnx::TensorProto::BFLOAT16, DType::kBF16},
    {onnx::TensorProto::INT8, DType::kI8},     {onnx::TensorProto::UINT8, DType::kU8},
    {onnx::TensorProto::INT16, DType::kI16},   {onnx::TensorProto::UINT16, DType::kU16},
    {onnx::TensorProto::INT32, DType::kI32},   {onnx::TensorProto::UINT32, DType::kU32},
    {onnx::TensorProto::INT64, DType::kI64},   {onnx::TensorProto::UINT64, DType::kU64},
    {onnx::TensorProto::BOOL, DType::kBool},
};
}  // namespace

DType dtype_from_onnx(int32_t onnx_type) {
  for (const auto& p : kOnnxTypes) {
    if (p.onnx == onnx_type) return p.dtype;
  }
  return DType::kUndefined;
}

int32_t dtype_to_onnx(DType t) {
  for (const auto& p : kOnnxTypes) {
    if (p.dtype == t) return p.onnx;
  }
  return onnx::TensorProto::UNDEFINED;
}

std::string_view onnx_type_name(int32_t onnx_type) {
  if (!onnx::TensorProto::DataType_IsValid(onnx_type)) return "INVALID";
  return onnx::TensorProto::DataType_Name(static_cast<onnx::TensorProto::DataType>(onnx_type));
}

float f16_to_f32(f16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h.bits & 0x8000u) << 16;
  const uint32_t exponent = (h.bits >> 10) & 0x1fu;
  const uint32_t mantissa = h.bits & 0x3ffu;
  if (exponent == 0) {
    // Zero or subnormal: value = mantissa * 2^-24.
    const float magnitude = std::ldexp(static_cast<float>(mantissa), -24);
    return sign ? -magnitude : magnitude;
  }
  if (exponent == 0x1f) {  // Inf or NaN
    return std::bit_cast<float>(sign | 0x7f800000u | (mantissa << 13));
  }
  return std::bit_cast<float>(sign | ((exponent + 112u) << 23) | (mantissa << 13));
}

f16_t f32_to_f16(float f) {
  const uint32_t x = std::bit_cast<uint32_t>(f);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
  const uint32_t abs = x & 0x7fffffffu;
  if (abs >= 0x7f800000u) {  // Inf or NaN (keep NaN quiet)
    return {static_cast<uint16_t>(sign | 0x7c00u | (abs > 0x7f800000u ? 0x200u : 0u))};
  }
  if (abs >= 0x477ff000u) return {static_cast<uint16_t>(sign | 0x7c00u)};  // rounds to Inf
  if (abs < 0x38800000u) {
    // Result is subnormal or zero: scale so that one f16 subnormal ulp is 1.0, round to even.
    const float scaled = std::bit_cast<float>(abs) * 16777216.0f;  // 2^24
    return {static_cast<uint16_t>(sign | static_cast<uint16_t>(std::nearbyint(scaled)))};
  }
  // Normal: rebias exponent, round mantissa from 23 to 10 bits to nearest even.
  const uint32_t rounded = abs + 0xfffu + ((abs >> 13) & 1u);
  return {static_cast<uint16_t>(sign | ((rounded - 0x38000000u) >> 13))};
}

float bf16_to_f32(bf16_t h) {
  return std::bit_cast<float>(static_cast<uint32_t>(h.bits) << 16);
}

bf16_t f32_to_bf16(float f) {
  const uint32_t x = std::bit_cast<uint32_t>(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return {static_cast<uint16_t>((x >> 16) | 0x40u)};  // NaN
  const uint32_t rounded = x + 0x7fffu + ((x >> 16) & 1u);
  return {static_cast<uint16_t>(rounded >> 16)};
}

}  // namespace qf
