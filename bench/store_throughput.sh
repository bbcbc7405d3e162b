#!/usr/bin/env bash
# The study store's throughput, SQLite and PostgreSQL side by side
# (bench/bench_store.cpp): claim + finish of empty trials with 1, 4 and 16
# worker processes. PostgreSQL is a throwaway local server (unix socket,
# default durability). Run it alone: it measures. Output:
# results/bench/store-throughput.{txt,json}.
#   bench/store_throughput.sh [TRIALS]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/env.sh"
trials=${1:-400}
out="$FLASHNAS_ROOT/results/bench"
mkdir -p "$out"
tmp=$(mktemp -d /tmp/flashnas-store-bench.XXXXXX)
chmod 755 "$tmp"  # the server runs as postgres when this runs as root
trap 'bash "$FLASHNAS_ROOT/scripts/pg-throwaway.sh" stop "$tmp/pg"; rm -rf "$tmp"' EXIT
url=$(bash "$FLASHNAS_ROOT/scripts/pg-throwaway.sh" start "$tmp/pg")
"$FLASHNAS_BUILD/bin/bench_store" --sqlite-dir "$tmp" --pg "$url" --trials "$trials" --json "$out/store-throughput.json" |
  tee "$out/store-throughput.txt"
