#!/usr/bin/env python3
"""Function lengths in the library and the CLI: a ratchet against long functions.

Lists every function (free, member, defined in or out of its class) longer than
--limit lines (default 150) in the C++ sources of the project's layers. Each one
must be named in scripts/long_functions.txt with at most its recorded length:
a new function over the limit, or a listed one that grew, fails the check. A
listed function that got shorter than its entry (or under the limit) is
reported so that the list can be tightened (--write rewrites it).

    python3 scripts/check_function_length.py [ROOT] [--limit 150] [--write]

Exit status: 0 when every long function is listed within its length, 1 otherwise.
The scan is lexical (comments and literals blanked, braces matched), which is
enough for this code base: no macros that open or close braces.
"""
import argparse
import os
import re
import sys

LAYERS = ["common", "profiler", "supernet", "train", "study", "search", "compare", "export", "report", "cli"]
ALLOWLIST = os.path.join("scripts", "long_functions.txt")


def blank(text):
    """Comments, string and character literals replaced by spaces (newlines kept)."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == "R" and text.startswith('R"', i) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            m = re.match(r'R"([^(\s]*)\(', text[i:])
            if not m:
                out.append(c)
                i += 1
                continue
            end = ")" + m.group(1) + '"'
            j = text.find(end, i + m.end())
            j = n if j < 0 else j + len(end)
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            j = min(n, j + 1)
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        else:
            out.append(c)
            i += 1
    return "".join(out)


def functions(path):
    """(name, first line, line count) of every function body not inside another function."""
    text = blank(open(path, encoding="utf-8").read())
    found = []
    stack = []  # per open brace: "scope" (namespace, class) | "function" | "other"
    header_start = 0
    open_function = None  # (name, line) of the function whose body is open
    for i, c in enumerate(text):
        if c == "{":
            header = text[header_start:i]
            inside_function = any(k == "function" for k in stack)
            kind = "other"
            if not inside_function:
                h = " ".join(header.split())
                if re.search(r"\bnamespace\b[\w:\s]*$", h) or re.search(r'\bextern\s*$', h):
                    kind = "scope"
                elif re.search(r"\b(class|struct|union|enum)\b[^()]*$", h) and not h.rstrip().endswith(")"):
                    kind = "scope"
                elif ")" in h and not re.search(r"=\s*$", h):
                    kind = "function"
                    m = re.search(r"([~\w:<>]+(?:operator\s*\S+)?)\s*\(", h)
                    name = m.group(1) if m else h[:40]
                    open_function = (name, text.count("\n", 0, header_start + len(header) - len(header.lstrip())) + 1)
            stack.append(kind)
            header_start = i + 1
        elif c == "}":
            kind = stack.pop() if stack else "other"
            if kind == "function" and open_function:
                name, first = open_function
                last = text.count("\n", 0, i) + 1
                found.append((name, first, last - first + 1))
                open_function = None
            header_start = i + 1
        elif c == ";" and not any(k == "function" for k in stack):
            header_start = i + 1
    return found


def scan(root, limit):
    long = {}
    for layer in LAYERS:
        base = os.path.join(root, layer)
        for dirpath, _, files in os.walk(base):
            for f in sorted(files):
                if not f.endswith((".cpp", ".h", ".cu")):
                    continue
                path = os.path.join(dirpath, f)
                rel = os.path.relpath(path, root)
                for name, first, count in functions(path):
                    if count > limit:
                        key = f"{rel}:{name}"
                        # Two overloads of one name in a file: the longer one is listed.
                        if count > long.get(key, (0, 0))[0]:
                            long[key] = (count, first)
    return long


def read_allowlist(path):
    allowed = {}
    if not os.path.exists(path):
        return allowed
    for k, line in enumerate(open(path, encoding="utf-8"), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.rsplit(None, 1)
        if len(parts) != 2 or not parts[1].isdigit():
            sys.exit(f"{path}:{k}: expected 'path:function lines', got {line!r}")
        allowed[parts[0]] = int(parts[1])
    return allowed


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("root", nargs="?", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    ap.add_argument("--limit", type=int, default=150, help="lines a function may have without a listing (default 150)")
    ap.add_argument("--write", action="store_true", help="rewrite the list from the sources as they are")
    a = ap.parse_args()
    root = os.path.abspath(a.root)
    listed = os.path.join(root, ALLOWLIST)
    long = scan(root, a.limit)
    if a.write:
        with open(listed + ".tmp", "w", encoding="utf-8") as f:
            f.write(f"# Functions over {a.limit} lines and their length in lines, longest first\n"
                    "# (scripts/check_function_length.py). Each may shrink, none may grow; a new one over the\n"
                    "# limit fails the check. Split them as they are touched.\n")
            for key, (count, _) in sorted(long.items(), key=lambda kv: -kv[1][0]):
                f.write(f"{key} {count}\n")
        os.replace(listed + ".tmp", listed)
        print(f"{ALLOWLIST}: {len(long)} functions over {a.limit} lines")
        return 0
    allowed = read_allowlist(listed)
    bad = []
    for key, (count, first) in sorted(long.items()):
        if key not in allowed:
            bad.append(f"{key.split(':')[0]}:{first}: {key.split(':', 1)[1]} has {count} lines, over the limit of {a.limit}; "
                       f"split it (or, with a reason, add it to {ALLOWLIST})")
        elif count > allowed[key]:
            bad.append(f"{key.split(':')[0]}:{first}: {key.split(':', 1)[1]} grew to {count} lines from the {allowed[key]} "
                       f"{ALLOWLIST} allows; split what was added")
    for key, n in sorted(allowed.items()):
        now = long.get(key, (0, 0))[0]
        if now < n:
            print(f"note: {key} is {now or 'under ' + str(a.limit)} lines now (listed at {n}); tighten {ALLOWLIST} "
                  f"(--write)")
    total = sum(c for c, _ in long.values())
    print(f"{len(long)} functions over {a.limit} lines ({total} lines in all), {len(allowed)} listed")
    for b in bad:
        print("error: " + b, file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
