#!/usr/bin/env bash
# The README's main command: set-up (if anything is missing), build, then the
# demo of what flashnas does today, on this CPU, with outputs under out/demo/:
#   1. the operators and the demo/reference architectures (arch ops, arch show)
#   2. the demo corpus (Debian's Python documentation) as a token file
#   3. a short weight-normalized training run of the demo hybrid
#   4. a latency table for it (profile), the prediction (latency) and the
#      end-to-end measurement (bench) of an agent-call-like workload
# The evolutionary search (search, frontier, export) replaces steps 3-4 when it lands.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
bash "$FLASHNAS_ROOT/scripts/setup.sh"
bash "$FLASHNAS_ROOT/scripts/build.sh"
flashnas="$FLASHNAS_BUILD/bin/flashnas"
out="$FLASHNAS_ROOT/out/demo"
mkdir -p "$out"
arch="$FLASHNAS_ROOT/configs/arch/demo-hybrid.json"
workload="batch=1,prompt=128,generate=64"

log "1/4 operators and architectures"
"$flashnas" arch ops
"$flashnas" arch show "$arch"
"$flashnas" arch show "$FLASHNAS_ROOT/configs/arch/nemotron-flash-1b.json" --context 8192 --dtype bfloat16 | tail -4

log "2/4 demo corpus -> $out/pydoc.tokens"
corpus=$(ls -d /usr/share/doc/python3*/html/_sources 2>/dev/null | head -n 1)
[ -n "$corpus" ] || die "the demo corpus (python3-doc) is missing: run scripts/setup.sh"
"$flashnas" data prepare --input "$corpus" --out "$out/pydoc.tokens"
"$flashnas" data info "$out/pydoc.tokens"

log "3/4 short training (250k tokens) -> $out/train"
rm -rf "$out/train"
"$flashnas" train --arch "$arch" --data "$out/pydoc.tokens" --tokens 250000 --eval-interval 20 --out "$out/train"

log "4/4 latency table, prediction and measurement for $workload -> $out/lut.db"
"$flashnas" profile --arch "$arch" --workload "$workload" --db "$out/lut.db" --threads 2 2>/dev/null
"$flashnas" latency --db "$out/lut.db" --arch "$arch" --workload "$workload" --threads 2 | grep -E "^(predicted|interpolated)"
"$flashnas" bench --arch "$arch" --workload "$workload" --threads 2
