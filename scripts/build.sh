#!/usr/bin/env bash
# Installs missing dependencies, configures (CMake, Ninja, Release) and builds qforge.
# The CLI ends up at build/qforge. Extra arguments go to CMake's configure step.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
qforge_install_deps

BUILD_DIR=${QFORGE_BUILD_DIR:-build}
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
cmake --build "$BUILD_DIR"
echo "qforge: built $BUILD_DIR/qforge"
