// SPDX-License-Identifier: GPL-2.0
//! Assign against assign and deassign (R6, R10, R23): an assign racing
//! the deassign of its eventfd, three assigns of one eventfd at once (in
//! one context, another, and the other module: exactly one wins), and
//! every kind of refused assign fired around a bound, flooded eventfd.
//! At most one irqfd per eventfd, and a refused assign leaves nothing.

use std::os::fd::{AsFd, RawFd};
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::Duration;

use super::calls::{assign_num, flood, must, must_fail, open_devnull, pause, peer_ctx, racy, raw};
use super::oracle::{
    expect_nr, final_checks, i1, i5, reader, reader_many, wait_nr, Acct, I1_WINDOW,
};
use super::G;
use crate::abi::{RustIrqfd, FLAG_DEASSIGN, FLAG_RESAMPLE};
use crate::dev::{Ctx, Kind};
use crate::harness::{counts_irqfds, ctx_nr_gsis, ensure, new_eventfd, nr_irqfds, ok, TestResult};
use crate::stress::{device_name, lock, Run, Worker};
use crate::sys::{self, Errno};

/// R6: assign vs deassign of one eventfd, free-running (no barrier), with
/// a writer keeping events pending at assign time (R8b). Asserts: assign
/// succeeds or gives EBUSY, deassign always returns 0, never more than one
/// irqfd for the eventfd; at the end one deassign leaves none and a
/// re-assign succeeds at once (I3); one shutdown per irqfd; accounting.
pub(super) fn r6(run: &Run) -> TestResult {
    let env = run.env;
    let ctx = env.open()?;
    let e = new_eventfd()?;
    let acct = Mutex::new(Acct::new(env.nr_gsis()));
    let b = run.budget(1.0);
    let assigned = AtomicU64::new(0);
    run.workers(&b, 4, |w| match w.idx {
        0 => w.repeat(|w| {
            if racy(
                w,
                "assign(eventfd) racing its deassign",
                ctx.assign(&e, G),
                &[libc::EBUSY],
            )? {
                assigned.fetch_add(1, Relaxed);
            }
            Ok(())
        }),
        1 => {
            let mut i = 0u64;
            w.repeat(|w| {
                must(
                    w,
                    "deassign(eventfd) racing its assign",
                    ctx.deassign(&e, G),
                )?;
                i += 1;
                if i.is_multiple_of(16) && counts_irqfds(&ctx) {
                    let n = nr_irqfds(&ctx)?;
                    ensure(n <= 1, || {
                        format!("{n} irqfds active for one eventfd (at most one may be bound)")
                    })?;
                }
                Ok(())
            })
        }
        2 => w.repeat(|w| {
            must(w, "write(eventfd, 1)", sys::eventfd_signal(e.as_fd(), 1))?;
            pause(Duration::from_micros(30));
            Ok(())
        }),
        _ => reader(w, &ctx, &acct),
    })?;
    let b = run.budget(1.0);
    let mut w = Worker::new(0, &b);
    let r = (|| {
        must(
            &mut w,
            "deassign(eventfd) after the race",
            ctx.deassign(&e, G),
        )?;
        expect_nr(&ctx, 0, "after the final deassign")?;
        must(
            &mut w,
            "I3: assign(eventfd) right after the final deassign returned",
            ctx.assign(&e, G),
        )?;
        assigned.fetch_add(1, Relaxed);
        expect_nr(&ctx, 1, "after the re-assign")?;
        must(&mut w, "deassign(eventfd)", ctx.deassign(&e, G))?;
        expect_nr(&ctx, 0, "after the last deassign")
    })();
    run.add(&w.tally);
    r?;
    final_checks(run, &ctx, Some(&acct), &[G], assigned.load(Relaxed))
}

/// R10: duplicate assigns. Each round three threads assign one eventfd at
/// once: to gsi 1 and gsi 2 of context A, and to gsi 1 of context B (of
/// the other module when its device is present, else of this one).
/// Asserts: exactly one wins, the others get EBUSY (none winning means the
/// eventfd stayed bound after the last round's deassigns: I3); the
/// winner's context alone has one irqfd; the winner delivers (I5);
/// after deassigning all three targets nothing is bound and a signal
/// injects nowhere (I1, with a 20 ms window every 4th round); one shutdown
/// per win; accounting in both contexts.
pub(super) fn r10(run: &Run) -> TestResult {
    let env = run.env;
    let a = env.open()?;
    let (bctx, bname) = match peer_ctx(env)? {
        Some(p) => p,
        None => (env.open()?, format!("another {} context", device_name(env))),
    };
    let e = new_eventfd()?;
    let acct_a = Mutex::new(Acct::new(env.nr_gsis()));
    let b_gsis = ctx_nr_gsis(&bctx)?;
    let acct_b = Mutex::new(Acct::new(b_gsis));
    let targets: [(&Ctx, u32, &str); 3] = [
        (&a, G, "A gsi 1"),
        (&a, G + 1, "A gsi 2"),
        (&bctx, G, "B gsi 1"),
    ];
    let results: [AtomicI32; 3] = Default::default();
    let wins = [AtomicU64::new(0), AtomicU64::new(0)];
    let b = run.budget(1.0);
    let rounds = run.rounds(&b, 3);
    run.round_workers(&rounds, 4, |w| match w.idx {
        0..=2 => {
            // The leader's assign races the other two like theirs.
            let i = w.idx;
            let (c, g, _) = targets[i];
            let assign = |w: &mut Worker<'_>| -> TestResult {
                w.jitter(32);
                w.op();
                let r = match c.assign(&e, g) {
                    Ok(()) => 0,
                    Err(er) if er.0 == libc::EBUSY => {
                        w.tally.error(er);
                        libc::EBUSY
                    }
                    Err(er) => {
                        return Err(format!(
                            "assign(eventfd) to {}: expected success or EBUSY, got {er}",
                            targets[i].2
                        ))
                    }
                };
                results[i].store(r, Relaxed);
                Ok(())
            };
            if i > 0 {
                return rounds.racer(w, assign);
            }
            rounds.lead(w, |w, round, race| {
                race.join(w, assign)?;
                let r: Vec<i32> = results.iter().map(|r| r.load(Relaxed)).collect();
                let winners: Vec<usize> = (0..3).filter(|&j| r[j] == 0).collect();
                let desc = (0..3)
                    .map(|j| {
                        format!(
                            "{}: {}",
                            targets[j].2,
                            if r[j] == 0 {
                                "ok".into()
                            } else {
                                Errno(r[j]).name()
                            }
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(", ");
                ensure(winners.len() == 1, || {
                    format!(
                        "{} of 3 concurrent assigns of one eventfd succeeded in round {round} \
                             ({desc}; B is {bname}); exactly one may{}",
                        winners.len(),
                        if winners.is_empty() && round > 0 {
                            " (none: I3 broken, the eventfd was still bound although every \
                                 deassign of the previous round had returned)"
                        } else {
                            ""
                        }
                    )
                })?;
                let j = winners[0];
                let (wc, wg, _) = targets[j];
                wins[usize::from(j == 2)].fetch_add(1, Relaxed);
                expect_nr(&a, usize::from(j < 2), "of A after the concurrent assigns")?;
                expect_nr(
                    &bctx,
                    usize::from(j == 2),
                    "of B after the concurrent assigns",
                )?;
                i5(
                    env,
                    wc,
                    wg,
                    e.as_fd(),
                    &format!("on the winner {}", targets[j].2),
                )?;
                for (c, g, name) in targets {
                    must(
                        w,
                        &format!("deassign(eventfd) from {name}"),
                        c.deassign(&e, g),
                    )?;
                }
                expect_nr(&a, 0, "of A after the deassigns")?;
                expect_nr(&bctx, 0, "of B after the deassigns")?;
                let window = if round.is_multiple_of(4) {
                    I1_WINDOW
                } else {
                    Duration::ZERO
                };
                i1(
                    &targets.map(|(c, g, _)| (c, g)),
                    e.as_fd(),
                    window,
                    &format!("(round {round}, after deassigning all three targets)"),
                )?;
                // Our I1 signal is still in the counter: consume it.
                ok("read(eventfd)", sys::eventfd_read(e.as_fd()))?;
                Ok(())
            })
        }
        _ => reader_many(w, &[(&a, &acct_a), (&bctx, &acct_b)]),
    })?;
    final_checks(run, &a, Some(&acct_a), &[G, G + 1], wins[0].load(Relaxed))?;
    final_checks(run, &bctx, Some(&acct_b), &[G], wins[1].load(Relaxed))
}

/// R23: assign error paths under concurrency. An eventfd stays bound to
/// gsi 1 the whole time and is flooded with writes, while one thread
/// fires every kind of refused assign at it and around it (EBUSY in this
/// and another context, and with RESAMPLE and a valid resamplefd; EINVAL
/// for a gsi out of range, bad flags, non-zero pad, a pipe, /dev/null, the
/// context itself, a pipe as resamplefd; EBADF for -1 and an unused number
/// as fd or resamplefd; deassigns of a pipe and of -1), and also
/// assigns fd numbers that a third thread keeps creating and closing.
/// Asserts the exact errno of each refused call, that the bound eventfd
/// keeps delivering (I5) and stays the only irqfd once the closes are
/// done, one shutdown per irqfd, and accounting; a refused assign that
/// left something hooked shows under the writes as a splat or a leak.
pub(super) fn r23(run: &Run) -> TestResult {
    let env = run.env;
    let c = env.open()?;
    let other = env.open()?;
    let e = new_eventfd()?;
    ok("assign(eventfd, gsi 1)", c.assign(&e, G))?;
    let (prd, _pwr) = ok("pipe2", sys::pipe())?;
    let devnull = open_devnull()?;
    // A resamplefd for the refused RESAMPLE assigns (never signalled).
    let rfd = new_eventfd()?;
    let (en, pn, dn, cn, rn) = (raw(&e), raw(&prd), raw(&devnull), raw(&c), raw(&rfd));
    let nr = env.nr_gsis();
    // KVM checks neither the GSI range (an irqfd on a GSI without a route
    // injects nothing) nor the pad: there the eventfd is just busy.
    let unchecked_errno = match c.kind() {
        Kind::Module => libc::EINVAL,
        Kind::Kvm => libc::EBUSY,
    };
    let acct = Mutex::new(Acct::new(nr));
    let b = run.budget(1.0);
    let published = AtomicU64::new(u64::MAX);
    let f_assigned = AtomicU64::new(0);
    let pack = |fd: RawFd, gen: u64| (gen << 32) | u64::from(fd as u32);
    run.workers(&b, 4, |w| match w.idx {
        0 => w.each_round(|w, i| {
            i5(
                env,
                &c,
                G,
                e.as_fd(),
                &format!("(check {i}, refused assigns around it)"),
            )?;
            lock(&acct).read_once(&c, &mut w.tally)?;
            std::thread::sleep(Duration::from_millis(1));
            Ok(())
        }),
        1 => {
            let mut seen = u64::MAX;
            let req = |fd: RawFd, gsi: u32, flags: u32| RustIrqfd {
                fd: fd as u32,
                gsi,
                flags,
                ..Default::default()
            };
            let mut padded = req(en, G, 0);
            padded.pad[5] = 1;
            w.repeat(|w| {
                let cases: [(&str, &Ctx, RustIrqfd, i32); 15] = [
                    (
                        "assign(bound eventfd, gsi 2)",
                        &c,
                        req(en, G + 1, 0),
                        libc::EBUSY,
                    ),
                    (
                        "assign(bound eventfd) in another context",
                        &other,
                        req(en, G, 0),
                        libc::EBUSY,
                    ),
                    (
                        "assign(eventfd, gsi nr_gsis)",
                        &c,
                        req(en, nr, 0),
                        unchecked_errno,
                    ),
                    (
                        "assign(bound eventfd, gsi 2, RESAMPLE, a valid resamplefd)",
                        &c,
                        RustIrqfd {
                            resamplefd: rn as u32,
                            ..req(en, G + 1, FLAG_RESAMPLE)
                        },
                        libc::EBUSY,
                    ),
                    (
                        "assign(bound eventfd, RESAMPLE, resamplefd a pipe)",
                        &c,
                        RustIrqfd {
                            resamplefd: pn as u32,
                            ..req(en, G, FLAG_RESAMPLE)
                        },
                        libc::EINVAL,
                    ),
                    (
                        "assign(bound eventfd, RESAMPLE, resamplefd -1)",
                        &c,
                        RustIrqfd {
                            resamplefd: u32::MAX,
                            ..req(en, G, FLAG_RESAMPLE)
                        },
                        libc::EBADF,
                    ),
                    (
                        "assign with flag bit 2",
                        &c,
                        req(en, G, 1 << 2),
                        libc::EINVAL,
                    ),
                    ("assign with a non-zero pad", &c, padded, unchecked_errno),
                    ("assign(fd -1)", &c, req(-1, G, 0), libc::EBADF),
                    (
                        "assign(fd 0x7fffffff)",
                        &c,
                        req(i32::MAX, G, 0),
                        libc::EBADF,
                    ),
                    ("assign(pipe)", &c, req(pn, G + 3, 0), libc::EINVAL),
                    ("assign(/dev/null)", &c, req(dn, G + 3, 0), libc::EINVAL),
                    (
                        "assign(the context itself)",
                        &c,
                        req(cn, G + 3, 0),
                        libc::EINVAL,
                    ),
                    (
                        "deassign(pipe)",
                        &c,
                        req(pn, G, FLAG_DEASSIGN),
                        libc::EINVAL,
                    ),
                    (
                        "deassign(fd -1)",
                        &c,
                        req(-1, G, FLAG_DEASSIGN),
                        libc::EBADF,
                    ),
                ];
                for (what, ctx, r, want) in cases {
                    must_fail(w, what, ctx.irqfd(&r), want)?;
                }
                let p = published.load(Relaxed);
                if p != u64::MAX && p != seen {
                    seen = p;
                    if racy(
                        w,
                        "assign(fd number being closed and recycled)",
                        assign_num(&c, (p & 0xffff_ffff) as u32 as RawFd, G + 2),
                        &[libc::EBADF, libc::EBUSY],
                    )? {
                        f_assigned.fetch_add(1, Relaxed);
                    }
                }
                Ok(())
            })
        }
        2 => {
            let mut gen = 0u64;
            w.repeat(|w| {
                let f = new_eventfd()?;
                published.store(pack(raw(&f), gen), Relaxed);
                gen += 1;
                pause(Duration::from_micros(w.rand(200)));
                must(w, "close(eventfd)", sys::close(f))?;
                Ok(())
            })
        }
        _ => flood(w, e.as_fd(), "write(bound eventfd) (flood)"),
    })?;
    wait_nr(
        env,
        &c,
        1,
        "once the racing eventfds are closed (the bound one only)",
    )?;
    expect_nr(
        &other,
        0,
        "of the other context (all its assigns were refused)",
    )?;
    ok("deassign(bound eventfd)", c.deassign(&e, G))?;
    final_checks(
        run,
        &c,
        Some(&acct),
        &[G, G + 2],
        1 + f_assigned.load(Relaxed),
    )
}
