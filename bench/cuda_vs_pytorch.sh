#!/usr/bin/env bash
# qforge's cuda backend against PyTorch on the same GPU, in one run: torchvision models at
# batch 1 and 256, qforge in every precision it builds (INT8 calibrated on random N(0,1) images
# unless CALIB="--calib DATA ..." says otherwise: its speed is real, its accuracy is not), all
# timed without data transfers (the input stays on the GPU, as PyTorch's does), PyTorch eager FP16
# channels-last (cuDNN benchmark mode) and torch.compile(mode="reduce-overhead"). Prints the
# ratios and the targets of issue 7 (FP16 batch 256 at least 1.2x torch.compile's throughput;
# INT8 batch 1 <= 0.40 ms; INT8 batch 256 at least twice torch.compile's FP16 throughput).
# Performance is measured here, never asserted in a test.
#
# Runs ON the GPU machine (the `run` tool), from the repository root, after packing here:
#   scripts/device_pack.sh build           # here: packs build/qforge (+ libraries)
#   run: bench/cuda_vs_pytorch.sh          # carry ["build/device"]
#     PACK=build/device MODELS="resnet50 resnet18" BATCHES="1 256" DURATION=2 COMPILE="resnet50"
set -euo pipefail
PACK=${PACK:-build/device}
MODELS=${MODELS:-"resnet50 resnet18 mobilenet_v2 efficientnet_b0"}
BATCHES=${BATCHES:-"1 256"}
DURATION=${DURATION:-2}
COMPILE=${COMPILE:-"resnet50"}
PRECISIONS=${PRECISIONS:-"fp32,tf32,fp16,bf16,int8"}
CALIB=${CALIB:-}
OUT=${OUT:-/tmp/qforge-cuda-bench}
mkdir -p "$OUT"

"$PACK/unpack.sh" /tmp/qf >/dev/null
qforge() { /tmp/qf/run.sh qforge "$@"; }

if [[ -z "$CALIB" && "$PRECISIONS" == *int8* ]]; then
  python3 -c "import numpy as np; np.save('$OUT/calib_random.npy', np.random.default_rng(0).standard_normal((8, 3, 224, 224), dtype=np.float32))"
  CALIB="--calib $OUT/calib_random.npy --calib-method minmax"
fi

rows="$OUT/rows.jsonl"
: >"$rows"
for model in $MODELS; do
  dir="$OUT/models/$model"
  python3 tools/export_torchvision.py --out "$dir" --model "$model" --opset 17 --dynamic-batch >/dev/null
  # --no-data-transfers: the input stays on the GPU, as torch_peer.py times PyTorch.
  # shellcheck disable=SC2086
  qforge bench "$dir/model.onnx" --backend cuda --precisions "$PRECISIONS" $CALIB --no-data-transfers \
    --batch "$(echo $BATCHES | tr ' ' ,)" --duration "$DURATION" --json "$OUT/qforge_$model.json" \
    >"$OUT/qforge_$model.log" 2>&1 || { echo "qforge bench $model failed:"; tail -5 "$OUT/qforge_$model.log"; }
done
# shellcheck disable=SC2086
python3 bench/torch_peer.py --models $MODELS --batches $BATCHES --compile $COMPILE \
  --duration "$DURATION" >"$OUT/torch.jsonl"

python3 - "$OUT" $MODELS <<'PY'
import json, os, subprocess, sys
out, models = sys.argv[1], sys.argv[2:]
torch_rows = [json.loads(l) for l in open(os.path.join(out, "torch.jsonl"))]
gpu = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"],
                     capture_output=True, text=True).stdout.strip()
print(f"\nqforge cuda backend vs PyTorch {torch_rows[0]['torch']} on {gpu}")
print(f"{'model':<16} {'batch':>5} {'precision':<9} {'qforge ms':>10} {'img/s':>9} "
      f"{'torch eager fp16':>17} {'torch.compile fp16':>19} {'vs eager':>9} {'vs compile':>11}")
for m in models:
    path = os.path.join(out, f"qforge_{m}.json")
    if not os.path.exists(path):
        continue
    for r in json.load(open(path))["results"]:
        peer = {t["mode"]: t for t in torch_rows if t["model"] == m and t["batch"] == r["batch"]}
        ms = r["latency_ms"]["median"]
        eager = peer.get("eager", {}).get("median_ms")
        comp = peer.get("compile", {}).get("median_ms")
        fmt = lambda v: f"{v:.3f} ms" if v else "-"
        ratio = lambda v: f"{ms / v:.2f}x" if v else "-"
        print(f"{m:<16} {r['batch']:>5} {r['precision']:<9} {ms:>10.3f} "
              f"{1e3 * r['batch'] / ms:>9.0f} {fmt(eager):>17} {fmt(comp):>19} "
              f"{ratio(eager):>9} {ratio(comp):>11}")
print("ratios are qforge latency / PyTorch FP16 latency (below 1: qforge is faster)")
for m in models:
    path = os.path.join(out, f"qforge_{m}.json")
    if not os.path.exists(path):
        continue
    rows = {(r["precision"], r["batch"]): r for r in json.load(open(path))["results"]}
    comp = {t["batch"]: t for t in torch_rows if t["model"] == m and t["mode"] == "compile"}
    if ("int8", 1) in rows:
        ms = rows[("int8", 1)]["latency_ms"]["median"]
        print(f"{m} INT8 batch 1: {ms:.3f} ms (target <= 0.40 ms: {'met' if ms <= 0.40 else 'MISSED'})")
    if ("fp16", 256) in rows and 256 in comp:
        ours = 256e3 / rows[("fp16", 256)]["latency_ms"]["median"]
        peer = comp[256]["images_per_s"]
        print(f"{m} FP16 batch 256: {ours:.0f} img/s = {ours / peer:.2f}x torch.compile FP16 "
              f"({peer:.0f} img/s; target >= 1.2x: {'met' if ours >= 1.2 * peer else 'MISSED'})")
    if ("int8", 256) in rows and 256 in comp:
        ours = 256e3 / rows[("int8", 256)]["latency_ms"]["median"]
        peer = comp[256]["images_per_s"]
        print(f"{m} INT8 batch 256: {ours:.0f} img/s = {ours / peer:.2f}x torch.compile FP16 "
              f"({peer:.0f} img/s; target >= 2x: {'met' if ours >= 2 * peer else 'MISSED'})")
PY
