#!/usr/bin/env bash
# Fuzzes every reader of user input with libFuzzer under AddressSanitizer and
# UndefinedBehaviorSanitizer (tests/fuzz/). Builds ./build-fuzz with clang,
# then runs each target on a working copy of its seed corpus.
#   scripts/fuzz.sh [--runs N | --seconds S] [--build-only] [TARGET...]   (default: every target, 1000000 runs each)
# Writes results/fuzz/<target>.txt (the command, executions, seconds, corpus,
# commit, libFuzzer's final stats) and results/fuzz/summary.md; a crash is
# copied into tests/fuzz/regress/<target>/ (the test suite then replays it)
# and the script exits 1. Working corpora and logs: out/fuzz/.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

runs=1000000 seconds=0 build_only=0 targets=()
while (($#)); do
  case "$1" in
    --runs) runs=$2; shift 2 ;;
    --seconds) seconds=$2; runs=0; shift 2 ;;
    --build-only) build_only=1; shift ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    -*) die "unknown option $1 (--runs N, --seconds S, --build-only, target names)" ;;
    *) targets+=("$1"); shift ;;
  esac
done
all=$(sed -n '/set(FLASHNAS_FUZZ_TARGETS/,/)/p' "$FLASHNAS_ROOT/tests/fuzz/CMakeLists.txt" | tr -d '()' | sed 's/set//; s/FLASHNAS_FUZZ_TARGETS//' | xargs)
((${#targets[@]})) || read -r -a targets <<<"$all"
for t in "${targets[@]}"; do
  [[ " $all " == *" $t "* ]] || die "unknown target \"$t\" (targets: $all)"
done

FLASHNAS_EXTRA_APT="clang libclang-rt-14-dev" bash "$FLASHNAS_ROOT/scripts/setup.sh"
CXX=$(command -v clang++ || true)
[ -n "$CXX" ] || die "clang++ not found after setup"
prefix=$("$FLASHNAS_VENV/bin/python" -c 'import torch.utils; print(torch.utils.cmake_prefix_path)')
build=$FLASHNAS_ROOT/build-fuzz
log "configuring $build (clang, libFuzzer, address,undefined)"
cmake -S "$FLASHNAS_ROOT" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER="$CXX" \
  -DCMAKE_PREFIX_PATH="$prefix" -DFLASHNAS_FUZZ=ON -DFLASHNAS_SANITIZE=address,undefined \
  -DFLASHNAS_TESTS=OFF -DFLASHNAS_BENCH=OFF >"$FLASHNAS_ROOT/out/fuzz-configure.log" 2>&1 ||
  { cat "$FLASHNAS_ROOT/out/fuzz-configure.log" >&2; die "configure failed"; }
cmake --build "$build" -j "$(nproc)" $(printf -- '--target fuzz_%s ' "${targets[@]}")
((build_only)) && exit 0

commit=$(git -C "$FLASHNAS_ROOT" rev-parse --short=12 HEAD)$(git -C "$FLASHNAS_ROOT" diff --quiet HEAD -- . ':!results' ':!out' || echo -dirty)
mkdir -p "$FLASHNAS_ROOT/results/fuzz" "$FLASHNAS_ROOT/out/fuzz"
# LibTorch is not instrumented: its one-time allocations at start-up are not
# leaks of the reader; everything else LeakSanitizer reports still fails.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
status=0
for t in "${targets[@]}"; do
  work=$FLASHNAS_ROOT/out/fuzz/$t
  rm -rf "$work" && mkdir -p "$work/corpus" "$work/crashes"
  cp "$FLASHNAS_ROOT/tests/fuzz/corpus/$t/"* "$work/corpus/"
  [ -d "$FLASHNAS_ROOT/tests/fuzz/regress/$t" ] && cp "$FLASHNAS_ROOT/tests/fuzz/regress/$t/"* "$work/corpus/"
  limit=(-runs="$runs")
  ((seconds > 0)) && limit=(-max_total_time="$seconds")
  args=("${limit[@]}" -rss_limit_mb=4096 -timeout=30 -max_len=65536 -print_final_stats=1
        -artifact_prefix="$work/crashes/" "$work/corpus")
  log "fuzzing $t (${limit[*]})"
  start=$(now)
  rc=0
  "$build/bin/fuzz_$t" "${args[@]}" >"$work/log.txt" 2>&1 || rc=$?
  secs=$(($(now) - start))
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log.txt" | tail -1)
  crashes=$(find "$work/crashes" -type f | wc -l)
  {
    echo "target: $t"
    if ((seconds > 0)); then echo "command: scripts/fuzz.sh --seconds $seconds $t"; else echo "command: scripts/fuzz.sh --runs $runs $t"; fi
    echo "libFuzzer flags: ${args[*]//$FLASHNAS_ROOT\//}"
    echo "commit: $commit"
    echo "machine: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), $(nproc) cores; $($CXX --version | head -1)"
    echo "sanitizers: address, undefined (libFuzzer); LibTorch, SQLite and SentencePiece not instrumented"
    echo "executions: ${execs:-?} in $secs s; exit code $rc; crashes: $crashes"
    echo "corpus after the run: $(find "$work/corpus" -type f | wc -l) inputs (seeds: $(find "$FLASHNAS_ROOT/tests/fuzz/corpus/$t" -type f | wc -l))"
    echo "final stats:"
    grep '^stat::' "$work/log.txt" || true
    if ((rc != 0)); then echo "last lines:"; tail -40 "$work/log.txt"; fi
  } >"$FLASHNAS_ROOT/results/fuzz/$t.txt"
  if ((rc != 0 || crashes > 0)); then
    status=1
    mkdir -p "$FLASHNAS_ROOT/tests/fuzz/regress/$t"
    cp "$work/crashes/"* "$FLASHNAS_ROOT/tests/fuzz/regress/$t/" 2>/dev/null || true
    log "$t: a finding (exit $rc); the input is in tests/fuzz/regress/$t/, the log in $work/log.txt"
  else
    log "$t: ${execs:-?} executions in $secs s, no finding"
  fi
done

{
  echo "# Fuzzing the readers"
  echo
  echo "\`scripts/fuzz.sh\`: libFuzzer with AddressSanitizer and UndefinedBehaviorSanitizer, one target per reader"
  echo "(tests/fuzz/). Each row is results/fuzz/TARGET.txt; the test suite replays every seed corpus and"
  echo "regression case with deterministic mutations (ctest -R fuzz_smoke)."
  echo
  echo "| target | executions | seconds | crashes | commit |"
  echo "|---|---:|---:|---:|---|"
  for f in "$FLASHNAS_ROOT"/results/fuzz/*.txt; do
    t=$(sed -n 's/^target: //p' "$f")
    line=$(sed -n 's/^executions: //p' "$f")
    e=${line%% in *}; s=${line#* in }; s=${s%% s;*}; c=${line##*crashes: }
    echo "| $t | $e | $s | $c | $(sed -n 's/^commit: //p' "$f") |"
  done
} >"$FLASHNAS_ROOT/results/fuzz/summary.md"
exit $status
