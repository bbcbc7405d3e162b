#!/usr/bin/env bash
# Latency predictions as a new user gets them: N consecutive runs, each on a
# fresh clone of this repository's HEAD with a new database, of the demo's
# profile step (flashnas profile --space configs/demo.toml --validate 20).
# Each run's report (validation, spread, drift, models, verdict) is written to
# OUT/run-K.json and a summary table to OUT/summary.md.
#   bash bench/profile_fresh_clones.sh [N=3] [OUT=results/demo-cpu/latency-runs]
# FLASHNAS_KEEP_DB=DIR keeps each run's database as DIR/run-K.db.
# Run it on an otherwise idle machine: the builds run before each profile,
# never during one.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/env.sh"
n=${1:-3}
out=$(realpath -m "${2:-$FLASHNAS_ROOT/results/demo-cpu/latency-runs}")
mkdir -p "$out"
commit=$(git -C "$FLASHNAS_ROOT" rev-parse --short HEAD)
for k in $(seq 1 "$n"); do
  clone=$(mktemp -d /tmp/flashnas-clone-XXXXXX)
  git clone -q "$FLASHNAS_ROOT" "$clone"
  start=$(now)
  bash "$clone/scripts/build.sh" >"$clone/build.log" 2>&1 || { tail -n 30 "$clone/build.log"; die "build of clone $k failed"; }
  log "clone $k: built in $(($(now) - start)) s; profiling"
  start=$(now)
  (cd "$clone" && build/bin/flashnas profile --space configs/demo.toml --db "$clone/out.db" --threads 2 --validate 20 \
    --json >"$out/run-$k.json" 2>"$clone/profile.log")
  log "clone $k: profile in $(($(now) - start)) s"
  python3 - "$out/run-$k.json" "$commit" <<'PY'
import json, sys, datetime
p = sys.argv[1]
j = json.load(open(p))
j["commit"] = sys.argv[2]
j["finished_at"] = datetime.datetime.utcnow().strftime("%Y-%m-%dT%H:%M:%SZ")
json.dump(j, open(p, "w"), indent=1)
PY
  if [ -n "${FLASHNAS_KEEP_DB:-}" ]; then mkdir -p "$FLASHNAS_KEEP_DB" && cp "$clone/out.db" "$FLASHNAS_KEEP_DB/run-$k.db"; fi
  rm -rf "$clone"
done
python3 "$FLASHNAS_ROOT/bench/latency_summary.py" "$out"/run-*.json >"$out/summary.md"
cat "$out/summary.md"
