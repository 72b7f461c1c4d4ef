#!/usr/bin/env bash
# Packs qforge for the GPU machine (the `run` tool's device), so that every session runs CUDA
# code there the same way: build here, carry one compressed pack, unpack and run there.
#
# Why: the device is Ubuntu 24.04 with the NVIDIA driver, CUDA 13, cuDNN 9 and cuBLAS, but none
# of the Debian libraries qforge links (oneDNN, ONNX, protobuf, libzip, fmt, gtest ...), and it
# cannot reach a package mirror. Building there costs device time; so we build here and carry the
# binaries plus every non-system shared library `ldd` names, packed with zstd -19 (the carried
# tree is limited to 64 MiB). glibc, libstdc++/libgcc and the CUDA libraries (libcuda, cudart,
# cuDNN, cuBLAS/cuBLASLt) are NOT packed: the device has its own (newer glibc and libstdc++ run
# what Debian 12 built; the driver's libcuda must match the kernel module; cuDNN and cuBLAS are
# far too large to carry). The CUDA runtime is linked statically into qforge.
#
# Usage (here):
#   scripts/device_pack.sh [BUILD_DIR]        # default BUILD_DIR: build-cuda
#     QFORGE_PACK_BUILD=1  also (re)builds the targets first (cmake -G Ninja, -j1)
#     QFORGE_PACK_TARGETS  binaries to pack (default: "qforge qforge_unit_tests")
#   Writes BUILD_DIR/device/: qforge-device.tar.zst, unpack.sh and a zstd binary (the device's
#   image may lack the zstd CLI). BUILD_DIR is git-ignored; name BUILD_DIR/device in `carry`.
#
# On the device (the run tool's command; it starts in the repository root):
#   build-cuda/device/unpack.sh /tmp/qf && /tmp/qf/run.sh qforge_unit_tests --gtest_filter='Cuda*'
#   /tmp/qf/run.sh qforge run model.onnx --backend cuda ...
# unpack.sh extracts to the given folder and writes run.sh there; run.sh finds cuDNN and
# cuBLASLt (system paths, /usr/local/cuda, or the pip wheels of the image's Python under
# nvidia/*/lib), sets LD_LIBRARY_PATH and execs bin/<name> with the remaining arguments.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${1:-build-cuda}"
[[ "$build" = /* ]] || build="$root/$build"
targets="${QFORGE_PACK_TARGETS:-qforge qforge_unit_tests}"

if [[ "${QFORGE_PACK_BUILD:-0}" == 1 ]]; then
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release
  # shellcheck disable=SC2086
  cmake --build "$build" -j1 --target $targets
fi

out="$build/device"
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/bin" "$stage/lib" "$out"

# Libraries the device provides itself (see the header): matched on the soname.
is_system() {
  case "$1" in
    linux-vdso* | ld-linux* | libc.so* | libm.so* | libdl.so* | librt.so* | libpthread.so* | \
      libstdc++.so* | libgcc_s.so* | libcuda.so* | libcudart.so* | libcudnn*.so* | \
      libcublas*.so* | libnvidia*.so*)
      return 0 ;;
  esac
  return 1
}

for t in $targets; do
  bin="$(find "$build" -maxdepth 3 -type f -name "$t" -perm -u+x | head -n1)"
  [[ -n "$bin" ]] || { echo "device_pack: no built '$t' under $build" >&2; exit 1; }
  cp "$bin" "$stage/bin/$t"
  strip --strip-unneeded "$stage/bin/$t" 2>/dev/null || true
  # ldd lists the whole closure, so each library's own dependencies come along too.
  while read -r name path; do
    is_system "$name" && continue
    [[ -f "$path" ]] || { echo "device_pack: $t needs $name, which is not found here" >&2; exit 1; }
    [[ -e "$stage/lib/$name" ]] || cp -L "$path" "$stage/lib/$name"
  done < <(ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}')
done
strip --strip-unneeded "$stage"/lib/* 2>/dev/null || true

cat > "$stage/run.sh" <<'RUN'
#!/usr/bin/env bash
# Runs a packed qforge binary: run.sh NAME [ARGS...]
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
name="$1"; shift
dirs="$here/lib"
for lib in libcudnn.so.9 libcublasLt.so.13; do
  ldconfig -p 2>/dev/null | grep -q "$lib" && continue
  found=""
  for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib; do
    [[ -e "$d/$lib" ]] && found="$d" && break
  done
  if [[ -z "$found" ]]; then
    found="$(find /usr /opt -name "$lib" -path '*nvidia*' 2>/dev/null | head -n1 | xargs -r dirname)"
  fi
  [[ -n "$found" ]] && dirs="$dirs:$found"
done
export LD_LIBRARY_PATH="$dirs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
exec "$here/bin/$name" "$@"
RUN
chmod +x "$stage/run.sh"

tar -C "$stage" -cf - bin lib run.sh | zstd -19 -T0 -q -f -o "$out/qforge-device.tar.zst"
mkdir -p "$out/zstd"
cp "$(command -v zstd)" "$out/zstd/zstd"
cat > "$out/unpack.sh" <<'UNPACK'
#!/usr/bin/env bash
# unpack.sh DEST: extracts the pack next to this script into DEST (default /tmp/qf).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dest="${1:-/tmp/qf}"
mkdir -p "$dest"
z="$(command -v zstd || echo "$here/zstd/zstd")"
"$z" -d -q -c "$here/qforge-device.tar.zst" | tar -C "$dest" -xf -
echo "unpacked to $dest: $(ls "$dest/bin" | tr '\n' ' ')"
UNPACK
chmod +x "$out/unpack.sh" "$out/zstd/zstd"
echo "device_pack: $(du -sh "$out" | cut -f1) in $out ($(ls "$stage/lib" | wc -l) libraries)"
echo "carry: ${out#"$root"/}"
echo "run:   ${out#"$root"/}/unpack.sh /tmp/qf && /tmp/qf/run.sh qforge_unit_tests --gtest_filter='Cuda*'"
