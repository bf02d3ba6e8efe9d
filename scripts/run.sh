#!/usr/bin/env bash
# make run: set up what is missing, build the modules and the samples, boot the
# debug kernel in QEMU, load rust_irqfd.ko and c_irqfd.ko, run each sample
# against both devices, print what happened.
#
# usage: run.sh [SAMPLE...]   (default: irqfd-watch msix-routes level-resample)
# env:   DEVICES (default "rust_irqfd c_irqfd"), VM_TIMEOUT (default 300)
. "$(dirname "$0")/common.sh"

all_samples="irqfd-watch msix-routes level-resample"
samples=${*:-$all_samples}
for s in $samples; do
	case " $all_samples " in
	*" $s "*) ;;
	*) die "unknown sample '$s' (one of: $all_samples)" ;;
	esac
done
devices=${DEVICES:-rust_irqfd c_irqfd}

out=$TOPDIR/build/run
mkdir -p "$out"
log "run: the cache lives in $RUST_IRQFD_CACHE (toolchain chroot, kernel trees); remove it to start over"
"$TOPDIR/scripts/host-deps.sh"
"$TOPDIR/scripts/toolchain.sh"
KDIR_OWN=$("$TOPDIR/scripts/kernel.sh" debug)
log "run: building rust_irqfd.ko and c_irqfd.ko against $KDIR_OWN"
"$TOPDIR/scripts/build.sh" modules >"$out/build.log" 2>&1 || { tail -30 "$out/build.log"; die "module build failed (log: $out/build.log)"; }
log "run: building the samples ($samples)"
musl_build -p rust_irqfd_samples
bin=$MUSL_BIN_DIR
files=()
for s in $samples; do files+=("$bin/$s"); done
for m in $devices; do files+=("$TOPDIR/$m/$m.ko"); done
printf 'SAMPLES="%s"\nDEVICES="%s"\n' "$samples" "$devices" >"$out/run.env"
log "run: each of [$samples] on each of [$devices], in one VM"
VM_TIMEOUT=${VM_TIMEOUT:-300} "$TOPDIR/scripts/vm.sh" "$out/vm" "$KDIR_OWN/arch/x86/boot/bzImage" \
	"$TOPDIR/samples/vm-payload.sh" "${files[@]}" "$out/run.env"
log "run: what happened in the guest"
"$TOPDIR/scripts/vmcheck.py" "$out/vm"
