// The fused ops of the "qforge" domain: what the graph optimizer (src/passes/) rewrites
// Conv/Gemm/MatMul chains into, and what optimized backends implement as one kernel.
//
//   FusedConv   (X, W, B?, Z?)    Conv's attributes      Y = act(Conv(X, W, B) + Z)
//   FusedGemm   (A, B, C?, Z?)    Gemm's attributes      Y = act(Gemm(A, B, C) + Z)
//   FusedMatMul (A, B, Bias?, Z?) -                      Y = act(MatMul(A, B) + Bias + Z)
//
// Z (the residual) has Y's shape; Bias is 1-D of size N, added along the last axis. `act` is the
// string attribute `activation` ("" for none) with floats `activation_alpha` and
// `activation_beta`: LeakyRelu's alpha, Clip's min and max, HardSigmoid's alpha and beta.
#pragma once

#include <optional>
#include <string_view>

#include "ir/graph.h"
#include "qforge/status.h"

namespace qf::ops {

inline constexpr std::string_view kFusedDomain = "qforge";
inline constexpr int kFusedOpset = 1;

// Input slots shared by the three fused ops.
inline constexpr size_t kFusedBiasInput = 2;
inline constexpr size_t kFusedResidualInput = 3;

enum class Activation {
  kNone,
  kRelu,
  kLeakyRelu,
  kClip,
  kSigmoid,
  kTanh,
  kHardSigmoid,
  kHardSwish,
  kSiLU,  // x * sigmoid(x)
  kGELU,  // x * 0.5 * (1 + erf(x / sqrt(2)))
};

struct ActivationSpec {
  Activation kind = Activation::kNone;
  float alpha = 0.0f;
  float beta = 0.0f;
};

// "" <-> kNone, "Relu" <-> kRelu ... (the names of the `activation` attribute).
std::optional<Activation> parse_activation(std::string_view name);
std::string_view activation_name(Activation a);

// The activation of a fused node. Absent alpha/beta take the ONNX defaults of the activation's
// op (LeakyRelu 0.01; HardSigmoid 0.2, 0.5; Clip -inf, +inf). Error naming the node for an
// unknown activation.
Result<ActivationSpec> read_activation(const ir::Node& node);

// The activation's math in double, as the reference kernels of the unfused ops compute it.
double apply_activation(const ActivationSpec& act, double x);

}  // namespace qf::ops
