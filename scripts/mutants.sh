#!/usr/bin/env bash
# make mutants: compile each planted bug into both modules and prove the tests
# catch it, in each module separately (one VM boot per mutant and module), then
# check that the clean build passes the same run.
#
# env: MUTANTS (default: all), STRESS_SECS (default 2), VM_TIMEOUT (default 300:
#      a clean run takes about 150 s; some bugs hang the guest with interrupts off,
#      where no detector can report, and the timeout is then the catch)
#
# Each run is the functional suite and the lifecycle race scenarios (R1 HUP vs
# deassign, R3 injection vs shutdown, R4 release vs HUP, R13 mass release) and
# the routing and resampling ones (R19 resample recursion, R20 resampler vs
# shutdown, R21 route update vs injection), then
# the injection tests again with deferred_only=1; the same set for every mutant
# and for the clean build. The per-scenario kmemleak scans are left out (the
# scan at the end of the VM run stays): they cost seconds each under TCG.
MUTANT_TEST_ARGS="--no-kmemleak --skip load_unload_100_cycles --skip open_close_vs_unload"
# Tests that fill contexts with thousands of irqfds test limits, accounting
# and isolation, not the planted lifecycle bugs; they would double the run.
MUTANT_TEST_ARGS="$MUTANT_TEST_ARGS --skip limit_ --skip scoped_flush --skip memcg_accounting"
for r in 2 5 6 7 8 9 10 11 12 14 15 16 17 18 22 23; do
	MUTANT_TEST_ARGS="$MUTANT_TEST_ARGS --skip race_r${r}_"
done
. "$(dirname "$0")/common.sh"

ALL="no_active_check put_before_remove release_no_wait no_ctx_ref deassign_no_wait no_inject_flush"
ALL="$ALL route_torn resample_in_wakeup resampler_early_put"
mutants=${MUTANTS:-$ALL}
out=$TOPDIR/build/mutants
# MUTANTS=... reruns some and keeps the other results for the table.
if [ -z "${MUTANTS:-}" ]; then rm -rf "$out"; fi
mkdir -p "$out"
"$TOPDIR/scripts/host-deps.sh"
KDIR_OWN=$("$TOPDIR/scripts/kernel.sh" debug)
st="$TOPDIR/selftests/rust_irqfd"
(cd "$st" && cargo build --quiet --release --target x86_64-unknown-linux-musl)
test_bin="$st/target/x86_64-unknown-linux-musl/release/rust_irqfd_test"

runs="$mutants"
[ -n "${MUTANTS:-}" ] || runs="none $mutants"
for m in $runs; do
	log "mutants: building with MUTANT=$m"
	rm -rf "${out:?}/$m"
	mkdir -p "$out/$m"
	if [ "$m" = none ]; then mut=; else mut=$m; fi
	TEST_HOOKS=1 MUTANT=$mut "$TOPDIR/scripts/build.sh" modules >"$out/$m/build.log" 2>&1 ||
		{ tail -20 "$out/$m/build.log"; die "build with MUTANT=$m failed"; }
	cp "$TOPDIR/rust_irqfd.ko" "$TOPDIR/c_irqfd.ko" "$out/$m/"
	for mod in rust_irqfd c_irqfd; do
		printf 'DEVICES=%s\nSTRESS_SECS=%s\nTEST_ARGS="%s"\nDEFERRED_ARGS="--filter signal --filter deassign --filter release_4096 --filter race_r3_ --filter resample --filter race_r19_"\n' \
			"$mod" "${STRESS_SECS:-2}" "$MUTANT_TEST_ARGS" >"$out/$m/$mod.env"
		# The first splat is the catch: stop there rather than run on in a broken kernel.
		VM_APPEND="panic_on_warn=1 hung_task_panic=1 softlockup_panic=1" \
			VM_MEM=${VM_MEM:-512} VM_TIMEOUT=${VM_TIMEOUT:-300} "$TOPDIR/scripts/vm.sh" "$out/$m/$mod" \
			"$KDIR_OWN/arch/x86/boot/bzImage" "$TOPDIR/scripts/payload-check.sh" \
			"$out/$m/$mod.ko" "$test_bin" "$out/$m/$mod.env"
		"$TOPDIR/scripts/vmcheck.py" "$out/$m/$mod" >"$out/$m/$mod/verdict.txt" 2>&1 || true
		tail -1 "$out/$m/$mod/verdict.txt"
	done
done
# Rebuild the clean modules so the tree is left as `make` would leave it.
"$TOPDIR/scripts/build.sh" modules >/dev/null 2>&1 || true
"$TOPDIR/scripts/mutants-table.py" "$out" none $ALL
