# SPDX-License-Identifier: GPL-2.0
#
# rust_irqfd: the commands a person types. The kernel build itself reads Kbuild
# (make -C $KDIR M=$PWD works directly against any Rust-enabled tree).
#
#   make run       set up, build, boot QEMU, run the samples on both modules (run-<sample>: one)
#   make check     every test: host-side tests and lint, then the kselftest in QEMU
#   make matrix    make check on each supported release (Debian's 7.2 and 7.3), each on its own kernel
#   make           build rust_irqfd.ko and c_irqfd.ko (KDIR= for your own tree)
#   make clippy    the modules under clippy (CLIPPY=1)
#   make fmt       rustfmt the module with the tree's .rustfmt.toml
#   make rust-analyzer  rust-project.json for the module crate against KDIR (editors)
#   make stress    the race stress alone, DURATION=<seconds per scenario>, then scoped_flush at 65536
#   make fuzz      the model-checked fuzzer alone, DURATION=<seconds per device> (FUZZ_SEED= to rerun)
#   make mutants   prove the tests catch every planted bug, in both modules
#   make bench     Rust vs C vs the eventfd floor in one VM (bench kernel); results in bench/results
#   make irqsoff   longest interrupts-off section per operation, 65536 irqfds (IRQSOFF_OUT= the report)
#   make kernel    make (or reuse) the project's debug kernel tree, print its path
#
# Variables: KDIR (a Rust-enabled, built tree; default: the project's own, cached
# in $RUST_IRQFD_CACHE, default ~/.cache/rust_irqfd), LLVM (default -19),
# TEST_HOOKS=1 (the test-only knobs), VM_TIMEOUT (seconds), MUTANTS (make
# mutants: only these planted bugs).

export KDIR LLVM MUTANTS TEST_HOOKS W VM_TIMEOUT RUST_IRQFD_CACHE FUZZ_SEED FUZZ_THREADS FUZZ_OPS \
	IRQSOFF_N IRQSOFF_OUT IRQSOFF_MAX_RATIO

.PHONY: all modules clippy fmt fmtcheck rust-analyzer check matrix run samples run-irqfd-watch run-msix-routes \
	run-level-resample stress fuzz mutants bench irqsoff kernel toolchain clean help

all: modules

modules:
	@scripts/build.sh modules

clippy:
	@scripts/build.sh clippy

fmt:
	@scripts/build.sh fmt

fmtcheck:
	@scripts/build.sh fmtcheck

rust-analyzer:
	@scripts/build.sh rust-analyzer

check:
	@scripts/check.sh

matrix:
	@scripts/matrix.sh

# Every sample (samples/README.md) against /dev/rust_irqfd and /dev/c_irqfd in
# one VM; run-<sample> runs one of them alone (DEVICES= narrows the modules);
# make samples builds them (static, for the VM) without running them.
run:
	@scripts/run.sh

run-irqfd-watch run-msix-routes run-level-resample:
	@scripts/run.sh $(@:run-%=%)

samples:
	@cargo build --release --target x86_64-unknown-linux-musl -p rust_irqfd_samples

# The race stress alone, longer: make stress DURATION=60 (seconds per scenario
# per device and mode).
stress:
	@STRESS_SECS=$(or $(DURATION),30) scripts/stress.sh

# The model-checked fuzzer alone, longer: make fuzz DURATION=600 (seconds per
# device, normal mode; FUZZ_SEED=0x... reruns a printed seed, FUZZ_THREADS=N).
fuzz:
	@FUZZ_SECS=$(or $(DURATION),60) scripts/fuzz.sh

# Every planted bug, in each module, must be caught; the clean build must pass.
mutants:
	@scripts/mutants.sh

# Side-by-side benchmark on the bench kernel (kernel/bench.config, built once
# into the cache like the debug tree).
bench:
	@scripts/bench.sh

# The longest interrupts-off section of each operation on 65536 irqfds in one
# context, both modules, on the irqsoff kernel (kernel/irqsoff.config: the bench
# kernel plus ftrace's irqsoff tracer), under instruction-counted QEMU time.
irqsoff:
	@scripts/irqsoff.sh

kernel:
	@scripts/kernel.sh debug

toolchain:
	@scripts/toolchain.sh

clean:
	@scripts/build.sh clean || true
	rm -rf build target selftests/rust_irqfd/target

help:
	@sed -n '3,24p' Makefile
