#!/usr/bin/env python3
"""ONNX Runtime (Python package, CPU execution provider) timed with the same method as
`qforge bench` and bench/ort_bench.js: warm-up, then at least DURATION seconds and ITERATIONS
queries; median and p99 (trtexec's rule) of host wall time per query. Prints one JSON line.
For machines that have ONNX Runtime's Python package but no Node (the GPU machine).

usage: ort_bench.py MODEL BATCH THREADS [WARMUP_MS DURATION_S ITERATIONS]
"""
import json
import math
import sys
import time

import numpy as np
import onnxruntime as ort


def percentile(sorted_ms, p):
    n = len(sorted_ms)
    excluded = math.floor((100 - p) * n / 100 + 1e-9)
    return sorted_ms[min(max(n - 1 - excluded, 0), n - 1)]


def main():
    model, batch, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    warmup_ms, duration_s, iterations = (float(sys.argv[4]) if len(sys.argv) > 4 else 200,
                                         float(sys.argv[5]) if len(sys.argv) > 5 else 3,
                                         int(sys.argv[6]) if len(sys.argv) > 6 else 10)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(12345)
    feeds = {}
    for i in session.get_inputs():
        dims = [batch if k == 0 else (d if isinstance(d, int) else 1) for k, d in enumerate(i.shape)]
        feeds[i.name] = rng.uniform(-1, 1, dims).astype(np.float32)
    end = time.perf_counter() + warmup_ms / 1e3
    while time.perf_counter() < end:
        session.run(None, feeds)
    latencies = []
    start = t = time.perf_counter()
    while len(latencies) < iterations or t - start < duration_s:
        before = time.perf_counter()
        session.run(None, feeds)
        t = time.perf_counter()
        latencies.append((t - before) * 1e3)
    latencies.sort()
    n = len(latencies)
    median = latencies[(n - 1) // 2] if n % 2 else (latencies[n // 2 - 1] + latencies[n // 2]) / 2
    print(json.dumps({"runtime": "onnxruntime " + ort.__version__, "batch": batch, "queries": n,
                      "median_ms": median, "p99_ms": percentile(latencies, 99),
                      "qps": n / (t - start)}))


if __name__ == "__main__":
    main()
