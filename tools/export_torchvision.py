#!/usr/bin/python3
"""Exports a torchvision model to ONNX together with an input and PyTorch's output for it.

Used by the model tests (tests/models): ctest runs it at test time and caches the result in the
build tree. Writes into --out DIR:

    model.onnx     the exported model (torch.onnx.export, default settings unless --keep-bn)
    input.npy      float32 N(0,1) input, 1x3x224x224 (2x3x224x224 with --dynamic-batch), seed 0
    expected.npy   PyTorch's float32 output for input.npy
    export.json    what was exported and how (written last: it marks the directory complete)

If DIR already holds all four files and export.json records the same arguments and the same
version of this script, nothing is done (the cache). Files are written under temporary names
and renamed, so an interrupted export never leaves a half-written cache behind.

Weights are random (torch.manual_seed(0), weights=None), and BatchNorm layers get random running
statistics and affine parameters (running_mean ~ N(0, 0.1), running_var ~ U(0.5, 2),
weight ~ U(0.5, 1.5), bias ~ N(0, 0.1)) so that BN folding and the numerics are exercised as with
a trained network rather than with the identity BN of a fresh model.

Examples:
    /usr/bin/python3 tools/export_torchvision.py --out /tmp/r18 --model resnet18 --opset 13
    /usr/bin/python3 tools/export_torchvision.py --out /tmp/mb2 --model mobilenet_v2 --opset 17 --dynamic-batch
"""

import argparse
import hashlib
import json
import os
import sys
import time

MISSING_TORCH = (
    "error: {what} is not importable by {python}: {err}\n"
    "The model tests need Debian's PyTorch: apt-get install python3-torch python3-torchvision "
    "python3-numpy (scripts/build.sh installs them), or point CMake's QFORGE_PYTHON at a Python "
    "that has torch and torchvision.")

# Models the tests use; any other torchvision classification model name also works.
KNOWN_MODELS = ["resnet18", "resnet50", "mobilenet_v2", "efficientnet_b0", "shufflenet_v2_x0_5",
                "squeezenet1_1", "googlenet"]

FILES = ("model.onnx", "input.npy", "expected.npy", "export.json")


def script_digest():
    with open(os.path.abspath(__file__), "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()[:16]


def cache_is_complete(out_dir, stamp):
    if not all(os.path.isfile(os.path.join(out_dir, f)) for f in FILES):
        return False
    try:
        with open(os.path.join(out_dir, "export.json")) as f:
            old = json.load(f)
    except (OSError, ValueError):
        return False
    return all(old.get(k) == v for k, v in stamp.items())


def build_model(torch, torchvision, name):
    ctor = getattr(torchvision.models, name, None)
    if ctor is None or not callable(ctor):
        raise SystemExit(f"error: torchvision {torchvision.__version__} has no model '{name}'")
    kwargs = {"weights": None}
    if name == "googlenet":
        kwargs.update(aux_logits=False, init_weights=True)
    torch.manual_seed(0)
    model = ctor(**kwargs)

    # Give every BatchNorm realistic, non-trivial statistics and affine parameters.
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                c = m.num_features
                m.running_mean.copy_(torch.randn(c, generator=gen) * 0.1)
                m.running_var.copy_(torch.rand(c, generator=gen) * 1.5 + 0.5)
                if m.affine:
                    m.weight.copy_(torch.rand(c, generator=gen) + 0.5)
                    m.bias.copy_(torch.randn(c, generator=gen) * 0.1)
    return model.eval()


def write_atomically(path, write):
    tmp = path + ".tmp"
    write(tmp)
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="output directory (created if missing)")
    ap.add_argument("--model", required=True, help="torchvision model name, e.g. " + ", ".join(KNOWN_MODELS))
    ap.add_argument("--opset", type=int, default=13, help="ONNX opset (13 and 17 are tested)")
    ap.add_argument("--dynamic-batch", action="store_true",
                    help='export with a dynamic batch dimension named "batch"; input batch 2')
    ap.add_argument("--keep-bn", action="store_true",
                    help="keep BatchNormalization nodes (TrainingMode.PRESERVE, no constant folding); "
                         "by default torch.onnx folds BN into the preceding Conv")
    ap.add_argument("--force", action="store_true", help="export even if the cache is complete")
    args = ap.parse_args()

    stamp = {"model": args.model, "opset": args.opset, "dynamic_batch": args.dynamic_batch,
             "keep_bn": args.keep_bn, "script": script_digest()}
    if not args.force and cache_is_complete(args.out, stamp):
        print(f"{args.out}: up to date, nothing to do")
        return 0

    try:
        import numpy as np
    except ImportError as e:
        print(MISSING_TORCH.format(what="numpy", python=sys.executable, err=e), file=sys.stderr)
        return 2
    try:
        import torch
        import torchvision
    except ImportError as e:
        print(MISSING_TORCH.format(what="torch/torchvision", python=sys.executable, err=e), file=sys.stderr)
        return 2

    t0 = time.time()
    torch.set_num_threads(1)
    os.makedirs(args.out, exist_ok=True)
    # A stale stamp must not vouch for files that are about to be replaced.
    if os.path.exists(os.path.join(args.out, "export.json")):
        os.remove(os.path.join(args.out, "export.json"))

    model = build_model(torch, torchvision, args.model)
    batch = 2 if args.dynamic_batch else 1
    x = np.random.default_rng(0).standard_normal((batch, 3, 224, 224), dtype=np.float32)
    with torch.no_grad():
        expected = model(torch.from_numpy(x))
    if isinstance(expected, (tuple, list)):  # e.g. GoogLeNetOutputs when aux heads are on
        expected = expected[0]
    expected = expected.numpy().astype(np.float32)
    if not np.isfinite(expected).all():
        raise SystemExit(f"error: {args.model}: PyTorch output is not finite")

    input_name, output_name = "input", "output"
    dynamic_axes = {input_name: {0: "batch"}, output_name: {0: "batch"}} if args.dynamic_batch else None
    export_kwargs = {}
    # PyTorch 2.x grew a second (dynamo) exporter and made it the default later on; the
    # TorchScript exporter is the one whose output the tests were written against.
    import inspect
    if "dynamo" in inspect.signature(torch.onnx.export).parameters:
        export_kwargs["dynamo"] = False
    if args.keep_bn:
        export_kwargs.update(training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=False)

    def export(path):
        torch.onnx.export(model, torch.from_numpy(x), path, opset_version=args.opset,
                          input_names=[input_name], output_names=[output_name],
                          dynamic_axes=dynamic_axes, **export_kwargs)

    write_atomically(os.path.join(args.out, "model.onnx"), export)
    # np.save appends ".npy" to names without it: save through a file object.
    for name, arr in (("input.npy", x), ("expected.npy", expected)):
        def save(path, arr=arr):
            with open(path, "wb") as f:
                np.save(f, arr)
        write_atomically(os.path.join(args.out, name), save)

    import onnx
    ops = sorted({n.op_type for n in onnx.load(os.path.join(args.out, "model.onnx")).graph.node})
    meta = dict(stamp)
    meta.update({
        "input": input_name, "input_shape": list(x.shape),
        "output": output_name, "output_shape": list(expected.shape),
        "expected_min": float(expected.min()), "expected_max": float(expected.max()),
        "onnx_ops": ops, "torch_version": torch.__version__,
        "torchvision_version": torchvision.__version__,
        "export_seconds": round(time.time() - t0, 1),
    })

    def write_meta(path):
        with open(path, "w") as f:
            json.dump(meta, f, indent=2)
            f.write("\n")
    write_atomically(os.path.join(args.out, "export.json"), write_meta)
    print(f"{args.out}: exported {args.model} opset {args.opset}"
          f"{' dynamic batch' if args.dynamic_batch else ''}{' with BN nodes' if args.keep_bn else ''}"
          f" in {meta['export_seconds']} s; output {expected.shape} in "
          f"[{meta['expected_min']:.4g}, {meta['expected_max']:.4g}]; ops: {', '.join(ops)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
