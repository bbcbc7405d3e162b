#!/usr/bin/env bash
# Everything the GPU path needs checked, in one call that fits a short GPU
# window (about 10 minutes on a bare GPU machine), with every output in one
# folder:
#   1. build      the CUDA configuration (scripts/gpu-build.sh, from .gpu-deps/)
#                 on a GPU machine; the existing build on a CPU-only one
#   2. tests      the GPU tests: every operator and the whole model on the
#                 device against the CPU (test_cuda), the device decode
#                 against the eager one (test_device_decode); they skip without a GPU
#   3. decode     flashnas bench of the demo model and Nemotron-Flash-1B, float32
#                 and bfloat16, eager and (CUDA only) cudagraph, batch 1,
#                 prompt 128, generate 32: raw samples in JSON, one table
#   4. profile    a time-boxed profile of the demo space on the device, with
#                 held-out validation, ending with the table's verdict
#   5. summary    summary.md: each step's status and time, the decode table,
#                 the verdict, the machine
# On a machine without a GPU the same steps run on the CPU with small sizes
# (demo-tiny instead of Nemotron-Flash-1B, a shorter profile), so CI runs the
# script and it cannot rot; the summary says which device ran it.
#   bash scripts/gpu-check.sh [OUT]      # default: out/gpu-check/<device>-<UTC time>
# Environment: FLASHNAS_GPU_CHECK_DEVICE (cuda:0 when nvidia-smi sees a GPU,
# else cpu), FLASHNAS_GPU_CHECK_PROFILE_MIN (time box of step 4 in minutes;
# 4 on a GPU; none on the CPU, where the profile is small instead, so that the
# test command does not depend on the machine's speed). The script exits non-zero when a step failed,
# after writing the summary.
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
if [ -n "${FLASHNAS_GPU_CHECK_DEVICE:-}" ]; then
  device=$FLASHNAS_GPU_CHECK_DEVICE
elif nvidia-smi -L >/dev/null 2>&1; then
  device=cuda:0
else
  device=cpu
fi
case "$device" in
  cpu | cuda:[0-9]*) ;;
  *) echo "gpu-check: FLASHNAS_GPU_CHECK_DEVICE=$device: use cpu or cuda:N" >&2; exit 2 ;;
esac
stamp=$(date -u +%Y%m%dT%H%M%SZ)
out=$(realpath -m "${1:-out/gpu-check/${device/:/}-$stamp}")
if [ -e "$out" ] && [ -n "$(ls -A "$out" 2>/dev/null)" ]; then
  echo "gpu-check: $out exists and is not empty; name a new folder" >&2
  exit 2
fi
mkdir -p "$out"
status=()  # "step|ok or FAILED|seconds|note"
failed=0
glog() { printf "\033[1m[gpu-check]\033[0m %s\n" "$*" >&2; }
step() {  # step NAME NOTE COMMAND...: runs it with its output in $out/NAME.log
  local name=$1 note=$2
  shift 2
  local t0=$(date +%s)
  glog "$name: $*"
  if "$@" >"$out/$name.log" 2>&1; then
    status+=("$name|ok|$(($(date +%s) - t0))|$note")
  else
    status+=("$name|FAILED (exit $?, see $name.log)|$(($(date +%s) - t0))|$note")
    failed=1
    tail -n 20 "$out/$name.log" >&2
  fi
}

# 1. build
if [ "$device" = cpu ]; then
  source "$root/scripts/env.sh"
  build=$FLASHNAS_BUILD
  if [ -x "$build/bin/flashnas" ] && [ -x "$build/bin/test_cuda" ]; then
    status+=("build|ok|0|the existing CPU build in $build")
  else
    step build "scripts/build.sh into $build" bash "$root/scripts/build.sh"
  fi
  models="configs/arch/demo-tiny.json configs/arch/demo-hybrid.json"
  runtimes="eager"
  minutes=${FLASHNAS_GPU_CHECK_PROFILE_MIN:-0}  # no time box: CI must not depend on the machine's speed
  profile_args=(--calibrate 12 --validate 6 --extrapolate 0 --rounds 1 --run-rounds 2 --threads 2)
else
  build=${FLASHNAS_BUILD:-$root/build-gpu}
  step build "scripts/gpu-build.sh into $build" env FLASHNAS_BUILD="$build" FLASHNAS_GPU_TESTS=0 bash "$root/scripts/gpu-build.sh" -DFLASHNAS_BENCH=OFF
  models="configs/arch/demo-hybrid.json configs/arch/nemotron-flash-1b.json"
  runtimes="eager cudagraph"
  minutes=${FLASHNAS_GPU_CHECK_PROFILE_MIN:-4}
  profile_args=(--calibrate 24 --validate 12 --extrapolate 0 --rounds 2 --run-rounds 3)
fi
flashnas="$build/bin/flashnas"
"$flashnas" --version >"$out/version.txt" 2>&1 || { echo "gpu-check: $flashnas does not run" >&2; failed=1; }

# 2. tests
if [ -x "$build/bin/test_cuda" ]; then
  step tests "test_cuda and test_device_decode on $device (skipped without a GPU)" \
    bash -c "'$build/bin/test_cuda' && '$build/bin/test_device_decode'"
else
  status+=("tests|FAILED (no $build/bin/test_cuda)|0|")
  failed=1
fi

# 3. decode
bench_one() {  # arch dtype runtime
  local name
  name=$(basename "$1" .json)-$2-$3
  "$flashnas" bench --arch "$1" --workload batch=1,prompt=128,generate=32 --device "$device" --dtype "$2" \
    --runtime "$3" --min-count 5 --min-seconds 0.5 --rounds 2 --json >"$out/bench-$name.json"
}
bench_all() {
  local a d r
  for a in $models; do for d in float32 bfloat16; do for r in $runtimes; do
    echo "bench $a $d $r"
    bench_one "$a" "$d" "$r" || return 1
  done; done; done
}
step decode "$(echo $models | wc -w) models x float32, bfloat16 x $runtimes" bench_all

# 4. profile
step profile "demo space, time box ${minutes} min (0: none), ${profile_args[*]}" \
  "$flashnas" profile --space configs/demo.toml --db "$out/lut.db" --device "$device" "${profile_args[@]}" \
  --max-minutes "$minutes"
verdict=$(grep -o "table verdict: [a-z]*" "$out/profile.log" | tail -n 1 | sed 's/table verdict: //')
[ -n "$verdict" ] || verdict="none (the profile did not reach its validation within the time box)"
case "$verdict" in
  reliable* | limited* | unreliable*) ;;
  *) status+=("verdict|FAILED|0|$verdict"); failed=1 ;;
esac

# 5. summary
{
  echo "# GPU check: $device"
  echo
  echo "- when: $stamp (UTC); commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- . ':!results' 2>/dev/null || echo ' (with uncommitted changes)')"
  echo "- machine: $(lscpu 2>/dev/null | sed -n 's/^Model name: *//p'), $(nproc) cores$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | sed 's/^/; GPU: /')"
  echo "- flashnas: $(tr '\n' ' ' <"$out/version.txt")"
  echo "- command: bash scripts/gpu-check.sh $out"
  echo
  echo "| step | status | seconds | what |"
  echo "|---|---|---|---|"
  for s in "${status[@]}"; do echo "| ${s//|/ | } |"; done
  echo
  echo "Latency table verdict: $verdict"
  echo
  echo "## Decode (batch 1, prompt 128, generate 32; fastest round's median)"
  echo
  python3 - "$out" <<'EOF'
import glob, json, os, sys
rows = []
for f in sorted(glob.glob(os.path.join(sys.argv[1], "bench-*.json"))):
    try:
        j = json.load(open(f))
    except ValueError:
        continue
    name = os.path.basename(f)[6:-5]
    ms = lambda k: f"{j[k]['median_ms']:.2f}" if k in j else "-"
    n = j.get("decode", {}).get("count", "-")
    rows.append(f"| {name} | {ms('total')} | {ms('prefill')} | {ms('decode')} | {n} |")
print("| model-dtype-runtime | total ms | prefill ms | decode ms | runs |")
print("|---|---|---|---|---|")
print("\n".join(rows) if rows else "| (no bench output) | | | |")
EOF
} >"$out/summary.md"
cat "$out/summary.md"
glog "written: $out (summary.md, one log per step, bench-*.json, lut.db)"
exit "$failed"
