#!/usr/bin/env bash
# The demo's default search against random search at equal compute, real
# training (not replayed): for each seed, two studies on the demo space:
#   default: configs/demo.toml as shipped (its algorithm, rungs and token budget);
#   random:  the same config with algorithm = "random" and no rungs: every
#            candidate trained to the top rung (train.tokens, the same wsd
#            schedule), until the same token budget is spent.
# Reports per study the architectures trained, tokens spent, the best loss
# at the top rung and the hypervolume per budget (one reference loss for all
# studies: the worst top-rung loss any of them saw). Writes
# OUT/default-vs-random.{json,md}.
#   bash bench/default_vs_random.sh LUT_DB [OUT=results/search-bench] [SEEDS="0 1 2"]
# LUT_DB: a database holding the demo space's latency table
# (flashnas profile --space configs/demo.toml --db LUT_DB --validate 20).
# SUMMARY_ONLY=1 writes the summary of the studies already finished.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/env.sh"
[ $# -ge 1 ] || die "usage: bash bench/default_vs_random.sh LUT_DB [OUT] [SEEDS]"
lut=$(realpath "$1")
out=$(realpath -m "${2:-$FLASHNAS_ROOT/results/search-bench}")
seeds=${3:-0 1 2}
flashnas=${FLASHNAS:-$FLASHNAS_BUILD/bin/flashnas}
work=$FLASHNAS_ROOT/out/default-vs-random
mkdir -p "$work" "$out"
cd "$FLASHNAS_ROOT"
python3 - "$work" <<'PY'
import re, sys
work = sys.argv[1]
text = open("configs/demo.toml").read()
open(f"{work}/default.toml", "w").write(text)
tokens = int(re.search(r"^tokens = (\d+)", text, re.M).group(1))
budget = re.search(r"^token_budget = (\d+)", text, re.M)
trials = int(re.search(r"^trials = (\d+)", text, re.M).group(1))
budget = int(budget.group(1)) if budget else trials * tokens
# Random search: no rungs, every candidate to the top rung, as many as the budget pays for.
rnd = re.sub(r"^algorithm = \"\w+\"", 'algorithm = "random"', text, count=1, flags=re.M)
for key in ("fidelities", "eta", "token_budget", "promote", "pool", "kappa"):
    rnd = re.sub(rf"^{key} = .*\n", "", rnd, flags=re.M)
rnd = re.sub(r"^trials = \d+", f"trials = {budget // tokens}", rnd, count=1, flags=re.M)
rnd = re.sub(r"^(tokens = \d+.*)$", r'\1\nschedule = "wsd"', rnd, count=1, flags=re.M)
assert 'algorithm = "random"' in rnd and "fidelities" not in rnd.split("[search]")[1].split("[latency]")[0].replace("# fidelities", "")
open(f"{work}/random.toml", "w").write(rnd)
PY
for seed in $seeds; do
  [ "${SUMMARY_ONLY:-0}" = 1 ] && break
  for kind in default random; do
    log "seed $seed: $kind study"
    start=$(now)
    "$flashnas" search --config "$work/$kind.toml" --db "$work/studies.db" --lut "$lut" --study "$kind-s$seed" \
      --seed "$seed" --threads 2 --json >"$work/$kind-s$seed.json" 2>"$work/$kind-s$seed.log"
    log "seed $seed: $kind done in $(($(now) - start)) s"
  done
done
# One hypervolume reference for every study: the worst loss any of them compared.
studies=()
for seed in $seeds; do for kind in default random; do studies+=("$kind-s$seed"); done; done
ref=$(for s in "${studies[@]}"; do "$flashnas" frontier --db "$work/studies.db" --study "$s" --json; done |
  python3 -c 'import json,sys
dec=json.JSONDecoder(); t=sys.stdin.read(); i=0; worst=0
while i < len(t):
    while i < len(t) and t[i].isspace(): i += 1
    if i >= len(t): break
    o, i = dec.raw_decode(t, i)
    worst = max([worst] + [b["reference"]["bpb"] for b in o["budgets"]])
print(worst)')
for s in "${studies[@]}"; do
  "$flashnas" frontier --db "$work/studies.db" --study "$s" --ref-bpb "$ref" --json >"$work/$s.frontier.json"
done
PYTHONPATH="$FLASHNAS_ROOT/bench" python3 - "$work" "$out" "$seeds" "$ref" "$(git rev-parse --short HEAD)" <<'PY'
import json, sqlite3, sys
from study_row import study_row
work, out, seeds, ref, commit = sys.argv[1:6]
db = sqlite3.connect(f"{work}/studies.db")
rows = []
for seed in seeds.split():
    for kind in ("default", "random"):
        name = f"{kind}-s{seed}"
        fr = json.load(open(f"{work}/{name}.frontier.json"))
        rows.append({"seed": int(seed), "kind": kind, **study_row(db, work, name),
                     "hypervolume": {b["budget"]["name"]: b["hypervolume"] for b in fr["budgets"]}})
result = {"commit": commit, "ref_bpb": float(ref), "config": "configs/demo.toml (bench/default_vs_random.sh)",
          "studies": rows}
json.dump(result, open(f"{out}/default-vs-random.json", "w"), indent=1)
budgets = list(rows[0]["hypervolume"])
with open(f"{out}/default-vs-random.md", "w") as f:
    f.write(f"The demo's default search against random search at equal token budget, real training, demo space; "
            f"commit {commit}. Hypervolume in ms x bits/byte against each budget's limit and {float(ref):.4f} bpb "
            f"(the worst loss any of these studies compared).\n\n")
    f.write("| seed | study | architectures | per rung | tokens spent | best loss (top rung) | best bpb | "
            + " | ".join(f"hypervolume {b}" for b in budgets) + " |\n")
    f.write("|---|---|---|---|---|---|---|" + "---|" * len(budgets) + "\n")
    for r in rows:
        f.write(f"| {r['seed']} | {r['kind']} | {r['architectures']} | {'/'.join(map(str, r['per_rung']))} | "
                f"{r['tokens_spent']:,} | {r['best_loss']:.4f} | {r['best_bpb']:.4f} | "
                + " | ".join(f"{r['hypervolume'][b]:.2f}" for b in budgets) + " |\n")
print(open(f"{out}/default-vs-random.md").read())
PY
