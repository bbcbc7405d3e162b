"""Summary table of `flashnas profile --json` reports (bench/profile_fresh_clones.sh).

Per run and workload: held-out validation (within +-5%/+-10%, median and worst
error, Spearman rho), the outside-the-space set, the measurement spread
(each architecture's odd rounds against its even rounds, for the held-out
set and for the outside set), the drift the probe
saw and the verdict; then the spread between runs (the same architectures,
measured in different runs), the comparison of every policy and model, and,
where the reports record each policy's cross-validated error (policy_cv), the
policy `--policy auto` picks per run and its held-out figures next to the
default's.
"""
import json
import sys
from collections import defaultdict


def pct(x):
    return f"{100 * x:.0f}%"


def main(paths):
    runs = [json.load(open(p)) for p in paths]
    print("| run | workload | within ±5% | within ±10% | median error | worst | ρ | outside the space: within ±10% (median) | spread: within ±10% (median) | spread outside: within ±10% (median) | drift (smoothed speed range) | profile s | verdict |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for i, r in enumerate(runs, 1):
        rep = r["report"]
        d = rep["drift"]
        drift = f'{d.get("smoothed_min_ratio", 0):.2f}–{d.get("smoothed_max_ratio", 0):.2f}'
        verdict = {v["workload"]: v["status"] for v in rep["verdict"]["workloads"]}
        ext = {v["workload"]: v for v in rep["extrapolation"]}
        spr = {v["workload"]: v for v in rep["spread"]}
        spr_out = {v["workload"]: v for v in rep.get("extrapolation_spread", [])}
        for v in rep["validation"]:
            w = v["workload"]
            e, s, so = ext.get(w), spr.get(w), spr_out.get(w)
            print(f'| {i} | {w} | {pct(v["within_5pct"])} | {pct(v["within_10pct"])} | {100 * v["median_abs_error"]:.1f}% | '
                  f'{100 * v["worst_abs_error"]:.1f}% | {v["spearman"]:.3f} | '
                  f'{pct(e["within_10pct"]) + " (" + format(100 * e["median_abs_error"], ".1f") + "%)" if e else "-"} | '
                  f'{pct(s["within_10pct"]) + " (" + format(100 * s["median_abs_diff"], ".1f") + "%)" if s else "-"} | '
                  f'{pct(so["within_10pct"]) + " (" + format(100 * so["median_abs_diff"], ".1f") + "%)" if so else "-"} | '
                  f'{drift} | {r["seconds"]:.0f} | {verdict.get(w, "-")} |')
    # Between runs: the same held-out architectures measured in different runs.
    if len(runs) > 1:
        print()
        print("| runs | workload | architectures | within ±10% | median difference | worst |")
        print("|---|---|---|---|---|---|")
        for a in range(len(runs)):
            for b in range(a + 1, len(runs)):
                for va in runs[a]["report"]["validation"]:
                    vb = next(x for x in runs[b]["report"]["validation"] if x["workload"] == va["workload"])
                    mb = {row["hash"]: row["measured_ms"] for row in vb["rows"]}
                    diffs = sorted(abs(row["measured_ms"] - mb[row["hash"]]) / mb[row["hash"]]
                                   for row in va["rows"] if row["hash"] in mb)
                    if not diffs:
                        continue
                    med = diffs[len(diffs) // 2] if len(diffs) % 2 else 0.5 * (diffs[len(diffs) // 2 - 1] + diffs[len(diffs) // 2])
                    print(f'| {a + 1} vs {b + 1} | {va["workload"]} | {len(diffs)} | '
                          f'{pct(sum(x <= 0.10 for x in diffs) / len(diffs))} | {100 * med:.1f}% | {100 * diffs[-1]:.1f}% |')
    # Every policy and model kind on the held-out set, averaged over runs.
    agg = defaultdict(list)
    for r in runs:
        for c in r["report"]["comparison"]:
            agg[(c["policy"], c["model"], c["role"], c["workload"])].append(c)
    print()
    print("| policy | model | set | workload | within ±10% (mean over runs) | median error (mean) | ρ (mean) |")
    print("|---|---|---|---|---|---|---|")
    for (pol, model, role, w), cs in sorted(agg.items()):
        n = len(cs)
        rho = [c["spearman"] for c in cs if c["spearman"] is not None]
        print(f'| {pol} | {model} | {role} | {w} | {pct(sum(c["within_10pct"] for c in cs) / n)} | '
              f'{100 * sum(c["median_abs_error"] for c in cs) / n:.1f}% | {sum(rho) / max(1, len(rho)):.3f} |')
    # --policy auto: per run, the policy with the lowest CV error on the fit runs.
    if all("policy_cv" in r["report"] for r in runs):
        print()
        print("| run | CV error per policy (fit runs) | auto picks | workload | auto: within ±10% (ρ) | default raw_min: within ±10% (ρ) |")
        print("|---|---|---|---|---|---|")
        for i, r in enumerate(runs, 1):
            rep = r["report"]
            cv = {p: v["mean"] for p, v in rep["policy_cv"].items()}
            pick = min(cv, key=lambda p: cv[p])
            cvs = ", ".join(f"{p} {100 * v:.1f}%" for p, v in sorted(cv.items(), key=lambda kv: kv[1]))
            held = {(c["policy"], c["workload"]): c for c in rep["comparison"]
                    if c["model"] == "chosen" and c["role"] == "validate"}
            for w in sorted({w for (_, w) in held}):
                a, d = held.get((pick, w)), held.get(("raw_min", w))
                fmt = lambda c: f'{pct(c["within_10pct"])} ({c["spearman"]:.3f})' if c else "-"
                print(f"| {i} | {cvs} | {pick} | {w} | {fmt(a)} | {fmt(d)} |")


if __name__ == "__main__":
    main(sys.argv[1:])
