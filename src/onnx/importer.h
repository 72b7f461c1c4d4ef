// ONNX model import: ModelProto (via libonnx's protobuf classes) -> ir::Graph.
//
// Import does not reject unsupported operators (so that `inspect` can list them); it converts
// every node, canonicalises the supported ones for their opset, sorts the graph and infers
// shapes. Whether a graph can run is asked separately (`unsupported_nodes`).
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "qforge/status.h"

namespace qf::onnx_io {

struct ImportedModel {
  std::unique_ptr<ir::Graph> graph;
  int64_t ir_version = 0;
  std::string producer;  // "pytorch 1.13.1"
  std::filesystem::path path;
};

Result<ImportedModel> load_model(const std::filesystem::path& path);
Result<ImportedModel> import_model_bytes(const std::string& bytes,
                                         const std::filesystem::path& path);

// One Status per node that cannot run, in graph order.
std::vector<Status> unsupported_nodes(const ir::Graph& graph);

}  // namespace qf::onnx_io
