#!/usr/bin/env bash
# make bench: one VM on the bench kernel (kernel/bench.config: no KASAN, no
# lockdep), Rust module, C reference and raw eventfd floor side by side; then
# ratios, a table, JSON and a latency CDF plot in bench/results/.
#
# The clock is QEMU's instruction count by default (BENCH_CLOCK=icount:
# single-threaded TCG with -icount shift=0,sleep=off, one guest nanosecond
# per instruction): the guest's timings are then a path length, which
# repeated its ratios to three decimals round to round and run to run even
# with the host loaded, where the wall clock under TCG wandered by a factor of
# several. Only its verdicts count. BENCH_CLOCK=wall keeps the host's clock
# (multi-threaded TCG, or VM_ACCEL=kvm where KVM can boot the kernel), for
# real hardware; bench-report.py prints which clock a table was taken with.
#
# env: BENCH_OUT (results folder, default bench/results), BENCH_CLOCK
#      (icount or wall), and the payload's knobs (ROUNDS, SAMPLES, TP_MILLIS,
#      TP_IRQFDS, TP_WRITERS, SCALE_ROUNDS, SCALE_N, MEM_N, STAGE_SAMPLES; see
#      scripts/payload-bench.sh)
. "$(dirname "$0")/common.sh"

out=$TOPDIR/build/bench
results=${BENCH_OUT:-$TOPDIR/bench/results}
measure_setup bench "$out"
BKDIR=$MEASURE_KDIR
kver=$MEASURE_KVER
bin=$MUSL_BIN_DIR/rust_irqfd_bench

: >"$out/bench.env"
for v in ROUNDS SAMPLES TP_MILLIS TP_IRQFDS TP_WRITERS SCALE_ROUNDS SCALE_N MEM_N STAGE_SAMPLES; do
	[ -n "${!v:-}" ] && printf '%s="%s"\n' "$v" "${!v}" >>"$out/bench.env"
done
case ${BENCH_CLOCK:-icount} in
icount) icount=1 ;;
wall) icount=0 ;;
*) die "BENCH_CLOCK=${BENCH_CLOCK}: icount or wall" ;;
esac
log "bench: one VM, rounds interleaving rust_irqfd, c_irqfd and the eventfd floor (clock: ${BENCH_CLOCK:-icount})"
VM_ICOUNT=$icount VM_MEM=${VM_MEM:-1024} VM_TIMEOUT=${VM_TIMEOUT:-1800} "$TOPDIR/scripts/vm.sh" "$out/vm" \
	"$BKDIR/arch/x86/boot/bzImage" "$TOPDIR/scripts/payload-bench.sh" \
	"$out/modules/rust_irqfd/rust_irqfd.ko" "$out/modules/c_irqfd/c_irqfd.ko" "$bin" "$out/bench.env"
"$TOPDIR/scripts/vmcheck.py" "$out/vm" >"$out/vmcheck.txt" 2>&1 || {
	cat "$out/vmcheck.txt"
	die "the bench VM run failed (above)"
}
accel=$(sed -n 's/^accel=//p' "$out/vm/vm.info" 2>/dev/null || true)
clock=wall
[ "$accel" = tcg-icount ] && clock=icount
mkdir -p "$results"
"$TOPDIR/scripts/bench-report.py" "$out/vm/out/bench.jsonl" "$results" --clock "$clock" \
	--title "irqfd latency, $kver bench kernel, QEMU ${accel:-TCG}, $(nproc) host cores" ||
	die "bench-report failed"
cp "$out/vm/out/bench.jsonl" "$results/raw.jsonl"
{
	echo "kernel: linux-source-7.3 $kver, kernel/bench.config ($(basename "$BKDIR"))"
	echo "date: $(date -u +%Y-%m-%dT%H:%MZ)"
	echo "host: $(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
	echo "vm: $(grep -h '^# bench:' "$out/vm/console.log" | head -1 | sed 's/^# bench: //')"
	echo "commit: $(git -C "$TOPDIR" describe --always --dirty 2>/dev/null || echo unknown)"
} >"$results/meta.txt"
log "bench: results in $results (table.txt, results.json, latency-cdf.svg, raw.jsonl, meta.txt)"
