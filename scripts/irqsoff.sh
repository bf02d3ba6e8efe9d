#!/usr/bin/env bash
# make irqsoff: the longest section with interrupts off of each module's
# operations on many irqfds in one context (assign, SET_ROUTE, GET_INFO,
# fdinfo, deassign, a rolled-back batch, release, mass EPOLLHUP), measured by
# ftrace's irqsoff tracer on the irqsoff kernel (kernel/irqsoff.config: the
# bench kernel plus the tracer), in one VM running under VM_ICOUNT=1 with one
# vCPU: a guest nanosecond is one instruction, so the figures repeat run to
# run and do not depend on the host's load.
#
# env: IRQSOFF_N (irqfds per context, default "1024 65536": the
#      smaller one a reference for the growth with N), IRQSOFF_MODULES
#      (default "rust c"), IRQSOFF_OUT (the report, default
#      build/irqsoff/irqsoff.txt: the table, then the raw JSON lines),
#      IRQSOFF_MAX_RATIO (fail if an operation's figure at the largest N is
#      more than this many times the larger of its figure at the smallest N and
#      100 us; unset: report only)
. "$(dirname "$0")/common.sh"

out=$TOPDIR/build/irqsoff
report=${IRQSOFF_OUT:-$out/irqsoff.txt}
measure_setup irqsoff "$out"
IKDIR=$MEASURE_KDIR
kver=$MEASURE_KVER

: >"$out/irqsoff.env"
for v in IRQSOFF_N IRQSOFF_MODULES; do
	[ -n "${!v:-}" ] && printf '%s="%s"\n' "$v" "${!v}" >>"$out/irqsoff.env"
done
log "irqsoff: one VM, 1 vCPU, instruction-counted time"
VM_ICOUNT=1 VM_CPUS=1 VM_MEM=${VM_MEM:-2048} VM_TIMEOUT=${VM_TIMEOUT:-5400} \
	"$TOPDIR/scripts/vm.sh" "$out/vm" "$IKDIR/arch/x86/boot/bzImage" \
	"$TOPDIR/scripts/payload-irqsoff.sh" \
	"$out/modules/rust_irqfd/rust_irqfd.ko" "$out/modules/c_irqfd/c_irqfd.ko" "$MUSL_BIN_DIR/rust_irqfd_bench" \
	"$out/irqsoff.env"
"$TOPDIR/scripts/vmcheck.py" "$out/vm" >"$out/vmcheck.txt" 2>&1 || {
	cat "$out/vmcheck.txt"
	die "the irqsoff VM run failed (above)"
}
src=$(cd "$TOPDIR" && git log -1 --format=%h -- rust_irqfd c_irqfd include 2>/dev/null || echo unknown)
dirty=$(cd "$TOPDIR" && git status --porcelain -- rust_irqfd c_irqfd include 2>/dev/null | head -1)
rrc=0
table=$("$TOPDIR/scripts/irqsoff-report.py" "$out/vm/out/irqsoff.jsonl" \
	${IRQSOFF_MAX_RATIO:+--max-ratio "$IRQSOFF_MAX_RATIO"}) || rrc=$?
[ -n "$table" ] || die "irqsoff: no report (the guest's output: $out/vm/console.log)"
mkdir -p "$(dirname "$report")"
{
	echo "kernel: linux-source-7.3 $kver, kernel/irqsoff.config ($(basename "$IKDIR"))"
	echo "vm: QEMU TCG, -icount shift=0,sleep=off (1 guest ns = 1 instruction), 1 vCPU"
	echo "modules: last commit $src$([ -n "$dirty" ] && echo ", with uncommitted changes")"
	echo "tree: $(git -C "$TOPDIR" describe --always --dirty 2>/dev/null || echo unknown)"
	echo "date: $(date -u +%Y-%m-%dT%H:%MZ)"
	echo
	echo "$table"
	echo
	echo "raw (scripts/payload-irqsoff.sh, one line per module and N):"
	cat "$out/vm/out/irqsoff.jsonl"
} >"$report"
sed '/^raw /,$d' "$report"
log "irqsoff: report in $report"
[ $rrc = 0 ] || die "irqsoff: an operation's figure grew with N past IRQSOFF_MAX_RATIO=$IRQSOFF_MAX_RATIO (above)"
