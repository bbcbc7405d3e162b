#!/usr/bin/env bash
# The agent demo: architecture search on task data flashnas makes itself.
# Set-up and build first (if anything is missing), then, outputs under
# out/agent-demo/:
#   1. calls.jsonl: tool-calling records derived from the Python
#      documentation already on the machine (scripts/agent_data.py), then a
#      task token file, its length distribution and the budgets it suggests
#   2. profile this CPU for configs/agent-demo.toml (its budgets are the
#      suggested ones)
#   3. search on the task (completion bits per byte), frontier with the task
#      metrics of every trial
#   4. export the best trial, with its exact-match and JSON rates on every
#      held-out record (task.json), and one greedy completion
#   5. the same search on plain text (the demo corpus) under the same budgets
#      and recipe; then both studies' best architectures trained alike on the
#      task and judged on its held-out records (does the task pick another
#      architecture, and what is it worth?)
# Safe to rerun: finished steps are resumed or skipped.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
bash "$FLASHNAS_ROOT/scripts/setup.sh"
FLASHNAS_TARGETS=flashnas bash "$FLASHNAS_ROOT/scripts/build.sh"  # the binary only: the tests build in scripts/test.sh
flashnas="$FLASHNAS_BUILD/bin/flashnas"
cd "$FLASHNAS_ROOT"  # configs name their data relative to the repository
out=out/agent-demo
mkdir -p "$out"
config=configs/agent-demo.toml
db="$out/flashnas.db"
start=$(now)
docs=$(ls -d /usr/share/doc/python3*/html/_sources 2>/dev/null | head -n 1)
[ -n "$docs" ] || die "the Python documentation (python3-doc) is missing: run scripts/setup.sh"

log "1/5 task data: tool calls from $docs -> $out/calls.jsonl, $out/calls.tokens"
"$FLASHNAS_PYTHON" scripts/agent_data.py --docs "$docs" --out "$out/calls.jsonl"
[ -f "$out/calls.tokens" ] || "$flashnas" data prepare --input "$out/calls.jsonl" --out "$out/calls.tokens"
"$flashnas" data info "$out/calls.tokens" --val-fraction 0.05
"$flashnas" data info "$out/calls.tokens" --suggest-budgets 30

log "2/5 profile this CPU (2 threads) for $config -> $db"
"$flashnas" profile --space "$config" --db "$db" --threads 2 --validate 20

log "3/5 search on the task -> study 'agent' in $db"
"$flashnas" search --config "$config" --db "$db" --study agent --accept-unreliable-lut
"$flashnas" frontier --db "$db" --study agent --svg "$out/frontier.svg"

log "4/5 export the best trial, trained on 1,048,576 tokens -> $out/model"
rm -rf "$out/model"
"$flashnas" export --db "$db" --study agent --out "$out/model" --train-tokens 1048576 --threads 2
"$flashnas" eval --model "$out/model" --data "$out/calls.tokens" --generate 0 --threads 2

log "5/5 the same search on plain text (the demo corpus), same budgets and recipe -> study 'text' in $db"
if [ ! -f out/demo/pydoc.tokens ]; then
  mkdir -p out/demo
  "$flashnas" data prepare --input "$docs" --out out/demo/pydoc.tokens
fi
sed -e 's|^data = .*|data = "out/demo/pydoc.tokens"|' -e 's|^objective = "completion_bpb".*|objective = "loss"|' \
  "$config" >"$out/text.toml"
"$flashnas" search --config "$out/text.toml" --db "$db" --study text --accept-unreliable-lut
"$flashnas" frontier --db "$db" --study text
# Both studies' best architectures, trained alike on the task (the export's
# length: 1,048,576 tokens; cosine), then judged on its held-out records.
for study in agent text; do
  best=$("$flashnas" frontier --db "$db" --study "$study" --json |
    "$FLASHNAS_PYTHON" -c 'import json, sys; print(json.load(sys.stdin)["best"]["trial"])')
  sqlite3 "$db" "SELECT t.arch FROM trials t JOIN studies s ON s.id = t.study_id WHERE s.name = '$study' AND t.number = $best" \
    >"$out/$study-best.json"
  rm -rf "$out/$study-best"
  "$flashnas" train --arch "$out/$study-best.json" --data "$out/calls.tokens" --tokens 1048576 --batch-size 8 --seq-len 384 \
    --lr 3e-3 --threads 2 --quiet --out "$out/$study-best" >/dev/null
  log "study $study's best (trial $best) trained on the task:"
  "$flashnas" eval --model "$out/$study-best" --data "$out/calls.tokens" --threads 2 --quiet
done
log "agent demo done in $(($(now) - start)) s after set-up and build; outputs in $out/"
