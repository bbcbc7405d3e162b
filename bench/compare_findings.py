#!/usr/bin/env python3
"""The paper's findings, read off `flashnas compare` results (compare.json).

  python3 bench/compare_findings.py results/compare/*/compare.json [--out FILE.md]

For every budget of every comparison given, two findings at equal latency
(measured, or predicted where the comparison was not measured):
  (a) hybrids against single-mixer stacks: each contender that mixes two or
      more token-mixer types against every single-mixer stack (the
      `<mixer>-only` baselines and the Llama-style stacks) of the same budget;
  (b) depth against width: the Llama-style stack at the standard aspect
      against its deep-thin and wide-shallow variants, and the picks' widths
      and depths beside them.
A difference counts only when it is larger than twice the larger of the two
seed standard deviations (the `compare` verdict's rule); otherwise it is
"within noise". Prints Markdown (or writes it to --out).
"""
import argparse
import json
import re
import sys

MIXERS = ("attn", "swa", "mamba2", "deltanet", "gdn", "gla", "shortconv", "rwkv7")


def mixers_of(arch_text):
    """Mixer types named in a contender's architecture text (genome or baseline description)."""
    return sorted({m for m in MIXERS if re.search(r"(?<![a-z0-9])" + m + r"(?![a-z0-9])", arch_text)})


def width_of(arch_text):
    m = re.search(r"d=(\d+)", arch_text)
    return int(m.group(1)) if m else None


def verdict(a, b):
    """a against b (lower bits/byte is better)."""
    d = b["bpb_mean"] - a["bpb_mean"]
    spread = 2 * max(a["bpb_sd"], b["bpb_sd"])
    if abs(d) <= spread:
        return f"within noise ({d:+.4f}, twice the spread {spread:.4f})"
    return f"{'better' if d > 0 else 'worse'} by {abs(d):.4f} (twice the spread {spread:.4f})"


def ms(c):
    """The latency the comparison's verdict used (at the table's speed when it was normalised)."""
    for key in ("latency_ms", "measured_ms", "predicted_ms"):
        if c.get(key) is not None:
            return c[key]
    return None


def row(c):
    return (f"| {c['label']} | `{c['architecture']}` | {c['params']:,} | {ms(c):.2f} | "
            f"{c['bpb_mean']:.4f} ({c['bpb_sd']:.4f}) |")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="+")
    ap.add_argument("--out")
    a = ap.parse_args()
    out = ["# The paper's findings at this scale, from the comparisons", "",
           "Made by `python3 bench/compare_findings.py " + " ".join(a.files) + "`. Bits per byte are the mean "
           "(standard deviation) over the comparison's seeds after its retraining; latency is measured unless "
           "the comparison was not. A difference counts when it exceeds twice the larger seed spread.", ""]
    for f in a.files:
        j = json.load(open(f, encoding="utf-8"))
        for b in j["budgets"]:
            cs = [c for c in b["contenders"] if c.get("bpb_mean") is not None and ms(c) is not None]
            limit = b["budget"]
            out += [f"## {j['study']}, {j['comparison']}: budget {limit.get('name', '')} ({f})", "",
                    f"Retrained to {j['config']['recipe']['tokens']:,} tokens; "
                    f"{'measured' if j['measured'] else 'predicted'} latency.", "",
                    "| contender | architecture | params | ms | bits/byte (sd) |", "|---|---|---|---|---|"]
            out += [row(c) for c in sorted(cs, key=lambda c: c["bpb_mean"])]
            singles = [c for c in cs if len(mixers_of(c["architecture"])) == 1 and c["kind"] != "pick"]
            hybrids = [c for c in cs if len(mixers_of(c["architecture"])) >= 2]
            out += ["", "**(a) Hybrids against single-mixer stacks.**", ""]
            if not hybrids or not singles:
                out.append("Not measurable here: no hybrid or no single-mixer stack among the contenders.")
            for h in hybrids:
                for s in sorted(singles, key=lambda c: c["bpb_mean"]):
                    out.append(f"- {h['label']} ({'+'.join(mixers_of(h['architecture']))}) against {s['label']}: "
                               f"{verdict(h, s)}")
            out += ["", "**(b) Depth against width.**", ""]
            llama = {c["label"]: c for c in cs if c["label"].startswith("llama")}
            std = llama.get("llama")
            for k in ("llama-deep-thin", "llama-wide-shallow"):
                if std and k in llama:
                    out.append(f"- {k} (`{llama[k]['architecture']}`) against the standard aspect "
                               f"(`{std['architecture']}`): {verdict(llama[k], std)}")
                elif std:
                    out.append(f"- {k}: the same as the standard aspect here (the space's widths end there)")
            picks = [c for c in cs if c["kind"] == "pick"]
            for p in picks:
                out.append(f"- {p['label']}, chosen by the search, has width d={width_of(p['architecture'])}: "
                           f"`{p['architecture']}`")
            out.append("")
    text = "\n".join(out) + "\n"
    if a.out:
        open(a.out, "w", encoding="utf-8").write(text)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
