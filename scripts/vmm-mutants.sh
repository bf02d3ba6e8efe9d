#!/usr/bin/env bash
# The vmm crate's planted bugs: each mutants/vmm/<name>.patch is applied to a
# copy of the crate (and of the ABI crate it depends on), and the crate's unit
# tests must then fail exactly as the patch's "Caught-by:" lines say, no test
# more and no test less; the unpatched copy must pass them all. The unit tests
# run on any host (their backend is a userspace fake); the integration tests
# that catch the same bugs against the kernels (KVM, the modules) are not
# part of this proof.
#
# usage: vmm-mutants.sh [NAME...]   (default: every patch)
#        vmm-mutants.sh --list      each patch's expected catchers
#
# About 10 s per mutant once the copy's dependencies are built (they are
# kept in build/vmm-mutants/target).
. "$(dirname "$0")/common.sh"

out=$TOPDIR/build/vmm-mutants
ws=$out/ws
export CARGO_TARGET_DIR=$out/target

expected() { sed -n 's/^Caught-by: //p' "$1" | sort; }

if [ "${1:-}" = --list ]; then
	for p in "$TOPDIR"/mutants/vmm/*.patch; do
		echo "$(basename "$p" .patch): $(expected "$p" | tr '\n' ' ')"
	done
	exit 0
fi

# A fresh copy: the two crates, the lock file, a workspace of their own.
fresh() {
	rm -rf "$ws"
	mkdir -p "$ws/selftests/rust_irqfd"
	cp -r "$TOPDIR/vmm" "$ws/vmm"
	cp -r "$TOPDIR/selftests/rust_irqfd/abi" "$ws/selftests/rust_irqfd/abi"
	cp "$TOPDIR/Cargo.lock" "$ws/Cargo.lock"
	printf '[workspace]\nresolver = "2"\nmembers = ["vmm", "selftests/rust_irqfd/abi"]\n' >"$ws/Cargo.toml"
}

# The unit tests that fail in the copy, one per line, sorted. Exit status 2
# if the tests did not build.
failing() {
	local log=$out/$1.log
	(cd "$ws" && cargo test -p rust_irqfd_vmm --lib --features kvm-ioctls -- --test-threads=1) \
		>"$log" 2>&1 || true
	grep -q '^test result:' "$log" || return 2
	sed -n 's/^test \(.*\) \.\.\. FAILED$/\1/p' "$log" | sort
}

names=("$@")
if [ ${#names[@]} = 0 ]; then
	for p in "$TOPDIR"/mutants/vmm/*.patch; do names+=("$(basename "$p" .patch)"); done
fi
mkdir -p "$out"
rc=0

fresh
clean=$(failing clean) || die "the clean copy's tests do not build (see $out/clean.log)"
if [ -n "$clean" ]; then
	echo "not ok - clean: failing without a planted bug: $clean"
	rc=1
else
	echo "ok - clean: every unit test passes"
fi

for name in "${names[@]}"; do
	patch=$TOPDIR/mutants/vmm/$name.patch
	[ -f "$patch" ] || die "no such planted bug: $name"
	fresh
	if ! patch -s -p1 -d "$ws" <"$patch"; then
		echo "not ok - $name: the patch does not apply"
		rc=1
		continue
	fi
	want=$(expected "$patch")
	got=$(failing "$name") || {
		echo "not ok - $name: does not build (see $out/$name.log)"
		rc=1
		continue
	}
	if [ -z "$want" ]; then
		echo "not ok - $name: the patch names no Caught-by test"
		rc=1
	elif [ "$got" = "$want" ]; then
		echo "ok - $name: caught by $(echo "$got" | tr '\n' ' ')"
	else
		echo "not ok - $name: caught by [$(echo "$got" | tr '\n' ' ')], expected [$(echo "$want" | tr '\n' ' ')]"
		rc=1
	fi
done
rm -rf "$ws"
exit $rc
