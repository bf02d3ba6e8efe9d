// SPDX-License-Identifier: GPL-2.0
//! Model-checked fuzzer (`fuzz_model`): random sequences of assign,
//! deassign, signal (by `write(2)` and from a forked child), close, dup,
//! route, mask, ack, read and the observing ioctls, from several threads at
//! once, each checked against a reference model that predicts every result,
//! every record `read(2)` returns (seq, gsi, count, flags, route) and every
//! counter of `RUST_IRQFD_GSI_STATS`.
//!
//! Each thread has its own context (one open of the device), its own
//! eventfds and its own GSIs, so that its model is sequential and exact;
//! the threads run concurrently in the kernel, where they share the module,
//! the workqueues and the slabs. Only the fast path is predictable to the
//! injection: with `deferred_only` the test skips.
//!
//! Reproducible: every thread draws its ops from its own PRNG, seeded from
//! the run's seed (`--fuzz-seed`, printed before the run) and its index, and
//! an op depends only on that PRNG and the thread's model, which a passing
//! run keeps equal to the kernel. So a seed gives every thread the same op
//! sequence again (up to the time budget; `--fuzz-ops` bounds it exactly);
//! only the interleaving of the threads differs.
//!
//! The asynchronous effects are waited for, bounded by `--timeout`: the
//! shutdown of an irqfd whose eventfd was closed (`EPOLLHUP`; a child forked
//! by another thread may hold a copy of the eventfd and delay it until it
//! exits), and the injection an assign makes for an event already pending
//! (queued by the C reference, made before the ioctl returns by the Rust
//! module: the summary counts how often it was already there).
//!
//! Layout: `rng` (the PRNG), `op` (an op, its answer and the model's
//! prediction), `model` (the reference model), `gen` (the op generator and
//! each thread's GSIs), `check` (a thread's fuzzer: runs ops on a [`Target`]
//! and checks each against the model), `real` (the device as a target),
//! `run` (the threads and the test body, `fuzz_model`), and, for the unit
//! tests, `fake` (the model as a target, with planted bugs).
//!
//! [`Target`]: check::Target

mod check;
#[cfg(test)]
mod fake;
mod gen;
mod model;
mod op;
mod real;
mod rng;
mod run;

use std::time::{SystemTime, UNIX_EPOCH};

use crate::harness::{test, Needs, Test};
use rng::Rng;
use run::fuzz_model;

/// The fuzzer, one test per device.
pub const TESTS: &[Test] = &[test!(fuzz_model, Needs::gsis(8), [Fuzz])];

/// `--fuzz-secs` default: the short run of `make check`.
pub const DEFAULT_SECS: f64 = 3.0;
/// `--fuzz-threads` default.
pub const DEFAULT_THREADS: usize = 3;
/// Most threads `--fuzz-threads` takes.
pub const MAX_THREADS: usize = 64;

/// Eventfd slots of each thread.
pub const SLOTS: usize = 6;
/// Most descriptors (the eventfd and its dups) a slot holds at once.
pub const MAX_FDS: usize = 3;

/// The fuzzer's settings, from the command line.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FuzzCfg {
    /// Time budget of each device's run, in seconds.
    pub secs: f64,
    /// The run's seed; `None`: drawn from the clock (and printed).
    pub seed: Option<u64>,
    /// Threads, each with its own context.
    pub threads: usize,
    /// Op budget of each thread (random ops; the final checks come on top).
    pub ops: Option<u64>,
}

impl Default for FuzzCfg {
    fn default() -> Self {
        FuzzCfg {
            secs: DEFAULT_SECS,
            seed: None,
            threads: DEFAULT_THREADS,
            ops: None,
        }
    }
}

impl FuzzCfg {
    /// These settings with the seed resolved: a missing one is drawn from
    /// the clock now (the runner does it once, so that every device gets
    /// the same op sequences).
    pub fn resolved(self) -> Self {
        FuzzCfg {
            seed: Some(self.seed.unwrap_or_else(clock_seed)),
            ..self
        }
    }
}

/// A seed from the clock and the pid.
fn clock_seed() -> u64 {
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    Rng::new(t ^ (u64::from(std::process::id()) << 40)).next()
}

/// Parses a seed: `0x` hex or decimal.
pub fn parse_seed(s: &str) -> Option<u64> {
    let s = s.replace('_', "");
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}
