#!/usr/bin/env python3
"""Derives the agent demo's tool-calling records from the Python documentation
already on the machine (Debian's python3-doc): no download, deterministic.

Every documented function (``.. function:: name(params)`` in the library
reference's reStructuredText sources) whose first sentence is unique is a
candidate tool; `--tools` of them, picked by a seeded hash of their names,
make the agent's tool set (an agent knows tens to hundreds of tools, not
thousands). Each tool yields `--per-tool` records: the prompt asks in words for the
call (the tool's first sentence and the argument values), the completion is
the JSON call: {"name": "module.function", "arguments": {...}}. Half the
records are prompt/completion records, half chat records (a system message,
the user's request, the assistant's call), so both forms of flashnas's task
data are exercised. Argument values come from a seeded generator keyed by the
parameter's name, so the same sources give the same file on every machine.

    python3 scripts/agent_data.py --docs /usr/share/doc/python3/html/_sources \
        --out out/agent-demo/calls.jsonl
"""
import argparse
import hashlib
import json
import os
import random
import re
import sys

SYSTEM = "You call Python standard-library functions. Answer with one JSON call."

PATHS = ["/tmp/report.csv", "data/input.txt", "notes.md", "/var/log/syslog", "config.toml", "build/out.json",
         "/home/ana/photo.png", "src/main.py"]
WORDS = ["alpha", "beta", "gamma", "delta", "spam", "eggs", "hello", "world", "utf-8", "json", "admin", "queue"]
ROLE = re.compile(r":[a-z]+:`~?([^`<]*?)(?:\s*<[^>]*>)?`")


def clean(text):
    """reStructuredText inline markup to plain words."""
    text = ROLE.sub(r"\1", text)
    text = re.sub(r"``([^`]*)``", r"\1", text)
    text = re.sub(r"\*+([^*]+)\*+", r"\1", text)
    return re.sub(r"\s+", " ", text).strip()


def first_sentence(lines):
    body = []
    for line in lines:
        if not line.strip():
            if body:
                break
            continue
        if not line.startswith("   ") or line.strip().startswith(".."):
            break
        body.append(line.strip())
    text = clean(" ".join(body))
    m = re.match(r"(.+?[.!?])(\s|$)", text)
    return m.group(1) if m else ""


def parse_params(sig):
    """Parameter names of a documented signature: (required, optional)."""
    required, optional = [], []
    depth = 0
    for part in re.split(r"(,|\[|\])", sig):
        if part == "[":
            depth += 1
            continue
        if part == "]":
            depth -= 1
            continue
        if part == "," or not part.strip():
            continue
        name = part.strip()
        has_default = "=" in name
        name = name.split("=")[0].strip()
        if name in ("*", "/", "...") or name.startswith("*"):
            continue
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
            return None
        (optional if depth > 0 or has_default else required).append(name)
    return required, optional


def value_for(name, rng):
    n = name.lower()
    if any(k in n for k in ("path", "file", "dir", "src", "dst")):
        return rng.choice(PATHS)
    if n in ("n", "k", "i", "size", "count", "length", "index", "maxsize", "width", "depth", "level", "year",
             "month", "day", "hour", "minute", "second", "start", "stop", "step", "timeout", "port", "fd", "pid",
             "mode", "flags", "base", "bufsize", "lo", "hi", "number", "nbytes", "indent"):
        return rng.randint(1, 64)
    if n in ("x", "y", "a", "b", "value", "arg", "z", "p", "q"):
        return rng.choice([rng.randint(-9, 99), round(rng.uniform(-10, 10), 2)])
    if n.startswith(("is", "use", "follow", "strict", "exist", "keep", "recursive", "reverse")) or n in ("block", "wait"):
        return rng.choice([True, False])
    return rng.choice(WORDS)


def tools(docs):
    """(qualified name, first sentence, required, optional), unique sentences only."""
    found = []
    lib = os.path.join(docs, "library")
    for fname in sorted(os.listdir(lib)):
        if not fname.endswith(".rst.txt"):
            continue
        with open(os.path.join(lib, fname), encoding="utf-8") as f:
            lines = f.read().splitlines()
        module = None
        for i, line in enumerate(lines):
            m = re.match(r"\.\. (?:module|currentmodule):: ([\w.]+)", line)
            if m:
                module = m.group(1)
                continue
            m = re.match(r"\.\. function:: ([a-z_][\w]*)\((.*)\)\s*$", line)
            if not m or not module:
                continue
            params = parse_params(m.group(2))
            sentence = first_sentence(lines[i + 1:])
            if params is None or not (20 <= len(sentence) <= 140) or len(params[0]) + len(params[1]) > 4:
                continue
            found.append((module + "." + m.group(1), sentence, params[0], params[1]))
    counts = {}
    for _, s, _, _ in found:
        counts[s] = counts.get(s, 0) + 1
    seen, out = set(), []
    for t in found:
        if counts[t[1]] == 1 and t[0] not in seen:
            seen.add(t[0])
            out.append(t)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--docs", required=True, help="the Python documentation's _sources folder")
    ap.add_argument("--out", required=True, help="JSONL file to write")
    ap.add_argument("--tools", type=int, default=100, help="tools in the agent's set (default 100; 0: every candidate)")
    ap.add_argument("--per-tool", type=int, default=30, help="records per tool (default 30)")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    if not os.path.isdir(os.path.join(a.docs, "library")):
        sys.exit(f"agent_data.py: --docs {a.docs}: no library/ folder of reStructuredText sources (install python3-doc)")
    found = tools(a.docs)
    if not found:
        sys.exit(f"agent_data.py: --docs {a.docs}: no documented functions found")
    if a.tools < 0 or a.per_tool < 1:
        sys.exit("agent_data.py: --tools must be >= 0 and --per-tool >= 1")
    if a.tools:
        pick = sorted(found, key=lambda t: hashlib.sha256(f"{a.seed}:{t[0]}".encode()).hexdigest())[:a.tools]
        found = [t for t in found if t in pick]  # documentation order
    records = []
    for name, sentence, required, optional in found:
        key = int(hashlib.sha256(f"{a.seed}:{name}".encode()).hexdigest()[:16], 16)
        rng = random.Random(key)
        for k in range(a.per_tool):
            args = {p: value_for(p, rng) for p in required}
            for p in optional:
                if rng.random() < 0.3:
                    args[p] = value_for(p, rng)
            call = json.dumps({"name": name, "arguments": args})
            given = ", ".join(f"{p}={json.dumps(v)}" for p, v in args.items())
            request = sentence + (f" Use {given}." if given else " No arguments.")
            if k % 2 == 0:
                records.append({"prompt": "Request: " + request + "\nCall: ", "completion": call})
            else:
                records.append({"messages": [{"role": "system", "content": SYSTEM},
                                             {"role": "user", "content": request},
                                             {"role": "assistant", "content": call}]})
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    tmp = a.out + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    os.replace(tmp, a.out)
    print(f"{a.out}: {len(records)} records for {len(found)} tools")


if __name__ == "__main__":
    main()
