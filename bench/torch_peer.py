#!/usr/bin/env python3
"""PyTorch on the GPU as qforge's CUDA peer: the same torchvision models, timed the way users
run them fast: eager FP16 in channels-last with cuDNN benchmark mode, and optionally
torch.compile(mode="reduce-overhead") (CUDA graphs). Median of CUDA-synchronised host wall
time per batch, after warm-up. Prints one JSON object per line:
{"model", "batch", "mode", "dtype", "median_ms", "images_per_s", "torch"}.

Runs on the GPU machine (the `run` tool's device), called by bench/cuda_vs_pytorch.sh.
"""
import argparse
import json
import statistics
import time

import torch
import torchvision


def time_model(fn, x, warmup_s, duration_s, min_iters=10):
    with torch.inference_mode():
        end = time.perf_counter() + warmup_s
        while time.perf_counter() < end:
            fn(x)
        torch.cuda.synchronize()
        times = []
        start = time.perf_counter()
        while len(times) < min_iters or time.perf_counter() - start < duration_s:
            t = time.perf_counter()
            fn(x)
            torch.cuda.synchronize()
            times.append(time.perf_counter() - t)
    return 1e3 * statistics.median(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--models", nargs="+", default=["resnet50"])
    ap.add_argument("--batches", nargs="+", type=int, default=[1, 256])
    ap.add_argument("--compile", nargs="*", default=["resnet50"],
                    help="models also timed under torch.compile(mode='reduce-overhead')")
    ap.add_argument("--warmup", type=float, default=1.0)
    ap.add_argument("--duration", type=float, default=2.0)
    args = ap.parse_args()
    torch.backends.cudnn.benchmark = True
    for name in args.models:
        model = getattr(torchvision.models, name)().eval().cuda().half()
        model = model.to(memory_format=torch.channels_last)
        modes = [("eager", model)]
        if name in args.compile:
            modes.append(("compile", torch.compile(model, mode="reduce-overhead")))
        for mode, fn in modes:
            for batch in args.batches:
                x = torch.randn(batch, 3, 224, 224, device="cuda", dtype=torch.float16)
                x = x.to(memory_format=torch.channels_last)
                ms = time_model(fn, x, args.warmup, args.duration)
                print(json.dumps({"model": name, "batch": batch, "mode": mode, "dtype": "fp16",
                                  "median_ms": round(ms, 4),
                                  "images_per_s": round(1e3 * batch / ms, 1),
                                  "torch": torch.__version__}), flush=True)


if __name__ == "__main__":
    main()
