#!/usr/bin/env bash
# Boot a kernel in QEMU with a busybox initramfs, run a payload, and leave the
# serial log in OUT/console.log. The verdict (KTAP, splats) is vmcheck.py's.
#
# usage: vm.sh OUTDIR BZIMAGE PAYLOAD [FILE...]
#   PAYLOAD  a shell script run by the guest's init, as /payload (cwd /).
#   FILE     copied into the guest's /bin (executables), /lib/modules (*.ko),
#            or /etc/payload.env (*.env, sourced before the payload runs).
#            Files the payload leaves in /tmp/out come back as OUTDIR/out/*.
# env: VM_TIMEOUT (seconds, default 900), VM_CPUS (2), VM_MEM (1024),
#      VM_ACCEL (kvm|tcg|auto, default auto), VM_APPEND (extra kernel arguments),
#      VM_ICOUNT=1 (deterministic timing: single-threaded TCG with
#      -icount shift=0,sleep=off, so one guest nanosecond is one instruction
#      and idle time is skipped; implies TCG)
. "$(dirname "$0")/common.sh"

[ $# -ge 3 ] || die "usage: vm.sh OUTDIR BZIMAGE PAYLOAD [FILE...]"
out=$1 kernel=$2 payload=$3
shift 3
command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 missing (apt-get install qemu-system-x86)"
busybox=$(command -v busybox) || die "busybox missing (apt-get install busybox-static)"
file "$busybox" 2>/dev/null | grep -q 'statically linked' ||
	ldd "$busybox" 2>&1 | grep -q 'not a dynamic' || die "$busybox is not static (apt-get install busybox-static)"

timeout_s=${VM_TIMEOUT:-900}
rm -rf "$out"
mkdir -p "$out"
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,sbin,dev,proc,sys,tmp,lib/modules,etc}
cp "$busybox" "$root/bin/busybox"
cp "$payload" "$root/payload"
chmod +x "$root/payload"
for f in "$@"; do
	case "$f" in
	*.ko) cp "$f" "$root/lib/modules/" ;;
	*.env) cp "$f" "$root/etc/payload.env" ;;
	*) cp "$f" "$root/bin/" ;;
	esac
done

# The guest's init: mount what the tests need, run the payload with the console
# at full verbosity (a hang still shows its splat), then print the results in
# marked sections with the console quiet, and power off.
cat >"$root/init" <<'EOS'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin:/sbin
mount -t proc proc /proc
if grep -q kvmprobe /proc/cmdline; then echo KVM-PROBE-OK; reboot -f; fi
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
mount -t tmpfs tmp /tmp
mount -t debugfs debugfs /sys/kernel/debug
# A hung task is reported after 60 s. The C reference's release of a context
# with 4096 irqfds flushes 4096 shutdowns one by one, which under TCG on a
# loaded host (other VMs beside this one) took over 20 s, the value before:
# a report that names a flush making progress. A deadlock never finishes, so
# it is still reported, 40 s later.
echo 60 > /proc/sys/kernel/hung_task_timeout_secs 2>/dev/null
# Forget whatever kmemleak saw during boot: only what the payload leaks counts.
[ -w /sys/kernel/debug/kmemleak ] && echo clear > /sys/kernel/debug/kmemleak
echo "===VM-READY==="
cd /
mkdir -p /tmp/out
[ -f /etc/payload.env ] && { set -a; . /etc/payload.env; set +a; }
sh /payload > /tmp/payload.out 2>&1
rc=$?
if [ -w /sys/kernel/debug/kmemleak ]; then
	echo scan > /sys/kernel/debug/kmemleak; sleep 1
	echo scan > /sys/kernel/debug/kmemleak
	cat /sys/kernel/debug/kmemleak > /tmp/kmemleak.out
else
	echo "kmemleak unavailable" > /tmp/kmemleak.out
fi
dmesg -n 1
echo "===PAYLOAD-BEGIN==="
cat /tmp/payload.out
echo "===PAYLOAD-END==="
echo "===KMEMLEAK-BEGIN==="
cat /tmp/kmemleak.out
echo "===KMEMLEAK-END==="
for f in /tmp/out/*; do
	[ -f "$f" ] || continue
	echo "===OUTFILE ${f##*/}==="
	cat "$f"
	echo "===OUTFILE-END==="
done
echo "===DMESG-BEGIN==="
dmesg
echo "===DMESG-END==="
echo "===PAYLOAD-EXIT $rc==="
sync
reboot -f
EOS
chmod +x "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$out/initramfs.cpio.gz"

# KVM when it can boot this kernel here, TCG otherwise. The probe is bounded and
# its answer cached per host kernel, QEMU and guest kernel.
accel=${VM_ACCEL:-auto}
if [ "${VM_ICOUNT:-0}" = 1 ]; then
	[ "$accel" = kvm ] && die "VM_ICOUNT=1 needs TCG, not VM_ACCEL=kvm"
	accel=tcg
fi
if [ "$accel" = auto ]; then
	accel=tcg
	if [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
		key=$( { uname -r; qemu-system-x86_64 --version | head -1; sha256sum <"$kernel"; } | sha256sum | cut -c1-12)
		probe="$RUST_IRQFD_CACHE/kvm-probe-$key"
		if [ ! -f "$probe" ]; then
			log "vm: probing whether KVM can boot this kernel (at most 30 s, once)"
			if timeout -k 5 30 qemu-system-x86_64 -accel kvm -cpu host -m 512 -smp 1 \
				-kernel "$kernel" -initrd "$out/initramfs.cpio.gz" \
				-append "console=ttyS0 panic=-1 kvmprobe" \
				-nographic -no-reboot -serial stdio -monitor none -display none \
				</dev/null 2>&1 | grep -q "KVM-PROBE-OK"; then
				echo kvm >"$probe"
			else
				echo tcg >"$probe"
			fi
		fi
		accel=$(cat "$probe")
	fi
fi
case "$accel" in
kvm) qaccel=(-accel kvm -cpu host) ;;
tcg) qaccel=(-accel tcg,thread=multi -cpu max,la57=off) ;;
*) die "VM_ACCEL must be kvm, tcg or auto" ;;
esac
if [ "${VM_ICOUNT:-0}" = 1 ]; then
	# Guest time counts instructions (1 ns each), not host time: the same
	# code takes the same guest time run after run, however loaded the host.
	qaccel=(-accel tcg,thread=single -icount shift=0,sleep=off -cpu max,la57=off)
	accel=tcg-icount
	log "vm: VM_ICOUNT=1: single-threaded TCG, -icount shift=0,sleep=off (1 guest ns = 1 instruction)"
fi

append="console=ttyS0 panic=-1 oops=panic kasan_multi_shot printk.time=1 loglevel=7 ${VM_APPEND:-}"
echo "accel=$accel" >"$out/vm.info"
log "vm: booting ($accel, ${VM_CPUS:-2} CPUs, timeout ${timeout_s}s), log in $out/console.log"
start=$(date +%s)
set +e
timeout -k 10 "$timeout_s" qemu-system-x86_64 "${qaccel[@]}" \
	-m "${VM_MEM:-1024}" -smp "${VM_CPUS:-2}" \
	-kernel "$kernel" -initrd "$out/initramfs.cpio.gz" -append "$append" \
	-nographic -no-reboot -serial stdio -monitor none -display none \
	</dev/null >"$out/console.log" 2>&1
rc=$?
set -e
echo "$rc" >"$out/qemu.rc"
echo "$accel" >"$out/accel"
log "vm: finished in $(($(date +%s) - start)) s (qemu exit $rc$([ $rc = 124 ] && echo ", timed out"))"
exit 0
