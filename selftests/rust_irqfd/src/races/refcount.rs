// SPDX-License-Identifier: GPL-2.0
//! Eventfd references and recycled fd numbers (R5, R11): concurrent
//! deassigns of one eventfd, the close of a bound eventfd while its number
//! is deassigned and taken again by a new eventfd (the ABA of races.md),
//! and the juggler of KVM's irqfd_test.c. The irqfd holds its own
//! reference to the eventfd: nothing may go early or stay behind.

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

use super::calls::{assign_num, deassign_num, must, must_fail, open_devnull, racy, raw};
use super::oracle::{expect_nr, final_checks, injected, wait_nr};
use super::G;
use crate::harness::{ensure, new_eventfd, ok, TestResult};
use crate::stress::{lock, Run, Slot};
use crate::sys;

/// R5: eventfd_ctx reference counting. Rounds alternate: (a) two threads
/// deassign the same bound eventfd at once (both must return 0, then it
/// binds again at once: I3); (b) ABA: one thread closes the bound eventfd
/// and creates a new one (usually with the same number) while another
/// deassigns that number; the new eventfd then binds at once and the old
/// irqfd goes. Meanwhile the leader closes an eventfd it has just bound
/// and deassigns /dev/null (EINVAL). Asserts those, nr_irqfds, and one
/// shutdown per irqfd; leaks show in the frame's eventfd-id and kmemleak
/// checks.
pub(super) fn r5(run: &Run) -> TestResult {
    let env = run.env;
    let ctx = env.open()?;
    let devnull = open_devnull()?;
    let dn = raw(&devnull);
    let b = run.budget(1.0);
    let rounds = run.rounds(&b, 3);
    let aba = AtomicBool::new(false);
    let cur = AtomicI32::new(-1);
    let to_close = Slot::new();
    let back = Slot::new();
    let assigned = AtomicU64::new(0);
    let reused = AtomicU64::new(0);
    run.round_workers(&rounds, 3, |w| match w.idx {
        0 => {
            rounds.lead(w, |w, round, race| {
                let is_aba = round % 2 == 1;
                let e = new_eventfd()?;
                must(w, "assign(fresh eventfd, gsi 1)", ctx.assign(&e, G))?;
                let f = new_eventfd()?;
                must(w, "assign(fresh eventfd, gsi 2)", ctx.assign(&f, G + 1))?;
                assigned.fetch_add(2, Relaxed);
                cur.store(raw(&e), Relaxed);
                aba.store(is_aba, Relaxed);
                let kept = if is_aba {
                    to_close.put(e);
                    None
                } else {
                    Some(e)
                };
                race.join(w, |w| {
                    must(w, "close(eventfd right after its assign)", sys::close(f))?;
                    must_fail(
                        w,
                        "deassign(/dev/null)",
                        deassign_num(&ctx, dn, G),
                        libc::EINVAL,
                    )
                })?;
                let e = match kept {
                    Some(e) => e,
                    None => {
                        let e2 = back.take("new eventfd")?;
                        if raw(&e2) == cur.load(Relaxed) {
                            reused.fetch_add(1, Relaxed);
                        }
                        must(
                            w,
                            "assign(new eventfd, possibly on the recycled fd number)",
                            ctx.assign(&e2, G),
                        )?;
                        assigned.fetch_add(1, Relaxed);
                        wait_nr(
                            env,
                            &ctx,
                            1,
                            &format!(
                                "in round {round}: the closed eventfds' irqfds gone, the new one \
                                 bound"
                            ),
                        )?;
                        must(w, "deassign(new eventfd)", ctx.deassign(&e2, G))?;
                        e2
                    }
                };
                must(
                    w,
                    &format!(
                        "I3: assign(eventfd) after {} returned 0 (round {round})",
                        if is_aba {
                            "its deassign"
                        } else {
                            "two concurrent deassigns of it"
                        }
                    ),
                    ctx.assign(&e, G),
                )?;
                assigned.fetch_add(1, Relaxed);
                must(w, "deassign(eventfd)", ctx.deassign(&e, G))?;
                wait_nr(env, &ctx, 0, &format!("after round {round}"))?;
                Ok(())
            })?;
            run.note(format!(
                "fd number recycled in {} ABA round(s)",
                reused.load(Relaxed)
            ));
            Ok(())
        }
        1 => rounds.racer(w, |w| {
            if aba.load(Relaxed) {
                let e = to_close.take("eventfd to close")?;
                must(w, "close(bound eventfd)", sys::close(e))?;
                back.put(new_eventfd()?);
            } else {
                must(
                    w,
                    "deassign(eventfd) concurrently with another deassign of it",
                    deassign_num(&ctx, cur.load(Relaxed), G),
                )?;
            }
            Ok(())
        }),
        _ => rounds.racer(w, |w| {
            let n = cur.load(Relaxed);
            if aba.load(Relaxed) {
                racy(
                    w,
                    "deassign(fd number being closed and recycled)",
                    deassign_num(&ctx, n, G),
                    &[libc::EBADF],
                )?;
            } else {
                must(
                    w,
                    "deassign(eventfd) concurrently with another deassign of it",
                    deassign_num(&ctx, n, G),
                )?;
            }
            Ok(())
        }),
    })?;
    final_checks(run, &ctx, None, &[], assigned.load(Relaxed))
}

/// R11: deassign of a recycled fd number. Phase 1 (half the budget, in
/// rounds): one thread closes the bound eventfd and creates a new one,
/// which usually gets the same number, while another deassigns that
/// number; the new eventfd must then bind at once, the old irqfd must go
/// (by deassign or EPOLLHUP), and a deassign + re-assign must succeed at
/// once (I3). Phase 2 (free-running juggler, after KVM's irqfd_test.c): a
/// primary binds fresh eventfds to two gsis in two contexts (never both
/// at once), a secondary binds and unbinds whatever the number names now.
/// Asserts the errnos each call may give, deassign of /dev/null (EINVAL)
/// and -1 (EBADF), nothing left bound, one shutdown per irqfd, and no
/// injection at all (nothing is ever signalled).
pub(super) fn r11(run: &Run) -> TestResult {
    let env = run.env;
    let c1 = env.open()?;
    let c2 = env.open()?;
    let devnull = open_devnull()?;
    let dn = raw(&devnull);
    let assigned1 = AtomicU64::new(0);
    let assigned2 = AtomicU64::new(0);

    // Phase 1.
    let first = new_eventfd()?;
    ok("assign(fresh eventfd)", c1.assign(&first, G))?;
    assigned1.fetch_add(1, Relaxed);
    let holder = Mutex::new(Some(first));
    let to_close = Slot::new();
    let back = Slot::new();
    let cur = AtomicI32::new(-1);
    let reused = AtomicU64::new(0);
    let b1 = run.budget(0.5);
    let rounds = run.rounds(&b1, 3);
    let r = run.round_workers(&rounds, 3, |w| match w.idx {
        0 => rounds.lead(w, |w, round, race| {
            let e = lock(&holder).take().ok_or("internal: no bound eventfd")?;
            cur.store(raw(&e), Relaxed);
            to_close.put(e);
            race.run()?;
            let e2 = back.take("new eventfd")?;
            if raw(&e2) == cur.load(Relaxed) {
                reused.fetch_add(1, Relaxed);
            }
            must(
                w,
                &format!(
                    "assign(new eventfd, possibly on the recycled fd number) in round {round}"
                ),
                c1.assign(&e2, G),
            )?;
            assigned1.fetch_add(1, Relaxed);
            wait_nr(
                env,
                &c1,
                1,
                &format!(
                    "in round {round}: the closed eventfd's irqfd gone (deassign or \
                     EPOLLHUP), the new one bound"
                ),
            )?;
            must(w, "deassign(new eventfd)", c1.deassign(&e2, G))?;
            expect_nr(&c1, 0, "after the deassign")?;
            must(
                w,
                "I3: assign(eventfd) right after its deassign returned",
                c1.assign(&e2, G),
            )?;
            assigned1.fetch_add(1, Relaxed);
            *lock(&holder) = Some(e2);
            Ok(())
        }),
        1 => rounds.racer(w, |w| {
            let e = to_close.take("eventfd to close")?;
            must(w, "close(bound eventfd)", sys::close(e))?;
            back.put(new_eventfd()?);
            Ok(())
        }),
        _ => rounds.racer(w, |w| {
            w.jitter(128);
            racy(
                w,
                "deassign(fd number being closed and recycled)",
                deassign_num(&c1, cur.load(Relaxed), G),
                &[libc::EBADF],
            )?;
            Ok(())
        }),
    });
    run.note(format!(
        "phase 1: fd number recycled in {} round(s)",
        reused.load(Relaxed)
    ));
    r?;
    if let Some(e) = lock(&holder).take() {
        ok(
            "deassign(eventfd) at the end of phase 1",
            c1.deassign(&e, G),
        )?;
    }
    expect_nr(&c1, 0, "after phase 1")?;

    // Phase 2.
    let ctxs = [(&c1, &assigned1), (&c2, &assigned2)];
    let cur = AtomicI32::new(-1);
    let b2 = run.budget(0.5);
    run.workers(&b2, 2, |w| match w.idx {
        0 => {
            w.each_round(|w, i| {
                let e = new_eventfd()?;
                cur.store(raw(&e), Relaxed);
                for (c, n) in ctxs {
                    let r1 = racy(
                        w,
                        "primary: assign(eventfd, gsi 1)",
                        c.assign(&e, G),
                        &[libc::EBUSY],
                    )?;
                    let r2 = racy(
                        w,
                        "primary: assign(same eventfd, gsi 2)",
                        c.assign(&e, G + 1),
                        &[libc::EBUSY],
                    )?;
                    ensure(!(r1 && r2), || {
                        "one eventfd bound twice (gsi 1 and gsi 2 of one context)".to_string()
                    })?;
                    n.fetch_add(u64::from(r1) + u64::from(r2), Relaxed);
                    must(w, "primary: deassign(eventfd, gsi 1)", c.deassign(&e, G))?;
                    must(
                        w,
                        "primary: deassign(eventfd, gsi 2)",
                        c.deassign(&e, G + 1),
                    )?;
                }
                if i.is_multiple_of(8) {
                    must_fail(
                        w,
                        "deassign(/dev/null)",
                        deassign_num(&c1, dn, G),
                        libc::EINVAL,
                    )?;
                    must_fail(w, "deassign(fd -1)", deassign_num(&c1, -1, G), libc::EBADF)?;
                    must(
                        w,
                        "deassign(eventfd never bound to gsi 4)",
                        c2.deassign(&e, G + 3),
                    )?;
                }
                must(w, "primary: close(eventfd)", sys::close(e))
            })?;
            b2.stop();
            Ok(())
        }
        _ => w.repeat(|w| {
            let n = cur.load(Relaxed);
            for (c, cnt) in ctxs {
                for _ in 0..2 {
                    if racy(
                        w,
                        "secondary: assign(the primary's fd number, gsi 3)",
                        assign_num(c, n, G + 2),
                        &[libc::EBUSY, libc::EBADF],
                    )? {
                        cnt.fetch_add(1, Relaxed);
                    }
                    racy(
                        w,
                        "secondary: deassign(the primary's fd number, gsi 3)",
                        deassign_num(c, n, G + 2),
                        &[libc::EBADF],
                    )?;
                }
            }
            Ok(())
        }),
    })?;
    for (c, n) in ctxs {
        final_checks(run, c, None, &[], n.load(Relaxed))?;
        for g in G..G + 4 {
            let i = injected(c, g)?;
            ensure(i == 0, || {
                format!("gsi {g}: {i} injection(s), but no eventfd was ever signalled")
            })?;
        }
    }
    Ok(())
}
