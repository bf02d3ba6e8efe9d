// SPDX-License-Identifier: GPL-2.0
//! ABI version 2: MSI routes updated in place (`RUST_IRQFD_SET_ROUTE`),
//! MSI-X style masking with a pending latch (`RUST_IRQFD_SET_MASK`), and
//! level-triggered resample irqfds with their end of interrupt
//! (`RUST_IRQFD_FLAG_RESAMPLE`, `RUST_IRQFD_ACK`); Documentation/rust_irqfd.rst,
//! "SET_ROUTE", "SET_MASK", "ACK" and "Resampling".
//!
//! Single-threaded except `mask_loop_nothing_lost`. Every signal's
//! injection is waited for before the next step, so that the expectations
//! are exact with `deferred_only` too (an injection there is asynchronous
//! to the write, and so is the one an ACK's signal makes through an irqfd).
//! The bad inputs of the three ioctls are rows of `errors.rs`.
//!
//! Here the test list and the steps the tests share ([`Steps`]: signal and
//! wait, read one record of a given [`Kind`], check the whole stats); the
//! tests by ioctl in `routes`, `mask` and `resample`.

mod mask;
mod resample;
mod routes;

use std::os::fd::OwnedFd;
use std::time::Duration;

use crate::abi::{RustIrqfdDelivery, RustIrqfdGsiStats, DELIVERY_LEVEL, DELIVERY_MSI};
use crate::dev::Ctx;
use crate::harness::{
    check_record_any, drain, eq, expect_full, inject, read_n, test, Env, Needs, Route, Test,
    TestResult,
};
use mask::{mask_loop_nothing_lost, mask_unmask_idempotent, masked_latch, unmask_merges_pending};
use resample::{
    ack_unasserted_returns_zero, resample_edge_ignores_asserted, resample_last_leave_deasserts,
    resample_leave_waits_for_ack, resample_level_ack, resample_liveness, resample_masked_latch,
    resample_shared_resampler, resamplefd_close_keeps_irqfd, resamplefd_is_fd,
};
use routes::{
    route_kept_by_raised_record, route_msi_delivery, route_update_in_place,
    route_update_many_irqfds,
};

/// The routing, masking and resampling tests, in run order.
pub const TESTS: &[Test] = &[
    test!(route_msi_delivery, Needs::gsis(2), [Inject]),
    test!(route_update_in_place, Needs::gsis(4), [Inject]),
    test!(route_update_many_irqfds, Needs::gsis(2), [Inject]),
    test!(route_kept_by_raised_record, Needs::gsis(2), [Inject]),
    test!(masked_latch, Needs::gsis(3), [Inject]),
    test!(unmask_merges_pending, Needs::gsis(2), [Inject]),
    test!(mask_unmask_idempotent, Needs::gsis(2), [Inject]),
    test!(mask_loop_nothing_lost, Needs::gsis(2), [Inject]),
    test!(resample_level_ack, Needs::gsis(2), [Inject]),
    test!(resample_shared_resampler, Needs::gsis(2), [Inject]),
    test!(resample_edge_ignores_asserted, Needs::gsis(2), [Inject]),
    test!(ack_unasserted_returns_zero, Needs::gsis(2)),
    test!(resamplefd_close_keeps_irqfd, Needs::gsis(2), [Inject]),
    test!(resample_last_leave_deasserts, Needs::gsis(2), [Inject]),
    test!(resamplefd_is_fd, Needs::gsis(2), [Inject]),
    test!(resample_masked_latch, Needs::gsis(2), [Inject]),
    test!(resample_liveness, Needs::gsis(2), [Inject]),
    test!(
        resample_leave_waits_for_ack,
        Needs::gsis(2),
        [Inject, Hooks]
    ),
];

/// Two more valid routes, with the extremes of both fields.
const RC: Route = (0x0000_0000_fee0_3000, 0x0000_4033);
const RD: Route = (0x0000_0000_0000_0004, 0xffff_ffff);

/// How long a signal that must have no effect gets to show one.
const QUIET: Duration = Duration::from_millis(20);

/// What a record carries: its LEVEL flag (`DELIVERY_LEVEL` or 0) and its
/// route (`None`: no MSI flag, address and data 0).
#[derive(Clone, Copy)]
struct Kind(u32, Option<Route>);

/// A plain record.
const EDGE: Kind = Kind(0, None);
/// The record of a resample irqfd, no route.
const LEVEL: Kind = Kind(DELIVERY_LEVEL, None);

/// A record with the route `r`.
const fn msi(r: Route) -> Kind {
    Kind(0, Some(r))
}

/// The record's flags and MSI fields are those of `kind`.
fn expect_kind(d: &RustIrqfdDelivery, kind: Kind, what: &str) -> TestResult {
    let Kind(level, route) = kind;
    let want = match route {
        Some((a, m)) => (DELIVERY_MSI | level, a, m),
        None => (level, 0, 0),
    };
    eq(
        &format!("(flags, msi_addr, msi_data) of the record {what}"),
        (d.flags, d.msi_addr, d.msi_data),
        want,
    )
    .map_err(|e| format!("{e}: {d:?}"))
}

/// A context and the run's settings: the steps of the tests, each stated
/// in one line.
struct Steps<'a> {
    env: &'a Env,
    c: &'a Ctx,
}

impl Steps<'_> {
    /// Signals `efd`, bound to `gsi`, and waits for the injection that
    /// makes `injected` reach `n`.
    fn sig(&self, efd: &OwnedFd, gsi: u32, n: u64) -> TestResult {
        inject(self.env, self.c, efd, gsi, n)
    }

    /// Exactly one record, for `gsi` with `count` and of `kind`, well formed.
    fn one(
        &self,
        gsi: u32,
        count: u64,
        kind: Kind,
        what: &str,
    ) -> Result<RustIrqfdDelivery, String> {
        let d = self
            .one_any(gsi, count)
            .map_err(|e| format!("{what}: {e}"))?;
        expect_kind(&d, kind, what)?;
        Ok(d)
    }

    /// Exactly one record, for `gsi` with `count`, well formed.
    fn one_any(&self, gsi: u32, count: u64) -> Result<RustIrqfdDelivery, String> {
        let mut v = read_n(self.env, self.c, 1)?;
        v.extend(drain(self.c)?);
        eq("number of records", v.len(), 1).map_err(|e| format!("{e}: {v:?}"))?;
        let d = v[0];
        check_record_any(&d, self.env.nr_gsis())?;
        eq("(gsi, count) of the record", (d.gsi, d.count), (gsi, count))
            .map_err(|e| format!("{e}: {d:?}"))?;
        Ok(d)
    }

    /// Every field of the stats of `want.gsi` must be as in `want`.
    fn full(&self, want: RustIrqfdGsiStats) -> TestResult {
        expect_full(self.c, want.gsi, want)
    }

    /// [`Steps::full`], a failure saying `when`.
    fn full_at(&self, when: &str, want: RustIrqfdGsiStats) -> TestResult {
        self.full(want).map_err(|m| format!("{when}: {m}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::harness::{RA, RB};

    /// The routes of the tests are valid (nonzero, 4-byte aligned); A and
    /// B are checked with their definition.
    #[test]
    fn routes_valid() {
        for (a, _) in [RA, RB, RC, RD] {
            assert!(a != 0 && a & 3 == 0, "{a:#x}");
        }
    }

    #[test]
    fn names_unique() {
        let mut v: Vec<_> = TESTS.iter().map(|t| t.name).collect();
        v.sort_unstable();
        v.dedup();
        assert_eq!(v.len(), TESTS.len());
    }
}
