#!/usr/bin/env bash
# make check: host-side tests and lint, then the kselftest in QEMU on both
# modules. Ends with "N passed, N failed, N skipped"; non-zero on any failure.
#
# env: FLAVOUR    the project's kernel to build against and boot (default
#                 debug, the 7.3 debug kernel; make matrix also runs debug72)
#      CHECK_OUT  where the logs go (default build/check)
. "$(dirname "$0")/common.sh"

out=${CHECK_OUT:-$TOPDIR/build/check}
rm -rf "$out"
mkdir -p "$out"
passed=0 failed=0 skipped=0
failures=()

# step NAME CMD...: one host-side test; its output goes to $out/NAME.log.
step() {
	local name=$1
	shift
	local t0=$SECONDS
	if "$@" >"$out/$name.log" 2>&1; then
		passed=$((passed + 1))
		printf 'ok - %s (%ds)\n' "$name" $((SECONDS - t0))
	else
		failed=$((failed + 1))
		failures+=("$name")
		printf 'not ok - %s (%ds)\n' "$name" $((SECONDS - t0))
		sed 's/^/    /' "$out/$name.log" | tail -40
	fi
}

t_start=$SECONDS
"$TOPDIR/scripts/host-deps.sh"
# The vmm crate is tested with its optional kvm-ioctls backend built in, so
# that the parity table has the kvm-ioctls column (host and VM).
VMM_FEATURES=rust_irqfd_vmm/kvm-ioctls
# The host-side crates compile while the kernel tree is made: on a cold
# machine the toolchain chroot is mostly download and unpack, and the
# kernel's link runs on one core, so about two minutes of the steps below go
# into those gaps. Only a warm-up: the steps below run the same commands
# (no-ops by then) and report what they say.
prebuild() {
	cd "$TOPDIR" || return
	cargo test --quiet --workspace --no-run --features "$VMM_FEATURES"
	cargo clippy --quiet --workspace --all-targets --features "$VMM_FEATURES" -- -D warnings
	musl_build -p rust_irqfd_test
	cargo test -p rust_irqfd_vmm --no-run --release --target "$MUSL_TARGET" --quiet --features "$VMM_FEATURES"
	musl_build -p rust_irqfd_samples
	musl_build -p rust_irqfd_bench
}
prebuild >"$out/prebuild.log" 2>&1 &
prebuild_pid=$!
# The kernel tree (and the toolchain under it): nothing runs in the VM without it.
FLAVOUR=${FLAVOUR:-debug}
export FLAVOUR
KDIR_OWN=$("$TOPDIR/scripts/kernel.sh" "$FLAVOUR") || die "could not make the kernel tree"
wait $prebuild_pid || true
log "check: kernel tree $KDIR_OWN ($(cat "$KDIR_OWN/.debian-version"))"

# The userspace crates are one cargo workspace (abi, the selftest, vmm,
# samples, bench): unit tests, rustfmt and clippy over all of them in one pass
# each. vmm's tests run here too: its module backends skip on the host, its
# KVM parity runs where /dev/kvm is usable.
log "check: host-side tests and lint"
step workspace-unit bash -c "cd '$TOPDIR' && cargo test --quiet --workspace --features $VMM_FEATURES"
step workspace-rustfmt bash -c "cd '$TOPDIR' && cargo fmt --all --check"
step workspace-clippy bash -c "cd '$TOPDIR' && cargo clippy --quiet --workspace --all-targets --features $VMM_FEATURES -- -D warnings &&
	cargo clippy --quiet -p rust_irqfd_vmm --all-targets -- -D warnings"
# The vmm crate's planted bugs (mutants/vmm): each caught by exactly the unit
# tests its patch names.
step vmm-mutants "$TOPDIR/scripts/vmm-mutants.sh"
# The vmm crate as it would be published: its documentation builds without a
# warning (every public item documented, every link resolves), and cargo
# packages it and the ABI crate it depends on and builds the packages
# (nothing is uploaded).
step vmm-doc bash -c "cd '$TOPDIR' && RUSTDOCFLAGS='-D warnings' cargo doc --quiet --no-deps -p rust_irqfd_vmm --features kvm-ioctls"
step vmm-publish-dry-run bash -c "cd '$TOPDIR' && cargo publish --dry-run --allow-dirty -p rust_irqfd_abi -p rust_irqfd_vmm"
step module-rustfmt "$TOPDIR/scripts/build.sh" fmtcheck
# No stale modules: if a build fails below, there is nothing for the VM to run.
rm -f "$TOPDIR/rust_irqfd/rust_irqfd.ko" "$TOPDIR/c_irqfd/c_irqfd.ko" \
	"$TOPDIR/selftests/rust_irqfd/hardirq/irqfd_hardirq.ko"
# The production build (no test hooks), then lint and build with the hooks
# the VM run uses (TEST_HOOKS=1).
step module-build "$TOPDIR/scripts/build.sh" modules
step module-clippy env TEST_HOOKS=1 "$TOPDIR/scripts/build.sh" clippy
step module-build-test-hooks env TEST_HOOKS=1 "$TOPDIR/scripts/build.sh" modules
# The oldest supported release too: the modules and their compat layer
# (rust_irqfd/compat.rs) must build, lint-free, against Debian's 7.2 (a tree
# prepared for external modules, kernel/build72.config; make matrix boots a
# full 7.2 debug kernel and runs the kselftest on it).
build_7_2() {
	rm -rf "$out/build72" && mkdir -p "$out/build72" && copy_module_sources "$out/build72" &&
		FLAVOUR=build72 MODSRC="$out/build72" TEST_HOOKS=1 "$TOPDIR/scripts/build.sh" clippy
}
[ "$FLAVOUR" = debug ] && step module-build-7.2 build_7_2
# An editor's view of the module: the tree's rust-analyzer generator finds the
# crate (rust_irqfd/Kbuild names its root).
step rust-analyzer "$TOPDIR/scripts/build.sh" rust-analyzer
step c-checkpatch in_chroot "$KDIR_OWN/scripts/checkpatch.pl" --no-tree --strict --quiet \
	--ignore SPDX_LICENSE_TAG -f $(cd "$TOPDIR" && git ls-files -- 'c_irqfd/*.[ch]' | sed "s|^|$TOPDIR/|")
# Every planted bug's patch still applies to the sources (make mutants
# builds and runs them; this only proves they are not stale).
step mutants-apply "$TOPDIR/scripts/mutants.sh" --check
# The selftest as a kselftest in a kernel tree: its directory dropped into a
# scratch tree that has the kernel's kselftest framework (its Makefile, lib.mk
# and runner, from the debug tree) as tools/testing/selftests/rust_irqfd, then
# built and installed through that framework with TARGETS=rust_irqfd (the
# kselftest list must name it), and run_tests run with --list (on the host
# it would test the host's /dev/kvm).
kselftest_in_tree() {
	# Outside the repository: under it, cargo would take the directory for
	# a member of the repository's workspace.
	local tree f
	tree=$(mktemp -d "${TMPDIR:-/tmp}/rust_irqfd-ktree.XXXXXX")
	rm -rf "$out/ktree-install"
	mkdir -p "$tree/scripts" "$tree/tools/testing/selftests"
	cp "$KDIR_OWN/scripts/subarch.include" "$tree/scripts/"
	(cd "$KDIR_OWN/tools/testing/selftests" &&
		cp -r Makefile lib.mk kselftest run_kselftest.sh "$tree/tools/testing/selftests/")
	(cd "$TOPDIR" && git ls-files selftests/rust_irqfd | grep -v '/hardirq/') |
		while read -r f; do install -D -m 0644 "$TOPDIR/$f" "$tree/tools/testing/$f"; done
	local kmake=(make -C "$tree/tools/testing/selftests" TARGETS=rust_irqfd
		CARGO_TARGET_DIR="$TOPDIR/target/kselftest-tree")
	"${kmake[@]}" install INSTALL_PATH="$out/ktree-install" &&
		grep -qx 'rust_irqfd:rust_irqfd_test' "$out/ktree-install/kselftest-list.txt" &&
		[ -x "$out/ktree-install/rust_irqfd/rust_irqfd_test" ] &&
		"${kmake[@]}" run_tests TEST_ARGS=--list >"$out/ktree-list.txt" &&
		grep -q '^load_unload_cycles ' "$out/ktree-list.txt"
	local rc=$?
	rm -rf "$tree"
	return $rc
}
step kselftest-in-tree kselftest_in_tree
# What the VM runs, static (musl) and in release, from the same workspace.
step selftest-build musl_build -p rust_irqfd_test
# The vmm crate's integration tests, built for the guest: there they find
# /dev/rust_irqfd, /dev/c_irqfd and the guest's /dev/kvm (on the host they skip
# the module backends).
vmm_vm_tests() {
	(cd "$TOPDIR" && cargo test -p rust_irqfd_vmm --no-run --release --target "$MUSL_TARGET" \
		--features "$VMM_FEATURES" --message-format=json) | python3 -c '
import json, shutil, sys
out = sys.argv[1]
for line in sys.stdin:
    try:
        m = json.loads(line)
    except ValueError:
        continue
    t = m.get("target", {})
    if m.get("reason") == "compiler-artifact" and m.get("executable") and t.get("kind") == ["test"] \
            and t.get("name") in ("module", "kvm", "parity", "adapter"):
        shutil.copy(m["executable"], out + "/vmm-" + t["name"])
' "$out"
	[ -x "$out/vmm-module" ] && [ -x "$out/vmm-kvm" ] && [ -x "$out/vmm-parity" ] &&
		[ -x "$out/vmm-adapter" ]
}
step vmm-vm-build vmm_vm_tests
step samples-build musl_build -p rust_irqfd_samples
samples_bin=$MUSL_BIN_DIR
step bench-build musl_build -p rust_irqfd_bench
bench_bin=$MUSL_BIN_DIR/rust_irqfd_bench

vm_rc=0
if [ -f "$TOPDIR/rust_irqfd/rust_irqfd.ko" ] && [ -f "$TOPDIR/c_irqfd/c_irqfd.ko" ] &&
	[ -x "$SELFTEST_BIN" ]; then
	log "check: kselftest in QEMU on both modules (then again with deferred_only=1)"
	# STRESS_SECS and TEST_ARGS (e.g. --filter NAME) narrow a run while debugging.
	# kmemleak scans once per device, not per race scenario: a scan costs
	# about 6 s under TCG, 89 of them were 490 s of a 1262 s run
	# (Documentation: "Race stress"). A later --kmemleak in TEST_ARGS wins.
	printf 'STRESS_SECS=%s\nTEST_ARGS="%s"\nBENCH_SMOKE=%s\n' "${STRESS_SECS:-2}" \
		"--kmemleak device ${TEST_ARGS:-}" \
		"${BENCH_SMOKE:-1}" >"$out/check.env"
	# About 14 minutes under TCG with 2 vCPUs on an idle host (815 s at
	# 2b56e8e, the whole warm make check 938 s); the timeout leaves room for
	# a slower host without letting a hung guest eat the CI budget.
	VM_MEM=${VM_MEM:-512} VM_TIMEOUT=${VM_TIMEOUT:-2400} "$TOPDIR/scripts/vm.sh" "$out/vm" "$KDIR_OWN/arch/x86/boot/bzImage" \
		"$TOPDIR/scripts/payload-check.sh" \
		"$TOPDIR/rust_irqfd/rust_irqfd.ko" "$TOPDIR/c_irqfd/c_irqfd.ko" \
		"$TOPDIR/selftests/rust_irqfd/hardirq/irqfd_hardirq.ko" \
		"$SELFTEST_BIN" "$out/check.env" \
		"$TOPDIR/scripts/payload-bench.sh" "$bench_bin" "$out/vmm-module" "$out/vmm-kvm" "$out/vmm-parity" "$out/vmm-adapter" \
		"$samples_bin/irqfd-watch" "$samples_bin/msix-routes" "$samples_bin/level-resample"
	"$TOPDIR/scripts/vmcheck.py" "$out/vm" || vm_rc=1
	# The benchmark's smoke setting ran last in the same boot: it must have
	# produced every kind of figure (timings on this kernel mean nothing).
	if [ "${BENCH_SMOKE:-1}" = 1 ]; then
		step bench-smoke "$TOPDIR/scripts/bench-report.py" --smoke "$out/vm/out/bench.jsonl" "$out/bench-smoke"
	fi
	for t in "$out"/vm/out/races-*.txt; do
		[ -f "$t" ] || continue
		echo
		echo "race stress, $(basename "$t" .txt | sed 's/races-//') mode (also in $t):"
		cat "$t"
	done
	if [ -f "$out/vm/out/parity-table.txt" ]; then
		echo
		echo "vmm parity, module backends in the VM (also in $out/vm/out/parity-table.txt):"
		cat "$out/vm/out/parity-table.txt"
	fi
	read -r vp vf vs < <(python3 -c "import json; r=json.load(open('$out/vm/results.json')); print(r['passed'], r['failed'], r['skipped'])")
	passed=$((passed + vp)) failed=$((failed + vf)) skipped=$((skipped + vs))
	if [ $vm_rc != 0 ] && [ "$vf" = 0 ]; then
		# The VM run failed without a failing KTAP test: a splat, a hang, a bad exit.
		failed=$((failed + 1))
	fi
	[ $vm_rc = 0 ] || failures+=("vm")
else
	log "check: modules or selftest missing, no VM run"
	failed=$((failed + 1))
	failures+=("vm (not run)")
fi

echo
log "check: done in $((SECONDS - t_start)) s; logs in $out"
[ ${#failures[@]} = 0 ] || echo "failed: ${failures[*]}"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
