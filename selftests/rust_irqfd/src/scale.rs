// SPDX-License-Identifier: GPL-2.0
//! Scale tests: a context with thousands of irqfds torn down at once, and a
//! multi-threaded signal storm whose delivery count is checked exactly.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use crate::harness::{
    check_injections, check_invariants, drain, ensure, eq, expect_nr_irqfds, new_eventfd, ok,
    signal, stats, test, Env, Needs, Test, TestResult,
};
use crate::sys;

/// The scale tests, in run order.
pub const TESTS: &[Test] = &[
    test!(release_4096_irqfds, Needs::NONE, [Inject]),
    test!(signal_storm_64_irqfds, Needs::gsis(64), [Inject]),
];

/// Irqfds in `release_4096_irqfds`.
const MANY: usize = 4096;

/// Raises the soft descriptor limit to at least `n` (root may raise the hard one).
pub fn want_fds(n: u64) -> TestResult {
    let (soft, hard) =
        sys::nofile_limit().map_err(|_| "getrlimit(RLIMIT_NOFILE) failed".to_string())?;
    if soft >= n {
        return Ok(());
    }
    sys::set_nofile_limit(n, hard.max(n))
        .map_err(|_| format!("setrlimit(RLIMIT_NOFILE, {n}) failed"))
}

/// Close a context holding 4096 irqfds: when close(2) returns they are all
/// gone, so every one of the eventfds binds again at once in a new context,
/// and each still works.
fn release_4096_irqfds(env: &Env) -> TestResult {
    want_fds(MANY as u64 + 64)?;
    let gsis = env.nr_gsis();
    let efds: Vec<OwnedFd> = (0..MANY).map(|_| new_eventfd()).collect::<Result<_, _>>()?;
    let a = env.open()?;
    for (i, e) in efds.iter().enumerate() {
        ok(&format!("assign #{i}"), a.assign(e, i as u32 % gsis))?;
    }
    expect_nr_irqfds(&a, MANY as u32, "after 4096 assigns")?;
    // Every irqfd has an injection in flight (queued work, in deferred mode)
    // when its context goes: release must wait for all of them.
    for e in &efds {
        signal(e)?;
    }
    let t0 = Instant::now();
    ok("close(context with 4096 irqfds)", a.close())?;
    let took = t0.elapsed();
    // The last irqfd is the last to be shut down: if close(2) returned before
    // the shutdowns ran, it would still be hooked on and consume this signal.
    let last = efds.last().ok_or("no eventfd")?;
    signal(last)?;
    eq(
        "counter of the last eventfd after close(context) and a signal (an irqfd that \
         outlived its context would have consumed it)",
        sys::eventfd_read(last.as_fd()).map_err(|e| format!("read(eventfd): {e}"))?,
        1,
    )?;

    let b = env.open()?;
    for (i, e) in efds.iter().enumerate() {
        ok(
            &format!("assign #{i} in a new context right after the close"),
            b.assign(e, i as u32 % gsis),
        )?;
    }
    expect_nr_irqfds(&b, MANY as u32, "in the new context")?;
    // Each still delivers: signal all, then every GSI used has the right count.
    for e in &efds {
        signal(e)?;
    }
    let used = (MANY as u32).min(gsis);
    let total = || -> Result<u64, String> {
        let mut total = 0;
        for g in 0..used {
            let s = stats(&b, g)?;
            check_invariants(&s)?;
            total += s.injected;
        }
        Ok(total)
    };
    // One signal per irqfd leaves nothing to merge: one injection each in
    // both modules, on either path. Deferred ones land asynchronously, 4096
    // work items each delayed by the test hook: the bound is four timeouts.
    let deadline = Instant::now() + env.timeout * 4;
    loop {
        let t = total()?;
        if t >= MANY as u64 {
            break;
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "{t} injections {:?} after one signal on each of {MANY} irqfds",
                env.timeout * 4
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    eq(
        "injections after one signal per eventfd",
        total()?,
        MANY as u64,
    )?;
    println!("# release of {MANY} irqfds took {took:?}");
    ok("close(new context)", b.close())
}

/// Four writer threads signal 64 irqfds while a reader drains the context;
/// the injections must equal the writes exactly (each write wakes the irqfd
/// once), and the records read must add up to the injections.
fn signal_storm_64_irqfds(env: &Env) -> TestResult {
    const IRQFDS: usize = 64;
    const WRITERS: usize = 4;
    const ROUNDS: u64 = 100;
    let c = env.open()?;
    let efds: Vec<OwnedFd> = (0..IRQFDS)
        .map(|_| new_eventfd())
        .collect::<Result<_, _>>()?;
    for (i, e) in efds.iter().enumerate() {
        ok(&format!("assign gsi {i}"), c.assign(e, i as u32))?;
    }
    let writes: Vec<AtomicU64> = (0..IRQFDS).map(|_| AtomicU64::new(0)).collect();
    let read_counts: Vec<AtomicU64> = (0..IRQFDS).map(|_| AtomicU64::new(0)).collect();
    let done = AtomicBool::new(false);
    let start = Barrier::new(WRITERS + 1);
    let result: Result<(), String> = std::thread::scope(|s| {
        let reader = s.spawn(|| -> TestResult {
            start.wait();
            loop {
                let finished = done.load(Ordering::Acquire);
                for d in drain(&c)? {
                    let g = d.gsi as usize;
                    ensure(g < IRQFDS, || {
                        format!("record for unexpected gsi {}", d.gsi)
                    })?;
                    read_counts[g].fetch_add(d.count, Ordering::Relaxed);
                }
                if finished {
                    return Ok(());
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        });
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let efds = &efds;
                let writes = &writes;
                let start = &start;
                s.spawn(move || -> TestResult {
                    start.wait();
                    for r in 0..ROUNDS {
                        for k in 0..IRQFDS {
                            // Each writer walks the eventfds from its own offset.
                            let i = (k + w * 16 + r as usize) % IRQFDS;
                            sys::eventfd_signal(efds[i].as_fd(), 1)
                                .map_err(|e| format!("write(eventfd {i}): {e}"))?;
                            writes[i].fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Ok(())
                })
            })
            .collect();
        let mut first_err = None;
        for w in writers {
            if let Err(e) = w.join().unwrap_or_else(|_| Err("writer panicked".into())) {
                first_err.get_or_insert(e);
            }
        }
        // In deferred mode injections trail the writes: let them land first.
        if env.deferred() {
            for (i, e) in efds.iter().enumerate() {
                if let Err(e) = c.deassign(e, i as u32) {
                    first_err.get_or_insert(format!("deassign gsi {i}: {e}"));
                }
            }
        }
        done.store(true, Ordering::Release);
        if let Err(e) = reader
            .join()
            .unwrap_or_else(|_| Err("reader panicked".into()))
        {
            first_err.get_or_insert(e);
        }
        first_err.map_or(Ok(()), Err)
    });
    result?;
    for g in 0..IRQFDS {
        let s = stats(&c, g as u32)?;
        check_invariants(&s)?;
        let w = writes[g].load(Ordering::Relaxed);
        let r = read_counts[g].load(Ordering::Relaxed);
        ensure(s.pending == 0, || {
            format!("gsi {g}: record still pending after the drain: {s:?}")
        })?;
        eq(&format!("gsi {g}: counts read vs injected"), r, s.injected)?;
        // Documented: with deferred_only, signals that arrive while the
        // injection work is queued may be merged (the C reference does),
        // never lost entirely; the Rust module injects each.
        check_injections(env, &format!("gsi {g}, {w} writes"), s.injected, w)?;
    }
    let total: u64 = writes.iter().map(|w| w.load(Ordering::Relaxed)).sum();
    eq("writes", total, (WRITERS as u64) * ROUNDS * IRQFDS as u64)?;
    ok("close(context)", c.close())
}
