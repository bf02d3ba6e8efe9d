#!/usr/bin/env bash
# make mutants: plant each bug by applying its patches (mutants/rust/<name>.patch
# and mutants/c/<name>.patch) to a copy of the module sources, build that, and
# prove the tests catch the bug in each module separately (one VM boot per
# mutant and module), then check that the clean build passes the same run.
#
# usage: mutants.sh          all of that (make mutants)
#        mutants.sh --check  only check, in about a second and without building,
#                            that every patch still applies to the checkout
#
# env: MUTANTS (default: all), STRESS_SECS (default 2), VM_TIMEOUT (default 300:
#      a clean run takes about 150 s; some bugs hang the guest with interrupts off,
#      where no detector can report, and the timeout is then the catch)
#
# Each run is selected by the tests' tags: every test that is neither a race
# scenario nor heavy (thousands of irqfds or a hundred module loads test
# limits, accounting and isolation, not the planted lifecycle bugs; they
# would double the run), and the core race scenarios (the lifecycle ones, R1
# HUP vs deassign, R3 injection vs shutdown, R4 release vs HUP, R13 mass
# release, R13b fdinfo vs teardown, and the routing and resampling ones,
# R19 resample recursion, R20 resampler vs shutdown, R21 route update vs
# injection, R21b vs a deassign in progress, R21c concurrent route writers);
# then the injection tests of that set and the core race scenarios again with
# deferred_only=1 (a 20 ms injection delay that keeps injections queued while
# the scenarios tear irqfds down); the same set for every mutant and for the
# clean build. The per-scenario kmemleak scans are left out (the
# scan at the end of the VM run stays): they cost seconds each under TCG.
MUTANT_TEST_ARGS="--no-kmemleak"
MUTANT_NORMAL_ARGS="--tag !race+!heavy --tag core"
MUTANT_DEFERRED_ARGS="--tag inject+!race+!heavy --tag core"
. "$(dirname "$0")/common.sh"

ALL="no_active_check put_before_remove release_no_wait no_ctx_ref deassign_no_wait no_inject_flush"
ALL="$ALL route_torn route_unlocked resample_in_wakeup resampler_early_put unmask_no_wake"
ALL="$ALL batch_late_index batch_enomem_index batch_check_early read_lost_records read_short_count"
ALL="$ALL fdinfo_resume_skips fdinfo_resume_by_pos"
ALL="$ALL resampler_drops_line resampler_keeps_latch"
# Planted bugs of the Rust module alone: the C reference documents the
# behaviour they give (it merges deferred signals), or has no code of that
# shape (its batch rollback takes the lock per irqfd), so they have no C patch
# and no C run.
RUST_ONLY="deferred_loses_signal rollback_one_chunk put_back_uncounted"
# Planted bugs of the C reference alone: the Rust module has no code of that
# shape (no per-irqfd copy of the route; no grace period when an irqfd
# leaves its resampler: the ack holds the mutex leaving takes), so they
# have no Rust patch.
C_ONLY="deassign_stale_route route_copies_unserialised resampler_no_grace"
C_ONLY="$C_ONLY route_walk_one_chunk"
ALL="$ALL $RUST_ONLY $C_ONLY"
mutants=${MUTANTS:-$ALL}
out=$TOPDIR/build/mutants

# The languages (rust, c) a planted bug has a patch for.
langs_of() {
	case " $RUST_ONLY " in
	*" $1 "*) echo rust ;;
	*)
		case " $C_ONLY " in
		*" $1 "*) echo c ;;
		*) echo rust c ;;
		esac
		;;
	esac
}

# git apply PATCH to the tree DIR (the checkout or a copy of its sources),
# with any further arguments. GIT_CEILING_DIRECTORIES stops git from taking a
# copy under build/ for a subdirectory of the checkout's repository, where it
# would skip every path of the patch outside that subdirectory, and succeed.
apply_patch() {
	local dir=$1 patch=$2
	shift 2
	(cd "$dir" && GIT_CEILING_DIRECTORIES=$(dirname "$dir") git apply "$@" "$patch")
}

# Every planted bug has a patch per module (the Rust one only for
# $RUST_ONLY, the C one only for $C_ONLY), touching that module only and
# marking the bug with a "MUTANT <name>:" comment; every patch applies to the
# checkout; and no patch lies around that is not in $ALL.
check_patches() {
	local m lang dir p bad=0 n=0
	for m in $RUST_ONLY; do
		if [ -e "$TOPDIR/mutants/c/$m.patch" ]; then
			echo "mutants: mutants/c/$m.patch exists, but $m is a Rust-only bug (RUST_ONLY)" >&2
			bad=1
		fi
	done
	for m in $C_ONLY; do
		if [ -e "$TOPDIR/mutants/rust/$m.patch" ]; then
			echo "mutants: mutants/rust/$m.patch exists, but $m is a C-only bug (C_ONLY)" >&2
			bad=1
		fi
	done
	for m in $ALL; do
		for lang in $(langs_of "$m"); do
			dir=rust_irqfd
			[ "$lang" = c ] && dir=c_irqfd
			p=mutants/$lang/$m.patch
			if [ ! -f "$TOPDIR/$p" ]; then
				echo "mutants: $p is missing" >&2
				bad=1
			elif grep '^+++ ' "$TOPDIR/$p" | grep -qv "^+++ b/$dir/"; then
				echo "mutants: $p touches files outside $dir/" >&2
				bad=1
			elif ! grep -q "^+.*MUTANT $m:" "$TOPDIR/$p"; then
				echo "mutants: $p adds no comment 'MUTANT $m: ...'" >&2
				bad=1
			elif ! apply_patch "$TOPDIR" "$TOPDIR/$p" --check; then
				echo "mutants: $p does not apply to the sources any more" >&2
				bad=1
			else
				n=$((n + 1))
			fi
		done
	done
	for p in "$TOPDIR"/mutants/*; do
		case "$p" in
		# mutants/vmm: the vmm crate's, scripts/vmm-mutants.sh runs them.
		"$TOPDIR/mutants/rust" | "$TOPDIR/mutants/c" | "$TOPDIR/mutants/vmm") ;;
		*) echo "mutants: ${p#"$TOPDIR"/} is not mutants/rust, mutants/c or mutants/vmm" >&2; bad=1 ;;
		esac
	done
	for p in "$TOPDIR"/mutants/rust/* "$TOPDIR"/mutants/c/*; do
		case " $ALL " in
		*" $(basename "$p" .patch) "*) [ "${p%.patch}" != "$p" ] && continue ;;
		esac
		echo "mutants: ${p#"$TOPDIR"/} is not a planted bug of scripts/mutants.sh" >&2
		bad=1
	done
	[ "$bad" = 0 ] || die "mutants: the patches need fixing (above)"
	echo "mutants: all $n patches apply"
}

case "${1:-}" in
--check)
	check_patches
	exit 0
	;;
"") ;;
*) die "usage: mutants.sh [--check]" ;;
esac
# A patch that does not apply fails the run now, not after an hour of VMs.
check_patches >/dev/null
# MUTANTS=... reruns some and keeps the other results for the table.
if [ -z "${MUTANTS:-}" ]; then rm -rf "$out"; fi
mkdir -p "$out"
"$TOPDIR/scripts/host-deps.sh"
KDIR_OWN=$("$TOPDIR/scripts/kernel.sh" debug)
musl_build -p rust_irqfd_test
test_bin=$SELFTEST_BIN

runs="$mutants"
[ -n "${MUTANTS:-}" ] || runs="none $mutants"
# Every build first: a patch that applies but no longer builds (a helper it
# leaves unused, under -Werror) stops the run here, not an hour into the VMs.
for m in $runs; do
	log "mutants: building $m"
	rm -rf "${out:?}/$m"
	mkdir -p "$out/$m"
	src=$out/$m/src
	copy_module_sources "$src"
	if [ "$m" != none ]; then
		# One build with both patches: each module's VM loads only that
		# module, so each run sees one module's bug.
		for lang in $(langs_of "$m"); do
			apply_patch "$src" "$TOPDIR/mutants/$lang/$m.patch" ||
				die "mutants/$lang/$m.patch does not apply to the sources"
		done
	fi
	TEST_HOOKS=1 MODSRC=$src "$TOPDIR/scripts/build.sh" modules >"$out/$m/build.log" 2>&1 ||
		{ tail -20 "$out/$m/build.log"; die "build of $m failed (log: $out/$m/build.log)"; }
	cp "$src/rust_irqfd/rust_irqfd.ko" "$src/c_irqfd/c_irqfd.ko" \
		"$src/selftests/rust_irqfd/hardirq/irqfd_hardirq.ko" "$out/$m/"
done
for m in $runs; do
	# One VM per module the bug is planted in (both for the clean build), with
	# the hard-IRQ signaller, so that the tests that need it run there too.
	for mod in $(langs_of "$m" | sed 's/[a-z]*/&_irqfd/g'); do
		log "mutants: $m in $mod"
		printf 'DEVICES=%s\nKVM_COLUMN=0\nSTRESS_SECS=%s\nTEST_ARGS="%s"\nNORMAL_ARGS="%s"\nDEFERRED_ARGS="%s"\n' \
			"$mod" "${STRESS_SECS:-2}" "$MUTANT_TEST_ARGS" "$MUTANT_NORMAL_ARGS" \
			"$MUTANT_DEFERRED_ARGS" >"$out/$m/$mod.env"
		# The first splat is the catch: stop there rather than run on in a broken kernel.
		VM_APPEND="panic_on_warn=1 hung_task_panic=1 softlockup_panic=1" \
			VM_MEM=${VM_MEM:-512} VM_TIMEOUT=${VM_TIMEOUT:-300} "$TOPDIR/scripts/vm.sh" "$out/$m/$mod" \
			"$KDIR_OWN/arch/x86/boot/bzImage" "$TOPDIR/scripts/payload-check.sh" \
			"$out/$m/$mod.ko" "$out/$m/irqfd_hardirq.ko" "$test_bin" "$out/$m/$mod.env"
		"$TOPDIR/scripts/vmcheck.py" "$out/$m/$mod" >"$out/$m/$mod/verdict.txt" 2>&1 || true
		tail -1 "$out/$m/$mod/verdict.txt"
	done
done
"$TOPDIR/scripts/mutants-table.py" "$out" none $ALL
