#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# The guest side of `make run` (scripts/run.sh hands it to scripts/vm.sh as the
# initramfs's /payload): load both modules, run each sample against each
# device, print a KTAP summary, unload. Exits non-zero if any sample did.
#
# env (from /etc/payload.env, written by run.sh):
#   SAMPLES  the programs to run, from /bin (default: all three)
#   DEVICES  the modules to load and run them on (default: rust_irqfd c_irqfd)
set -u
SAMPLES=${SAMPLES:-"irqfd-watch msix-routes level-resample"}
DEVICES=${DEVICES:-"rust_irqfd c_irqfd"}
rc=0 n=0
: > /tmp/summary
for m in $DEVICES; do
	echo "# insmod $m.ko"
	insmod /lib/modules/$m.ko || { echo "# insmod $m failed"; rc=1; }
done
ls -l /dev/rust_irqfd /dev/c_irqfd 2>/dev/null
dmesg | grep -i irqfd
for s in $SAMPLES; do
	for m in $DEVICES; do
		n=$((n + 1))
		echo
		echo "################################################################"
		echo "# $s /dev/$m"
		echo "################################################################"
		if /bin/$s /dev/$m; then
			echo "ok $n $s /dev/$m" >> /tmp/summary
		else
			echo "not ok $n $s /dev/$m" >> /tmp/summary
			rc=1
		fi
	done
done
echo
echo "TAP version 13"
echo "1..$n"
cat /tmp/summary
for m in $DEVICES; do
	echo "# rmmod $m"
	rmmod $m || { echo "# rmmod $m failed"; rc=1; }
done
echo "# done"
exit $rc
