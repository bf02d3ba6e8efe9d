// SPDX-License-Identifier: GPL-2.0
//! Injection against shutdown (R3, R8, R9, R22): signals racing the
//! deassign of their irqfd, events already pending at assign, the eventfd
//! counter drained by the wakeup, and an eventfd moving between targets
//! under a flood of writes. The oracles are I1 (nothing after a deassign
//! returned), I5 (a signal on a bound eventfd injects) and the delivery
//! accounting.

use std::os::fd::AsFd;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

use super::calls::{deassign_num, flood, must, peer_ctx, raw};
use super::oracle::{
    expect_nr, final_checks, i1, i5, injected, reader, reader_many, Acct, I1_WINDOW,
};
use super::G;
use crate::dev::Ctx;
use crate::harness::{ctx_nr_gsis, ensure, new_eventfd, ok, wait_until, TestResult};
use crate::stress::{fdinfo_field, Run};
use crate::sys;

/// R3: injection vs shutdown ordering. Two writers flood an eventfd while
/// the leader binds and unbinds it. Asserts I5 after each assign (a signal
/// of ours is followed by an injection), I1 after each deassign (20 ms of
/// flooding the unbound eventfd inject nothing), I3 (every re-assign
/// succeeds), writes always succeed, one shutdown per irqfd, accounting.
pub(super) fn r3(run: &Run) -> TestResult {
    let env = run.env;
    let ctx = env.open()?;
    let e = new_eventfd()?;
    let acct = Mutex::new(Acct::new(env.nr_gsis()));
    let b = run.budget(1.0);
    let assigned = AtomicU64::new(0);
    run.workers(&b, 4, |w| match w.idx {
        0 => {
            w.each_round(|w, round| {
                must(
                    w,
                    "I3: assign(eventfd, gsi 1) after its previous deassign returned",
                    ctx.assign(&e, G),
                )?;
                assigned.fetch_add(1, Relaxed);
                i5(
                    env,
                    &ctx,
                    G,
                    e.as_fd(),
                    &format!("(round {round}, writers flooding)"),
                )?;
                w.jitter(2000);
                must(w, "deassign(eventfd, gsi 1)", ctx.deassign(&e, G))?;
                i1(
                    &[(&ctx, G)],
                    e.as_fd(),
                    I1_WINDOW,
                    &format!("(round {round}, writers flooding)"),
                )?;
                Ok(())
            })?;
            b.stop();
            Ok(())
        }
        1 | 2 => flood(w, e.as_fd(), "write(eventfd, 1)"),
        _ => reader(w, &ctx, &acct),
    })?;
    final_checks(run, &ctx, Some(&acct), &[G], assigned.load(Relaxed))
}

/// R8: events pending at assign. Each round makes an eventfd with an event
/// already pending (initval 1; EFD_SEMAPHORE with a count of 2; a write of
/// 1), then assigns it while another thread deassigns it and a third
/// writes 0-2 more times. Asserts: all those calls succeed; after a final
/// deassign the GSI got at least one injection (the pending event is not
/// lost, I5) and at most one more than the writes; accounting.
pub(super) fn r8(run: &Run) -> TestResult {
    let env = run.env;
    let ctx = env.open()?;
    let acct = Mutex::new(Acct::new(env.nr_gsis()));
    let b = run.budget(1.0);
    let rounds = run.rounds(&b, 3);
    let cur = AtomicI32::new(-1);
    let writes = AtomicU64::new(0);
    let assigned = AtomicU64::new(0);
    run.round_workers(&rounds, 4, |w| match w.idx {
        0 => rounds.lead(w, |w, round, race| {
            let nb = libc::EFD_NONBLOCK;
            let (e, how) = match round % 3 {
                0 => (ok("eventfd(1)", sys::eventfd(1, nb))?, "eventfd(1)"),
                1 => {
                    let e = ok(
                        "eventfd(0, EFD_SEMAPHORE)",
                        sys::eventfd(0, nb | libc::EFD_SEMAPHORE),
                    )?;
                    ok("write(eventfd, 2)", sys::eventfd_signal(e.as_fd(), 2))?;
                    (e, "EFD_SEMAPHORE, count 2")
                }
                _ => {
                    let e = new_eventfd()?;
                    ok("write(eventfd, 1)", sys::eventfd_signal(e.as_fd(), 1))?;
                    (e, "written 1 before assign")
                }
            };
            let planned = w.rand(3);
            writes.store(planned, Relaxed);
            cur.store(raw(&e), Relaxed);
            let before = injected(&ctx, G)?;
            race.join(w, |w| {
                w.jitter(64);
                must(
                    w,
                    "assign(eventfd with an event pending)",
                    ctx.assign(&e, G),
                )?;
                assigned.fetch_add(1, Relaxed);
                Ok(())
            })?;
            must(w, "deassign(eventfd) after the race", ctx.deassign(&e, G))?;
            let after = injected(&ctx, G)?;
            let delta = after
                .checked_sub(before)
                .ok_or_else(|| format!("gsi {G} injected went backwards: {before} -> {after}"))?;
            ensure(delta >= 1, || {
                format!(
                    "I5 broken (R8a): the event pending at assign ({how}) was lost: no \
                     injection into gsi {G} (round {round}, {planned} concurrent writes)"
                )
            })?;
            ensure(delta <= 1 + planned, || {
                format!(
                    "{delta} injections for 1 pending event + {planned} writes ({how}, \
                     round {round})"
                )
            })?;
            expect_nr(&ctx, 0, "after the deassigns")?;
            Ok(())
        }),
        1 => rounds.racer(w, |w| {
            w.jitter(64);
            must(
                w,
                "deassign(eventfd) racing its assign",
                deassign_num(&ctx, cur.load(Relaxed), G),
            )
        }),
        2 => rounds.racer(w, |w| {
            let n = cur.load(Relaxed);
            for _ in 0..writes.load(Relaxed) {
                w.jitter(32);
                must(
                    w,
                    "write(eventfd, 1) racing its assign",
                    sys::eventfd_signal_raw(n, 1),
                )?;
            }
            Ok(())
        }),
        _ => reader(w, &ctx, &acct),
    })?;
    final_checks(run, &ctx, Some(&acct), &[G], assigned.load(Relaxed))
}

/// Two below `u64::MAX`, the most an eventfd counter can take.
const BIG: u64 = 0xffff_ffff_ffff_fffe;

/// R9: the eventfd counter is drained. A writer floods an eventfd that the
/// leader binds and unbinds; while bound, the leader writes 2^64-2 and
/// then 1: the second write succeeds only if the wakeup consumed the
/// counter. An EFD_SEMAPHORE eventfd bound and unbound with a count of 0
/// keeps a count of 0 (no underflow at unhook). Asserts those, the flood's
/// writes all succeed, I3, I5, accounting.
pub(super) fn r9(run: &Run) -> TestResult {
    let env = run.env;
    let ctx = env.open()?;
    let e = new_eventfd()?;
    let s = ok(
        "eventfd(0, EFD_SEMAPHORE)",
        sys::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_SEMAPHORE),
    )?;
    let acct = Mutex::new(Acct::new(env.nr_gsis()));
    let b = run.budget(1.0);
    let assigned = AtomicU64::new(0);
    // Each of our two writes is one wakeup, one injection; deferred_only
    // may merge them where the module does not count every signal.
    let k = env.least_injections(2);
    run.workers(&b, 3, |w| match w.idx {
        0 => {
            w.each_round(|w, round| {
                must(
                    w,
                    "I3: assign(eventfd) after its deassign returned",
                    ctx.assign(&e, G),
                )?;
                assigned.fetch_add(1, Relaxed);
                // What was written while unbound stays in the counter at
                // assign (only injected once); consume it.
                w.op();
                match sys::eventfd_read(e.as_fd()) {
                    Ok(_) => {}
                    Err(er) if er.0 == libc::EAGAIN => w.tally.error(er),
                    Err(er) => {
                        return Err(format!(
                            "read(eventfd): expected a count or EAGAIN, got {er}"
                        ))
                    }
                }
                let before = injected(&ctx, G)?;
                must(
                    w,
                    "R9b: write(bound eventfd, 0xfffffffffffffffe)",
                    sys::eventfd_signal(e.as_fd(), BIG),
                )?;
                must(
                    w,
                    "R9b: write(bound eventfd, 1) after a write of 2^64-2 (EAGAIN: the wakeup did \
                     not drain the counter)",
                    sys::eventfd_signal(e.as_fd(), 1),
                )?;
                wait_until(env, &format!("{k} injection(s) for our two writes"), || {
                    let n = injected(&ctx, G)?;
                    Ok((n >= before + k, format!("injected {n}, was {before}")))
                })
                .map_err(|m| format!("I5 broken (round {round}): {m}"))?;
                must(w, "deassign(eventfd)", ctx.deassign(&e, G))?;

                must(w, "assign(EFD_SEMAPHORE eventfd)", ctx.assign(&s, G + 1))?;
                assigned.fetch_add(1, Relaxed);
                must(
                    w,
                    "deassign(EFD_SEMAPHORE eventfd)",
                    ctx.deassign(&s, G + 1),
                )?;
                if let Some(c) = fdinfo_field(raw(&s), "eventfd-count") {
                    ensure(u64::from_str_radix(&c, 16) == Ok(0), || {
                        format!(
                            "R9c/I4: eventfd-count of an EFD_SEMAPHORE eventfd never written, \
                             after assign and deassign, is {c} (underflow at unhook?)"
                        )
                    })?;
                }
                Ok(())
            })?;
            b.stop();
            Ok(())
        }
        1 => flood(w, e.as_fd(), "write(eventfd, 1) (flood)"),
        _ => reader(w, &ctx, &acct),
    })?;
    final_checks(run, &ctx, Some(&acct), &[G, G + 1], assigned.load(Relaxed))
}

/// R22: the callback's target changes under in-flight signals. One
/// eventfd moves round robin between targets: gsi 1 of context A, gsi 2
/// of context B, and gsi 3 of a context of the other module when its
/// device is present, by deassign + assign, while a writer floods it.
/// Asserts: every move succeeds (I3); after each move the new target
/// delivers (I5); a target gets no injection from the time its deassign
/// returned until the eventfd is bound to it again (I1, checked exactly
/// over the whole unbound period); accounting in every context.
pub(super) fn r22(run: &Run) -> TestResult {
    let env = run.env;
    let a = env.open()?;
    let bc = env.open()?;
    let pc = peer_ctx(env)?.map(|(c, _)| c);
    let mut targets: Vec<(&Ctx, u32)> = vec![(&a, G), (&bc, G + 1)];
    if let Some(pc) = &pc {
        targets.push((pc, G + 2));
    }
    let accts = targets
        .iter()
        .map(|(c, _)| Ok(Mutex::new(Acct::new(ctx_nr_gsis(c)?))))
        .collect::<Result<Vec<_>, String>>()?;
    let e = new_eventfd()?;
    let wins: Vec<AtomicU64> = targets.iter().map(|_| AtomicU64::new(0)).collect();
    let b = run.budget(1.0);
    run.workers(&b, 3, |w| match w.idx {
        0 => {
            let n = targets.len();
            let mut snap: Vec<Option<u64>> = vec![None; n];
            let mut cur = 0;
            must(
                w,
                "assign(eventfd) to the first target",
                targets[0].0.assign(&e, targets[0].1),
            )?;
            wins[0].fetch_add(1, Relaxed);
            w.each_round(|w, moves| {
                let (c, g) = targets[cur];
                i5(
                    env,
                    c,
                    g,
                    e.as_fd(),
                    &format!("on target {cur} after move {moves}"),
                )?;
                w.jitter(1000);
                must(w, "deassign(eventfd) from its target", c.deassign(&e, g))?;
                snap[cur] = Some(injected(c, g)?);
                let next = (cur + 1) % n;
                let (nc, ng) = targets[next];
                if let Some(s) = snap[next] {
                    let now = injected(nc, ng)?;
                    ensure(now == s, || {
                        format!(
                            "I1 broken: target {next} (gsi {ng}) got {} injection(s) while the \
                             eventfd was bound elsewhere or not at all, after its deassign from \
                             there had returned (injected {s} -> {now})",
                            now.wrapping_sub(s)
                        )
                    })?;
                }
                must(
                    w,
                    "I3: assign(eventfd) to the next target right after its deassign returned",
                    nc.assign(&e, ng),
                )?;
                wins[next].fetch_add(1, Relaxed);
                cur = next;
                Ok(())
            })?;
            let (c, g) = targets[cur];
            must(w, "deassign(eventfd) at the end", c.deassign(&e, g))?;
            snap[cur] = Some(injected(c, g)?);
            std::thread::sleep(I1_WINDOW);
            for (i, (c, g)) in targets.iter().enumerate() {
                if let Some(s) = snap[i] {
                    let now = injected(c, *g)?;
                    ensure(now == s, || {
                        format!(
                            "I1 broken: target {i} (gsi {g}) injected {s} -> {now} after the \
                             final deassigns"
                        )
                    })?;
                }
            }
            b.stop();
            Ok(())
        }
        1 => flood(w, e.as_fd(), "write(eventfd, 1) (flood)"),
        _ => {
            let ctxs: Vec<(&Ctx, &Mutex<Acct>)> =
                targets.iter().map(|(c, _)| *c).zip(accts.iter()).collect();
            reader_many(w, &ctxs)
        }
    })?;
    for (i, (c, g)) in targets.iter().enumerate() {
        final_checks(run, c, Some(&accts[i]), &[*g], wins[i].load(Relaxed))?;
    }
    Ok(())
}
