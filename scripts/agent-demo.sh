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
#      and recipe, so the two winners can be compared on the task
# Safe to rerun: finished steps are resumed or skipped.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
bash "$FLASHNAS_ROOT/scripts/setup.sh"
bash "$FLASHNAS_ROOT/scripts/build.sh"
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
"$flashnas" data info "$out/calls.tokens" --suggest-budgets 60

log "2/5 profile this CPU (2 threads) for $config -> $db"
"$flashnas" profile --space "$config" --db "$db" --threads 2 --validate 20

log "3/5 search on the task -> study 'agent' in $db"
"$flashnas" search --config "$config" --db "$db" --study agent --accept-unreliable-lut
"$flashnas" frontier --db "$db" --study agent --svg "$out/frontier.svg"

log "4/5 export the best trial, trained on 524,288 tokens -> $out/model"
rm -rf "$out/model"
"$flashnas" export --db "$db" --study agent --out "$out/model" --train-tokens 524288 --threads 2
"$flashnas" eval --model "$out/model" --data "$out/calls.tokens" --generate 0 --threads 2

log "5/5 the same search on plain text (the demo corpus), same budgets -> study 'text' in $db"
if [ ! -f out/demo/pydoc.tokens ]; then
  mkdir -p out/demo
  "$flashnas" data prepare --input "$docs" --out out/demo/pydoc.tokens
fi
sed -e 's|^data = .*|data = "out/demo/pydoc.tokens"|' -e 's|^objective = "completion_bpb".*|objective = "loss"|' \
  "$config" >"$out/text.toml"
"$flashnas" search --config "$out/text.toml" --db "$db" --study text --accept-unreliable-lut
"$flashnas" frontier --db "$db" --study text
rm -rf "$out/text-model"
"$flashnas" export --db "$db" --study text --out "$out/text-model" --train-tokens 524288 --threads 2
log "the text winner on the task's held-out records:"
"$flashnas" eval --model "$out/text-model" --data "$out/calls.jsonl" --generate 0 --threads 2
log "agent demo done in $(($(now) - start)) s after set-up and build; outputs in $out/"
