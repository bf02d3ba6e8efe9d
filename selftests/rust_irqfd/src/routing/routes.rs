// SPDX-License-Identifier: GPL-2.0
//! `RUST_IRQFD_SET_ROUTE`: MSI routes set, updated in place and cleared,
//! and the route a record carries.

use std::os::fd::OwnedFd;

use super::{msi, Kind, Steps, EDGE, RC, RD};
use crate::harness::{
    eq, expect_nothing, expect_nr_irqfds, gsi_stats, new_eventfd, ok, route, signal, unroute,
    wait_injected, Env, Route, TestResult, RA, RB,
};

/// A GSI starts as a plain line; SET_ROUTE makes its records carry the MSI
/// flag, address and data; another SET_ROUTE changes them; a clear makes
/// it plain again, and it can be routed again after. Route updates inject
/// nothing.
pub(super) fn route_msi_delivery(env: &Env) -> TestResult {
    let c = env.open()?;
    let t = Steps { env, c: &c };
    let e = new_eventfd()?;
    ok("assign(gsi 1)", c.assign(&e, 1))?;
    t.sig(&e, 1, 1)?;
    t.one(1, 1, EDGE, "before any SET_ROUTE")?;

    route(&c, 1, RA)?;
    t.full_at(
        "SET_ROUTE changed the counters",
        gsi_stats!(1, injected: 1, raised: 1, delivered: 1),
    )?;
    expect_nothing(&c, "after SET_ROUTE (a route update injects nothing)")?;
    t.sig(&e, 1, 2)?;
    t.one(1, 1, msi(RA), "after SET_ROUTE(A)")?;

    route(&c, 1, RB)?;
    t.sig(&e, 1, 3)?;
    t.one(1, 1, msi(RB), "after SET_ROUTE(B)")?;

    unroute(&c, 1)?;
    t.sig(&e, 1, 4)?;
    t.one(1, 1, EDGE, "after the route was cleared")?;

    route(&c, 1, RD)?;
    t.sig(&e, 1, 5)?;
    t.one(
        1,
        1,
        msi(RD),
        "after SET_ROUTE(addr 4, data 0xffffffff) of a cleared route",
    )?;
    t.full(gsi_stats!(1, injected: 5, raised: 5, delivered: 5))?;
    t.full(gsi_stats!(0))
}

/// A route update changes the route of that GSI only, with no reassign (no
/// shutdown, the irqfds stay); a route set before any irqfd is bound
/// applies to irqfds bound later; the route is the GSI's, so an irqfd
/// deassigned and bound again keeps injecting with it; another context's
/// GSI of the same number is not affected.
pub(super) fn route_update_in_place(env: &Env) -> TestResult {
    let c = env.open()?;
    route(&c, 3, RC)?;
    let e: Vec<OwnedFd> = (0..4).map(|_| new_eventfd()).collect::<Result<_, _>>()?;
    for g in 1..=3u32 {
        ok(&format!("assign(gsi {g})"), c.assign(&e[g as usize], g))?;
    }
    route(&c, 1, RA)?;
    route(&c, 2, RD)?;
    let mut n = [0u64; 4];
    let t = Steps { env, c: &c };
    let mut check = |g: u32, want: Option<Route>, what: &str| -> TestResult {
        n[g as usize] += 1;
        t.sig(&e[g as usize], g, n[g as usize])?;
        t.one(g, 1, Kind(0, want), &format!("of gsi {g} {what}"))
            .map(|_| ())
    };
    check(1, Some(RA), "routed to A")?;
    check(2, Some(RD), "routed to D")?;
    check(3, Some(RC), "routed to C before its irqfd was bound")?;

    route(&c, 1, RB)?;
    expect_nr_irqfds(&c, 3, "after the route update")?;
    eq(
        "shutdowns after the route update (no reassign)",
        ok("RUST_IRQFD_GET_INFO", c.info())?.shutdowns,
        0,
    )?;
    check(1, Some(RB), "after its update to B")?;
    check(2, Some(RD), "after gsi 1's update (untouched)")?;
    check(3, Some(RC), "after gsi 1's update (untouched)")?;

    unroute(&c, 2)?;
    check(2, None, "after its route was cleared")?;
    check(1, Some(RB), "after gsi 2's clear (untouched)")?;

    ok("deassign(gsi 1)", c.deassign(&e[1], 1))?;
    ok("assign(gsi 1) again", c.assign(&e[1], 1))?;
    check(1, Some(RB), "bound again (the route is the gsi's)")?;

    // Another context: its gsi 1 was never routed.
    let o = env.open()?;
    ok("other context: assign(gsi 1)", o.assign(&e[0], 1))?;
    signal(&e[0])?;
    wait_injected(env, &o, 1, 1)?;
    Steps { env, c: &o }.one(1, 1, EDGE, "of the other context's gsi 1")?;
    expect_nothing(&c, "on the first context after the other's signal")
}

/// A route update reaches every irqfd of its GSI, however many: with 100
/// irqfds on one GSI (more than one lock section of C's walk, which drops
/// its lock every 32), each one's next injection after the update carries
/// the new route.
pub(super) fn route_update_many_irqfds(env: &Env) -> TestResult {
    const N: usize = 100;
    let c = env.open()?;
    let t = Steps { env, c: &c };
    let e: Vec<OwnedFd> = (0..N).map(|_| new_eventfd()).collect::<Result<_, _>>()?;
    route(&c, 1, RA)?;
    for (i, f) in e.iter().enumerate() {
        ok(&format!("assign(irqfd {i}, gsi 1)"), c.assign(f, 1))?;
    }
    route(&c, 1, RB)?;
    for (i, f) in e.iter().enumerate() {
        t.sig(f, 1, i as u64 + 1)?;
        t.one(
            1,
            1,
            msi(RB),
            &format!("of irqfd {i} of the {N} on gsi 1, after SET_ROUTE(B)"),
        )?;
    }
    expect_nr_irqfds(&c, N as u32, "after the signals")
}

/// A record keeps the route it was raised with: injections coalesced into
/// it after a route update or a clear change neither its route nor its
/// flags; the next record gets the route of its own time.
pub(super) fn route_kept_by_raised_record(env: &Env) -> TestResult {
    let c = env.open()?;
    let t = Steps { env, c: &c };
    let e = new_eventfd()?;
    route(&c, 1, RA)?;
    ok("assign(gsi 1)", c.assign(&e, 1))?;
    t.sig(&e, 1, 1)?;
    route(&c, 1, RB)?;
    t.sig(&e, 1, 2)?;
    unroute(&c, 1)?;
    t.sig(&e, 1, 3)?;
    t.full(gsi_stats!(1, injected: 3, raised: 1, coalesced: 2, pending: 1))?;
    let d = t.one(
        1,
        3,
        msi(RA),
        "raised with route A, then coalesced under B and no route",
    )?;
    eq("seq", d.seq, 1)?;
    t.sig(&e, 1, 4)?;
    t.one(1, 1, EDGE, "raised after the clear")?;
    route(&c, 1, RB)?;
    t.sig(&e, 1, 5)?;
    t.sig(&e, 1, 6)?;
    route(&c, 1, RA)?;
    let d = t.one(1, 2, msi(RB), "raised under B, read after A")?;
    eq("seq of the last record", d.seq, 3)?;
    t.full(gsi_stats!(1, injected: 6, raised: 3, coalesced: 3, delivered: 3))
}
