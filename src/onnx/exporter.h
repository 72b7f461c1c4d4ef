// ONNX model export: ir::Graph -> ModelProto, the inverse of the importer.
//
// Writes every node with its attributes, domain and opset imports (including custom domains
// such as "qforge" for fused ops), constants as raw_data initializers, graph inputs/outputs
// with element types and symbolic shapes, and value_info for intermediates whose type is known.
// import(export(g)) reproduces g's nodes, attributes and constants. Engine files store their
// optimized graph this way, and the Q/DQ writer builds on it.
#pragma once

#include <cstdint>
#include <string>

#include "ir/graph.h"
#include "qforge/status.h"

namespace onnx {
class ModelProto;
}

namespace qf::onnx_io {

struct ExportOptions {
  // 0: the IR version of the linked ONNX library (the newest format it can write).
  int64_t ir_version = 0;
  std::string producer_name = "qforge";
  std::string producer_version;
  std::string doc_string;
};

// Fails (kInvalidInput) for graphs ONNX cannot express: a graph input without an element type,
// or nodes of one domain that disagree on its opset (ONNX has one opset per domain).
Status export_model(const ir::Graph& graph, onnx::ModelProto* model,
                    const ExportOptions& options = {});

// The serialized ModelProto. Fails (kUnsupported) past protobuf's 2 GiB message limit.
Result<std::string> export_model_bytes(const ir::Graph& graph, const ExportOptions& options = {});

}  // namespace qf::onnx_io
