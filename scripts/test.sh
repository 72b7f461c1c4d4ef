#!/usr/bin/env bash
# Builds qforge and runs the whole test suite: unit, CLI, ONNX conformance and torchvision
# model tests in the Release build, then the input-parsing tests again under
# AddressSanitizer + UndefinedBehaviorSanitizer in a second build (build-asan).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh

JOBS=$(nproc)
ctest --test-dir build --output-on-failure -j "$JOBS"

# Sanitizers: the tests that parse input (models, tensors, CLI) and the conformance suite.
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g1" -DQFORGE_SANITIZE=ON \
  -DQFORGE_CUDA=OFF >/dev/null
cmake --build build-asan --target qforge qforge_unit_tests qforge_cli_tests qforge_conformance
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -j "$JOBS" -L "unit|cli|conformance"
echo "qforge: all tests passed"
