#!/usr/bin/env python3
"""Which ranks retrained designs better: the search's 131k-token rung, or parameter count?

  python3 bench/capacity_rank.py results/compare/retrained-2.1M.tsv

Reads a tab-separated table (lines starting with # are comments) with the
columns params, rung131k and bpb_2.1M_seed0, and prints the Spearman rank
agreement with the retrained result of (i) the rung's loss (lower first) and
(ii) the parameter count (larger first), over every row.
"""
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from rung_extrapolation import spearman  # noqa: E402


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    lines = [l for l in pathlib.Path(sys.argv[1]).read_text().splitlines() if l.strip() and not l.startswith("#")]
    head = lines[0].split("\t")
    rows = [dict(zip(head, l.split("\t"))) for l in lines[1:]]
    truth = [float(r["bpb_2.1M_seed0"]) for r in rows]
    rung = [float(r["rung131k"]) for r in rows]
    neg_params = [-float(r["params"]) for r in rows]
    print(f"{len(rows)} designs retrained to 2.1M tokens (seed 0)")
    print(f"Spearman with the retrained bits/byte: 131k rung {spearman(rung, truth):+.2f}, "
          f"parameter count {spearman(neg_params, truth):+.2f}")


if __name__ == "__main__":
    main()
