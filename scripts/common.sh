# Shared settings for the build scripts. Sourced, never run.
#
# Everything long-lived (the toolchain chroot, kernel sources and build trees)
# lives in $RUST_IRQFD_CACHE, outside the repository, keyed by what went into it.

set -euo pipefail

RUST_IRQFD_CACHE=${RUST_IRQFD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rust_irqfd}
TOPDIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# The toolchain chroot: Debian trixie with the compilers Debian builds its
# 7.3 kernels with. Bump TOOLCHAIN_REV when the package list changes.
TOOLCHAIN_SUITE=trixie
TOOLCHAIN_REV=1
TOOLCHAIN_PKGS="rustc rust-src rustfmt rust-clippy bindgen clang-19 lld-19 llvm-19
	libclang-19-dev make bc bison flex libelf-dev libssl-dev cpio kmod xz-utils
	python3 perl libc6-dev ca-certificates"
CHROOT="$RUST_IRQFD_CACHE/chroot-$TOOLCHAIN_SUITE-r$TOOLCHAIN_REV"

# The userspace crates (selftest, vmm, samples, bench) are one cargo workspace,
# Cargo.toml at the top: one Cargo.lock and one target directory. What runs in
# the VM is built static for MUSL_TARGET in release (musl_build) and lands in
# MUSL_BIN_DIR; SELFTEST_BIN is the kselftest binary there.
# CARGO_TARGET_DIR moves that directory, as it does for cargo (a relative one
# is taken from the top, where musl_build runs cargo).
MUSL_TARGET=x86_64-unknown-linux-musl
case ${CARGO_TARGET_DIR:-} in
'') CARGO_TARGET=$TOPDIR/target ;;
/*) CARGO_TARGET=$CARGO_TARGET_DIR ;;
*) CARGO_TARGET=$TOPDIR/$CARGO_TARGET_DIR ;;
esac
MUSL_BIN_DIR=$CARGO_TARGET/$MUSL_TARGET/release
SELFTEST_BIN=$MUSL_BIN_DIR/rust_irqfd_test

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# The Debian mirror the host itself uses, if it names one (never hard-coded
# here); empty means debootstrap's default.
host_mirror() {
	local f uri=""
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -r "$f" ] || continue
		uri=$(awk '/^URIs:/ { for (i = 2; i <= NF; i++) if ($i !~ /security/) { print $i; exit } }' "$f")
		[ -n "$uri" ] && break
	done
	if [ -z "$uri" ] && [ -r /etc/apt/sources.list ]; then
		uri=$(awk '$1 == "deb" && $2 !~ /security/ && $2 ~ /^http/ { print $2; exit }' /etc/apt/sources.list)
	fi
	printf '%s' "$uri"
}

# musl_build [CARGO ARGS]: build workspace packages (-p NAME...) static, in
# release, for the VM; the binaries land in MUSL_BIN_DIR.
musl_build() {
	(cd "$TOPDIR" && cargo build --quiet --release --target "$MUSL_TARGET" "$@")
}

# Run a command inside the toolchain chroot, with the cache bind-mounted at the
# same path so that paths are identical inside and outside.
in_chroot() {
	"$TOPDIR/scripts/chroot-run.sh" "$@"
}

# What a selftest VM run needs, for the scripts that boot one on their own
# (stress.sh, fuzz.sh): host packages, the debug kernel tree, the modules built
# with the test hooks (log in OUT/build.log) and the static selftest. Sets
# KDIR_OWN and TEST_BIN.
selftest_vm_setup() {
	local out=$1
	"$TOPDIR/scripts/host-deps.sh"
	KDIR_OWN=$("$TOPDIR/scripts/kernel.sh" debug)
	TEST_HOOKS=1 "$TOPDIR/scripts/build.sh" modules >"$out/build.log" 2>&1 ||
		{ tail -20 "$out/build.log"; die "module build failed"; }
	musl_build -p rust_irqfd_test
	TEST_BIN=$SELFTEST_BIN
}

# What a measuring script (bench.sh, irqsoff.sh) needs before its VM: host
# packages, the FLAVOUR kernel tree (MEASURE_KDIR, its Debian version in
# MEASURE_KVER), a fresh OUT, the production build of both modules (no test
# hooks, no planted bug) against that tree, from a copy of the sources in
# OUT/modules so that the checkout's debug-tree build stays as it is (log in
# OUT/build.log), and the static benchmark.
# copy_module_sources DIR: the module sources (the Kbuild files and what they
# build, the selftest's hard-IRQ helper module included) into DIR, for
# build.sh's MODSRC, without objects a build of the checkout left there.
copy_module_sources() {
	mkdir -p "$1"
	(cd "$TOPDIR" &&
		find Kbuild include rust_irqfd c_irqfd selftests/rust_irqfd/hardirq -type f \
			\( -name Kbuild -o -name '*.rs' -o -name '*.c' -o -name '*.h' \) ! -name '*.mod.c' -print0 |
		xargs -0 cp --parents -t "$1")
}

measure_setup() {
	local flavour=$1 out=$2
	"$TOPDIR/scripts/host-deps.sh"
	MEASURE_KDIR=$("$TOPDIR/scripts/kernel.sh" "$flavour") || die "could not make the $flavour kernel"
	MEASURE_KVER=$(cat "$MEASURE_KDIR/.debian-version")
	log "$flavour: kernel $MEASURE_KDIR ($MEASURE_KVER)"
	rm -rf "$out"
	copy_module_sources "$out/modules"
	KDIR= FLAVOUR=$flavour MODSRC="$out/modules" "$TOPDIR/scripts/build.sh" modules >"$out/build.log" 2>&1 ||
		{ tail -30 "$out/build.log"; die "module build against the $flavour tree failed (log: $out/build.log)"; }
	musl_build -p rust_irqfd_bench || die "building the benchmark failed"
}
