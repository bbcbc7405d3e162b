#!/usr/bin/env bash
# The README's test command: set-up (if anything is missing), build, and the
# whole GoogleTest suite through ctest. CI (.ci/run) runs exactly this.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
bash "$FLASHNAS_ROOT/scripts/setup.sh"
bash "$FLASHNAS_ROOT/scripts/build.sh"
start=$(now)
log "running tests"
ctest --test-dir "$FLASHNAS_BUILD" --output-on-failure -j "$(nproc)"
log "tests done in $(($(now) - start)) s"
