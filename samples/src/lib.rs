// SPDX-License-Identifier: GPL-2.0
//! What the sample programs share: the device argument, a narrator that
//! prints each step and counts what did not go as expected, and waiting for
//! an injection to land.
//!
//! Every kernel call goes through the `rust_irqfd_vmm` crate.

use std::fmt::{Debug, Display};
use std::process::ExitCode;
use std::time::Duration;

use rust_irqfd_vmm::abi::module::{Delivery, GsiStats};
use rust_irqfd_vmm::{Error, EventFd, ModuleBackend};

/// How long an injection may take to land (the module may defer it to a
/// work item); nothing here waits longer than this at a time.
pub const WAIT: Duration = Duration::from_secs(5);

/// The device the sample was asked to use: the first argument, or
/// `/dev/rust_irqfd`.
pub fn device_arg() -> String {
    std::env::args()
        .nth(1)
        .unwrap_or_else(|| ModuleBackend::RUST_PATH.to_owned())
}

/// Prints a sample's steps and checks, and remembers whether any check
/// failed, so that the program can exit non-zero.
#[derive(Debug)]
pub struct Story {
    name: &'static str,
    section: u32,
    checks: u32,
    unexpected: u32,
}

impl Story {
    /// A story told by program `name`.
    pub fn new(name: &'static str) -> Self {
        Self {
            name,
            section: 0,
            checks: 0,
            unexpected: 0,
        }
    }

    /// Starts a numbered section.
    pub fn section(&mut self, title: impl Display) {
        self.section += 1;
        println!();
        println!("{}. {title}", self.section);
    }

    /// Narrates one thing that was done or seen.
    pub fn say(&self, text: impl Display) {
        println!("   {text}");
    }

    /// Checks `ok`, described by `what`; prints the verdict.
    pub fn expect(&mut self, ok: bool, what: impl Display) -> bool {
        self.checks += 1;
        if ok {
            println!("   [as expected] {what}");
        } else {
            self.unexpected += 1;
            println!("   [UNEXPECTED] {what}");
        }
        ok
    }

    /// Checks that `got` equals `want`; prints both when they differ.
    pub fn expect_eq<T: PartialEq + Debug>(&mut self, what: impl Display, got: T, want: T) -> bool {
        if got == want {
            self.expect(true, format_args!("{what}: {got:?}"))
        } else {
            self.expect(
                false,
                format_args!("{what}: got {got:?}, expected {want:?}"),
            )
        }
    }

    /// Ends the story: a summary line, and the exit code (failure if a
    /// check failed or `result` is an error).
    pub fn finish(self, result: Result<(), Error>) -> ExitCode {
        println!();
        match result {
            Err(e) => {
                println!("{}: stopped by an error: {e}", self.name);
                ExitCode::FAILURE
            }
            Ok(()) if self.unexpected > 0 => {
                println!(
                    "{}: {} of {} checks UNEXPECTED",
                    self.name, self.unexpected, self.checks
                );
                ExitCode::FAILURE
            }
            Ok(()) => {
                println!("{}: all {} checks as expected", self.name, self.checks);
                ExitCode::SUCCESS
            }
        }
    }
}

/// Signals `event` once and waits (at most [`WAIT`]) until `gsi`'s
/// `injected` counter has moved, so that the injection has landed whether
/// the module made it directly or from its work item. Returns the counters
/// then; the caller checks them.
pub fn fire(ctx: &ModuleBackend, event: &EventFd, gsi: u32) -> Result<GsiStats, Error> {
    let before = ctx.gsi_stats(gsi)?.injected;
    event.signal()?;
    ctx.wait_gsi_stats(gsi, WAIT, |st| st.injected > before)
}

/// One delivery record, for people: `seq 3: GSI 5, count 1, MSI
/// 0xfee00000/0x41, level`.
pub fn describe(d: &Delivery) -> String {
    let mut s = format!("seq {}: GSI {}, count {}", d.seq, d.gsi, d.count);
    match d.msi() {
        Some((addr, data)) => s.push_str(&format!(", MSI {addr:#x}/{data:#x}")),
        None => s.push_str(", no route (plain line)"),
    }
    if d.is_level() {
        s.push_str(", level");
    }
    s
}

/// An MSI route as people write it (`0xfee00000/0x41`, or `none`), for
/// comparisons that print well.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Msi(pub Option<(u64, u32)>);

impl Debug for Msi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some((addr, data)) => write!(f, "{addr:#x}/{data:#x}"),
            None => f.write_str("none"),
        }
    }
}

/// A GSI's counters, for people.
pub fn describe_stats(st: &GsiStats) -> String {
    format!(
        "injected {} raised {} coalesced {} delivered {} pending {} latched {} acks {} \
         masked {} asserted {}",
        st.injected,
        st.raised,
        st.coalesced,
        st.delivered,
        st.pending,
        st.latched,
        st.acks,
        st.masked,
        st.asserted
    )
}
