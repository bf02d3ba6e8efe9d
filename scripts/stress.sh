#!/usr/bin/env bash
# make stress DURATION=S: the race scenarios alone, S seconds per scenario per
# device and mode, in one VM boot. Tables land in build/stress/vm/out/.
. "$(dirname "$0")/common.sh"

secs=${STRESS_SECS:-30}
out=$TOPDIR/build/stress
mkdir -p "$out"
"$TOPDIR/scripts/host-deps.sh"
KDIR_OWN=$("$TOPDIR/scripts/kernel.sh" debug)
TEST_HOOKS=1 "$TOPDIR/scripts/build.sh" modules >"$out/build.log" 2>&1 || { tail -20 "$out/build.log"; die "module build failed"; }
st="$TOPDIR/selftests/rust_irqfd"
(cd "$st" && cargo build --quiet --release --target x86_64-unknown-linux-musl)
printf 'STRESS_SECS=%s\nTEST_ARGS="--filter race_ --stress-ops 1000000000"\nDEFERRED_ARGS=\n' "$secs" >"$out/stress.env"
# About 20 scenarios, 2 devices, 2 modes, plus a kmemleak scan each.
timeout_s=$(awk -v s="$secs" 'BEGIN { printf "%d", 80 * (s + 3) + 300 }')
log "stress: $secs s per scenario per device and mode; VM timeout ${timeout_s}s"
VM_TIMEOUT=$timeout_s "$TOPDIR/scripts/vm.sh" "$out/vm" "$KDIR_OWN/arch/x86/boot/bzImage" \
	"$TOPDIR/scripts/payload-check.sh" "$TOPDIR/rust_irqfd.ko" "$TOPDIR/c_irqfd.ko" \
	"$st/target/x86_64-unknown-linux-musl/release/rust_irqfd_test" "$out/stress.env"
"$TOPDIR/scripts/vmcheck.py" "$out/vm"
