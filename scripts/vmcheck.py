#!/usr/bin/env python3
"""Judge a VM run: KTAP results, kernel splats, kmemleak, timeouts.

usage: vmcheck.py OUTDIR [--ktap-only]

Reads OUTDIR/console.log (written by vm.sh), prints the payload's output, every
splat with its context, and a summary; writes OUTDIR/results.json. Exits 0 only
if the guest finished, the payload passed, and the kernel said nothing bad.
"""
import json
import os
import re
import sys

# What counts as a kernel splat. Each is a failure, whatever the tests said.
SPLATS = [
    (r"rust_kernel: panicked at", "rust-panic"),
    (r"BUG: KASAN", "KASAN"),
    (r"BUG: KFENCE", "KFENCE"),
    (r"WARNING: possible circular locking dependency", "lockdep"),
    (r"WARNING: possible recursive locking", "lockdep"),
    (r"WARNING: inconsistent lock state", "lockdep"),
    (r"WARNING: .*lock.* (held|imbalance|detected)", "lockdep"),
    (r"INFO: possible irq lock inversion", "lockdep"),
    (r"BUG: sleeping function called from invalid context", "atomic-sleep"),
    (r"BUG: scheduling while atomic", "atomic-sleep"),
    (r"ODEBUG:", "debugobjects"),
    (r"list_(add|del) corruption", "list-debug"),
    (r"INFO: task .* blocked for more than", "hung-task"),
    (r"watchdog: BUG: soft lockup", "soft-lockup"),
    (r"rcu: INFO: rcu_.* detected stalls", "rcu-stall"),
    (r"Oops:", "oops"),
    (r"general protection fault", "oops"),
    (r"Kernel panic", "panic"),
    (r"WARNING: CPU: \d+ PID: \d+", "WARN"),
    (r"------------\[ cut here \]------------", "WARN"),
    (r"BUG: ", "BUG"),
    (r"kernel BUG at", "BUG"),
    (r"UBSAN:", "UBSAN"),
    (r"unreferenced object 0x", "kmemleak"),
]
SPLAT_RE = [(re.compile(p), k) for p, k in SPLATS]
KTAP_RE = re.compile(r"^(\s*)(ok|not ok) (\d+)(?: ([^#]*?))?\s*(?:#\s*(SKIP|TODO|XFAIL)\b(.*))?$")


def section(text, name):
    m = re.search(r"===%s-BEGIN===\r?\n(.*?)===%s-END===" % (name, name), text, re.S)
    return m.group(1) if m else None


def splats(lines):
    """Every splat line, with the 25 lines after it, deduplicated by first line."""
    found, seen = [], set()
    for i, line in enumerate(lines):
        for rx, kind in SPLAT_RE:
            if rx.search(line):
                head = re.sub(r"^\[\s*[\d.]+\]\s*", "", line.strip())
                if head not in seen:
                    seen.add(head)
                    found.append({"kind": kind, "line": head, "context": lines[i:i + 25]})
                break
    return found


def ktap(text):
    """Leaf results of a (possibly nested) KTAP stream: a result line is a leaf
    unless it closes a subtest, i.e. unless a deeper-indented result precedes it
    since the previous result at its own depth."""
    results, stack = [], []  # stack of (indent, had_children)
    for raw in text.splitlines():
        m = KTAP_RE.match(raw.rstrip())
        if not m:
            continue
        indent = len(m.group(1).expandtabs())
        status, name = m.group(2), (m.group(4) or "").strip()
        directive = (m.group(5) or "").upper()
        # A result at depth d closes any subtests deeper than d.
        has_children = any(i > indent for i, _ in stack)
        stack = [s for s in stack if s[0] < indent]
        stack.append((indent, True))
        if has_children and directive != "SKIP":
            continue
        if directive == "SKIP":
            verdict = "skip"
        elif status == "ok":
            verdict = "pass"
        else:
            verdict = "fail"
        if has_children and directive == "SKIP":
            pass
        results.append({"name": name, "depth": indent // 4, "verdict": verdict})
    return results


def main():
    out = sys.argv[1]
    log = open(f"{out}/console.log", errors="replace").read()
    qemu_rc = open(f"{out}/qemu.rc").read().strip() if os.path.exists(f"{out}/qemu.rc") else "?"
    os.makedirs(f"{out}/out", exist_ok=True)
    for name, body in re.findall(r"===OUTFILE ([^=\s]+)===\r?\n(.*?)===OUTFILE-END===", log, re.S):
        with open(f"{out}/out/{os.path.basename(name)}", "w") as f:
            f.write(body.replace("\r\n", "\n"))
    payload = section(log, "PAYLOAD")
    dmesg = section(log, "DMESG") or ""
    leaks = section(log, "KMEMLEAK")
    m = re.search(r"===PAYLOAD-EXIT (\d+)===", log)
    payload_rc = int(m.group(1)) if m else None

    problems = []
    if payload is None or payload_rc is None:
        problems.append("the guest did not finish (qemu exit %s%s): last console lines below"
                        % (qemu_rc, ", timed out" if qemu_rc == "124" else ""))
    # Splats: the live console (covers hangs and panics) and the final dmesg.
    found = splats(log.splitlines())
    if leaks and "unreferenced object" in leaks:
        found += [s for s in splats(leaks.splitlines()) if s["kind"] == "kmemleak"][:1] or []

    if payload is not None:
        print(payload.rstrip())
    results = ktap(payload or "")
    passed = sum(r["verdict"] == "pass" for r in results)
    failed = sum(r["verdict"] == "fail" for r in results)
    skipped = sum(r["verdict"] == "skip" for r in results)
    if payload_rc not in (None, 0, 4):
        problems.append(f"the payload exited with {payload_rc}")
    for s in found:
        problems.append(f"kernel splat ({s['kind']}): {s['line']}")
        print(f"\n--- kernel splat: {s['kind']} ---")
        print("\n".join(l.rstrip() for l in s["context"]))
    if payload is None:
        print("\n--- last console lines ---")
        print("\n".join(log.splitlines()[-60:]))

    json.dump({"passed": passed, "failed": failed, "skipped": skipped,
               "payload_rc": payload_rc, "qemu_rc": qemu_rc,
               "splats": [{k: s[k] for k in ("kind", "line")} for s in found],
               "problems": problems, "tests": results},
              open(f"{out}/results.json", "w"), indent=1)
    for p in problems:
        print(f"vm: FAIL: {p}")
    print(f"vm: {passed} passed, {failed} failed, {skipped} skipped, {len(found)} splats")
    sys.exit(1 if problems or failed else 0)


if __name__ == "__main__":
    main()
