// qforge::FusedConv, FusedGemm and FusedMatMul (see fused.h). Shape functions, reference kernels
// and MAC counts delegate to the ONNX ops they extend, so that Conv's or Gemm's semantics exist
// once; the fused part is only the epilogue (bias, residual, activation).
#include "ops/fused.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>

#include "ops/elementwise.h"

namespace qf::ops {

namespace {

constexpr std::array<std::pair<Activation, std::string_view>, 10> kActivationNames = {{
    {Activation::kNone, ""},
    {Activation::kRelu, "Relu"},
    {Activation::kLeakyRelu, "LeakyRelu"},
    {Activation::kClip, "Clip"},
    {Activation::kSigmoid, "Sigmoid"},
    {Activation::kTanh, "Tanh"},
    {Activation::kHardSigmoid, "HardSigmoid"},
    {Activation::kHardSwish, "HardSwish"},
    {Activation::kSiLU, "SiLU"},
    {Activation::kGELU, "GELU"},
}};

}  // namespace

std::optional<Activation> parse_activation(std::string_view name) {
  for (const auto& [a, n] : kActivationNames) {
    if (n == name) return a;
  }
  return std::nullopt;
}

std::string_view activation_name(Activation a) {
  for (const auto& [k, n] : kActivationNames) {
    if (k == a) return n;
  }
  return "?";
}

Result<ActivationSpec> read_activation(const ir::Node& node) {
  const std::string name = node.attrs.get_string("activation", "");
  const std::optional<Activation> kind = parse_activation(name);
  if (!kind) {
    return invalid_input(
        "{}: unknown activation '{}' (expected one of Relu, LeakyRelu, Clip, "
        "Sigmoid, Tanh, HardSigmoid, HardSwish, SiLU, GELU or empty)",
        node.label(), name);
  }
  float alpha = 0.0f, beta = 0.0f;
  constexpr float kInf = std::numeric_limits<float>::infinity();
  switch (*kind) {
    case Activation::kLeakyRelu:
      alpha = 0.01f;
      break;
    case Activation::kHardSigmoid:
      alpha = 0.2f;
      beta = 0.5f;
      break;
    case Activation::kClip:
      alpha = -kInf;
      beta = kInf;
      break;
    default:
      break;
  }
  return ActivationSpec{*kind, node.attrs.get_float("activation_alpha", alpha),
                        node.attrs.get_float("activation_beta", beta)};
}

double apply_activation(const ActivationSpec& act, double x) {
  switch (act.kind) {
    case Activation::kNone:
      return x;
    case Activation::kRelu:
      return x > 0 ? x : (x == x ? 0.0 : x);  // NaN stays NaN, as in Relu's kernel
    case Activation::kLeakyRelu:
      return x >= 0 ? x : x * act.alpha;
    case Activation::kClip: {
      // Clip's order: max with the lower bound first, so min > max gives max; NaN stays.
      const double lo = act.alpha, hi = act.beta;
      const double v = x < lo ? lo : x;
      return hi < v ? hi : v;
    }
    case Activation::kSigmoid:
      return 1.0 / (1.0 + std::exp(-x));
    case Activation::kTanh:
      return std::tanh(x);
    case Activation::kHardSigmoid:
      return std::fmax(0.0, std::fmin(1.0, act.alpha * x + act.beta));
    case Activation::kHardSwish:
      return x * std::fmax(0.0, std::fmin(1.0, x / 6.0 + 0.5));
    case Activation::kSiLU:
      return x / (1.0 + std::exp(-x));
    case Activation::kGELU:
      return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0)));
  }
  return x;
}

namespace {

// The op each fused op extends, and how many leading inputs belong to it.
struct BaseOp {
  std::string_view op_type;
  size_t inputs;
};
constexpr BaseOp kConvBase{"Conv", 3};
constexpr BaseOp kGemmBase{"Gemm", 3};
constexpr BaseOp kMatMulBase{"MatMul", 2};

// The base ops' definitions cover every opset the fused ops can come from; their semantics do
// not differ across those opsets in anything the fused ops use.
constexpr int kBaseOpset = 17;

Result<const ir::OpDef*> base_def(const ir::Node& node, const BaseOp& base) {
  const ir::OpDef* def = ir::OpRegistry::global().find("", base.op_type, kBaseOpset);
  if (!def || !def->infer || !def->reference) {
    return internal_error("{}: no definition of {} to build on", node.label(), base.op_type);
  }
  return def;
}

Status infer_fused(ir::InferContext& ctx, const BaseOp& base) {
  QF_RETURN_IF_ERROR(read_activation(ctx.node).status());
  if (ctx.num_inputs() > 4) return ctx.error("takes at most 4 inputs, got {}", ctx.num_inputs());
  if (ctx.has_input(0)) QF_RETURN_IF_ERROR(require_float(ctx, 0));
  QF_ASSIGN_OR_RETURN(const ir::OpDef* def, base_def(ctx.node, base));
  std::vector<ir::InferInput> base_inputs(
      ctx.inputs.begin(),
      ctx.inputs.begin() + static_cast<std::ptrdiff_t>(std::min(base.inputs, ctx.num_inputs())));
  ir::InferContext sub{ctx.node, std::move(base_inputs), std::vector<ir::InferOutput>(1)};
  QF_RETURN_IF_ERROR(def->infer(sub));
  ir::InferOutput y = std::move(sub.outputs[0]);

  if (base.inputs == 2 && ctx.has_input(kFusedBiasInput)) {
    const ir::InferInput& bias = ctx.in(kFusedBiasInput);
    const ir::InferInput& b = ctx.in(1);
    if (b.shape && b.shape->size() < 2) {
      return ctx.error("a Bias needs B of rank >= 2 (an N axis), got B of shape {}",
                       ir::sym_shape_str(b.shape));
    }
    if (bias.shape) {
      const ir::SymShape& bs = *bias.shape;
      const bool n_known = y.shape && !y.shape->empty() && y.shape->back().is_known();
      if (bs.size() != 1 || (n_known && bs[0].is_known() && bs[0].value != y.shape->back().value)) {
        return ctx.error("Bias has shape {}, expected [N] with N = {}", ir::sym_shape_str(bs),
                         n_known ? std::to_string(y.shape->back().value) : "the output's last dim");
      }
    }
    if (bias.dtype != DType::kUndefined && y.dtype != DType::kUndefined && bias.dtype != y.dtype) {
      return ctx.error("Bias has element type {} but the output has {}", dtype_tag(bias.dtype),
                       dtype_tag(y.dtype));
    }
  }

  if (ctx.has_input(kFusedResidualInput)) {
    const ir::InferInput& z = ctx.in(kFusedResidualInput);
    if (z.dtype != DType::kUndefined && y.dtype != DType::kUndefined && z.dtype != y.dtype) {
      return ctx.error("residual Z has element type {} but the output has {}", dtype_tag(z.dtype),
                       dtype_tag(y.dtype));
    }
    if (z.shape && y.shape) {
      bool same = z.shape->size() == y.shape->size();
      for (size_t i = 0; same && i < z.shape->size(); ++i) {
        const ir::Dim& zd = (*z.shape)[i];
        ir::Dim& yd = (*y.shape)[i];
        if (zd.is_known() && yd.is_known()) {
          same = zd.value == yd.value;
        } else if (!yd.is_known() && (zd.is_known() || !zd.symbol.empty())) {
          yd = zd;  // Z has the output's shape, so it may tell a dim the base op could not
        }
      }
      if (!same) {
        return ctx.error("residual Z has shape {} but the output has shape {}",
                         ir::sym_shape_str(z.shape), ir::sym_shape_str(y.shape));
      }
    } else if (z.shape && !y.shape) {
      y.shape = z.shape;
    }
  }
  ctx.set_output(0, y.dtype, std::move(y.shape));
  return {};
}

template <typename T>
void epilogue_typed(Tensor& y, const Tensor* bias, const Tensor* z, const ActivationSpec& act) {
  T* py = y.data<T>();
  const T* pb = bias ? bias->data<T>() : nullptr;
  const T* pz = z ? z->data<T>() : nullptr;
  const int64_t n = bias ? bias->numel() : 1;
  // The additions happen in the element type, as the Add nodes they replace did; the activation
  // in double, as the activation kernels do.
  for (int64_t i = 0; i < y.numel(); ++i) {
    compute_t<T> v = to_compute(py[i]);
    if (pb) v = to_compute(from_compute<T>(v + to_compute(pb[i % n])));
    if (pz) v = to_compute(from_compute<T>(v + to_compute(pz[i])));
    py[i] = from_double<T>(apply_activation(act, static_cast<double>(v)));
  }
}

Status fused_reference(ir::KernelContext& ctx, const BaseOp& base) {
  QF_ASSIGN_OR_RETURN(const ActivationSpec act, read_activation(ctx.node));
  QF_ASSIGN_OR_RETURN(const ir::OpDef* def, base_def(ctx.node, base));
  std::vector<const Tensor*> base_inputs(
      ctx.inputs.begin(),
      ctx.inputs.begin() + static_cast<std::ptrdiff_t>(std::min(base.inputs, ctx.inputs.size())));
  ir::KernelContext sub{ctx.node, base_inputs, ctx.outputs};
  QF_RETURN_IF_ERROR(def->reference(sub));

  Tensor& y = ctx.out(0);
  const Tensor* bias =
      base.inputs == 2 && ctx.has_input(kFusedBiasInput) ? &ctx.in(kFusedBiasInput) : nullptr;
  const Tensor* z = ctx.has_input(kFusedResidualInput) ? &ctx.in(kFusedResidualInput) : nullptr;
  if (bias) {
    if (bias->rank() != 1 || y.rank() == 0 || bias->dim(0) != y.shape().back()) {
      return ctx.error("Bias of shape {} does not match the output {} along its last axis",
                       shape_str(bias->shape()), shape_str(y.shape()));
    }
  }
  if (z && z->shape() != y.shape()) {
    return ctx.error("residual Z has shape {} but the output has shape {}", shape_str(z->shape()),
                     shape_str(y.shape()));
  }
  for (const Tensor* t : {bias, z}) {
    if (t && t->dtype() != y.dtype()) {
      return ctx.error("Bias and Z must have the output's element type {}", dtype_tag(y.dtype()));
    }
  }
  if (!bias && !z && act.kind == Activation::kNone) return {};
  auto run = [&]<typename T>() { epilogue_typed<T>(y, bias, z, act); };
  switch (y.dtype()) {
    case DType::kF32:
      run.operator()<float>();
      break;
    case DType::kF64:
      run.operator()<double>();
      break;
    case DType::kF16:
      run.operator()<f16_t>();
      break;
    case DType::kBF16:
      run.operator()<bf16_t>();
      break;
    default:
      return ctx.unsupported_here("element type {} is not supported (floating point only)",
                                  dtype_tag(y.dtype()));
  }
  return {};
}

std::optional<int64_t> fused_macs(const ir::Node& node, const BaseOp& base) {
  const ir::OpDef* def = ir::OpRegistry::global().find("", base.op_type, kBaseOpset);
  return def && def->macs ? def->macs(node) : std::nullopt;
}

// Function pointers for the op table, one set per base op.
template <const BaseOp& kBase>
Status infer_fn(ir::InferContext& ctx) {
  return infer_fused(ctx, kBase);
}
template <const BaseOp& kBase>
Status reference_fn(ir::KernelContext& ctx) {
  return fused_reference(ctx, kBase);
}
template <const BaseOp& kBase>
std::optional<int64_t> macs_fn(const ir::Node& node) {
  return fused_macs(node, kBase);
}

#define QF_REGISTER_FUSED_OP(NAME, BASE)           \
  QF_REGISTER_OP({.op_type = NAME,                 \
                  .infer = infer_fn<BASE>,         \
                  .reference = reference_fn<BASE>, \
                  .macs = macs_fn<BASE>,           \
                  .min_opset = kFusedOpset,        \
                  .max_opset = kFusedOpset,        \
                  .domain = kFusedDomain})

QF_REGISTER_FUSED_OP("FusedConv", kConvBase);
QF_REGISTER_FUSED_OP("FusedGemm", kGemmBase);
QF_REGISTER_FUSED_OP("FusedMatMul", kMatMulBase);

#undef QF_REGISTER_FUSED_OP

}  // namespace
}  // namespace qf::ops
