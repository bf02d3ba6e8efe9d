// SPDX-License-Identifier: GPL-2.0
//! Assertions on the counters and the state of a GSI (`RUST_IRQFD_GSI_STATS`).

use std::os::fd::OwnedFd;

use crate::abi::RustIrqfdGsiStats;
use crate::dev::Ctx;

use super::{ensure, eq, ok, signal, wait_until, Env, TestResult};

/// `RUST_IRQFD_GSI_STATS` for `gsi`, checked for the per-GSI invariants.
pub fn stats(ctx: &Ctx, gsi: u32) -> Result<RustIrqfdGsiStats, String> {
    let s = ok(&format!("RUST_IRQFD_GSI_STATS(gsi {gsi})"), ctx.stats(gsi))?;
    eq("gsi echoed by RUST_IRQFD_GSI_STATS", s.gsi, gsi)?;
    check_invariants(&s)?;
    Ok(s)
}

/// `injected == coalesced + raised + latched`, `raised == delivered +
/// pending`, `pending <= 1`, `masked` and `asserted` 0 or 1, nothing
/// latched on an unmasked GSI (unmask empties the latch), and the in
/// fields echoed back.
pub fn check_invariants(s: &RustIrqfdGsiStats) -> TestResult {
    let g = s.gsi;
    ensure(s.pad == 0, || {
        format!("gsi {g}: stats pad came back as {:#x}", s.pad)
    })?;
    ensure(s.pending <= 1, || {
        format!("gsi {g}: pending {} > 1 ({s:?})", s.pending)
    })?;
    ensure(s.masked <= 1 && s.asserted <= 1, || {
        format!("gsi {g}: masked/asserted not 0 or 1 ({s:?})")
    })?;
    ensure(s.masked == 1 || s.latched == 0, || {
        format!("gsi {g}: latched {} on an unmasked gsi ({s:?})", s.latched)
    })?;
    ensure(
        s.coalesced
            .checked_add(s.raised)
            .and_then(|n| n.checked_add(s.latched))
            == Some(s.injected),
        || format!("gsi {g}: injected != coalesced + raised + latched ({s:?})"),
    )?;
    ensure(s.delivered.checked_add(s.pending) == Some(s.raised), || {
        format!("gsi {g}: raised != delivered + pending ({s:?})")
    })
}

/// `gsi_stats!(gsi, field: value, ...)`: the whole stats of `gsi` with the
/// fields named and every other one 0, so that a step states the stats it
/// expects in one line (for [`expect_full`]).
macro_rules! gsi_stats {
    ($gsi:expr $(, $field:ident: $value:expr)* $(,)?) => {
        $crate::abi::RustIrqfdGsiStats {
            gsi: $gsi,
            $($field: $value,)*
            ..::core::default::Default::default()
        }
    };
}
pub(crate) use gsi_stats;

/// Expected counters of one GSI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Counters {
    pub injected: u64,
    pub raised: u64,
    pub coalesced: u64,
    pub delivered: u64,
    pub pending: u64,
}

impl From<&RustIrqfdGsiStats> for Counters {
    fn from(s: &RustIrqfdGsiStats) -> Self {
        Counters {
            injected: s.injected,
            raised: s.raised,
            coalesced: s.coalesced,
            delivered: s.delivered,
            pending: s.pending,
        }
    }
}

impl Counters {
    /// The whole stats of `gsi` with these counters on an idle line: not
    /// masked, nothing latched, never acked, not asserted.
    pub fn full(self, gsi: u32) -> RustIrqfdGsiStats {
        RustIrqfdGsiStats {
            gsi,
            injected: self.injected,
            raised: self.raised,
            coalesced: self.coalesced,
            delivered: self.delivered,
            pending: self.pending,
            ..Default::default()
        }
    }
}

/// The counters of `gsi` must be exactly `want`, and its mask, latch and
/// level state idle (none of it was used).
pub fn expect_stats(ctx: &Ctx, gsi: u32, want: Counters) -> TestResult {
    expect_full(ctx, gsi, want.full(gsi))
}

/// Every field of the stats of `gsi` must be as in `want`. A KVM VM has
/// no such counters: there this checks nothing (the test's records, which
/// a VM shows from its vCPU's IRR, still do).
pub fn expect_full(ctx: &Ctx, gsi: u32, want: RustIrqfdGsiStats) -> TestResult {
    if ctx.deliveries().is_some() {
        return Ok(());
    }
    let s = stats(ctx, gsi)?;
    eq(&format!("gsi {gsi} stats"), s, want)
}

/// `injected` injections for `signals` signals, once settled (after a
/// deassign, which flushes the injection work, or a wait): exactly one per
/// signal where the module counts every signal
/// ([`Env::counts_every_signal`]), else 1 to `signals` (none for none):
/// deferred signals may merge, but are never all lost. `what` names the
/// GSI or the run.
pub fn check_injections(env: &Env, what: &str, injected: u64, signals: u64) -> TestResult {
    if env.counts_every_signal() {
        ensure(injected == signals, || {
            format!(
                "{what}: {injected} injections for {signals} signals; exactly one each \
                 expected ({})",
                if env.deferred() {
                    "deferred_only, and the module reports RUST_IRQFD_INFO_COUNTS_SIGNALS"
                } else {
                    "fast path"
                }
            )
        })
    } else {
        ensure(
            injected <= signals && (signals == 0) == (injected == 0),
            || {
                format!(
                    "{what}: {injected} injections for {signals} signals; 1 to {signals} \
                     expected (deferred_only: signals may merge, never all be lost)"
                )
            },
        )
    }
}

/// Waits until `gsi` has seen at least `n` injections. On a KVM VM, the
/// injections its looks at vCPU 0's IRR saw
/// ([`crate::kvm::Deliveries::injected`]): exact for signals that each
/// wait for their injection before the next.
pub fn wait_injected(env: &Env, ctx: &Ctx, gsi: u32, n: u64) -> TestResult {
    if let Some(d) = ctx.deliveries() {
        return wait_until(env, &format!("{n} injection(s) into gsi {gsi}"), || {
            let seen = d.injected(gsi)?;
            Ok((seen >= n, format!("{seen} seen in vCPU 0's IRR")))
        });
    }
    wait_until(env, &format!("{n} injection(s) into gsi {gsi}"), || {
        let s = stats(ctx, gsi)?;
        Ok((s.injected >= n, format!("{s:?}")))
    })
}

/// Signals `efd`, bound to `gsi`, and waits for the injection that makes
/// `injected` reach `n`.
pub fn inject(env: &Env, ctx: &Ctx, efd: &OwnedFd, gsi: u32, n: u64) -> TestResult {
    signal(efd)?;
    wait_injected(env, ctx, gsi, n)
}
