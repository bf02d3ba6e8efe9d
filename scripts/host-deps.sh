#!/usr/bin/env bash
# Install the host packages the build and the VM runner need, if missing.
# Everything else (compilers for the kernel, the kernel source) goes into the
# toolchain chroot, never onto the host.
. "$(dirname "$0")/common.sh"

need=()
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
[ -x /bin/busybox ] && file -L /bin/busybox 2>/dev/null | grep -q static || need+=(busybox-static)
command -v cpio >/dev/null || need+=(cpio)
command -v file >/dev/null || need+=(file)
command -v python3 >/dev/null || need+=(python3)
command -v unshare >/dev/null || need+=(util-linux)
if [ ${#need[@]} -gt 0 ]; then
	[ "$(id -u)" = 0 ] || die "missing host packages: ${need[*]} (install them as root)"
	log "host: installing ${need[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q >/dev/null
	apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
fi

# The selftest, samples and library are ordinary cargo projects built with the
# host's toolchain; the selftest is linked statically against musl.
command -v cargo >/dev/null || die "cargo missing: install a Rust toolchain with rustup"
if command -v rustup >/dev/null && ! rustup target list --installed 2>/dev/null | grep -qx x86_64-unknown-linux-musl; then
	log "host: adding the x86_64-unknown-linux-musl target (static selftest binary)"
	rustup target add x86_64-unknown-linux-musl >/dev/null
fi
