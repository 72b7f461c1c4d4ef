#include "onnx/exporter.h"

#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include <cstring>
#include <filesystem>
#include <random>

#include "backends/reference/executor.h"
#include "ir/op_registry.h"
#include "onnx/importer.h"
#include "passes/optimize.h"

namespace qf::onnx_io {
namespace {

using ir::Dim;
using ir::SymShape;

// A test-only op that reads every attribute kind, so that an attribute lost or altered in the
// round trip changes the output as well as the structure.
Status all_attrs_infer(ir::InferContext& ctx) {
  ctx.propagate(0, 0);
  return {};
}

Status all_attrs_reference(ir::KernelContext& ctx) {
  const ir::Attributes& a = ctx.attrs();
  double offset = static_cast<double>(a.get_int("i", 0));
  for (int64_t v : a.get_ints("ints")) offset += static_cast<double>(v);
  for (float v : a.get_floats("floats")) offset += v;
  offset += static_cast<double>(a.get_string("s", "").size());
  if (a.has("strings")) {
    for (const std::string& s : std::get<std::vector<std::string>>(a.all().at("strings"))) {
      offset += static_cast<double>(s.size());
    }
  }
  if (const Tensor* t = a.get_tensor("t")) {
    for (int64_t i = 0; i < t->numel(); ++i) offset += t->element_as_double(i);
  }
  const float scale = a.get_float("f", 1.0f);
  const Tensor& x = ctx.in(0);
  Tensor& y = ctx.out(0);
  for (int64_t i = 0; i < x.numel(); ++i) {
    y.data<float>()[i] = static_cast<float>(x.data<float>()[i] * scale + offset);
  }
  return {};
}

QF_REGISTER_OP({.op_type = "AllAttrs",
                .infer = all_attrs_infer,
                .reference = all_attrs_reference,
                .min_opset = 1,
                .max_opset = 1,
                .domain = "qforge.test"});

std::filesystem::path fashion_mnist_model() {
  return std::filesystem::path(__FILE__).parent_path().parent_path().parent_path() / "models" /
         "fashion_mnist_cnn.onnx";
}

Tensor random_tensor(Shape shape, uint32_t seed) {
  Tensor t(DType::kF32, std::move(shape));
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (float& v : t.span<float>()) v = u(rng);
  return t;
}

bool same_tensor(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.shape() == b.shape() &&
         (a.nbytes() == 0 || std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0);
}

bool same_attr(const ir::AttrValue& a, const ir::AttrValue& b) {
  if (a.index() != b.index()) return false;
  return std::visit(
      [&](const auto& x) {
        using V = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<V, Tensor>) {
          return same_tensor(x, std::get<Tensor>(b));
        } else {
          return x == std::get<V>(b);
        }
      },
      a);
}

std::string value_name(const ir::Value* v) {
  return v ? v->name : "<omitted>";
}

// Nodes (in order, with attributes), referenced constants, inputs and outputs are the same.
void expect_same_graph(const ir::Graph& a, const ir::Graph& b) {
  EXPECT_EQ(a.opset_imports, b.opset_imports);
  ASSERT_EQ(a.nodes().size(), b.nodes().size());
  for (auto ia = a.nodes().begin(), ib = b.nodes().begin(); ia != a.nodes().end(); ++ia, ++ib) {
    const ir::Node& na = **ia;
    const ir::Node& nb = **ib;
    SCOPED_TRACE(na.label());
    EXPECT_EQ(na.op_type, nb.op_type);
    EXPECT_EQ(na.name, nb.name);
    EXPECT_EQ(na.domain, nb.domain);
    EXPECT_EQ(na.opset, nb.opset);
    ASSERT_EQ(na.inputs.size(), nb.inputs.size());
    for (size_t i = 0; i < na.inputs.size(); ++i) {
      EXPECT_EQ(value_name(na.inputs[i]), value_name(nb.inputs[i]));
      if (na.inputs[i] && na.inputs[i]->is_constant()) {
        ASSERT_TRUE(nb.inputs[i]->is_constant()) << na.inputs[i]->name;
        EXPECT_TRUE(same_tensor(na.inputs[i]->constant, nb.inputs[i]->constant))
            << na.inputs[i]->name;
      }
    }
    ASSERT_EQ(na.outputs.size(), nb.outputs.size());
    for (size_t i = 0; i < na.outputs.size(); ++i) {
      EXPECT_EQ(value_name(na.outputs[i]), value_name(nb.outputs[i]));
      if (na.outputs[i]) {
        EXPECT_EQ(na.outputs[i]->dtype, nb.outputs[i]->dtype);
        EXPECT_EQ(ir::sym_shape_str(na.outputs[i]->shape), ir::sym_shape_str(nb.outputs[i]->shape));
      }
    }
    ASSERT_EQ(na.attrs.all().size(), nb.attrs.all().size());
    for (const auto& [name, value] : na.attrs.all()) {
      ASSERT_TRUE(nb.attrs.has(name)) << name;
      EXPECT_TRUE(same_attr(value, nb.attrs.all().at(name))) << name;
    }
  }
  auto same_values = [](const std::vector<ir::Value*>& x, const std::vector<ir::Value*>& y) {
    ASSERT_EQ(x.size(), y.size());
    for (size_t i = 0; i < x.size(); ++i) {
      EXPECT_EQ(x[i]->name, y[i]->name);
      EXPECT_EQ(x[i]->dtype, y[i]->dtype);
      EXPECT_EQ(ir::sym_shape_str(x[i]->shape), ir::sym_shape_str(y[i]->shape));
    }
  };
  same_values(a.inputs, b.inputs);
  same_values(a.outputs, b.outputs);
}

std::vector<Tensor> run_reference(const ir::Graph& g, const std::vector<Tensor>& inputs) {
  auto exec = reference::Executor::create(g);
  EXPECT_TRUE(exec.ok()) << exec.status().message();
  if (!exec.ok()) return {};
  auto out = exec->run(inputs);
  EXPECT_TRUE(out.ok()) << out.status().message();
  return out.ok() ? *out : std::vector<Tensor>{};
}

std::unique_ptr<ir::Graph> round_trip(const ir::Graph& g) {
  auto bytes = export_model_bytes(g);
  EXPECT_TRUE(bytes.ok()) << bytes.status().message();
  if (!bytes.ok()) return nullptr;
  auto model = import_model_bytes(*bytes, "exported.onnx");
  EXPECT_TRUE(model.ok()) << model.status().message();
  return model.ok() ? std::move(model->graph) : nullptr;
}

// Conv (string, ints, int), LeakyRelu (float), Clip with an omitted optional input,
// ConstantOfShape (tensor) and AllAttrs (every kind), over a symbolic batch dim.
std::unique_ptr<ir::Graph> every_attribute_graph() {
  auto g = std::make_unique<ir::Graph>();
  g->name = "every_attribute";
  g->opset_imports[""] = 17;
  g->opset_imports["qforge.test"] = 1;
  ir::Value* x = g->add_value("x").value();
  x->dtype = DType::kF32;
  x->shape = SymShape{Dim::symbolic("batch"), Dim::known(2), Dim::known(5), Dim::known(5)};
  g->inputs.push_back(x);

  ir::Value* w = g->add_constant("conv.weight", random_tensor({3, 2, 3, 3}, 1));
  ir::Value* b = g->add_constant("conv.bias", random_tensor({3}, 2));
  ir::Value* conv_out = g->add_value("conv_out").value();
  ir::Node* conv = g->add_node("Conv", "conv", {x, w, b}, {conv_out});
  conv->attrs.set("auto_pad", std::string("SAME_UPPER"));
  conv->attrs.set("kernel_shape", std::vector<int64_t>{3, 3});
  conv->attrs.set("group", int64_t{1});

  ir::Value* leaky = g->add_value("leaky").value();
  g->add_node("LeakyRelu", "", {conv_out}, {leaky})->attrs.set("alpha", 0.25f);

  ir::Value* max = g->add_constant("clip.max", Tensor::from_vector<float>({}, {0.75f}));
  ir::Value* clipped = g->add_value("clipped").value();
  g->add_node("Clip", "clip", {leaky, nullptr, max}, {clipped});

  ir::Value* dims = g->add_constant("fill.shape", Tensor::from_vector<int64_t>({4}, {1, 3, 5, 5}));
  ir::Value* fill = g->add_value("fill").value();
  g->add_node("ConstantOfShape", "fill", {dims}, {fill})
      ->attrs.set("value", Tensor::from_vector<float>({1}, {0.5f}));
  ir::Value* sum = g->add_value("sum").value();
  g->add_node("Add", "add", {clipped, fill}, {sum});

  ir::Value* y = g->add_value("y").value();
  ir::Node* all = g->add_node("AllAttrs", "all", {sum}, {y});
  all->domain = "qforge.test";
  all->opset = 1;
  all->attrs.set("i", int64_t{-3});
  all->attrs.set("f", 1.5f);
  all->attrs.set("s", std::string("hello"));
  all->attrs.set("ints", std::vector<int64_t>{1, 2, 3});
  all->attrs.set("floats", std::vector<float>{0.5f, -0.25f});
  all->attrs.set("strings", std::vector<std::string>{"a", "", "bcd"});
  all->attrs.set("t", Tensor::from_vector<int32_t>({2, 2}, {1, -2, 3, 4}));
  all->attrs.set("empty_ints", std::vector<int64_t>{});
  g->outputs.push_back(y);

  EXPECT_TRUE(g->sort_topologically().ok());
  EXPECT_TRUE(ir::infer_shapes(*g).ok());
  return g;
}

TEST(ExporterTest, FashionMnistRoundTripsAndRunsIdentically) {
  auto model = load_model(fashion_mnist_model());
  ASSERT_TRUE(model.ok()) << model.status().message();
  auto again = round_trip(*model->graph);
  ASSERT_NE(again, nullptr);
  expect_same_graph(*model->graph, *again);
  EXPECT_EQ(ir::sym_shape_str(again->inputs[0]->shape), "batchx1x28x28");

  const std::vector<Tensor> in = {random_tensor({3, 1, 28, 28}, 7)};
  const auto want = run_reference(*model->graph, in);
  const auto got = run_reference(*again, in);
  ASSERT_EQ(want.size(), 1u);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_TRUE(same_tensor(want[0], got[0]));
}

// The optimizer's output (fused qforge:: ops) is what engine files store.
TEST(ExporterTest, OptimizedGraphWithFusedOpsRoundTrips) {
  auto model = load_model(fashion_mnist_model());
  ASSERT_TRUE(model.ok()) << model.status().message();
  ir::Graph& g = *model->graph;
  ASSERT_TRUE(passes::optimize(g).ok());
  bool fused = false;
  for (const auto& n : g.nodes()) fused = fused || n->domain == "qforge";
  ASSERT_TRUE(fused);

  onnx::ModelProto m;
  ASSERT_TRUE(export_model(g, &m).ok());
  bool imports_qforge = false;
  for (const auto& op : m.opset_import()) {
    imports_qforge = imports_qforge || (op.domain() == "qforge" && op.version() == 1);
  }
  EXPECT_TRUE(imports_qforge);

  auto again = round_trip(g);
  ASSERT_NE(again, nullptr);
  expect_same_graph(g, *again);
  const std::vector<Tensor> in = {random_tensor({2, 1, 28, 28}, 4)};
  const auto want = run_reference(g, in);
  const auto got = run_reference(*again, in);
  ASSERT_EQ(want.size(), 1u);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_TRUE(same_tensor(want[0], got[0]));
}

TEST(ExporterTest, EveryAttributeKindRoundTripsAndRunsIdentically) {
  auto g = every_attribute_graph();
  ASSERT_EQ(ir::sym_shape_str(g->find_value("y")->shape), "batchx3x5x5");
  auto again = round_trip(*g);
  ASSERT_NE(again, nullptr);
  expect_same_graph(*g, *again);
  EXPECT_EQ(again->find_value("clipped")->consumers.size(), 1u);

  const std::vector<Tensor> in = {random_tensor({2, 2, 5, 5}, 3)};
  const auto want = run_reference(*g, in);
  const auto got = run_reference(*again, in);
  ASSERT_EQ(want.size(), 1u);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_TRUE(same_tensor(want[0], got[0]));
  // The offset AllAttrs adds is -3 + 6 + 0.25 + 5 + 4 + 6 = 18.25, so the attributes did count.
  EXPECT_GT(want[0].data<float>()[0], 15.0f);
}

TEST(ExporterTest, WritesTypesShapesAndValueInfo) {
  auto g = every_attribute_graph();
  onnx::ModelProto m;
  ASSERT_TRUE(export_model(*g, &m).ok());
  const onnx::GraphProto& gp = m.graph();
  ASSERT_EQ(gp.input_size(), 1);
  const auto& in_shape = gp.input(0).type().tensor_type().shape();
  ASSERT_EQ(in_shape.dim_size(), 4);
  EXPECT_EQ(in_shape.dim(0).dim_param(), "batch");
  EXPECT_EQ(in_shape.dim(1).dim_value(), 2);
  EXPECT_EQ(gp.input(0).type().tensor_type().elem_type(), onnx::TensorProto::FLOAT);
  // Intermediates with known types get value_info; inputs and outputs are not repeated there.
  std::vector<std::string> infos;
  for (const auto& vi : gp.value_info()) infos.push_back(vi.name());
  EXPECT_EQ(infos, (std::vector<std::string>{"conv_out", "leaky", "clipped", "fill", "sum"}));
  EXPECT_EQ(gp.value_info(0).type().tensor_type().shape().dim(0).dim_param(), "batch");
  // Initializers are raw_data, and the omitted Clip min is an empty input name.
  ASSERT_EQ(gp.initializer_size(), 4);
  for (const auto& init : gp.initializer()) EXPECT_TRUE(init.has_raw_data()) << init.name();
  const onnx::NodeProto* clip = nullptr;
  for (const auto& n : gp.node()) {
    if (n.op_type() == "Clip") clip = &n;
  }
  ASSERT_NE(clip, nullptr);
  ASSERT_EQ(clip->input_size(), 3);
  EXPECT_EQ(clip->input(1), "");
  EXPECT_EQ(m.producer_name(), "qforge");
  EXPECT_GE(m.ir_version(), 8);
}

TEST(ExporterTest, CustomDomainsGetOpsetImports) {
  ir::Graph g;
  g.opset_imports[""] = 13;
  ir::Value* x = g.add_value("x").value();
  x->dtype = DType::kF32;
  x->shape = SymShape{Dim::known(1), Dim::known(4)};
  g.inputs.push_back(x);
  ir::Value* y = g.add_value("y").value();
  ir::Node* fused = g.add_node("FusedMatMul", "fused", {x, x}, {y});
  fused->domain = "qforge";
  fused->opset = 1;
  fused->attrs.set("activation", std::string("Relu"));
  g.outputs.push_back(y);

  onnx::ModelProto m;
  ASSERT_TRUE(export_model(g, &m).ok());
  std::map<std::string, int64_t> imports;
  for (const auto& op : m.opset_import()) imports[op.domain()] = op.version();
  EXPECT_EQ(imports, (std::map<std::string, int64_t>{{"", 13}, {"qforge", 1}}));
  EXPECT_EQ(m.graph().node(0).domain(), "qforge");
  // The output's type is unknown (nothing inferred it): it is written without one.
  EXPECT_FALSE(m.graph().output(0).type().tensor_type().has_shape());
}

TEST(ExporterTest, NodesDisagreeingWithTheGraphOpsetAreRefused) {
  ir::Graph g;
  g.opset_imports[""] = 13;
  ir::Value* x = g.add_value("x").value();
  x->dtype = DType::kF32;
  g.inputs.push_back(x);
  ir::Value* y = g.add_value("y").value();
  g.add_node("Softmax", "sm", {x}, {y})->opset = 11;
  g.outputs.push_back(y);
  onnx::ModelProto m;
  const Status s = export_model(g, &m);
  EXPECT_EQ(s.code(), StatusCode::kInvalidInput);
  EXPECT_NE(s.message().find("node 'sm' (Softmax): has opset 11 of domain 'ai.onnx' but the graph "
                             "imports version 13"),
            std::string::npos)
      << s.message();
}

TEST(ExporterTest, UnreferencedConstantsAreDropped) {
  auto g = every_attribute_graph();
  g->add_constant("folded_away", random_tensor({1000}, 9));
  onnx::ModelProto m;
  ASSERT_TRUE(export_model(*g, &m).ok());
  for (const auto& init : m.graph().initializer()) EXPECT_NE(init.name(), "folded_away");
}

TEST(ExporterTest, InputWithoutElementTypeIsRefused) {
  ir::Graph g;
  g.opset_imports[""] = 13;
  ir::Value* x = g.add_value("x").value();
  g.inputs.push_back(x);
  g.outputs.push_back(x);
  auto bytes = export_model_bytes(g);
  ASSERT_FALSE(bytes.ok());
  EXPECT_EQ(bytes.status().message(), "graph input 'x' has no element type");
}

TEST(ExporterTest, ScalarAndUnknownDimsSurvive) {
  ir::Graph g;
  g.opset_imports[""] = 13;
  ir::Value* x = g.add_value("x").value();
  x->dtype = DType::kF32;
  x->shape = SymShape{Dim{}, Dim::known(3)};  // an anonymous unknown dim
  ir::Value* s = g.add_value("s").value();
  s->dtype = DType::kF32;
  s->shape = SymShape{};  // scalar
  g.inputs = {x, s};
  ir::Value* y = g.add_value("y").value();
  g.add_node("Mul", "mul", {x, s}, {y});
  g.outputs.push_back(y);
  ASSERT_TRUE(ir::infer_shapes(g).ok());
  auto again = round_trip(g);
  ASSERT_NE(again, nullptr);
  EXPECT_EQ(ir::sym_shape_str(again->inputs[0]->shape), "?x3");
  EXPECT_EQ(ir::sym_shape_str(again->inputs[1]->shape), "scalar");
  EXPECT_EQ(ir::sym_shape_str(again->outputs[0]->shape), "?x3");
}

// A graph at `opset` with one node `op` reading x and the constant int64 input `values`.
std::unique_ptr<ir::Graph> node_with_constant_input(int64_t opset, const std::string& op,
                                                    std::vector<int64_t> values) {
  auto g = std::make_unique<ir::Graph>();
  g->opset_imports[""] = opset;
  ir::Value* x = g->add_value("x").value();
  x->dtype = DType::kF32;
  x->shape = SymShape{Dim::known(2), Dim::known(3)};
  g->inputs.push_back(x);
  const auto n = static_cast<int64_t>(values.size());
  ir::Value* c = g->add_constant("axes", Tensor::from_vector<int64_t>({n}, values));
  ir::Value* y = g->add_value("y").value();
  g->add_node(op, "n", {x, c}, {y})->opset = static_cast<int>(opset);
  g->outputs.push_back(y);
  return g;
}

TEST(ExporterTest, AttributesThatBecameInputsAreWrittenBackForOlderOpsets) {
  // ReduceMean's axes became an input at opset 18: at 13 it must be an attribute again, and its
  // constant must not linger as an initializer.
  auto g13 = node_with_constant_input(13, "ReduceMean", {1});
  onnx::ModelProto m;
  ASSERT_TRUE(export_model(*g13, &m).ok());
  const onnx::NodeProto& node = m.graph().node(0);
  ASSERT_EQ(node.input_size(), 1);
  ASSERT_EQ(node.attribute_size(), 1);
  EXPECT_EQ(node.attribute(0).name(), "axes");
  ASSERT_EQ(node.attribute(0).ints_size(), 1);
  EXPECT_EQ(node.attribute(0).ints(0), 1);
  EXPECT_EQ(m.graph().initializer_size(), 0);

  // At opset 18 the input form is the right one.
  auto g18 = node_with_constant_input(18, "ReduceMean", {1});
  ASSERT_TRUE(export_model(*g18, &m).ok());
  EXPECT_EQ(m.graph().node(0).input_size(), 2);
  EXPECT_EQ(m.graph().node(0).attribute_size(), 0);
  EXPECT_EQ(m.graph().initializer_size(), 1);

  // ReduceSum moved at 13, Unsqueeze too.
  auto sum = node_with_constant_input(12, "ReduceSum", {0});
  ASSERT_TRUE(export_model(*sum, &m).ok());
  EXPECT_EQ(m.graph().node(0).input_size(), 1);
  auto unsqueeze = node_with_constant_input(11, "Unsqueeze", {0});
  ASSERT_TRUE(export_model(*unsqueeze, &m).ok());
  EXPECT_EQ(m.graph().node(0).attribute(0).name(), "axes");
}

TEST(ExporterTest, RunTimeAxesCannotBeWrittenForOlderOpsets) {
  auto g = node_with_constant_input(13, "ReduceMean", {1});
  // Make the axes a graph input: opset 13 has no way to say that.
  ir::Node* n = g->nodes().front().get();
  ir::Value* axes = g->add_value("runtime_axes").value();
  axes->dtype = DType::kI64;
  axes->shape = SymShape{Dim::known(1)};
  g->inputs.push_back(axes);
  g->set_input(n, 1, axes);
  onnx::ModelProto m;
  const Status s = export_model(*g, &m);
  EXPECT_EQ(s.code(), StatusCode::kUnsupported);
  EXPECT_NE(s.message().find("node 'n' (ReduceMean)"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace qf::onnx_io
