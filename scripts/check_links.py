#!/usr/bin/env python3
"""Check the relative links of the repository's Markdown files.

  python3 scripts/check_links.py [ROOT]

Every link or image `[text](target)` in README.md, docs/**/*.md and
results/**/*.md whose target is a path (not a URL or an anchor alone) must
name a file or folder that exists, and an anchor `path#frag` in a Markdown
file must match one of its headings. Prints each broken link as
FILE:LINE: target and exits 1 when there is any.
"""
import pathlib
import re
import sys


def anchors(md):
    out = set()
    fence = False
    for line in md.read_text().splitlines():
        if line.startswith("```"):
            fence = not fence
        m = None if fence else re.match(r"^#+\s+(.*)", line)
        if m:
            t = m.group(1).strip().lower()
            t = re.sub(r"[^\w\- ]", "", t).replace(" ", "-")
            out.add(t)
    return out


def main():
    root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else pathlib.Path(__file__).resolve().parent.parent)
    files = [root / "README.md", *sorted((root / "docs").rglob("*.md")), *sorted((root / "results").rglob("*.md"))]
    bad = 0
    for f in files:
        fence = False
        for n, line in enumerate(f.read_text().splitlines(), 1):
            if line.startswith("```"):
                fence = not fence
            if fence:
                continue
            for target in re.findall(r"\]\(([^)\s]+)\)", line):
                if re.match(r"^(https?:|mailto:)", target) or target.startswith("#"):
                    continue
                path, _, frag = target.partition("#")
                p = (f.parent / path).resolve()
                if not p.exists():
                    print(f"{f.relative_to(root)}:{n}: {target}: no such file")
                    bad += 1
                elif frag and p.suffix == ".md" and frag not in anchors(p):
                    print(f"{f.relative_to(root)}:{n}: {target}: no heading #{frag}")
                    bad += 1
    if bad:
        print(f"check_links: {bad} broken link(s)", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
