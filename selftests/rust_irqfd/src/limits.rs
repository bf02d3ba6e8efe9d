// SPDX-License-Identifier: GPL-2.0
//! Limits, accounting and isolation between contexts: the per-context
//! `max_irqfds` (alone and under a thread storm), allocations charged to the
//! memory cgroup, and a flush scoped to one context (a context being torn
//! down does not hold up another context's deassign).

use std::os::fd::OwnedFd;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use crate::harness::{
    ensure, eq, expect_nr_irqfds, fails, new_eventfd, ok, signal, skip, test, wait_nr_irqfds, Env,
    Needs, Ran, Stop, Test, TestResult,
};
use crate::scale::want_fds;
use crate::sys;

/// The limit and isolation tests, in run order.
pub const TESTS: &[Test] = &[
    test!(limit_max_irqfds, Needs::NONE, [Heavy]),
    test!(limit_thread_storm, Needs::NONE, [Inject, Heavy]),
    test!(scoped_flush, Needs::NONE, [Heavy]),
    test!(memcg_accounting, Needs::NONE, [Heavy]),
];

/// The limit tests need `max_irqfds + 1` eventfds: beyond this they skip.
const LIMIT_TESTABLE: u32 = 8192;

fn eventfds(n: usize) -> Result<Vec<OwnedFd>, String> {
    want_fds(n as u64 + 64)?;
    (0..n).map(|_| new_eventfd()).collect()
}

/// The device's `max_irqfds`, if small enough to test.
fn testable_limit(env: &Env) -> Result<u32, Stop> {
    let max = env.info.max_irqfds;
    if max == 0 || max > LIMIT_TESTABLE {
        return skip(format!(
            "max_irqfds is {max}; load the module with max_irqfds<={LIMIT_TESTABLE} to test it"
        ));
    }
    Ok(max)
}

/// Fill a context to `max_irqfds`: one more is `ENOSPC` and leaves nothing
/// behind; a deassign and an `EPOLLHUP` each free a place again.
fn limit_max_irqfds(env: &Env) -> Ran {
    let max = testable_limit(env)?;
    let gsis = env.nr_gsis();
    let mut efds = eventfds(max as usize + 2)?;
    let c = env.open()?;
    for (i, e) in efds.iter().take(max as usize).enumerate() {
        ok(&format!("assign #{i}"), c.assign(e, i as u32 % gsis))?;
    }
    expect_nr_irqfds(&c, max, "at the limit")?;
    let extra = &efds[max as usize];
    fails("assign past max_irqfds", c.assign(extra, 0), libc::ENOSPC)?;
    expect_nr_irqfds(&c, max, "after the refused assign")?;
    // The refused eventfd was left unbound: another context takes it.
    let other = env.open()?;
    ok(
        "assign the refused eventfd in another context",
        other.assign(extra, 0),
    )?;
    ok("deassign it there", other.deassign(extra, 0))?;
    ok("close(other context)", other.close())?;

    // A deassign frees a place.
    ok("deassign #0", c.deassign(&efds[0], 0))?;
    ok("assign once a deassign freed a place", c.assign(extra, 0))?;
    fails(
        "assign past max_irqfds again",
        c.assign(&efds[0], 0),
        libc::ENOSPC,
    )?;
    // So does an EPOLLHUP (closing a bound eventfd), once its shutdown ran.
    drop(efds.remove(1));
    wait_nr_irqfds(env, &c, max - 1, "the EPOLLHUP shutdown to free a place")?;
    ok(
        "assign once an EPOLLHUP freed a place",
        c.assign(&efds[0], 0),
    )?;
    expect_nr_irqfds(&c, max, "back at the limit")?;
    Ok(ok("close(context)", c.close())?)
}

/// Four threads race to assign `max_irqfds + 64` eventfds into one context:
/// exactly `max_irqfds` succeed, every other one is `ENOSPC`, and the context
/// holds exactly the winners.
fn limit_thread_storm(env: &Env) -> Ran {
    const THREADS: usize = 4;
    let max = testable_limit(env)?;
    let total = max as usize + 64;
    let efds = eventfds(total)?;
    let gsis = env.nr_gsis();
    let c = env.open()?;
    let won = AtomicU32::new(0);
    let refused = AtomicU32::new(0);
    let start = Barrier::new(THREADS);
    std::thread::scope(|s| -> TestResult {
        let workers: Vec<_> = (0..THREADS)
            .map(|t| {
                let (efds, c, won, refused, start) = (&efds, &c, &won, &refused, &start);
                s.spawn(move || -> TestResult {
                    start.wait();
                    for i in (t..total).step_by(THREADS) {
                        match c.assign(&efds[i], i as u32 % gsis) {
                            Ok(()) => won.fetch_add(1, Ordering::Relaxed),
                            Err(e) if e.0 == libc::ENOSPC => {
                                refused.fetch_add(1, Ordering::Relaxed)
                            }
                            Err(e) => return Err(format!("assign #{i}: {e}")),
                        };
                    }
                    Ok(())
                })
            })
            .collect();
        for w in workers {
            w.join()
                .unwrap_or_else(|_| Err("assigner panicked".into()))?;
        }
        Ok(())
    })?;
    eq("assigns that succeeded", won.load(Ordering::Relaxed), max)?;
    eq(
        "assigns refused with ENOSPC",
        refused.load(Ordering::Relaxed),
        (total as u32) - max,
    )?;
    expect_nr_irqfds(&c, max, "after the storm")?;
    Ok(ok("close(context)", c.close())?)
}

/// Irqfds of the context torn down in `scoped_flush`, unless the
/// environment says otherwise (`make stress` runs it with 65536).
const SCOPED_N: usize = 4096;
/// The environment variable that sets it.
const SCOPED_N_VAR: &str = "IRQFD_SCOPED_N";
/// Descriptors besides the eventfds: stdio, the contexts, the harness's own.
const FD_MARGIN: u64 = 64;
/// Below this many irqfds A's teardown is too short to tell anything.
const SCOPED_MIN: usize = 1024;
/// The hung-task detector's timeout.
const HUNG_TASK_TIMEOUT: &str = "/proc/sys/kernel/hung_task_timeout_secs";
/// What it is raised to, at least, while more than `SCOPED_N` irqfds are
/// torn down: 65536 take two minutes under TCG and KASAN (C's release
/// waits in one flush all along).
const SCOPED_HUNG_TASK_SECS: u64 = 900;

/// The hung-task timeout raised to at least `secs` (unless the detector is
/// off), restored on drop.
struct HungTaskTimeout {
    saved: Option<String>,
}

impl HungTaskTimeout {
    fn raise(secs: u64) -> Self {
        let Ok(old) = std::fs::read_to_string(HUNG_TASK_TIMEOUT) else {
            return Self { saved: None };
        };
        let old = old.trim().to_string();
        match old.parse::<u64>() {
            Ok(t) if t != 0 && t < secs => {
                if std::fs::write(HUNG_TASK_TIMEOUT, secs.to_string()).is_ok() {
                    println!(
                        "# scoped_flush: hung_task_timeout_secs {old} -> {secs} for this test"
                    );
                    return Self { saved: Some(old) };
                }
                Self { saved: None }
            }
            _ => Self { saved: None },
        }
    }
}

impl Drop for HungTaskTimeout {
    fn drop(&mut self) {
        if let Some(old) = self.saved.take() {
            let _ = std::fs::write(HUNG_TASK_TIMEOUT, old);
        }
    }
}

/// The soft `RLIMIT_NOFILE`, raised towards `want` as far as it goes: to
/// `want` itself (root may raise the hard limit too), else to the hard
/// limit. Returns (soft, hard) as they are afterwards.
fn raise_nofile(want: u64) -> Result<(u64, u64), String> {
    let get = || sys::nofile_limit().map_err(|e| format!("getrlimit(RLIMIT_NOFILE): {e}"));
    let set = |soft: u64, hard: u64| sys::set_nofile_limit(soft, hard).is_ok();
    let (soft, hard) = get()?;
    if soft < want && !set(want, hard.max(want)) && soft < hard {
        set(hard, hard);
    }
    get()
}

/// Context A holds N irqfds (`IRQFD_SCOPED_N`, default 4096, at most
/// `max_irqfds` and what `RLIMIT_NOFILE` allows), each with a signal in
/// flight, and is closed; meanwhile context B deassigns one irqfd. B's
/// deassign waits only for B's own shutdown: it must take a small fraction
/// of A's teardown and return before A's close does. (With one flush for the
/// whole module, B's deassign would wait for A's N shutdowns.)
fn scoped_flush(env: &Env) -> Ran {
    let (asked, from) = match std::env::var(SCOPED_N_VAR) {
        Err(_) => (SCOPED_N, format!("default; {SCOPED_N_VAR} unset")),
        Ok(v) => match v.trim().parse::<usize>() {
            Ok(n) if n >= 1 => (n, format!("{SCOPED_N_VAR}={n}")),
            _ => return Err(format!("{SCOPED_N_VAR}={v:?}: not a positive number").into()),
        },
    };
    let max = env.info.max_irqfds as usize;
    let mut n = asked.min(max);
    let (soft, hard) = raise_nofile(n as u64 + 1 + FD_MARGIN)?;
    let room = soft.saturating_sub(1 + FD_MARGIN) as usize;
    let mut why = String::new();
    if n < asked {
        why = format!(", capped by max_irqfds={max}");
    }
    if room < n {
        n = room;
        why = format!("{why}, capped by RLIMIT_NOFILE (soft {soft}, hard {hard})");
    }
    if n < SCOPED_MIN.min(asked) {
        return skip(format!(
            "N={asked} asked for ({from}), but only {n} irqfds possible{why}: \
             load the module with a larger max_irqfds, or raise the hard RLIMIT_NOFILE"
        ));
    }
    println!("# scoped_flush: N={n} ({from}{why})");
    // A's close(2) blocks in the kernel for as long as the teardown takes:
    // with many more irqfds than the default, past the hung-task timeout of
    // the test VM (20 s), which is no hang.
    let _hung = (n > SCOPED_N).then(|| HungTaskTimeout::raise(SCOPED_HUNG_TASK_SECS));
    let gsis = env.nr_gsis();
    let efds = eventfds(n + 1)?;
    let a = env.open()?;
    for (i, e) in efds.iter().take(n).enumerate() {
        ok(&format!("assign #{i} in A"), a.assign(e, i as u32 % gsis))?;
    }
    let b = env.open()?;
    let eb = &efds[n];
    ok("assign in B", b.assign(eb, 0))?;
    for e in efds.iter().take(n) {
        signal(e)?;
    }
    let t0 = Instant::now();
    let (a_done, b_start, b_done) = std::thread::scope(|s| -> Result<_, String> {
        let closer = s.spawn(move || -> Result<Duration, String> {
            ok("close(A)", a.close())?;
            Ok(t0.elapsed())
        });
        // Let A's release get going (taking its irqfds and queueing their
        // shutdowns happens in the first moments of close(2)).
        std::thread::sleep(Duration::from_millis(20));
        let b_start = t0.elapsed();
        ok("deassign in B while A is torn down", b.deassign(eb, 0))?;
        let b_done = t0.elapsed();
        let a_done = closer
            .join()
            .unwrap_or_else(|_| Err("closer panicked".into()))?;
        Ok((a_done, b_start, b_done))
    })?;
    println!(
        "# close(A) with {n} irqfds took {a_done:?}; B's deassign ran {b_start:?}..{b_done:?}"
    );
    expect_nr_irqfds(&b, 0, "in B after its deassign")?;
    if a_done < Duration::from_millis(200) {
        return skip(format!(
            "A's teardown took only {a_done:?}: too short to tell a scoped flush from a global one"
        ));
    }
    let b_took = b_done.saturating_sub(b_start);
    ensure(b_took * 4 < a_done && b_done < a_done, || {
        format!(
            "B's deassign took {b_took:?} (until {b_done:?}) while A's close took {a_done:?}: \
             B waited for A's shutdowns"
        )
    })?;
    Ok(ok("close(B)", b.close())?)
}

/// Where the test mounts cgroup2 if it is not mounted yet.
const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// The cgroup2 root, mounted if needed, with the memory controller enabled
/// for its children; `None` if the kernel or the environment has none.
fn memcg_root() -> Option<&'static Path> {
    let root = Path::new(CGROUP_ROOT);
    if !root.join("cgroup.controllers").exists() {
        let _ = std::fs::create_dir_all(root);
        let _ = std::process::Command::new("mount")
            .args(["-t", "cgroup2", "none", CGROUP_ROOT])
            .status();
    }
    let controllers = std::fs::read_to_string(root.join("cgroup.controllers")).ok()?;
    if !controllers.split_whitespace().any(|c| c == "memory") {
        return None;
    }
    std::fs::write(root.join("cgroup.subtree_control"), "+memory").ok()?;
    Some(root)
}

fn memory_current(cg: &Path) -> Result<u64, String> {
    let s = std::fs::read_to_string(cg.join("memory.current"))
        .map_err(|e| format!("read {}/memory.current: {e}", cg.display()))?;
    s.trim()
        .parse()
        .map_err(|e| format!("memory.current {s:?}: {e}"))
}

/// Irqfds assigned in `memcg_accounting`.
const ACCOUNTED_N: usize = 4096;
/// Lower bound on what one irqfd must be charged (the structures are larger).
const ACCOUNTED_MIN_BYTES: u64 = 128;

/// The test process moves into a fresh memory cgroup and assigns 4096
/// irqfds: the cgroup's usage must grow by at least 128 bytes per irqfd
/// (allocations charged with `GFP_KERNEL_ACCOUNT`, not to the kernel).
fn memcg_accounting(env: &Env) -> Ran {
    let Some(root) = memcg_root() else {
        return skip("no cgroup2 memory controller");
    };
    let n = ACCOUNTED_N.min(env.info.max_irqfds as usize);
    let cg = root.join(format!("rust_irqfd_test.{}", std::process::id()));
    std::fs::create_dir(&cg).map_err(|e| format!("mkdir {}: {e}", cg.display()))?;
    let enter = |dir: &Path| {
        std::fs::write(dir.join("cgroup.procs"), std::process::id().to_string())
            .map_err(|e| format!("move into {}: {e}", dir.display()))
    };
    let result = (|| -> TestResult {
        enter(&cg)?;
        // Everything but the irqfds exists before the first reading.
        let efds = eventfds(n)?;
        let c = env.open()?;
        let gsis = env.nr_gsis();
        let before = memory_current(&cg)?;
        for (i, e) in efds.iter().enumerate() {
            ok(&format!("assign #{i}"), c.assign(e, i as u32 % gsis))?;
        }
        let after = memory_current(&cg)?;
        let grew = after.saturating_sub(before);
        println!(
            "# memory.current grew by {grew} bytes for {n} irqfds ({} bytes each)",
            grew / n as u64
        );
        ensure(grew >= ACCOUNTED_MIN_BYTES * n as u64, || {
            format!(
                "the cgroup was charged {grew} bytes for {n} irqfds, under \
                 {ACCOUNTED_MIN_BYTES} per irqfd: the allocations are not accounted"
            )
        })?;
        ok("close(context)", c.close())
    })();
    // Back to the root, whatever happened, and remove the cgroup.
    let back = enter(root);
    let _ = std::fs::remove_dir(&cg);
    Ok(result.and(back)?)
}
