#!/usr/bin/env bash
# Installs the Debian packages qforge needs, only those missing (idempotent). Sourced by
# build.sh; uses sudo when not root.
set -euo pipefail

QFORGE_PACKAGES=(
  cmake ninja-build g++ ccache pkg-config clang-format
  libonnx-dev libprotobuf-dev zlib1g-dev libfmt-dev libcli11-dev nlohmann-json3-dev
  libgtest-dev libgmock-dev libdnnl-dev libzip-dev libstb-dev chromium zstd
  libonnx-testdata dataset-fashion-mnist
  python3-torch python3-torchvision python3-numpy python3-onnx
)

qforge_install_deps() {
  local missing=()
  for p in "${QFORGE_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "qforge: installing ${missing[*]}" >&2
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
