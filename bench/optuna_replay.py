#!/usr/bin/env python3
"""Optuna's samplers replayed against a flashnas bench table, by flashnas's rules.

The same rules as `flashnas bench-search` (search/replay.h): the table's
architectures are the space; a sampled genome becomes the nearest row not yet
evaluated (genes that differ; ties drawn at random); a "training" is the
row's loss at the top rung and costs the top rung's tokens; a search stops
before a run would pass the budget (default: 200 runs at the lowest rung).
Samplers: tpe (single objective, the loss), nsga2 (loss and the first
budget's predicted latency, as flashnas's Pareto objective), random (Optuna's,
a check on the mapping); tpe+asha and random+asha add Optuna's
SuccessiveHalvingPruner (its asynchronous successive halving, reduction factor
3) over the table's rungs: a trial reports its loss at each rung and goes on
while the pruner lets it, each continuation costing what flashnas's does (the
next rung's tokens minus the previous rung's stable part, wsd).

  python3 bench/optuna_replay.py TABLE.csv [--samplers tpe,nsga2] [--seeds 50]
      [--budget-tokens N] [--compare FLASHNAS.json] [--out PREFIX]

--compare takes `flashnas bench-search --json` output from the same table and
budget; its curves and random search's target go into the same CSV and table.
Writes PREFIX.csv (algorithm,tokens,q25,median,q75: the best top-rung loss on
a grid of 50 points of the budget, over seeds), PREFIX.md and PREFIX.svg (the
median curves of every algorithm, flashnas's and Optuna's, in one plot).
"""
import argparse
import csv
import json
import math
import random
import sys

import optuna


def parse_genome(text):
    """'d=128 2x[attn:mamba2 1:1 f1] 1x[attn f0]' or 'd=128 swa+f1 ...' -> (d, tuple of genes)."""
    toks = text.split()
    d = toks[0][2:]
    genes = []
    i = 1
    while i < len(toks):
        t = toks[i]
        if "x[" in t:  # staged: "2x[a:b", "1:1", "f1]"  or "1x[a", "f1]"
            blocks, first = t.split("x[")
            if ":" in first:
                m1, m2 = first.split(":")
                ratio = toks[i + 1]
                ffn = toks[i + 2].rstrip("]")
                i += 3
            else:
                m1 = m2 = first
                ratio = "0:1"
                ffn = toks[i + 1].rstrip("]")
                i += 2
            genes.append((m1, m2, ratio, ffn, blocks))
        else:  # layerwise "mixer+fN"
            mixer, ffn = t.split("+")
            genes.append((mixer, ffn))
            i += 1
    return d, tuple(genes)


def distance(a, b):
    d = int(a[0] != b[0])
    ga, gb = a[1], b[1]
    for i in range(max(len(ga), len(gb))):
        if i >= len(ga) or i >= len(gb):
            d += len((ga if i < len(ga) else gb)[i])
            continue
        d += sum(x != y for x, y in zip(ga[i], gb[i]))
    return d


def load(path):
    meta = json.load(open(path + ".json"))
    cfg = meta["config"]
    rows = list(csv.DictReader(open(path)))
    rungs = [int(c[5:]) for c in rows[0].keys() if c.startswith("loss_")] if rows else []
    budgets = [b["name"] for b in cfg.get("budgets", [])]
    table = []
    for r in rows:
        losses = [float(r["loss_%d" % k]) if r["loss_%d" % k] else math.nan for k in rungs]
        table.append({
            "genome": parse_genome(r["genome"]),
            "loss": losses[-1],
            "losses": losses,
            "ms": float(r[budgets[0] + "_ms"]) if budgets else 0.0,
        })
    return cfg, rungs, table


def rung_costs(cfg, rungs):
    """Tokens to reach each rung as flashnas trains it (search/fidelity.h): rung 0 from scratch,
    rung r from rung r-1's state at the start of its decay (wsd, decay_fraction of the steps)."""
    train = cfg.get("train", {})
    per_step = train.get("batch_size", 16) * train.get("seq_len", 256)
    decay = train.get("decay_fraction", 0.2)
    costs = []
    for i, k in enumerate(rungs):
        if i == 0:
            costs.append(k)
            continue
        steps = -(-rungs[i - 1] // per_step)
        stable_end = steps - max(1, math.floor(decay * steps + 0.5))
        costs.append(k - stable_end * per_step)
    return costs


def replay(cfg, rungs, table, sampler_name, seed, budget):
    space = cfg["space"]
    widths = [str(w) for w in space["widths"]]
    mixers = space["mixers"]
    ratios = space.get("ratios", ["0:1", "1:1", "1:2", "1:3"])
    ffns = [str(f) for f in space.get("ffn_per_mixer", [0, 1, 2])]
    bmin, bmax = space.get("blocks_per_stage", [1, 4])
    stages = space.get("stages", 3)
    staged = space.get("kind", "staged") == "staged"
    if not staged:
        raise SystemExit("optuna_replay.py: only staged spaces are mapped so far")
    asha = sampler_name.endswith("+asha")
    base = sampler_name[:-5] if asha else sampler_name
    costs = rung_costs(cfg, rungs) if asha else [rungs[-1]]
    cost = costs[0]
    rng = random.Random(seed ^ 0x5E1EC7)
    used = set()
    best = math.nan
    spent = 0
    curve = []
    if base == "tpe":
        sampler, directions = optuna.samplers.TPESampler(seed=seed), ["minimize"]
    elif base == "nsga2" and not asha:
        sampler, directions = optuna.samplers.NSGAIISampler(seed=seed, population_size=8), ["minimize", "minimize"]
    elif base == "random":
        sampler, directions = optuna.samplers.RandomSampler(seed=seed), ["minimize"]
    else:
        raise SystemExit("--samplers: unknown sampler %r (tpe, nsga2, random, tpe+asha, random+asha)" % sampler_name)
    pruner = optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3) if asha else None
    study = optuna.create_study(directions=directions, sampler=sampler, pruner=pruner)
    while spent + cost <= budget and len(used) < len(table):
        trial = study.ask()
        d = trial.suggest_categorical("d", widths)
        genes = []
        for s in range(stages):
            m1 = trial.suggest_categorical("m1_%d" % s, mixers)
            m2 = trial.suggest_categorical("m2_%d" % s, mixers)
            ratio = trial.suggest_categorical("ratio_%d" % s, ratios)
            ffn = trial.suggest_categorical("ffn_%d" % s, ffns)
            blocks = str(trial.suggest_int("blocks_%d" % s, bmin, bmax))
            if ratio == "0:1":
                m1 = m2  # flashnas's canonical form of a one-mixer block
            genes.append((m1, m2, ratio, ffn, blocks))
        want = (d, tuple(genes))
        dists = [(distance(want, t["genome"]), i) for i, t in enumerate(table) if i not in used]
        nearest = min(x for x, _ in dists)
        row = rng.choice([i for x, i in dists if x == nearest])
        used.add(row)
        if asha:
            # Rung by rung while the pruner lets the trial go on and the budget allows it.
            value = 10.0
            for r in range(len(rungs)):
                if r > 0 and spent + costs[r] > budget:
                    break
                spent += costs[r]
                loss = table[row]["losses"][r]
                value = loss if math.isfinite(loss) else 10.0
                if r == len(rungs) - 1 and math.isfinite(loss) and not (loss >= best):
                    best = loss
                curve.append((spent, best))
                trial.report(value, 3 ** r)  # the pruner's rungs sit at steps 1, 3, 9, ... (min_resource 1, factor 3)
                if r < len(rungs) - 1 and trial.should_prune():
                    break
            study.tell(trial, value)
            continue
        spent += cost
        loss = table[row]["loss"]
        if math.isfinite(loss) and not (loss >= best):
            best = loss
        curve.append((spent, best))
        value = loss if math.isfinite(loss) else 10.0
        study.tell(trial, [value, table[row]["ms"]] if len(directions) == 2 else value)
    return curve, best, len(used)


def best_at(curve, tokens):
    b = math.nan
    for t, v in curve:
        if t > tokens:
            break
        b = v
    return b


def quartiles(values):
    v = sorted(x if math.isfinite(x) else math.inf for x in values)
    def q(p):
        pos = p * (len(v) - 1)
        lo, hi = math.floor(pos), math.ceil(pos)
        x = v[lo] + (v[hi] - v[lo]) * (pos - lo) if math.isfinite(v[hi]) else (v[lo] if pos == lo else math.inf)
        return x if math.isfinite(x) else math.nan
    return q(0.25), q(0.5), q(0.75)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("table")
    ap.add_argument("--samplers", default="tpe,nsga2")
    ap.add_argument("--seeds", type=int, default=50)
    ap.add_argument("--budget-tokens", type=int, default=0)
    ap.add_argument("--compare")
    ap.add_argument("--out", default="optuna-replay")
    a = ap.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    cfg, rungs, table = load(a.table)
    budget = a.budget_tokens or 200 * rungs[0]
    grid = [budget * g // 50 for g in range(1, 51)]
    curves = []  # (algorithm, tokens list, q25, median, q75, final (q25, med, q75), evaluated)
    target = math.nan
    if a.compare:
        fl = json.load(open(a.compare))
        if fl["budget_tokens"] != budget:
            raise SystemExit("--compare: %s was replayed with a budget of %d tokens, not %d"
                             % (a.compare, fl["budget_tokens"], budget))
        target = fl["target"] if fl["target"] is not None else math.nan
        for c in fl["algorithms"]:
            nan = lambda x: math.nan if x is None else x
            curves.append((c["algorithm"], [p["tokens"] for p in c["curve"]], [nan(p["q25"]) for p in c["curve"]],
                           [nan(p["median"]) for p in c["curve"]], [nan(p["q75"]) for p in c["curve"]],
                           (nan(c["final_best"]["q25"]), nan(c["final_best"]["median"]), nan(c["final_best"]["q75"])),
                           c["evaluated_median"]))
    for name in a.samplers.split(","):
        runs = [replay(cfg, rungs, table, name, seed, budget) for seed in range(a.seeds)]
        qs = [quartiles([best_at(c, t) for c, _, _ in runs]) for t in grid]
        curves.append(("optuna-" + name, grid, [q[0] for q in qs], [q[1] for q in qs], [q[2] for q in qs],
                       quartiles([b for _, b, _ in runs]), sorted(n for _, _, n in runs)[len(runs) // 2]))
        print("optuna-%s: %d seeds done" % (name, a.seeds), file=sys.stderr)
    with open(a.out + ".csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["algorithm", "tokens", "q25", "median", "q75"])
        for name, toks, q25, med, q75, _, _ in curves:
            for i, t in enumerate(toks):
                w.writerow([name, t] + ["" if not math.isfinite(x) else "%.6f" % x for x in (q25[i], med[i], q75[i])])
    with open(a.out + ".md", "w") as f:
        f.write("Replays against %s (%d architectures, rungs %s), %d seeds, budget %d tokens; target (random search's "
                "final median best) %.4f.\n\n" % (a.table, len(table), ",".join(map(str, rungs)), a.seeds, budget, target))
        f.write("| algorithm | evaluated | final best median (q25-q75) | compute to reach the target |\n|---|---|---|---|\n")
        for name, toks, q25, med, q75, fin, ev in curves:
            reach = next((t for t, m in zip(toks, med) if math.isfinite(m) and m <= target), None)
            f.write("| %s | %s | %.4f (%.4f-%.4f) | %s |\n" % (
                name, ev, fin[1], fin[0], fin[2],
                "not reached" if reach is None else "%d (%.0f%%)" % (reach, 100.0 * reach / budget)))
    write_svg(a.out + ".svg", curves, budget, target, a.seeds)
    print(open(a.out + ".md").read())


def write_svg(path, curves, budget, target, seeds):
    W, H, ml, mr, mt, mb = 680, 400, 70, 190, 30, 50
    pw, ph = W - ml - mr, H - mt - mb
    vals = [v for c in curves for v in c[3] if math.isfinite(v)]
    lo, hi = (min(vals), max(vals)) if vals else (0.0, 1.0)
    pad = 0.05 * max(hi - lo, 1e-3)
    lo, hi = lo - pad, hi + pad
    X = lambda t: ml + pw * t / budget
    Y = lambda v: mt + ph * (hi - v) / (hi - lo)
    colors = ["#444444", "#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f"]
    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="11">' % (W, H),
           '<rect width="100%" height="100%" fill="white"/>',
           '<text x="%d" y="18">median best loss at the top rung against training tokens (%d seeds)</text>' % (ml, seeds),
           '<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#999"/>' % (ml, mt, pw, ph)]
    for i in range(5):
        v, t = lo + (hi - lo) * i / 4, budget * i / 4
        out.append('<text x="%d" y="%.1f" text-anchor="end">%.3f</text>' % (ml - 4, Y(v) + 4, v))
        out.append('<text x="%.1f" y="%d" text-anchor="middle">%.2fM</text>' % (X(t), mt + ph + 16, t / 1e6))
    out.append('<text x="%d" y="%d" text-anchor="middle">training tokens</text>' % (ml + pw / 2, H - 12))
    if math.isfinite(target):
        out.append('<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#999" stroke-dasharray="4 3"/>'
                   % (ml, ml + pw, Y(target), Y(target)))
    for k, (name, toks, _, med, _, _, _) in enumerate(curves):
        col = colors[k % len(colors)]
        pts = " ".join("%.1f,%.1f" % (X(t), Y(m)) for t, m in zip(toks, med) if math.isfinite(m))
        dash = ' stroke-dasharray="5 3"' if name.startswith("optuna") else ""
        if pts:
            out.append('<polyline points="%s" fill="none" stroke="%s" stroke-width="2"%s/>' % (pts, col, dash))
        y = mt + 14 * k + 10
        out.append('<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="%s" stroke-width="2"%s/><text x="%d" y="%d">%s</text>'
                   % (ml + pw + 10, ml + pw + 30, y, y, col, dash, ml + pw + 34, y + 4, name))
    out.append("</svg>")
    open(path, "w").write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
