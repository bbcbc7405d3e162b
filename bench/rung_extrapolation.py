#!/usr/bin/env python3
"""Can a study's rungs foresee longer training? Learning-curve extrapolation, tested.

  python3 bench/rung_extrapolation.py --db out/demo/flashnas.db \
      [--study NAME...] [--truth compare.json...] [--out FILE.md]

Every trial that reached a study's third rung has held-out bits/byte at three
lengths t0 < t1 < t2 (one training seed each, the wsd schedule). A power law
L(t) = a + b * t^-c through those points is the usual learning-curve model.
Two tests, both printed as Markdown:

1. One rung ahead. Predict the top rung's loss from the two rungs below it,
   with the exponent c taken as the median of the study's *other* top-rung
   trials' exact three-point fits (what a running search could know), and
   compare the rank agreement (Spearman) with the top rung of
   (i) the second rung's loss alone, as successive halving ranks, and
   (ii) the extrapolation.
2. Beyond the top rung. Extrapolate each top-rung trial by its own exact
   three-point fit to the token count of the --truth comparisons (compare.json
   files whose runs all used one token count) and set it beside the retrained
   mean of every contender of the same architecture.

Only the order matters: the rungs use the wsd schedule, the comparisons cosine.
"""
import argparse
import json
import math
import pathlib
import sqlite3
import statistics
import sys


def ranks(xs):
    order = sorted(range(len(xs)), key=lambda i: xs[i])
    r = [0.0] * len(xs)
    i = 0
    while i < len(order):  # ties share their mean rank
        j = i
        while j + 1 < len(order) and xs[order[j + 1]] == xs[order[i]]:
            j += 1
        for k in range(i, j + 1):
            r[order[k]] = (i + j) / 2
        i = j + 1
    return r


def spearman(a, b):
    ra, rb = ranks(a), ranks(b)
    ma, mb = statistics.fmean(ra), statistics.fmean(rb)
    num = sum((x - ma) * (y - mb) for x, y in zip(ra, rb))
    den = math.sqrt(sum((x - ma) ** 2 for x in ra) * sum((y - mb) ** 2 for y in rb))
    return num / den if den else float("nan")


def exponent(ts, ls):
    """c of the power law through three points at geometric-or-not spacing (None when not decreasing)."""
    d1, d2 = ls[0] - ls[1], ls[1] - ls[2]
    if d1 <= 0 or d2 <= 0:
        return None
    # Exact for equal ratios t1/t0 = t2/t1; otherwise solved by bisection.
    def residual(c):
        return (ts[0] ** -c - ts[1] ** -c) / (ts[1] ** -c - ts[2] ** -c) - d1 / d2
    lo, hi = 1e-4, 5.0
    if residual(lo) * residual(hi) > 0:
        return None
    for _ in range(100):
        mid = (lo + hi) / 2
        if residual(lo) * residual(mid) <= 0:
            hi = mid
        else:
            lo = mid
    return (lo + hi) / 2


def through(t1, l1, t2, l2, c):
    """a, b of a + b t^-c through (t1, l1) and (t2, l2)."""
    b = (l1 - l2) / (t1 ** -c - t2 ** -c)
    return l2 - b * t2 ** -c, b


def load(db, studies):
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    data = {n: json.loads(c)["train"]["data"] for n, c in con.execute("select name, config from studies")}
    q = ("select s.name, t.number, t.hash, t.params, t.genome, r.tokens, r.bpb from trials t "
         "join studies s on s.id = t.study_id join trial_rungs r on r.trial_id = t.id "
         "where r.status = 'done' and r.bpb is not null order by s.name, t.number, r.tokens")
    out = {}
    for name, number, h, params, genome, tokens, bpb in con.execute(q):
        if studies and name not in studies:
            continue
        t = out.setdefault(name, {"data": data[name], "trials": {}})["trials"]
        t = t.setdefault(number, {"hash": h, "params": params, "genome": genome, "rungs": {}})
        t["rungs"][tokens] = bpb
    return out, data


def top_trials(trials):
    """Trials with three or more rungs, keyed on the study's three highest lengths."""
    lengths = sorted({t for tr in trials.values() for t in tr["rungs"]})
    if len(lengths) < 3:
        return [], []
    top3 = lengths[-3:]
    return top3, [(n, tr) for n, tr in sorted(trials.items()) if all(t in tr["rungs"] for t in top3)]


def one_rung_ahead(name, top3, rows, out):
    cs = {n: exponent(top3, [tr["rungs"][t] for t in top3]) for n, tr in rows}
    lower, extra, truth = [], [], []
    for n, tr in rows:
        others = [c for m, c in cs.items() if m != n and c is not None]
        if not others:
            return
        c = statistics.median(others)
        a, b = through(top3[0], tr["rungs"][top3[0]], top3[1], tr["rungs"][top3[1]], c)
        lower.append(tr["rungs"][top3[1]])
        extra.append(a + b * top3[2] ** -c)
        truth.append(tr["rungs"][top3[2]])
    valid = [c for c in cs.values() if c is not None]
    out.append(f"| `{name}` | {' / '.join(f'{t:,}' for t in top3)} | {len(rows)} | "
               f"{statistics.median(valid):.2f} ({min(valid):.2f}-{max(valid):.2f}) | "
               f"{spearman(lower, truth):.2f} | {spearman(extra, truth):.2f} |")


def truths(files, data):
    """(arch_hash, data, tokens) -> (mean, sd, seeds, description, file) from compare.json files."""
    found = {}
    for f in files:
        j = json.load(open(f))
        for b in j["budgets"]:
            for c in b["contenders"]:
                if not c.get("bpb"):
                    continue
                tokens = c["recipe"]["tokens"]
                found[(c["arch_hash"], data[j["study"]], tokens)] = (c["bpb_mean"], c["bpb_sd"], len(c["bpb"]), c["architecture"], f)
    return found


def beyond(all_trials, found, out):
    targets = sorted({t for _, _, t in found})
    for target in targets:
        rows = []
        for name, study in sorted(all_trials.items()):
            top3, tops = top_trials(study["trials"])
            for n, tr in tops:
                key = (tr["hash"], study["data"], target)
                if key not in found or target <= top3[2]:
                    continue
                ls = [tr["rungs"][t] for t in top3]
                c = exponent(top3, ls)
                if c is None:
                    continue
                a, b = through(top3[1], ls[1], top3[2], ls[2], c)
                if any(r[0] == tr["hash"] for r in rows):
                    continue  # the same architecture seeded into several studies: its first study's runs
                mean, sd, k, arch, _ = found[key]
                rows.append((tr["hash"], f"`{name}` {n}", arch, tr["params"], ls[2], a + b * target ** -c, mean, sd, k))
        if not rows:
            continue
        out.append(f"\n### Beyond the top rung: extrapolated to {target:,} tokens against retrained\n")
        out.append("| study and trial | architecture | params | top rung bits/byte | extrapolated | retrained mean (sd, seeds) |")
        out.append("|---|---|---|---|---|---|")
        for _, trial, arch, p, top, ex, mean, sd, k in sorted(rows, key=lambda r: r[6]):
            out.append(f"| {trial} | `{arch}` | {p:,} | {top:.4f} | {ex:.4f} | {mean:.4f} ({sd:.4f}, {k}) |")
        if len(rows) >= 2:
            out.append(f"\nRank agreement with the retrained means over these {len(rows)} rows: "
                       f"extrapolated {spearman([r[5] for r in rows], [r[6] for r in rows]):.2f}, "
                       f"top rung {spearman([r[4] for r in rows], [r[6] for r in rows]):.2f}.")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--db", required=True, help="a study database (SQLite)")
    ap.add_argument("--study", nargs="+", default=[], help="the studies to read (default: all)")
    ap.add_argument("--truth", nargs="+", default=[], help="compare.json files whose retrained means are the truth")
    ap.add_argument("--out", help="write the Markdown here instead of stdout")
    args = ap.parse_args()
    try:
        all_trials, data = load(args.db, set(args.study))
        found = truths(args.truth, data)
    except sqlite3.Error as e:
        sys.exit(f"rung_extrapolation: {args.db}: {e}")
    except (OSError, KeyError, json.JSONDecodeError) as e:
        sys.exit(f"rung_extrapolation: reading --db or --truth: {e!r}")
    missing = set(args.study) - set(all_trials)
    if missing:
        sys.exit(f"rung_extrapolation: --study {', '.join(sorted(missing))}: not in {args.db} (or no finished rungs)")
    out = ["# Learning-curve extrapolation from the rungs, tested\n",
           f"Made by `bench/rung_extrapolation.py` from `{args.db}`. Losses are bits per byte (bits per "
           "completion byte for task data). The rows are the trials that reached a study's third rung, one "
           "training seed per rung (wsd schedule); the retrained means are the comparisons' seeds (cosine "
           "schedule), so only the order is compared.\n",
           "### One rung ahead: the top rung predicted from the two below\n",
           "| study | rungs | trials at the top | exponent c, median (range) | Spearman: second rung vs top | Spearman: extrapolated vs top |",
           "|---|---|---|---|---|---|"]
    for name, study in sorted(all_trials.items()):
        top3, rows = top_trials(study["trials"])
        if len(rows) >= 4:
            one_rung_ahead(name, top3, rows, out)
    beyond(all_trials, found, out)
    text = "\n".join(out) + "\n"
    if args.out:
        pathlib.Path(args.out).write_text(text)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
