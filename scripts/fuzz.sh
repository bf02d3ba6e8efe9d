#!/usr/bin/env bash
# make fuzz DURATION=S: the model-checked fuzzer (fuzz_model) alone, S seconds
# per device, in one VM boot, normal mode only (with deferred_only the
# injections are asynchronous and the model cannot predict the records). The
# seed is printed before each device's run and in the summary; FUZZ_SEED reruns
# one (the same op sequence per thread; FUZZ_OPS bounds each thread's ops to
# replay up to a failing op), FUZZ_THREADS sets the threads (default 3). The
# KTAP log lands in build/fuzz/vm/out/ktap-normal.txt.
# env: FUZZ_SECS (DURATION, default 60), FUZZ_SEED, FUZZ_THREADS, FUZZ_OPS
. "$(dirname "$0")/common.sh"

secs=${FUZZ_SECS:-60}
out=$TOPDIR/build/fuzz
mkdir -p "$out"
selftest_vm_setup "$out"

args="--tag fuzz --fuzz-secs $secs"
[ -z "${FUZZ_SEED:-}" ] || args="$args --fuzz-seed $FUZZ_SEED"
[ -z "${FUZZ_THREADS:-}" ] || args="$args --fuzz-threads $FUZZ_THREADS"
[ -z "${FUZZ_OPS:-}" ] || args="$args --fuzz-ops $FUZZ_OPS"
printf 'PASSES=normal\nTEST_ARGS="%s"\nDEFERRED_ARGS=\nBENCH_SMOKE=0\n' "$args" >"$out/fuzz.env"
# Two devices, the final checks, boot and the end-of-run kmemleak scan.
timeout_s=$(awk -v s="$secs" 'BEGIN { printf "%d", 2 * (s + 30) + 300 }')
log "fuzz: $secs s per device ($args); VM timeout ${timeout_s}s"
rc=0
VM_TIMEOUT=$timeout_s "$TOPDIR/scripts/vm.sh" "$out/vm" "$KDIR_OWN/arch/x86/boot/bzImage" \
	"$TOPDIR/scripts/payload-check.sh" "$TOPDIR/rust_irqfd/rust_irqfd.ko" "$TOPDIR/c_irqfd/c_irqfd.ko" \
	"$TEST_BIN" "$out/fuzz.env"
"$TOPDIR/scripts/vmcheck.py" "$out/vm" || rc=1
echo
echo "fuzz_model (also in $out/vm/out/ktap-normal.txt):"
# Each line is stamped with the guest's uptime; the diagnostics are indented.
grep -E '# fuzz|fuzz mismatch|fuzz_model' "$out/vm/out/ktap-normal.txt" 2>/dev/null |
	cut -d' ' -f2- | sed 's/^ *//' || echo "(no output)"
exit $rc
