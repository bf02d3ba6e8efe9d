// SPDX-License-Identifier: GPL-2.0
//! `RUST_IRQFD_SET_MASK`: MSI-X style masking with a pending latch.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

use super::{expect_kind, msi, Steps, EDGE};
use crate::abi::RustIrqfdDelivery;
use crate::harness::{
    check_injections, check_record_any, drain, ensure, eq, expect_nothing, gsi_stats, mask,
    new_eventfd, ok, route, signal, stats, try_read, Env, TestResult, RA, RB,
};

/// Injections into a masked GSI raise no record: they count in `latched`
/// (and `injected`). Unmask raises exactly one record whose count is the
/// latched injections, with the route the GSI has at the unmask; another
/// GSI is not affected by the mask; once unmasked the GSI delivers as
/// before. Nothing lost, nothing doubled, one step at a time.
pub(super) fn masked_latch(env: &Env) -> TestResult {
    let c = env.open()?;
    let t = Steps { env, c: &c };
    let e = new_eventfd()?;
    let f = new_eventfd()?;
    route(&c, 1, RA)?;
    ok("assign(gsi 1)", c.assign(&e, 1))?;
    ok("assign(gsi 2)", c.assign(&f, 2))?;
    mask(&c, 1, true)?;
    t.full(gsi_stats!(1, masked: 1))?;
    for i in 1..=3 {
        t.sig(&e, 1, i)?;
        t.full_at(
            &format!("after {i} signal(s) on the masked gsi"),
            gsi_stats!(1, injected: i, latched: i, masked: 1),
        )?;
    }
    expect_nothing(&c, "after 3 injections into a masked gsi")?;

    // Another gsi is not masked.
    t.sig(&f, 2, 1)?;
    t.one(2, 1, EDGE, "of gsi 2 while gsi 1 is masked")?;
    t.full(gsi_stats!(1, injected: 3, latched: 3, masked: 1))?;

    // The record gets the route of the unmask.
    route(&c, 1, RB)?;
    mask(&c, 1, false)?;
    t.full_at(
        "after the unmask",
        gsi_stats!(1, injected: 3, raised: 1, coalesced: 2, pending: 1),
    )?;
    let d = t.one(
        1,
        3,
        msi(RB),
        "raised by the unmask (route B set while masked)",
    )?;
    eq("seq of the unmask's record", d.seq, 2)?;

    t.sig(&e, 1, 4)?;
    t.one(1, 1, msi(RB), "after the unmask")?;
    t.full(gsi_stats!(1, injected: 4, raised: 2, coalesced: 2, delivered: 2))
}

/// Masking leaves a pending record alone (it stays readable); injections
/// latched while a record is pending merge into it at the unmask (count
/// and `coalesced` go up by the latched number, the record keeps the route
/// it was raised with); a record read while masked is followed, at the
/// unmask, by a new record for what was latched after it.
pub(super) fn unmask_merges_pending(env: &Env) -> TestResult {
    let c = env.open()?;
    let t = Steps { env, c: &c };
    let e = new_eventfd()?;
    route(&c, 1, RA)?;
    ok("assign(gsi 1)", c.assign(&e, 1))?;
    t.sig(&e, 1, 1)?;
    mask(&c, 1, true)?;
    t.full_at(
        "mask with a record pending",
        gsi_stats!(1, injected: 1, raised: 1, pending: 1, masked: 1),
    )?;
    t.sig(&e, 1, 2)?;
    t.sig(&e, 1, 3)?;
    t.full(gsi_stats!(1, injected: 3, raised: 1, pending: 1, latched: 2, masked: 1))?;
    route(&c, 1, RB)?;
    mask(&c, 1, false)?;
    t.full_at(
        "unmask with a record pending (a merge)",
        gsi_stats!(1, injected: 3, raised: 1, coalesced: 2, pending: 1),
    )?;
    let d = t.one(
        1,
        3,
        msi(RA),
        "pending through the mask, merged at the unmask",
    )?;
    eq("seq", d.seq, 1)?;

    // A record pending when masked stays readable while masked.
    t.sig(&e, 1, 4)?;
    mask(&c, 1, true)?;
    let d = t.one(1, 1, msi(RB), "read while masked")?;
    eq("seq", d.seq, 2)?;
    t.sig(&e, 1, 5)?;
    t.sig(&e, 1, 6)?;
    expect_nothing(&c, "masked, after the pending record was read")?;
    route(&c, 1, RA)?;
    mask(&c, 1, false)?;
    let d = t.one(1, 2, msi(RA), "raised by the second unmask")?;
    eq("seq", d.seq, 3)?;
    t.full(gsi_stats!(1, injected: 6, raised: 3, coalesced: 3, delivered: 3))
}

/// Unmask of a GSI never masked, mask of a masked one and unmask of an
/// unmasked one change nothing; a mask/unmask pair with nothing latched
/// raises nothing.
pub(super) fn mask_unmask_idempotent(env: &Env) -> TestResult {
    let c = env.open()?;
    let t = Steps { env, c: &c };
    let e = new_eventfd()?;
    ok("assign(gsi 1)", c.assign(&e, 1))?;
    mask(&c, 1, false)?;
    t.full_at("unmask of a gsi never masked", gsi_stats!(1))?;
    expect_nothing(&c, "after the unmask of a gsi never masked")?;

    mask(&c, 1, true)?;
    mask(&c, 1, true)?;
    t.sig(&e, 1, 1)?;
    mask(&c, 1, true)?;
    let latched = gsi_stats!(1, injected: 1, latched: 1, masked: 1);
    t.full_at("mask of a masked gsi", latched)?;
    mask(&c, 1, false)?;
    mask(&c, 1, false)?;
    t.one(1, 1, EDGE, "of the unmask")?;
    expect_nothing(&c, "after a second unmask")?;
    let after = gsi_stats!(1, injected: 1, raised: 1, delivered: 1);
    t.full_at("unmask of an unmasked gsi", after)?;

    mask(&c, 1, true)?;
    mask(&c, 1, false)?;
    expect_nothing(&c, "after mask + unmask with nothing latched")?;
    t.full_at("mask + unmask with nothing latched", after)
}

/// A writer signals an eventfd as fast as it can while this thread masks,
/// unmasks and reads in a loop: after a final unmask, the deassign (which
/// flushes any queued injection) and a drain, the records read add up to
/// the injections exactly, every record carries the route, and on the fast
/// path the injections are the writes. Nothing lost, nothing doubled.
pub(super) fn mask_loop_nothing_lost(env: &Env) -> TestResult {
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
            expect_kind(&d, msi(RA), "under the mask loop")?;
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
    check_injections(
        env,
        &format!("gsi 1, {flips} mask/unmask flips"),
        s.injected,
        writes,
    )
}
