// The host fallback: a node no lowering takes runs its reference kernel on the host, reading
// its inputs from (and leaving its outputs in) pinned host buffers; request_host and
// request_device insert the copies between host and device.
#include <fmt/format.h>

#include <cstring>

#include "backends/cuda/lowering.h"
#include "ir/op_registry.h"

namespace qf::cuda {

Status Builder::add_reference(const ir::Node& node) {
  const ir::OpDef* def = ir::OpRegistry::global().find(node.domain, node.op_type, node.opset);
  if (!def || !def->reference) return unsupported("{}: no kernel", node.label());
  std::vector<int> ins, outs;
  for (const ir::Value* in : node.inputs) {
    if (!in) {
      ins.push_back(-1);
      continue;
    }
    QF_ASSIGN_OR_RETURN(const int h, request_host(in));
    ins.push_back(h);
  }
  for (const ir::Value* out : node.outputs) {
    if (!out) {
      outs.push_back(-1);
      continue;
    }
    QF_ASSIGN_OR_RETURN(const int h, new_host(info(out).dtype, info(out).shape));
    outs.push_back(h);
    info(out).buffers.push_back(h);
  }
  add_step(node.label() + " (host)", {},
           [&node, def, ins, outs](Plan& p, DeviceContext& c) -> Status {
             // The inputs' downloads were enqueued before: wait for them.
             QF_CUDA_RETURN(cudaStreamSynchronize(c.stream));
             std::vector<const Tensor*> in_tensors;
             for (int b : ins) in_tensors.push_back(b < 0 ? nullptr : &p.buf(b).host);
             std::vector<Tensor> out_tensors;
             for (int b : outs) out_tensors.push_back(b < 0 ? Tensor() : p.buf(b).host);
             for (Tensor& t : out_tensors) {
               if (t.defined()) std::memset(t.raw(), 0, t.nbytes());
             }
             ir::KernelContext kctx{node, in_tensors, out_tensors};
             QF_RETURN_IF_ERROR(def->reference(kctx));
             for (size_t i = 0; i < outs.size(); ++i) {
               if (outs[i] < 0) continue;
               Tensor& home = p.buf(outs[i]).host;
               if (out_tensors[i].raw() == home.raw()) continue;
               if (out_tensors[i].nbytes() != home.nbytes()) {
                 return internal_error("{}: the kernel returned output {} with another size",
                                       node.label(), i);
               }
               std::memcpy(home.raw(), out_tensors[i].raw(), home.nbytes());
             }
             return {};
           });
  std::string in_types;
  for (const ir::Value* in : node.inputs) {
    if (in) in_types += (in_types.empty() ? "" : ",") + dt(info(in).dtype);
  }
  plan_->steps.back().host = true;
  add_kernel(node, node.op_type, fmt::format("reference_{} [host fallback]", in_types));
  return {};
}

}  // namespace qf::cuda
