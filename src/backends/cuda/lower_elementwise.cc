// Elementwise ops on the backend's own kernels: broadcasting binary arithmetic (in NHWC when an
// operand already is) and the unary activations and math functions.
#include <fmt/format.h>

#include <cmath>

#include "backends/cuda/lowering.h"

namespace qf::cuda {

Result<bool> Builder::lower_binary(const ir::Node& node, BinaryOp op, std::string* why) {
  if (node.inputs.size() != 2 || !float_value(node.inputs[0]) || !float_value(node.inputs[1]) ||
      !float_value(node.outputs[0])) {
    *why = "only two f32 operands run on the device";
    return false;
  }
  const Shape& ys = shape(node.outputs[0]);
  const size_t r = ys.size();
  if (r > static_cast<size_t>(kMaxDims) || shape_numel(ys) == 0) {
    *why = "rank above 6 or empty";
    return false;
  }
  // NHWC when a 4-D operand already lives in NHWC (the common conv -> Add/Mul case).
  Layout out_layout = Layout::kPlain;
  for (const ir::Value* in : node.inputs) {
    if (r == 4 && shape(in).size() == 4 && native_layout(in) == Layout::kNHWC) {
      out_layout = Layout::kNHWC;
    }
  }
  const DType t = cdt();
  const std::vector<int> order = physical_order(r, out_layout);
  StridedShape views[2];
  int ins[2];
  for (int i = 0; i < 2; ++i) {
    const ir::Value* in = node.inputs[static_cast<size_t>(i)];
    const Shape& s = shape(in);
    const Layout l = s.size() == 4 && r == 4 ? out_layout : Layout::kPlain;
    QF_ASSIGN_OR_RETURN(ins[i], request_device(in, l, t));
    // Strides of the operand right-aligned to the output's rank; 0 along broadcast dims.
    std::vector<int64_t> st = storage_strides(s, l);
    std::vector<int64_t> full(r, 0);
    for (size_t d = 0; d < s.size(); ++d) {
      const size_t od = r - s.size() + d;
      full[od] = s[d] == 1 && ys[od] != 1 ? 0 : st[d];
    }
    views[i].rank = static_cast<int>(r);
    for (size_t k = 0; k < r; ++k) {
      views[i].dims[k] = ys[static_cast<size_t>(order[k])];
      views[i].strides[k] = full[static_cast<size_t>(order[k])];
    }
    if (r == 0) {
      views[i].rank = 1;
      views[i].dims[0] = 1;
    }
  }
  const int yb = new_arena(t, ys, out_layout);
  info(node.outputs[0]).buffers.push_back(yb);
  const int a = ins[0], b = ins[1];
  const StridedShape av = views[0], bv = views[1];
  const std::string name = node.op_type;
  add_step(node.label(), {a, b, yb}, [=](Plan& p, DeviceContext& c) {
    return launch_status(launch_binary(op, p.ptr(a), av, p.ptr(b), bv, p.ptr(yb), t, c.stream),
                         name);
  });
  add_kernel(node, node.op_type,
             fmt::format("binary_broadcast_{}{} [cuda]", dt(t),
                         out_layout == Layout::kNHWC ? "_nhwc" : ""));
  return true;
}

Result<bool> Builder::lower_unary(const ir::Node& node, std::string* why) {
  const ir::Value* x = node.inputs[0];
  if (!float_value(x)) {
    *why = "a non-f32 input";
    return false;
  }
  ActParams ap;
  const std::string& op = node.op_type;
  if (op == "Relu") {
    ap.kind = Act::kRelu;
  } else if (op == "LeakyRelu") {
    ap = {Act::kLeakyRelu, node.attrs.get_float("alpha", 0.01f), 0.f};
  } else if (op == "Sigmoid") {
    ap.kind = Act::kSigmoid;
  } else if (op == "Tanh") {
    ap.kind = Act::kTanh;
  } else if (op == "HardSigmoid") {
    ap = {Act::kHardSigmoid, node.attrs.get_float("alpha", 0.2f),
          node.attrs.get_float("beta", 0.5f)};
  } else if (op == "HardSwish") {
    ap.kind = Act::kHardSwish;
  } else if (op == "Gelu") {
    if (node.attrs.get_string("approximate", "none") != "none") {
      *why = "Gelu's tanh approximation";
      return false;
    }
    ap.kind = Act::kGELU;
  } else if (op == "Clip") {
    ap = {Act::kClip, -INFINITY, INFINITY};
    for (size_t i = 1; i < 3; ++i) {
      if (!node.has_input(i)) continue;
      const Tensor* bound = known(node.inputs[i]);
      if (!bound || bound->dtype() != DType::kF32 || bound->numel() != 1) {
        *why = "Clip bounds that are not constant f32 scalars";
        return false;
      }
      (i == 1 ? ap.alpha : ap.beta) = bound->data<float>()[0];
    }
  } else if (op == "Exp") {
    ap.kind = Act::kExp;
  } else if (op == "Log") {
    ap.kind = Act::kLog;
  } else if (op == "Sqrt") {
    ap.kind = Act::kSqrt;
  } else if (op == "Erf") {
    ap.kind = Act::kErf;
  } else if (op == "Abs") {
    ap.kind = Act::kAbs;
  } else if (op == "Neg") {
    ap.kind = Act::kNeg;
  } else if (op == "Reciprocal") {
    ap.kind = Act::kReciprocal;
  } else {  // Identity
    ap.kind = Act::kNone;
  }
  const DType t = cdt();
  const Layout l = native_layout(x);
  QF_ASSIGN_OR_RETURN(const int xb, request_device(x, l, t));
  const int yb = new_arena(t, shape(node.outputs[0]), plan_->buf(xb).layout);
  info(node.outputs[0]).buffers.push_back(yb);
  const int64_t count = shape_numel(shape(x));
  add_step(node.label(), {xb, yb}, [=](Plan& p, DeviceContext& c) {
    return launch_status(launch_unary(p.ptr(xb), p.ptr(yb), t, count, ap, c.stream), op);
  });
  add_kernel(node, op,
             fmt::format("unary_{}{} [cuda]", dt(t),
                         plan_->buf(xb).layout == Layout::kNHWC ? "_nhwc" : ""));
  return true;
}

}  // namespace qf::cuda
