#!/usr/bin/env bash
# make run: set up what is missing, build the modules and the sample, boot the
# debug kernel in QEMU, load rust_irqfd.ko, run the sample, print what happened.
. "$(dirname "$0")/common.sh"

out=$TOPDIR/build/run
mkdir -p "$out"
log "run: the cache lives in $RUST_IRQFD_CACHE (toolchain chroot, kernel trees); remove it to start over"
"$TOPDIR/scripts/host-deps.sh"
"$TOPDIR/scripts/toolchain.sh"
KDIR_OWN=$("$TOPDIR/scripts/kernel.sh" debug)
log "run: building rust_irqfd.ko and c_irqfd.ko against $KDIR_OWN"
"$TOPDIR/scripts/build.sh" modules >"$out/build.log" 2>&1 || { tail -30 "$out/build.log"; die "module build failed (log: $out/build.log)"; }
log "run: building the sample (irqfd-watch)"
(cd "$TOPDIR/samples" && cargo build --quiet --release --target x86_64-unknown-linux-musl)
VM_TIMEOUT=${VM_TIMEOUT:-300} "$TOPDIR/scripts/vm.sh" "$out/vm" "$KDIR_OWN/arch/x86/boot/bzImage" \
	"$TOPDIR/scripts/payload-run.sh" "$TOPDIR/rust_irqfd.ko" \
	"$TOPDIR/samples/target/x86_64-unknown-linux-musl/release/irqfd-watch"
log "run: what happened in the guest"
"$TOPDIR/scripts/vmcheck.py" "$out/vm"
