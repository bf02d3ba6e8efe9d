// SPDX-License-Identifier: GPL-2.0
//! Resample (level) irqfds: `RUST_IRQFD_FLAG_RESAMPLE` and the end of
//! interrupt, `RUST_IRQFD_ACK`.

use std::os::fd::{AsFd, OwnedFd};

use super::{Kind, Steps, EDGE, LEVEL, QUIET};
use crate::abi::DELIVERY_LEVEL;
use crate::dev::Ctx;
use crate::harness::{
    assert_line, drain, ensure, eq, expect_ack, expect_nothing, expect_nr_irqfds, expect_signalled,
    fails, gsi_stats, mask, new_eventfd, new_eventfds, ok, route, signal, stats, wait_injected,
    wait_until, Env, TestResult, RA,
};
use crate::stress::device_name;
use crate::sys;

/// A resample irqfd's signal asserts the line: a LEVEL record. While the
/// line is asserted further signals coalesce (into the pending record, or
/// only into `coalesced` once it was read) and the resamplefd is not
/// signalled. ACK deasserts, counts in `acks`, signals the resamplefd once
/// and returns 1; the next signal raises a new record. A routed level GSI
/// gives MSI | LEVEL records. An ACK of the deasserted line returns 0.
pub(super) fn resample_level_ack(env: &Env) -> TestResult {
    let c = env.open()?;
    let t = Steps { env, c: &c };
    let e = new_eventfd()?;
    let r = new_eventfd()?;
    ok("assign(gsi 1, RESAMPLE)", c.assign_resample(&e, 1, &r))?;
    t.full(gsi_stats!(1))?;
    t.sig(&e, 1, 1)?;
    t.full(gsi_stats!(1, injected: 1, raised: 1, pending: 1, asserted: 1))?;
    t.sig(&e, 1, 2)?;
    let d = t.one(1, 2, LEVEL, "of the level line")?;
    eq("seq", d.seq, 1)?;
    t.sig(&e, 1, 3)?;
    expect_nothing(&c, "after a signal on the asserted line, its record read")?;
    t.full(gsi_stats!(1, injected: 3, raised: 1, coalesced: 2, delivered: 1, asserted: 1))?;
    std::thread::sleep(QUIET);
    expect_signalled(&r, 0, "the resamplefd before any ACK")?;

    expect_ack(&c, 1, 1, "of the asserted line")?;
    expect_signalled(&r, 1, "the resamplefd after the ACK")?;
    t.full(gsi_stats!(1, injected: 3, raised: 1, coalesced: 2, delivered: 1, acks: 1))?;
    t.sig(&e, 1, 4)?;
    let d = t.one(1, 1, LEVEL, "after the ACK")?;
    eq("seq", d.seq, 2)?;
    expect_ack(&c, 1, 1, "of the line asserted again")?;
    expect_signalled(&r, 1, "the resamplefd after the second ACK")?;

    route(&c, 1, RA)?;
    t.sig(&e, 1, 5)?;
    t.one(
        1,
        1,
        Kind(DELIVERY_LEVEL, Some(RA)),
        "of the routed level line",
    )?;
    expect_ack(&c, 1, 1, "of the routed level line")?;
    expect_ack(&c, 1, 0, "of the deasserted line")?;
    expect_signalled(&r, 1, "the resamplefd after an ACK and an ACK of nothing")?;
    t.full(gsi_stats!(1, injected: 5, raised: 3, coalesced: 2, delivered: 3, acks: 3))?;
    ok("deassign(gsi 1)", c.deassign(&e, 1))
}

/// Two resample irqfds bound to gsi 1: eventfd 1 with resamplefd 1, and
/// eventfd 2 with resamplefd 2, in that order.
fn two_resample_irqfds(c: &Ctx) -> Result<[OwnedFd; 4], String> {
    let [e1, r1, e2, r2] = new_eventfds()?;
    for (i, (e, r)) in [(&e1, &r1), (&e2, &r2)].into_iter().enumerate() {
        let what = format!("assign(eventfd {}, gsi 1, RESAMPLE)", i + 1);
        ok(&what, c.assign_resample(e, 1, r))?;
    }
    Ok([e1, r1, e2, r2])
}

/// Two resample irqfds on one GSI share its resampler: either one asserts
/// the line, and one ACK signals both resamplefds and returns 2. With one
/// deassigned, the other still holds the line and an ACK signals it alone.
pub(super) fn resample_shared_resampler(env: &Env) -> TestResult {
    let c = env.open()?;
    let t = Steps { env, c: &c };
    let [e1, r1, e2, r2] = two_resample_irqfds(&c)?;
    t.sig(&e1, 1, 1)?;
    t.one(1, 1, LEVEL, "of eventfd 1")?;
    t.sig(&e2, 1, 2)?;
    expect_nothing(&c, "after eventfd 2's signal on the asserted line")?;
    expect_ack(&c, 1, 2, "with two resample irqfds")?;
    expect_signalled(&r1, 1, "resamplefd 1")?;
    expect_signalled(&r2, 1, "resamplefd 2")?;

    t.sig(&e2, 1, 3)?;
    t.one(1, 1, LEVEL, "of eventfd 2")?;
    expect_ack(&c, 1, 2, "asserted by eventfd 2")?;
    expect_signalled(&r1, 1, "resamplefd 1 (its irqfd did not assert)")?;
    expect_signalled(&r2, 1, "resamplefd 2")?;

    t.sig(&e2, 1, 4)?;
    ok("deassign(eventfd 1)", c.deassign(&e1, 1))?;
    let s = stats(&c, 1)?;
    eq("asserted after deassigning one of two", s.asserted, 1)?;
    expect_ack(&c, 1, 1, "with one resample irqfd left")?;
    expect_signalled(&r1, 0, "resamplefd 1 (deassigned)")?;
    expect_signalled(&r2, 1, "resamplefd 2")?;
    t.full(gsi_stats!(1, injected: 4, raised: 3, coalesced: 1, delivered: 2, pending: 1, acks: 3))?;
    ok("deassign(eventfd 2)", c.deassign(&e2, 1))
}

/// An edge irqfd on a GSI that a resample irqfd holds asserted raises its
/// records as always (flags 0, `asserted` untouched), or coalesces into
/// the pending LEVEL record without changing its flags; an ACK counts the
/// resample irqfd only, and an edge injection never asserts the line.
pub(super) fn resample_edge_ignores_asserted(env: &Env) -> TestResult {
    let c = env.open()?;
    let t = Steps { env, c: &c };
    let [e, r, f] = new_eventfds()?;
    ok(
        "assign(level eventfd, gsi 1, RESAMPLE)",
        c.assign_resample(&e, 1, &r),
    )?;
    ok("assign(edge eventfd, gsi 1)", c.assign(&f, 1))?;
    t.sig(&e, 1, 1)?;
    t.one(1, 1, LEVEL, "of the level irqfd")?;
    t.sig(&f, 1, 2)?;
    t.one(1, 1, EDGE, "of the edge irqfd on the asserted line")?;
    t.full(gsi_stats!(1, injected: 2, raised: 2, delivered: 2, asserted: 1))?;
    expect_ack(&c, 1, 1, "with one resample and one edge irqfd")?;
    expect_signalled(&r, 1, "the resamplefd")?;

    t.sig(&f, 1, 3)?;
    t.one(1, 1, EDGE, "of the edge irqfd, line deasserted")?;
    eq(
        "asserted after an edge injection",
        stats(&c, 1)?.asserted,
        0,
    )?;
    expect_ack(&c, 1, 0, "after an edge injection only")?;

    t.sig(&e, 1, 4)?;
    t.sig(&f, 1, 5)?;
    t.one(
        1,
        2,
        LEVEL,
        "raised by the level irqfd, then the edge one coalesced into it",
    )?;
    t.full(
        gsi_stats!(1, injected: 5, raised: 4, coalesced: 1, delivered: 4, acks: 1, asserted: 1),
    )?;
    expect_ack(&c, 1, 1, "at the end")?;
    expect_signalled(&r, 1, "the resamplefd at the end")
}

/// ACK of a line no level injection holds returns 0 and signals nothing:
/// on a fresh context, with a resample irqfd never signalled, right after
/// an ACK that deasserted, and on a GSI with only an edge irqfd.
pub(super) fn ack_unasserted_returns_zero(env: &Env) -> TestResult {
    let c = env.open()?;
    let t = Steps { env, c: &c };
    expect_ack(&c, 0, 0, "on a fresh context")?;
    let [e, r, f] = new_eventfds()?;
    ok("assign(gsi 1, RESAMPLE)", c.assign_resample(&e, 1, &r))?;
    expect_ack(&c, 1, 0, "of a resample irqfd's line before any signal")?;
    expect_signalled(&r, 0, "the resamplefd")?;
    t.sig(&e, 1, 1)?;
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
    t.sig(&f, 0, 1)?;
    expect_ack(&c, 0, 0, "of a gsi with an edge irqfd only")?;
    t.full(gsi_stats!(0, injected: 1, raised: 1, pending: 1))
}

/// The irqfd keeps its own reference to the resamplefd: closing the
/// descriptor does not disable the irqfd (no shutdown), and ACKs keep
/// signalling it (returning 1) until the irqfd is deassigned.
pub(super) fn resamplefd_close_keeps_irqfd(env: &Env) -> TestResult {
    let c = env.open()?;
    let t = Steps { env, c: &c };
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
        t.sig(&e, 1, i)?;
        t.one(1, 1, LEVEL, &format!("#{i} after close(resamplefd)"))?;
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
pub(super) fn resample_last_leave_deasserts(env: &Env) -> TestResult {
    let c = env.open()?;
    let t = Steps { env, c: &c };
    let [e1, r1, e2, r2] = two_resample_irqfds(&c)?;
    t.sig(&e1, 1, 1)?;
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
    t.sig(&e3, 1, 2)?;
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
    t.sig(&f, 1, 3)?;
    t.one(1, 1, EDGE, "of the edge irqfd left")?;
    Ok(())
}

/// `resamplefd == fd`: the ACK's signal goes to the irqfd's own eventfd and
/// injects again, from the ioctl: the line is asserted again with a new
/// LEVEL record, and the eventfd counter is consumed. A signal on the
/// asserted line then only coalesces: no resample from the wakeup (R19),
/// so no further injection follows on its own.
pub(super) fn resamplefd_is_fd(env: &Env) -> TestResult {
    let c = env.open()?;
    let t = Steps { env, c: &c };
    let e = new_eventfd()?;
    ok(
        "assign(gsi 1, RESAMPLE, resamplefd = fd)",
        c.assign_resample(&e, 1, &e),
    )?;
    t.sig(&e, 1, 1)?;
    let d = t.one(1, 1, LEVEL, "of the first signal")?;
    eq("seq", d.seq, 1)?;
    for i in 1..=3u64 {
        expect_ack(&c, 1, 1, &format!("#{i}"))?;
        wait_injected(env, &c, 1, i + 1)
            .map_err(|m| format!("the ACK's signal on the irqfd's own eventfd: {m}"))?;
        let d = t.one(
            1,
            1,
            LEVEL,
            &format!("raised by ACK #{i} through the irqfd's own eventfd"),
        )?;
        eq("seq", d.seq, i + 1)?;
    }
    fails_eagain(&e)?;
    t.full(gsi_stats!(1, injected: 4, raised: 4, delivered: 4, acks: 3, asserted: 1))?;
    // A signal on the asserted line: coalesced, and nothing more.
    t.sig(&e, 1, 5)?;
    std::thread::sleep(QUIET);
    t.full_at(
        "a signal on the asserted line must only coalesce",
        gsi_stats!(1, injected: 5, raised: 4, coalesced: 1, delivered: 4, acks: 3, asserted: 1),
    )?;
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
pub(super) fn resample_masked_latch(env: &Env) -> TestResult {
    let c = env.open()?;
    let t = Steps { env, c: &c };
    let e = new_eventfd()?;
    let r = new_eventfd()?;
    ok("assign(gsi 1, RESAMPLE)", c.assign_resample(&e, 1, &r))?;
    mask(&c, 1, true)?;
    t.sig(&e, 1, 1)?;
    expect_ack(
        &c,
        1,
        0,
        "of a masked line holding a latched level injection",
    )?;
    t.sig(&e, 1, 2)?;
    t.full(gsi_stats!(1, injected: 2, latched: 2, masked: 1))?;
    expect_nothing(&c, "while masked")?;
    mask(&c, 1, false)?;
    t.full_at(
        "unmask of a latch of level injections",
        gsi_stats!(1, injected: 2, raised: 1, coalesced: 1, pending: 1, asserted: 1),
    )?;
    t.one(1, 2, LEVEL, "raised by the unmask")?;
    expect_ack(&c, 1, 1, "after the unmask")?;
    expect_signalled(&r, 1, "the resamplefd")?;
    ok("deassign(gsi 1)", c.deassign(&e, 1))
}

/// Resample liveness: a level line is deasserted only by an ACK, or by the
/// last resample irqfd of its GSI leaving; while one is bound, an ACK of
/// the asserted line signals each bound resamplefd once. A resample irqfd
/// that is not the last one leaving, whether it asserted the line or not,
/// by deassign, by `EPOLLHUP`, or as an assign that fails after joining the
/// resampler (`EBUSY`: its eventfd is bound already), leaves the line
/// asserted and signals nothing: a deassert there would lose the level
/// interrupt for good (the device side waits for its resamplefd, and no
/// ACK would signal it again). The ACK then signals the ones left, once.
/// The last one leaving deasserts without a signal, and a level injection
/// the mask latch holds goes out as an edge at the unmask (a record
/// without LEVEL, the line left deasserted). Closing a context with an
/// asserted line signals no resamplefd.
pub(super) fn resample_liveness(env: &Env) -> TestResult {
    let c = env.open()?;
    let t = Steps { env, c: &c };
    let [e1, r1, e2, r2] = two_resample_irqfds(&c)?;

    // Deassign of the one that did not assert.
    t.sig(&e1, 1, 1)?;
    t.one(1, 1, LEVEL, "of eventfd 1")?;
    ok("deassign(eventfd 2), not the last", c.deassign(&e2, 1))?;
    t.full_at(
        "eventfd 1 asserted, eventfd 2 deassigned",
        gsi_stats!(1, injected: 1, raised: 1, delivered: 1, asserted: 1),
    )?;
    held_then_acked(&c, [&r1, &r2], "eventfd 2 deassigned")?;

    // Deassign of the one that asserted.
    ok(
        "assign(eventfd 2, gsi 1, RESAMPLE) again",
        c.assign_resample(&e2, 1, &r2),
    )?;
    t.sig(&e2, 1, 2)?;
    t.one(1, 1, LEVEL, "of eventfd 2")?;
    ok(
        "deassign(eventfd 2), which asserted the line, not the last",
        c.deassign(&e2, 1),
    )?;
    t.full_at(
        "eventfd 2 asserted and was deassigned",
        gsi_stats!(1, injected: 2, raised: 2, delivered: 2, acks: 1, asserted: 1),
    )?;
    held_then_acked(&c, [&r1, &r2], "the asserting eventfd 2 deassigned")?;

    // EPOLLHUP of the one that asserted.
    let [e3, r3] = new_eventfds()?;
    ok(
        "assign(eventfd 3, gsi 1, RESAMPLE)",
        c.assign_resample(&e3, 1, &r3),
    )?;
    t.sig(&e3, 1, 3)?;
    t.one(1, 1, LEVEL, "of eventfd 3")?;
    ok("close(eventfd 3)", sys::close(e3))?;
    wait_until(env, "the EPOLLHUP shutdown of eventfd 3's irqfd", || {
        let i = ok("RUST_IRQFD_GET_INFO", c.info())?;
        Ok((
            i.nr_irqfds == 1 && i.shutdowns == 3,
            format!("nr_irqfds {}, shutdowns {}", i.nr_irqfds, i.shutdowns),
        ))
    })?;
    t.full_at(
        "eventfd 3 asserted and was closed (EPOLLHUP)",
        gsi_stats!(1, injected: 3, raised: 3, delivered: 3, acks: 2, asserted: 1),
    )?;
    held_then_acked(&c, [&r1, &r3], "eventfd 3 shut down by EPOLLHUP")?;

    // An assign that joins the resampler, then fails.
    t.sig(&e1, 1, 4)?;
    t.one(1, 1, LEVEL, "of eventfd 1 again")?;
    let r4 = new_eventfd()?;
    fails(
        "assign(eventfd 1 again, gsi 1, RESAMPLE, resamplefd 4): bound already",
        c.assign_resample(&e1, 1, &r4),
        libc::EBUSY,
    )?;
    expect_nr_irqfds(&c, 1, "after the assign that failed")?;
    t.full_at(
        "an assign on the asserted line failed with EBUSY",
        gsi_stats!(1, injected: 4, raised: 4, delivered: 4, acks: 3, asserted: 1),
    )?;
    held_then_acked(
        &c,
        [&r1, &r4],
        "a resample assign failed after joining the resampler",
    )?;

    // The last one leaves, the line asserted and a level injection latched.
    t.sig(&e1, 1, 5)?;
    t.one(1, 1, LEVEL, "of eventfd 1, before the mask")?;
    mask(&c, 1, true)?;
    t.sig(&e1, 1, 6)?;
    t.full_at(
        "asserted, then masked with a level injection latched",
        gsi_stats!(1, injected: 6, raised: 5, delivered: 5, acks: 4, asserted: 1, masked: 1,
            latched: 1),
    )?;
    ok("deassign(eventfd 1), the last", c.deassign(&e1, 1))?;
    t.full_at(
        "the last resample irqfd left (deasserted, without an ACK)",
        gsi_stats!(1, injected: 6, raised: 5, delivered: 5, acks: 4, masked: 1, latched: 1),
    )?;
    expect_signalled(&r1, 0, "resamplefd 1 (the last one left: no signal)")?;
    mask(&c, 1, false)?;
    t.full_at(
        "the unmask after the last resample irqfd left",
        gsi_stats!(1, injected: 6, raised: 6, delivered: 5, pending: 1, acks: 4),
    )?;
    t.one(
        1,
        1,
        EDGE,
        "released by the unmask after the last resample irqfd left (an edge)",
    )?;
    expect_ack(&c, 1, 0, "after the last resample irqfd left")?;
    expect_signalled(&r1, 0, "resamplefd 1 at the end")?;

    // Release: the context goes with its line asserted.
    let c2 = env.open()?;
    let t2 = Steps { env, c: &c2 };
    let [e5, r5, e6, r6] = new_eventfds()?;
    for (i, (e, r)) in [(&e5, &r5), (&e6, &r6)].into_iter().enumerate() {
        let what = format!(
            "assign(eventfd {}, gsi 1, RESAMPLE) on a second context",
            i + 5
        );
        ok(&what, c2.assign_resample(e, 1, r))?;
    }
    t2.sig(&e5, 1, 1)?;
    eq("asserted on the second context", stats(&c2, 1)?.asserted, 1)?;
    ok("close(second context)", c2.close())?;
    std::thread::sleep(QUIET);
    expect_signalled(&r5, 0, "resamplefd 5 after the release")?;
    expect_signalled(&r6, 0, "resamplefd 6 after the release")
}

/// The line of gsi 1 is held asserted after a resample irqfd that was not
/// the last left (`when`): no resamplefd was signalled; then an ACK
/// deasserts it and signals the one left (`r[0]`) once, and the one gone
/// (`r[1]`) not at all.
fn held_then_acked(c: &Ctx, r: [&OwnedFd; 2], when: &str) -> TestResult {
    let what = format!("after {when}");
    expect_signalled(r[0], 0, &format!("the resamplefd left bound, {what}"))?;
    expect_signalled(r[1], 0, &format!("the resamplefd gone, {what}"))?;
    expect_ack(c, 1, 1, &format!("of the line held asserted {what}"))?;
    expect_signalled(r[0], 1, &format!("the resamplefd left bound, ACK {what}"))?;
    expect_signalled(r[1], 0, &format!("the resamplefd gone, ACK {what}"))?;
    eq(
        &format!("asserted after the ACK, {what}"),
        stats(c, 1)?.asserted,
        0,
    )
}

/// A test hook of the device's module (a parameter of `TEST_HOOKS=1`
/// builds), set for the test and put back as it was when dropped.
struct Hook {
    path: String,
    old: String,
}

impl Hook {
    /// Sets the hook `name` to `value`; `None` if the module has no such
    /// parameter (a build without test hooks, or a hook of the other
    /// module only).
    fn set(env: &Env, name: &str, value: u32) -> Result<Option<Hook>, String> {
        let path = format!("/sys/module/{}/parameters/{name}", device_name(env));
        let Ok(old) = std::fs::read_to_string(&path) else {
            return Ok(None);
        };
        std::fs::write(&path, format!("{value}\n")).map_err(|e| format!("{path}: {e}"))?;
        Ok(Some(Hook { path, old }))
    }
}

impl Drop for Hook {
    fn drop(&mut self) {
        let _ = std::fs::write(&self.path, &self.old);
    }
}

/// How long `test_inject_delay_us` holds irqfd 2's injection, and how long
/// `test_ack_delay_us` holds the ACK before each resamplefd it signals, in
/// [`resample_leave_waits_for_ack`]: the ACK starts well within the first
/// (a few milliseconds in), and the shutdown, released by the first, is
/// done well within the second.
const LEAVE_INJECT_DELAY_US: u32 = 400_000;
const LEAVE_ACK_DELAY_US: u32 = 600_000;

/// An irqfd leaving its resampler waits for the ACKs walking it before its
/// resamplefd is put and it is freed (R20a, made deterministic with the C
/// module's test hooks: C waits for a grace period of its SRCU, the Rust
/// module's ACK holds the mutex that leaving takes). Resample irqfd 1
/// asserts gsi 1; irqfd 2 is assigned with an event already pending, so
/// that C queues its injection, held by `test_inject_delay_us`, and its
/// resamplefd is closed (the irqfd holds the last reference). A thread
/// deassigns irqfd 2: its shutdown unhooks from the eventfd, draining the
/// counter (the test waits to see it drained), then waits for that
/// injection. Meanwhile an ACK walks the resampler, held by
/// `test_ack_delay_us` before each resamplefd, irqfd 2's first (the
/// newest): the shutdown, released by the injection, must not leave the
/// resampler, put the resamplefd and free the irqfd under that walk (a use
/// after free that KASAN reports: planted bug `resampler_no_grace`). The
/// ACK signals resamplefd 1 once, and returns 2 (or 1, had irqfd 2 left
/// before the ACK started, as it may in Rust, whose pending event is
/// injected by the assign itself).
pub(super) fn resample_leave_waits_for_ack(env: &Env) -> TestResult {
    let c = env.open()?;
    let [e1, r1, e2, r2] = new_eventfds()?;
    ok(
        "assign(eventfd 1, gsi 1, RESAMPLE)",
        c.assign_resample(&e1, 1, &r1),
    )?;
    assert_line(env, &c, &e1, 1)?;
    let inject = Hook::set(env, "test_inject_delay_us", LEAVE_INJECT_DELAY_US)?;
    let ack = Hook::set(env, "test_ack_delay_us", LEAVE_ACK_DELAY_US)?;
    signal(&e2)?;
    ok(
        "assign(eventfd 2, gsi 1, RESAMPLE), an event pending",
        c.assign_resample(&e2, 1, &r2),
    )?;
    ok("close(resamplefd 2)", sys::close(r2))?;
    let (deassigned, acked) = std::thread::scope(|s| {
        let d = s.spawn(|| c.deassign(&e2, 1));
        let acked = wait_until(
            env,
            "the shutdown of eventfd 2's irqfd to unhook (its counter drained)",
            || {
                let r = ok("poll(eventfd 2)", sys::readable(e2.as_fd()))?;
                Ok((!r, format!("readable {r}")))
            },
        )
        .and_then(|()| ok("ACK(gsi 1) while irqfd 2 leaves", c.ack(1)));
        let deassigned = d
            .join()
            .map_err(|_| "the deassigning thread panicked".to_string());
        (deassigned, acked)
    });
    drop((ack, inject));
    ok("deassign(eventfd 2) under an ACK", deassigned?)?;
    let n = acked?;
    ensure((1..=2).contains(&n), || {
        format!("ACK(gsi 1) with irqfd 1 bound and irqfd 2 leaving signalled {n}, expected 2 or 1")
    })?;
    expect_signalled(&r1, 1, "resamplefd 1 after the ACK")?;
    expect_nr_irqfds(&c, 1, "after the deassign")?;
    ok("deassign(eventfd 1)", c.deassign(&e1, 1))?;
    eq(
        "asserted after the last deassign",
        stats(&c, 1)?.asserted,
        0,
    )
}
