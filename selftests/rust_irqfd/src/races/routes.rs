// SPDX-License-Identifier: GPL-2.0
//! Route updates (R21, R21b): the route of a GSI changes, and its mask
//! flips, while its eventfd is signalled (R21), and while a deassign of
//! its irqfd is in progress (R21b); every record carries one of the
//! routes the GSI had, whole, never one an update that returned had
//! replaced, and nothing is lost or doubled.

use std::os::fd::AsFd;
use std::path::Path;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::Duration;

use super::calls::{deassign_num, must, pause, raw};
use super::oracle::{expect_nr, final_checks, i1, injected, Acct, Kind, I1_WINDOW};
use super::G;
use crate::abi::RustIrqfdDelivery;
use crate::harness::{ensure, new_eventfd, ok, stats, wait_until, TestResult};
use crate::stress::{device_name, lock, Run, Worker};
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
    for flipper in [false, true] {
        let b = run.budget(0.5);
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
                    must(
                        w,
                        "SET_MASK(masked) racing injections",
                        ctx.set_mask(x, true),
                    )?;
                    pause(Duration::from_micros(w.rand(100)));
                    must(
                        w,
                        "SET_MASK(unmasked) racing injections",
                        ctx.set_mask(x, false),
                    )?;
                    flips.fetch_add(1, Relaxed);
                    pause(Duration::from_micros(w.rand(100)));
                    i += 1;
                    Ok(())
                })
            }
        })?;
        for x in [g, g2] {
            ok(
                &format!("SET_MASK(gsi {x}, unmasked) after the phase"),
                ctx.set_mask(x, false),
            )?;
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
/// one shutdown per irqfd; accounting.
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
