#!/usr/bin/env bash
# The demo study's picks against hand-designed baselines (flashnas compare)
# at both of its budgets: every contender retrained under one recipe (16x the
# top rung, two seeds, the learning rate picked per contender from a grid) and
# measured on this machine in interleaved rounds. Needs the demo's study
# (bash scripts/demo.sh, steps 1-3). Writes OUT/compare.{txt,json,svg} and
# OUT/provenance.txt (command, commit, machine, start and end).
#   bash bench/compare_demo.sh [OUT=results/compare/demo-pydoc] [extra compare flags...]
# TRAIN_ONLY=1 only trains (flashnas compare --worker), so the measuring can
# wait for a quiet machine: run the script again without it to measure and report.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/env.sh"
out=$(realpath -m "${1:-$FLASHNAS_ROOT/results/compare/demo-pydoc}")
shift || true
flashnas=${FLASHNAS:-$FLASHNAS_BUILD/bin/flashnas}
db=${DB:-out/demo/flashnas.db}
study=${STUDY:-demo}
cd "$FLASHNAS_ROOT"  # the study names its data relative to the repository
[ -f "$db" ] || die "$db: no demo study; run bash scripts/demo.sh first"
mkdir -p "$out"
args=(compare --db "$db" --study "$study" --threads 2 "$@")
if [ "${TRAIN_ONLY:-0}" = 1 ]; then
  log "training the comparison's runs only (flashnas ${args[*]} --worker)"
  "$flashnas" "${args[@]}" --worker >/dev/null
  exit 0
fi
start=$(date -u +%FT%TZ)
log "flashnas ${args[*]}"
"$flashnas" "${args[@]}" --svg "$out/compare.svg" --json-out "$out/compare.json" >"$out/compare.txt"
cat "$out/compare.txt"
{
  echo "command: flashnas ${args[*]} --svg compare.svg --json-out compare.json"
  echo "commit: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . ':!results' || echo ' (with uncommitted changes)')"
  echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; $("$flashnas" --version)"
  echo "report written: $start .. $(date -u +%FT%TZ) (UTC)"
} >"$out/provenance.txt"
log "written: $out/compare.{txt,json,svg}, provenance.txt"
