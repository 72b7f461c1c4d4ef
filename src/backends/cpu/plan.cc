#include "backends/cpu/plan.h"

#include <chrono>
#include <cstring>
#include <new>

#include "runtime/arena.h"

namespace qf::cpu {

dt to_dnnl(DType t) {
  switch (t) {
    case DType::kF32:
      return dt::f32;
    case DType::kBF16:
      return dt::bf16;
    case DType::kF16:
      return dt::f16;
    case DType::kI8:
      return dt::s8;
    case DType::kU8:
      return dt::u8;
    case DType::kI32:
      return dt::s32;
    default:
      return dt::undef;
  }
}

DType from_dnnl(dt t) {
  switch (t) {
    case dt::f32:
      return DType::kF32;
    case dt::bf16:
      return DType::kBF16;
    case dt::f16:
      return DType::kF16;
    case dt::s8:
      return DType::kI8;
    case dt::u8:
      return DType::kU8;
    case dt::s32:
      return DType::kI32;
    default:
      return DType::kUndefined;
  }
}

std::string dt_tag(dt t) {
  const DType d = from_dnnl(t);
  return d == DType::kUndefined ? "undef" : std::string(dtype_tag(d));
}

md plain_md(const Shape& shape, dt type) {
  if (type == dt::undef || shape.empty() || shape_numel(shape) == 0) return md();
  dnnl::memory::dims strides(shape.size());
  int64_t s = 1;
  for (size_t d = shape.size(); d-- > 0;) {
    strides[d] = s;
    s *= shape[d];
  }
  return md(dnnl::memory::dims(shape.begin(), shape.end()), type, strides);
}

bool is_plain(const md& desc) {
  if (desc.is_zero()) return false;
  const dnnl_memory_desc_t& c = desc.data;
  if (c.format_kind != dnnl_blocked || c.format_desc.blocking.inner_nblks != 0) return false;
  if (c.offset0 != 0) return false;
  int64_t s = 1;
  for (int d = c.ndims; d-- > 0;) {
    if (c.dims[d] != c.padded_dims[d]) return false;
    if (c.dims[d] != 1 && c.format_desc.blocking.strides[d] != s) return false;
    s *= c.dims[d];
  }
  return true;
}

md with_dt(const md& desc, dt type) {
  dnnl_memory_desc_t c = desc.data;
  c.data_type = dnnl::memory::convert_to_c(type);
  c.extra = dnnl_memory_extra_desc_t{};
  return md(c);
}

namespace {

std::shared_ptr<std::byte[]> allocate_arena(int64_t bytes) {
  constexpr std::align_val_t kAlign{64};
  const size_t n = bytes > 0 ? static_cast<size_t>(bytes) : 1;
  auto* p = static_cast<std::byte*>(::operator new[](n, kAlign));
  std::memset(p, 0, n);
  return std::shared_ptr<std::byte[]>(p, [](std::byte* q) { ::operator delete[](q, kAlign); });
}

}  // namespace

Status Plan::finalize(const dnnl::engine& eng) {
  const int last_step = static_cast<int>(steps.size()) - 1;
  std::vector<runtime::ArenaRequest> requests;
  std::vector<size_t> roots;
  for (size_t i = 0; i < buffers.size(); ++i) {
    Buffer& b = buffers[i];
    if (b.kind != Buffer::Kind::kArena) continue;
    if (static_cast<int>(i) == scratchpad) {
      b.first = 0;
      b.last = std::max(0, last_step);
    }
    if (b.first < 0) b.first = b.last = 0;  // never touched
    requests.push_back({b.bytes, b.first, std::max(b.first, b.last)});
    roots.push_back(i);
  }
  const runtime::ArenaLayout layout = runtime::plan_arena(requests);
  arena_bytes = layout.size;
  arena_ = allocate_arena(layout.size);
  for (size_t k = 0; k < roots.size(); ++k) {
    buffers[roots[k]].offset = layout.offsets[k];
    buffers[roots[k]].ptr = arena_.get() + layout.offsets[k];
  }

  for (size_t i = 0; i < buffers.size(); ++i) {
    Buffer& b = buffers[i];
    const Buffer& root = buffers[static_cast<size_t>(root_of(static_cast<int>(i)))];
    switch (b.kind) {
      case Buffer::Kind::kConstant:
        b.ptr = static_cast<std::byte*>(const_cast<void*>(b.constant.raw()));
        break;
      case Buffer::Kind::kAlias:
        b.ptr = root.ptr;
        break;
      default:
        break;
    }
    if (!b.desc.is_zero()) b.mem = dnnl::memory(b.desc, eng, b.ptr);
    if (root.kind == Buffer::Kind::kInput) {
      input_bindings_.emplace_back(static_cast<int>(i), root.input_index);
    } else if (root.kind == Buffer::Kind::kArena) {
      b.view = Tensor::view(b.dtype, b.shape, std::shared_ptr<std::byte[]>(arena_, b.ptr));
    } else if (b.kind == Buffer::Kind::kAlias && root.constant.dtype() == b.dtype &&
               root.constant.numel() == shape_numel(b.shape)) {
      b.view = root.constant.reshaped(b.shape);
    }
  }

  for (Step& s : steps) {
    if (s.kind == Step::Kind::kReference) {
      for (int b : s.inputs) {
        if (b < 0) {
          s.in_tensors.push_back(nullptr);
          continue;
        }
        const Buffer& buf = buffers[static_cast<size_t>(b)];
        s.in_tensors.push_back(buf.kind == Buffer::Kind::kConstant ? &buf.constant : &buf.view);
      }
      for (int b : s.outputs) {
        s.out_tensors.push_back(b < 0 ? Tensor() : buffers[static_cast<size_t>(b)].view);
      }
      continue;
    }
    if (s.kind == Step::Kind::kOutput && s.prim) {
      const OutputSpec& o = outputs[static_cast<size_t>(s.output_index)];
      s.out_mem = dnnl::memory(plain_md(o.shape, to_dnnl(o.dtype)), eng, nullptr);
    }
    if (!s.prim) continue;
    for (const auto& [arg, b] : s.args) {
      s.exec_args.push_back({arg, buffers[static_cast<size_t>(b)].mem.get()});
    }
    if (s.kind == Step::Kind::kOutput) s.exec_args.push_back({DNNL_ARG_DST, s.out_mem.get()});
    if (s.uses_scratchpad && scratchpad >= 0) {
      s.exec_args.push_back(
          {DNNL_ARG_SCRATCHPAD, buffers[static_cast<size_t>(scratchpad)].mem.get()});
    }
  }
  return {};
}

Result<std::vector<Tensor>> Plan::run(const std::vector<Tensor>& inputs, dnnl::stream& stream,
                                      std::vector<double>* step_seconds) {
  for (const auto& [b, k] : input_bindings_) {
    Buffer& buf = buffers[static_cast<size_t>(b)];
    buf.ptr = static_cast<std::byte*>(const_cast<void*>(inputs[static_cast<size_t>(k)].raw()));
    if (buf.mem) buf.mem.set_data_handle(buf.ptr);
  }
  std::vector<Tensor> results;
  try {
    results.reserve(outputs.size());
    for (const OutputSpec& o : outputs) results.emplace_back(o.dtype, o.shape);
  } catch (const std::bad_alloc&) {
    return invalid_input("the outputs of this model cannot be allocated");
  }

  using clock = std::chrono::steady_clock;
  for (size_t i = 0; i < steps.size(); ++i) {
    Step& s = steps[i];
    const clock::time_point start = step_seconds ? clock::now() : clock::time_point();
    switch (s.kind) {
      case Step::Kind::kReference: {
        for (Tensor& t : s.out_tensors) {
          if (t.defined()) std::memset(t.raw(), 0, t.nbytes());
        }
        ir::KernelContext ctx{*s.node, std::move(s.in_tensors), s.out_tensors};
        Status st = s.def->reference(ctx);
        s.in_tensors = std::move(ctx.inputs);
        QF_RETURN_IF_ERROR(st);
        // A kernel that replaced an output tensor instead of filling it: copy its data home.
        for (size_t k = 0; k < s.out_tensors.size(); ++k) {
          if (s.outputs[k] < 0) continue;
          const Buffer& ob = buffers[static_cast<size_t>(s.outputs[k])];
          if (s.out_tensors[k].raw() == ob.ptr) continue;
          if (s.out_tensors[k].nbytes() != ob.view.nbytes()) {
            return internal_error("{}: the kernel returned output {} with another size", s.label,
                                  k);
          }
          std::memcpy(ob.ptr, s.out_tensors[k].raw(), ob.view.nbytes());
          s.out_tensors[k] = ob.view;
        }
        break;
      }
      case Step::Kind::kOutput:
        if (!s.prim) {
          std::memcpy(results[static_cast<size_t>(s.output_index)].raw(),
                      buffers[static_cast<size_t>(s.inputs[0])].ptr,
                      static_cast<size_t>(s.copy_bytes));
          break;
        }
        s.out_mem.set_data_handle(results[static_cast<size_t>(s.output_index)].raw());
        [[fallthrough]];
      case Step::Kind::kPrimitive:
      case Step::Kind::kCopy: {
        if (!s.prim) {
          std::memcpy(buffers[static_cast<size_t>(s.outputs[0])].ptr,
                      buffers[static_cast<size_t>(s.inputs[0])].ptr,
                      static_cast<size_t>(s.copy_bytes));
          break;
        }
        const dnnl_status_t st = dnnl_primitive_execute(
            s.prim.get(), stream.get(), static_cast<int>(s.exec_args.size()), s.exec_args.data());
        if (st != dnnl_success) {
          return internal_error("oneDNN failed to execute {} (status {})", s.label,
                                static_cast<int>(st));
        }
        break;
      }
    }
    if (step_seconds) {
      (*step_seconds)[i] += std::chrono::duration<double>(clock::now() - start).count();
    }
  }
  stream.wait();
  return results;
}

}  // namespace qf::cpu
