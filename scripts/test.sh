#!/usr/bin/env bash
# The README's test command: set-up (if anything is missing), build, and the
# whole GoogleTest suite through ctest; then the CUDA build (compile, link,
# and its GPU tests, which skip without a GPU); then scripts/gpu-check.sh on
# this machine's device. CI (.ci/run) runs exactly this.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
bash "$FLASHNAS_ROOT/scripts/setup.sh"
bash "$FLASHNAS_ROOT/scripts/build.sh"
start=$(now)
# A single-node Slurm cluster on localhost for the test that submits a
# generated job array for real (root only: slurmd starts jobs as their users;
# without it that test skips, saying why).
if [ "$(id -u)" = 0 ] && command -v slurmctld >/dev/null; then
  slurm_dir=$(mktemp -d /tmp/flashnas-slurm.XXXXXX)
  trap 'bash "$FLASHNAS_ROOT/scripts/slurm-local.sh" stop "$slurm_dir"' EXIT
  if conf=$(bash "$FLASHNAS_ROOT/scripts/slurm-local.sh" start "$slurm_dir"); then
    export "$conf"
    log "a local Slurm cluster runs for the tests ($conf)"
  else
    log "the local Slurm cluster did not start: the Slurm test skips"
  fi
fi
log "running tests"
# One LibTorch thread per test process (tests that need more say so, e.g.
# --threads 2): ctest runs nproc tests at once, and LibTorch would give each
# of them every core. Oversubscribed, OpenMP's waiting threads made the suite
# 2.1x slower on the 2-core VM (572 s against 267 s, the same 317 tests).
OMP_NUM_THREADS=1 ctest --test-dir "$FLASHNAS_BUILD" --output-on-failure -j "$(nproc)"
log "tests done in $(($(now) - start)) s"

# The CUDA build must keep compiling and linking here, where no GPU runs it.
# 1. The GPU machine's configuration (LibTorch plus .gpu-deps/ only, as
#    scripts/gpu-build.sh does there) is configured into build-gpu-deps/: every
#    package must be found in .gpu-deps/. Nothing is built there.
# 2. The CUDA configuration is built with this machine's packages into
#    build-cuda/, and its GPU tests run (they skip without a GPU). Only the
#    files that include the generated flashnas_cuda.h differ from build/; every
#    other object comes from ccache, filled by the CPU build above.
if command -v nvcc >/dev/null 2>&1 || [ -x /usr/local/cuda/bin/nvcc ]; then
  start=$(now)
  log "CUDA build check (FLASHNAS_CUDA=ON): .gpu-deps/ configured in build-gpu-deps/, built in build-cuda/"
  bash "$FLASHNAS_ROOT/scripts/gpu-deps.sh"
  {
    PATH="$PATH:/usr/local/cuda/bin" FLASHNAS_PYTHON="$FLASHNAS_VENV/bin/python" FLASHNAS_BUILD="$FLASHNAS_ROOT/build-gpu-deps" \
      FLASHNAS_GPU_CONFIGURE_ONLY=1 bash "$FLASHNAS_ROOT/scripts/gpu-build.sh" -DFLASHNAS_BENCH=OFF &&
      PATH="$PATH:/usr/local/cuda/bin" FLASHNAS_BUILD="$FLASHNAS_ROOT/build-cuda" \
        bash "$FLASHNAS_ROOT/scripts/build.sh" -DFLASHNAS_CUDA=ON -DFLASHNAS_BENCH=OFF
  } >"$FLASHNAS_ROOT/build-cuda.log" 2>&1 ||
    { tail -n 40 "$FLASHNAS_ROOT/build-cuda.log" >&2; die "the CUDA build failed (log: build-cuda.log)"; }
  grep -E "configured in|build done in" "$FLASHNAS_ROOT/build-cuda.log" >&2 || true
  "$FLASHNAS_ROOT/build-cuda/bin/test_cuda" --gtest_brief=1
  "$FLASHNAS_ROOT/build-cuda/bin/test_device_decode" --gtest_brief=1
  "$FLASHNAS_ROOT/build-cuda/bin/flashnas" --version
  "$FLASHNAS_ROOT/build-cuda/bin/flashnas" --version | grep -q "CUDA paths: built" ||
    die "build-cuda/bin/flashnas does not report its CUDA paths as built (flashnas_cuda.h not included where FLASHNAS_WITH_CUDA is used?)"
  log "CUDA build check done in $(($(now) - start)) s"
else
  log "no CUDA Toolkit (nvcc) on this machine: the CUDA build check is skipped"
fi

# The GPU check script, on this machine's device (the CPU unless a GPU is
# here), so that the script a GPU window runs cannot rot: the same steps with
# small sizes; its outputs go to out/gpu-check/.
start=$(now)
log "scripts/gpu-check.sh (the GPU check's steps on this machine)"
bash "$FLASHNAS_ROOT/scripts/gpu-check.sh" || die "scripts/gpu-check.sh failed (its summary is above; logs under out/gpu-check/)"
log "GPU check script done in $(($(now) - start)) s"
