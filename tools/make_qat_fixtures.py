#!/usr/bin/python3
"""Makes the quantization-aware-training (QAT) fixtures for qforge's Q/DQ import tests.

    /usr/bin/python3 tools/make_qat_fixtures.py [--out DIR]     # default DIR: tests/fixtures/qat

Run once by a developer; the outputs are committed and never regenerated at build or test time.
It takes about a minute on one core (one float epoch, a third of an epoch of QAT, four exports
and the checks). Use Debian's /usr/bin/python3: it has torch (1.13) and onnx.

What it makes (all in DIR):
  fmnist_qat_fakequant_opset{13,17}.onnx  the QAT model itself, eval mode: every activation and
                                          weight goes through a QuantizeLinear/DequantizeLinear
                                          pair, BatchNormalization nodes are kept (see below)
  fmnist_qat_int8_opset{13,17}.onnx       torch.ao.quantization.convert of the same model: int8
                                          weights and int32 biases as Constant nodes, float
                                          ops between DequantizeLinear and QuantizeLinear
  expected_{fakequant,int8}_logits.npy    PyTorch's logits (float32, 1000 x 10) on the first
                                          1000 Fashion-MNIST test images (raw pixels / 255)
  fixtures.json                           op histograms and node lists, per-tensor scales and
                                          zero points as read back from each graph (decimal and
                                          float32 hex), weight ranges, the output quantization,
                                          accuracies, versions, seeds

The network is a small CNN (31k parameters) that meets what an INT8 engine meets: the
dataset normalisation as float Sub/Div before the first quantization, conv+bn+relu blocks, a
MaxPool, a residual block (conv-bn-relu, conv-bn, add with the skip, relu) through
FloatFunctional, Flatten and two Linear layers, the first fused with its ReLU. Input: raw
pixels, float32 N x 1 x 28 x 28 in [0, 1], dynamic batch "batch"; output: 10 logits.

Why get_default_qat_qconfig('onednn', version=0): version 1 uses FusedMovingAvgObsFakeQuantize,
whose single fused op has no ONNX symbolic in torch 1.13; version 0's FakeQuantize modules call
fake_quantize_per_{tensor,channel}_affine, which export as QuantizeLinear/DequantizeLinear.
The 'onednn' flavour gives uint8 activations over the full 0..255 range (affine, so zero points
are generally non-zero) and symmetric per-output-channel int8 weights over -128..127.

Why the observers are disabled before evaluating and exporting: a FakeQuantize module keeps
observing whenever its observer is enabled, in eval mode too. Left on, every evaluation batch
and the tracing pass of torch.onnx.export would move the moving-average ranges, so the scales
in the ONNX file would not be the ones that produced the expected logits. BatchNorm statistics
are frozen for the same reason (they only move in train mode, but freezing makes the exported
model the one that was fine-tuned last).

The export uses torch.onnx's defaults (eval mode, constant folding) and still keeps every
BatchNormalization: the QAT conv+bn module computes conv(x, fake-quantized scaled weight),
divides by the BN scale factor and then calls BN, so the graph is Conv -> Div -> BN and the
exporter's Conv+BN fusion, which needs a Conv directly followed by BN, never applies.

What torch 1.13 cannot export, and what this script does about it: the converted fc1+ReLU is
quantized::linear_relu, which has no ONNX export; the converted model is exported with fc1 as
quantized Linear followed by a quantized ReLU, which gives bit-identical outputs (checked), so
the int8 graph has Gemm -> Q -> DQ -> Relu -> Q there instead of Gemm -> Relu -> Q.

The int8 graphs do not reproduce PyTorch's int8 logits bit for bit: the exporter truncates the
int32 biases and the graph computes in float where the quantized kernels do not, so a few
percent of the logits move by one output quantization step (fixtures.json, graph_check, says
how many; the fake-quant graphs reproduce their logits exactly).

Determinism: fixed seeds, one thread, torch.use_deterministic_algorithms(True); the same torch
build on the same CPU gives byte-identical files (torch.onnx writes no timestamp).
"""

import argparse
import copy
import hashlib
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.ao.quantization as tq
import torch.ao.nn.quantized as nnq

from fashion_mnist_data import DEFAULT_DATA_DIR, MEAN, STD, Normalize, load_split

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT_DIR = os.path.join(REPO_ROOT, "tests", "fixtures", "qat")
OPSETS = (13, 17)
N_EXPECTED = 1000  # images whose logits are stored
INPUT_NAME, OUTPUT_NAME = "input", "logits"


class QATFashionCNN(nn.Module):
    """Eager-mode quantizable CNN: every op between quant and dequant has a quantized kernel."""

    def __init__(self):
        super().__init__()
        self.normalize = Normalize(MEAN, STD)
        self.quant = tq.QuantStub()
        # Block 1: 1 -> 8 channels at 28 x 28, pooled to 14 x 14.
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.relu1 = nn.ReLU()
        self.pool1 = nn.MaxPool2d(2)
        # Block 2: 8 -> 16 channels, pooled to 7 x 7.
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(16)
        self.relu2 = nn.ReLU()
        self.pool2 = nn.MaxPool2d(2)
        # Residual block at 16 x 7 x 7: relu(bn4(conv4(relu(bn3(conv3(x))))) + x).
        self.conv3 = nn.Conv2d(16, 16, 3, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(16)
        self.relu3 = nn.ReLU()
        self.conv4 = nn.Conv2d(16, 16, 3, padding=1, bias=False)
        self.bn4 = nn.BatchNorm2d(16)
        # FloatFunctional so that the sum gets its own observer (and a quantized add when
        # converted); add_relu keeps the ReLU inside the quantized op, as engines fuse it.
        self.skip_add = nn.quantized.FloatFunctional()
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(16 * 7 * 7, 32)
        self.relu_fc1 = nn.ReLU()
        self.fc2 = nn.Linear(32, 10)
        self.dequant = tq.DeQuantStub()

    def forward(self, x):
        x = self.quant(self.normalize(x))
        x = self.pool1(self.relu1(self.bn1(self.conv1(x))))
        x = self.pool2(self.relu2(self.bn2(self.conv2(x))))
        y = self.relu3(self.bn3(self.conv3(x)))
        y = self.bn4(self.conv4(y))
        x = self.skip_add.add_relu(y, x)
        x = self.relu_fc1(self.fc1(self.flatten(x)))
        return self.dequant(self.fc2(x))


# What the C++ side should expect in the exported graphs (also written to fixtures.json).
GRAPH_NOTES = {
    "fakequant": [
        "Sub, Div (normalisation, float) -> QuantizeLinear/DequantizeLinear (uint8, nonzero zero point)",
        "conv blocks: weight initializer (already multiplied by the BN scale factor) -> "
        "QuantizeLinear/DequantizeLinear (int8, per channel, axis 0) -> Conv with an all-zero bias "
        "(Constant) -> Div by the BN scale factor (initializer [1,C,1,1]) -> BatchNormalization -> "
        "Relu -> QuantizeLinear/DequantizeLinear (uint8)",
        "conv4 (no relu): ... BatchNormalization -> Q/DQ (uint8, nonzero zero point) -> Add with the "
        "MaxPool output (the skip, not re-quantized) -> Relu -> Q/DQ",
        "Q/DQ pairs sit on op outputs (eager-mode observers), not on op inputs: conv2 and conv3 "
        "read a MaxPool output, fc1 a Flatten output and the Add its skip from a MaxPool output, "
        "with no Q/DQ in between (their values are on the producer's grid)",
        "activation scales are 1-D tensors of shape [1] (not scalars); zero points are uint8 [1] "
        "initializers, some shared through Identity nodes",
        "Linear layers: float weight initializer -> Q/DQ (int8, per channel, axis 0) -> Gemm "
        "(transB=1, float bias); fc1 -> Relu -> Q/DQ; fc2 -> Q/DQ -> graph output",
    ],
    "int8": [
        "all weights, biases, scales and zero points are Constant nodes (no initializers but the "
        "normalisation's mean and std)",
        "every quantized tensor passes through Cast(to=UINT8) (a no-op on uint8) between "
        "QuantizeLinear and the next DequantizeLinear",
        "conv: DQ(uint8 input), DQ(int8 weight, per channel, axis 0), DQ(int32 bias, scale = "
        "input scale * weight scale, zero point Cast(ConstantOfShape) int32 0, axis 0) -> Conv "
        "(BN folded by convert) -> Relu -> QuantizeLinear",
        "MaxPool and Flatten are wrapped as DQ -> op -> Q with the input's scale and zero point",
        "residual: DQ(conv4 output) + DQ(pool2 output) -> Add -> Relu -> Q (quantized::add_relu)",
        "fc1: Gemm -> Q -> Cast -> DQ -> Relu -> Q (same scale, zero point 0: two quantization "
        "steps); fc2: Gemm -> Q -> Cast -> DQ -> graph output",
    ],
}

FUSE_GROUPS = [["conv1", "bn1", "relu1"], ["conv2", "bn2", "relu2"], ["conv3", "bn3", "relu3"],
               ["conv4", "bn4"], ["fc1", "relu_fc1"]]


def evaluate(model, x, y, batch=1000):
    """Returns (top-1 accuracy, logits) of an eval-mode model."""
    model.eval()
    outs = []
    with torch.no_grad():
        for i in range(0, len(x), batch):
            outs.append(model(x[i:i + batch]))
    logits = torch.cat(outs)
    return (logits.argmax(1) == y).float().mean().item(), logits


def train(model, opt, sched, x, y, steps, batch_size, gen, label):
    """Plain cross-entropy training for `steps` mini-batches drawn from one fixed permutation."""
    model.train()
    perm = torch.randperm(len(x), generator=gen)
    total, seen, t0 = 0.0, 0, time.time()
    for step in range(steps):
        idx = perm[step * batch_size:(step + 1) * batch_size]
        loss = F.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        if sched is not None:
            sched.step()
        total += loss.item() * len(idx)
        seen += len(idx)
    print(f"{label}: {steps} steps, train loss {total / seen:.4f}, {time.time() - t0:.0f} s",
          flush=True)


def unfuse_linear_relu(int8_model):
    """Returns a copy whose fc1 is quantized Linear + ReLU instead of the fused LinearReLU.

    The converted fc1 calls quantized::linear_relu, which torch 1.13 cannot export: its ONNX pass
    that unpacks prepacked weights knows quantized::linear and quantized::conv2d_relu, not
    linear_relu, so no symbolic can see the weights. The fused op's output range starts at 0
    (its observer only saw ReLU outputs), so its zero point is 0 and requantizing to uint8
    already clamps negatives to 0: quantized Linear with the same output scale and zero point
    followed by a ReLU gives bit-identical outputs (main() checks it on the test set).
    """
    m = copy.deepcopy(int8_model)
    fused = m.fc1
    assert fused.zero_point == 0, "fc1's output zero point must be 0 for the unfused form"
    lin = nnq.Linear(fused.in_features, fused.out_features, dtype=torch.qint8)
    lin.set_weight_bias(fused.weight(), fused.bias())
    lin.scale, lin.zero_point = fused.scale, fused.zero_point
    m.fc1, m.relu_fc1 = lin, nn.ReLU()
    return m


def export(model, sample, path, opset):
    # torch.onnx's defaults (eval mode, constant folding): what a user of QAT gets. They do keep
    # BatchNormalization: the QAT conv+bn module divides the conv output by the BN scale factor
    # before calling BN, so the exporter's Conv+BN fusion (which wants Conv directly followed by
    # BN) never matches. Constant folding turns the weight-side arithmetic (weight times the BN
    # scale factor, casts of the zero points) into initializers feeding QuantizeLinear.
    torch.onnx.export(model, sample, path, opset_version=opset,
                      input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                      dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
                      training=torch.onnx.TrainingMode.EVAL, do_constant_folding=True)


# ---------------------------------------------------------------------------------------------
# Reading the exported graphs back (everything in fixtures.json comes from the ONNX files, so
# the C++ tests compare against what is really in the graph, not against PyTorch's view of it).

def f32_hex(v):
    return float.hex(float(np.float32(v)))


class GraphIndex:
    def __init__(self, model):
        import onnx.numpy_helper as nh
        self.g = model.graph
        self.const = {t.name: nh.to_array(t) for t in self.g.initializer}
        for n in self.g.node:
            if n.op_type == "Constant":
                for a in n.attribute:
                    if a.name == "value":
                        self.const[n.output[0]] = nh.to_array(a.t)
        self.producer = {o: n for n in self.g.node for o in n.output}

    def value(self, name):
        """The value of a tensor computed from constants only, else None. The exporter leaves
        small constant chains behind: Identity (deduplicated initializers such as equal zero
        points) and, in the converted model, Cast(ConstantOfShape) for the int32 bias zero
        points and a Cast of int8/uint8 tensors to their own type."""
        if name in self.const:
            return self.const[name]
        n = self.producer.get(name)
        if n is None:
            return None
        args = [self.value(i) for i in n.input]
        if any(a is None for a in args):
            return None
        if n.op_type == "Identity":
            return args[0]
        if n.op_type == "Cast":
            import onnx.mapping
            return args[0].astype(onnx.mapping.TENSOR_TYPE_TO_NP_TYPE[attr(n, "to")])
        if n.op_type == "ConstantOfShape":
            import onnx.numpy_helper as nh
            fill = attr(n, "value")
            fill = nh.to_array(fill) if fill is not None else np.zeros(1, np.float32)
            return np.full(tuple(args[0]), fill.reshape(()), dtype=fill.dtype)
        return None

    def is_const(self, name):
        """True for initializers, Constant outputs and anything computed from constants only."""
        if self.value(name) is not None:
            return True
        n = self.producer.get(name)
        return n is not None and all(self.is_const(i) for i in n.input if i)


def attr(node, name, default=None):
    import onnx.helper
    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


def qparams(gi, node):
    scale = gi.value(node.input[1])
    zp = gi.value(node.input[2]) if len(node.input) > 2 and node.input[2] else None
    if scale is None or (len(node.input) > 2 and node.input[2] and zp is None):
        raise RuntimeError(f"{node.name}: scale or zero point is not a constant")
    return scale, zp, attr(node, "axis")


def run_graph(path, x):
    """Evaluates an exported graph with ONNX semantics, written with torch ops in float32.

    onnxruntime is not installed here, and the fixtures should say how closely the ONNX files (not
    just the PyTorch modules) reproduce the expected logits: QuantizeLinear divides by the
    scale where PyTorch multiplies by its reciprocal, and the converted model's int32 biases
    were rounded by the exporter, so a few values may move by one quantization step. Covers
    exactly the ops these exports contain."""
    import onnx
    import onnx.numpy_helper as nh
    g = onnx.load(path).graph
    gi = GraphIndex(onnx.load(path))
    env = {k: torch.from_numpy(np.array(v)) for k, v in gi.const.items()}
    env[g.input[0].name] = x
    int_types = {torch.uint8: (0, 255), torch.int8: (-128, 127), torch.int32: (-2**31, 2**31 - 1)}

    def along(t, axis, rank):  # per-axis parameter shaped to broadcast along `axis`
        if t.numel() == 1:
            return t.reshape(())
        shape = [1] * rank
        shape[axis] = -1
        return t.reshape(shape)

    for n in g.node:
        a = [env[i] if i else None for i in n.input]
        op = n.op_type
        if op == "Constant":
            out = torch.from_numpy(np.array(nh.to_array(attr(n, "value"))))
        elif op == "Identity":
            out = a[0]
        elif op in ("Add", "Sub", "Mul", "Div"):
            out = {"Add": torch.add, "Sub": torch.sub, "Mul": torch.mul, "Div": torch.div}[op](a[0], a[1])
        elif op == "Cast":
            out = torch.from_numpy(a[0].numpy().astype(onnx.mapping.TENSOR_TYPE_TO_NP_TYPE[attr(n, "to")]))
        elif op == "ConstantOfShape":
            fill = torch.from_numpy(np.array(nh.to_array(attr(n, "value"))))
            out = torch.full(tuple(a[0].tolist()), fill.item(), dtype=fill.dtype)
        elif op == "QuantizeLinear":
            axis = attr(n, "axis", 1)
            zp = a[2] if len(a) > 2 and a[2] is not None else torch.zeros((), dtype=torch.uint8)
            lo, hi = int_types[zp.dtype]
            q = torch.round(a[0] / along(a[1], axis, a[0].dim())) + along(zp, axis, a[0].dim()).float()
            out = q.clamp(lo, hi).to(zp.dtype)
        elif op == "DequantizeLinear":
            axis = attr(n, "axis", 1)
            zp = a[2] if len(a) > 2 and a[2] is not None else torch.zeros((), dtype=a[0].dtype)
            d = a[0].to(torch.int64) - along(zp, axis, a[0].dim()).to(torch.int64)
            out = d.float() * along(a[1], axis, a[0].dim())
        elif op == "Conv":
            pads = attr(n, "pads", [0, 0, 0, 0])
            assert pads[:2] == pads[2:]
            out = F.conv2d(a[0], a[1], a[2] if len(a) > 2 else None, stride=attr(n, "strides", [1, 1]),
                           padding=pads[:2], dilation=attr(n, "dilations", [1, 1]), groups=attr(n, "group", 1))
        elif op == "BatchNormalization":
            out = F.batch_norm(a[0], a[3], a[4], a[1], a[2], False, 0.0, attr(n, "epsilon", 1e-5))
        elif op == "Relu":
            out = torch.relu(a[0])
        elif op == "MaxPool":
            pads = attr(n, "pads", [0, 0, 0, 0])
            assert pads[:2] == pads[2:] and not attr(n, "ceil_mode", 0)
            out = F.max_pool2d(a[0], attr(n, "kernel_shape"), attr(n, "strides"), pads[:2])
        elif op == "Flatten":
            out = torch.flatten(a[0], attr(n, "axis", 1))
        elif op == "Gemm":
            assert attr(n, "alpha", 1.0) == 1.0 and attr(n, "beta", 1.0) == 1.0 and not attr(n, "transA", 0)
            w = a[1].t() if attr(n, "transB", 0) else a[1]
            out = a[0] @ w + (a[2] if len(a) > 2 else 0)
        else:
            raise NotImplementedError(f"run_graph: {op}")
        env[n.output[0]] = out
    return env[g.output[0].name]


def describe_graph(path, expected_output_name):
    import onnx
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    gi = GraphIndex(model)
    hist = {}
    for n in gi.g.node:
        hist[n.op_type] = hist.get(n.op_type, 0) + 1

    consumers = {}
    for n in gi.g.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)

    def weight_entry(qnode, dqnode, q, scale, zp, axis):
        """Per-channel statistics of a stored or computed integer weight (or int32 bias)."""
        used_by = [c.name for c in consumers.get(dqnode.output[0], [])]
        e = {"quantize_node": qnode.name if qnode is not None else None,
             "dequantize_node": dqnode.name, "used_by": used_by, "axis": axis,
             "channels": int(scale.size), "dtype": str(q.dtype),
             "zero_points_all_zero": bool(zp is None or not np.any(zp)),
             "min": int(q.min()), "max": int(q.max())}
        if q.dtype == np.int8:
            per_channel = np.moveaxis(q.astype(np.int32), axis if axis is not None else 1, 0)
            lo = per_channel.reshape(len(per_channel), -1).min(1)
            hi = per_channel.reshape(len(per_channel), -1).max(1)
            e["channels_reaching_minus128"] = int((lo == -128).sum())
            e["channels_reaching_127"] = int((hi == 127).sum())
            e["channels_with_max_abs_below_127"] = int((np.maximum(-lo, hi) < 127).sum())
        e["scales_hex"] = [f32_hex(v) for v in scale.reshape(-1)]
        return e

    activations, weights = {}, {}
    for n in gi.g.node:
        if n.op_type != "QuantizeLinear":
            continue
        scale, zp, axis = qparams(gi, n)
        w = gi.value(n.input[0])
        if w is not None:
            # Fake-quant graph: a float weight quantized in the graph. Quantize it here the way
            # QuantizeLinear does (divide, round half to even, saturate) to report its range.
            ax = axis if axis is not None else 1
            shape = [1] * w.ndim
            shape[ax] = -1
            sc = scale.reshape(shape) if scale.size > 1 else scale.reshape(())
            z = zp.reshape(shape).astype(np.float32) if zp.size > 1 else zp.reshape(()).astype(np.float32)
            info = np.iinfo(zp.dtype)
            q = np.clip(np.round(w.astype(np.float32) / sc) + z, info.min, info.max).astype(zp.dtype)
            dq = [c for c in consumers.get(n.output[0], []) if c.op_type == "DequantizeLinear"]
            weights[n.input[0]] = weight_entry(n, dq[0], q, scale, zp, axis)
            continue
        assert scale.size == 1, f"{path}: per-axis activation quantization in {n.name}"
        s = float(scale.reshape(()))
        activations[n.input[0]] = {
            "quantize_node": n.name, "quantized": n.output[0],
            "scale": s, "scale_hex": f32_hex(s),
            "zero_point": int(zp.reshape(())) if zp is not None else 0,
            "dtype": str(zp.dtype) if zp is not None else "uint8",
        }
    # Converted graph: DequantizeLinear of a stored int8 weight or int32 bias.
    for n in gi.g.node:
        if n.op_type == "DequantizeLinear" and gi.value(n.input[0]) is not None:
            scale, zp, axis = qparams(gi, n)
            weights[n.input[0]] = weight_entry(None, n, gi.value(n.input[0]), scale, zp, axis)

    # Output quantization: walk back from the graph output through DequantizeLinear to the last
    # QuantizeLinear that feeds it.
    out_q = None
    name = gi.g.output[0].name
    assert name == expected_output_name
    n = gi.producer.get(name)
    while n is not None and out_q is None:
        if n.op_type == "QuantizeLinear":
            scale, zp, _ = qparams(gi, n)
            s = float(scale.reshape(()))
            out_q = {"quantize_node": n.name, "scale": s, "scale_hex": f32_hex(s),
                     "zero_point": int(zp.reshape(())), "dtype": str(zp.dtype)}
        elif n.input:
            n = gi.producer.get(n.input[0])
        else:
            n = None

    nodes = [{"op": n.op_type, "name": n.name, "inputs": list(n.input), "outputs": list(n.output)}
             for n in gi.g.node if n.op_type != "Constant"]
    return {
        "bytes": os.path.getsize(path),
        "sha256": hashlib.sha256(open(path, "rb").read()).hexdigest(),
        "op_histogram": dict(sorted(hist.items())),
        "output_quantization": out_q,
        "activation_quantization": activations,
        "weight_quantization": weights,
        "nodes": nodes,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=DEFAULT_OUT_DIR, help="output folder (default %(default)s)")
    ap.add_argument("--data-dir", default=DEFAULT_DATA_DIR)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--float-lr", type=float, default=3e-3)
    ap.add_argument("--qat-lr", type=float, default=1e-3)
    ap.add_argument("--qat-steps", type=int, default=300, help="QAT mini-batches (a third of an epoch)")
    ap.add_argument("--float-steps", type=int, default=0, help="float mini-batches (0: one epoch)")
    args = ap.parse_args()

    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    torch.use_deterministic_algorithms(True)
    # The converted model runs on the quantized engine matching the qconfig.
    torch.backends.quantized.engine = "onednn"

    t_start = time.time()
    x_train, y_train = load_split(args.data_dir, "train")
    x_test, y_test = load_split(args.data_dir, "test")
    gen = torch.Generator().manual_seed(args.seed)

    # 1. Float training, one epoch.
    model = QATFashionCNN()
    n_params = sum(p.numel() for p in model.parameters())
    steps = args.float_steps or (len(x_train) + args.batch_size - 1) // args.batch_size
    opt = torch.optim.Adam(model.parameters(), lr=args.float_lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.float_lr, total_steps=steps)
    train(model, opt, sched, x_train, y_train, steps, args.batch_size, gen, "float")
    float_acc, float_logits = evaluate(model, x_test, y_test)
    print(f"float: test top-1 {float_acc * 100:.2f}% ({n_params} parameters)", flush=True)

    # 2. QAT: fuse in train mode (conv+bn stay trainable as ConvBn*2d), attach fake quantization.
    model.train()
    model.qconfig = tq.get_default_qat_qconfig("onednn", version=0)
    model = tq.fuse_modules_qat(model, FUSE_GROUPS)
    tq.prepare_qat(model, inplace=True)
    opt = torch.optim.SGD(model.parameters(), lr=args.qat_lr, momentum=0.9)
    train(model, opt, None, x_train, y_train, args.qat_steps, args.batch_size, gen, "qat")

    # 3. Freeze: scales and BN statistics stop moving (see the module docstring).
    model.apply(tq.disable_observer)
    model.apply(torch.nn.intrinsic.qat.freeze_bn_stats)
    model.eval()

    int8 = tq.convert(copy.deepcopy(model).eval(), inplace=False)
    int8.eval()

    fq_acc, fq_logits = evaluate(model, x_test, y_test)
    q_acc, q_logits = evaluate(int8, x_test, y_test)
    print(f"fake-quant: test top-1 {fq_acc * 100:.2f}%; int8: {q_acc * 100:.2f}%", flush=True)

    def top1_first(logits):
        return (logits[:N_EXPECTED].argmax(1) == y_test[:N_EXPECTED]).float().mean().item()

    # evaluate() ran the first N_EXPECTED images as one batch, as a test would.
    fq_expected = fq_logits[:N_EXPECTED].numpy().astype(np.float32)
    q_expected = q_logits[:N_EXPECTED].numpy().astype(np.float32)

    # 4. Export.
    int8_export = unfuse_linear_relu(int8)
    with torch.no_grad():
        _, unfused_logits = evaluate(int8_export, x_test, y_test)
    assert torch.equal(unfused_logits, q_logits), "unfused fc1 changed the int8 outputs"
    os.makedirs(args.out, exist_ok=True)
    sample = x_test[:2]
    files = {}
    for kind, m in (("fakequant", model), ("int8", int8_export)):
        for opset in OPSETS:
            name = f"fmnist_qat_{kind}_opset{opset}.onnx"
            export(m, sample, os.path.join(args.out, name), opset)
            files[name] = {"kind": kind, "opset": opset}
    np.save(os.path.join(args.out, "expected_fakequant_logits.npy"), fq_expected)
    np.save(os.path.join(args.out, "expected_int8_logits.npy"), q_expected)

    for name, info in files.items():
        path = os.path.join(args.out, name)
        info.update(describe_graph(path, OUTPUT_NAME))
        ref = fq_expected if info["kind"] == "fakequant" else q_expected
        with torch.no_grad():
            got = run_graph(path, x_test[:N_EXPECTED]).numpy()
        diff = np.abs(got - ref)
        step = info["output_quantization"]["scale"]
        info["graph_check"] = {
            "how": "the ONNX graph evaluated with ONNX semantics by run_graph() in this script, "
                   "compared with the expected logits",
            "max_abs_diff": float(diff.max()),
            "max_diff_in_output_steps": float(np.round(diff.max() / step, 3)),
            "values_differing": int((diff > 0).sum()),
            "top1_agreement": float((got.argmax(1) == ref.argmax(1)).mean()),
        }
        print(f"{name}: {info['bytes']} bytes; graph vs expected: {info['graph_check']}", flush=True)

    # Optional cross-check with ONNX Runtime where it happens to be installed.
    try:
        import onnxruntime as ort
    except ImportError:
        ort = None
        print("onnxruntime not importable: cross-check skipped", flush=True)
    ort_check = None
    if ort is not None:
        ort_check = {}
        for name, info in files.items():
            sess = ort.InferenceSession(os.path.join(args.out, name), providers=["CPUExecutionProvider"])
            got = sess.run(None, {INPUT_NAME: x_test[:N_EXPECTED].numpy()})[0]
            ref = fq_expected if info["kind"] == "fakequant" else q_expected
            ort_check[name] = {"max_abs_diff": float(np.abs(got - ref).max()),
                               "top1_agreement": float((got.argmax(1) == ref.argmax(1)).mean())}
        print(f"onnxruntime: {ort_check}", flush=True)

    seconds = time.time() - t_start
    meta = {
        "generator": "tools/make_qat_fixtures.py",
        "torch_version": torch.__version__,
        "quantized_engine": torch.backends.quantized.engine,
        "qconfig": "torch.ao.quantization.get_default_qat_qconfig('onednn', version=0)",
        "seeds": {"torch": args.seed, "numpy": args.seed, "data_permutation": args.seed},
        "threads": 1,
        "opsets": list(OPSETS),
        "dataset": "fashion-mnist",
        "input": INPUT_NAME, "input_shape": ["batch", 1, 28, 28], "input_dtype": "float32",
        "output": OUTPUT_NAME, "output_shape": ["batch", 10],
        "preprocessing": ("raw pixels scaled to [0,1] (uint8 / 255), NCHW; the normalisation "
                          f"(x - {MEAN}) / {STD} is inside the graph (Sub, Div) before the first "
                          "QuantizeLinear"),
        "parameters": n_params,
        "training": {"float_steps": steps, "qat_steps": args.qat_steps,
                     "batch_size": args.batch_size,
                     "float_optimizer": f"Adam, OneCycleLR max_lr={args.float_lr}",
                     "qat_optimizer": f"SGD lr={args.qat_lr} momentum=0.9",
                     "freeze": "observers disabled and BN statistics frozen after QAT, before "
                               "evaluation and export"},
        "export": "torch.onnx.export of the eval-mode models with its defaults: TrainingMode.EVAL, "
                  "do_constant_folding=True",
        "expected": {"images": f"first {N_EXPECTED} of t10k", "dtype": "float32",
                     "shape": [N_EXPECTED, 10],
                     "expected_fakequant_logits.npy": "QAT model (fake quantization), eval mode",
                     "expected_int8_logits.npy": "torch.ao.quantization.convert of the QAT model, "
                                                 "onednn quantized kernels"},
        "top1": {
            "float": {"first_1000": round(top1_first(float_logits), 4), "all_10000": round(float_acc, 4)},
            "fakequant": {"first_1000": round(top1_first(fq_logits), 4), "all_10000": round(fq_acc, 4)},
            "int8": {"first_1000": round(top1_first(q_logits), 4), "all_10000": round(q_acc, 4)},
        },
        "expected_fakequant_vs_int8": {
            "values_differing": int((fq_expected != q_expected).sum()),
            "max_abs_diff": float(np.abs(fq_expected - q_expected).max()),
            "top1_agreement": float((fq_expected.argmax(1) == q_expected.argmax(1)).mean()),
        },
        "graph_notes": GRAPH_NOTES,
        "onnxruntime_check": ort_check,
        "files": files,
    }
    with open(os.path.join(args.out, "fixtures.json"), "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")
    print(f"wrote {len(files)} models, 2 .npy and fixtures.json to {args.out} in {seconds:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
