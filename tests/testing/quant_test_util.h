// Helpers of the quantization tests (Q/DQ import, QOperator ops and their rewrite): random 8-bit
// data, zero points and scales, and lookups of a graph's nodes by op type.
#pragma once

#include <gtest/gtest.h>

#include <random>
#include <string>

#include "ir/graph.h"
#include "qforge/tensor.h"

namespace qf::testing {

// Uniform over the whole range of `t` (u8 or s8).
inline Tensor random_q(DType t, const Shape& shape, std::mt19937& rng) {
  Tensor out(t, shape);
  const int lo = t == DType::kU8 ? 0 : -128;
  std::uniform_int_distribution<int> d(lo, lo + 255);
  for (int64_t i = 0; i < out.numel(); ++i) {
    if (t == DType::kU8) {
      out.data<uint8_t>()[i] = static_cast<uint8_t>(d(rng));
    } else {
      out.data<int8_t>()[i] = static_cast<int8_t>(d(rng));
    }
  }
  return out;
}

// Zero points within 20 of the middle of the range (negative ones for int8 included), so that
// centred values average about 0 and outputs spread over the range instead of saturating.
inline Tensor random_zero_points(DType t, const Shape& shape, std::mt19937& rng) {
  Tensor out(t, shape);
  std::uniform_int_distribution<int> d(-20, 20);
  for (int64_t i = 0; i < out.numel(); ++i) {
    if (t == DType::kU8) {
      out.data<uint8_t>()[i] = static_cast<uint8_t>(128 + d(rng));
    } else {
      out.data<int8_t>()[i] = static_cast<int8_t>(d(rng));
    }
  }
  return out;
}

// f32 uniform in [lo, hi) (scales, float inputs).
inline Tensor random_floats(const Shape& shape, float lo, float hi, std::mt19937& rng) {
  std::uniform_real_distribution<float> d(lo, hi);
  Tensor out(DType::kF32, shape);
  for (float& v : out.span<float>()) v = d(rng);
  return out;
}

inline int count_op(const ir::Graph& g, const std::string& op) {
  int n = 0;
  for (const auto& node : g.nodes()) n += node->op_type == op ? 1 : 0;
  return n;
}

// The one node of type `op` (a test failure when there is none or more than one).
inline const ir::Node* only(const ir::Graph& g, const std::string& op) {
  const ir::Node* found = nullptr;
  for (const auto& node : g.nodes()) {
    if (node->op_type != op) continue;
    EXPECT_EQ(found, nullptr) << "more than one " << op;
    found = node.get();
  }
  EXPECT_NE(found, nullptr) << "no " << op;
  return found;
}

}  // namespace qf::testing
