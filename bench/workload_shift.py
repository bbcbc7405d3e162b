#!/usr/bin/env python3
"""Finding (c): does the winner change with the workload?

  python3 bench/workload_shift.py --db DB --lut LUT --studies S1,S2 --rung-tokens 524288 \
      --short batch=1,prompt=128,generate=32 --short-ms 40 \
      --long batch=1,prompt=2048,generate=256 [--measure ROUNDS] [--flashnas build/bin/flashnas] \
      [--out FILE.md] [--json FILE]

Takes every architecture the studies trained to the rung of --rung-tokens
(the same recipe in each study: the script refuses studies whose rungs or
training settings differ), prices each on the latency table at both
workloads (`flashnas latency`), and answers at equal training:

  * the winner at the short workload: the lowest loss within --short-ms;
  * the long-context budget that exactly affords that winner (its latency at
    the long workload), and the winner within it. If an architecture with a
    lower loss is slower than the winner at the short workload but not at the
    long one, the winner changes: the long workload rewards other mixers;
  * each workload's loss-latency frontier with its mixers, and how each
    architecture's latency grows from the short to the long workload.

With --measure R, both winners are also measured on this machine at both
workloads (`flashnas bench`), in R interleaved rounds (each round measures
every winner and workload once, so drift hits all alike; the fastest round's
median is kept): the measured answer to the same question. Measure alone.

An architecture trained in several studies counts once (its lowest loss; the
runs are the same recipe, so they differ only by seed-free reruns). Prints
Markdown, or writes it to --out; --json writes the rows.
"""
import argparse
import json
import os
import re
import sqlite3
import subprocess
import sys
import tempfile

MIXERS = ("attn", "swa", "mamba2", "deltanet", "gdn", "gla", "shortconv", "rwkv7")


def die(msg):
    print(f"workload_shift.py: {msg}", file=sys.stderr)
    sys.exit(2)


def recipe_key(config_text):
    """The parts of a study config that decide a rung's loss: data, [train] and the rungs."""
    doc = json.loads(config_text)
    train = dict(doc.get("train", {}))
    search = doc.get("search", {})
    return json.dumps({"train": train, "fidelities": search.get("fidelities")}, sort_keys=True)


def trained(db, studies, rung_tokens):
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    rows, keys = {}, {}
    for name in studies:
        st = con.execute("SELECT id, config FROM studies WHERE name = ?", (name,)).fetchone()
        if st is None:
            die(f"--studies: no study \"{name}\" in {db}")
        keys[name] = recipe_key(st[1])
        q = con.execute(
            "SELECT t.hash, t.genome, t.arch, t.params, r.loss, r.bpb, t.number FROM trial_rungs r "
            "JOIN trials t ON t.id = r.trial_id WHERE t.study_id = ? AND r.status = 'done' AND r.tokens = ?",
            (st[0], rung_tokens))
        for h, genome, arch, params, loss, bpb, number in q:
            if h not in rows or bpb < rows[h]["bpb"]:
                rows[h] = {"hash": h, "genome": genome, "arch": arch, "params": params, "loss": loss, "bpb": bpb,
                           "trial": f"{name} #{number}"}
    if len(set(keys.values())) > 1:
        die("--studies: their training recipes or rungs differ, so their losses are not comparable: " + ", ".join(studies))
    if not rows:
        die(f"--rung-tokens {rung_tokens}: none of the studies trained an architecture to that rung")
    return list(rows.values())


def price(flashnas, lut, rows, workloads, threads):
    with tempfile.TemporaryDirectory() as tmp:
        for i, r in enumerate(rows):
            path = os.path.join(tmp, f"a{i}.json")
            with open(path, "w") as f:
                f.write(r["arch"])
            r["ms"] = {}
            for w in workloads:
                p = subprocess.run([flashnas, "latency", "--db", lut, "--arch", path, "--workload", w, "--threads",
                                    str(threads), "--json"], capture_output=True, text=True)
                if p.returncode != 0:
                    die(f"flashnas latency ({w}) for {r['genome']}: {p.stderr.strip()}")
                r["ms"][w] = json.loads(p.stdout)["total_ms"]
            print(f"\rpriced {i + 1}/{len(rows)}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)


def measure(flashnas, rows, workloads, rounds, threads):
    """{hash: {workload: fastest round's median ms}} from interleaved `flashnas bench` rounds."""
    best = {r["hash"]: {} for r in rows}
    with tempfile.TemporaryDirectory() as tmp:
        for rnd in range(rounds):
            for i, r in enumerate(rows):
                path = os.path.join(tmp, f"m{i}.json")
                with open(path, "w") as f:
                    f.write(r["arch"])
                for w in workloads:
                    p = subprocess.run([flashnas, "bench", "--arch", path, "--workload", w, "--rounds", "1",
                                        "--threads", str(threads), "--json"], capture_output=True, text=True)
                    if p.returncode != 0:
                        die(f"flashnas bench ({w}) for {r['genome']}: {p.stderr.strip()}")
                    ms = json.loads(p.stdout)["total"]["median_ms"]
                    best[r["hash"]][w] = min(ms, best[r["hash"]].get(w, float("inf")))
            print(f"\rmeasured round {rnd + 1}/{rounds}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return best


def mixers(genome):
    return sorted({m for m in MIXERS if re.search(r"(?<![a-z0-9])" + m + r"(?![a-z0-9])", genome)})


def frontier(rows, w):
    out, best = [], float("inf")
    for r in sorted(rows, key=lambda r: (r["ms"][w], r["bpb"])):
        if r["bpb"] < best:
            out.append(r)
            best = r["bpb"]
    return out


def winner(rows, w, budget):
    inside = [r for r in rows if r["ms"][w] <= budget]
    return min(inside, key=lambda r: r["bpb"]) if inside else None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", required=True)
    ap.add_argument("--lut", required=True)
    ap.add_argument("--studies", required=True, help="comma-separated study names (same recipe)")
    ap.add_argument("--rung-tokens", type=int, required=True)
    ap.add_argument("--short", required=True)
    ap.add_argument("--short-ms", type=float, required=True)
    ap.add_argument("--long", required=True)
    ap.add_argument("--threads", type=int, default=2, help="the latency table's thread count (its device fingerprint)")
    ap.add_argument("--measure", type=int, default=0, metavar="ROUNDS",
                    help="also measure both winners here at both workloads, in this many interleaved rounds")
    ap.add_argument("--flashnas", default="build/bin/flashnas")
    ap.add_argument("--out")
    ap.add_argument("--json")
    a = ap.parse_args()
    for path, flag in ((a.db, "--db"), (a.lut, "--lut"), (a.flashnas, "--flashnas")):
        if not os.path.isfile(path):
            die(f"{flag}: no such file: {path}")
    if not a.short_ms > 0:
        die("--short-ms: must be > 0")
    if a.measure < 0:
        die("--measure: must be >= 0")
    studies = [s for s in a.studies.split(",") if s]
    rows = trained(a.db, studies, a.rung_tokens)
    price(a.flashnas, a.lut, rows, [a.short, a.long], a.threads)
    s, l = a.short, a.long
    w_short = winner(rows, s, a.short_ms)
    if w_short is None:
        die(f"--short-ms {a.short_ms}: no trained architecture is that fast at {s}")
    long_ms = w_short["ms"][l]
    w_long = winner(rows, l, long_ms)
    changed = w_long["hash"] != w_short["hash"]

    def line(r):
        return (f"| `{r['genome']}` | {', '.join(mixers(r['genome']))} | {r['params']:,} | {r['bpb']:.4f} | "
                f"{r['ms'][s]:.1f} | {r['ms'][l]:.1f} | {r['ms'][l] / r['ms'][s]:.1f}x |")

    head = "| architecture | mixers | params | bits/byte | short ms | long ms | growth |\n|---|---|---|---|---|---|---|"
    md = [f"# Does the winner change with the workload? (finding (c))", "",
          f"{len(rows)} architectures trained to {a.rung_tokens:,} tokens in studies {', '.join(studies)} "
          f"(one recipe), priced on `{a.lut}` at the short workload `{s}` and the long one `{l}`.", "",
          f"- Short workload, budget {a.short_ms:g} ms: the winner is `{w_short['genome']}` "
          f"({w_short['bpb']:.4f} bits/byte, {w_short['ms'][s]:.1f} ms; {w_short['trial']}).",
          f"- Long workload, the budget that exactly affords it ({long_ms:.1f} ms): the winner is "
          f"`{w_long['genome']}` ({w_long['bpb']:.4f} bits/byte, {w_long['ms'][l]:.1f} ms; {w_long['trial']}).",
          f"- **The winner {'changes' if changed else 'does not change'}.**"
          + (f" The long-context winner is {w_short['bpb'] - w_long['bpb']:.4f} bits/byte better; at the short "
             f"workload it costs {w_long['ms'][s]:.1f} ms, over the {a.short_ms:g} ms budget." if changed else ""),
          ""]
    measured = None
    if a.measure:
        winners = [w_short] + ([w_long] if changed else [])
        measured = measure(a.flashnas, winners, [s, l], a.measure, a.threads)
        md += [f"Measured here ({a.measure} interleaved rounds, fastest round's median):", "",
               "| winner | architecture | short ms (predicted) | long ms (predicted) |", "|---|---|---|---|"]
        for label, r in (("short", w_short), ("long", w_long))[:len(winners)]:
            m = measured[r["hash"]]
            md.append(f"| {label} | `{r['genome']}` | {m[s]:.1f} ({r['ms'][s]:.1f}) | {m[l]:.1f} ({r['ms'][l]:.1f}) |")
        if changed:
            ms_, ml = measured[w_short["hash"]], measured[w_long["hash"]]
            md += ["", f"Measured, the long-context winner is {'faster' if ml[l] <= ms_[l] else 'slower'} than the "
                       f"short-workload winner at the long workload ({ml[l]:.1f} against {ms_[l]:.1f} ms) and "
                       f"{'slower' if ml[s] > ms_[s] else 'not slower'} at the short one ({ml[s]:.1f} against {ms_[s]:.1f} ms)."]
        md.append("")
    md += [f"## Frontier at the short workload ({s})", "", head]
    md += [line(r) for r in frontier(rows, s)]
    md += ["", f"## Frontier at the long workload ({l})", "", head]
    md += [line(r) for r in frontier(rows, l)]
    md += ["", "## Latency growth by mixer (median over the architectures that hold the mixer)", "",
           "| mixer | architectures | median growth long/short |", "|---|---|---|"]
    for m in MIXERS:
        g = sorted(r["ms"][l] / r["ms"][s] for r in rows if m in mixers(r["genome"]))
        if g:
            md.append(f"| {m} | {len(g)} | {g[len(g) // 2]:.2f}x |")
    text = "\n".join(md) + "\n"
    if a.out:
        with open(a.out, "w") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"short": s, "long": l, "short_ms": a.short_ms, "long_ms": long_ms, "changed": changed,
                       "winner_short": w_short["hash"], "winner_long": w_long["hash"], "measured": measured,
                       "rows": [{k: v for k, v in r.items() if k != "arch"} for r in rows]}, f, indent=1)


if __name__ == "__main__":
    main()
