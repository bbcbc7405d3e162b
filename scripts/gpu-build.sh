#!/usr/bin/env bash
# Builds and tests flashnas with CUDA on the GPU machine, which has PyTorch
# (LibTorch), nvcc, cmake and ninja but no package registry: everything else
# comes from .gpu-deps/ (made here by scripts/gpu-deps.sh and carried along).
#   bash scripts/gpu-build.sh            # build into build-gpu/, then run ctest
#   FLASHNAS_GPU_TESTS=0 bash scripts/gpu-build.sh   # build only
#   FLASHNAS_GPU_CONFIGURE_ONLY=1 bash scripts/gpu-build.sh   # configure only (checks .gpu-deps)
# Uses the machine's own python3 (the one with torch) for the LibTorch path.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
deps="$root/.gpu-deps"
build=${FLASHNAS_BUILD:-$root/build-gpu}
[ -f "$deps/MANIFEST" ] || { echo "gpu-build: $deps is missing: run scripts/gpu-deps.sh on the development machine and carry .gpu-deps" >&2; exit 1; }
python=${FLASHNAS_PYTHON:-python3}
torch_prefix=$("$python" -c 'import torch.utils; print(torch.utils.cmake_prefix_path)') ||
  { echo "gpu-build: $python cannot import torch" >&2; exit 1; }
arch=$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
export LD_LIBRARY_PATH="$deps/usr/lib/$arch${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
start=$(date +%s)
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DFLASHNAS_CUDA=ON \
  -DCMAKE_PREFIX_PATH="$torch_prefix;$deps/usr" -DCMAKE_LIBRARY_ARCHITECTURE="$arch" \
  -DFLASHNAS_GTEST_SOURCE="$deps/src/googletest/googletest" "$@"
if [ "${FLASHNAS_GPU_CONFIGURE_ONLY:-0}" = 1 ]; then
  echo "gpu-build: configured in $(($(date +%s) - start)) s into $build (nothing built)"
  exit 0
fi
cmake --build "$build" -j "$(nproc)"
echo "gpu-build: built in $(($(date +%s) - start)) s into $build"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || echo "gpu-build: no nvidia-smi"
if [ "${FLASHNAS_GPU_TESTS:-1}" = 1 ]; then
  # Eight tests at a time, each with its share of the cores: LibTorch would
  # otherwise give every test all of them, and CPU tests such as the float64
  # gradient checks slow down many times over when threads outnumber cores.
  jobs=8
  OMP_NUM_THREADS=$(( $(nproc) / jobs > 0 ? $(nproc) / jobs : 1 )) ctest --test-dir "$build" --output-on-failure -j "$jobs"
fi
