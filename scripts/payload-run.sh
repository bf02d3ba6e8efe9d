#!/bin/sh
# The guest side of `make run`: load the Rust module, run the sample, unload.
set -u
echo "# insmod rust_irqfd.ko"
insmod /lib/modules/rust_irqfd.ko || exit 1
ls -l /dev/rust_irqfd
dmesg | grep -i irqfd
echo "# irqfd-watch /dev/rust_irqfd"
/bin/irqfd-watch /dev/rust_irqfd || exit 1
echo "# rmmod rust_irqfd"
rmmod rust_irqfd || exit 1
echo "# done"
