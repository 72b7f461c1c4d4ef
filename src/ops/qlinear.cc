// ONNX's QOperator-format ops: QLinearConv, QLinearMatMul (8-bit in, 8-bit out, requantized) and
// ConvInteger, MatMulInteger (8-bit in, int32 out).
//
// The integer part is exact and has no loops of its own: the inputs minus their zero points are
// formed as wide integers and run through Conv's and MatMul's own shape functions and reference
// kernels (geometry, padding, groups, broadcasting stay in one place). Conv's kernel is float
// only, so it runs in double: each product of two centred 8-bit values is below 2^17 and every
// partial sum stays far below 2^53, so the double result is the exact integer whatever the
// summation order. MatMul runs in int64. The exact sum is then wrapped to int32, which is what an
// int32 accumulator gives (ONNX allows the accumulation to overflow in 32 bits only).
//
// Requantization: y = saturate(round_half_to_even(float(acc) * m) + y_zero_point), with the
// multiplier m = (x_scale * w_scale[c]) / y_scale and the product both in float32. That is ONNX
// Runtime's arithmetic (MLAS requantizes the int32 accumulator with a float multiplier and
// rounds in float), and the float arithmetic QuantizeLinear uses here too. ONNX's Python
// reference computes m in float32 as well but the product in double; the two differ only for
// products within a float rounding of a .5 tie, and the conformance data (ONNX Runtime's
// outputs) is matched by both, so the tie-break goes to the runtime that models are deployed on.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "ops/elementwise.h"
#include "ops/nn_common.h"

namespace qf::ops {
namespace {

// Conv and MatMul mean the same at every opset the QOperator ops exist at.
constexpr int kBaseOpset = 17;
constexpr size_t kNone = std::numeric_limits<size_t>::max();

bool is_8bit(DType t) {
  return t == DType::kI8 || t == DType::kU8;
}

int32_t int8_at(const Tensor& t, int64_t i) {
  return t.dtype() == DType::kU8 ? int32_t{t.data<uint8_t>()[i]} : int32_t{t.data<int8_t>()[i]};
}

// One input as the checks see it: at import shapes and values may be unknown, at run time
// everything is known. The same checks then serve the shape functions and the kernels.
struct Arg {
  bool present = false;
  DType dtype = DType::kUndefined;
  std::optional<Shape> shape;
  const Tensor* value = nullptr;
};
using Args = std::vector<Arg>;

Args args_of(const ir::InferContext& ctx) {
  Args out(ctx.num_inputs());
  for (size_t i = 0; i < out.size(); ++i) {
    if (!ctx.has_input(i)) continue;
    const ir::InferInput& in = ctx.in(i);
    out[i] = {true, in.dtype, in.shape ? ir::to_concrete(*in.shape) : std::nullopt, in.value};
  }
  return out;
}

Args args_of(const ir::KernelContext& ctx) {
  Args out(ctx.inputs.size());
  for (size_t i = 0; i < out.size(); ++i) {
    if (ctx.has_input(i)) out[i] = {true, ctx.in(i).dtype(), ctx.in(i).shape(), &ctx.in(i)};
  }
  return out;
}

const Arg* arg(const Args& args, size_t i) {
  return i < args.size() && args[i].present ? &args[i] : nullptr;
}

// Where an op keeps the pieces of one quantized operand (kNone: the op has no such input).
struct Operand {
  const char* name;
  size_t data, scale, zero_point;
};

struct Signature {
  std::string_view base;  // "Conv" or "MatMul"
  Operand lhs, rhs, y;    // y.data is unused
  size_t bias = kNone;
  bool requantized() const { return y.scale != kNone; }
};

constexpr Operand kNoOutputParams{"y", kNone, kNone, kNone};
constexpr Signature kQLinearConv{"Conv", {"x", 0, 1, 2}, {"w", 3, 4, 5}, {"y", kNone, 6, 7}, 8};
constexpr Signature kConvInteger{"Conv", {"x", 0, kNone, 2}, {"w", 1, kNone, 3}, kNoOutputParams};
constexpr Signature kQLinearMatMul{"MatMul", {"a", 0, 1, 2}, {"b", 3, 4, 5}, {"y", kNone, 6, 7}};
constexpr Signature kMatMulInteger{
    "MatMul", {"a", 0, kNone, 2}, {"b", 1, kNone, 3}, kNoOutputParams};

// "x_scale", "w_zero_point", "B": the ONNX name of input i, for messages.
std::string input_name(const Signature& sig, size_t i) {
  for (const Operand* op : {&sig.lhs, &sig.rhs, &sig.y}) {
    if (i == op->data) return op->name;
    if (i == op->scale) return fmt::format("{}_scale", op->name);
    if (i == op->zero_point) return fmt::format("{}_zero_point", op->name);
  }
  return "B";
}

// Presence and element types of every input, and the values of known scales.
Status check_args(const ir::Node& node, const Args& args, const Signature& sig) {
  for (const Operand* op : {&sig.lhs, &sig.rhs}) {
    const Arg* data = arg(args, op->data);
    if (!data) return invalid_input("{}: input {} is required", node.label(), op->name);
    if (data->dtype != DType::kUndefined && !is_8bit(data->dtype)) {
      return unsupported("{}: {} has element type {}; int8 and uint8 are supported", node.label(),
                         op->name, dtype_tag(data->dtype));
    }
    const Arg* zp = arg(args, op->zero_point);
    if (zp && zp->dtype != DType::kUndefined && data->dtype != DType::kUndefined &&
        zp->dtype != data->dtype) {
      return invalid_input("{}: {}_zero_point has element type {} but {} has {}", node.label(),
                           op->name, dtype_tag(zp->dtype), op->name, dtype_tag(data->dtype));
    }
  }
  if (!sig.requantized()) return {};
  if (const Arg* zp = arg(args, sig.y.zero_point);
      zp && zp->dtype != DType::kUndefined && !is_8bit(zp->dtype)) {
    return unsupported("{}: y_zero_point has element type {}; int8 and uint8 are supported",
                       node.label(), dtype_tag(zp->dtype));
  }
  for (const Operand* op : {&sig.lhs, &sig.rhs, &sig.y}) {
    const Arg* s = arg(args, op->scale);
    if (!s) return invalid_input("{}: input {}_scale is required", node.label(), op->name);
    if (s->dtype != DType::kUndefined && !dtype_is_float(s->dtype)) {
      return invalid_input("{}: {}_scale must be floating point, got {}", node.label(), op->name,
                           dtype_tag(s->dtype));
    }
    for (int64_t i = 0; s->value && i < s->value->numel(); ++i) {
      const double v = s->value->element_as_double(i);
      if (!(std::isfinite(v) && v > 0.0)) {
        return invalid_input("{}: {}_scale must be positive and finite, got {}", node.label(),
                             op->name, v);
      }
    }
  }
  if (const Arg* b = arg(args, sig.bias);
      b && b->dtype != DType::kUndefined && b->dtype != DType::kI32) {
    return invalid_input("{}: bias B must be int32, got {}", node.label(), dtype_tag(b->dtype));
  }
  return {};
}

// ---- Layout of scales and zero points ----

// Conv: x's and y's parameters are one value; w's are one value or one per output channel, and
// the bias has one per output channel. Checks the shapes that are known.
Status check_conv_layout(const ir::Node& node, const Args& args, const Signature& sig) {
  for (size_t i : {sig.lhs.scale, sig.lhs.zero_point, sig.y.scale, sig.y.zero_point}) {
    const Arg* a = arg(args, i);
    if (a && a->shape && shape_numel(*a->shape) != 1) {
      return invalid_input("{}: {} must hold one value (per tensor), got shape {}", node.label(),
                           input_name(sig, i), shape_str(*a->shape));
    }
  }
  const Arg* w = arg(args, sig.rhs.data);
  if (!w || !w->shape) return {};
  if (w->shape->size() < 3) {
    return invalid_input("{}: w must have rank >= 3 (M, C / group, kernel dims), got shape {}",
                         node.label(), shape_str(*w->shape));
  }
  const int64_t m = (*w->shape)[0];
  for (size_t i : {sig.rhs.scale, sig.rhs.zero_point, sig.bias}) {
    const Arg* a = arg(args, i);
    if (!a || !a->shape) continue;
    const bool per_channel = a->shape->size() == 1 && (*a->shape)[0] == m;
    if (!per_channel && (i == sig.bias || shape_numel(*a->shape) != 1)) {
      return invalid_input("{}: {} must have {}{} elements (output channels), got shape {}",
                           node.label(), input_name(sig, i), i == sig.bias ? "" : "1 or ", m,
                           shape_str(*a->shape));
    }
  }
  return {};
}

// MatMul: the shape a scale or zero point of `operand` broadcasts from (numpy rules) over the
// operand's elements: [] per tensor, [M, 1] for an M-vector of a's rows, [N] for an N-vector of
// b's columns, or the parameter itself when it is N-D ([.., M, 1] for a, [.., 1, N] for b).
Result<Shape> matmul_param_shape(const ir::Node& node, const Signature& sig, size_t input,
                                 const Shape& operand, const Shape& param, bool is_a) {
  if (shape_numel(param) == 1) return Shape{};
  const size_t rank = operand.size();
  const char* per = is_a ? "row" : "column";
  if (rank >= 2) {
    const int64_t rows = operand[rank - 2], cols = operand[rank - 1];
    if (param.size() == 1 && param[0] == (is_a ? rows : cols)) {
      return is_a ? Shape{rows, 1} : Shape{cols};
    }
    bool fits =
        param.size() >= 2 && param.size() <= rank && param[param.size() - (is_a ? 1 : 2)] == 1;
    for (size_t d = 0; fits && d < param.size(); ++d) {
      const int64_t p = param[param.size() - 1 - d], o = operand[rank - 1 - d];
      fits = p == 1 || p == o;
    }
    if (fits) return param;
  }
  return invalid_input("{}: {} of shape {} is neither per tensor nor per {} of {} (shape {})",
                       node.label(), input_name(sig, input), shape_str(param), per,
                       is_a ? sig.lhs.name : sig.rhs.name, shape_str(operand));
}

struct MatMulLayout {
  Shape lhs_scale, lhs_zero_point, rhs_scale, rhs_zero_point;
};

// The broadcast shapes of the MatMul parameters; nullopt while a needed shape is unknown.
Result<std::optional<MatMulLayout>> matmul_layout(const ir::Node& node, const Args& args,
                                                  const Signature& sig) {
  for (size_t i : {sig.y.scale, sig.y.zero_point}) {
    const Arg* a = arg(args, i);
    if (a && a->shape && shape_numel(*a->shape) != 1) {
      return invalid_input("{}: {} must hold one value (per tensor), got shape {}", node.label(),
                           input_name(sig, i), shape_str(*a->shape));
    }
  }
  MatMulLayout l;
  bool known = true;
  for (const Operand* op : {&sig.lhs, &sig.rhs}) {
    const Arg* data = arg(args, op->data);
    for (size_t i : {op->scale, op->zero_point}) {
      const Arg* p = arg(args, i);
      if (!p) continue;
      if (!data->shape || !p->shape) {
        known = false;
        continue;
      }
      QF_ASSIGN_OR_RETURN(
          Shape s, matmul_param_shape(node, sig, i, *data->shape, *p->shape, op == &sig.lhs));
      Shape& dst = op == &sig.lhs ? (i == op->scale ? l.lhs_scale : l.lhs_zero_point)
                                  : (i == op->scale ? l.rhs_scale : l.rhs_zero_point);
      dst = std::move(s);
    }
  }
  if (!known) return std::optional<MatMulLayout>();
  return std::optional<MatMulLayout>(std::move(l));
}

// ---- Running the base op on exact integers ----

Result<const ir::OpDef*> base_def(const ir::Node& node, std::string_view op) {
  const ir::OpDef* def = ir::OpRegistry::global().find("", op, kBaseOpset);
  if (!def || !def->infer || !def->reference) {
    return internal_error("{}: no definition of {} to build on", node.label(), op);
  }
  return def;
}

// The base op's view of the two operands and the bias: their shapes, in the wide type it runs in.
std::vector<ir::InferInput> base_inputs(const ir::InferContext& ctx, const Signature& sig,
                                        DType wide) {
  std::vector<ir::InferInput> out;
  for (size_t i : {sig.lhs.data, sig.rhs.data, sig.bias}) {
    if (i == kNone) continue;
    ir::InferInput in;
    if (ctx.has_input(i)) in = {true, wide, ctx.in(i).shape, nullptr};
    out.push_back(std::move(in));
  }
  return out;
}

// q - zero_point as wide integers (T), the zero point broadcast from `zp_shape` over q.
template <typename T>
Tensor centered(const Tensor& q, const Tensor* zp, const Shape& zp_shape) {
  Tensor out(dtype_of<T>(), q.shape());
  T* po = out.data<T>();
  for_each_broadcast(q.shape(), zp ? zp_shape : Shape{}, q.shape(),
                     [&](int64_t i, int64_t iq, int64_t iz) {
                       po[i] = static_cast<T>(int8_at(q, iq) - (zp ? int8_at(*zp, iz) : 0));
                     });
  return out;
}

// Runs the base op's shape function and reference kernel on the centred operands, as the
// executor would, and returns its output wrapped to int32.
template <typename T>
Result<std::vector<int32_t>> integer_accumulate(const ir::KernelContext& ctx, const Signature& sig,
                                                const Shape& lhs_zp, const Shape& rhs_zp,
                                                const Shape& y_shape) {
  QF_ASSIGN_OR_RETURN(const ir::OpDef* def, base_def(ctx.node, sig.base));
  const auto zp = [&](size_t i) { return ctx.has_input(i) ? &ctx.in(i) : nullptr; };
  std::vector<Tensor> wide{centered<T>(ctx.in(sig.lhs.data), zp(sig.lhs.zero_point), lhs_zp),
                           centered<T>(ctx.in(sig.rhs.data), zp(sig.rhs.zero_point), rhs_zp)};
  if (sig.bias != kNone && ctx.has_input(sig.bias)) {
    const Tensor& b = ctx.in(sig.bias);
    Tensor t(dtype_of<T>(), b.shape());
    for (int64_t i = 0; i < b.numel(); ++i) t.data<T>()[i] = static_cast<T>(b.data<int32_t>()[i]);
    wide.push_back(std::move(t));
  }
  ir::InferContext ictx{ctx.node, {}, std::vector<ir::InferOutput>(1)};
  std::vector<const Tensor*> inputs;
  for (const Tensor& t : wide) {
    ictx.inputs.push_back({true, t.dtype(), ir::to_sym_shape(t.shape()), &t});
    inputs.push_back(&t);
  }
  QF_RETURN_IF_ERROR(def->infer(ictx));
  const ir::InferOutput& o = ictx.outputs[0];
  if (!o.shape || ir::to_concrete(*o.shape) != y_shape) {
    return internal_error("{}: {} computes shape {}, the output has {}", ctx.node.label(), sig.base,
                          ir::sym_shape_str(o.shape), shape_str(y_shape));
  }
  std::vector<Tensor> outputs{Tensor(o.dtype, y_shape)};
  ir::KernelContext kctx{ctx.node, inputs, outputs};
  QF_RETURN_IF_ERROR(def->reference(kctx));
  const T* acc = outputs[0].data<T>();
  std::vector<int32_t> out(static_cast<size_t>(outputs[0].numel()));
  for (size_t i = 0; i < out.size(); ++i) {
    // Modulo 2^32: the exact sum wrapped, as int32 accumulation wraps.
    out[i] = static_cast<int32_t>(static_cast<uint32_t>(static_cast<int64_t>(acc[i])));
  }
  return out;
}

// Scales of any floating-point type (opset 21 allows float16/bfloat16) as float.
std::vector<float> scales_of(const Tensor& s) {
  std::vector<float> out(static_cast<size_t>(s.numel()));
  for (size_t i = 0; i < out.size(); ++i) {
    out[i] = static_cast<float>(s.element_as_double(static_cast<int64_t>(i)));
  }
  return out;
}

// Writes saturate(round_half_to_even(float(acc[i]) * multiplier(i)) + y_zero_point) into y
// (nearbyint rounds half to even in the default rounding mode).
template <typename Multiplier>
void requantize(const std::vector<int32_t>& acc, Multiplier&& multiplier, const Tensor* y_zp,
                Tensor& y) {
  const double zp = y_zp ? int8_at(*y_zp, 0) : 0;
  const bool u8 = y.dtype() == DType::kU8;
  const double lo = u8 ? 0 : -128, hi = u8 ? 255 : 127;
  for (size_t i = 0; i < acc.size(); ++i) {
    float v = static_cast<float>(acc[i]) * multiplier(static_cast<int64_t>(i));
    if (std::isnan(v)) v = 0.0f;  // 0 times a multiplier that overflowed to infinity
    const double q = std::clamp(static_cast<double>(std::nearbyint(v)) + zp, lo, hi);
    if (u8) {
      y.data<uint8_t>()[i] = static_cast<uint8_t>(q);
    } else {
      y.data<int8_t>()[i] = static_cast<int8_t>(q);
    }
  }
}

void write_int32(const std::vector<int32_t>& acc, Tensor& y) {
  std::copy(acc.begin(), acc.end(), y.data<int32_t>());
}

// The output's shape is the base op's; its type is y_zero_point's (uint8 without one, as for
// QuantizeLinear), or int32 for the *Integer ops.
template <const Signature& kSig>
Status infer_qoperator(ir::InferContext& ctx) {
  constexpr bool kConv = kSig.base == "Conv";
  const Args args = args_of(ctx);
  QF_RETURN_IF_ERROR(check_args(ctx.node, args, kSig));
  if constexpr (kConv) {
    QF_RETURN_IF_ERROR(check_conv_layout(ctx.node, args, kSig));
  } else {
    QF_RETURN_IF_ERROR(matmul_layout(ctx.node, args, kSig).status());
  }
  QF_ASSIGN_OR_RETURN(const ir::OpDef* def, base_def(ctx.node, kSig.base));
  ir::InferContext sub{ctx.node, base_inputs(ctx, kSig, kConv ? DType::kF64 : DType::kI64),
                       std::vector<ir::InferOutput>(1)};
  QF_RETURN_IF_ERROR(def->infer(sub));
  DType out = DType::kI32;
  if (kSig.requantized()) {
    out = ctx.has_input(kSig.y.zero_point) ? ctx.in(kSig.y.zero_point).dtype : DType::kU8;
  }
  ctx.set_output(0, out, std::move(sub.outputs[0].shape));
  return {};
}

// ---- Conv family ----

template <const Signature& kSig>
Status conv_family_reference(ir::KernelContext& ctx) {
  const Args args = args_of(ctx);
  QF_RETURN_IF_ERROR(check_args(ctx.node, args, kSig));
  QF_RETURN_IF_ERROR(check_conv_layout(ctx.node, args, kSig));
  const Tensor& w = ctx.in(kSig.rhs.data);
  Tensor& y = ctx.out(0);
  // w's zero point is per tensor or (checked above) per output channel, W's dim 0.
  Shape w_zp_shape;
  if (ctx.has_input(kSig.rhs.zero_point) && ctx.in(kSig.rhs.zero_point).numel() != 1) {
    w_zp_shape.assign(w.shape().size(), 1);
    w_zp_shape[0] = w.dim(0);
  }
  QF_ASSIGN_OR_RETURN(std::vector<int32_t> acc,
                      integer_accumulate<double>(ctx, kSig, {}, w_zp_shape, y.shape()));
  if (!kSig.requantized()) {
    write_int32(acc, y);
    return {};
  }
  if (y.numel() == 0) return {};
  const int64_t m = y.dim(1);  // Conv's shape function made it W's dim 0
  const float x_scale = scales_of(ctx.in(kSig.lhs.scale))[0];
  const float y_scale = scales_of(ctx.in(kSig.y.scale))[0];
  const std::vector<float> w_scale = scales_of(ctx.in(kSig.rhs.scale));
  std::vector<float> multipliers(static_cast<size_t>(m));
  for (size_t c = 0; c < multipliers.size(); ++c) {
    multipliers[c] = x_scale * w_scale[w_scale.size() == 1 ? 0 : c] / y_scale;
  }
  const int64_t spatial = y.numel() / (y.dim(0) * m);
  const Tensor* y_zp = ctx.has_input(kSig.y.zero_point) ? &ctx.in(kSig.y.zero_point) : nullptr;
  requantize(
      acc, [&](int64_t i) { return multipliers[static_cast<size_t>((i / spatial) % m)]; }, y_zp, y);
  return {};
}

// numel(Y) * prod(W dims 1..), as for Conv.
template <const Signature& kSig>
std::optional<int64_t> conv_family_macs(const ir::Node& node) {
  if (!node.has_input(kSig.rhs.data) || !node.has_output(0)) return std::nullopt;
  const auto out = known_numel(node.outputs[0]);
  const auto w = known_dims_from(node.inputs[kSig.rhs.data]->shape, 1);
  if (!out || w.empty()) return std::nullopt;
  return *out * shape_numel(w);
}

// ---- MatMul family ----

// numpy's reading of a 1-D operand as a matrix: a [K] as [1, K], b [K] as [K, 1].
Shape as_matrix(Shape s, bool is_a) {
  if (s.size() == 1) s.insert(is_a ? s.begin() : s.end(), 1);
  return s;
}

template <const Signature& kSig>
Status matmul_family_reference(ir::KernelContext& ctx) {
  const Args args = args_of(ctx);
  QF_RETURN_IF_ERROR(check_args(ctx.node, args, kSig));
  QF_ASSIGN_OR_RETURN(const std::optional<MatMulLayout> l, matmul_layout(ctx.node, args, kSig));
  if (!l) return internal_error("{}: parameter shapes unknown at run time", ctx.node.label());
  Tensor& y = ctx.out(0);
  QF_ASSIGN_OR_RETURN(
      std::vector<int32_t> acc,
      integer_accumulate<int64_t>(ctx, kSig, l->lhs_zero_point, l->rhs_zero_point, y.shape()));
  if (!kSig.requantized()) {
    write_int32(acc, y);
    return {};
  }
  // The output as batch x M x N (1-D operands read as matrices), the frame the row scales of a
  // and the column scales of b broadcast over; it has y's elements in y's order.
  const Shape a = as_matrix(ctx.in(kSig.lhs.data).shape(), true);
  const Shape b = as_matrix(ctx.in(kSig.rhs.data).shape(), false);
  Shape frame =
      ir::broadcast_concrete(Shape(a.begin(), a.end() - 2), Shape(b.begin(), b.end() - 2));
  frame.push_back(a[a.size() - 2]);
  frame.push_back(b.back());
  std::vector<float> multipliers(acc.size());
  const std::vector<float> a_scale = scales_of(ctx.in(kSig.lhs.scale));
  const std::vector<float> b_scale = scales_of(ctx.in(kSig.rhs.scale));
  const float y_scale = scales_of(ctx.in(kSig.y.scale))[0];
  for_each_broadcast(l->lhs_scale, l->rhs_scale, frame, [&](int64_t i, int64_t ia, int64_t ib) {
    multipliers[static_cast<size_t>(i)] =
        a_scale[static_cast<size_t>(ia)] * b_scale[static_cast<size_t>(ib)] / y_scale;
  });
  const Tensor* y_zp = ctx.has_input(kSig.y.zero_point) ? &ctx.in(kSig.y.zero_point) : nullptr;
  requantize(
      acc, [&](int64_t i) { return multipliers[static_cast<size_t>(i)]; }, y_zp, y);
  return {};
}

// Every output element is a K-long dot product, as for MatMul.
std::optional<int64_t> matmul_family_macs(const ir::Node& node) {
  const ir::OpDef* def = ir::OpRegistry::global().find("", "MatMul", kBaseOpset);
  return def && def->macs ? def->macs(node) : std::nullopt;
}

QF_REGISTER_OP({.op_type = "QLinearConv",
                .infer = infer_qoperator<kQLinearConv>,
                .reference = conv_family_reference<kQLinearConv>,
                .macs = conv_family_macs<kQLinearConv>,
                .min_opset = 10});
QF_REGISTER_OP({.op_type = "ConvInteger",
                .infer = infer_qoperator<kConvInteger>,
                .reference = conv_family_reference<kConvInteger>,
                .macs = conv_family_macs<kConvInteger>,
                .min_opset = 10});
// Opset 21 adds float16/bfloat16 scales (read as float here) and float8 data (not supported).
QF_REGISTER_OP({.op_type = "QLinearMatMul",
                .infer = infer_qoperator<kQLinearMatMul>,
                .reference = matmul_family_reference<kQLinearMatMul>,
                .macs = matmul_family_macs,
                .min_opset = 10});
QF_REGISTER_OP({.op_type = "MatMulInteger",
                .infer = infer_qoperator<kMatMulInteger>,
                .reference = matmul_family_reference<kMatMulInteger>,
                .macs = matmul_family_macs,
                .min_opset = 10});

}  // namespace
}  // namespace qf::ops
