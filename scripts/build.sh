#!/usr/bin/env bash
# Configures and builds flashnas (Release, Ninja, ccache) into ./build.
# Extra arguments go to CMake, e.g. scripts/build.sh -DFLASHNAS_CUDA=ON.
# FLASHNAS_TARGETS="flashnas" builds only those targets (the demo needs only
# the binary; the test command builds everything).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

prefix=$("$FLASHNAS_VENV/bin/python" -c 'import torch.utils; print(torch.utils.cmake_prefix_path)' 2>/dev/null) ||
  die "LibTorch venv missing at $FLASHNAS_VENV: run scripts/setup.sh first"
start=$(now)
mkdir -p "$FLASHNAS_BUILD"
cmake -S "$FLASHNAS_ROOT" -B "$FLASHNAS_BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$prefix" -DFLASHNAS_TEST_PYTHON="$FLASHNAS_VENV/bin/python" "$@" >"$FLASHNAS_BUILD/configure.log" 2>&1 ||
  { cat "$FLASHNAS_BUILD/configure.log" >&2; die "CMake configure failed"; }
targets=()
for t in ${FLASHNAS_TARGETS:-}; do targets+=(--target "$t"); done
log "building ${FLASHNAS_TARGETS:-every target} in $FLASHNAS_BUILD ($(nproc) jobs)"
cmake --build "$FLASHNAS_BUILD" -j "$(nproc)" "${targets[@]}"
log "build done in $(($(now) - start)) s"
