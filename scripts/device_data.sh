#!/usr/bin/env bash
# Prepares the Fashion-MNIST files the GPU machine (the `run` tool's device) needs for
# CudaAccuracyTest and for GPU accuracy rows of `qforge bench`: that machine has no
# /usr/share/datasets. Writes BUILD_DIR/device-data/ (git-ignored; name it in `carry`): the
# 10,000 test images and labels as they are, and the first 1000 training images under the
# training file's own name (calibration reads only those: 10 batches of 100).
#
# Usage (here):  scripts/device_data.sh [BUILD_DIR]     # default BUILD_DIR: build
# On the device: QFORGE_FASHION_MNIST_DIR=$PWD/build/device-data \
#                  /tmp/qf/run.sh qforge_unit_tests --gtest_filter='CudaAccuracy*'
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${1:-build}"
[[ "$build" = /* ]] || build="$root/$build"
src=/usr/share/datasets/fashion-mnist
out="$build/device-data"
mkdir -p "$out"
cp "$src/t10k-images-idx3-ubyte.gz" "$src/t10k-labels-idx1-ubyte.gz" "$out/"
python3 - "$src/train-images-idx3-ubyte.gz" "$out/train-images-idx3-ubyte.gz" <<'PY'
import gzip, sys
data = gzip.open(sys.argv[1]).read()
count, pixels = 1000, 28 * 28
header = bytearray(data[:16])
header[4:8] = count.to_bytes(4, "big")  # IDX: magic, then the number of images (big-endian)
with gzip.open(sys.argv[2], "wb") as f:
    f.write(bytes(header) + data[16:16 + count * pixels])
PY
echo "device_data: $(du -sh "$out" | cut -f1) in $out (carry: ${out#"$root"/})"
