// SPDX-License-Identifier: GPL-2.0
//! Blocking readers on every path that makes a record readable. A
//! non-blocking read finds a record whether or not its raising woke
//! anyone, so each path is taken here while a reader sleeps in `read(2)`
//! ([`BlockedReader`]), and that read must return the record within the
//! timeout: the unmask that releases a latch, a level assert (a signal, and
//! the ACK's re-signal through `resamplefd == fd`), the injection for an
//! event pending at assign, and a signal from hard-IRQ context. A plain
//! signal is `blocking_read_wakes` (functional.rs). Every test is tagged
//! `inject`: the deferred pass takes each injection through the work item,
//! whose wakeup is then the one under test.

use std::os::fd::AsRawFd;

use crate::abi::{RustIrqfdDelivery, DELIVERY_LEVEL};
use crate::harness::{
    check_record, check_record_any, eq, expect_ack, expect_full, expect_line, gsi_stats, inject,
    mask, new_eventfd, ok, signal, skip, stats, test, BlockedReader, Env, Needs, Ran, Test,
    TestResult,
};
use crate::races::{hardirq_signal, open_hardirq};

/// The wakeup tests, in run order.
pub const TESTS: &[Test] = &[
    test!(wake_on_unmask, Needs::gsis(2), [Inject]),
    test!(wake_on_level_assert, Needs::gsis(2), [Inject]),
    test!(wake_on_pending_at_assign, Needs::NONE, [Inject]),
    test!(wake_on_hardirq_signal, Needs::NONE, [Inject, Hooks]),
];

/// (gsi, seq, count, flags) of each record.
fn summary(v: &[RustIrqfdDelivery]) -> Vec<(u32, u64, u64, u32)> {
    v.iter().map(|d| (d.gsi, d.seq, d.count, d.flags)).collect()
}

/// A reader asleep while two injections sit in the mask latch of gsi 1 is
/// woken by the unmask that releases them: one record with count 2.
fn wake_on_unmask(env: &Env) -> TestResult {
    let c = env.open()?;
    let e = new_eventfd()?;
    ok("assign(gsi 1)", c.assign(&e, 1))?;
    mask(&c, 1, true)?;
    for i in 1..=2 {
        inject(env, &c, &e, 1, i)?;
    }
    expect_full(&c, 1, gsi_stats!(1, injected: 2, latched: 2, masked: 1))?;
    let r = BlockedReader::start(env, &c, 4)?;
    mask(&c, 1, false)?;
    let v = r.finish(env, "unmask of gsi 1 with 2 injections latched")?;
    eq(
        "records (gsi, seq, count, flags)",
        summary(&v),
        vec![(1, 1, 2, 0)],
    )?;
    check_record(&v[0], env.nr_gsis())?;
    let s = stats(&c, 1)?;
    eq(
        "gsi 1 (latched, masked, pending, delivered) after the read",
        (s.latched, s.masked, s.pending, s.delivered),
        (0, 0, 0, 1),
    )
}

/// A resample irqfd whose resamplefd is its own eventfd: a reader asleep
/// is woken by the signal that asserts the line (a LEVEL record), and
/// again by the ACK, whose signal of the resamplefd asserts it anew.
fn wake_on_level_assert(env: &Env) -> TestResult {
    let c = env.open()?;
    let e = new_eventfd()?;
    ok(
        "assign(gsi 1, RESAMPLE, resamplefd = fd)",
        c.assign_resample(&e, 1, &e),
    )?;
    let r = BlockedReader::start(env, &c, 4)?;
    signal(&e)?;
    let v = r.finish(env, "a level injection asserting gsi 1")?;
    eq(
        "records (gsi, seq, count, flags)",
        summary(&v),
        vec![(1, 1, 1, DELIVERY_LEVEL)],
    )?;
    check_record_any(&v[0], env.nr_gsis())?;
    expect_line(&c, 1, 1, "after the level record was read")?;

    let r = BlockedReader::start(env, &c, 4)?;
    expect_ack(&c, 1, 1, "of the asserted line (signals resamplefd = fd)")?;
    let v = r.finish(
        env,
        "the ACK's signal of resamplefd = fd asserting gsi 1 again",
    )?;
    eq(
        "records (gsi, seq, count, flags)",
        summary(&v),
        vec![(1, 2, 1, DELIVERY_LEVEL)],
    )?;
    expect_line(&c, 1, 1, "after the re-asserted record was read")
}

/// A reader asleep on a context is woken by the injection that assign
/// makes for an eventfd whose counter is already non-zero (from the ioctl
/// in Rust, from the queued work in C).
fn wake_on_pending_at_assign(env: &Env) -> TestResult {
    let c = env.open()?;
    let e = new_eventfd()?;
    signal(&e)?;
    let r = BlockedReader::start(env, &c, 4)?;
    ok("assign(gsi 0) with the counter at 1", c.assign(&e, 0))?;
    let v = r.finish(env, "the injection for an event pending at assign")?;
    eq(
        "records (gsi, seq, count, flags)",
        summary(&v),
        vec![(0, 1, 1, 0)],
    )?;
    check_record(&v[0], env.nr_gsis())
}

/// A reader asleep on a context is woken by a signal sent from hard-IRQ
/// context (R15's `irqfd_hardirq.ko`; skipped without it).
fn wake_on_hardirq_signal(env: &Env) -> Ran {
    let dev = open_hardirq()?;
    let c = env.open()?;
    let e = new_eventfd()?;
    ok("assign(gsi 0)", c.assign(&e, 0))?;
    let r = BlockedReader::start(env, &c, 4)?;
    let (sent, skipped) = hardirq_signal(&dev, e.as_raw_fd(), 1)?;
    if sent == 0 {
        drop(r);
        return skip(format!(
            "the hard-IRQ signal was not sent ({skipped} skipped by eventfd_signal_allowed)"
        ));
    }
    let v = r.finish(env, "a signal from hard-IRQ context")?;
    eq(
        "records (gsi, seq, count, flags)",
        summary(&v),
        vec![(0, 1, 1, 0)],
    )?;
    Ok(check_record(&v[0], env.nr_gsis())?)
}
