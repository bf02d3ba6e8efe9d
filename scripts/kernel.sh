#!/usr/bin/env bash
# Make (once per key) a Rust-enabled kernel tree from Debian's linux-source-7.3,
# configured from tinyconfig plus a fragment from kernel/, built with the chroot's
# toolchain. Prints the tree's path (usable as KDIR) on stdout.
#
# usage: kernel.sh [debug|bench|irqsoff]
#
# A fragment may name another one on an "#include OTHER.config" line of its
# own: OTHER's lines are read in its place (one level), so that a flavour can
# be another one plus a few options (kernel/irqsoff.config is the bench
# kernel's). A fragment without such a line is used as it is, byte for byte.
# Two more lines of a fragment's own (not of an included one) choose what is
# built: "#series X.Y", Debian's linux-source-X.Y (default 7.3, the newest the
# module supports), and "#target modules_prepare", only what external
# modules build against (the Rust crates and headers, no vmlinux: a tree that
# proves the module builds, not one to boot).
#
# Cache key: kernel package version, rustc, clang and bindgen versions, the
# hash of the fragment, and KBUILD_REV (bump it when a change to this script
# changes what gets built). A changed key builds a new tree; an unchanged one is
# reused as it is.
. "$(dirname "$0")/common.sh"

flavour=${1:-debug}
fragment="$TOPDIR/kernel/$flavour.config"
[ -f "$fragment" ] || die "no config fragment $fragment"
# The fragment with its "#include" lines expanded: what goes into the key,
# into .config and into the check that kconfig kept every option.
expanded=$(mktemp)
trap 'rm -f "$expanded"' EXIT
if grep -q '^#include ' "$fragment"; then
	while IFS= read -r line || [ -n "$line" ]; do
		case "$line" in
		"#include "*)
			inc="$TOPDIR/kernel/${line#\#include }"
			[ -f "$inc" ] || die "$fragment: no fragment $inc to include"
			grep -q '^#include ' "$inc" && die "$inc: includes nest one level only"
			cat "$inc"
			;;
		*) printf '%s\n' "$line" ;;
		esac
	done <"$fragment" >"$expanded"
else
	cp "$fragment" "$expanded"
fi
KSERIES=$(sed -n 's/^#series //p' "$fragment" | tail -1)
KSERIES=${KSERIES:-7.3}
ktarget=$(sed -n 's/^#target //p' "$fragment" | tail -1)
ktarget=${ktarget:-bzImage modules}
KPKG=linux-source-$KSERIES
KBUILD_REV=1

"$TOPDIR/scripts/toolchain.sh"

# The source package: whatever 7.3.x the archive has now.
src_tar="$CHROOT/usr/src/$KPKG.tar.xz"
if [ ! -f "$src_tar" ]; then
	log "kernel: fetching Debian's $KPKG (trixie-backports) into the chroot"
	in_chroot /bin/bash -c "export DEBIAN_FRONTEND=noninteractive;
		apt-get update -q >/dev/null; apt-cache show $KPKG >/dev/null 2>&1 || exit 3;
		apt-get install -y -q --no-install-recommends $KPKG" >"$RUST_IRQFD_CACHE/kernel-apt.log" 2>&1 || {
		rc=$?
		[ $rc = 3 ] && die "Debian no longer carries $KPKG in trixie-backports; the $KSERIES series is gone from the archive. Update the series of kernel/$flavour.config (#series, default 7.3 in scripts/kernel.sh), and check the module against the new one."
		tail -20 "$RUST_IRQFD_CACHE/kernel-apt.log"
		die "installing $KPKG failed (log: $RUST_IRQFD_CACHE/kernel-apt.log)"
	}
fi
kver=$(in_chroot dpkg-query -W -f '${Version}' "$KPKG")
tools=$(in_chroot /bin/bash -c 'rustc --version; clang-19 --version | head -1; bindgen --version')
key=$( { echo "$kver"; echo "$tools"; echo "rev $KBUILD_REV"; cat "$expanded"; } | sha256sum | cut -c1-12)
tree="$RUST_IRQFD_CACHE/linux-$kver-$flavour-$key"

# One build per tree at a time: a second caller waits for the first.
exec 9>"$tree.lock"
flock 9
if [ -f "$tree/.complete" ]; then
	log "kernel: reusing $tree ($KPKG $kver, $flavour)"
	echo "$tree"
	exit 0
fi

log "kernel: $KPKG $kver, $flavour config, key $key"
log "kernel: toolchain: $(echo "$tools" | tr '\n' ';' | sed 's/;$//')"
log "kernel: tree at $tree"
rm -rf "$tree"
mkdir -p "$tree"
tar -C "$tree" --strip-components=1 -xJf "$src_tar"

kmake() { in_chroot make -C "$tree" ARCH=x86_64 LLVM=-19 "$@"; }

kmake rustavailable >&2 || die "the chroot's toolchain does not satisfy the tree's Rust requirements (see above)"
kmake tinyconfig >/dev/null
# Later assignments win in kconfig, so the fragment goes after tinyconfig's.
cat "$expanded" >>"$tree/.config"
kmake olddefconfig >/dev/null 2>"$tree/.kconfig.log" || {
	cat "$tree/.kconfig.log" >&2
	die "kconfig failed"
}
# Every option the fragment asks for must have survived kconfig's dependencies:
# as for kconfig, an option's last line in the fragment is the one that counts
# (a flavour may undo a line of the fragment it includes).
wanted=$(mktemp)
trap 'rm -f "$expanded" "$wanted"' EXIT
tac "$expanded" | awk '{ o = $0; sub(/^# /, "", o); sub(/[= ].*/, "", o) }
	/^(# )?CONFIG_/ && seen[o]++ { next } { print }' | tac >"$wanted"
bad=0
while IFS= read -r line; do
	case "$line" in
	CONFIG_*=*) grep -qxF "$line" "$tree/.config" || { echo "  wanted $line, got: $(grep "^${line%%=*}=" "$tree/.config" || echo unset)" >&2; bad=1; } ;;
	"# CONFIG_"*" is not set") opt=${line#\# }; opt=${opt%% *}; grep -q "^$opt=" "$tree/.config" && { echo "  wanted $opt unset, got $(grep "^$opt=" "$tree/.config")" >&2; bad=1; } ;;
	esac
done <"$wanted"
[ $bad = 0 ] || die "kconfig dropped options of $fragment (missing dependencies, listed above)"

log "kernel: building $ktarget and the Rust metadata ($(nproc) jobs; a full debug build is about 20 minutes cold)"
blog="$tree/.build.log"
# shellcheck disable=SC2086
kmake -j"$(nproc)" $ktarget >"$blog" 2>&1 &
pid=$!
start=$(date +%s)
while kill -0 $pid 2>/dev/null; do
	sleep 30
	n=$(grep -cE '^  (CC|RUSTC|AS|LD)' "$blog" || true)
	printf '    ... %d min, %d objects built (a full debug build is about 1110)\n' $((($(date +%s) - start) / 60)) "$n" >&2
done
wait $pid || { tail -40 "$blog" >&2; die "kernel build failed (log: $blog)"; }
[ -f "$tree/rust/libkernel.rmeta" ] || die "build finished but rust/libkernel.rmeta is missing"
echo "$kver" >"$tree/.debian-version"
touch "$tree/.complete"
# Older trees of this flavour are stale now: keep the cache bounded.
for old in "$RUST_IRQFD_CACHE"/linux-*-"$flavour"-????????????; do
	[ "$old" = "$tree" ] || [ ! -d "$old" ] || { log "kernel: removing stale $old"; rm -rf "$old" "$old.lock"; }
done
log "kernel: built in $((($(date +%s) - start) / 60)) min: $tree"
echo "$tree"
