#!/usr/bin/env bash
# Build (or lint) the modules against a Rust-enabled kernel tree.
#
# usage: build.sh modules|clippy|fmtcheck|fmt|clean|rust-analyzer
# env:   KDIR  a Rust-enabled, built kernel tree; empty means the project's own
#              debug tree (made on demand in the cache, built in the chroot)
#        FLAVOUR  which own tree when KDIR is empty: debug (default), bench or irqsoff
#        MODSRC  build this copy of the module sources (Kbuild, rust_irqfd/,
#              c_irqfd/, include/; with TEST_HOOKS=1 also
#              selftests/rust_irqfd/hardirq/) instead of the checkout
#        LLVM  as for the kernel (default -19), TEST_HOOKS (see Kbuild), W
#
# A planted bug is not a build option: scripts/mutants.sh applies its patch
# (mutants/) to a copy of the sources and builds that with MODSRC.
. "$(dirname "$0")/common.sh"

[ -z "${MUTANT:-}" ] ||
	die "MUTANT=$MUTANT: planted bugs are patches now; run 'MUTANTS=$MUTANT make mutants', or apply mutants/rust/$MUTANT.patch and mutants/c/$MUTANT.patch with git apply"

what=${1:-modules}
LLVM=${LLVM:--19}
extra=()
[ -n "${W:-}" ] && extra+=("W=$W")
[ -n "${TEST_HOOKS:-}" ] && extra+=("TEST_HOOKS=$TEST_HOOKS")

config_value() { sed -n "s/^$1=\"\\{0,1\\}\\([^\"]*\\)\"\\{0,1\\}\$/\\1/p" "$2/.config"; }

if [ -n "${KDIR:-}" ]; then
	# The user's tree, the user's toolchain.
	kdir=$(cd "$KDIR" 2>/dev/null && pwd) || die "KDIR=$KDIR does not exist"
	KDIR=$kdir
	# Below the oldest release the module supports (Kbuild's rust_irqfd_min),
	# one line says so, before anything else can fail on the tree.
	min=$(sed -n 's/^rust_irqfd_min := //p' "$TOPDIR/Kbuild")
	kver=$(sed -n 's/^VERSION = //p; s/^PATCHLEVEL = //p' "$KDIR/Makefile" 2>/dev/null | paste -sd.)
	case "$kver" in
	*.*) ;;
	*) kver=$(cut -d. -f1,2 "$KDIR/include/config/kernel.release" 2>/dev/null) ;;
	esac
	[ -n "$kver" ] || die "KDIR=$KDIR is not a kernel tree (no VERSION in its Makefile)"
	[ "$(printf '%s\n' "$min" "$kver" | sort -V | head -1)" = "$min" ] ||
		die "rust_irqfd needs Linux $min or later; KDIR=$KDIR is Linux $kver"
	[ -f "$KDIR/.config" ] || die "KDIR=$KDIR is not a configured kernel tree (no .config)"
	[ "$(config_value CONFIG_RUST "$KDIR")" = y ] ||
		die "KDIR=$KDIR is configured without CONFIG_RUST=y; rust_irqfd needs a Rust-enabled kernel"
	[ -f "$KDIR/rust/libkernel.rmeta" ] ||
		die "KDIR=$KDIR has no rust/libkernel.rmeta: build the tree (make LLVM=$LLVM) before the module"
	want=$(config_value CONFIG_RUSTC_VERSION_TEXT "$KDIR")
	have=$(${RUSTC:-rustc} --version 2>/dev/null || echo "no rustc")
	[ "$want" = "$have" ] ||
		die "KDIR=$KDIR was built with '$want' but '$have' is in use; its .rmeta files only load in the same rustc (set PATH or RUSTC)"
	run() { "$@"; }
	own=0
else
	KDIR=$("$TOPDIR/scripts/kernel.sh" "${FLAVOUR:-debug}")
	want=$(config_value CONFIG_RUSTC_VERSION_TEXT "$KDIR")
	have=$(in_chroot rustc --version)
	[ "$want" = "$have" ] || die "the cached tree $KDIR was built with '$want' but the chroot has '$have'; remove the tree to rebuild it"
	run() { in_chroot "$@"; }
	own=1
	# A tree prepared for external modules only (kernel/build72.config) has no
	# vmlinux, hence no Module.symvers: modpost cannot resolve the kernel's
	# symbols, which only a tree to boot needs.
	[ -f "$KDIR/Module.symvers" ] || extra+=("KBUILD_MODPOST_WARN=1")
fi

kmake() { run make -C "$KDIR" M="${MODSRC:-$TOPDIR}" LLVM="$LLVM" "${extra[@]}" "$@"; }
case "$what" in
modules) kmake modules ;;
clippy) kmake CLIPPY=1 modules ;;
clean) kmake clean ;;
fmtcheck) run rustfmt --check --edition 2021 --config-path "$KDIR/.rustfmt.toml" "$TOPDIR"/rust_irqfd/*.rs ;;
fmt) run rustfmt --edition 2021 --config-path "$KDIR/.rustfmt.toml" "$TOPDIR"/rust_irqfd/*.rs ;;
kdir) echo "$KDIR" ;;
rust-analyzer)
	# The tree's own generator (scripts/generate_rust_analyzer.py) finds the
	# crate root through rust_irqfd/Kbuild. It takes any .rs file whose name
	# plus ".o" occurs in a Kbuild file for a crate root, so irqfd.rs ("irqfd.o"
	# in "rust_irqfd.o") and test_hooks.rs ("test_hooks.o", the C hooks) come out
	# as crates of their own: they are modules of rust_irqfd_main.rs, dropped
	# here (nothing depends on them). With the project's own tree the
	# toolchain's paths are the chroot's, seen from the host under $CHROOT.
	kmake rust-analyzer
	prefix=
	[ "$own" = 1 ] && prefix=$CHROOT
	python3 - "${MODSRC:-$TOPDIR}/rust-project.json" "$prefix" <<'PY' || die "rust-project.json: no rust_irqfd crate"
import json, os, sys
path, prefix = sys.argv[1], sys.argv[2]
project = json.load(open(path))
moddir = os.path.dirname(os.path.abspath(path))
def ours(c):
    root = c["root_module"]
    return root.startswith("rust_irqfd/") or root.startswith(moddir + "/rust_irqfd/")
crates = [c for c in project["crates"]
          if not ours(c) or c["root_module"].endswith("rust_irqfd_main.rs")]
if prefix:
    fix = lambda p: prefix + p if p.startswith("/usr/") or p == "/usr" else p
    project["sysroot"] = fix(project.get("sysroot", ""))
    for c in crates:
        c["root_module"] = fix(c["root_module"])
        for k in ("include_dirs", "exclude_dirs"):
            if k in c.get("source", {}):
                c["source"][k] = [fix(d) for d in c["source"][k]]
for c in crates:
    if ours(c):
        # Relative to the module directory, as the generator writes it.
        c["root_module"] = os.path.join(moddir, c["root_module"])
project["crates"] = crates
json.dump(project, open(path, "w"), indent=4, sort_keys=False)
names = [c["root_module"] for c in crates if ours(c)]
print(f"rust-project.json: {len(crates)} crates, the module's: {', '.join(names)}")
sys.exit(0 if names else 1)
PY
	;;
*) die "unknown target $what" ;;
esac
