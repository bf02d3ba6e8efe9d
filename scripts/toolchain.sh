#!/usr/bin/env bash
# Make (once) the toolchain chroot: Debian trixie with rustc, rust-src, bindgen,
# clang/lld/llvm 19 and the kernel source package from trixie-backports. The
# trixie sources live inside the chroot only; the host's apt is not touched.
. "$(dirname "$0")/common.sh"

if [ -f "$CHROOT/.complete" ]; then
	exit 0
fi

command -v debootstrap >/dev/null || die "debootstrap is missing (apt-get install debootstrap)"
[ "$(id -u)" = 0 ] || die "making the toolchain chroot needs root (debootstrap, chroot)"

mirror=$(host_mirror)
if [ ! -f "$CHROOT/.bootstrapped" ]; then
	log "toolchain: debootstrap $TOOLCHAIN_SUITE into $CHROOT (a few minutes, once)"
	rm -rf "$CHROOT" "$CHROOT.tmp"
	mkdir -p "$RUST_IRQFD_CACHE"
	# shellcheck disable=SC2086
	debootstrap --variant=minbase "$TOOLCHAIN_SUITE" "$CHROOT.tmp" $mirror \
		>"$RUST_IRQFD_CACHE/debootstrap.log" 2>&1 ||
		{ tail -20 "$RUST_IRQFD_CACHE/debootstrap.log"; die "debootstrap failed (log: $RUST_IRQFD_CACHE/debootstrap.log)"; }
	m=${mirror:-$(awk '$1 == "deb" { print $2; exit }' "$CHROOT.tmp/etc/apt/sources.list")}
	printf 'deb %s %s main\ndeb %s %s-backports main\n' "$m" "$TOOLCHAIN_SUITE" "$m" "$TOOLCHAIN_SUITE" \
		>"$CHROOT.tmp/etc/apt/sources.list"
	touch "$CHROOT.tmp/.bootstrapped"
	mv "$CHROOT.tmp" "$CHROOT"
fi

log "toolchain: installing rustc, bindgen, clang/lld/llvm 19 in the chroot"
# shellcheck disable=SC2086
in_chroot /bin/bash -c "export DEBIAN_FRONTEND=noninteractive;
	apt-get update -q && apt-get install -y -q --no-install-recommends $(echo $TOOLCHAIN_PKGS)" \
	>"$RUST_IRQFD_CACHE/toolchain-apt.log" 2>&1 ||
	{ tail -20 "$RUST_IRQFD_CACHE/toolchain-apt.log"; die "toolchain install failed (log: $RUST_IRQFD_CACHE/toolchain-apt.log)"; }

in_chroot /bin/bash -c 'rustc --version; bindgen --version; clang-19 --version | head -1' |
	tee "$CHROOT/.versions" >&2
touch "$CHROOT/.complete"
