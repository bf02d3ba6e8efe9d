#!/usr/bin/env bash
# Run a command inside the toolchain chroot in a private mount namespace. The
# cache and the repository are bind-mounted at their host paths, so a path means
# the same thing on both sides and nothing stays mounted afterwards.
. "$(dirname "$0")/common.sh"

[ -x "$CHROOT/usr/bin/apt-get" ] || die "toolchain chroot missing at $CHROOT (run scripts/toolchain.sh)"
[ $# -gt 0 ] || die "usage: chroot-run.sh CMD [ARGS...]"

# The caller's working directory, if it is inside a bound tree, is kept.
cwd=$PWD
exec unshare --mount --propagation private -- /bin/bash -c '
	set -e
	chroot=$1 cache=$2 top=$3 cwd=$4; shift 4
	mount -t proc proc "$chroot/proc"
	mount --bind /dev "$chroot/dev"
	mount -t tmpfs tmpfs "$chroot/tmp"
	# After the tmpfs: a checkout under /tmp must not be hidden by it.
	for d in "$cache" "$top"; do
		mkdir -p "$chroot$d"
		mount --bind "$d" "$chroot$d"
	done
	exec chroot "$chroot" /usr/bin/env -i HOME=/root TERM="${TERM:-dumb}" \
		PATH=/usr/lib/llvm-19/bin:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin \
		/bin/bash -c "cd \"\$0\" 2>/dev/null || cd /; exec \"\$@\"" "$cwd" "$@"
' bash "$CHROOT" "$RUST_IRQFD_CACHE" "$TOPDIR" "$cwd" "$@"
