#!/usr/bin/env bash
# qforge's CPU backend against ONNX Runtime's CPU execution provider, in one run on this
# machine: same models, same batch, same thread count, same measurement method (warm-up, then
# at least DURATION seconds and 10 queries; median host latency). Prints latency ratios
# qforge/ORT-FP32 per precision. Performance is measured here, never asserted in a test.
#
#   bench/cpu_vs_onnxruntime.sh                      # all four models, batch 1 and 8
#   MODELS="resnet50" BATCHES="1" DURATION=5 bench/cpu_vs_onnxruntime.sh
# On a machine that cannot build (the GPU machine, whose Xeon has AMX): carry a pack from
# scripts/device_pack.sh and point QFORGE at it; ONNX Runtime then comes from Python
# (bench/ort_bench.py) when Node is not there:
#   build/device/unpack.sh /tmp/qf && QFORGE="/tmp/qf/run.sh qforge" bench/cpu_vs_onnxruntime.sh
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${QFORGE:-}" ]; then
  scripts/build.sh >/dev/null
  QFORGE=build/qforge
fi

THREADS=${THREADS:-$(nproc)}
DURATION=${DURATION:-3}
MODELS=${MODELS:-"resnet50 resnet18 mobilenet_v2 efficientnet_b0"}
BATCHES=${BATCHES:-"1 8"}
PRECISIONS=${PRECISIONS:-}  # empty: every precision the cpu backend supports on this machine
OUT=${OUT:-build/bench}
mkdir -p "$OUT"

# ONNX Runtime from npm. --ignore-scripts: the post-install step downloads GPU extras, which
# fails here and is not needed for the CPU execution provider bundled in the package. Without
# Node, ONNX Runtime's Python package.
if command -v node >/dev/null; then
  if [ ! -d bench/node_modules/onnxruntime-node ]; then
    (cd bench && npm install --no-save --no-package-lock --ignore-scripts onnxruntime-node@1.30.0 >/dev/null)
  fi
  ort_bench() { node bench/ort_bench.js "$@"; }
else
  ort_bench() { python3 bench/ort_bench.py "$@"; }
fi

precision_flag=()
[ -n "$PRECISIONS" ] && precision_flag=(--precisions "$PRECISIONS")
rows="$OUT/rows.jsonl"
: >"$rows"
for model in $MODELS; do
  dir="build/models/${model}_op17_dyn"
  "${PYTHON:-python3}" tools/export_torchvision.py --out "$dir" --model "$model" --opset 17 --dynamic-batch >/dev/null
  for batch in $BATCHES; do
    echo "== $model batch $batch ($THREADS threads)" >&2
    ort=$(ort_bench "$dir/model.onnx" "$batch" "$THREADS" 200 "$DURATION" 10)
    $QFORGE bench "$dir/model.onnx" --backend cpu --threads "$THREADS" "${precision_flag[@]}" \
      --batch "$batch" --duration "$DURATION" --json "$OUT/${model}_b${batch}.json" >&2
    # python3's standard library only: the GPU machine has no Node, this one no ORT for Python.
    python3 - "$ort" "$OUT/${model}_b${batch}.json" "$model" >>"$rows" <<'PY'
import json, sys
ort, q = json.loads(sys.argv[1]), json.load(open(sys.argv[2]))
for r in q["results"]:
    method = f"/{r['calib_method']}" if r.get("calib_method") else ""
    print(json.dumps({"model": sys.argv[3], "batch": r["batch"], "precision": r["precision"] + method,
                      "compute": r["compute"], "qforge_ms": r["latency_ms"]["median"],
                      "ort_ms": ort["median_ms"], "ort_runtime": ort["runtime"],
                      "cpu": q["device"]["cpu"]}))
PY
  done
done

python3 - "$rows" "$THREADS" <<'PY'
import datetime, json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print(f"\nqforge cpu backend vs {rows[0]['ort_runtime']} (CPU EP, FP32) on {rows[0]['cpu']}, "
      f"{sys.argv[2]} threads, {datetime.date.today()}")
print("| model | batch | precision | qforge median ms | ORT fp32 median ms | ratio qforge/ORT |")
print("|---|---|---|---|---|---|")
for r in rows:
    print(f"| {r['model']} | {r['batch']} | {r['precision']} | {r['qforge_ms']:.2f} | "
          f"{r['ort_ms']:.2f} | {r['qforge_ms'] / r['ort_ms']:.2f} |")
print("compute per precision:", "; ".join(sorted({f"{r['precision']}: {r['compute']}" for r in rows})))
PY
