#!/usr/bin/env python3
"""Where a profile's time went, and what cheaper protocols would have given.

From one stored profile database (flashnas profile --space ... --validate N):
  1. the time per kind of item (entries, fit/validate/extrapolate runs), from
     the gaps between consecutive measurements' timestamps;
  2. the table refitted from copies of the database as if it had been
     measured more cheaply: fewer entry rounds, fewer whole-model rounds, or
     each entry round cut to its first S seconds of samples (the stored raw
     samples, in the order taken). The refit is `flashnas profile` rerun on the
     copy with the same space and rounds: everything is stored, so it only
     finalises the table.
Usage (repository root, after scripts/build.sh):
  python3 bench/profile_refit_cheaper.py DB CONFIG OUTDIR [--validate 20] [--threads 2]
"""
import argparse
import collections
import json
import os
import shutil
import sqlite3
import statistics
import subprocess

VARIANTS = {
    "as measured": {},
    "entry rounds 3 -> 2": {"rounds": 2},
    "run rounds 4 -> 3": {"run_rounds": 3},
    "entry samples: first 100 ms": {"entry_s": 0.1},
    "entry samples: first 50 ms": {"entry_s": 0.05},
    "entry samples 50 ms, run rounds 4 -> 3": {"entry_s": 0.05, "run_rounds": 3},
}


def breakdown(db):
    c = sqlite3.connect(db)
    rows = [(at, "entry") for (at,) in c.execute("SELECT at_s FROM lut_entry_rounds")]
    rows += [(at, f"{role} {wl}") for role, wl, at in c.execute("SELECT role, workload, at_s FROM lut_runs")]
    rows.sort()
    total, count = collections.Counter(), collections.Counter()
    for (t0, _), (t1, kind) in zip(rows, rows[1:]):
        total[kind] += t1 - t0
        count[kind] += 1
    lines = ["| item | measurements | seconds | mean ms |", "|---|---|---|---|"]
    for k in sorted(total):
        lines.append(f"| {k} | {count[k]} | {total[k]:.1f} | {1000 * total[k] / count[k]:.0f} |")
    lines.append(f"| all | {sum(count.values())} | {rows[-1][0] - rows[0][0]:.1f} | |")
    return "\n".join(lines)


def refit(db, config, out, name, v, args):
    copy = os.path.join(out, name.replace(" ", "_").replace(">", "").replace(":", "") + ".db")
    shutil.copy(db, copy)
    rounds, run_rounds = v.get("rounds", 3), v.get("run_rounds", 4)
    c = sqlite3.connect(copy)
    c.execute("DELETE FROM lut_runs WHERE round > ?", (run_rounds,))
    c.execute("DELETE FROM lut_entry_rounds WHERE round > ?", (rounds,))
    if "entry_s" in v:
        limit = v["entry_s"] * 1e6
        for rowid, samples in c.execute("SELECT rowid, samples_us FROM lut_entry_rounds").fetchall():
            xs, acc, k = json.loads(samples), 0.0, 0
            for x in xs:
                acc, k = acc + x, k + 1
                if k >= 5 and acc >= limit:
                    break
            c.execute("UPDATE lut_entry_rounds SET median_us = ? WHERE rowid = ?", (statistics.median(xs[:k]), rowid))
    c.execute("DELETE FROM lut_tables")
    c.commit()
    c.close()
    cmd = [args.flashnas, "profile", "--space", config, "--db", copy, "--threads", str(args.threads),
           "--validate", str(args.validate), "--rounds", str(rounds), "--run-rounds", str(run_rounds), "--json"]
    r = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    if r["measured"] != 0:
        raise SystemExit(f"{name}: the refit measured {r['measured']} items; the database is not a complete profile")
    rep = r["report"]
    val = " / ".join(f"{x['within_10pct'] * 100:.0f}% (ρ {x['spearman']:.3f}, median {x['median_abs_error'] * 100:.1f}%)"
                     for x in rep["validation"])
    ext = " / ".join(f"{x['within_10pct'] * 100:.0f}%" for x in rep["extrapolation"])
    os.remove(copy)
    return f"| {name} | {rep['policy']} | {val} | {ext} | {rep['verdict']['status']} |"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("db")
    ap.add_argument("config")
    ap.add_argument("out")
    ap.add_argument("--validate", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--flashnas", default="build/bin/flashnas")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    print(f"Profile database {args.db}\n\nTime per kind of item:\n\n{breakdown(args.db)}\n")
    print("Refitted as if measured more cheaply (held-out within ±10% per workload; outside the space):\n")
    print("| protocol | policy | held out | outside | verdict |\n|---|---|---|---|---|")
    for name, v in VARIANTS.items():
        print(refit(args.db, args.config, args.out, name, v, args), flush=True)


if __name__ == "__main__":
    main()
