#!/usr/bin/env python3
"""The table of `make irqsoff`, from the guest's irqsoff.jsonl.

usage: irqsoff-report.py IRQSOFF.JSONL [--max-ratio R [--floor-us F]]

One row per operation and N, one column per module: the longest
interrupts-off section (tracing_max_latency, us of guest time) and the
operation's own time; then, per row, where that section was (the first stack
frame past the lock and irq-flags plumbing, and the section's start and end
points). With --max-ratio, exits 1 if an operation's figure at the largest N
exceeds R times the larger of its figure at the smallest N and F us (default
100: sections of the kernel's own, the page allocator's or a timer's, reach
tens of us whatever the module does, and would make a ratio of small figures
meaningless).
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


def rust_name(sym):
    """A Rust v0 symbol (_R...) as module::item, from its identifiers (a
    heuristic, not a demangler: enough to tell the module's functions apart)."""
    if not sym.startswith("_R"):
        return sym
    idents, i = [], 2
    while i < len(sym):
        c = sym[i]
        if c.isdigit():
            j = i
            while j < len(sym) and sym[j].isdigit():
                j += 1
            n = int(sym[i:j])
            if sym[j:j + 1] == "_":  # an identifier starting with a digit
                j += 1
            idents.append(sym[j:j + n])
            i = j + n
        elif c in "BC" or (c == "s" and re.match(r"s[0-9A-Za-z]*_", sym[i:])):
            # A back-reference, a crate root's or an item's disambiguator.
            i = sym.index("_", i + 1) + 1 if "_" in sym[i + 1:] else len(sym)
        else:
            i += 1
    if len(idents) < 2:
        return sym
    return "%s::%s" % (idents[1], idents[-1])


def frame_name(frame):
    name = frame.split()[0] if frame.split() else frame
    return rust_name(name)


def top(stack):
    for frame in stack:
        name = frame.split()[0] if frame.split() else frame
        if not PLUMBING.match(name):
            return frame_name(frame)
    return frame_name(stack[0]) if stack else "?"


def main():
    args = sys.argv[1:]
    max_ratio, floor = None, 100
    if "--max-ratio" in args:
        i = args.index("--max-ratio")
        max_ratio = float(args[i + 1])
        del args[i:i + 2]
    if "--floor-us" in args:
        i = args.index("--floor-us")
        floor = int(args[i + 1])
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
    w = max(len(what[k]) for k in what) + 17
    head = "%-*s" % (w, "operation")
    for _, name in mods:
        head += "%22s" % (name + " us (op ms)")
    print(head)
    print("-" * len(head))
    for op in ops:
        for n in ns:
            if (op, n) not in what:
                continue
            row = "%-*s" % (w, "%-15s %s" % (op, what[(op, n)]))
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
        print("Growth: figure at n=%d / figure at n=%d (%.0fx more irqfds)%s" % (
            hi, lo, hi / lo,
            "; fails above %g x max(figure at n=%d, %d us)" % (max_ratio, lo, floor)
            if max_ratio is not None else ""))
        for op in ops:
            cells = []
            for label, name in mods:
                a, b = get(label, lo, op), get(label, hi, op)
                if not a or not b:
                    continue
                ratio = b["max_us"] / max(a["max_us"], 1)
                flag = ""
                if max_ratio is not None and b["max_us"] > max_ratio * max(a["max_us"], floor):
                    flag = " (%d us > %g x %d us: FAIL)" % (
                        b["max_us"], max_ratio, max(a["max_us"], floor))
                    rc = 1
                cells.append("%s %.1fx%s" % (name, ratio, flag))
            print("  %-15s %s" % (op, ", ".join(cells)))
    sys.exit(rc)


if __name__ == "__main__":
    main()
