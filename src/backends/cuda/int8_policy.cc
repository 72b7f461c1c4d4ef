// Which tensors of an INT8 engine are stored in 8 bits, in which type and on which grid. The
// rules are the cpu backend's (src/backends/cpu/lower.cc, "INT8 policy"), so that the two engines
// built with the same scales quantize the same tensors the same way: u8 on half the symmetric
// scale for values known to be >= 0 (twice the resolution), s8 on the scale otherwise, exactly
// the graph's grid where a Q/DQ graph fixed one, and a value already stored in 8 bits keeps its
// grid (pooling passes its input's on).
#include <fmt/format.h>

#include "backends/cuda/lowering.h"
#include "ops/fused.h"
#include "quant/non_negative.h"

namespace qf::cuda {

namespace {

bool is_8bit(DType t) {
  return t == DType::kI8 || t == DType::kU8;
}

}  // namespace

const float* Builder::int8_scale(const ir::Value* v) const {
  if (!int8_engine() || !v) return nullptr;
  auto it = ctx_.int8_scales.find(v->name);
  return it == ctx_.int8_scales.end() ? nullptr : &it->second;
}

bool Builder::non_negative(const ir::Value* v) {
  return quant::known_non_negative(*v, [this](const ir::Value* c) { return known(c); });
}

bool Builder::stays_int8(const ir::Value* v) {
  if (!int8_scale(v) || v->consumers.empty()) return false;
  for (const ir::Value* out : graph_.outputs) {
    if (out == v) return false;
  }
  for (const ir::Node* c : v->consumers) {
    const std::string& op = c->op_type;
    const bool fused = c->domain == ops::kFusedDomain;
    if (fused || op == "Conv" || op == "Gemm" || op == "MatMul") {
      // As the data input or the residual, not as weights, bias or the second operand.
      for (size_t i = 0; i < c->inputs.size(); ++i) {
        if (c->inputs[i] == v && i != 0 && !(fused && i == ops::kFusedResidualInput)) {
          return false;
        }
      }
      continue;
    }
    if (op == "MaxPool" || op == "AveragePool" || op == "GlobalAveragePool" ||
        op == "GlobalMaxPool" || op == "Flatten" || op == "Reshape" || op == "Squeeze" ||
        op == "Unsqueeze" || op == "Identity") {
      continue;
    }
    return false;
  }
  return true;
}

int Builder::int8_buffer(const ir::Value* v, std::optional<Layout> layout) {
  auto it = info_.find(v);
  if (it == info_.end()) return -1;
  for (int b : it->second.buffers) {
    const Buffer& buf = plan_->buf(b);
    if (buf.on_device() && is_8bit(buf.dtype) && (!layout || buf.layout == *layout)) return b;
  }
  return -1;
}

std::pair<DType, Grid> Builder::int8_storage(const ir::Value* v) {
  if (const int b = int8_buffer(v); b >= 0) return {plan_->buf(b).dtype, plan_->buf(b).grid};
  if (auto it = ctx_.int8_fixed.find(v->name); it != ctx_.int8_fixed.end()) {
    return {it->second.type, it->second.grid};
  }
  const float* s = int8_scale(v);
  const float scale = s ? *s : 1.f;
  if (non_negative(v)) return {DType::kU8, Grid{scale / 2, 0}};
  return {DType::kI8, Grid{scale, 0}};
}

Result<int> Builder::request_int8(const ir::Value* v, Layout layout) {
  if (layout == Layout::kNHWC && shape(v).size() != 4) layout = Layout::kPlain;
  if (const int b = int8_buffer(v, layout); b >= 0) return b;
  if (const int b = int8_buffer(v); b >= 0) {
    const Buffer& src = plan_->buf(b);
    const int d = add_copy_convert(b, layout, src.dtype, v->name, src.grid);
    info(v).buffers.push_back(d);
    return d;
  }
  if (info(v).dtype != DType::kF32 || !int8_scale(v)) {
    return internal_error("value '{}' cannot be stored in 8 bits", v->name);
  }
  const auto [type, grid] = int8_storage(v);
  // From the float value in whatever layout it already has on the device (the quantization
  // kernel also changes the layout), else uploaded first.
  int src = -1;
  for (int b : info(v).buffers) {
    if (plan_->buf(b).on_device() && !is_8bit(plan_->buf(b).dtype)) src = b;
  }
  if (src < 0) {
    QF_ASSIGN_OR_RETURN(src, request_device(v, Layout::kPlain, DType::kF32));
  }
  const int d = add_copy_convert(src, layout, type, v->name, grid);
  info(v).buffers.push_back(d);
  return d;
}

}  // namespace qf::cuda
