// SPDX-License-Identifier: GPL-2.0
//! Building blocks of the race scenarios (`races/`), after the "generic
//! userspace harness building blocks" of races.md:
//!
//! * [`threads`]: a time-and-op budget, a cancellable rendezvous
//!   (barrier), one-shot hand-over slots, and scoped worker threads pinned
//!   to CPUs that are always joined, each with its tally;
//! * [`rounds`]: the two-phase round protocol of the scenarios that race
//!   one interleaving at a time (the leader prepares, the racers race, the
//!   leader checks), so that a scenario states only its threads, its race
//!   and its oracle;
//! * [`frame`]: the frame every scenario runs in: `/dev/kmsg` markers, a
//!   final flush of the cleanup queues, an eventfd-id leak check, a
//!   kmemleak scan, and the report the comparison table is made of.
//!
//! Here: the settings ([`StressCfg`]), the tallies (ops, deliveries,
//! errors by errno) and the report.

mod frame;
mod rounds;
mod threads;

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::sys::Errno;

pub use frame::{
    device_name, fdinfo_field, flush_cleanup, kmemleak_device_begin, kmemleak_device_end, kmsg,
    scenario,
};
pub use threads::{Run, Slot, Worker};

/// `--stress-secs` default: each scenario's time budget.
pub const DEFAULT_SECS: f64 = 2.0;
/// `--stress-ops` default: each scenario's op budget.
pub const DEFAULT_OPS: u64 = 1_000_000;

/// The budget of every scenario, from the command line.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StressCfg {
    /// Time budget of one scenario, in seconds.
    pub secs: f64,
    /// Op budget of one scenario (racing syscalls, all threads together).
    pub ops: u64,
    /// When to scan for leaks with kmemleak (when available).
    pub kmemleak: Kmemleak,
}

/// When the selftest scans for leaks with kmemleak (`--kmemleak`). A
/// scan costs about 6 s in the TCG debug guest, whatever the scenario
/// did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kmemleak {
    /// Never (`off`, `--no-kmemleak`): the scan the VM runner makes at the
    /// end of the run is the only one.
    Off,
    /// Once per device (`device`): a leaf `kmemleak` after its last test
    /// fails on what any of its tests leaked.
    Device,
    /// After each race scenario (`scenario`, the default): a leak fails
    /// the scenario that made it.
    Scenario,
}

impl Kmemleak {
    /// The mode named `s` on the command line.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "off" => Some(Kmemleak::Off),
            "device" => Some(Kmemleak::Device),
            "scenario" => Some(Kmemleak::Scenario),
            _ => None,
        }
    }
}

impl Default for StressCfg {
    fn default() -> Self {
        StressCfg {
            secs: DEFAULT_SECS,
            ops: DEFAULT_OPS,
            kmemleak: Kmemleak::Device,
        }
    }
}

/// Locks `m`, ignoring poisoning (a panicking worker is reported anyway).
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What one scenario (or one thread of it) did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Racing operations issued (syscalls).
    pub ops: u64,
    /// Injections read back from a context (sum of the records' counts).
    pub deliveries: u64,
    /// Expected errors, by errno name.
    pub errors: BTreeMap<String, u64>,
}

impl Tally {
    /// Counts one error.
    pub fn error(&mut self, e: Errno) {
        *self.errors.entry(e.name()).or_default() += 1;
    }

    /// Adds another tally to this one.
    pub fn merge(&mut self, o: &Tally) {
        self.ops += o.ops;
        self.deliveries += o.deliveries;
        for (k, v) in &o.errors {
            *self.errors.entry(k.clone()).or_default() += v;
        }
    }
}

/// What a race scenario reports for the comparison table.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// The scenario's tally, all threads together.
    pub tally: Tally,
    /// Diagnostic lines (timings, what could not be exercised).
    pub notes: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tally_merge_and_errors() {
        let mut a = Tally {
            ops: 3,
            ..Default::default()
        };
        a.error(Errno(libc::EBUSY));
        a.error(Errno(libc::EBUSY));
        let mut b = Tally {
            deliveries: 7,
            ..Default::default()
        };
        b.error(Errno(libc::EBADF));
        b.error(Errno(libc::EBUSY));
        a.merge(&b);
        assert_eq!(a.ops, 3);
        assert_eq!(a.deliveries, 7);
        assert_eq!(a.errors.get("EBUSY"), Some(&3));
        assert_eq!(a.errors.get("EBADF"), Some(&1));
    }

    #[test]
    fn also_combines() {
        use crate::harness::{also, skip, Stop};
        let fail = |m: &str| Err(Stop::Fail(m.into()));
        assert_eq!(also(Ok(()), "b".into()), fail("b"));
        assert_eq!(also(fail("a"), "b".into()), fail("a\nb"));
        assert_eq!(
            also(skip("no rmmod"), "leak".into()),
            fail("leak\n(the test itself was skipped: no rmmod)")
        );
    }
}
