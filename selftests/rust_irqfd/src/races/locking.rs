// SPDX-License-Identifier: GPL-2.0
//! The wakeup's context and the locks around it (R14, R15, R16, R17): a
//! wakeup in atomic context (signals through AIO, from inside another
//! wait queue) and in hard-IRQ context (an hrtimer of a test module), the
//! order of the irqfd list lock and the eventfd wait-queue lock, and
//! flushes of the cleanup queue from several sides at once. Lockdep and
//! the hang detectors judge as much as the assertions.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd, RawFd};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::Duration;

use super::calls::{flood, must, racy, raw};
use super::oracle::{final_checks, i2, injected, reader, wait_nr, wait_shutdowns, Acct, READ_MAX};
use super::G;
use crate::dev::Ctx;
use crate::harness::{
    check_injections, ensure, new_eventfd, ok, skip, try_read, wait_until, Ran, Stop, TestResult,
};
use crate::stress::{lock, Run, Tally, Worker};
use crate::sys;

/// One signal through AIO: a poll on the (empty) pipe with `resfd`, then a
/// byte written to it, which completes the poll from inside the pipe's
/// wakeup, where the kernel signals `resfd`. `Ok(false)` if the submit
/// gave `EBADF` and that is allowed (`resfd` being closed).
fn aio_signal(
    w: &mut Worker<'_>,
    aio: &sys::Aio,
    pipe: (BorrowedFd<'_>, BorrowedFd<'_>),
    resfd: RawFd,
    may_be_closed: bool,
    timeout: Duration,
) -> Result<bool, String> {
    w.op();
    match aio.submit_poll(pipe.0, libc::POLLIN as u16, resfd) {
        Ok(()) => {}
        Err(e) if may_be_closed && e.0 == libc::EBADF => {
            w.tally.error(e);
            return Ok(false);
        }
        Err(e) => return Err(format!("io_submit(IOCB_CMD_POLL, resfd): {e}")),
    }
    ok("write(pipe)", sys::write(pipe.1, &[1]).map(|_| ()))?;
    let ev = ok("io_getevents", aio.reap(1, 1, timeout))?;
    ensure(ev.len() == 1, || {
        format!("the AIO poll did not complete within {timeout:?} of the pipe write")
    })?;
    ensure(ev[0].res & i64::from(libc::POLLIN) != 0, || {
        format!("AIO poll completed with {:#x}, no POLLIN", ev[0].res)
    })?;
    let mut byte = [0u8; 8];
    ok("read(pipe)", sys::read(pipe.0, &mut byte).map(|_| ()))?;
    Ok(true)
}

/// R14: the wakeup runs in atomic context. Each round binds a fresh
/// eventfd; one thread writes to it, another signals it through AIO
/// (eventfd_signal from inside a pipe's wakeup, under another wait-queue
/// lock with interrupts off); then the eventfd is closed (EPOLLHUP) while
/// both keep signalling. Asserts: while bound, exactly one injection per
/// signal (at least one with deferred_only where signals may merge, see
/// `Env::counts_every_signal`); EBADF only once closing;
/// nr_irqfds 0 after each round; one shutdown per irqfd; accounting.
/// Sleeping in the callback shows as a kernel splat.
pub(super) fn r14(run: &Run) -> TestResult {
    let env = run.env;
    let ctx = env.open()?;
    let acct = Mutex::new(Acct::new(env.nr_gsis()));
    let aio = match sys::Aio::new(64) {
        Ok(a) => Some(a),
        Err(e) => {
            run.note(format!(
                "io_setup: {e}: no AIO signaller, the second thread writes instead"
            ));
            None
        }
    };
    let (prd, pwr) = ok("pipe2(O_NONBLOCK)", sys::pipe_nonblock())?;
    let b = run.budget(1.0);
    let rounds = run.rounds(&b, 3);
    let cur = AtomicI32::new(-1);
    let sigs = AtomicU64::new(0);
    let assigned = AtomicU64::new(0);
    const K: usize = 4;
    let signaller = |w: &mut Worker<'_>, may_be_closed: bool| -> TestResult {
        let n = cur.load(Relaxed);
        for _ in 0..K {
            let signalled = match (&aio, w.idx) {
                (Some(aio), 2) => aio_signal(
                    w,
                    aio,
                    (prd.as_fd(), pwr.as_fd()),
                    n,
                    may_be_closed,
                    env.timeout,
                )?,
                _ => {
                    let r = sys::eventfd_signal_raw(n, 1);
                    if may_be_closed {
                        racy(w, "write(eventfd being closed)", r, &[libc::EBADF])?
                    } else {
                        must(w, "write(bound eventfd)", r)?;
                        true
                    }
                }
            };
            if signalled && !may_be_closed {
                sigs.fetch_add(1, Relaxed);
            }
        }
        Ok(())
    };
    run.round_workers(&rounds, 4, |w| match w.idx {
        0 => rounds.lead(w, |w, round, race| {
            let e = new_eventfd()?;
            must(w, "assign(fresh eventfd)", ctx.assign(&e, G))?;
            assigned.fetch_add(1, Relaxed);
            cur.store(raw(&e), Relaxed);
            sigs.store(0, Relaxed);
            let before = injected(&ctx, G)?;
            // Phase A: signals on the bound eventfd.
            race.run()?;
            let n = sigs.load(Relaxed);
            let want = before + env.least_injections(n);
            wait_until(env, &format!("injections for {n} signals"), || {
                let i = injected(&ctx, G)?;
                Ok((i >= want, format!("injected {i}, was {before}")))
            })
            .map_err(|m| format!("I5 broken (round {round}): {m}"))?;
            if env.counts_every_signal() {
                let i = injected(&ctx, G)?;
                ensure(i == before + n, || {
                    format!(
                        "{} injections for {n} signals (writes and AIO completions) on a \
                         bound eventfd; one each expected (fast path, or a module that \
                         counts every deferred signal)",
                        i - before
                    )
                })?;
            }
            // Phase B: close (EPOLLHUP) while the signals go on.
            race.join(w, |w| {
                w.jitter(128);
                must(w, "close(eventfd) racing its signals", sys::close(e))
            })?;
            wait_nr(env, &ctx, 0, &format!("after round {round} (EPOLLHUP)"))?;
            // Its shutdown flushes the injections phase B's signals queued
            // (deferred mode): wait for it, so that the next round's phase
            // A counts its own injections only, exactly where they must be.
            wait_shutdowns(
                env,
                &ctx,
                assigned.load(Relaxed),
                &format!("round {round}'s irqfd"),
            )?;
            Ok(())
        }),
        1 | 2 => {
            // Two races a round: phase A on the bound eventfd, phase B
            // while it is being closed.
            let mut closing = false;
            rounds.racer(w, |w| {
                signaller(w, closing)?;
                closing = !closing;
                Ok(())
            })
        }
        _ => reader(w, &ctx, &acct),
    })?;
    drop(aio);
    final_checks(run, &ctx, Some(&acct), &[G], assigned.load(Relaxed))
}

// --- R15: signals from hard-IRQ context ---

/// `struct irqfd_hardirq_signal` of the test-only module
/// (`selftests/rust_irqfd/hardirq/irqfd_hardirq.c`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
struct HardirqSignal {
    fd: u32,
    count: u32,
    period_ns: u64,
    sent: u64,
    skipped: u64,
    hardirq: u64,
}

const IRQFD_HARDIRQ_SIGNAL: u32 = crate::abi::iowr(
    crate::abi::RUST_IRQFD_MAGIC,
    0xf0,
    std::mem::size_of::<HardirqSignal>(),
);
const HARDIRQ_DEV: &str = "/dev/irqfd_hardirq";
/// Between two hard-IRQ signals.
const HARDIRQ_PERIOD_NS: u64 = 200_000;

/// `/dev/irqfd_hardirq`, opened; a skip when the test-only module is not
/// loaded (a build without `TEST_HOOKS=1`).
pub(crate) fn open_hardirq() -> Result<OwnedFd, Stop> {
    if !Path::new(HARDIRQ_DEV).exists() {
        return skip(format!(
            "no {HARDIRQ_DEV}: load irqfd_hardirq.ko from a TEST_HOOKS=1 build"
        ));
    }
    Ok(ok(
        "open(/dev/irqfd_hardirq)",
        sys::open(Path::new(HARDIRQ_DEV), libc::O_RDWR),
    )?)
}

/// Has the test module signal `efd` `count` times from an hrtimer; returns
/// (sent, skipped). Blocks until the last one. Every signal must have been
/// sent from hard-IRQ context, or the scenario would not test what it says.
pub(crate) fn hardirq_signal(dev: &OwnedFd, efd: RawFd, count: u32) -> Result<(u64, u64), String> {
    let mut req = HardirqSignal {
        fd: efd as u32,
        count,
        period_ns: HARDIRQ_PERIOD_NS,
        ..Default::default()
    };
    ok(
        "IRQFD_HARDIRQ_SIGNAL",
        sys::ioctl_ptr(dev.as_fd(), IRQFD_HARDIRQ_SIGNAL, &mut req),
    )?;
    ensure(req.hardirq == req.sent, || {
        format!(
            "only {} of {} signals came from hard IRQ",
            req.hardirq, req.sent
        )
    })?;
    Ok((req.sent, req.skipped))
}

/// Sum of the counts of every record readable now.
fn drain_count(ctx: &Ctx) -> Result<u64, String> {
    let mut n = 0;
    loop {
        let recs = try_read(ctx, READ_MAX)?;
        if recs.is_empty() {
            return Ok(n);
        }
        n += recs.iter().map(|r| r.count).sum::<u64>();
    }
}

/// R15: an eventfd signalled from hard-IRQ context (an hrtimer of the
/// test-only `irqfd_hardirq.ko`, as a device's interrupt handler would), so
/// that the irqfd's wakeup runs in hard IRQ: every lock it takes must be
/// IRQ-safe, which lockdep checks.
/// Phase A, bound throughout: on the fast path each signal is exactly one
/// injection (with `deferred_only`, too where the module counts every
/// signal, else 1 to n for n). Phase B: a second thread
/// deassigns and reassigns the eventfd while the timer fires, so the
/// hard-IRQ wakeup races deactivation and shutdown; injections never exceed
/// the signals, and the counters stay consistent.
pub(super) fn r15(run: &Run) -> Ran {
    let env = run.env;
    let dev = open_hardirq()?;
    let count = ((env.stress.secs * 0.4 * 1e9 / HARDIRQ_PERIOD_NS as f64) as u32).max(50);
    let ctx = env.open()?;
    let e = new_eventfd()?;
    let mut tally = Tally::default();

    // Phase A.
    ok("assign", ctx.assign(&e, G))?;
    let (sent, skipped) = hardirq_signal(&dev, raw(&e), count)?;
    tally.ops += sent + skipped;
    wait_until(env, "the hard-IRQ signals to be injected", || {
        let i = injected(&ctx, G)?;
        Ok((
            i >= env.least_injections(sent),
            format!("{i} injected of {sent} sent"),
        ))
    })?;
    let a = injected(&ctx, G)?;
    check_injections(env, "phase A, signals from hard IRQ", a, sent)?;
    tally.deliveries += drain_count(&ctx)?;

    // Phase B.
    let done = AtomicBool::new(false);
    let toggles = AtomicU64::new(0);
    let sent_b = std::thread::scope(|s| -> Result<u64, String> {
        let toggler = s.spawn(|| -> TestResult {
            while !done.load(Relaxed) {
                ok(
                    "deassign while signalled from hard IRQ",
                    ctx.deassign(&e, G),
                )?;
                ok("assign while signalled from hard IRQ", ctx.assign(&e, G))?;
                toggles.fetch_add(2, Relaxed);
            }
            Ok(())
        });
        let r = hardirq_signal(&dev, raw(&e), count);
        done.store(true, Relaxed);
        let t = toggler
            .join()
            .unwrap_or_else(|_| Err("toggler panicked".into()));
        let (sent, skipped) = r?;
        t?;
        tally.ops += sent + skipped;
        Ok(sent)
    })?;
    tally.ops += toggles.load(Relaxed);
    // Let injections still queued (deferred mode) land, then count.
    ok("deassign", ctx.deassign(&e, G))?;
    let all = injected(&ctx, G)?;
    tally.deliveries += drain_count(&ctx)?;
    // A signal that lands while the eventfd is unbound stays in its counter,
    // and the next assign injects once for all of them: at most one per signal.
    ensure(all <= sent + sent_b + 1, || {
        format!(
            "{} signals from hard IRQ in all gave {all} injections",
            sent + sent_b,
        )
    })?;
    run.note(format!(
        "{} signals from hard IRQ ({} skipped by eventfd_signal_allowed), {} deassign/assign",
        sent + sent_b,
        skipped,
        toggles.load(Relaxed)
    ));
    run.add(&tally);
    Ok(ok("close(context)", ctx.close())?)
}

/// R16: lock order (the irqfd list lock vs the eventfd wait-queue lock).
/// Free-running: assign/deassign of one eventfd, a writer flooding it,
/// a second binder competing for it on another gsi (EBUSY paths under
/// the writes), and a thread binding, signalling and closing fresh
/// eventfds (EPOLLHUP takes the list lock under the wait-queue lock) and
/// reading the context.
/// Lockdep and the hang detectors judge; the test asserts the errnos
/// (a binder's deassign of its own irqfd always succeeds, and so does its
/// next assign unless the other binder holds the eventfd), the final
/// state, one shutdown per irqfd, and accounting.
pub(super) fn r16(run: &Run) -> TestResult {
    let env = run.env;
    let ctx = env.open()?;
    let e = new_eventfd()?;
    let acct = Mutex::new(Acct::new(env.nr_gsis()));
    let b = run.budget(1.0);
    let assigned = AtomicU64::new(0);
    let binder = |w: &mut Worker<'_>, g: u32| -> TestResult {
        w.repeat(|w| {
            if racy(
                w,
                "assign(contended eventfd)",
                ctx.assign(&e, g),
                &[libc::EBUSY],
            )? {
                assigned.fetch_add(1, Relaxed);
                must(w, "deassign(contended eventfd)", ctx.deassign(&e, g))?;
            }
            Ok(())
        })
    };
    run.workers(&b, 4, |w| match w.idx {
        0 => binder(w, G),
        1 => binder(w, G + 2),
        2 => flood(w, e.as_fd(), "write(contended eventfd)"),
        _ => w.repeat(|w| {
            let f = new_eventfd()?;
            must(w, "assign(fresh eventfd)", ctx.assign(&f, G + 1))?;
            assigned.fetch_add(1, Relaxed);
            must(w, "write(fresh eventfd)", sys::eventfd_signal(f.as_fd(), 1))?;
            must(w, "close(fresh eventfd)", sys::close(f))?;
            lock(&acct).read_once(&ctx, &mut w.tally)?;
            Ok(())
        }),
    })?;
    final_checks(
        run,
        &ctx,
        Some(&acct),
        &[G, G + 1, G + 2],
        assigned.load(Relaxed),
    )
}

/// R17: flushes of the cleanup queue from several sides at once: deassign
/// loops (each flushes) in one context, contexts released with irqfds
/// (each flushes) some of whose eventfds were just closed (shutdowns
/// queued by EPOLLHUP), and a writer keeping the injection work busy.
/// Asserts: every call succeeds (I3 for the loop), I2 for the released
/// contexts' remaining eventfds, one shutdown per irqfd, accounting; a
/// flush deadlock hangs the test, which the hang detector reports.
pub(super) fn r17(run: &Run) -> TestResult {
    let env = run.env;
    let a = env.open()?;
    let ea = new_eventfd()?;
    let acct = Mutex::new(Acct::new(env.nr_gsis()));
    let b = run.budget(1.0);
    let assigned = AtomicU64::new(0);
    run.workers(&b, 4, |w| match w.idx {
        0 => w.repeat(|w| {
            must(
                w,
                "I3: assign(eventfd) after its deassign returned",
                a.assign(&ea, G),
            )?;
            assigned.fetch_add(1, Relaxed);
            must(w, "deassign(eventfd)", a.deassign(&ea, G))?;
            Ok(())
        }),
        1 => {
            let mut round = 0u64;
            w.repeat(|w| {
                let bc = env.open()?;
                let mut fs = (0..4)
                    .map(|_| new_eventfd())
                    .collect::<Result<Vec<_>, _>>()?;
                for (i, f) in fs.iter().enumerate() {
                    must(w, "assign(fresh eventfd)", bc.assign(f, G + i as u32))?;
                }
                for f in &fs {
                    must(w, "write(eventfd)", sys::eventfd_signal(f.as_fd(), 1))?;
                }
                for f in fs.drain(..2) {
                    must(w, "close(bound eventfd)", sys::close(f))?;
                }
                must(w, "close(context)", bc.close())?;
                let x = i2(w, env, &fs, round)?;
                must(w, "close(new context)", x.close())?;
                round += 1;
                Ok(())
            })
        }
        2 => flood(w, ea.as_fd(), "write(eventfd)"),
        _ => reader(w, &a, &acct),
    })?;
    final_checks(run, &a, Some(&acct), &[G], assigned.load(Relaxed))
}
