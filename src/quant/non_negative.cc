#include "quant/non_negative.h"

#include "ops/fused.h"

namespace qf::quant {

namespace {

bool non_negative(const ir::Value& v, const ConstantLookup& constant, int depth) {
  const ir::Node* p = v.producer;
  // Deep chains of pass-through ops are rare; the bound keeps a cyclic or absurd graph cheap.
  if (!p || depth > 32) return false;
  const std::string& op = p->op_type;
  if (p->domain == ops::kFusedDomain) {
    const Result<ops::ActivationSpec> a = ops::read_activation(*p);
    if (!a.ok()) return false;
    using ops::Activation;
    return a->kind == Activation::kRelu || a->kind == Activation::kSigmoid ||
           a->kind == Activation::kHardSigmoid || (a->kind == Activation::kClip && a->alpha >= 0);
  }
  if (op == "Relu" || op == "Sigmoid" || op == "HardSigmoid" || op == "Abs" || op == "Exp" ||
      op == "Sqrt") {
    return true;
  }
  if (op == "Clip") {
    const Tensor* lo = p->has_input(1) ? constant(p->inputs[1]) : nullptr;
    return lo && lo->numel() == 1 && lo->element_as_double(0) >= 0;
  }
  if (op == "MaxPool" || op == "AveragePool" || op == "GlobalAveragePool" ||
      op == "GlobalMaxPool" || op == "Flatten" || op == "Reshape" || op == "Squeeze" ||
      op == "Unsqueeze" || op == "Identity" || op == "Dropout") {
    return p->has_input(0) && non_negative(*p->inputs[0], constant, depth + 1);
  }
  if (op == "Concat") {
    for (const ir::Value* in : p->inputs) {
      if (in && !non_negative(*in, constant, depth + 1)) return false;
    }
    return true;
  }
  return false;
}

}  // namespace

bool known_non_negative(const ir::Value& v, const ConstantLookup& constant) {
  return non_negative(v, constant, 0);
}

}  // namespace qf::quant
