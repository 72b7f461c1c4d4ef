#include "ops/elementwise.h"

namespace qf::ops {

Status infer_same_as_input(ir::InferContext& ctx) {
  if (!ctx.has_input(0)) return ctx.error("input 0 is required");
  ctx.propagate(0, 0);
  return {};
}

Status require_float(const ir::InferContext& ctx, size_t input) {
  const DType t = ctx.in(input).dtype;
  if (t != DType::kUndefined && !dtype_is_float(t)) {
    return unsupported("{}: element type {} is not supported (floating point only)",
                       ctx.node.label(), dtype_tag(t));
  }
  return {};
}

}  // namespace qf::ops
