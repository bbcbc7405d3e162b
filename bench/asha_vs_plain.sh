#!/usr/bin/env bash
# Successive halving against the one-fidelity study at an equal token budget,
# on the demo space: for each seed, two studies from configs/demo.toml that
# differ only in [search] fidelities:
#   plain: every candidate trained to TOKENS (wsd schedule), `trials` of them;
#   asha:  rungs RUNGS (the last equal to TOKENS), eta 3, the same token
#          budget (trials * TOKENS).
# Both use the demo's aging evolution (Pareto objective) and the demo's data.
# Writes OUT/asha-vs-plain.json and OUT/asha-vs-plain.md (architectures each
# evaluated, tokens spent, the best loss each reached at TOKENS).
#   bash bench/asha_vs_plain.sh LUT_DB [OUT=results/search-bench] [SEEDS="0 1 2"]
# LUT_DB: a database holding the demo space's latency table
# (flashnas profile --space configs/demo.toml --db LUT_DB --validate 20).
# TOKENS (65536) and RUNGS (8192,24576,65536) may be set in the environment;
# SUMMARY_ONLY=1 writes the summary of the studies of SEEDS already finished.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/env.sh"
[ $# -ge 1 ] || die "usage: bash bench/asha_vs_plain.sh LUT_DB [OUT] [SEEDS]"
lut=$(realpath "$1")
out=$(realpath -m "${2:-$FLASHNAS_ROOT/results/search-bench}")
seeds=${3:-0 1 2}
tokens=${TOKENS:-65536}
rungs=${RUNGS:-8192,24576,65536}
flashnas=${FLASHNAS:-$FLASHNAS_BUILD/bin/flashnas}
work=$FLASHNAS_ROOT/out/asha-vs-plain
mkdir -p "$work" "$out"
cd "$FLASHNAS_ROOT"
python3 - "$work" "$tokens" "$rungs" <<'PY'
import sys
work, tokens, rungs = sys.argv[1], sys.argv[2], sys.argv[3]
text = open("configs/demo.toml").read()
def sub(t, old, new):
    assert old in t, old
    return t.replace(old, new, 1)
import re
# The demo's search settings without its rungs and guided settings, with aging evolution.
for key in ("fidelities", "eta", "token_budget", "promote", "pool", "kappa"):
    text = re.sub(rf"^{key} = .*\n", "", text, flags=re.M)
text = re.sub(r'^algorithm = "\w+"', 'algorithm = "evolution"', text, count=1, flags=re.M)
plain = sub(text, "tokens = 131072 ", f"tokens = {tokens}\nschedule = \"wsd\" ")
open(f"{work}/plain.toml", "w").write(plain)
asha = sub(plain, "init = []", f"fidelities = [{rungs}]\neta = 3\ninit = []")
open(f"{work}/asha.toml", "w").write(asha)
PY
for seed in $seeds; do
  [ "${SUMMARY_ONLY:-0}" = 1 ] && break
  for kind in plain asha; do
    log "seed $seed: $kind study"
    start=$(now)
    "$flashnas" search --config "$work/$kind.toml" --db "$work/studies.db" --lut "$lut" --study "$kind-s$seed" \
      --seed "$seed" --threads 2 --json >"$work/$kind-s$seed.json" 2>"$work/$kind-s$seed.log"
    log "seed $seed: $kind done in $(($(now) - start)) s"
  done
done
PYTHONPATH="$FLASHNAS_ROOT/bench" python3 - "$work" "$out" "$seeds" "$tokens" "$rungs" "$(git rev-parse --short HEAD)" <<'PY'
import json, sqlite3, sys
from study_row import study_row
work, out, seeds, tokens, rungs, commit = sys.argv[1:7]
db = sqlite3.connect(f"{work}/studies.db")
rows = []
for seed in seeds.split():
    for kind in ("plain", "asha"):
        name = f"{kind}-s{seed}"
        rows.append({"seed": int(seed), "kind": kind, **study_row(db, work, name)})
result = {"commit": commit, "tokens": int(tokens), "rungs": [int(x) for x in rungs.split(",")], "eta": 3,
          "config": "configs/demo.toml (tokens and schedule replaced; bench/asha_vs_plain.sh)", "studies": rows}
json.dump(result, open(f"{out}/asha-vs-plain.json", "w"), indent=1)
with open(f"{out}/asha-vs-plain.md", "w") as f:
    f.write(f"Successive halving (rungs {rungs}, eta 3) against the one-fidelity study ({tokens} tokens per "
            f"candidate), equal token budget, demo space, aging evolution; commit {commit}.\n\n")
    f.write("| seed | study | architectures | per rung | tokens spent | best loss at %s | best bpb | best trial |\n" % tokens)
    f.write("|---|---|---|---|---|---|---|---|\n")
    for r in rows:
        f.write(f"| {r['seed']} | {r['kind']} | {r['architectures']} | {'/'.join(map(str, r['per_rung']))} | "
                f"{r['tokens_spent']:,} | {r['best_loss']:.4f} | {r['best_bpb']:.4f} | {r['best_trial']} |\n")
print(open(f"{out}/asha-vs-plain.md").read())
PY
