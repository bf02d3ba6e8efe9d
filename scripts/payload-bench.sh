#!/bin/sh
# The guest side of `make bench` (and of the smoke run in `make check`):
# interleave the Rust module, the C reference and the raw eventfd floor round
# after round, one JSON line per measurement into /tmp/out/bench.jsonl.
#
# env (from /etc/payload.env): ROUNDS, SAMPLES (latency samples per curve and
# round), TP_MILLIS, TP_IRQFDS, TP_WRITERS (throughput grid), SCALE_ROUNDS,
# SCALE_N, MEM_N, STAGE_SAMPLES. Defaults are the full benchmark's.
set -u
ROUNDS=${ROUNDS:-5}
SAMPLES=${SAMPLES:-3000}
TP_MILLIS=${TP_MILLIS:-500}
TP_IRQFDS=${TP_IRQFDS:-"1 64 4096"}
TP_WRITERS=${TP_WRITERS:-"1 2"}
SCALE_ROUNDS=${SCALE_ROUNDS:-2}
SCALE_N=${SCALE_N:-"1024 4096 16384 65536"}
MEM_N=${MEM_N:-16384}
STAGE_SAMPLES=${STAGE_SAMPLES:-1000}
B=/bin/rust_irqfd_bench
OUT=/tmp/out/bench.jsonl
rc=0

mkdir -p /tmp/out
: >"$OUT"
run() {
	"$B" "$@" >>"$OUT" || { echo "# bench failed: $*"; rc=1; }
}
rust() { [ -e /dev/rust_irqfd ] && rmmod rust_irqfd; insmod /lib/modules/rust_irqfd.ko "$@" || rc=1; }

echo "# bench: $(uname -r), $(nproc) CPUs, rounds $ROUNDS, $SAMPLES latency samples"
[ -e /dev/c_irqfd ] || insmod /lib/modules/c_irqfd.ko || rc=1
r=0
while [ $r -lt "$ROUNDS" ]; do
	echo "# bench: round $r"
	# Alternate who goes first, so that drift over a round favours no one.
	if [ $((r % 2)) = 0 ]; then order="rust c"; else order="c rust"; fi
	rust
	run latency --label floor --round $r --samples "$SAMPLES" --floor
	for m in $order; do
		run latency --label $m --round $r --samples "$SAMPLES" --device /dev/${m}_irqfd
	done
	# The 2009 design: every injection through the work item.
	rust deferred_only=1
	run latency --label rust_deferred --round $r --samples "$SAMPLES" --device /dev/rust_irqfd
	rust
	for n in $TP_IRQFDS; do
		for w in $TP_WRITERS; do
			for m in $order; do
				run throughput --label $m --round $r --device /dev/${m}_irqfd \
					--irqfds "$n" --writers "$w" --millis "$TP_MILLIS"
			done
		done
	done
	if [ $r -lt "$SCALE_ROUNDS" ]; then
		for n in $SCALE_N; do
			for m in $order; do
				run scale --label $m --round $r --device /dev/${m}_irqfd --n "$n"
			done
		done
	fi
	r=$((r + 1))
done
# The counts from tracepoints (MEM_N=0 and STAGE_SAMPLES=0 leave them out).
# Turning trace events on patches the kernel's text while both vCPUs run it:
# under multi-threaded TCG that once ended in an int3 oops in the
# sched_switch tracepoint (a debug-kernel make check). make bench runs
# single-threaded TCG (icount), where it is safe.
T=/sys/kernel/tracing
if [ "$MEM_N" != 0 ] || [ "$STAGE_SAMPLES" != 0 ]; then
	[ -e $T/trace ] || mount -t tracefs nodev $T || { echo "# bench: no tracefs"; rc=1; }
fi
# Bytes per context and per irqfd, counted by allocation (kmem tracepoints).
if [ "$MEM_N" != 0 ]; then
	for m in rust c; do
		run memory --label $m --device /dev/${m}_irqfd --n "$MEM_N" --tracing $T
	done
fi
# Where a delivery's time goes, stage by stage (syscall and scheduler
# tracepoints): the floor, both modules, and the Rust module deferred-only.
if [ "$STAGE_SAMPLES" != 0 ]; then
	run stages --label floor --samples "$STAGE_SAMPLES" --floor --tracing $T
	for m in rust c; do
		run stages --label $m --samples "$STAGE_SAMPLES" --device /dev/${m}_irqfd --tracing $T
	done
	rust deferred_only=1
	run stages --label rust_deferred --samples "$STAGE_SAMPLES" --device /dev/rust_irqfd --tracing $T
fi
rmmod rust_irqfd c_irqfd || rc=1
echo "# bench: $(wc -l <"$OUT") measurements, exit $rc"
exit $rc
