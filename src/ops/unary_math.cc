// Elementwise unary math and activations: Relu, Sigmoid, Tanh, Exp, Log, Sqrt, Neg, Abs,
// Reciprocal, Erf, LeakyRelu, Elu, HardSigmoid, HardSwish.
#include <cmath>

#include "ops/elementwise.h"

namespace qf::ops {
namespace {

Status infer_float_unary(ir::InferContext& ctx) {
  QF_RETURN_IF_ERROR(require_float(ctx, 0));
  return infer_same_as_input(ctx);
}

// One line per op: its name and its math. Kernels take the node for attribute-driven ops.
#define QF_UNARY_OP(NAME, INFER, EXPR)                               \
  Status NAME##_reference(ir::KernelContext& ctx) {                  \
    [[maybe_unused]] const ir::Attributes& attrs = ctx.attrs();      \
    return map_unary(ctx, [&](double x) -> double { return EXPR; }); \
  }                                                                  \
  QF_REGISTER_OP({.op_type = #NAME, .infer = INFER, .reference = NAME##_reference, .min_opset = 1});

QF_UNARY_OP(Relu, infer_same_as_input, x > 0 ? x : (x == x ? 0.0 : x))
QF_UNARY_OP(Neg, infer_same_as_input, -x)
QF_UNARY_OP(Abs, infer_same_as_input, std::fabs(x))
QF_UNARY_OP(Sigmoid, infer_float_unary, 1.0 / (1.0 + std::exp(-x)))
QF_UNARY_OP(Tanh, infer_float_unary, std::tanh(x))
QF_UNARY_OP(Exp, infer_float_unary, std::exp(x))
QF_UNARY_OP(Log, infer_float_unary, std::log(x))
QF_UNARY_OP(Sqrt, infer_float_unary, std::sqrt(x))
QF_UNARY_OP(Reciprocal, infer_float_unary, 1.0 / x)
QF_UNARY_OP(Erf, infer_same_as_input, std::erf(x))
QF_UNARY_OP(LeakyRelu, infer_float_unary, x >= 0 ? x : x * attrs.get_float("alpha", 0.01f))
QF_UNARY_OP(Elu, infer_float_unary,
            x >= 0 ? x : attrs.get_float("alpha", 1.0f) * (std::exp(x) - 1.0))
QF_UNARY_OP(HardSigmoid, infer_float_unary,
            std::fmax(0.0, std::fmin(1.0, attrs.get_float("alpha", 0.2f) * x +
                                              attrs.get_float("beta", 0.5f))))
QF_UNARY_OP(HardSwish, infer_float_unary, x* std::fmax(0.0, std::fmin(1.0, x / 6.0 + 0.5)))

#undef QF_UNARY_OP

}  // namespace
}  // namespace qf::ops
