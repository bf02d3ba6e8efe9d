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

use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use crate::abi::{RustIrqfdDelivery, DELIVERY_LEVEL, DELIVERY_MSI};
use crate::dev::Ctx;
use crate::harness::{
    check_record_any, drain, ensure, eq, expect_ack, expect_full, expect_nothing, expect_nr_irqfds,
    expect_signalled, fails, gsi_stats, inject, mask, new_eventfd, new_eventfds, ok, read_n, route,
    signal, stats, test, try_read, unroute, wait_injected, wait_until, Env, Needs, Route, Test,
    TestResult, RA, RB,
};
use crate::sys;

/// The routing, masking and resampling tests, in run order.
pub const TESTS: &[Test] = &[
    test!(route_msi_delivery, Needs::gsis(2), [Inject]),
    test!(route_update_in_place, Needs::gsis(4), [Inject]),
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
];

/// Two more valid routes, with the extremes of both fields.
const RC: Route = (0x0000_0000_fee0_3000, 0x0000_4033);
const RD: Route = (0x0000_0000_0000_0004, 0xffff_ffff);

/// How long a signal that must have no effect gets to show one.
const QUIET: Duration = Duration::from_millis(20);

/// Exactly one record, for `gsi` with `count`, well formed.
fn one(env: &Env, c: &Ctx, gsi: u32, count: u64) -> Result<RustIrqfdDelivery, String> {
    let mut v = read_n(env, c, 1)?;
    v.extend(drain(c)?);
    eq("number of records", v.len(), 1).map_err(|e| format!("{e}: {v:?}"))?;
    let d = v[0];
    check_record_any(&d, env.nr_gsis())?;
    eq("(gsi, count) of the record", (d.gsi, d.count), (gsi, count))
        .map_err(|e| format!("{e}: {d:?}"))?;
    Ok(d)
}

/// The record's flags are `level` (`DELIVERY_LEVEL` or 0) plus
/// `DELIVERY_MSI` with `route`, or none and zeros without.
fn expect_kind(d: &RustIrqfdDelivery, level: u32, route: Option<Route>, what: &str) -> TestResult {
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

/// Exactly one record for `gsi` with `count`, of the given kind.
fn one_kind(
    env: &Env,
    c: &Ctx,
    gsi: u32,
    count: u64,
    level: u32,
    route: Option<Route>,
    what: &str,
) -> Result<RustIrqfdDelivery, String> {
    let d = one(env, c, gsi, count).map_err(|e| format!("{what}: {e}"))?;
    expect_kind(&d, level, route, what)?;
    Ok(d)
}

// --- Routes ---

/// A GSI starts as a plain line; SET_ROUTE makes its records carry the MSI
/// flag, address and data; another SET_ROUTE changes them; a clear makes
/// it plain again, and it can be routed again after. Route updates inject
/// nothing.
fn route_msi_delivery(env: &Env) -> TestResult {
    let c = env.open()?;
    let e = new_eventfd()?;
    ok("assign(gsi 1)", c.assign(&e, 1))?;
    inject(env, &c, &e, 1, 1)?;
    one_kind(env, &c, 1, 1, 0, None, "before any SET_ROUTE")?;

    route(&c, 1, RA)?;
    expect_full(&c, 1, gsi_stats!(1, injected: 1, raised: 1, delivered: 1))
        .map_err(|m| format!("SET_ROUTE changed the counters: {m}"))?;
    expect_nothing(&c, "after SET_ROUTE (a route update injects nothing)")?;
    inject(env, &c, &e, 1, 2)?;
    one_kind(env, &c, 1, 1, 0, Some(RA), "after SET_ROUTE(A)")?;

    route(&c, 1, RB)?;
    inject(env, &c, &e, 1, 3)?;
    one_kind(env, &c, 1, 1, 0, Some(RB), "after SET_ROUTE(B)")?;

    unroute(&c, 1)?;
    inject(env, &c, &e, 1, 4)?;
    one_kind(env, &c, 1, 1, 0, None, "after the route was cleared")?;

    route(&c, 1, RD)?;
    inject(env, &c, &e, 1, 5)?;
    one_kind(
        env,
        &c,
        1,
        1,
        0,
        Some(RD),
        "after SET_ROUTE(addr 4, data 0xffffffff) of a cleared route",
    )?;
    expect_full(&c, 1, gsi_stats!(1, injected: 5, raised: 5, delivered: 5))?;
    expect_full(&c, 0, gsi_stats!(0))
}

/// A route update changes the route of that GSI only, with no reassign (no
/// shutdown, the irqfds stay); a route set before any irqfd is bound
/// applies to irqfds bound later; the route is the GSI's, so an irqfd
/// deassigned and bound again keeps injecting with it; another context's
/// GSI of the same number is not affected.
fn route_update_in_place(env: &Env) -> TestResult {
    let c = env.open()?;
    route(&c, 3, RC)?;
    let e: Vec<OwnedFd> = (0..4).map(|_| new_eventfd()).collect::<Result<_, _>>()?;
    for g in 1..=3u32 {
        ok(&format!("assign(gsi {g})"), c.assign(&e[g as usize], g))?;
    }
    route(&c, 1, RA)?;
    route(&c, 2, RD)?;
    let mut n = [0u64; 4];
    let mut check = |c: &Ctx, g: u32, want: Option<Route>, what: &str| -> TestResult {
        n[g as usize] += 1;
        inject(env, c, &e[g as usize], g, n[g as usize])?;
        one_kind(env, c, g, 1, 0, want, &format!("of gsi {g} {what}")).map(|_| ())
    };
    check(&c, 1, Some(RA), "routed to A")?;
    check(&c, 2, Some(RD), "routed to D")?;
    check(&c, 3, Some(RC), "routed to C before its irqfd was bound")?;

    route(&c, 1, RB)?;
    expect_nr_irqfds(&c, 3, "after the route update")?;
    eq(
        "shutdowns after the route update (no reassign)",
        ok("RUST_IRQFD_GET_INFO", c.info())?.shutdowns,
        0,
    )?;
    check(&c, 1, Some(RB), "after its update to B")?;
    check(&c, 2, Some(RD), "after gsi 1's update (untouched)")?;
    check(&c, 3, Some(RC), "after gsi 1's update (untouched)")?;

    unroute(&c, 2)?;
    check(&c, 2, None, "after its route was cleared")?;
    check(&c, 1, Some(RB), "after gsi 2's clear (untouched)")?;

    ok("deassign(gsi 1)", c.deassign(&e[1], 1))?;
    ok("assign(gsi 1) again", c.assign(&e[1], 1))?;
    check(&c, 1, Some(RB), "bound again (the route is the gsi's)")?;

    // Another context: its gsi 1 was never routed.
    let o = env.open()?;
    ok("other context: assign(gsi 1)", o.assign(&e[0], 1))?;
    signal(&e[0])?;
    wait_injected(env, &o, 1, 1)?;
    one_kind(env, &o, 1, 1, 0, None, "of the other context's gsi 1")?;
    expect_nothing(&c, "on the first context after the other's signal")
}

/// A record keeps the route it was raised with: injections coalesced into
/// it after a route update or a clear change neither its route nor its
/// flags; the next record gets the route of its own time.
fn route_kept_by_raised_record(env: &Env) -> TestResult {
    let c = env.open()?;
    let e = new_eventfd()?;
    route(&c, 1, RA)?;
    ok("assign(gsi 1)", c.assign(&e, 1))?;
    inject(env, &c, &e, 1, 1)?;
    route(&c, 1, RB)?;
    inject(env, &c, &e, 1, 2)?;
    unroute(&c, 1)?;
    inject(env, &c, &e, 1, 3)?;
    expect_full(
        &c,
        1,
        gsi_stats!(1, injected: 3, raised: 1, coalesced: 2, pending: 1),
    )?;
    let d = one_kind(
        env,
        &c,
        1,
        3,
        0,
        Some(RA),
        "raised with route A, then coalesced under B and no route",
    )?;
    eq("seq", d.seq, 1)?;
    inject(env, &c, &e, 1, 4)?;
    one_kind(env, &c, 1, 1, 0, None, "raised after the clear")?;
    route(&c, 1, RB)?;
    inject(env, &c, &e, 1, 5)?;
    inject(env, &c, &e, 1, 6)?;
    route(&c, 1, RA)?;
    let d = one_kind(env, &c, 1, 2, 0, Some(RB), "raised under B, read after A")?;
    eq("seq of the last record", d.seq, 3)?;
    expect_full(
        &c,
        1,
        gsi_stats!(1, injected: 6, raised: 3, coalesced: 3, delivered: 3),
    )
}

// --- Masking ---

/// Injections into a masked GSI raise no record: they count in `latched`
/// (and `injected`). Unmask raises exactly one record whose count is the
/// latched injections, with the route the GSI has at the unmask; another
/// GSI is not affected by the mask; once unmasked the GSI delivers as
/// before. Nothing lost, nothing doubled, one step at a time.
fn masked_latch(env: &Env) -> TestResult {
    let c = env.open()?;
    let e = new_eventfd()?;
    let f = new_eventfd()?;
    route(&c, 1, RA)?;
    ok("assign(gsi 1)", c.assign(&e, 1))?;
    ok("assign(gsi 2)", c.assign(&f, 2))?;
    mask(&c, 1, true)?;
    expect_full(&c, 1, gsi_stats!(1, masked: 1))?;
    for i in 1..=3 {
        inject(env, &c, &e, 1, i)?;
        expect_full(&c, 1, gsi_stats!(1, injected: i, latched: i, masked: 1))
            .map_err(|m| format!("after {i} signal(s) on the masked gsi: {m}"))?;
    }
    expect_nothing(&c, "after 3 injections into a masked gsi")?;

    // Another gsi is not masked.
    inject(env, &c, &f, 2, 1)?;
    one_kind(env, &c, 2, 1, 0, None, "of gsi 2 while gsi 1 is masked")?;
    expect_full(&c, 1, gsi_stats!(1, injected: 3, latched: 3, masked: 1))?;

    // The record gets the route of the unmask.
    route(&c, 1, RB)?;
    mask(&c, 1, false)?;
    expect_full(
        &c,
        1,
        gsi_stats!(1, injected: 3, raised: 1, coalesced: 2, pending: 1),
    )
    .map_err(|m| format!("after the unmask: {m}"))?;
    let d = one_kind(
        env,
        &c,
        1,
        3,
        0,
        Some(RB),
        "raised by the unmask (route B set while masked)",
    )?;
    eq("seq of the unmask's record", d.seq, 2)?;

    inject(env, &c, &e, 1, 4)?;
    one_kind(env, &c, 1, 1, 0, Some(RB), "after the unmask")?;
    expect_full(
        &c,
        1,
        gsi_stats!(1, injected: 4, raised: 2, coalesced: 2, delivered: 2),
    )
}

/// Masking leaves a pending record alone (it stays readable); injections
/// latched while a record is pending merge into it at the unmask (count
/// and `coalesced` go up by the latched number, the record keeps the route
/// it was raised with); a record read while masked is followed, at the
/// unmask, by a new record for what was latched after it.
fn unmask_merges_pending(env: &Env) -> TestResult {
    let c = env.open()?;
    let e = new_eventfd()?;
    route(&c, 1, RA)?;
    ok("assign(gsi 1)", c.assign(&e, 1))?;
    inject(env, &c, &e, 1, 1)?;
    mask(&c, 1, true)?;
    expect_full(
        &c,
        1,
        gsi_stats!(1, injected: 1, raised: 1, pending: 1, masked: 1),
    )
    .map_err(|m| format!("mask with a record pending: {m}"))?;
    inject(env, &c, &e, 1, 2)?;
    inject(env, &c, &e, 1, 3)?;
    expect_full(
        &c,
        1,
        gsi_stats!(1, injected: 3, raised: 1, pending: 1, latched: 2, masked: 1),
    )?;
    route(&c, 1, RB)?;
    mask(&c, 1, false)?;
    expect_full(
        &c,
        1,
        gsi_stats!(1, injected: 3, raised: 1, coalesced: 2, pending: 1),
    )
    .map_err(|m| format!("unmask with a record pending (a merge): {m}"))?;
    let d = one_kind(
        env,
        &c,
        1,
        3,
        0,
        Some(RA),
        "pending through the mask, merged at the unmask",
    )?;
    eq("seq", d.seq, 1)?;

    // A record pending when masked stays readable while masked.
    inject(env, &c, &e, 1, 4)?;
    mask(&c, 1, true)?;
    let d = one_kind(env, &c, 1, 1, 0, Some(RB), "read while masked")?;
    eq("seq", d.seq, 2)?;
    inject(env, &c, &e, 1, 5)?;
    inject(env, &c, &e, 1, 6)?;
    expect_nothing(&c, "masked, after the pending record was read")?;
    route(&c, 1, RA)?;
    mask(&c, 1, false)?;
    let d = one_kind(env, &c, 1, 2, 0, Some(RA), "raised by the second unmask")?;
    eq("seq", d.seq, 3)?;
    expect_full(
        &c,
        1,
        gsi_stats!(1, injected: 6, raised: 3, coalesced: 3, delivered: 3),
    )
}

/// Unmask of a GSI never masked, mask of a masked one and unmask of an
/// unmasked one change nothing; a mask/unmask pair with nothing latched
/// raises nothing.
fn mask_unmask_idempotent(env: &Env) -> TestResult {
    let c = env.open()?;
    let e = new_eventfd()?;
    ok("assign(gsi 1)", c.assign(&e, 1))?;
    mask(&c, 1, false)?;
    expect_full(&c, 1, gsi_stats!(1)).map_err(|m| format!("unmask of a gsi never masked: {m}"))?;
    expect_nothing(&c, "after the unmask of a gsi never masked")?;

    mask(&c, 1, true)?;
    mask(&c, 1, true)?;
    inject(env, &c, &e, 1, 1)?;
    mask(&c, 1, true)?;
    let latched = gsi_stats!(1, injected: 1, latched: 1, masked: 1);
    expect_full(&c, 1, latched).map_err(|m| format!("mask of a masked gsi: {m}"))?;
    mask(&c, 1, false)?;
    mask(&c, 1, false)?;
    one_kind(env, &c, 1, 1, 0, None, "of the unmask")?;
    expect_nothing(&c, "after a second unmask")?;
    let after = gsi_stats!(1, injected: 1, raised: 1, delivered: 1);
    expect_full(&c, 1, after).map_err(|m| format!("unmask of an unmasked gsi: {m}"))?;

    mask(&c, 1, true)?;
    mask(&c, 1, false)?;
    expect_nothing(&c, "after mask + unmask with nothing latched")?;
    expect_full(&c, 1, after).map_err(|m| format!("mask + unmask with nothing latched: {m}"))
}

/// A writer signals an eventfd as fast as it can while this thread masks,
/// unmasks and reads in a loop: after a final unmask, the deassign (which
/// flushes any queued injection) and a drain, the records read add up to
/// the injections exactly, every record carries the route, and on the fast
/// path the injections are the writes. Nothing lost, nothing doubled.
fn mask_loop_nothing_lost(env: &Env) -> TestResult {
    const WRITES: u64 = 4000;
    let c = env.open()?;
    let e = new_eventfd()?;
    route(&c, 1, RA)?;
    ok("assign(gsi 1)", c.assign(&e, 1))?;
    let done = AtomicBool::new(false);
    let written = AtomicU64::new(0);
    let mut counts = 0u64;
    let mut records = 0u64;
    let mut flips = 0u64;
    let mut take = |v: Vec<RustIrqfdDelivery>| -> TestResult {
        for d in v {
            check_record_any(&d, env.nr_gsis())?;
            expect_kind(&d, 0, Some(RA), "under the mask loop")?;
            ensure(d.gsi == 1, || format!("record for gsi {}: {d:?}", d.gsi))?;
            counts += d.count;
            records += 1;
        }
        Ok(())
    };
    std::thread::scope(|s| -> TestResult {
        let writer = s.spawn(|| -> TestResult {
            let r = (|| {
                for i in 0..WRITES {
                    signal(&e)?;
                    written.fetch_add(1, Relaxed);
                    if i % 64 == 0 {
                        std::thread::yield_now();
                    }
                }
                Ok(())
            })();
            done.store(true, Relaxed);
            r
        });
        let r = (|| {
            while !done.load(Relaxed) {
                mask(&c, 1, true)?;
                std::thread::yield_now();
                take(try_read(&c, 64)?)?;
                stats(&c, 1)?;
                mask(&c, 1, false)?;
                take(try_read(&c, 64)?)?;
                flips += 1;
            }
            Ok(())
        })();
        done.store(true, Relaxed);
        let w = writer
            .join()
            .unwrap_or_else(|_| Err("the writer thread panicked".into()));
        r.and(w)
    })?;
    mask(&c, 1, false)?;
    ok(
        "deassign(gsi 1) (flushes queued injections)",
        c.deassign(&e, 1),
    )?;
    take(drain(&c)?)?;
    let s = stats(&c, 1)?;
    let writes = written.load(Relaxed);
    eq("writes", writes, WRITES)?;
    ensure(s.latched == 0 && s.masked == 0 && s.pending == 0, || {
        format!("after the final unmask and drain: {s:?}")
    })?;
    eq(
        &format!("sum of the counts read vs injected ({flips} mask/unmask flips)"),
        counts,
        s.injected,
    )?;
    eq("records read vs delivered", records, s.delivered)?;
    if env.deferred() {
        ensure(s.injected >= 1 && s.injected <= writes, || {
            format!(
                "deferred_only: {} injections for {writes} writes",
                s.injected
            )
        })
    } else {
        eq(
            &format!("injections vs writes ({flips} mask/unmask flips)"),
            s.injected,
            writes,
        )
    }
}

// --- Resampling ---

/// A resample irqfd's signal asserts the line: a LEVEL record. While the
/// line is asserted further signals coalesce (into the pending record, or
/// only into `coalesced` once it was read) and the resamplefd is not
/// signalled. ACK deasserts, counts in `acks`, signals the resamplefd once
/// and returns 1; the next signal raises a new record. A routed level GSI
/// gives MSI | LEVEL records. An ACK of the deasserted line returns 0.
fn resample_level_ack(env: &Env) -> TestResult {
    let c = env.open()?;
    let e = new_eventfd()?;
    let r = new_eventfd()?;
    ok("assign(gsi 1, RESAMPLE)", c.assign_resample(&e, 1, &r))?;
    expect_full(&c, 1, gsi_stats!(1))?;
    inject(env, &c, &e, 1, 1)?;
    expect_full(
        &c,
        1,
        gsi_stats!(1, injected: 1, raised: 1, pending: 1, asserted: 1),
    )?;
    inject(env, &c, &e, 1, 2)?;
    let d = one_kind(env, &c, 1, 2, DELIVERY_LEVEL, None, "of the level line")?;
    eq("seq", d.seq, 1)?;
    inject(env, &c, &e, 1, 3)?;
    expect_nothing(&c, "after a signal on the asserted line, its record read")?;
    expect_full(
        &c,
        1,
        gsi_stats!(1, injected: 3, raised: 1, coalesced: 2, delivered: 1, asserted: 1),
    )?;
    std::thread::sleep(QUIET);
    expect_signalled(&r, 0, "the resamplefd before any ACK")?;

    expect_ack(&c, 1, 1, "of the asserted line")?;
    expect_signalled(&r, 1, "the resamplefd after the ACK")?;
    expect_full(
        &c,
        1,
        gsi_stats!(1, injected: 3, raised: 1, coalesced: 2, delivered: 1, acks: 1),
    )?;
    inject(env, &c, &e, 1, 4)?;
    let d = one_kind(env, &c, 1, 1, DELIVERY_LEVEL, None, "after the ACK")?;
    eq("seq", d.seq, 2)?;
    expect_ack(&c, 1, 1, "of the line asserted again")?;
    expect_signalled(&r, 1, "the resamplefd after the second ACK")?;

    route(&c, 1, RA)?;
    inject(env, &c, &e, 1, 5)?;
    one_kind(
        env,
        &c,
        1,
        1,
        DELIVERY_LEVEL,
        Some(RA),
        "of the routed level line",
    )?;
    expect_ack(&c, 1, 1, "of the routed level line")?;
    expect_ack(&c, 1, 0, "of the deasserted line")?;
    expect_signalled(&r, 1, "the resamplefd after an ACK and an ACK of nothing")?;
    expect_full(
        &c,
        1,
        gsi_stats!(1, injected: 5, raised: 3, coalesced: 2, delivered: 3, acks: 3),
    )?;
    ok("deassign(gsi 1)", c.deassign(&e, 1))
}

/// Two resample irqfds on one GSI share its resampler: either one asserts
/// the line, and one ACK signals both resamplefds and returns 2. With one
/// deassigned, the other still holds the line and an ACK signals it alone.
fn resample_shared_resampler(env: &Env) -> TestResult {
    let c = env.open()?;
    let [e1, r1, e2, r2] = new_eventfds()?;
    ok(
        "assign(eventfd 1, gsi 1, RESAMPLE)",
        c.assign_resample(&e1, 1, &r1),
    )?;
    ok(
        "assign(eventfd 2, gsi 1, RESAMPLE)",
        c.assign_resample(&e2, 1, &r2),
    )?;
    inject(env, &c, &e1, 1, 1)?;
    one_kind(env, &c, 1, 1, DELIVERY_LEVEL, None, "of eventfd 1")?;
    inject(env, &c, &e2, 1, 2)?;
    expect_nothing(&c, "after eventfd 2's signal on the asserted line")?;
    expect_ack(&c, 1, 2, "with two resample irqfds")?;
    expect_signalled(&r1, 1, "resamplefd 1")?;
    expect_signalled(&r2, 1, "resamplefd 2")?;

    inject(env, &c, &e2, 1, 3)?;
    one_kind(env, &c, 1, 1, DELIVERY_LEVEL, None, "of eventfd 2")?;
    expect_ack(&c, 1, 2, "asserted by eventfd 2")?;
    expect_signalled(&r1, 1, "resamplefd 1 (its irqfd did not assert)")?;
    expect_signalled(&r2, 1, "resamplefd 2")?;

    inject(env, &c, &e2, 1, 4)?;
    ok("deassign(eventfd 1)", c.deassign(&e1, 1))?;
    let s = stats(&c, 1)?;
    eq("asserted after deassigning one of two", s.asserted, 1)?;
    expect_ack(&c, 1, 1, "with one resample irqfd left")?;
    expect_signalled(&r1, 0, "resamplefd 1 (deassigned)")?;
    expect_signalled(&r2, 1, "resamplefd 2")?;
    expect_full(
        &c,
        1,
        gsi_stats!(1, injected: 4, raised: 3, coalesced: 1, delivered: 2, pending: 1, acks: 3),
    )?;
    ok("deassign(eventfd 2)", c.deassign(&e2, 1))
}

/// An edge irqfd on a GSI that a resample irqfd holds asserted raises its
/// records as always (flags 0, `asserted` untouched), or coalesces into
/// the pending LEVEL record without changing its flags; an ACK counts the
/// resample irqfd only, and an edge injection never asserts the line.
fn resample_edge_ignores_asserted(env: &Env) -> TestResult {
    let c = env.open()?;
    let [e, r, f] = new_eventfds()?;
    ok(
        "assign(level eventfd, gsi 1, RESAMPLE)",
        c.assign_resample(&e, 1, &r),
    )?;
    ok("assign(edge eventfd, gsi 1)", c.assign(&f, 1))?;
    inject(env, &c, &e, 1, 1)?;
    one_kind(env, &c, 1, 1, DELIVERY_LEVEL, None, "of the level irqfd")?;
    inject(env, &c, &f, 1, 2)?;
    one_kind(
        env,
        &c,
        1,
        1,
        0,
        None,
        "of the edge irqfd on the asserted line",
    )?;
    expect_full(
        &c,
        1,
        gsi_stats!(1, injected: 2, raised: 2, delivered: 2, asserted: 1),
    )?;
    expect_ack(&c, 1, 1, "with one resample and one edge irqfd")?;
    expect_signalled(&r, 1, "the resamplefd")?;

    inject(env, &c, &f, 1, 3)?;
    one_kind(env, &c, 1, 1, 0, None, "of the edge irqfd, line deasserted")?;
    eq(
        "asserted after an edge injection",
        stats(&c, 1)?.asserted,
        0,
    )?;
    expect_ack(&c, 1, 0, "after an edge injection only")?;

    inject(env, &c, &e, 1, 4)?;
    inject(env, &c, &f, 1, 5)?;
    one_kind(
        env,
        &c,
        1,
        2,
        DELIVERY_LEVEL,
        None,
        "raised by the level irqfd, then the edge one coalesced into it",
    )?;
    expect_full(
        &c,
        1,
        gsi_stats!(1, injected: 5, raised: 4, coalesced: 1, delivered: 4, acks: 1, asserted: 1),
    )?;
    expect_ack(&c, 1, 1, "at the end")?;
    expect_signalled(&r, 1, "the resamplefd at the end")
}

/// ACK of a line no level injection holds returns 0 and signals nothing:
/// on a fresh context, with a resample irqfd never signalled, right after
/// an ACK that deasserted, and on a GSI with only an edge irqfd.
fn ack_unasserted_returns_zero(env: &Env) -> TestResult {
    let c = env.open()?;
    expect_ack(&c, 0, 0, "on a fresh context")?;
    let [e, r, f] = new_eventfds()?;
    ok("assign(gsi 1, RESAMPLE)", c.assign_resample(&e, 1, &r))?;
    expect_ack(&c, 1, 0, "of a resample irqfd's line before any signal")?;
    expect_signalled(&r, 0, "the resamplefd")?;
    inject(env, &c, &e, 1, 1)?;
    expect_ack(&c, 1, 1, "of the asserted line")?;
    expect_ack(&c, 1, 0, "right after the ACK that deasserted")?;
    expect_ack(&c, 1, 0, "once more")?;
    expect_signalled(
        &r,
        1,
        "the resamplefd after three ACKs, one of an asserted line",
    )?;
    eq("acks", stats(&c, 1)?.acks, 1)?;

    ok("assign(edge eventfd, gsi 0)", c.assign(&f, 0))?;
    inject(env, &c, &f, 0, 1)?;
    expect_ack(&c, 0, 0, "of a gsi with an edge irqfd only")?;
    expect_full(&c, 0, gsi_stats!(0, injected: 1, raised: 1, pending: 1))
}

/// The irqfd keeps its own reference to the resamplefd: closing the
/// descriptor does not disable the irqfd (no shutdown), and ACKs keep
/// signalling it (returning 1) until the irqfd is deassigned.
fn resamplefd_close_keeps_irqfd(env: &Env) -> TestResult {
    let c = env.open()?;
    let e = new_eventfd()?;
    let r = new_eventfd()?;
    ok("assign(gsi 1, RESAMPLE)", c.assign_resample(&e, 1, &r))?;
    ok("close(resamplefd)", sys::close(r))?;
    std::thread::sleep(QUIET);
    expect_nr_irqfds(&c, 1, "after close(resamplefd)")?;
    eq(
        "shutdowns after close(resamplefd)",
        ok("RUST_IRQFD_GET_INFO", c.info())?.shutdowns,
        0,
    )?;
    for i in 1..=3 {
        inject(env, &c, &e, 1, i)?;
        one_kind(
            env,
            &c,
            1,
            1,
            DELIVERY_LEVEL,
            None,
            &format!("#{i} after close(resamplefd)"),
        )?;
        expect_ack(&c, 1, 1, "with the resamplefd closed by userspace")?;
    }
    expect_nr_irqfds(&c, 1, "after the ACKs")?;
    ok("deassign(gsi 1)", c.deassign(&e, 1))?;
    eq(
        "shutdowns after the deassign",
        ok("RUST_IRQFD_GET_INFO", c.info())?.shutdowns,
        1,
    )?;
    eq("asserted after the deassign", stats(&c, 1)?.asserted, 0)
}

/// When the last resample irqfd of a GSI goes, by deassign or by EPOLLHUP,
/// the line is deasserted without a signal; while one is left (or only an
/// edge irqfd), it is not.
fn resample_last_leave_deasserts(env: &Env) -> TestResult {
    let c = env.open()?;
    let [e1, r1, e2, r2] = new_eventfds()?;
    ok(
        "assign(eventfd 1, gsi 1, RESAMPLE)",
        c.assign_resample(&e1, 1, &r1),
    )?;
    ok(
        "assign(eventfd 2, gsi 1, RESAMPLE)",
        c.assign_resample(&e2, 1, &r2),
    )?;
    inject(env, &c, &e1, 1, 1)?;
    ok("deassign(eventfd 1)", c.deassign(&e1, 1))?;
    eq(
        "asserted after the asserting irqfd left, another still bound",
        stats(&c, 1)?.asserted,
        1,
    )?;
    ok(
        "deassign(eventfd 2), the last resample irqfd",
        c.deassign(&e2, 1),
    )?;
    let s = stats(&c, 1)?;
    eq(
        "(asserted, acks) after the last resample irqfd left",
        (s.asserted, s.acks),
        (0, 0),
    )?;
    expect_signalled(&r1, 0, "resamplefd 1 (deassert without a signal)")?;
    expect_signalled(&r2, 0, "resamplefd 2 (deassert without a signal)")?;
    expect_ack(&c, 1, 0, "after the last resample irqfd left")?;

    // By EPOLLHUP, with an edge irqfd left on the gsi.
    let [e3, r3, f] = new_eventfds()?;
    ok("assign(edge eventfd, gsi 1)", c.assign(&f, 1))?;
    ok(
        "assign(eventfd 3, gsi 1, RESAMPLE)",
        c.assign_resample(&e3, 1, &r3),
    )?;
    inject(env, &c, &e3, 1, 2)?;
    eq("asserted", stats(&c, 1)?.asserted, 1)?;
    ok("close(eventfd 3)", sys::close(e3))?;
    wait_until(env, "the EPOLLHUP shutdown of eventfd 3's irqfd", || {
        let i = ok("RUST_IRQFD_GET_INFO", c.info())?;
        Ok((
            i.nr_irqfds == 1 && i.shutdowns == 3,
            format!("nr_irqfds {}, shutdowns {}", i.nr_irqfds, i.shutdowns),
        ))
    })?;
    eq(
        "asserted after the last resample irqfd's EPOLLHUP (an edge irqfd left)",
        stats(&c, 1)?.asserted,
        0,
    )?;
    expect_signalled(&r3, 0, "resamplefd 3")?;
    expect_ack(&c, 1, 0, "with only an edge irqfd left")?;
    drain(&c)?;
    inject(env, &c, &f, 1, 3)?;
    one_kind(env, &c, 1, 1, 0, None, "of the edge irqfd left")?;
    Ok(())
}

/// `resamplefd == fd`: the ACK's signal goes to the irqfd's own eventfd and
/// injects again, from the ioctl: the line is asserted again with a new
/// LEVEL record, and the eventfd counter is consumed. A signal on the
/// asserted line then only coalesces: no resample from the wakeup (R19),
/// so no further injection follows on its own.
fn resamplefd_is_fd(env: &Env) -> TestResult {
    let c = env.open()?;
    let e = new_eventfd()?;
    ok(
        "assign(gsi 1, RESAMPLE, resamplefd = fd)",
        c.assign_resample(&e, 1, &e),
    )?;
    inject(env, &c, &e, 1, 1)?;
    let d = one_kind(env, &c, 1, 1, DELIVERY_LEVEL, None, "of the first signal")?;
    eq("seq", d.seq, 1)?;
    for i in 1..=3u64 {
        expect_ack(&c, 1, 1, &format!("#{i}"))?;
        wait_injected(env, &c, 1, i + 1)
            .map_err(|m| format!("the ACK's signal on the irqfd's own eventfd: {m}"))?;
        let d = one_kind(
            env,
            &c,
            1,
            1,
            DELIVERY_LEVEL,
            None,
            &format!("raised by ACK #{i} through the irqfd's own eventfd"),
        )?;
        eq("seq", d.seq, i + 1)?;
    }
    fails_eagain(&e)?;
    expect_full(
        &c,
        1,
        gsi_stats!(1, injected: 4, raised: 4, delivered: 4, acks: 3, asserted: 1),
    )?;
    // A signal on the asserted line: coalesced, and nothing more.
    inject(env, &c, &e, 1, 5)?;
    std::thread::sleep(QUIET);
    expect_full(
        &c,
        1,
        gsi_stats!(1, injected: 5, raised: 4, coalesced: 1, delivered: 4, acks: 3, asserted: 1),
    )
    .map_err(|m| format!("a signal on the asserted line must only coalesce: {m}"))?;
    expect_nothing(&c, "after the signal on the asserted line")?;
    ok("deassign(gsi 1)", c.deassign(&e, 1))?;
    eq("asserted after the deassign", stats(&c, 1)?.asserted, 0)
}

/// The irqfd's eventfd counter was consumed by its wakeups.
fn fails_eagain(e: &OwnedFd) -> TestResult {
    fails(
        "read(eventfd) (the irqfd consumed every signal, the ACKs' too)",
        sys::eventfd_read(e.as_fd()),
        libc::EAGAIN,
    )
}

/// A resample irqfd's injections into a masked GSI are latched, not
/// asserted (an ACK returns 0); the unmask asserts the line and raises a
/// LEVEL record with all of them, which an ACK then ends.
fn resample_masked_latch(env: &Env) -> TestResult {
    let c = env.open()?;
    let e = new_eventfd()?;
    let r = new_eventfd()?;
    ok("assign(gsi 1, RESAMPLE)", c.assign_resample(&e, 1, &r))?;
    mask(&c, 1, true)?;
    inject(env, &c, &e, 1, 1)?;
    expect_ack(
        &c,
        1,
        0,
        "of a masked line holding a latched level injection",
    )?;
    inject(env, &c, &e, 1, 2)?;
    expect_full(&c, 1, gsi_stats!(1, injected: 2, latched: 2, masked: 1))?;
    expect_nothing(&c, "while masked")?;
    mask(&c, 1, false)?;
    expect_full(
        &c,
        1,
        gsi_stats!(1, injected: 2, raised: 1, coalesced: 1, pending: 1, asserted: 1),
    )
    .map_err(|m| format!("unmask of a latch of level injections: {m}"))?;
    one_kind(env, &c, 1, 2, DELIVERY_LEVEL, None, "raised by the unmask")?;
    expect_ack(&c, 1, 1, "after the unmask")?;
    expect_signalled(&r, 1, "the resamplefd")?;
    ok("deassign(gsi 1)", c.deassign(&e, 1))
}

#[cfg(test)]
mod tests {
    use super::*;

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
