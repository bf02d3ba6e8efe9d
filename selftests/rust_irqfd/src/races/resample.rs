// SPDX-License-Identifier: GPL-2.0
//! Resample irqfds (R19, R20): a wakeup that re-signals an eventfd (a
//! resamplefd that is another irqfd's eventfd, or its own), and the shared
//! resampler of a line joined, left, emptied and made again while ACKs
//! walk it. Only an ACK signals a resamplefd, once per resample irqfd of
//! the line; the level accounting adds up.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::calls::{must, pause};
use super::oracle::{final_checks, injected, reader, wait_nr, Acct, Kind, I1_WINDOW};
use super::G;
use crate::dev::Ctx;
use crate::harness::{ensure, new_eventfd, ok, stats, take_count, wait_until, TestResult};
use crate::stress::{flush_cleanup, lock, Run, Tally, Worker};
use crate::sys;

/// One ACK of `gsi`: it must succeed and signal at most `max()`
/// resamplefds (`max` is evaluated after the call, so that a bound that
/// only grows covers every irqfd the ACK could have seen).
fn ack_once(
    w: &mut Worker<'_>,
    ctx: &Ctx,
    gsi: u32,
    max: impl Fn() -> u64,
    what: &str,
) -> Result<u32, String> {
    w.op();
    let n = ctx
        .ack(gsi)
        .map_err(|e| format!("ACK(gsi {gsi}) {what}: expected a count, got {e}"))?;
    let max = max();
    ensure(u64::from(n) <= max, || {
        format!(
            "ACK(gsi {gsi}) {what} signalled {n} resamplefds, but at most {max} resample \
             irqfd(s) can be on the gsi"
        )
    })?;
    Ok(n)
}

/// R19: a wakeup that re-signals an eventfd. Three resample irqfds:
/// A -> gsi 1 with resamplefd B and B -> gsi 2 with resamplefd A (a cross
/// pair: an ACK of either line injects into the other through the other's
/// irqfd), and C -> gsi 3 with resamplefd C itself (an ACK injects into
/// the line it deasserted). A prelude writes each eventfd twice, so that a
/// level injection meets an already asserted line, and asserts that it
/// only coalesces: nothing may signal a resamplefd but an ACK (a wakeup
/// that does recurses into an eventfd's wait-queue lock: the eventfd core
/// WARNs, or, with `deferred_only`, the ping-pong shows as injections no
/// write or ACK made). Then three writers write A, B and C in bursts (most
/// writes hit an asserted line), two threads ACK the three lines and a
/// reader drains. Asserts: every ACK signals 0 or 1 resamplefd, and `acks`
/// of each gsi is the number of ACKs that signalled; on the fast path each
/// gsi's injections are exactly its eventfd's writes plus the ACK signals
/// sent to that eventfd (so too with `deferred_only` where the module counts
/// every signal; at most that where signals may merge); `raised <=
/// acks + 1` per gsi (only a deasserted line raises); every record is
/// LEVEL; after the race an ACK still re-injects through C and through the
/// pair; the last deassign deasserts each line; one shutdown per irqfd;
/// level accounting. A hang here is the recursion deadlocking.
pub(super) fn r19(run: &Run) -> TestResult {
    let env = run.env;
    let ctx = env.open()?;
    let (g1, g2, g3) = (G, G + 1, G + 2);
    let gsis = [g1, g2, g3];
    let (a, b, c) = (new_eventfd()?, new_eventfd()?, new_eventfd()?);
    ok(
        "assign(A, gsi 1, RESAMPLE, resamplefd B)",
        ctx.assign_resample(&a, g1, &b),
    )?;
    ok(
        "assign(B, gsi 2, RESAMPLE, resamplefd A)",
        ctx.assign_resample(&b, g2, &a),
    )?;
    ok(
        "assign(C, gsi 3, RESAMPLE, resamplefd C)",
        ctx.assign_resample(&c, g3, &c),
    )?;
    let acct = Mutex::new(
        Acct::new(env.nr_gsis())
            .kind(g1, Kind::level())
            .kind(g2, Kind::level())
            .kind(g3, Kind::level()),
    );
    // The eventfd each gsi's irqfd is bound to, and the gsi whose ACK
    // signals that eventfd (its resamplefd's owner).
    let efds: [&OwnedFd; 3] = [&a, &b, &c];
    let fed_by_ack_of = [1usize, 0, 2];
    let writes: [AtomicU64; 3] = Default::default();
    let signalled: [AtomicU64; 3] = Default::default();

    // Prelude: two writes each, the second into the asserted line.
    let mut t = Tally::default();
    for i in [0usize, 2, 1] {
        let g = gsis[i];
        let before: Vec<u64> = gsis
            .iter()
            .map(|&x| injected(&ctx, x))
            .collect::<Result<_, _>>()?;
        for k in 1..=2u64 {
            t.ops += 1;
            ok(
                "write(resample eventfd)",
                sys::eventfd_signal(efds[i].as_fd(), 1),
            )?;
            writes[i].fetch_add(1, Relaxed);
            wait_until(
                env,
                &format!("injection {k} of the prelude into gsi {g}"),
                || {
                    let n = injected(&ctx, g)?;
                    Ok((n >= before[i] + k, format!("injected {n}")))
                },
            )?;
        }
        std::thread::sleep(I1_WINDOW);
        for (j, &x) in gsis.iter().enumerate() {
            let want = before[j] + if j == i { 2 } else { 0 };
            let n = injected(&ctx, x)?;
            ensure(n == want, || {
                format!(
                    "R19: two writes to the eventfd of gsi {g} (the second into its asserted \
                     line), no ACK: gsi {x} injected {} -> {n}, expected {want} (something \
                     signalled a resamplefd outside an ACK: from the wakeup?)",
                    before[j]
                )
            })?;
        }
        let s = stats(&ctx, g)?;
        ensure(s.asserted == 1 && s.coalesced >= 1 && s.acks == 0, || {
            format!("R19: gsi {g} after two level injections without an ACK: {s:?}")
        })?;
    }
    run.add(&t);

    let b_ = run.budget(1.0);
    run.workers(&b_, 6, |w| match w.idx {
        0..=2 => {
            let i = w.idx;
            w.repeat(|w| {
                for _ in 0..=w.rand(3) {
                    must(
                        w,
                        "write(resample eventfd)",
                        sys::eventfd_signal(efds[i].as_fd(), 1),
                    )?;
                    writes[i].fetch_add(1, Relaxed);
                }
                pause(Duration::from_micros(w.rand(50)));
                Ok(())
            })
        }
        3 | 4 => {
            let mut k = w.idx;
            w.repeat(|w| {
                for j in 0..3 {
                    let i = (k + j) % 3;
                    let n = ack_once(w, &ctx, gsis[i], || 1, "(one resample irqfd per gsi)")?;
                    signalled[i].fetch_add(u64::from(n), Relaxed);
                }
                k += 1;
                pause(Duration::from_micros(w.rand(40)));
                Ok(())
            })
        }
        _ => reader(w, &ctx, &acct),
    })?;

    // After the race, an ACK still re-injects: through C into its own
    // line, through B into gsi 2 (A's resamplefd).
    let mut t = Tally::default();
    for (i, via) in [(2usize, "C itself"), (0, "B, the irqfd of gsi 2")] {
        let g = gsis[i];
        let target = fed_by_ack_of.iter().position(|&x| x == i).unwrap_or(i);
        let tg = gsis[target];
        if stats(&ctx, g)?.asserted == 0 {
            let before = injected(&ctx, g)?;
            t.ops += 1;
            ok(
                "write(resample eventfd)",
                sys::eventfd_signal(efds[i].as_fd(), 1),
            )?;
            writes[i].fetch_add(1, Relaxed);
            wait_until(env, &format!("gsi {g} asserted again"), || {
                let s = stats(&ctx, g)?;
                Ok((s.injected > before && s.asserted == 1, format!("{s:?}")))
            })?;
        }
        let before = injected(&ctx, tg)?;
        t.ops += 1;
        let n = ok(&format!("ACK(gsi {g}) after the race"), ctx.ack(g))?;
        ensure(n == 1, || {
            format!("ACK(gsi {g}) of the asserted line after the race signalled {n}, expected 1")
        })?;
        signalled[i].fetch_add(1, Relaxed);
        wait_until(
            env,
            &format!("the ACK of gsi {g} to inject into gsi {tg} through {via}"),
            || {
                let s = stats(&ctx, tg)?;
                Ok((s.injected > before && s.asserted == 1, format!("{s:?}")))
            },
        )?;
    }
    run.add(&t);

    // The deassigns flush queued injections; the last resample irqfd of
    // each gsi leaving deasserts it.
    for (e, g) in efds.iter().zip(gsis) {
        ok(&format!("deassign(gsi {g})"), ctx.deassign(e, g))?;
    }
    let mut coalesced = 0;
    for (i, &g) in gsis.iter().enumerate() {
        let s = stats(&ctx, g)?;
        coalesced += s.coalesced;
        let sig = signalled[i].load(Relaxed);
        ensure(s.acks == sig, || {
            format!(
                "gsi {g}: acks is {}, but {sig} ACKs signalled its one resample irqfd ({s:?})",
                s.acks
            )
        })?;
        ensure(s.raised <= s.acks + 1, || {
            format!(
                "gsi {g}: {} records raised with only {} ACKs: a level line raises once per \
                 assertion ({s:?})",
                s.raised, s.acks
            )
        })?;
        ensure(s.asserted == 0, || {
            format!("gsi {g} still asserted after its last resample irqfd was deassigned: {s:?}")
        })?;
        let want = writes[i].load(Relaxed) + signalled[fed_by_ack_of[i]].load(Relaxed);
        if !env.counts_every_signal() {
            ensure(s.injected >= 1 && s.injected <= want, || {
                format!(
                    "gsi {g}: {} injections for {want} signals (writes and ACK signals; \
                     deferred_only, where signals may merge)",
                    s.injected
                )
            })?;
        } else {
            ensure(s.injected == want, || {
                format!(
                    "gsi {g}: {} injections, expected exactly {want}: {} writes to its eventfd \
                     + {} ACK signals of it (more: a resamplefd signalled outside an ACK; \
                     fewer: a signal dropped, as the eventfd core does on recursion)",
                    s.injected,
                    writes[i].load(Relaxed),
                    signalled[fed_by_ack_of[i]].load(Relaxed)
                )
            })?;
        }
    }
    run.note(format!(
        "writes A/B/C {}/{}/{}, ACK signals of gsi 1/2/3 {}/{}/{}, {coalesced} injections \
         coalesced (into an asserted line or a pending record)",
        writes[0].load(Relaxed),
        writes[1].load(Relaxed),
        writes[2].load(Relaxed),
        signalled[0].load(Relaxed),
        signalled[1].load(Relaxed),
        signalled[2].load(Relaxed),
    ));
    final_checks(run, &ctx, Some(&acct), &gsis, 3)
}

/// How long R20's P sleeps in poll(2) for its resamplefd before it looks
/// at the budget and reads records again.
const P_POLL: Duration = Duration::from_millis(5);

/// How long R20's churn on P's line waits, at most, in a quiet round, for
/// the line to be up before it takes its irqfd down.
const P_UP_WAIT: Duration = Duration::from_millis(500);

/// R20: resampler races. gsi 1: two threads each bind a resample irqfd with
/// a fresh resamplefd, close that resamplefd at once (the irqfd then holds
/// the last reference), write the eventfd (asserting the shared line), and
/// take the irqfd down again, by deassign or by closing the eventfd (an
/// EPOLLHUP shutdown), so that the GSI's shared resampler is joined, left,
/// emptied and made again concurrently (R20b). gsi 2: a third such thread
/// (which never writes its eventfd) joins and leaves the resampler of a
/// resample irqfd P bound the whole time, whose device side runs as VFIO
/// drives INTx: it writes P's eventfd (asserting the line), then waits,
/// masked, for P's resamplefd before it writes again; in every other pair
/// of its rounds (quiet ones, the first two among them) the thread waits
/// for P's line to be up, and no ACK of gsi 2 runs until its irqfd has
/// left, so that a non-last irqfd certainly leaves from under the asserted
/// line. Two threads ACK both
/// lines all along: an ACK walks the resampler while those shutdowns run
/// (R20a: the resamplefds, closed by userspace, live as long as the
/// irqfds' references; one put too early is a use-after-free for KASAN).
/// Asserts: every call succeeds; an ACK never signals more resamplefds than
/// irqfds were ever bound; P's resamplefd got exactly one signal per ACK
/// of gsi 2 that signalled, and `acks` of gsi 2 is that number. Liveness
/// of gsi 2, exact since only P asserts it: P's resamplefd is signalled
/// once per write (each write injects once, asserting the line, and one
/// ACK ends it), so after the race the line is asserted exactly if P's
/// last write is still unanswered (a deassert by a resample irqfd joining
/// or leaving while P stayed bound loses P's interrupt for good: the line
/// is down, and no ACK signals P again), and an ACK then (after one more
/// write if P was answered) signals P exactly once. Once every irqfd is
/// gone both lines are deasserted; a new resample irqfd on each line is
/// then alone in its resampler (an ACK signals exactly 1); one shutdown
/// per irqfd; level accounting.
pub(super) fn r20(run: &Run) -> TestResult {
    let env = run.env;
    let ctx = env.open()?;
    let (g, gp) = (G, G + 1);
    let ep = new_eventfd()?;
    let rp = new_eventfd()?;
    ok(
        "assign(P, gsi 2, RESAMPLE, its resamplefd)",
        ctx.assign_resample(&ep, gp, &rp),
    )?;
    let acct = Mutex::new(
        Acct::new(env.nr_gsis())
            .kind(g, Kind::level())
            .kind(gp, Kind::level()),
    );
    // Assigns started per line (P included): a bound for what an ACK signals.
    let started = [AtomicU64::new(0), AtomicU64::new(1)];
    let assigned = AtomicU64::new(1);
    let acked_p = AtomicU64::new(0);
    let acked_g = AtomicU64::new(0);
    let acks_g_calls = AtomicU64::new(0);
    let hups = AtomicU64::new(0);
    // P's writes, and the signals its device side took from its resamplefd.
    let p_writes = AtomicU64::new(0);
    let p_taken = AtomicU64::new(0);
    let gp_quiet = AtomicBool::new(false);
    let b = run.budget(1.0);
    run.workers(&b, 6, |w| match w.idx {
        0..=2 => {
            // On gsi 2 only P asserts the line: the churn there only joins
            // and leaves P's resampler.
            let (gsi, li) = if w.idx == 2 { (gp, 1) } else { (g, 0) };
            let mut round = w.idx as u64;
            w.repeat(|w| {
                let e = new_eventfd()?;
                let r = new_eventfd()?;
                started[li].fetch_add(1, Relaxed);
                must(
                    w,
                    "assign(fresh eventfd, RESAMPLE, fresh resamplefd) to a shared resampler",
                    ctx.assign_resample(&e, gsi, &r),
                )?;
                assigned.fetch_add(1, Relaxed);
                must(w, "close(resamplefd) right after the assign", sys::close(r))?;
                // Every other pair of rounds on gsi 2 is quiet: no ACK of
                // it from when this thread starts waiting for P's line to
                // be up until its irqfd has left, so that the irqfd leaves
                // from under the asserted line, which must stay up.
                let quiet = gsi == gp && (round / 2) % 2 == 1;
                if gsi == g {
                    must(
                        w,
                        "write(resample eventfd)",
                        sys::eventfd_signal(e.as_fd(), 1),
                    )?;
                } else if quiet {
                    gp_quiet.store(true, Relaxed);
                    let until = Instant::now() + P_UP_WAIT;
                    while stats(&ctx, gp)?.asserted == 0 && Instant::now() < until && !w.over() {
                        pause(Duration::from_micros(200));
                    }
                }
                w.jitter(1000);
                if round.is_multiple_of(2) {
                    must(
                        w,
                        "deassign(resample irqfd) while ACKs walk its resampler",
                        ctx.deassign(&e, gsi),
                    )?;
                    must(w, "close(eventfd)", sys::close(e))?;
                } else {
                    must(
                        w,
                        "close(eventfd): an EPOLLHUP shutdown while ACKs walk its resampler",
                        sys::close(e),
                    )?;
                    hups.fetch_add(1, Relaxed);
                }
                if quiet {
                    // The EPOLLHUP shutdown is done once the queue is flushed.
                    flush_cleanup(&ctx)?;
                    gp_quiet.store(false, Relaxed);
                }
                round += 1;
                Ok(())
            })
        }
        3 | 4 => w.repeat(|w| {
            // An irqfd in the resampler had started its assign before
            // the ACK: the bound is read after the call.
            let n = ack_once(
                w,
                &ctx,
                g,
                || started[0].load(Relaxed),
                "racing resample irqfd shutdowns",
            )?;
            acks_g_calls.fetch_add(1, Relaxed);
            if n > 0 {
                acked_g.fetch_add(1, Relaxed);
            }
            if !gp_quiet.load(Relaxed) {
                let n = ack_once(
                    w,
                    &ctx,
                    gp,
                    || started[1].load(Relaxed),
                    "racing resample irqfd shutdowns, P bound",
                )?;
                if n > 0 {
                    acked_p.fetch_add(1, Relaxed);
                }
            }
            pause(Duration::from_micros(w.rand(20)));
            Ok(())
        }),
        _ => {
            // P's device side: write, then wait for the resample (asleep in
            // poll(2), so that it writes again as soon as it comes, and the
            // line is asserted most of the time).
            let mut answered = true;
            w.repeat(|w| {
                if answered {
                    must(w, "write(P's eventfd)", sys::eventfd_signal(ep.as_fd(), 1))?;
                    p_writes.fetch_add(1, Relaxed);
                    answered = false;
                } else {
                    ok(
                        "poll(P's resamplefd)",
                        sys::wait_readable(rp.as_fd(), P_POLL),
                    )?;
                    let n = take_count(&rp, "P's resamplefd")?;
                    ensure(n <= 1, || {
                        format!(
                            "P's resamplefd got {n} signals for one write of P's eventfd (only \
                             P asserts gsi {gp}: one ACK per write ends it)"
                        )
                    })?;
                    p_taken.fetch_add(n, Relaxed);
                    answered = n == 1;
                }
                lock(&acct).read_once(&ctx, &mut w.tally)?;
                Ok(())
            })
        }
    })?;

    // P: one signal per ACK of its line that signalled.
    let p_sig = p_taken.load(Relaxed) + take_count(&rp, "P's resamplefd")?;
    let want = acked_p.load(Relaxed);
    ensure(p_sig == want, || {
        format!(
            "P's resamplefd got {p_sig} signals for {want} ACKs of gsi {gp} that signalled \
             (P was bound throughout: each such ACK signals it exactly once)"
        )
    })?;
    let s = stats(&ctx, gp)?;
    ensure(s.acks == want, || {
        format!(
            "gsi {gp}: acks is {}, but {want} ACKs signalled (P bound throughout) ({s:?})",
            s.acks
        )
    })?;
    let s = stats(&ctx, g)?;
    let (ag, calls) = (acked_g.load(Relaxed), acks_g_calls.load(Relaxed));
    ensure(s.acks >= ag && s.acks <= calls, || {
        format!(
            "gsi {g}: acks is {}, expected between the {ag} ACKs that signalled and the {calls} \
             ACK calls ({s:?})",
            s.acks
        )
    })?;
    // Every churned irqfd is gone (EPOLLHUP shutdowns included), P is left.
    wait_nr(env, &ctx, 1, "after the race (P left)")?;
    flush_cleanup(&ctx)?;
    p_liveness(run, &ctx, gp, &ep, &rp, p_writes.load(Relaxed), p_sig)?;
    ok("deassign(P)", ctx.deassign(&ep, gp))?;
    wait_nr(env, &ctx, 0, "after the race (every resample irqfd gone)")?;
    flush_cleanup(&ctx)?;
    for x in [g, gp] {
        let s = stats(&ctx, x)?;
        ensure(s.asserted == 0, || {
            format!(
                "gsi {x} still asserted after its last resample irqfd left (deassign or \
                 EPOLLHUP): {s:?}"
            )
        })?;
    }

    // Each resampler is clean: a new resample irqfd is alone in it.
    for x in [g, gp] {
        let e = new_eventfd()?;
        let r = new_eventfd()?;
        ok(
            &format!("assign(gsi {x}, RESAMPLE) after the race"),
            ctx.assign_resample(&e, x, &r),
        )?;
        assigned.fetch_add(1, Relaxed);
        let before = injected(&ctx, x)?;
        ok("write(resample eventfd)", sys::eventfd_signal(e.as_fd(), 1))?;
        wait_until(env, &format!("gsi {x} asserted"), || {
            let s = stats(&ctx, x)?;
            Ok((s.injected > before && s.asserted == 1, format!("{s:?}")))
        })?;
        let n = ok(&format!("ACK(gsi {x}) after the race"), ctx.ack(x))?;
        ensure(n == 1, || {
            format!(
                "ACK(gsi {x}) with one resample irqfd bound, after every other one was shut \
                 down, signalled {n} resamplefds (stale resampler entries?)"
            )
        })?;
        let got = take_count(&r, "the new resamplefd")?;
        ensure(got == 1, || {
            format!("the new resamplefd of gsi {x} got {got} signals from one ACK")
        })?;
        ok(&format!("deassign(gsi {x})"), ctx.deassign(&e, x))?;
    }
    run.note(format!(
        "{} resample irqfds bound, {} of them shut down by EPOLLHUP; ACKs that signalled: gsi \
         {g} {ag} of {calls}, gsi {gp} {}",
        assigned.load(Relaxed),
        hups.load(Relaxed),
        acked_p.load(Relaxed)
    ));
    final_checks(run, &ctx, Some(&acct), &[g, gp], assigned.load(Relaxed))
}

/// R20's liveness of gsi `gp`, which only P (eventfd `ep`, resamplefd `rp`)
/// asserts, P bound throughout and alone now: P wrote `writes` times and
/// its resamplefd got `signalled` signals. Each write injects once (the
/// next one waits for the resample, so none merge), into a deasserted line,
/// and only an ACK, which signals P, may deassert it while P is bound. So P
/// was answered for every write but perhaps the last, the line is asserted
/// exactly if that one is unanswered, and an ACK of it (of a new write if
/// P was answered) signals P exactly once.
fn p_liveness(
    run: &Run,
    ctx: &Ctx,
    gp: u32,
    ep: &OwnedFd,
    rp: &OwnedFd,
    writes: u64,
    signalled: u64,
) -> TestResult {
    let env = run.env;
    ensure(signalled == writes || signalled + 1 == writes, || {
        format!(
            "P's resamplefd got {signalled} signals for {writes} writes of P's eventfd (one \
             per write, but for the last one if it is unanswered)"
        )
    })?;
    let unanswered = writes - signalled;
    wait_until(
        env,
        &format!("P's {writes} writes injected into gsi {gp}"),
        || {
            let s = stats(ctx, gp)?;
            Ok((s.injected >= writes, format!("{s:?}")))
        },
    )?;
    let s = stats(ctx, gp)?;
    ensure(s.injected == writes, || {
        format!(
            "gsi {gp}: {} injections for P's {writes} writes, each waiting for the resample of \
             the one before ({s:?})",
            s.injected
        )
    })?;
    ensure(u64::from(s.asserted) == unanswered, || {
        format!(
            "gsi {gp}: asserted {}, but {unanswered} of P's writes unanswered by an ACK (P bound \
             throughout): {} ({s:?})",
            s.asserted,
            if unanswered == 1 {
                "the line was deasserted without an ACK, by a resample irqfd joining or leaving \
                 the resampler: P's interrupt is lost, no ACK will signal its resamplefd again"
            } else {
                "asserted with no write to answer"
            }
        )
    })?;
    if unanswered == 0 {
        ok(
            "write(P's eventfd) after the race",
            sys::eventfd_signal(ep.as_fd(), 1),
        )?;
        wait_until(env, &format!("gsi {gp} asserted by P"), || {
            let s = stats(ctx, gp)?;
            Ok((s.injected > writes && s.asserted == 1, format!("{s:?}")))
        })?;
    }
    let n = ok(&format!("ACK(gsi {gp}) after the race"), ctx.ack(gp))?;
    ensure(n == 1, || {
        format!(
            "ACK(gsi {gp}) of P's asserted line, P alone bound after the race, signalled {n} \
             resamplefds, expected 1"
        )
    })?;
    let got = take_count(rp, "P's resamplefd")?;
    ensure(got == 1, || {
        format!("P's resamplefd got {got} signals from the ACK after the race, expected 1")
    })?;
    run.note(format!(
        "P: {writes} writes, {signalled} answered during the race; the last one {}",
        if unanswered == 1 {
            "unanswered, held by the line"
        } else {
            "answered"
        }
    ));
    Ok(())
}
