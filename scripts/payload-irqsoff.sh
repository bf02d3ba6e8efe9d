#!/bin/sh
# The guest side of `make irqsoff` (scripts/irqsoff.sh): ftrace's irqsoff
# tracer running, then for each module and each N the bench binary's irqsoff
# measurement (every operation on N irqfds in one context, the longest
# interrupts-off section of each), one JSON line per run into
# /tmp/out/irqsoff.jsonl.
#
# env (from /etc/payload.env): IRQSOFF_N (default "1024 65536"),
# IRQSOFF_MODULES (default "rust c").
set -u
N=${IRQSOFF_N:-"1024 65536"}
MODULES=${IRQSOFF_MODULES:-"rust c"}
B=/bin/rust_irqfd_bench
T=/sys/kernel/tracing
OUT=/tmp/out/irqsoff.jsonl
rc=0

mkdir -p /tmp/out
: >"$OUT"
[ -e $T/current_tracer ] || mount -t tracefs nodev $T || { echo "# irqsoff: no tracefs"; exit 1; }
grep -qw irqsoff $T/available_tracers || { echo "# irqsoff: the kernel has no irqsoff tracer"; exit 1; }
echo irqsoff >$T/current_tracer
echo 1 >$T/tracing_on
echo "# irqsoff: $(uname -r), $(nproc) CPUs, tracer $(cat $T/current_tracer), N $N"
for m in $MODULES; do
	# The default parameters: nr_gsis 1024, max_irqfds 65536.
	insmod /lib/modules/${m}_irqfd.ko || { rc=1; continue; }
	for n in $N; do
		"$B" irqsoff --label $m --device /dev/${m}_irqfd --n "$n" --tracing $T >>"$OUT" ||
			{ echo "# irqsoff failed: $m, n $n"; rc=1; }
	done
	rmmod ${m}_irqfd || rc=1
done
echo nop >$T/current_tracer
echo "# irqsoff: $(wc -l <"$OUT") runs, exit $rc"
exit $rc
