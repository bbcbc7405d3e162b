#!/usr/bin/env bash
# The README's test command: set-up (if anything is missing), build, and the
# whole GoogleTest suite through ctest; then the CUDA build (compile, link,
# and its GPU tests, which skip without a GPU). CI (.ci/run) runs exactly this.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
bash "$FLASHNAS_ROOT/scripts/setup.sh"
bash "$FLASHNAS_ROOT/scripts/build.sh"
start=$(now)
log "running tests"
ctest --test-dir "$FLASHNAS_BUILD" --output-on-failure -j "$(nproc)"
log "tests done in $(($(now) - start)) s"

# The CUDA build must keep compiling and linking here, where no GPU runs it.
# It is built the way the GPU machine builds it (scripts/gpu-build.sh, with the
# dependencies from .gpu-deps/), into build-cuda/; then its GPU tests run, and
# skip without a GPU.
if command -v nvcc >/dev/null 2>&1 || [ -x /usr/local/cuda/bin/nvcc ]; then
  start=$(now)
  log "CUDA build check (FLASHNAS_CUDA=ON, dependencies from .gpu-deps/) in $FLASHNAS_ROOT/build-cuda"
  bash "$FLASHNAS_ROOT/scripts/gpu-deps.sh"
  PATH="$PATH:/usr/local/cuda/bin" FLASHNAS_PYTHON="$FLASHNAS_VENV/bin/python" FLASHNAS_BUILD="$FLASHNAS_ROOT/build-cuda" \
    FLASHNAS_GPU_TESTS=0 bash "$FLASHNAS_ROOT/scripts/gpu-build.sh" -DFLASHNAS_BENCH=OFF >"$FLASHNAS_ROOT/build-cuda.log" 2>&1 ||
    { tail -n 40 "$FLASHNAS_ROOT/build-cuda.log" >&2; die "the CUDA build failed (log: build-cuda.log)"; }
  LD_LIBRARY_PATH="$FLASHNAS_ROOT/.gpu-deps/usr/lib/$(gcc -print-multiarch)" "$FLASHNAS_ROOT/build-cuda/bin/test_cuda" --gtest_brief=1
  LD_LIBRARY_PATH="$FLASHNAS_ROOT/.gpu-deps/usr/lib/$(gcc -print-multiarch)" "$FLASHNAS_ROOT/build-cuda/bin/flashnas" --version
  log "CUDA build check done in $(($(now) - start)) s"
else
  log "no CUDA Toolkit (nvcc) on this machine: the CUDA build check is skipped"
fi
