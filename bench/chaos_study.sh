#!/usr/bin/env bash
# Chaos runs of a study (tests/test_cluster.cpp, KilledWorkersAndAServerRestartLoseNothing
# at full size): PostgreSQL with 8 workers, 20 SIGKILLs at random moments
# (each killed worker replaced) and 2 server restarts; SQLite with 4 workers
# and 20 SIGKILLs. Each must end complete with no trial lost or trained
# twice, no lease left, every trained trial's curve present. Reports:
# results/cluster/chaos-{postgresql,sqlite}.json. Nothing here is timed.
#   bench/chaos_study.sh [TRIALS] [TOKENS_PER_TRIAL]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/env.sh"
trials=${1:-60}
tokens=${2:-4096}  # training tokens per trial: long enough that the study outlasts the kills
out="$FLASHNAS_ROOT/results/cluster"
mkdir -p "$out"
test_bin="$FLASHNAS_BUILD/bin/test_cluster"
filter=--gtest_filter=Cluster.KilledWorkersAndAServerRestartLoseNothing
FLASHNAS_CHAOS_WORKERS=8 FLASHNAS_CHAOS_KILLS=20 FLASHNAS_CHAOS_RESTARTS=2 FLASHNAS_CHAOS_TRIALS=$trials FLASHNAS_CHAOS_TOKENS=$tokens \
  FLASHNAS_CHAOS_REPORT="$out/chaos-postgresql.json" "$test_bin" "$filter"
FLASHNAS_CHAOS_SQLITE=1 FLASHNAS_CHAOS_WORKERS=4 FLASHNAS_CHAOS_KILLS=20 FLASHNAS_CHAOS_RESTARTS=0 \
  FLASHNAS_CHAOS_TRIALS=$trials FLASHNAS_CHAOS_TOKENS=$tokens FLASHNAS_CHAOS_REPORT="$out/chaos-sqlite.json" "$test_bin" "$filter"
echo "reports: $out/chaos-postgresql.json $out/chaos-sqlite.json"
