#!/usr/bin/env bash
# The main job on the embedded default model (models/fashion_mnist_cnn.onnx): every precision
# this machine runs, side by side. INT8 is calibrated on 1000 Fashion-MNIST training images with
# each of the four calibrators; every row is evaluated on the 10,000 test images and timed at
# batch 1 and 32. Prints the table and writes demo-report/report.{html,md,json}.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh >/dev/null

DATA=/usr/share/datasets/fashion-mnist
MODEL=models/fashion_mnist_cnn.onnx
recorded=$(sed -n 's/.*"test_top1": *\([0-9.]*\).*/\1/p' models/fashion_mnist_cnn.json)

build/qforge inspect "$MODEL" --no-layers
echo
build/qforge bench "$MODEL" \
  --calib "$DATA/train-images-idx3-ubyte.gz" --calib-batch-size 100 --calib-batches 10 \
  --calib-method entropy,minmax,percentile,mse \
  --eval "$DATA/t10k-images-idx3-ubyte.gz" --labels "$DATA/t10k-labels-idx1-ubyte.gz" \
  --batch 1,32 --duration 1 --report demo-report
echo
echo "PyTorch recorded top-1 $(awk -v a="$recorded" 'BEGIN { printf "%.2f%%", a * 100 }') for this model at training time."
echo "Open demo-report/report.html for the charts (latency vs accuracy, throughput, latency CDF)."
