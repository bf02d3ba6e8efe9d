#!/usr/bin/env python3
"""The table of `make irqsoff`, from the guest's irqsoff.jsonl.

usage: irqsoff-report.py IRQSOFF.JSONL [--max-ratio R]

One row per operation and N, one column per module: the longest
interrupts-off section (tracing_max_latency, us of guest time) and the
operation's own time; then, per row, where that section was (the first stack
frame past the lock and irq-flags plumbing, and the section's start and end
points). With --max-ratio, exits 1 if an operation's figure at the largest N
exceeds R times its figure at the smallest N.
"""
import json
import re
import sys

MODULES = [("rust", "rust_irqfd"), ("c", "c_irqfd")]
# Frames of the tracer, the irq-flags hooks and the lock primitives: the
# "top" function is the first frame past them.
PLUMBING = re.compile(
    r"^(trace_|tracer_|__trace|stack_trace|check_critical|stop_critical|start_critical|"
    r"time_hardirqs|_raw_|__raw_|raw_spin|do_raw_|queued_|lock_|__lock_|preempt_|"
    r"arch_local|native_|local_irq|irqentry_|_local_bh|__local_bh|"
    r"spin_unlock|spin_lock|__wake_up_common_lock|ftrace)"
)


def top(stack):
    for frame in stack:
        name = frame.split()[0] if frame.split() else frame
        if not PLUMBING.match(name):
            return frame
    return stack[0] if stack else "?"


def main():
    args = sys.argv[1:]
    max_ratio = None
    if "--max-ratio" in args:
        i = args.index("--max-ratio")
        max_ratio = float(args[i + 1])
        del args[i:i + 2]
    if len(args) != 1:
        sys.exit(__doc__)
    runs = {}
    for line in open(args[0]):
        line = line.strip()
        if not line.startswith("{"):
            continue
        r = json.loads(line)
        runs[(r["label"], r["n"])] = r
    if not runs:
        sys.exit("irqsoff-report: no runs in %s" % args[0])
    ns = sorted({n for (_, n) in runs})
    mods = [(k, name) for k, name in MODULES if any(l == k for (l, _) in runs)]
    # Operations in run order, each with its description at each N.
    ops, what = [], {}
    for (label, n), r in sorted(runs.items(), key=lambda kv: kv[0][1]):
        for o in r["ops"]:
            if o["op"] not in ops:
                ops.append(o["op"])
            what[(o["op"], n)] = o["what"]

    def get(label, n, op):
        r = runs.get((label, n))
        return next((o for o in r["ops"] if o["op"] == op), None) if r else None

    print("Longest interrupts-off section per operation (tracing_max_latency, us of guest")
    print("time; QEMU TCG -icount shift=0: 1 ns = 1 instruction), and the operation's time.")
    print("nr_gsis %s; the irqfds are on GSI 0 .. nr_gsis-2 one each, the rest on the last GSI."
          % ", ".join(sorted({str(r["nr_gsis"]) for r in runs.values()})))
    print()
    w = max(len(what[k]) for k in what) + 2
    head = "%-*s" % (w, "operation")
    for _, name in mods:
        head += "%22s" % (name + " us (op ms)")
    print(head)
    print("-" * len(head))
    for op in ops:
        for n in ns:
            if (op, n) not in what:
                continue
            row = "%-*s" % (w, what[(op, n)])
            for label, _ in mods:
                o = get(label, n, op)
                row += "%22s" % ("%d (%.1f)" % (o["max_us"], o["op_ns"] / 1e6) if o else "-")
            print(row)
    print()
    print("Where the longest section was: top frame [start -> end]")
    for op in ops:
        for n in ns:
            for label, name in mods:
                o = get(label, n, op)
                if not o:
                    continue
                print("  %-15s n=%-6d %-10s %6d us  %s [%s -> %s]" % (
                    op, n, name, o["max_us"], top(o["stack"]), o["started"] or "?",
                    o["ended"] or "?"))
    rc = 0
    if len(ns) > 1:
        lo, hi = ns[0], ns[-1]
        print()
        print("Growth: figure at n=%d / figure at n=%d (%.0fx more irqfds)" % (hi, lo, hi / lo))
        for op in ops:
            cells = []
            for label, name in mods:
                a, b = get(label, lo, op), get(label, hi, op)
                if not a or not b:
                    continue
                ratio = b["max_us"] / max(a["max_us"], 1)
                flag = ""
                if max_ratio is not None and ratio > max_ratio:
                    flag = " > %g: FAIL" % max_ratio
                    rc = 1
                cells.append("%s %.1fx%s" % (name, ratio, flag))
            print("  %-15s %s" % (op, ", ".join(cells)))
    sys.exit(rc)


if __name__ == "__main__":
    main()
