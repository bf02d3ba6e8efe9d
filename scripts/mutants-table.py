#!/usr/bin/env python3
"""Summarise `make mutants`: one row per mutant and module, saying which test or
which kernel splat caught it and how long after the test run began.

usage: mutants-table.py OUTDIR none MUTANT...
Exit status 0 only if every mutant is caught in every module it has a patch
for (mutants/rust/<name>.patch, mutants/c/<name>.patch) and the clean build
("none") is caught by nothing.
"""
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vmcheck import ktap  # noqa: E402

TS = re.compile(r"^\[\s*(\d+\.\d+)\]")
TOPDIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def planted_in(m, mod):
    """Whether mutant m has a patch for module mod (the clean build: both)."""
    lang = "rust" if mod == "rust_irqfd" else "c"
    return m == "none" or os.path.exists(f"{TOPDIR}/mutants/{lang}/{m}.patch")


def first_failure(run):
    """(seconds after the first pass began, what) of the earliest failure."""
    passes = {}
    p = f"{run}/out/passes.txt"
    if os.path.exists(p):
        for line in open(p):
            name, up = line.split()
            passes[name] = float(up)
    # The payload marks each pass in the kernel log too, which survives a crash.
    log_path = f"{run}/console.log"
    if not passes and os.path.exists(log_path):
        for line in open(log_path, errors="replace"):
            m = re.search(r"^\[\s*(\d+\.\d+)\] rust_irqfd_test: pass (\w+) begin", line.strip())
            if m:
                passes.setdefault(m.group(2), float(m.group(1)))
    t0 = min(passes.values()) if passes else None
    best = None
    # Failing tests, by the uptime stamp of their result line.
    for name in sorted(passes):
        f = f"{run}/out/ktap-{name}.txt"
        if not os.path.exists(f):
            continue
        for line in open(f, errors="replace"):
            up, _, rest = line.rstrip("\n").partition(" ")
            for r in ktap(rest):
                if r["verdict"] == "fail" and r["depth"] >= 1:
                    cand = (float(up), f"test {r['name']} ({name})")
                    if best is None or cand[0] < best[0]:
                        best = cand
                    break
    # Kernel splats, by their printk timestamp.
    res = json.load(open(f"{run}/results.json")) if os.path.exists(f"{run}/results.json") else {}
    for s in res.get("splats", []):
        lines = open(f"{run}/console.log", errors="replace").read().splitlines()
        for i, line in enumerate(lines):
            if s["line"] in line:
                m = TS.match(line.strip())
                if m:
                    what = s["line"]
                    if "cut here" in what and i + 1 < len(lines):
                        # The line after the marker says what the warning is.
                        what = re.sub(r"^\[\s*[\d.]+\]\s*", "", lines[i + 1].strip())
                    cand = (float(m.group(1)), f"splat {s['kind']}: {what[:60]}")
                    if best is None or cand[0] < best[0]:
                        best = cand
                break
    if best is None:
        for p in res.get("problems", []):
            if "did not finish" in p and t0 is not None:
                # A hang: the guest went silent. Its last kernel message dates it.
                stamps = [float(m.group(1)) for m in
                          (TS.match(l.strip()) for l in open(f"{run}/console.log", errors="replace"))
                          if m]
                if stamps:
                    return (max(stamps) - t0, "hang: guest silent after this (VM timeout)")
            return (None, p[:70])
        return None
    return (best[0] - t0 if t0 is not None else None, best[1])


def main():
    out, names = sys.argv[1], sys.argv[2:]
    rows, ok = [], True
    for m in names:
        for mod in ("rust_irqfd", "c_irqfd"):
            run = f"{out}/{m}/{mod}"
            if not planted_in(m, mod):
                rows.append((m, mod, "n/a", "no such bug in this module", ""))
                continue
            if not os.path.isdir(run):
                rows.append((m, mod, "NOT RUN", "-", ""))
                ok = False
                continue
            hit = first_failure(run)
            caught = hit is not None
            if m == "none":
                verdict = "clean: PASS" if not caught else "clean: FAIL"
                ok &= not caught
            else:
                verdict = "caught" if caught else "MISSED"
                ok &= caught
            secs = "" if not hit or hit[0] is None else f"{hit[0]:.1f}s"
            rows.append((m, mod, verdict, hit[1] if hit else "-", secs))
    w = [max(len(r[i]) for r in rows + [("mutant", "module", "verdict", "caught by", "time")]) for i in range(5)]
    lines = []
    fmt = "  ".join("{:<%d}" % x for x in w)
    lines.append(fmt.format("mutant", "module", "verdict", "caught by", "time"))
    lines += [fmt.format(*r) for r in rows]
    text = "\n".join(lines)
    print(text)
    open(f"{out}/table.txt", "w").write(text + "\n")
    json.dump([dict(zip(("mutant", "module", "verdict", "caught_by", "time"), r)) for r in rows],
              open(f"{out}/table.json", "w"), indent=1)
    caught = sum(r[2] == "caught" for r in rows)
    total = sum(r[0] != "none" and r[2] != "n/a" for r in rows)
    print(f"mutants: {caught} of {total} caught; clean build {'passes' if all(r[2] == 'clean: PASS' for r in rows if r[0] == 'none') else 'FAILS'}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
