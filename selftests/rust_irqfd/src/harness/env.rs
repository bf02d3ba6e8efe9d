// SPDX-License-Identifier: GPL-2.0
//! What a test gets: the device under test and the run's settings.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use crate::abi::{RustIrqfdInfo, INFO_COUNTS_SIGNALS, INFO_DEFERRED_ONLY};
use crate::dev::{Ctx, Kind};
use crate::fuzz::FuzzCfg;
use crate::stress::{lock, Report, StressCfg};

/// What a test gets: the device under test and the run's settings.
pub struct Env {
    /// The device node under test.
    pub device: PathBuf,
    /// The other device nodes given (present or not).
    pub peers: Vec<PathBuf>,
    /// Bound for every wait on an asynchronous effect.
    pub timeout: Duration,
    /// `RUST_IRQFD_GET_INFO` of a fresh context, taken before the tests.
    pub info: RustIrqfdInfo,
    /// Budget of each race scenario (`--stress-secs`, `--stress-ops`).
    pub stress: StressCfg,
    /// The fuzzer's settings, its seed resolved (one seed for the run, so
    /// that every device gets the same op sequences).
    pub fuzz: FuzzCfg,
    /// What a race scenario reports for the comparison table; the runner
    /// takes it after the test.
    pub report: Mutex<Option<Report>>,
}

impl Env {
    /// Opens a fresh `O_NONBLOCK` context on the device under test.
    pub fn open(&self) -> Result<Ctx, String> {
        Ctx::open(&self.device).map_err(|e| format!("open({}): {e}", self.device.display()))
    }

    /// Opens a context on `path`.
    pub fn open_path(&self, path: &Path) -> Result<Ctx, String> {
        Ctx::open(path).map_err(|e| format!("open({}): {e}", path.display()))
    }

    /// `nr_gsis` of a context of this device.
    pub fn nr_gsis(&self) -> u32 {
        self.info.nr_gsis
    }

    /// The module injects only from its work item (`deferred_only=1`): an
    /// injection is asynchronous to the eventfd write, and signals that
    /// arrive while the work is queued may merge into one injection unless
    /// the module [counts every signal](Self::counts_every_signal).
    pub fn deferred(&self) -> bool {
        self.info.flags & INFO_DEFERRED_ONLY != 0
    }

    /// Every signal on a bound eventfd is exactly one injection, once the
    /// injections have settled: on the fast path in both modules, and with
    /// `deferred_only` where the module reports
    /// `RUST_IRQFD_INFO_COUNTS_SIGNALS` (the Rust module). Where this is
    /// false (the C reference with `deferred_only`), signals that arrive
    /// while the injection work is queued may merge: n signals make 1 to n
    /// injections. Every check on injection counts goes through this, so
    /// that each module is held to what it documents.
    ///
    /// On KVM an injection is seen as a bit in a local APIC's IRR
    /// ([`crate::kvm::Deliveries`]): signals between two looks merge.
    pub fn counts_every_signal(&self) -> bool {
        if self.kind() == Kind::Kvm {
            return false;
        }
        !self.deferred() || self.info.flags & INFO_COUNTS_SIGNALS != 0
    }

    /// What the device under test is.
    pub fn kind(&self) -> Kind {
        Kind::of(&self.device)
    }

    /// The fewest injections `n` signals make once settled: `n` where every
    /// signal counts, else one (none for no signal).
    pub fn least_injections(&self, n: u64) -> u64 {
        if self.counts_every_signal() {
            n
        } else {
            n.min(1)
        }
    }

    /// The peers whose node exists.
    pub fn present_peers(&self) -> Vec<PathBuf> {
        self.peers.iter().filter(|p| p.exists()).cloned().collect()
    }

    /// Leaves a race scenario's report for the runner.
    pub fn put_report(&self, r: Report) {
        *lock(&self.report) = Some(r);
    }

    /// The report a race scenario left, if any.
    pub fn take_report(&self) -> Option<Report> {
        lock(&self.report).take()
    }
}
