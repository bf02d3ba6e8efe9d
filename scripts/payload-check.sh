#!/bin/sh
# The guest side of `make check` and `make mutants`: load both modules, run the
# kselftest (functional tests and the race stress) on the devices, unload; then
# again with the modules in deferred_only mode. Runs as the initramfs's
# /payload; stdout is the result, /tmp/out/* come back to the host.
#
# env (from /etc/payload.env): STRESS_SECS (default 2), DEVICES (default both),
#   PASSES (default "normal deferred"), TEST_ARGS (extra selftest arguments),
#   MODULE_PARAMS (module parameters of every pass; default max_irqfds=4096,
#   so that the limit tests can fill a context), DEFERRED_PARAMS (added in
#   the deferred pass; default:
#   deferred_only=1 and a 20 ms test_inject_delay_us, so that an injection is
#   still queued or running when a test tears its irqfd down),
#   NORMAL_ARGS (selftest arguments of the normal pass only; default none),
#   DEFERRED_ARGS (selftest arguments of the deferred pass; default: the tests
#   tagged inject, those that exercise injection, since the rest does not
#   depend on the mode)
set -u
rc=0
STRESS_SECS=${STRESS_SECS:-2}
DEVICES=${DEVICES:-"rust_irqfd c_irqfd"}
PASSES=${PASSES:-"normal deferred"}
TEST_ARGS=${TEST_ARGS:-}
MODULE_PARAMS=${MODULE_PARAMS-"max_irqfds=4096"}
DEFERRED_PARAMS=${DEFERRED_PARAMS-"deferred_only=1 test_inject_delay_us=20000"}
NORMAL_ARGS=${NORMAL_ARGS:-}
DEFERRED_ARGS=${DEFERRED_ARGS-"--tag inject"}

kmsg() { echo "rust_irqfd_test: $*" > /dev/kmsg 2>/dev/null; }

# Stamp every line with the guest's uptime (the clock of the kernel log), so
# that the host can tell when a test failed relative to a splat.
stamp() {
	while IFS= read -r line; do
		read -r up _ < /proc/uptime
		echo "$up $line" >> "$1"
		echo "$line"
	done
}

# R15's hard-IRQ signaller (TEST_HOOKS=1 builds), for every pass.
hardirq=
if [ -f /lib/modules/irqfd_hardirq.ko ]; then
	insmod /lib/modules/irqfd_hardirq.ko && hardirq=1 || { echo "# insmod irqfd_hardirq failed"; rc=1; }
fi

# The third column: KVM's own irqfd (virt/kvm/eventfd.c), in the same kernel
# under the same checkers. The debug kernel has KVM and TCG emulates SVM, so
# /dev/kvm must be there: its absence is a failure (KVM_COLUMN=0 leaves KVM
# out, as make mutants does: its runs are about the modules' planted bugs).
kvm=
if [ "${KVM_COLUMN:-1}" = 1 ]; then
	echo "TAP version 13"
	echo "1..1"
	if [ -c /dev/kvm ]; then
		echo "# kvm: /dev/kvm present, $(grep -cw svm /proc/cpuinfo) vCPU(s) with SVM"
		echo "ok 1 kvm_present"
		kvm=/dev/kvm
	else
		echo "# kvm: no /dev/kvm: the kernel lacks CONFIG_KVM/CONFIG_KVM_AMD or the CPU SVM"
		echo "not ok 1 kvm_present"
		rc=1
	fi
fi

# The module's own KUnit suites (#[kunit_tests] in rust_irqfd/, compiled when
# the kernel has CONFIG_KUNIT=y, as the debug kernel does) run when it loads:
# load it once and hand on that run's KTAP from the kernel log, where KUnit
# prints it. Finding no suite is a failure (KUNIT=0 leaves this out).
if [ "${KUNIT:-1}" = 1 ] && [ -f /lib/modules/rust_irqfd.ko ]; then
	read -r up _ < /proc/uptime
	echo "kunit $up" >> /tmp/out/passes.txt
	kmsg "kunit begin"
	insmod /lib/modules/rust_irqfd.ko && rmmod rust_irqfd || { echo "# kunit: insmod/rmmod rust_irqfd failed"; rc=1; }
	kmsg "kunit end"
	# Every later load would run them again (a module's suites run at each
	# load; kunit.autorun does not apply to modules), and print them to the
	# console, a hundred times in load_unload_cycles: filter them out now.
	echo 'rust_irqfd_kunit_ran_once' >/sys/module/kunit/parameters/filter_glob 2>/dev/null ||
		echo "# kunit: could not set kunit.filter_glob; the suites run at every load"
	dmesg | sed -n '/rust_irqfd_test: kunit begin/,/rust_irqfd_test: kunit end/p' |
		sed 's/^\[[^]]*\] //' | grep -E '^ *(KTAP version|# |ok |not ok |1\.\.)' >/tmp/kunit.ktap
	# Stamped into ktap-kunit.txt as well, as the passes' results are, for
	# make mutants' table of what caught each planted bug.
	stamp /tmp/out/ktap-kunit.txt </tmp/kunit.ktap
	# Exactly the module's suites (Documentation, "KUnit inside the module"):
	# one that no longer runs is a failure, not one result fewer.
	echo "TAP version 13"
	echo "1..1"
	missing=
	for suite in rust_irqfd_irqchip rust_irqfd_route rust_irqfd_uapi; do
		grep -qx "    # Subtest: $suite" /tmp/kunit.ktap || missing="$missing $suite"
	done
	others=$(grep '# Subtest: rust_irqfd_' /tmp/kunit.ktap |
		grep -cvxE '    # Subtest: rust_irqfd_(irqchip|route|uapi)')
	if [ -z "$missing" ] && [ "$others" = 0 ]; then
		echo "ok 1 kunit_suites_ran"
	else
		echo "# kunit: missing:${missing:- none}; suites not expected: $others (CONFIG_KUNIT=y? a suite added without this list?)"
		echo "not ok 1 kunit_suites_ran"
		rc=1
	fi
fi

for pass in $PASSES; do
	param=$MODULE_PARAMS extra=$NORMAL_ARGS
	[ "$pass" = deferred ] && param="$MODULE_PARAMS $DEFERRED_PARAMS" extra=$DEFERRED_ARGS
	for m in $DEVICES; do
		# shellcheck disable=SC2086
		insmod /lib/modules/$m.ko $param || { echo "# insmod $m $param failed"; rc=1; }
	done
	args=
	for m in $DEVICES; do args="$args --device /dev/$m"; done
	# deferred_only is the modules' setting: KVM runs in the normal pass.
	[ -n "$kvm" ] && [ "$pass" = normal ] && args="$args --device $kvm"
	read -r up _ < /proc/uptime
	echo "$pass $up" >> /tmp/out/passes.txt
	kmsg "pass $pass begin"
	# shellcheck disable=SC2086
	# The lifecycle tests reload the module under test with the same parameters.
	{ IRQFD_MODULE_DIR=/lib/modules IRQFD_MODULE_PARAMS="$param" /bin/rust_irqfd_test $args --stress-secs "$STRESS_SECS" \
		--table /tmp/out/races-$pass.txt --json /tmp/out/races-$pass.json $TEST_ARGS $extra; \
		echo $? > /tmp/test.rc; } 2>&1 | stamp /tmp/out/ktap-$pass.txt
	t=$(cat /tmp/test.rc)
	[ "$t" = 0 ] || [ "$t" = 4 ] || rc=1
	kmsg "pass $pass end"
	for m in $DEVICES; do
		rmmod $m || { echo "# rmmod $m failed"; rc=1; }
	done
done
# The vmm crate's integration tests against both modules (issue: module
# backends in the VM), as KTAP: one block per test binary.
for t in /bin/vmm-module /bin/vmm-kvm /bin/vmm-parity /bin/vmm-adapter; do
	[ -x "$t" ] || continue
	for m in $DEVICES; do
		# shellcheck disable=SC2086
		insmod /lib/modules/$m.ko $MODULE_PARAMS || { echo "# insmod $m failed"; rc=1; }
	done
	kmsg "vmm tests $t begin"
	# vmm-parity leaves its backend-by-backend table for the host.
	PARITY_TABLE_OUT=/tmp/out/parity-table.txt "$t" --test-threads=1 >/tmp/vmm.out 2>&1
	trc=$?
	echo "TAP version 13"
	awk -v name="$(basename "$t")" '
		/^test .* \.\.\. ok$/ { n++; print "ok " n " " name "::" $2; next }
		/^test .* \.\.\. ignored/ { n++; print "ok " n " " name "::" $2 " # SKIP ignored"; next }
		/^test .* \.\.\. FAILED$/ { n++; print "not ok " n " " name "::" $2; next }
		{ print "# " $0 }
		END { print "1.." n }' /tmp/vmm.out
	[ "$trc" = 0 ] || { echo "# $t exited with $trc"; rc=1; }
	kmsg "vmm tests $t end"
	for m in $DEVICES; do rmmod $m || { echo "# rmmod $m failed"; rc=1; }; done
done

# The samples (make run's programs), each on each device, as one KTAP block:
# each exits non-zero on anything it did not expect.
samples=
for s in irqfd-watch msix-routes level-resample; do
	[ -x /bin/$s ] && samples="$samples $s"
done
if [ -n "$samples" ]; then
	for m in $DEVICES; do
		insmod /lib/modules/$m.ko || { echo "# insmod $m failed"; rc=1; }
	done
	kmsg "samples begin"
	echo "TAP version 13"
	n=0
	for s in $samples; do
		for m in $DEVICES; do
			n=$((n + 1))
			if /bin/$s /dev/$m >/tmp/sample.out 2>&1; then
				echo "ok $n sample $s $m"
			else
				sed 's/^/# /' /tmp/sample.out
				echo "not ok $n sample $s $m"
				rc=1
			fi
		done
	done
	echo "1..$n"
	kmsg "samples end"
	for m in $DEVICES; do rmmod $m || { echo "# rmmod $m failed"; rc=1; }; done
fi

[ -n "$hardirq" ] && { rmmod irqfd_hardirq || { echo "# rmmod irqfd_hardirq failed"; rc=1; }; }

# The benchmark's smoke setting: does it run and produce every figure (the
# host checks the files; timings on this kernel mean nothing).
if [ "${BENCH_SMOKE:-0}" = 1 ] && [ -x /bin/payload-bench.sh ]; then
	kmsg "bench smoke begin"
	ROUNDS=1 SAMPLES=100 TP_MILLIS=100 TP_IRQFDS="1 64" TP_WRITERS=1 SCALE_ROUNDS=1 \
		SCALE_N="64 1024" MEM_N=0 STAGE_SAMPLES=0 /bin/payload-bench.sh || rc=1
	kmsg "bench smoke end"
fi
exit $rc
