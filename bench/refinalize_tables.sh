#!/usr/bin/env bash
# Refit stored latency tables with this build's latency models, without
# measuring anything again: each database is copied, `flashnas profile`
# finalises the copy from its stored rounds (0 measured now), and its report
# goes to OUT/run-K.json with a summary table in OUT/summary.md. Use it to
# compare latency models on the same measurements (for example the databases
# bench/profile_fresh_clones.sh keeps with FLASHNAS_KEEP_DB).
#   bash bench/refinalize_tables.sh OUT CONFIG DB...
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/env.sh"
[ $# -ge 3 ] || die "usage: bash bench/refinalize_tables.sh OUT CONFIG DB..."
out=$(realpath -m "$1")
config=$2
shift 2
mkdir -p "$out"
work=$(mktemp -d /tmp/flashnas-refit-XXXXXX)
trap 'rm -rf "$work"' EXIT
k=0
for db in "$@"; do
  k=$((k + 1))
  [ -f "$db" ] || die "$db: no such database"
  cp "$db" "$work/run-$k.db"
  "$FLASHNAS_ROOT/build/bin/flashnas" profile --space "$config" --db "$work/run-$k.db" --threads 2 --validate 20 --json \
    >"$out/run-$k.json"
  measured=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["measured"])' "$out/run-$k.json")
  [ "$measured" = 0 ] || die "$db: $measured items were measured again; the table was not complete for $config"
  log "$db: refitted"
done
python3 "$FLASHNAS_ROOT/bench/latency_summary.py" "$out"/run-*.json >"$out/summary.md"
cat "$out/summary.md"
