#!/usr/bin/env bash
# The README's main command: set-up (if anything is missing), build, then the
# demo. Today the demo inspects the demo architectures (flashnas arch show);
# the end-to-end demo search (profile, search, frontier, export) replaces it
# when those commands land.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
bash "$FLASHNAS_ROOT/scripts/setup.sh"
bash "$FLASHNAS_ROOT/scripts/build.sh"
flashnas="$FLASHNAS_BUILD/bin/flashnas"
log "registered operators"
"$flashnas" arch ops
for arch in demo-tiny attn-baseline-small; do
  log "flashnas arch show configs/arch/$arch.json"
  "$flashnas" arch show "$FLASHNAS_ROOT/configs/arch/$arch.json"
done
