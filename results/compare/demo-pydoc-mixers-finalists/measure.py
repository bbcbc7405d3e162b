"""Interleaved end-to-end latency of the finalists' pick and its neighbours:
5 rounds, each arch x workload once per round (flashnas bench, 2 threads)."""
import json, subprocess, sys, statistics
F = sys.argv[1]
R = "results/compare/demo-pydoc-mixers-finalists/"
archs = {"pick-trial34": R + "pick-trial34.json", "before-pick-trial15": R + "before-pick.json",
         "mamba2-6-blocks": R + "mamba2-6-blocks.json", "mamba2-7-blocks": R + "mamba2-7-blocks.json"}
workloads = {"agent-call": "batch=1,prompt=128,generate=32", "batch4": "batch=4,prompt=64,generate=32"}
rows = []
for rnd in range(5):
    for w, wl in workloads.items():
        for a, path in archs.items():
            out = subprocess.run([F, "bench", "--arch", path, "--workload", wl, "--threads", "2", "--rounds", "1",
                                  "--min-seconds", "1", "--json"], capture_output=True, text=True, check=True).stdout
            j = json.loads(out)
            rows.append({"round": rnd, "workload": w, "arch": a, "total_ms": j["total"]["median_ms"], "commit": j["commit"],
                         "device": j["device"]})
            print(json.dumps(rows[-1]), flush=True)
print("summary (median over rounds, ms):")
for w in workloads:
    for a in archs:
        v = [r["total_ms"] for r in rows if r["workload"] == w and r["arch"] == a]
        print(f"  {w:10s} {a:22s} {statistics.median(v):8.2f}  rounds {', '.join(f'{x:.1f}' for x in v)}")
