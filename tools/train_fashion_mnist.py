#!/usr/bin/python3
"""Trains qforge's embedded default model: a small CNN on Fashion-MNIST, exported to ONNX.

Run once by a developer; the outputs are committed and never needed at build or test time:

    /usr/bin/python3 tools/train_fashion_mnist.py            # writes models/fashion_mnist_cnn.{onnx,json}

The model takes RAW pixels: float32 N x 1 x 28 x 28 with values in [0, 1] (uint8 / 255). The
dataset normalisation (x - 0.2860) / 0.3530 is part of the ONNX graph (a Sub and a Div node at
its start), so a data loader only has to scale bytes to [0, 1]. The batch dimension is dynamic
and named "batch".

BatchNormalization stays as real nodes (the graph exercises qforge's BN import and Conv+BN
folding): the model is exported in eval() mode with TrainingMode.PRESERVE and constant folding
off. TrainingMode.EVAL would not keep them: torch.onnx then runs its "eval peephole", which
folds every BatchNormalization into the preceding Conv.

Training is deterministic (fixed seeds, one thread, deterministic algorithms): the same torch
version on the same CPU reproduces the same weights.
"""

import argparse
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from fashion_mnist_data import DEFAULT_DATA_DIR, MEAN, STD, Normalize, load_split

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class FashionCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.normalize = Normalize(MEAN, STD)
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(32)
        self.conv3 = nn.Conv2d(32, 64, 3, padding=1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(64 * 7 * 7, 10)

    def forward(self, x):
        x = self.normalize(x)
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)  # 16 x 14 x 14
        x = F.max_pool2d(F.relu(self.bn2(self.conv2(x))), 2)  # 32 x 7 x 7
        x = F.relu(self.conv3(x))                             # 64 x 7 x 7
        return self.fc(self.flatten(x))                       # 10 logits


def evaluate(model, x, y, batch=1000):
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), batch):
            correct += (model(x[i:i + batch]).argmax(1) == y[i:i + batch]).sum().item()
    return correct / len(x)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default=DEFAULT_DATA_DIR)
    ap.add_argument("--out-dir", default=os.path.join(REPO_ROOT, "models"))
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    torch.use_deterministic_algorithms(True)

    t_start = time.time()
    x_train, y_train = load_split(args.data_dir, "train")
    x_test, y_test = load_split(args.data_dir, "test")

    model = FashionCNN()
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    steps_per_epoch = (len(x_train) + args.batch_size - 1) // args.batch_size
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, epochs=args.epochs,
                                                steps_per_epoch=steps_per_epoch)
    gen = torch.Generator().manual_seed(args.seed)

    for epoch in range(args.epochs):
        model.train()
        t_epoch = time.time()
        perm = torch.randperm(len(x_train), generator=gen)
        total_loss = 0.0
        for i in range(0, len(x_train), args.batch_size):
            idx = perm[i:i + args.batch_size]
            loss = F.cross_entropy(model(x_train[idx]), y_train[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total_loss += loss.item() * len(idx)
        acc = evaluate(model, x_test, y_test)
        print(f"epoch {epoch + 1}/{args.epochs}: train loss {total_loss / len(x_train):.4f}, "
              f"test top-1 {acc * 100:.2f}%, {time.time() - t_epoch:.0f} s", flush=True)

    train_seconds = time.time() - t_start
    model.eval()
    test_top1 = evaluate(model, x_test, y_test)

    os.makedirs(args.out_dir, exist_ok=True)
    onnx_path = os.path.join(args.out_dir, "fashion_mnist_cnn.onnx")
    json_path = os.path.join(args.out_dir, "fashion_mnist_cnn.json")
    input_name, output_name = "input", "logits"
    torch.onnx.export(model, x_test[:1], onnx_path, opset_version=13,
                      input_names=[input_name], output_names=[output_name],
                      dynamic_axes={input_name: {0: "batch"}, output_name: {0: "batch"}},
                      training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=False)

    import onnx  # only needed for the check
    m = onnx.load(onnx_path)
    onnx.checker.check_model(m)
    ops = sorted({n.op_type for n in m.graph.node})

    meta = {
        "dataset": "fashion-mnist",
        "input": input_name,
        "input_shape": ["batch", 1, 28, 28],
        "input_dtype": "float32",
        "output": output_name,
        "output_shape": ["batch", 10],
        "preprocessing": ("raw pixels scaled to [0,1] (uint8 / 255), NCHW; the normalisation "
                          f"(x - {MEAN}) / {STD} is inside the graph (Sub, Div)"),
        "normalization_in_graph": {"mean": MEAN, "std": STD},
        "labels": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"],
        "test_top1": round(test_top1, 4),
        "test_images": len(x_test),
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "optimizer": f"Adam, OneCycleLR max_lr={args.lr}",
        "seed": args.seed,
        "train_seconds": round(train_seconds, 1),
        "opset": 13,
        "onnx_ops": ops,
        "export": "torch.onnx.export of the eval() model, TrainingMode.PRESERVE, "
                  "do_constant_folding=False (BatchNormalization kept as nodes)",
        "torch_version": torch.__version__,
        "onnx_bytes": os.path.getsize(onnx_path),
    }
    with open(json_path, "w") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")
    print(f"test top-1 {test_top1 * 100:.2f}%, training {train_seconds:.0f} s; "
          f"wrote {onnx_path} ({meta['onnx_bytes']} bytes), {json_path}; ops: {', '.join(ops)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
