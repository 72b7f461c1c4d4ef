// A plan: one graph lowered for one set of concrete input shapes.
//
// Every value lives in a Buffer: a graph input (bound per run), a constant (weights, reordered
// once into the layout their primitive wants), a slice of the activation arena, or an alias
// (another shape or layout over the same bytes). Steps run in order: oneDNN primitives, reference
// kernels (on plain row-major tensors), copies, and the final copies into the output tensors.
// Everything is created and placed when the plan is built; running only binds the inputs,
// allocates the output tensors and executes the steps.
#pragma once

#include <oneapi/dnnl/dnnl.hpp>

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "ir/op_registry.h"
#include "qforge/status.h"
#include "qforge/tensor.h"
#include "runtime/engine.h"

namespace qf::cpu {

using dt = dnnl::memory::data_type;
using md = dnnl::memory::desc;

// oneDNN's element type for a DType; dt::undef when oneDNN has none (i64, bool, f64 ...).
dt to_dnnl(DType t);
DType from_dnnl(dt t);
// Dense row-major descriptor: the layout of user tensors and reference kernels. An empty desc
// when oneDNN cannot describe the tensor (no such element type, rank 0, or no elements).
md plain_md(const Shape& shape, dt type);
bool is_plain(const md& desc);
// The same layout with another element type (strides are in elements, so they carry over).
md with_dt(const md& desc, dt type);
inline bool is_int8(dt t) {
  return t == dt::s8 || t == dt::u8;
}
// "f32", "bf16", "s8" ...
std::string dt_tag(dt type);

struct Buffer {
  enum class Kind { kArena, kInput, kConstant, kAlias };
  Kind kind = Kind::kArena;
  DType dtype = DType::kUndefined;  // element type as stored (bf16 for a bf16 activation)
  Shape shape;
  md desc;            // empty for types oneDNN does not know
  float scale = 1.f;  // s8/u8 activations: real = scale * (stored integer - zero_point)
  int32_t zero_point = 0;
  int64_t bytes = 0;
  int input_index = -1;  // kInput
  Tensor constant;       // kConstant
  int root = -1;         // kAlias: the buffer whose bytes this one reinterprets
  int first = -1;        // roots: first step that writes it
  int last = -1;         // roots: last step that reads it
  // Resolved when the plan is finalized.
  int64_t offset = 0;
  std::byte* ptr = nullptr;
  dnnl::memory mem;
  Tensor view;  // plain buffers in the arena, for reference kernels
};

struct Step {
  enum class Kind { kPrimitive, kReference, kCopy, kOutput };
  Kind kind = Kind::kPrimitive;
  std::string label;  // for the per-step profile
  // kPrimitive; also kCopy / kOutput when they reorder.
  dnnl::primitive prim;
  std::vector<std::pair<int, int>> args;  // (DNNL_ARG_*, buffer)
  std::vector<dnnl_exec_arg_t> exec_args;
  bool uses_scratchpad = false;
  // kReference
  const ir::Node* node = nullptr;
  const ir::OpDef* def = nullptr;
  std::vector<int> inputs;   // buffers (-1: omitted); kCopy / kOutput: the source
  std::vector<int> outputs;  // buffers (-1: omitted); kCopy: the destination
  std::vector<const Tensor*> in_tensors;
  std::vector<Tensor> out_tensors;
  // kOutput: which graph output, and the memory bound to the fresh output tensor each run.
  int output_index = -1;
  dnnl::memory out_mem;
  int64_t copy_bytes = 0;  // kCopy / kOutput without a reorder: a memcpy
};

struct OutputSpec {
  DType dtype = DType::kUndefined;
  Shape shape;
};

class Plan {
 public:
  std::vector<Shape> input_shapes;  // the key of the plan cache
  std::vector<Buffer> buffers;
  std::vector<Step> steps;
  std::vector<OutputSpec> outputs;
  std::vector<runtime::KernelInfo> kernels;
  int64_t arena_bytes = 0;
  int64_t weights_bytes = 0;
  int scratchpad = -1;  // buffer shared by every primitive's scratchpad

  // Places the arena and creates every memory object. `eng` must outlive the plan.
  Status finalize(const dnnl::engine& eng);
  // Inputs must have the plan's shapes (the engine checks). Not reentrant.
  Result<std::vector<Tensor>> run(const std::vector<Tensor>& inputs, dnnl::stream& stream,
                                  std::vector<double>* step_seconds);

  int root_of(int b) const { return buffers[b].kind == Buffer::Kind::kAlias ? buffers[b].root : b; }

 private:
  std::shared_ptr<std::byte[]> arena_;
  std::vector<std::pair<int, int>> input_bindings_;  // (buffer, graph input) bound per run
};

}  // namespace qf::cpu
