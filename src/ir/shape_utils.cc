#include "ir/shape_utils.h"

#include <algorithm>

namespace qf::ir {

namespace {
Result<int> normalize_axis_impl(const std::string& label, int64_t axis, int64_t rank) {
  const int64_t a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= std::max<int64_t>(rank, 1)) {
    return invalid_input("{}: axis {} is out of range for a tensor of rank {}", label, axis, rank);
  }
  return static_cast<int>(a);
}
}  // namespace

Result<int> normalize_axis(const InferContext& ctx, int64_t axis, int64_t rank) {
  return normalize_axis_impl(ctx.node.label(), axis, rank);
}
Result<int> normalize_axis(const KernelContext& ctx, int64_t axis, int64_t rank) {
  return normalize_axis_impl(ctx.node.label(), axis, rank);
}

Result<SymShape> broadcast_shapes(const InferContext& ctx, const SymShape& a, const SymShape& b) {
  const size_t rank = std::max(a.size(), b.size());
  SymShape out(rank);
  for (size_t i = 0; i < rank; ++i) {
    const Dim one = Dim::known(1);
    const Dim& da = i < rank - a.size() ? one : a[i - (rank - a.size())];
    const Dim& db = i < rank - b.size() ? one : b[i - (rank - b.size())];
    if (da.is_known() && db.is_known()) {
      if (da.value != db.value && da.value != 1 && db.value != 1) {
        return ctx.error("shapes {} and {} cannot be broadcast", sym_shape_str(a),
                         sym_shape_str(b));
      }
      out[i] = Dim::known(da.value == 1 ? db.value : da.value);
    } else if (da.is_known() && da.value == 1) {
      out[i] = db;
    } else if (db.is_known() && db.value == 1) {
      out[i] = da;
    } else if (da.is_known()) {
      out[i] = da;  // the other side must be equal (or 1, which would give this size too)
    } else if (db.is_known()) {
      out[i] = db;
    } else {
      out[i] = da == db ? da : Dim{};
    }
  }
  return out;
}

Result<std::optional<SymShape>> broadcast_inputs(const InferContext& ctx) {
  std::optional<SymShape> acc;
  for (const InferInput& in : ctx.inputs) {
    if (!in.present) continue;
    if (!in.shape) return std::optional<SymShape>{};
    if (!acc) {
      acc = in.shape;
    } else {
      QF_ASSIGN_OR_RETURN(acc, broadcast_shapes(ctx, *acc, *in.shape));
    }
  }
  return acc;
}

Shape broadcast_concrete(const Shape& a, const Shape& b) {
  const size_t rank = std::max(a.size(), b.size());
  Shape out(rank);
  for (size_t i = 0; i < rank; ++i) {
    const int64_t da = i < rank - a.size() ? 1 : a[i - (rank - a.size())];
    const int64_t db = i < rank - b.size() ? 1 : b[i - (rank - b.size())];
    out[i] = da == 1 ? db : da;
  }
  return out;
}

std::vector<int64_t> strides_of(const Shape& shape) {
  std::vector<int64_t> strides(shape.size(), 1);
  for (size_t i = shape.size(); i-- > 1;) strides[i - 1] = strides[i] * shape[i];
  return strides;
}

std::vector<int64_t> broadcast_strides(const Shape& shape, const Shape& target) {
  std::vector<int64_t> own = strides_of(shape);
  std::vector<int64_t> out(target.size(), 0);
  const size_t offset = target.size() - shape.size();
  for (size_t i = 0; i < shape.size(); ++i) {
    out[offset + i] = shape[i] == 1 ? 0 : own[i];
  }
  return out;
}

std::optional<std::vector<int64_t>> known_ints(const InferContext& ctx, size_t input) {
  if (!ctx.has_input(input) || ctx.in(input).value == nullptr) return std::nullopt;
  return ctx.in(input).value->to_int64_vector();
}

Status check_element_count(const InferContext& ctx, const SymShape& shape) {
  constexpr int64_t kMaxElements = int64_t{1} << 56;
  for (const Dim& d : shape) {
    if (d.is_known() && d.value == 0) return {};
  }
  int64_t n = 1;
  for (const Dim& d : shape) {
    if (!d.is_known()) continue;
    if (__builtin_mul_overflow(n, d.value, &n) || n > kMaxElements) {
      return ctx.error("output shape {} has too many elements", sym_shape_str(shape));
    }
  }
  return {};
}

}  // namespace qf::ir
