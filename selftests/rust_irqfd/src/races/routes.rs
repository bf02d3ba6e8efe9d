// SPDX-License-Identifier: GPL-2.0
//! Route updates (R21, R21b, R21c): the route of a GSI changes, and its
//! mask flips, while its eventfd is signalled (R21), while a deassign of
//! its irqfd is in progress (R21b), and from several writers at once
//! (R21c); every record carries one of the routes the GSI had, whole,
//! never one an update that returned had replaced, and once the updates
//! stop the last one wins; nothing is lost or doubled.

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::sync::atomic::{
    AtomicI32, AtomicU64,
    Ordering::{Relaxed, SeqCst},
};
use std::sync::Mutex;
use std::time::Duration;

use super::calls::{deassign_num, mask_flip, must, pause, raw};
use super::locking::{hardirq_signal, open_hardirq};
use super::oracle::{expect_nr, final_checks, i1, injected, Acct, Kind, I1_WINDOW};
use super::G;
use crate::abi::RustIrqfdDelivery;
use crate::dev::{Ctx, Kind as DevKind};
use crate::harness::{
    check_injections, ensure, new_eventfd, ok, stats, wait_until, Env, Stop, TestResult,
};
use crate::stress::{device_name, lock, Run, Tally, Worker};
use crate::sys;

/// R21: the routes, two of them differing in every byte of both fields.
pub(super) const R21_A: (u64, u32) = (0x1111_1111_fee0_1000, 0x1111_1111);
pub(super) const R21_B: (u64, u32) = (0x2222_2222_efd3_2ffc, 0x2222_2222);
/// The route of the second gsi, never updated.
const R21_C: (u64, u32) = (0x3333_3333_fee0_3000, 0x3333_3333);
/// The test hook that widens the window of a route update, and its value.
const ROUTE_DELAY_PARAM: &str = "test_route_delay_us";
const ROUTE_DELAY_US: u32 = 200;

/// A module parameter of the device's module set for the duration of a
/// scenario, and set back to 0 at the end (on the error paths too).
struct ParamHook {
    path: String,
    restored: bool,
}

impl ParamHook {
    /// Sets `param` to `value` if the module has it (a `TEST_HOOKS=1`
    /// build); `None` (with a note) if it has not or it cannot be written.
    fn set(run: &Run, param: &str, value: u32) -> Option<Self> {
        if DevKind::of(&run.env.device) == DevKind::Kvm {
            run.note(format!(
                "KVM has no {param}: running without the widened window"
            ));
            return None;
        }
        let path = format!("/sys/module/{}/parameters/{param}", device_name(run.env));
        if !Path::new(&path).exists() {
            run.note(format!(
                "{path} not present (no TEST_HOOKS=1 build): running without the widened window"
            ));
            return None;
        }
        match std::fs::write(&path, format!("{value}\n")) {
            Ok(()) => {
                run.note(format!("{param}={value} for the scenario"));
                Some(ParamHook {
                    path,
                    restored: false,
                })
            }
            Err(e) => {
                run.note(format!(
                    "{path}: cannot write ({e}): running without the widened window"
                ));
                None
            }
        }
    }

    /// Sets the parameter back to 0.
    fn restore(mut self) -> TestResult {
        self.restored = true;
        std::fs::write(&self.path, "0\n")
            .map_err(|e| format!("{}: setting it back to 0: {e}", self.path))
    }
}

impl Drop for ParamHook {
    fn drop(&mut self) {
        if !self.restored {
            let _ = std::fs::write(&self.path, "0\n");
        }
    }
}

/// R21: route updates against the wakeup. gsi 1 is routed to A and gsi 2
/// to C; one eventfd is bound to each. A router thread alternates gsi 1's
/// route between A and B, which differ in every byte of both fields, while
/// two writers signal gsi 1's eventfd (one of them gsi 2's too) and a
/// reader drains. Phase 2 adds a thread that masks and unmasks the gsis
/// (records raised by an unmask take the route of that moment). With the
/// module's `test_route_delay_us` hook (TEST_HOOKS=1 builds) set to 200 for
/// the scenario, every update holds its half-written route for 200 us, so
/// a reader without the seqcount meets it. Asserts: every record of gsi 1
/// is MSI with exactly A or exactly B, every record of gsi 2 exactly C
/// (never a mix, never 0, never the other gsi's); after the final unmask,
/// deassign and drain the counts read add up to the injections, which on
/// the fast path are the writes (nothing lost or doubled by the mask
/// flips); a route update still takes effect afterwards; accounting.
///
/// On KVM ([`crate::kvm`]) the routes are `KVM_SET_GSI_ROUTING` updates
/// and a record shows the route by its vector: the route assertions hold
/// as they are, on one phase (a VM has no masks) and without the counts.
pub(super) fn r21(run: &Run) -> TestResult {
    with_param(run, ROUTE_DELAY_PARAM, ROUTE_DELAY_US, r21_body)
}

/// Runs `body` with the module parameter `param` set to `value` where the
/// module has it ([`ParamHook`]), and sets it back to 0 afterwards: a
/// failure to do so is the scenario's failure too.
fn with_param(
    run: &Run,
    param: &str,
    value: u32,
    body: impl FnOnce(&Run) -> TestResult,
) -> TestResult {
    let hook = ParamHook::set(run, param, value);
    let r = body(run);
    match hook {
        Some(h) => match (r, h.restore()) {
            (Ok(()), rr) => rr,
            (Err(m), Ok(())) => Err(m),
            (Err(m), Err(rm)) => Err(format!("{m}\n{rm}")),
        },
        None => r,
    }
}

fn r21_body(run: &Run) -> TestResult {
    let env = run.env;
    let ctx = env.open()?;
    let kvm = ctx.kind() == DevKind::Kvm;
    let (g, g2) = (G, G + 1);
    ok("SET_ROUTE(gsi 1, A)", ctx.set_route(g, R21_A.0, R21_A.1))?;
    ok("SET_ROUTE(gsi 2, C)", ctx.set_route(g2, R21_C.0, R21_C.1))?;
    let e1 = new_eventfd()?;
    let e2 = new_eventfd()?;
    ok("assign(gsi 1)", ctx.assign(&e1, g))?;
    ok("assign(gsi 2)", ctx.assign(&e2, g2))?;
    let acct = Mutex::new(
        Acct::new(env.nr_gsis())
            .kind(g, Kind::msi(&[R21_A, R21_B]))
            .kind(g2, Kind::msi(&[R21_C])),
    );
    let writes = [AtomicU64::new(0), AtomicU64::new(0)];
    let updates = AtomicU64::new(0);
    let flips = AtomicU64::new(0);
    let efds = [&e1, &e2];
    let write = |w: &mut Worker<'_>, i: usize| -> TestResult {
        must(
            w,
            "write(routed eventfd)",
            sys::eventfd_signal(efds[i].as_fd(), 1),
        )?;
        writes[i].fetch_add(1, Relaxed);
        Ok(())
    };
    // A VM has no masks (the guest masks its MSIs): no phase 2 on KVM.
    let phases: &[bool] = if kvm { &[false] } else { &[false, true] };
    for &flipper in phases {
        let b = run.budget(if kvm { 1.0 } else { 0.5 });
        run.workers(&b, if flipper { 5 } else { 4 }, |w| match w.idx {
            0 => {
                let mut i = 0u64;
                w.repeat(|w| {
                    let r = if i.is_multiple_of(2) { R21_B } else { R21_A };
                    must(
                        w,
                        "SET_ROUTE(gsi 1, A or B) racing injections",
                        ctx.set_route(g, r.0, r.1),
                    )?;
                    updates.fetch_add(1, Relaxed);
                    i += 1;
                    if i.is_multiple_of(16) {
                        pause(Duration::from_micros(100));
                    } else {
                        w.jitter(64);
                    }
                    Ok(())
                })
            }
            1 => w.repeat(|w| {
                write(w, 0)?;
                w.jitter(32);
                Ok(())
            }),
            2 => {
                let mut i = 0u64;
                w.repeat(|w| {
                    write(w, usize::from(i % 4 == 3))?;
                    w.jitter(32);
                    i += 1;
                    Ok(())
                })
            }
            3 => w.repeat(|w| {
                if lock(&acct).read_once(&ctx, &mut w.tally)? == 0 {
                    pause(Duration::from_micros(20));
                }
                Ok(())
            }),
            _ => {
                let mut i = 0u64;
                w.repeat(|w| {
                    let x = if i % 4 == 3 { g2 } else { g };
                    mask_flip(w, &ctx, x, "injections", &flips)?;
                    i += 1;
                    Ok(())
                })
            }
        })?;
        if flipper {
            for x in [g, g2] {
                ok(
                    &format!("SET_MASK(gsi {x}, unmasked) after the phase"),
                    ctx.set_mask(x, false),
                )?;
            }
        }
    }

    // The deassigns flush queued injections: nothing of the race comes
    // after them. A route update still takes effect, through a new irqfd.
    ok("deassign(gsi 1)", ctx.deassign(&e1, g))?;
    ok("deassign(gsi 2)", ctx.deassign(&e2, g2))?;
    let e3 = new_eventfd()?;
    ok("assign(new eventfd, gsi 1)", ctx.assign(&e3, g))?;
    let b = run.budget(1.0);
    let mut w = Worker::new(0, &b);
    let r = (|| -> TestResult {
        while lock(&acct).read_once(&ctx, &mut w.tally)? > 0 {}
        for (r, name) in [(R21_B, "B"), (R21_A, "A")] {
            must(
                &mut w,
                "SET_ROUTE(gsi 1) after the race",
                ctx.set_route(g, r.0, r.1),
            )?;
            must(&mut w, "write(eventfd)", sys::eventfd_signal(e3.as_fd(), 1))?;
            writes[0].fetch_add(1, Relaxed);
            let mut got = Vec::new();
            wait_until(env, "the record of the write after the race", || {
                got.extend(lock(&acct).read_records(&ctx, &mut w.tally)?);
                Ok((!got.is_empty(), format!("{got:?}")))
            })?;
            ensure(got.len() == 1, || {
                format!("one write after the race gave {got:?}")
            })?;
            let d = got[0];
            ensure((d.gsi, d.msi_addr, d.msi_data) == (g, r.0, r.1), || {
                format!("after SET_ROUTE(gsi 1, {name}) the next record is {d:?}")
            })?;
        }
        Ok(())
    })();
    run.add(&w.tally);
    r?;
    ok("deassign(new eventfd, gsi 1)", ctx.deassign(&e3, g))?;
    final_checks(run, &ctx, Some(&acct), &[g, g2], 3)?;
    // A VM counts no injections (KVM's own is a look at the IRR, which
    // cannot count).
    if !kvm {
        for (i, x) in [g, g2].into_iter().enumerate() {
            let s = stats(&ctx, x)?;
            let wr = writes[i].load(Relaxed);
            if !env.counts_every_signal() {
                ensure(s.injected <= wr && (wr == 0) == (s.injected == 0), || {
                    format!(
                        "gsi {x}: {} injections for {wr} writes (deferred_only, where signals may \
                         merge)",
                        s.injected
                    )
                })?;
            } else {
                ensure(s.injected == wr, || {
                    format!(
                        "gsi {x}: {} injections for {wr} writes under route updates and mask flips \
                         (each write is one injection on the fast path)",
                        s.injected
                    )
                })?;
            }
        }
    }
    let a = lock(&acct);
    run.note(format!(
        "{} route updates, {} mask flips; records of gsi 1 with A {} and B {}, of gsi 2 with C {}",
        updates.load(Relaxed),
        flips.load(Relaxed),
        a.route_hits(g, 0),
        a.route_hits(g, 1),
        a.route_hits(g2, 0)
    ));
    Ok(())
}

// --- R21b: a route update against a deassign in progress ---

/// The test hook that widens the window of a deassign in progress (the
/// irqfd out of its context's tree, its wait entry still on the eventfd),
/// and its value.
const SHUTDOWN_DELAY_PARAM: &str = "test_shutdown_delay_us";
const SHUTDOWN_DELAY_US: u32 = 1000;

/// R21b (races.md's addendum; CVE-2026-23198 in KVM): a route update
/// against a deassign in progress. Deassign takes the irqfd out of the
/// context's tree before its shutdown removes the wait entry, so in
/// between a signal still runs its wakeup, while route updates (which in
/// the C module, as in KVM, rewrite the copy of the route in each irqfd of
/// the tree) no longer reach it. Each round routes gsi 1 to A and binds a
/// fresh eventfd to it; then one thread deassigns it while another, after
/// a random head start for the deassign, routes gsi 1 to B and, once that
/// returned, writes the eventfd. With the module's `test_shutdown_delay_us`
/// hook (TEST_HOOKS=1 builds) set to 1000 for the scenario, every shutdown
/// sleeps 1 ms between the two steps, so the update and the write land in
/// that window in many rounds. Asserts: every record of the round carries
/// exactly B (the only write of the round began after SET_ROUTE(B)
/// returned); the records are all in when DEASSIGN returns (read by the
/// deassigning thread then: at most one, of count 1, and `injected` grew by
/// exactly that much over the round); after it returned a write injects
/// nothing (I1) and no record comes later; nr_irqfds 0 after each round;
/// one shutdown per irqfd; accounting. On KVM, where the race was found,
/// the same oracles with `KVM_SET_GSI_ROUTING` updates (records show the
/// route by its vector, [`crate::kvm::Deliveries`]), without the hook.
pub(super) fn r21b(run: &Run) -> TestResult {
    with_param(run, SHUTDOWN_DELAY_PARAM, SHUTDOWN_DELAY_US, r21b_body)
}

fn r21b_body(run: &Run) -> TestResult {
    let env = run.env;
    let ctx = env.open()?;
    let g = G;
    let acct = Mutex::new(Acct::new(env.nr_gsis()).kind(g, Kind::msi(&[R21_A, R21_B])));
    let b = run.budget(1.0);
    let rounds = run.rounds(&b, 3);
    let cur = AtomicI32::new(-1);
    let head_start_us = AtomicU64::new(0);
    let at_deassign: Mutex<Vec<RustIrqfdDelivery>> = Mutex::new(Vec::new());
    let assigned = AtomicU64::new(0);
    let with_record = AtomicU64::new(0);
    run.round_workers(&rounds, 3, |w| match w.idx {
        0 => rounds.lead(w, |w, round, race| {
            must(
                w,
                "SET_ROUTE(gsi 1, A) before the round",
                ctx.set_route(g, R21_A.0, R21_A.1),
            )?;
            let e = new_eventfd()?;
            must(w, "assign(fresh eventfd, gsi 1)", ctx.assign(&e, g))?;
            assigned.fetch_add(1, Relaxed);
            cur.store(raw(&e), Relaxed);
            head_start_us.store(w.rand(u64::from(SHUTDOWN_DELAY_US) * 5 / 4), Relaxed);
            lock(&at_deassign).clear();
            let before = injected(&ctx, g)?;
            race.run()?;
            let when = format!("(round {round})");
            let got = std::mem::take(&mut *lock(&at_deassign));
            for d in &got {
                ensure((d.msi_addr, d.msi_data) == R21_B, || {
                    let which = if (d.msi_addr, d.msi_data) == R21_A {
                        "the old route A"
                    } else {
                        "not B"
                    };
                    format!(
                        "R21b broken {when}: the only write of the round began after \
                         SET_ROUTE(gsi 1, B) returned, with a deassign of its irqfd in \
                         progress, and its record carries {which}: {d:?}"
                    )
                })?;
            }
            ensure(got.len() <= 1 && got.iter().all(|d| d.count == 1), || {
                format!("one write {when} gave the records {got:?}")
            })?;
            let after = injected(&ctx, g)?;
            let n = u64::try_from(got.len()).unwrap_or(u64::MAX);
            ensure(after.checked_sub(before) == Some(n), || {
                format!(
                    "R21b {when}: {n} record(s) were read when DEASSIGN returned, but gsi 1 \
                     injected went {before} -> {after} over the round: an injection after \
                     DEASSIGN returned (I1), or one that raised no record"
                )
            })?;
            i1(&[(&ctx, g)], e.as_fd(), I1_WINDOW, &when)?;
            let late = lock(&acct).read_records(&ctx, &mut w.tally)?;
            ensure(late.is_empty(), || {
                format!("R21b {when}: records after DEASSIGN returned: {late:?}")
            })?;
            expect_nr(&ctx, 0, &format!("after the deassign {when}"))?;
            with_record.fetch_add(n, Relaxed);
            Ok(())
        }),
        1 => rounds.racer(w, |w| {
            must(
                w,
                "DEASSIGN racing SET_ROUTE(B) and a write",
                deassign_num(&ctx, cur.load(Relaxed), g),
            )?;
            // Everything of the round is in now: read it at once.
            let mut got = Vec::new();
            loop {
                let v = lock(&acct).read_records(&ctx, &mut w.tally)?;
                if v.is_empty() {
                    break;
                }
                got.extend(v);
            }
            *lock(&at_deassign) = got;
            Ok(())
        }),
        _ => rounds.racer(w, |w| {
            pause(Duration::from_micros(head_start_us.load(Relaxed)));
            must(
                w,
                "SET_ROUTE(gsi 1, B) racing a deassign",
                ctx.set_route(g, R21_B.0, R21_B.1),
            )?;
            must(
                w,
                "write(eventfd being deassigned)",
                sys::eventfd_signal_raw(cur.load(Relaxed), 1),
            )
        }),
    })?;
    let n = assigned.load(Relaxed);
    run.note(format!(
        "{n} rounds, {} with a record (the write before the wait entry was removed)",
        with_record.load(Relaxed)
    ));
    final_checks(run, &ctx, Some(&acct), &[g], n)
}

// --- R21c: concurrent route writers on one GSI ---

/// R21c's route writers.
const WRITERS: usize = 3;
/// Idle irqfds bound to R21c's gsi besides the signalled one and the
/// checker: more irqfds whose copy of the route a C update rewrites.
const FILLERS: usize = 2;
/// Signals per call of the hard-IRQ signaller.
const HARDIRQ_BATCH: u32 = 16;

/// Route `j` (0 or 1) of writer `k`: every byte of the address, and of the
/// data, is `0x40 + 4 * (2k + j)`, so the routes of all writers differ
/// pairwise in every byte of both fields (and the address is 4-aligned).
fn writer_route(k: usize, j: usize) -> (u64, u32) {
    let b = 0x40 + 4 * (2 * k + j) as u64;
    (
        b * 0x0101_0101_0101_0101,
        u32::try_from(b * 0x0101_0101).unwrap_or(0),
    )
}

/// Every route of the writers.
fn writer_routes() -> Vec<(u64, u32)> {
    (0..WRITERS)
        .flat_map(|k| [writer_route(k, 0), writer_route(k, 1)])
        .collect()
}

/// One `SET_ROUTE` call: its route, and the ticks of a shared clock taken
/// just before it began and just after it returned.
#[derive(Clone, Copy, Debug)]
struct Call {
    route: (u64, u32),
    start: u64,
    end: u64,
}

/// The routes that may be the one written last, given the last call of
/// each writer: a call that returned before another one began is ordered
/// before it, so the last in any order the module can have is one of the
/// calls that returned after the latest start. At least one qualifies
/// when there is any call (the one with the latest start).
fn last_candidates(calls: &[Call]) -> Vec<(u64, u32)> {
    let latest = calls.iter().map(|c| c.start).max().unwrap_or(0);
    let mut v: Vec<_> = calls
        .iter()
        .filter(|c| c.end > latest)
        .map(|c| c.route)
        .collect();
    v.dedup();
    v
}

/// A route writer of R21c: `SET_ROUTE(gsi, route)` between two ticks of
/// `clock`, recorded in `last`.
fn timed_set_route(
    w: &mut Worker<'_>,
    ctx: &Ctx,
    gsi: u32,
    route: (u64, u32),
    clock: &AtomicU64,
    last: &Mutex<Option<Call>>,
) -> TestResult {
    let start = clock.fetch_add(1, SeqCst);
    must(
        w,
        "SET_ROUTE(gsi 1) racing other route writers",
        ctx.set_route(gsi, route.0, route.1),
    )?;
    let end = clock.fetch_add(1, SeqCst);
    *lock(last) = Some(Call { route, start, end });
    Ok(())
}

/// What R21c checks last write wins with: the context, its accounting,
/// the gsi the writers route and a checker eventfd bound to it that
/// nothing else signals.
struct Checker<'a> {
    env: &'a Env,
    ctx: &'a Ctx,
    acct: &'a Mutex<Acct>,
    gsi: u32,
    chk: &'a OwnedFd,
    /// The context is a module's, with masks (a VM's are the guest's).
    module: bool,
}

impl Checker<'_> {
    /// Last write wins, once the route writers have stopped: a signal on
    /// the checker raises a record with one of `cands`, the routes that
    /// may have been written last; and an injection held by the mask
    /// latch and raised by the unmask, which takes the route the GSI has
    /// then, carries the very same one: the wakeup (its own copy of the
    /// route in C, the GSI's cell in Rust), the injection work and the
    /// unmask all see the one route the last update left (where there are
    /// masks). Returns the signals sent on the checker (2, or 1 without
    /// masks).
    fn last_write_wins(
        &self,
        t: &mut Tally,
        cands: &[(u64, u32)],
        when: &str,
    ) -> Result<u64, String> {
        let (env, ctx, acct, gsi, chk) = (self.env, self.ctx, self.acct, self.gsi, self.chk);
        while lock(acct).read_once(ctx, t)? > 0 {}
        let show = |r: (u64, u32)| format!("{:#x}/{:#x}", r.0, r.1);
        let one = |what: &str, got: Vec<RustIrqfdDelivery>| -> Result<(u64, u32), String> {
            match got[..] {
                [d] if d.gsi == gsi && d.count == 1 => Ok((d.msi_addr, d.msi_data)),
                _ => Err(format!(
                    "{what} {when} gave the records {got:?}, one expected"
                )),
            }
        };
        ok(
            "write(checker eventfd)",
            sys::eventfd_signal(chk.as_fd(), 1),
        )?;
        let mut got = Vec::new();
        wait_until(env, &format!("the record of a signal {when}"), || {
            got.extend(lock(acct).read_records(ctx, t)?);
            Ok((!got.is_empty(), format!("{got:?}")))
        })?;
        let signalled = one("one signal", got)?;
        ensure(cands.contains(&signalled), || {
            format!(
                "R21c broken (last write wins) {when}: once the route writers stopped, a signal \
                 raised a record with {}, which is not the route of any update that may have \
                 come last ({})",
                show(signalled),
                cands
                    .iter()
                    .map(|&r| show(r))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })?;
        if !self.module {
            return Ok(1);
        }
        ok("SET_MASK(masked) for the check", ctx.set_mask(gsi, true))?;
        let latched = stats(ctx, gsi)?.latched;
        ok(
            "write(checker eventfd), masked",
            sys::eventfd_signal(chk.as_fd(), 1),
        )?;
        wait_until(env, &format!("the latched injection {when}"), || {
            let s = stats(ctx, gsi)?;
            Ok((s.latched > latched, format!("{s:?}")))
        })?;
        ok("SET_MASK(unmasked) for the check", ctx.set_mask(gsi, false))?;
        let unmasked = one("the unmask", lock(acct).read_records(ctx, t)?)?;
        ensure(unmasked == signalled, || {
            format!(
                "R21c broken (last write wins) {when}: once the route writers stopped, a signal \
                 raised a record with {} but the unmask of the same gsi raised one with {}: \
                 two routes survived the updates",
                show(signalled),
                show(unmasked)
            )
        })?;
        Ok(2)
    }
}

/// R21c: concurrent route writers on one GSI. Gsi 1 has one signalled
/// eventfd, a checker and two idle irqfds bound to it. Phase 1: three
/// threads each route it again and again to one of their own two routes
/// (all six differ in every byte), while a thread writes the eventfd, the
/// hard-IRQ signaller of R15 signals it from an hrtimer (skipped, with a
/// note, without `irqfd_hardirq.ko`), a thread masks and unmasks the gsi
/// and one reads; `test_route_delay_us` (200) widens every update. Then
/// the signalled eventfd is deassigned (its injections flushed) and last
/// write wins is checked ([`Checker::last_write_wins`]). Phase 2: rounds
/// in which the three writers each make one update at the same moment,
/// then the same check. Asserts: every record carries one of the
/// writers' routes, whole (never a mix, never 0); last write wins, after
/// each phase and round; nothing hangs; per gsi the counts read add up to `injected`,
/// which is exactly the signals sent where the module counts every signal
/// (else 1 to n); one shutdown per irqfd. On KVM: without the mask
/// flipper, the unmask check and the counts (a VM has neither masks nor
/// counters), every route a `KVM_SET_GSI_ROUTING` update.
pub(super) fn r21c(run: &Run) -> TestResult {
    with_param(run, ROUTE_DELAY_PARAM, ROUTE_DELAY_US, r21c_body)
}

fn r21c_body(run: &Run) -> TestResult {
    let env = run.env;
    let dev = match open_hardirq() {
        Ok(d) => Some(d),
        Err(Stop::Skip(m)) => {
            run.note(format!("{m}: no signals from hard IRQ"));
            None
        }
        Err(Stop::Fail(m)) => return Err(m),
    };
    let ctx = env.open()?;
    let module = ctx.kind() == DevKind::Module;
    let g = G;
    let acct = Mutex::new(Acct::new(env.nr_gsis()).kind(g, Kind::msi(&writer_routes())));
    let clock = AtomicU64::new(0);
    let last: Vec<Mutex<Option<Call>>> = (0..WRITERS).map(|_| Mutex::new(None)).collect();
    let first = writer_route(0, 0);
    let start = clock.fetch_add(1, SeqCst);
    ok(
        "SET_ROUTE(gsi 1) before the race",
        ctx.set_route(g, first.0, first.1),
    )?;
    let initial = Call {
        route: first,
        start,
        end: clock.fetch_add(1, SeqCst),
    };
    let e = new_eventfd()?;
    let chk = new_eventfd()?;
    let fillers = (0..FILLERS)
        .map(|_| new_eventfd())
        .collect::<Result<Vec<_>, _>>()?;
    for f in std::iter::once(&e).chain(&fillers).chain([&chk]) {
        ok("assign(gsi 1)", ctx.assign(f, g))?;
    }
    let assigned = 2 + FILLERS as u64;
    let writes = AtomicU64::new(0);
    let hardirq_sent = AtomicU64::new(0);
    let updates = AtomicU64::new(0);
    let flips = AtomicU64::new(0);
    let mut signals = 0;

    // Phase 1: everything at once.
    let b = run.budget(0.4);
    // The last worker flips the mask, where there are masks.
    run.workers(&b, WRITERS + 3 + usize::from(module), |w| match w.idx {
        k if k < WRITERS => {
            let mut i = 0usize;
            w.repeat(|w| {
                timed_set_route(w, &ctx, g, writer_route(k, i % 2), &clock, &last[k])?;
                updates.fetch_add(1, Relaxed);
                i += 1;
                if i.is_multiple_of(16) {
                    pause(Duration::from_micros(100));
                } else {
                    w.jitter(64);
                }
                Ok(())
            })
        }
        k if k == WRITERS => w.repeat(|w| {
            must(
                w,
                "write(eventfd) racing route writers",
                sys::eventfd_signal(e.as_fd(), 1),
            )?;
            writes.fetch_add(1, Relaxed);
            w.jitter(32);
            Ok(())
        }),
        k if k == WRITERS + 1 => match &dev {
            Some(dev) => w.repeat(|w| {
                w.op();
                let (sent, _) = hardirq_signal(dev, raw(&e), HARDIRQ_BATCH)?;
                hardirq_sent.fetch_add(sent, Relaxed);
                Ok(())
            }),
            None => Ok(()),
        },
        k if k == WRITERS + 2 => w.repeat(|w| {
            if lock(&acct).read_once(&ctx, &mut w.tally)? == 0 {
                pause(Duration::from_micros(20));
            }
            Ok(())
        }),
        _ => w.repeat(|w| mask_flip(w, &ctx, g, "route writers", &flips)),
    })?;
    if module {
        ok(
            "SET_MASK(gsi 1, unmasked) after phase 1",
            ctx.set_mask(g, false),
        )?;
    }
    // The deassign flushes the injections the phase queued.
    ok(
        "deassign(signalled eventfd) after phase 1",
        ctx.deassign(&e, g),
    )?;
    let mut calls = vec![initial];
    calls.extend(last.iter().filter_map(|l| *lock(l)));
    let checker = Checker {
        env,
        ctx: &ctx,
        acct: &acct,
        gsi: g,
        chk: &chk,
        module,
    };
    let mut t = Tally::default();
    let r = checker.last_write_wins(&mut t, &last_candidates(&calls), "after phase 1");
    run.add(&t);
    signals += r?;

    // Phase 2: one update of each writer at the same moment, then the check.
    let b = run.budget(0.5);
    let rounds = run.rounds(&b, WRITERS + 1);
    let checks = AtomicU64::new(0);
    let check_signals = AtomicU64::new(0);
    run.round_workers(&rounds, WRITERS + 1, |w| match w.idx {
        0 => rounds.lead(w, |w, round, race| {
            for l in &last {
                *lock(l) = None;
            }
            race.run()?;
            let calls: Vec<Call> = last.iter().filter_map(|l| *lock(l)).collect();
            if calls.len() != WRITERS {
                return Err(format!("internal: {} of {WRITERS} writers ran", calls.len()).into());
            }
            let n = checker.last_write_wins(
                &mut w.tally,
                &last_candidates(&calls),
                &format!("(round {round} of phase 2)"),
            )?;
            checks.fetch_add(1, Relaxed);
            check_signals.fetch_add(n, Relaxed);
            Ok(())
        }),
        i => {
            let k = i - 1;
            let mut n = 0usize;
            rounds.racer(w, |w| {
                w.jitter(256);
                timed_set_route(w, &ctx, g, writer_route(k, n % 2), &clock, &last[k])?;
                updates.fetch_add(1, Relaxed);
                n += 1;
                Ok(())
            })
        }
    })?;
    let nr_rounds = checks.load(Relaxed);
    signals += check_signals.load(Relaxed);

    ok("deassign(checker eventfd)", ctx.deassign(&chk, g))?;
    for f in &fillers {
        ok("deassign(idle eventfd)", ctx.deassign(f, g))?;
    }
    final_checks(run, &ctx, Some(&acct), &[g], assigned)?;
    let (wr, hs) = (writes.load(Relaxed), hardirq_sent.load(Relaxed));
    signals += wr + hs;
    // A VM counts no injections.
    if module {
        let s = stats(&ctx, g)?;
        check_injections(
            env,
            &format!("gsi {g}, under concurrent route writers and mask flips"),
            s.injected,
            signals,
        )?;
    }
    run.note(format!(
        "{} route updates by {WRITERS} writers ({nr_rounds} rounds of phase 2), {} mask flips, \
         {wr} writes and {hs} signals from hard IRQ; records per route {:?}",
        updates.load(Relaxed),
        flips.load(Relaxed),
        (0..2 * WRITERS)
            .map(|i| lock(&acct).route_hits(g, i))
            .collect::<Vec<_>>()
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    use crate::harness::Env;

    /// R21's routes are valid (nonzero, 4-byte aligned) and A and B differ
    /// in every byte of both fields, so a mix is always visible.
    #[test]
    fn r21_routes_differ_in_every_byte() {
        for (addr, _) in [R21_A, R21_B, R21_C] {
            assert!(addr != 0 && addr & 3 == 0, "{addr:#x}");
        }
        let (x, y) = (R21_A.0.to_ne_bytes(), R21_B.0.to_ne_bytes());
        assert!(x.iter().zip(&y).all(|(p, q)| p != q));
        let (x, y) = (R21_A.1.to_ne_bytes(), R21_B.1.to_ne_bytes());
        assert!(x.iter().zip(&y).all(|(p, q)| p != q));
        assert!(R21_C != R21_A && R21_C != R21_B);
    }

    /// R21c's routes are valid, and any two of them differ in every byte
    /// of both fields.
    #[test]
    fn r21c_routes_differ_in_every_byte() {
        let v = writer_routes();
        assert_eq!(v.len(), 2 * WRITERS);
        for (i, &(a, d)) in v.iter().enumerate() {
            assert!(a != 0 && a & 3 == 0 && d != 0, "{a:#x}/{d:#x}");
            for &(b, e) in &v[i + 1..] {
                let (x, y) = (a.to_ne_bytes(), b.to_ne_bytes());
                assert!(x.iter().zip(&y).all(|(p, q)| p != q), "{a:#x} {b:#x}");
                let (x, y) = (d.to_ne_bytes(), e.to_ne_bytes());
                assert!(x.iter().zip(&y).all(|(p, q)| p != q), "{d:#x} {e:#x}");
            }
        }
    }

    /// The candidates for the last write: the calls that returned after the
    /// latest start; calls in sequence leave one, overlapping calls all of
    /// the overlapping ones.
    #[test]
    fn last_candidates_follow_the_ticks() {
        let c = |k, start, end| Call {
            route: writer_route(k, 0),
            start,
            end,
        };
        assert_eq!(last_candidates(&[]), vec![]);
        assert_eq!(
            last_candidates(&[c(0, 0, 1), c(1, 2, 3), c(2, 4, 5)]),
            vec![writer_route(2, 0)]
        );
        assert_eq!(
            last_candidates(&[c(0, 0, 5), c(1, 1, 2), c(2, 3, 6)]),
            vec![writer_route(0, 0), writer_route(2, 0)]
        );
        // The call that began last is always a candidate.
        assert_eq!(
            last_candidates(&[c(0, 0, 9), c(1, 8, 10), c(2, 1, 2)]),
            vec![writer_route(0, 0), writer_route(1, 0)]
        );
    }

    /// Without the module's parameter file, the hook is absent and noted.
    #[test]
    fn param_hook_absent() {
        let env = Env {
            device: "/nonexistent/no_such_irqfd_module".into(),
            peers: vec![],
            timeout: Duration::from_secs(1),
            info: Default::default(),
            stress: Default::default(),
            fuzz: Default::default(),
            report: Default::default(),
        };
        let run = crate::stress::Run::for_tests(&env);
        assert!(ParamHook::set(&run, ROUTE_DELAY_PARAM, ROUTE_DELAY_US).is_none());
        assert!(run
            .notes_for_tests()
            .iter()
            .any(|n| n.contains("not present")));
    }
}
