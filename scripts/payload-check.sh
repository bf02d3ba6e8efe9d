#!/bin/sh
# The guest side of `make check`: load both modules, run the kselftest on both
# devices, unload. Runs as the initramfs's /payload; stdout is the result.
set -u
rc=0
for m in rust_irqfd c_irqfd; do
	if ! insmod /lib/modules/$m.ko; then
		echo "# insmod $m failed"
		rc=1
	fi
done
/bin/rust_irqfd_test
t=$?
[ $t = 0 ] || [ $t = 4 ] || rc=1
for m in rust_irqfd c_irqfd; do
	if ! rmmod $m; then
		echo "# rmmod $m failed"
		rc=1
	fi
done
exit $rc
