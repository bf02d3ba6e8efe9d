#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Turn the guest's bench.jsonl into ratios: a table, a JSON file and a
latency CDF plot (SVG).

usage: bench-report.py BENCH_JSONL OUTDIR [--title TEXT] [--clock MODE] [--smoke]

Every ratio is taken inside one round (the Rust and C runs of a round sit side
by side in time), then summarised over the rounds as a median and its
interval (min..max over the rounds). Absolute times are reported for
reference only. A target is decided only by the interval: met when all of it
is on the target's side, missed when all of it is on the other, undecided
when it straddles the target. --clock names how the guest kept time (icount:
QEMU's instruction count, the decided mode; wall: the host's clock), printed
with the table. With --smoke only the presence of every kind of figure is
checked (timings on the debug kernel mean nothing).
"""
import json
import math
import statistics
import sys
from collections import defaultdict
from pathlib import Path

CURVES = [("floor", "raw eventfd (floor)", "#777777"),
          ("rust", "rust_irqfd", "#d9480f"),
          ("c", "c_irqfd", "#1c7ed6"),
          ("rust_deferred", "rust_irqfd, deferred only", "#e8a317")]


def pct(sorted_v, p):
    if not sorted_v:
        return float("nan")
    k = min(len(sorted_v) - 1, max(0, math.ceil(p / 100 * len(sorted_v)) - 1))
    return sorted_v[k]


def summary(ratios):
    """Median and spread of per-round ratios."""
    ratios = [r for r in ratios if r == r and r not in (math.inf, -math.inf)]
    if not ratios:
        return None
    return {"median": statistics.median(ratios), "min": min(ratios),
            "max": max(ratios), "rounds": len(ratios)}


def verdict(s, target, le):
    """met, missed or undecided: whether the interval of the per-round ratios
    `s` lies all at or below `target` (le) / at or above it (not le), all on
    the other side, or across it."""
    if s is None:
        return "undecided"
    lo, hi = s["min"], s["max"]
    if le:
        return "met" if hi <= target else "missed" if lo > target else "undecided"
    return "met" if lo >= target else "missed" if hi < target else "undecided"


def fmt_ratio(s):
    if s is None:
        return "n/a"
    return f"{s['median']:.3f} ({s['min']:.3f}..{s['max']:.3f}, {s['rounds']} rounds)"


def svg_cdf(lat, path, title):
    """Latency CDFs, log-scale x axis, one polyline per curve."""
    w, h, ml, mr, mt, mb = 760, 440, 70, 20, 40, 60
    allv = [v for label, _, _ in CURVES for v in lat.get(label, [])]
    if not allv:
        return
    lo = max(min(allv), 1) / 1000.0
    hi = pct(sorted(allv), 99.9) / 1000.0 * 1.2
    lo_l, hi_l = math.floor(math.log10(lo)), math.ceil(math.log10(max(hi, lo * 10)))

    def x(us):
        us = min(max(us, 10 ** lo_l), 10 ** hi_l)
        return ml + (math.log10(us) - lo_l) / (hi_l - lo_l) * (w - ml - mr)

    def y(f):
        return mt + (1 - f) * (h - mt - mb)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
           f'font-family="sans-serif" font-size="12">',
           f'<rect width="{w}" height="{h}" fill="white"/>',
           f'<text x="{w / 2}" y="22" text-anchor="middle" font-size="14">{title}</text>']
    for d in range(lo_l, hi_l + 1):
        for m in (1, 2, 5):
            v = m * 10 ** d
            if v > 10 ** hi_l:
                break
            out.append(f'<line x1="{x(v):.1f}" y1="{mt}" x2="{x(v):.1f}" y2="{h - mb}" '
                       f'stroke="#e5e5e5"/>')
            label = f"{v:g}"
            out.append(f'<text x="{x(v):.1f}" y="{h - mb + 16}" text-anchor="middle">{label}</text>')
    for f in (0, 0.25, 0.5, 0.75, 0.9, 0.99, 1):
        out.append(f'<line x1="{ml}" y1="{y(f):.1f}" x2="{w - mr}" y2="{y(f):.1f}" stroke="#e5e5e5"/>')
        out.append(f'<text x="{ml - 6}" y="{y(f) + 4:.1f}" text-anchor="end">{f:g}</text>')
    out.append(f'<rect x="{ml}" y="{mt}" width="{w - ml - mr}" height="{h - mt - mb}" '
               f'fill="none" stroke="black"/>')
    out.append(f'<text x="{(ml + w - mr) / 2}" y="{h - 20}" text-anchor="middle">'
               f'eventfd write(2) to delivery read, microseconds (log scale)</text>')
    out.append(f'<text x="16" y="{(mt + h - mb) / 2}" text-anchor="middle" '
               f'transform="rotate(-90 16 {(mt + h - mb) / 2})">fraction of signals</text>')
    ly = mt + 14
    for label, name, colour in CURVES:
        v = sorted(lat.get(label, []))
        if not v:
            continue
        n = len(v)
        step = max(1, n // 400)
        pts = [(x(v[i] / 1000.0), y((i + 1) / n)) for i in range(0, n, step)]
        pts.append((x(v[-1] / 1000.0), y(1.0)))
        d = " ".join(f"{px:.1f},{py:.1f}" for px, py in pts)
        out.append(f'<polyline points="{d}" fill="none" stroke="{colour}" stroke-width="2"/>')
        out.append(f'<line x1="{ml + 10}" y1="{ly - 4}" x2="{ml + 34}" y2="{ly - 4}" '
                   f'stroke="{colour}" stroke-width="3"/>')
        out.append(f'<text x="{ml + 40}" y="{ly}">{name}: p50 {pct(v, 50) / 1000:.1f} us, '
                   f'p99 {pct(v, 99) / 1000:.1f} us (n={n})</text>')
        ly += 16
    out.append("</svg>")
    Path(path).write_text("\n".join(out) + "\n")


def main():
    args = sys.argv[1:]
    smoke = "--smoke" in args
    title = "irqfd signal-to-delivery latency"
    if "--title" in args:
        title = args[args.index("--title") + 1]
    clock = "wall"
    if "--clock" in args:
        clock = args[args.index("--clock") + 1]
    pos = [a for i, a in enumerate(args)
           if not a.startswith("--") and (i == 0 or args[i - 1] not in ("--title", "--clock"))]
    if len(pos) != 2:
        sys.exit(__doc__)
    src, outdir = Path(pos[0]), Path(pos[1])
    outdir.mkdir(parents=True, exist_ok=True)
    recs = []
    for n, line in enumerate(src.read_text().splitlines(), 1):
        line = line.strip()
        if line:
            try:
                recs.append(json.loads(line))
            except json.JSONDecodeError as e:
                sys.exit(f"{src}:{n}: not JSON: {e}")

    # --- latency ---
    lat = defaultdict(list)              # label -> all samples
    lat_r = defaultdict(dict)            # round -> label -> p50
    lat_r99 = defaultdict(dict)          # round -> label -> p99
    for r in recs:
        if r["kind"] == "latency":
            s = sorted(r["ns"])
            lat[r["label"]].extend(s)
            lat_r[r["round"]][r["label"]] = pct(s, 50)
            lat_r99[r["round"]][r["label"]] = pct(s, 99)

    def lat_ratio(a, b, table=lat_r):
        return summary([v[a] / v[b] for v in table.values() if a in v and b in v and v[b]])

    latency = {}
    for label, _, _ in CURVES:
        v = sorted(lat.get(label, []))
        if v:
            latency[label] = {"samples": len(v), "p50_ns": pct(v, 50), "p99_ns": pct(v, 99),
                              "p99.9_ns": pct(v, 99.9)}
    ratios = {
        "latency_p50_rust_over_c": lat_ratio("rust", "c"),
        "latency_p99_rust_over_c": lat_ratio("rust", "c", lat_r99),
        "latency_p50_rust_over_floor": lat_ratio("rust", "floor"),
        "latency_p50_c_over_floor": lat_ratio("c", "floor"),
        "latency_p50_fast_over_deferred": lat_ratio("rust", "rust_deferred"),
    }

    # --- throughput: injections per second, Rust/C per round ---
    tp = defaultdict(lambda: defaultdict(dict))   # (irqfds, writers) -> round -> label -> rate
    for r in recs:
        if r["kind"] == "throughput" and r["ns"]:
            tp[(r["irqfds"], r["writers"])][r["round"]][r["label"]] = r["injected"] / r["ns"] * 1e9
    throughput = []
    for (n, w) in sorted(tp):
        rounds = tp[(n, w)]
        row = {"irqfds": n, "writers": w}
        for label in ("rust", "c"):
            v = [x[label] for x in rounds.values() if label in x]
            row[f"{label}_per_s_median"] = statistics.median(v) if v else None
        row["rust_over_c"] = summary([x["rust"] / x["c"] for x in rounds.values()
                                      if "rust" in x and "c" in x and x["c"]])
        throughput.append(row)

    # --- scale: assign + deassign of N, release of N ---
    sc = defaultdict(lambda: defaultdict(list))   # label -> n -> [(assign+deassign), release]
    for r in recs:
        if r["kind"] == "scale":
            sc[r["label"]][r["n"]].append((r["assign_ns"] + r["deassign_ns"], r["release_ns"],
                                           r["assign_ns"], r["deassign_ns"]))
    scale = {}
    for label, per_n in sc.items():
        rows = {}
        for n, v in sorted(per_n.items()):
            rows[n] = {"assign_deassign_ns": statistics.median(x[0] for x in v),
                       "assign_ns": statistics.median(x[2] for x in v),
                       "deassign_ns": statistics.median(x[3] for x in v),
                       "release_ns": statistics.median(x[1] for x in v)}
        ns = sorted(rows)
        big = ns[-1] if ns else None
        small = next((n for n in ns if n * 16 == big), None)
        growth = None
        if big and small:
            growth = {"n_small": small, "n_big": big,
                      "ratio": rows[big]["assign_deassign_ns"] / rows[small]["assign_deassign_ns"],
                      "release_ratio": rows[big]["release_ns"] / rows[small]["release_ns"],
                      "linear": big / small}
        scale[label] = {"by_n": rows, "growth": growth}

    # Per-round Rust/C of assign, deassign and release at the largest N
    # both modules ran, from the rounds that ran both.
    sc_r = defaultdict(dict)                      # (n, round) -> label -> record
    for r in recs:
        if r["kind"] == "scale":
            sc_r[(r["n"], r["round"])][r["label"]] = r
    both_n = sorted({n for (n, _), v in sc_r.items() if "rust" in v and "c" in v})
    scale_ratios = {}
    if both_n:
        n = both_n[-1]
        for op in ("assign", "deassign", "release"):
            scale_ratios[op] = summary([v["rust"][f"{op}_ns"] / v["c"][f"{op}_ns"]
                                        for (m, _), v in sc_r.items()
                                        if m == n and "rust" in v and "c" in v
                                        and v["c"][f"{op}_ns"]])
        scale_ratios["n"] = n

    # --- memory ---
    # Counted by allocation (kmem tracepoints): exact, the same in every run.
    memory = {}
    for r in recs:
        if r["kind"] == "memory" and r["n"]:
            memory[r["label"]] = {"n": r["n"], "bytes_per_irqfd": r["bytes_per_irqfd"],
                                  "bytes_per_context": r["bytes_per_context"],
                                  "irqfd_allocations": r["irqfds"]["allocations"],
                                  "context_allocations": r["context"]["allocations"]}

    # --- stages of one delivery (tracepoints; exact under icount) ---
    stages = {}
    for r in recs:
        if r["kind"] == "stages":
            stages[r["label"]] = {k: r[k] for k in ("samples", "unslept", "signal_ns", "schedule_ns",
                                                    "read_ns", "write_ns")}

    # --- table, and each target decided by its interval where the table shows it ---
    verdicts = []

    def target(name, s, bound, le, note=""):
        if smoke:
            return ""
        v = verdict(s, bound, le)
        b = f"{'<=' if le else '>='} {bound:g}"
        verdicts.append({"target": name, "bound": b, "ratio": s, "verdict": v})
        return f"  [{v}: {b}{note}]"

    clocks = {"icount": "guest instruction count (QEMU -icount shift=0: 1 ns = 1 instruction), "
                        "the decided mode",
              "wall": "wall clock (the host's; under TCG it wanders: read the intervals)"}
    t = [f"rust_irqfd benchmark ({len(recs)} measurements){' - SMOKE, timings meaningless' if smoke else ''}",
         f"clock: {clocks.get(clock, clock)}",
         "", "Latency, eventfd write(2) to delivery read (all rounds pooled):",
         f"  {'curve':28} {'samples':>8} {'p50 us':>9} {'p99 us':>9} {'p99.9 us':>9}"]
    for label, name, _ in CURVES:
        if label in latency:
            L = latency[label]
            t.append(f"  {name:28} {L['samples']:>8} {L['p50_ns'] / 1000:>9.1f} "
                     f"{L['p99_ns'] / 1000:>9.1f} {L['p99.9_ns'] / 1000:>9.1f}")
    t += ["", "Ratios (per-round ratio, median (interval over the rounds)); a target is met or",
          "missed only when the whole interval is on one side of it, else undecided:",
          f"  latency p50 Rust/C          {fmt_ratio(ratios['latency_p50_rust_over_c'])}"
          + target("latency p50 Rust/C", ratios['latency_p50_rust_over_c'], 1.00, True),
          f"  latency p99 Rust/C          {fmt_ratio(ratios['latency_p99_rust_over_c'])}"
          + target("latency p99 Rust/C", ratios['latency_p99_rust_over_c'], 1.00, True),
          f"  latency p50 Rust/floor      {fmt_ratio(ratios['latency_p50_rust_over_floor'])}"
          + target("latency p50 Rust/floor", ratios['latency_p50_rust_over_floor'], 1.10, True),
          f"  latency p50 C/floor         {fmt_ratio(ratios['latency_p50_c_over_floor'])}",
          f"  latency p50 fast/deferred   {fmt_ratio(ratios['latency_p50_fast_over_deferred'])}",
          "", "Throughput, injections per second (median over rounds), Rust/C per round:",
          f"  {'irqfds':>6} {'writers':>7} {'rust/s':>10} {'c/s':>10}  Rust/C"]
    for row in throughput:
        rs, cs = row["rust_per_s_median"], row["c_per_s_median"]
        t.append(f"  {row['irqfds']:>6} {row['writers']:>7} {rs or 0:>10.0f} {cs or 0:>10.0f}  "
                 f"{fmt_ratio(row['rust_over_c'])}"
                 + target(f"throughput Rust/C, {row['irqfds']} irqfds x {row['writers']} writers",
                          row["rust_over_c"], 1.00, False))
    t += ["", "Scale, assign N then deassign N in shuffled order; release = close with N assigned:"]
    for label in ("rust", "c"):
        if label not in scale:
            continue
        for n, row in scale[label]["by_n"].items():
            t.append(f"  {label:5} N={n:<6} assign {row['assign_ns'] / 1e6:9.1f} ms  deassign "
                     f"{row['deassign_ns'] / 1e6:9.1f} ms  release {row['release_ns'] / 1e6:9.1f} ms")
        g = scale[label]["growth"]
        if g:
            ratio = f"time({g['n_big']})/time({g['n_small']})"
            name = f"{label} {ratio}"
            one = {"median": g["ratio"], "min": g["ratio"], "max": g["ratio"], "rounds": 1}
            t.append(f"  {label:5} {ratio} = {g['ratio']:.1f} "
                     f"(linear {g['linear']:.0f}); release {g['release_ratio']:.1f}"
                     + target(name, one, 17.0, True, ", one figure"))
    for op in ("assign", "deassign", "release"):
        if op in scale_ratios:
            t.append(f"  {op} of {scale_ratios['n']} Rust/C{'':{10 - len(op)}} "
                     f"{fmt_ratio(scale_ratios[op])}"
                     + target(f"{op} of {scale_ratios['n']} irqfds Rust/C", scale_ratios[op],
                              1.00, True))
    t += ["", "Memory, counted by allocation (kmem tracepoints; sizes as the allocator rounds",
          "them; what the step's task allocated and had not freed):"]
    for label in ("rust", "c"):
        if label not in memory:
            continue
        m = memory[label]
        t.append(f"  {label:5} per irqfd {m['bytes_per_irqfd']:8.1f} bytes (N={m['n']}), "
                 f"per context {m['bytes_per_context']} bytes")
        for what, key, per in (("irqfd", "irqfd_allocations", m["n"]),
                               ("context", "context_allocations", 1)):
            for a in m[key]:
                if a["count"] * 4 < per:
                    continue  # amortised: a slab's accounting vector, a tree rebalance
                cache = f" {a['cache']}" if a["cache"] else ""
                t.append(f"        {what:7} {a['event']:19} {a['bytes_req']:>6} -> "
                         f"{a['bytes_alloc']:>6} x{a['count'] / per:<5.2f} {a['site']}{cache}")
    if "rust" in memory and "c" in memory and memory["c"]["bytes_per_irqfd"]:
        r, c = memory["rust"]["bytes_per_irqfd"], memory["c"]["bytes_per_irqfd"]
        one = {"median": r / c, "min": r / c, "max": r / c, "rounds": 1}
        t.append(f"  bytes per irqfd Rust/C {r / c:.3f}"
                 + target("bytes per irqfd Rust/C", one, 1.00, True, ", exact"))
    if stages:
        t += ["", "Where a delivery's time goes (medians; syscall and scheduler tracepoints, TSC):",
              f"  {'curve':14} {'signal ns':>10} {'schedule ns':>12} {'read ns':>9} {'total ns':>9} "
              f"{'write ns':>9} {'samples':>8}"]
        for label in ("floor", "rust", "c", "rust_deferred"):
            if label in stages:
                g = stages[label]
                total = g["signal_ns"] + g["schedule_ns"] + g["read_ns"]
                t.append(f"  {label:14} {g['signal_ns']:>10.0f} {g['schedule_ns']:>12.0f} "
                         f"{g['read_ns']:>9.0f} {total:>9.0f} {g['write_ns']:>9.0f} "
                         f"{g['samples']:>8}")
        if "rust" in stages and "c" in stages:
            r, c = stages["rust"], stages["c"]
            t.append("  Rust - C:      " + " ".join(
                f"{r[k] - c[k]:>+{w}.0f}" for k, w in (("signal_ns", 10), ("schedule_ns", 12),
                                                        ("read_ns", 9))))
        t += ["  signal: write(2) entry to the reader's wakeup (eventfd, irqfd, injection,",
              "  record); schedule: to the reader running; read: its read(2) returning."]
    if not smoke:
        counts = defaultdict(int)
        for v in verdicts:
            counts[v["verdict"]] += 1
        t += ["", f"Targets: {counts['met']} met, {counts['missed']} missed, "
                  f"{counts['undecided']} undecided (of {len(verdicts)})"]
    text = "\n".join(t) + "\n"
    result = {"clock": clock, "latency": latency, "ratios": ratios, "throughput": throughput,
              "scale": scale, "scale_ratios": scale_ratios, "memory": memory, "stages": stages,
              "targets": verdicts, "measurements": len(recs)}
    (outdir / "results.json").write_text(json.dumps(result, indent=1, default=str) + "\n")
    svg_cdf(lat, outdir / "latency-cdf.svg", title)
    (outdir / "table.txt").write_text(text)
    print(text, end="")

    missing = [k for k, ok in (("latency curves", len(latency) == len(CURVES)),
                               ("throughput", bool(throughput)),
                               ("scale", "rust" in scale and "c" in scale),
                               # make check's smoke run leaves out the counts that
                               # need trace events (see payload-bench.sh).
                               ("memory", smoke or ("rust" in memory and "c" in memory)),
                               ("stages", smoke or len(stages) == 4)) if not ok]
    if missing:
        print(f"bench-report: missing figures: {', '.join(missing)}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
