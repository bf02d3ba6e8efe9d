#!/usr/bin/env bash
# make stress DURATION=S: the race scenarios alone, S seconds per scenario per
# device and mode (both modules, and KVM in the normal mode), in one VM boot. Tables land in build/stress/vm/out/.
# Then, in a second boot, scoped_flush at full size (issue 5): a context with
# STRESS_SCOPED_N irqfds (default 65536; 0 skips this boot) torn down while
# another context deassigns, on both devices, normal mode, modules loaded with
# max_irqfds=STRESS_SCOPED_N; its log lands in build/stress/scoped-vm/.
# env: STRESS_SECS, STRESS_SCOPED_N, SCOPED_VM_MEM (MiB, default 2048).
. "$(dirname "$0")/common.sh"

secs=${STRESS_SECS:-30}
scoped_n=${STRESS_SCOPED_N:-65536}
out=$TOPDIR/build/stress
mkdir -p "$out"
selftest_vm_setup "$out"
test_bin=$TEST_BIN
bzimage=$KDIR_OWN/arch/x86/boot/bzImage
rc=0

printf 'STRESS_SECS=%s\nTEST_ARGS="--tag race --stress-ops 1000000000 --kmemleak scenario"\nDEFERRED_ARGS=\n' "$secs" >"$out/stress.env"
# 26 scenarios on 2 devices in 2 modes and on KVM in the normal one (the 22
# that apply to it), plus a kmemleak scan each: 126 runs of S seconds and
# about 8 s besides under TCG (measured with S=1).
timeout_s=$(awk -v s="$secs" 'BEGIN { printf "%d", 135 * (s + 10) + 300 }')
log "stress: $secs s per scenario per device and mode; VM timeout ${timeout_s}s"
VM_TIMEOUT=$timeout_s "$TOPDIR/scripts/vm.sh" "$out/vm" "$bzimage" \
	"$TOPDIR/scripts/payload-check.sh" "$TOPDIR/rust_irqfd/rust_irqfd.ko" "$TOPDIR/c_irqfd/c_irqfd.ko" \
	"$test_bin" "$out/stress.env"
"$TOPDIR/scripts/vmcheck.py" "$out/vm" || rc=1

if [ "$scoped_n" != 0 ]; then
	# The guest's init sources the .env file with `set -a`: IRQFD_SCOPED_N is
	# exported to the payload and from it to the selftest. The modules'
	# max_irqfds must allow the N irqfds of one context; the selftest raises
	# RLIMIT_NOFILE itself, and the hung-task timeout (20 s in the VM) for as
	# long as the test runs: C's close(2) of 65536 irqfds blocks about two
	# minutes under TCG and KASAN (one synchronize_srcu_expedited() each).
	printf 'PASSES=normal\nMODULE_PARAMS="max_irqfds=%s"\nTEST_ARGS="--filter scoped_flush"\nIRQFD_SCOPED_N=%s\n' \
		"$scoped_n" "$scoped_n" >"$out/scoped.env"
	# Assigning, signalling and tearing down N irqfds, twice (one device after
	# the other), under TCG and KASAN; the eventfds, irqfds and kmemleak's
	# records of them want more memory than the default VM has.
	timeout_s=$((scoped_n / 40 + 600))
	log "stress: scoped_flush with $scoped_n irqfds; VM timeout ${timeout_s}s"
	VM_MEM=${SCOPED_VM_MEM:-2048} VM_TIMEOUT=$timeout_s "$TOPDIR/scripts/vm.sh" "$out/scoped-vm" "$bzimage" \
		"$TOPDIR/scripts/payload-check.sh" "$TOPDIR/rust_irqfd/rust_irqfd.ko" "$TOPDIR/c_irqfd/c_irqfd.ko" \
		"$test_bin" "$out/scoped.env"
	"$TOPDIR/scripts/vmcheck.py" "$out/scoped-vm" || rc=1
	echo
	echo "scoped_flush with $scoped_n irqfds (also in $out/scoped-vm/out/ktap-normal.txt):"
	grep -E '# (scoped_flush:|close\(A\))|scoped_flush' "$out/scoped-vm/out/ktap-normal.txt" 2>/dev/null |
		cut -d' ' -f2- || echo "(no output)"
fi
exit $rc
