#!/usr/bin/env bash
# The main job on the embedded default model: evaluates the Fashion-MNIST CNN in models/ on
# the 10,000 test images with qforge and prints top-1 accuracy and timing next to the
# accuracy PyTorch recorded when the model was trained (tools/train_fashion_mnist.py).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh >/dev/null

DATA=/usr/share/datasets/fashion-mnist
MODEL=models/fashion_mnist_cnn.onnx
recorded=$(sed -n 's/.*"test_top1": *\([0-9.]*\).*/\1/p' models/fashion_mnist_cnn.json)

build/qforge inspect "$MODEL" --no-layers
echo
build/qforge eval "$MODEL" --data "$DATA/t10k-images-idx3-ubyte.gz" \
  --labels "$DATA/t10k-labels-idx1-ubyte.gz" --batch 100
echo "recorded: top-1 $(awk -v a="$recorded" 'BEGIN { printf "%.2f%%", a * 100 }') by PyTorch at training time"
