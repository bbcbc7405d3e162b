#!/usr/bin/env bash
# The README's main command: set-up (if anything is missing), build, then the
# whole flashnas flow on this CPU, with outputs under out/demo/:
#   1. the demo corpus (Debian's Python documentation) as a token file
#   2. profile: a latency table for every operator of configs/demo.toml's
#      space at its widths and budgets, in interleaved rounds with 40 fit
#      and 20 held-out architectures measured end to end, ending with a
#      verdict per budget
#   3. search: the surrogate-guided search over the space against its two
#      budgets, candidates short-trained at three rungs with successive
#      halving (every trial in out/demo/flashnas.db)
#   4. frontier: the loss-latency frontier per budget, table and SVG
#   5. export: the best trial, trained longer, as a model folder with its
#      predicted and measured latency; then a few generated tokens from it
# Safe to rerun: finished steps are resumed or skipped (the study is resumed,
# the LUT keeps its entries); the export is redone.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
bash "$FLASHNAS_ROOT/scripts/setup.sh"
FLASHNAS_TARGETS=flashnas bash "$FLASHNAS_ROOT/scripts/build.sh"  # the binary only: the tests build in scripts/test.sh
flashnas="$FLASHNAS_BUILD/bin/flashnas"
cd "$FLASHNAS_ROOT"  # configs/demo.toml names its data relative to the repository
out=out/demo
mkdir -p "$out"
config=configs/demo.toml
db="$out/flashnas.db"
start=$(now)

log "1/5 demo corpus -> $out/pydoc.tokens"
if [ ! -f "$out/pydoc.tokens" ]; then
  corpus=$(ls -d /usr/share/doc/python3*/html/_sources 2>/dev/null | head -n 1)
  [ -n "$corpus" ] || die "the demo corpus (python3-doc) is missing: run scripts/setup.sh"
  "$flashnas" data prepare --input "$corpus" --out "$out/pydoc.tokens"
fi
"$flashnas" data info "$out/pydoc.tokens"

log "2/5 profile this CPU (2 threads) for the space in $config -> $db"
"$flashnas" profile --space "$config" --db "$db" --threads 2 --validate 20

log "3/5 search (guided, successive halving over 16k/49k/131k-token rungs, 3.1M training tokens) -> study 'demo' in $db"
# A shared machine may leave the table's verdict "unreliable"; the demo goes
# on with it all the same, and search says so (the study records it). A real
# search would profile again as the verdict advises.
"$flashnas" search --config "$config" --db "$db" --study demo --accept-unreliable-lut

log "4/5 frontier -> $out/frontier.svg"
"$flashnas" frontier --db "$db" --study demo --svg "$out/frontier.svg" >/dev/null
echo "plot: $out/frontier.svg"

log "5/5 export the best trial, trained on 262,144 tokens -> $out/model"
rm -rf "$out/model"
"$flashnas" export --db "$db" --study demo --out "$out/model" --train-tokens 262144 --threads 2
"$flashnas" generate --model "$out/model" --prompt "The for statement in Python " --tokens 48 --threads 2
log "demo done in $(($(now) - start)) s after set-up and build; outputs in $out/"
