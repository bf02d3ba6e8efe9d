// SPDX-License-Identifier: GPL-2.0
//! Teardown races: EPOLLHUP (the last close of an eventfd) and the release
//! of a context against assign and deassign (R1, R2, R4, R7, R12, R13).
//! Each round hands a fresh eventfd or context to the racers, one of which
//! closes it while the others use it; the leader then checks that the
//! irqfds went exactly once and that what survives binds again at once.

use std::os::fd::{AsFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::calls::{assign_num, assign_via, deassign_num, must, pause, racy, raw};
use super::oracle::{expect_nr, final_checks, i2, i5, reader, wait_nr, Acct};
use super::G;
use crate::dev::Ctx;
use crate::harness::{new_eventfd, ok, TestResult};
use crate::stress::{lock, Run, Slot};
use crate::sys;

/// Irqfds of the context closed at once in R13.
const MASS: usize = 256;

/// R1: EPOLLHUP vs deassign. Each round binds a fresh eventfd; then one
/// thread deassigns it while another closes its last reference and a third
/// writes to it and reads the context. Whoever deactivates first owns the one shutdown.
/// Asserts: deassign gives 0 or EBADF (closed first); writes succeed or
/// give EBADF; nr_irqfds back to 0 after every round; one shutdown per
/// irqfd; delivery accounting.
pub(super) fn r1(run: &Run) -> TestResult {
    let env = run.env;
    let ctx = env.open()?;
    let acct = Mutex::new(Acct::new(env.nr_gsis()));
    let b = run.budget(1.0);
    let rounds = run.rounds(&b, 4);
    let closer = Slot::new();
    let cur = AtomicI32::new(-1);
    let assigned = AtomicU64::new(0);
    run.round_workers(&rounds, 4, |w| match w.idx {
        0 => rounds.lead(w, |w, round, race| {
            let e = new_eventfd()?;
            must(w, "assign(fresh eventfd, gsi 1)", ctx.assign(&e, G))?;
            assigned.fetch_add(1, Relaxed);
            cur.store(raw(&e), Relaxed);
            closer.put(e);
            race.run()?;
            wait_nr(
                env,
                &ctx,
                0,
                &format!("after round {round} (deassign racing the last close of the eventfd)"),
            )?;
            Ok(())
        }),
        1 => rounds.racer(w, |w| {
            w.jitter(64);
            let n = cur.load(Relaxed);
            racy(
                w,
                "deassign(eventfd being closed)",
                deassign_num(&ctx, n, G),
                &[libc::EBADF],
            )?;
            Ok(())
        }),
        2 => rounds.racer(w, |w| {
            let e = closer.take("eventfd to close")?;
            w.jitter(64);
            must(w, "close(eventfd), its last reference", sys::close(e))
        }),
        _ => rounds.racer(w, |w| {
            let n = cur.load(Relaxed);
            for _ in 0..4 {
                racy(
                    w,
                    "write(eventfd being closed)",
                    sys::eventfd_signal_raw(n, 1),
                    &[libc::EBADF],
                )?;
            }
            // Reads race the teardown too.
            lock(&acct).read_once(&ctx, &mut w.tally)?;
            Ok(())
        }),
    })?;
    final_checks(run, &ctx, Some(&acct), &[G], assigned.load(Relaxed))
}

/// R2: EPOLLHUP while a shutdown runs. One thread assigns and deassigns
/// the same eventfd in a tight loop while another closes it after a random
/// delay sized to land inside the loop. Asserts I3 exactly (an assign right
/// after a deassign returned 0 never gives EBUSY), EBADF only once closed,
/// nr_irqfds 0 after each round, one shutdown per irqfd, accounting.
pub(super) fn r2(run: &Run) -> TestResult {
    let env = run.env;
    let ctx = env.open()?;
    let acct = Mutex::new(Acct::new(env.nr_gsis()));
    let b = run.budget(1.0);
    let rounds = run.rounds(&b, 2);
    let closer = Slot::new();
    let cur = AtomicI32::new(-1);
    let assigned = AtomicU64::new(0);
    // Mean time of one assign + deassign pair, to size the close delay.
    let pair_ns = AtomicU64::new(0);
    run.round_workers(&rounds, 3, |w| match w.idx {
        0 => rounds.lead(w, |w, round, race| {
            let e = new_eventfd()?;
            let n = raw(&e);
            cur.store(n, Relaxed);
            closer.put(e);
            race.join(w, |w| {
                let t0 = Instant::now();
                let mut pairs = 0u64;
                for _ in 0..32 {
                    w.op();
                    match assign_num(&ctx, n, G) {
                        Ok(()) => {
                            assigned.fetch_add(1, Relaxed);
                        }
                        Err(e) if e.0 == libc::EBADF => {
                            w.tally.error(e);
                            break;
                        }
                        Err(e) if e.0 == libc::EBUSY => {
                            return Err(format!(
                                "I3 broken: assign(eventfd, gsi 1) right after the deassign of its \
                                 previous irqfd returned 0 gave EBUSY (round {round}, pair {pairs})"
                            ))
                        }
                        Err(e) => {
                            return Err(format!(
                                "assign(eventfd being closed): expected success or EBADF, got {e} \
                                 (round {round}, pair {pairs})"
                            ))
                        }
                    }
                    if !racy(
                        w,
                        "deassign(eventfd being closed)",
                        deassign_num(&ctx, n, G),
                        &[libc::EBADF],
                    )? {
                        break;
                    }
                    pairs += 1;
                }
                if let Some(ns) = (t0.elapsed().as_nanos() as u64).checked_div(pairs) {
                    pair_ns.store(ns, Relaxed);
                }
                Ok(())
            })?;
            wait_nr(
                env,
                &ctx,
                0,
                &format!("after round {round} (close during assign/deassign)"),
            )?;
            Ok(())
        }),
        1 => rounds.racer(w, |w| {
            let e = closer.take("eventfd to close")?;
            let max = pair_ns.load(Relaxed).max(1_000) * 24;
            pause(Duration::from_nanos(w.rand(max)));
            must(
                w,
                "close(eventfd) during its assign/deassign loop",
                sys::close(e),
            )
        }),
        _ => reader(w, &ctx, &acct),
    })?;
    final_checks(run, &ctx, Some(&acct), &[G], assigned.load(Relaxed))
}

/// R4: context release vs EPOLLHUP. Each round binds 1-8 fresh eventfds
/// in a new context; then one thread closes half of them, one closes the
/// context, one writes to all. Asserts I2: after the round the surviving
/// eventfds bind at once in a fresh context (whose nr_irqfds starts at 0)
/// and deliver there (I5); writes to the closed ones give only EBADF.
pub(super) fn r4(run: &Run) -> TestResult {
    let env = run.env;
    let b = run.budget(1.0);
    let rounds = run.rounds(&b, 4);
    let odd: Slot<Vec<OwnedFd>> = Slot::new();
    let cslot: Slot<Ctx> = Slot::new();
    let nums: Mutex<Vec<(RawFd, bool)>> = Mutex::new(Vec::new());
    run.round_workers(&rounds, 4, |w| match w.idx {
        0 => rounds.lead(w, |w, round, race| {
            let k = 1 + (round % 8) as usize;
            let c = env.open()?;
            let mut efds = (0..k)
                .map(|_| new_eventfd())
                .collect::<Result<Vec<_>, _>>()?;
            for (i, e) in efds.iter().enumerate() {
                must(w, "assign(fresh eventfd)", c.assign(e, G + i as u32 % 4))?;
            }
            *lock(&nums) = efds
                .iter()
                .enumerate()
                .map(|(i, e)| (raw(e), i % 2 == 1))
                .collect();
            let mut evens = Vec::new();
            let mut odds = Vec::new();
            for (i, e) in efds.drain(..).enumerate() {
                if i % 2 == 1 {
                    odds.push(e);
                } else {
                    evens.push(e);
                }
            }
            odd.put(odds);
            cslot.put(c);
            race.run()?;
            let fresh = i2(w, env, &evens, round)?;
            expect_nr(&fresh, evens.len(), "of the new context")?;
            i5(env, &fresh, G, evens[0].as_fd(), "in the new context")?;
            let v = crate::harness::drain(&fresh)?;
            w.tally.deliveries += v.iter().map(|d| d.count).sum::<u64>();
            must(w, "close(new context)", fresh.close())?;
            Ok(())
        }),
        1 => rounds.racer(w, |w| {
            for e in odd.take("eventfds to close")? {
                must(w, "close(eventfd) racing close(context)", sys::close(e))?;
            }
            Ok(())
        }),
        2 => rounds.racer(w, |w| {
            let c = cslot.take("context to close")?;
            w.jitter(128);
            must(
                w,
                "close(context) racing eventfd closes and writes",
                c.close(),
            )
        }),
        _ => rounds.racer(w, |w| {
            let v = lock(&nums).clone();
            for _ in 0..2 {
                for &(n, may_close) in &v {
                    let r = sys::eventfd_signal_raw(n, 1);
                    if may_close {
                        racy(w, "write(eventfd being closed)", r, &[libc::EBADF])?;
                    } else {
                        must(w, "write(open eventfd)", r)?;
                    }
                }
            }
            Ok(())
        }),
    })
}

/// R7: EPOLLHUP in the middle of an assign. One thread assigns a fresh
/// eventfd while another closes it (its last reference) and a third
/// writes to it. Every other round is the control: a dup keeps the file
/// open, so there is no EPOLLHUP and a successful assign must leave the
/// irqfd bound and delivering. Asserts: assign succeeds or gives EBADF;
/// nr_irqfds 0 after a HUP round; in control rounds nr_irqfds exact and I5.
pub(super) fn r7(run: &Run) -> TestResult {
    let env = run.env;
    let ctx = env.open()?;
    let acct = Mutex::new(Acct::new(env.nr_gsis()));
    let b = run.budget(1.0);
    let rounds = run.rounds(&b, 3);
    let closer = Slot::new();
    let cur = AtomicI32::new(-1);
    let assigned = AtomicU64::new(0);
    run.round_workers(&rounds, 4, |w| match w.idx {
        0 => rounds.lead(w, |w, round, race| {
            let control = round % 2 == 1;
            let e = new_eventfd()?;
            let d = if control {
                Some(ok("dup(eventfd)", sys::dup(e.as_fd()))?)
            } else {
                None
            };
            let n = raw(&e);
            cur.store(n, Relaxed);
            closer.put(e);
            let bound = race.join(w, |w| {
                let bound = racy(
                    w,
                    "assign(eventfd being closed)",
                    assign_num(&ctx, n, G),
                    &[libc::EBADF],
                )?;
                if bound {
                    assigned.fetch_add(1, Relaxed);
                }
                Ok(bound)
            })?;
            match d {
                Some(d) if bound => {
                    expect_nr(
                        &ctx,
                        1,
                        &format!(
                            "in control round {round} (a dup keeps the eventfd open: no \
                             EPOLLHUP, the irqfd stays)"
                        ),
                    )?;
                    i5(env, &ctx, G, d.as_fd(), "through the dup (control round)")?;
                    must(w, "deassign(dup of the eventfd)", ctx.deassign(&d, G))?;
                    expect_nr(&ctx, 0, "after the deassign (control round)")?;
                }
                Some(_) => expect_nr(&ctx, 0, "after an assign that lost to close")?,
                None => wait_nr(
                    env,
                    &ctx,
                    0,
                    &format!("after round {round} (EPOLLHUP during or after the assign)"),
                )?,
            }
            Ok(())
        }),
        1 => rounds.racer(w, |w| {
            let e = closer.take("eventfd to close")?;
            w.jitter(256);
            must(w, "close(eventfd) racing its assign", sys::close(e))
        }),
        2 => rounds.racer(w, |w| {
            let n = cur.load(Relaxed);
            for _ in 0..3 {
                racy(
                    w,
                    "write(eventfd being closed)",
                    sys::eventfd_signal_raw(n, 1),
                    &[libc::EBADF],
                )?;
            }
            Ok(())
        }),
        _ => reader(w, &ctx, &acct),
    })?;
    final_checks(run, &ctx, Some(&acct), &[G], assigned.load(Relaxed))
}

/// R12: teardown vs assign. Rounds alternate: (a) an assign through a dup
/// of a long-lived context while another thread closes that dup (closing
/// a dup must tear nothing down: the irqfd count is exact); (b) an assign
/// through a dup of a new context while another thread closes both of
/// its descriptors (the release runs when the last one goes, possibly at
/// the end of the assign); afterwards the eventfd binds at once in a fresh
/// context (I2). A third thread writes to the eventfds all along.
pub(super) fn r12(run: &Run) -> TestResult {
    let env = run.env;
    let c = env.open()?;
    let acct = Mutex::new(Acct::new(env.nr_gsis()));
    let b = run.budget(1.0);
    let rounds = run.rounds(&b, 3);
    let flavor_b = AtomicBool::new(false);
    let dslot: Slot<OwnedFd> = Slot::new();
    let bslot: Slot<(Ctx, OwnedFd)> = Slot::new();
    let wnums: Mutex<Vec<RawFd>> = Mutex::new(Vec::new());
    let live: Mutex<Vec<OwnedFd>> = Mutex::new(Vec::new());
    let assigned = AtomicU64::new(0);
    run.round_workers(&rounds, 4, |w| match w.idx {
        0 => rounds.lead(w, |w, round, race| {
            let is_b = round % 2 == 1;
            flavor_b.store(is_b, Relaxed);
            let f = new_eventfd()?;
            let dnum;
            let cmd = c.irqfd_cmd();
            if is_b {
                let cb = env.open()?;
                let d = ok("dup(context)", sys::dup(cb.as_fd()))?;
                dnum = raw(&d);
                bslot.put((cb, d));
                *lock(&wnums) = vec![raw(&f)];
            } else {
                let d = ok("dup(context)", sys::dup(c.as_fd()))?;
                dnum = raw(&d);
                dslot.put(d);
                let mut v: Vec<RawFd> = lock(&live).iter().map(raw).collect();
                v.push(raw(&f));
                *lock(&wnums) = v;
            }
            let bound = race.join(w, |w| {
                racy(
                    w,
                    "assign through a context descriptor being closed",
                    assign_via(cmd, dnum, raw(&f), G),
                    &[libc::EBADF],
                )
            })?;
            if is_b {
                let x = env.open()?;
                expect_nr(&x, 0, "I2: of a fresh context")?;
                must(
                    w,
                    &format!(
                        "I2: assign(eventfd) in a new context right after the last close of \
                         the context it was {} (round {round})",
                        if bound { "assigned in" } else { "offered to" }
                    ),
                    x.assign(&f, G),
                )?;
                must(w, "close(new context)", x.close())?;
            } else {
                let mut l = lock(&live);
                if bound {
                    l.push(f);
                    assigned.fetch_add(1, Relaxed);
                }
                expect_nr(
                    &c,
                    l.len(),
                    "after close(dup) racing an assign through it (closing a dup tears \
                     nothing down)",
                )?;
                if l.len() >= 16 {
                    for f in l.drain(..) {
                        must(w, "deassign(eventfd)", c.deassign(&f, G))?;
                    }
                    expect_nr(&c, 0, "after deassigning them all")?;
                }
            }
            Ok(())
        }),
        1 => rounds.racer(w, |w| {
            w.jitter(128);
            if flavor_b.load(Relaxed) {
                let (cb, d) = bslot.take("context to close")?;
                if w.rand(2) == 0 {
                    must(w, "close(context)", cb.close())?;
                    must(w, "close(dup of the context)", sys::close(d))?;
                } else {
                    must(w, "close(dup of the context)", sys::close(d))?;
                    must(w, "close(context)", cb.close())?;
                }
            } else {
                let d = dslot.take("dup to close")?;
                must(w, "close(dup of the context)", sys::close(d))?;
            }
            Ok(())
        }),
        2 => rounds.racer(w, |w| {
            let v = lock(&wnums).clone();
            for n in v {
                must(w, "write(eventfd)", sys::eventfd_signal_raw(n, 1))?;
            }
            Ok(())
        }),
        _ => reader(w, &c, &acct),
    })?;
    for f in lock(&live).drain(..) {
        ok("deassign(eventfd)", c.deassign(&f, G))?;
    }
    final_checks(run, &c, Some(&acct), &[G], assigned.load(Relaxed))
}

/// R13: mass release. Each round binds 256 eventfds in a context and closes
/// it while another thread closes a third of those eventfds (EPOLLHUP
/// during the release) and a third one opens, fills and closes other
/// contexts (more work on the shared cleanup queue). Asserts: every call
/// succeeds; after the close the other two thirds bind at once in a fresh
/// context (I2). Reports the slowest close.
pub(super) fn r13(run: &Run) -> TestResult {
    let env = run.env;
    let b = run.budget(1.0);
    let rounds = run.rounds(&b, 3);
    let hup: Slot<Vec<OwnedFd>> = Slot::new();
    let max_close = AtomicU64::new(0);
    let done = AtomicU64::new(0);
    let r = run.round_workers(&rounds, 3, |w| match w.idx {
        0 => rounds.lead(w, |w, round, race| {
            let c = env.open()?;
            let efds = (0..MASS)
                .map(|_| new_eventfd())
                .collect::<Result<Vec<_>, _>>()?;
            for (i, e) in efds.iter().enumerate() {
                must(w, "assign(fresh eventfd)", c.assign(e, G + i as u32 % 4))?;
            }
            expect_nr(&c, MASS, "after the assigns")?;
            let (thirds, survivors): (Vec<_>, Vec<_>) =
                efds.into_iter().enumerate().partition(|(i, _)| i % 3 == 0);
            hup.put(thirds.into_iter().map(|(_, e)| e).collect());
            race.join(w, |w| {
                let t0 = Instant::now();
                must(w, "close(context with 256 irqfds)", c.close())?;
                max_close.fetch_max(t0.elapsed().as_micros() as u64, Relaxed);
                Ok(())
            })?;
            let x = i2(w, env, survivors.iter().map(|(_, e)| e), round)?;
            expect_nr(&x, survivors.len(), "of the new context")?;
            must(w, "close(new context)", x.close())?;
            done.store(round + 1, Relaxed);
            Ok(())
        }),
        1 => rounds.racer(w, |w| {
            for _ in 0..3 {
                let bc = env.open()?;
                let fs = (0..8)
                    .map(|_| new_eventfd())
                    .collect::<Result<Vec<_>, _>>()?;
                for f in &fs {
                    must(
                        w,
                        "assign(fresh eventfd) in a short-lived context",
                        bc.assign(f, G),
                    )?;
                }
                for f in &fs {
                    must(w, "write(eventfd)", sys::eventfd_signal(f.as_fd(), 1))?;
                }
                must(w, "close(short-lived context)", bc.close())?;
            }
            Ok(())
        }),
        _ => rounds.racer(w, |w| {
            for e in hup.take("eventfds to close")? {
                must(
                    w,
                    "close(eventfd) during the release of its context",
                    sys::close(e),
                )?;
            }
            Ok(())
        }),
    });
    run.note(format!(
        "close(context with {MASS} irqfds): slowest {:.1} ms over {} round(s)",
        max_close.load(Relaxed) as f64 / 1000.0,
        done.load(Relaxed)
    ));
    r
}
