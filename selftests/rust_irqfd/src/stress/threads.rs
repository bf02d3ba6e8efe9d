// SPDX-License-Identifier: GPL-2.0
//! The threads of a scenario: a time-and-op budget, per-thread workers
//! (index, tally, a deterministic random source), a barrier that can be
//! cancelled, one-shot hand-over slots, and [`Run`], the scenario being
//! run, which spawns the workers pinned to CPUs and always joins them.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use super::{lock, StressCfg, Tally};
use crate::harness::{catch, panic_message, Env, TestResult};
use crate::sys;

/// A scenario's budget: it is over when the time or the ops are spent, or
/// when someone stopped it (the leader at its end, or a failing thread).
pub struct Budget {
    start: Instant,
    secs: Duration,
    max_ops: u64,
    ops: AtomicU64,
    stopped: AtomicBool,
}

impl Budget {
    /// `fraction` of the configured budget (a scenario with phases splits it).
    pub fn new(cfg: StressCfg, fraction: f64) -> Self {
        let secs = (cfg.secs * fraction).clamp(0.0, 86_400.0);
        Budget {
            start: Instant::now(),
            secs: Duration::from_secs_f64(secs),
            max_ops: ((cfg.ops as f64 * fraction) as u64).max(1),
            ops: AtomicU64::new(0),
            stopped: AtomicBool::new(false),
        }
    }

    /// Counts `n` ops.
    pub fn spend(&self, n: u64) {
        self.ops.fetch_add(n, Relaxed);
    }

    /// Whether the scenario should wind down.
    pub fn over(&self) -> bool {
        self.stopped.load(Relaxed)
            || self.ops.load(Relaxed) >= self.max_ops
            || self.start.elapsed() >= self.secs
    }

    /// Ends the budget now.
    pub fn stop(&self) {
        self.stopped.store(true, Relaxed);
    }
}

/// One thread of a scenario: its index, the budget, its own tally.
pub struct Worker<'a> {
    /// Thread index, 0 .. n (0 is the leader by convention).
    pub idx: usize,
    /// The budget shared by all threads of the phase.
    pub budget: &'a Budget,
    /// What this thread did.
    pub tally: Tally,
    rng: u64,
}

impl<'a> Worker<'a> {
    /// A worker for thread `idx` (also used on the main thread).
    pub fn new(idx: usize, budget: &'a Budget) -> Self {
        Worker {
            idx,
            budget,
            tally: Tally::default(),
            rng: 0x9e37_79b9_7f4a_7c15 ^ (idx as u64).wrapping_mul(0x2545_f491_4f6c_dd1d),
        }
    }

    /// Counts one racing op, in the tally and against the budget.
    pub fn op(&mut self) {
        self.tally.ops += 1;
        self.budget.spend(1);
    }

    /// Whether to stop.
    pub fn over(&self) -> bool {
        self.budget.over()
    }

    /// A free-running thread: `step` again and again until the budget is
    /// over (not at all if it is over already); the first failure ends it.
    pub fn repeat(&mut self, mut step: impl FnMut(&mut Self) -> TestResult) -> TestResult {
        while !self.over() {
            step(self)?;
        }
        Ok(())
    }

    /// A free-running leader: `round(0)`, `round(1)`, ...: at least one
    /// round, then until the budget is over; the first failure ends it.
    pub fn each_round(
        &mut self,
        mut round: impl FnMut(&mut Self, u64) -> TestResult,
    ) -> TestResult {
        let mut n = 0;
        while self.more_rounds(n) {
            round(self, n)?;
            n += 1;
        }
        Ok(())
    }

    /// Whether a leader that has run `done` rounds runs another one: the
    /// first always (a scenario exercises its race at least once, however
    /// small the budget), the others while the budget lasts.
    pub(super) fn more_rounds(&self, done: u64) -> bool {
        done == 0 || !self.over()
    }

    /// A pseudo-random number below `n` (`n > 0`), deterministic per thread.
    pub fn rand(&mut self, n: u64) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng % n.max(1)
    }

    /// Busy-waits a random 0 .. `max_spins` iterations: a jitter much finer
    /// than a sleep (which is at least tens of microseconds).
    pub fn jitter(&mut self, max_spins: u64) {
        for _ in 0..self.rand(max_spins + 1) {
            std::hint::spin_loop();
        }
    }
}

#[derive(Default)]
struct RvState {
    arrived: usize,
    generation: u64,
    cancelled: bool,
    timed_out: bool,
}

/// A barrier for `n` threads that can be cancelled (every wait then returns
/// `false` at once) and that gives up after a timeout, so that a thread that
/// leaves its loop early never strands the others.
pub struct Rendezvous {
    n: usize,
    timeout: Duration,
    state: Mutex<RvState>,
    cv: Condvar,
}

impl Rendezvous {
    /// A rendezvous of `n` threads; a wait longer than `timeout` cancels it.
    pub fn new(n: usize, timeout: Duration) -> Self {
        Rendezvous {
            n,
            timeout,
            state: Mutex::new(RvState::default()),
            cv: Condvar::new(),
        }
    }

    /// Waits for the other threads: `true` when all arrived, `false` when the
    /// rendezvous is cancelled (the caller leaves its loop).
    pub fn wait(&self) -> bool {
        let mut s = lock(&self.state);
        if s.cancelled {
            return false;
        }
        let generation = s.generation;
        s.arrived += 1;
        if s.arrived == self.n {
            s.arrived = 0;
            s.generation += 1;
            self.cv.notify_all();
            return true;
        }
        let deadline = Instant::now() + self.timeout;
        loop {
            if s.generation != generation {
                return true;
            }
            if s.cancelled {
                return false;
            }
            let now = Instant::now();
            if now >= deadline {
                s.cancelled = true;
                s.timed_out = true;
                self.cv.notify_all();
                return false;
            }
            s = self
                .cv
                .wait_timeout(s, deadline - now)
                .map(|(g, _)| g)
                .unwrap_or_else(|e| e.into_inner().0);
        }
    }

    /// Releases every waiter, now and later, with `false`.
    pub fn cancel(&self) {
        lock(&self.state).cancelled = true;
        self.cv.notify_all();
    }

    /// Whether a wait gave up on its timeout.
    pub fn timed_out(&self) -> bool {
        lock(&self.state).timed_out
    }
}

/// A one-value hand-over between threads (the leader puts before the
/// rendezvous, a worker takes after it).
pub struct Slot<T>(Mutex<Option<T>>);

impl<T> Slot<T> {
    /// An empty slot.
    pub fn new() -> Self {
        Slot(Mutex::new(None))
    }

    /// Puts `v` (replacing, and dropping, what was there).
    pub fn put(&self, v: T) {
        *lock(&self.0) = Some(v);
    }

    /// Takes the value; an empty slot is a bug of the scenario.
    pub fn take(&self, what: &str) -> Result<T, String> {
        lock(&self.0)
            .take()
            .ok_or_else(|| format!("internal: slot {what} is empty"))
    }
}

/// One scenario being run on one device.
pub struct Run<'e> {
    /// The device and settings.
    pub env: &'e Env,
    pub(super) tally: Mutex<Tally>,
    pub(super) notes: Mutex<Vec<String>>,
}

impl<'e> Run<'e> {
    pub(super) fn new(env: &'e Env) -> Self {
        Run {
            env,
            tally: Mutex::new(Tally::default()),
            notes: Mutex::new(Vec::new()),
        }
    }

    /// A budget of `fraction` of the configured one, starting now.
    pub fn budget(&self, fraction: f64) -> Budget {
        Budget::new(self.env.stress, fraction)
    }

    /// A rendezvous of `n` threads whose timeout leaves room for the
    /// leader's own bounded waits between two rendezvous.
    pub(super) fn rendezvous(&self, n: usize) -> Rendezvous {
        Rendezvous::new(n, self.env.timeout * 4 + Duration::from_secs(10))
    }

    /// Adds a tally (of the main thread) to the scenario's.
    pub fn add(&self, t: &Tally) {
        lock(&self.tally).merge(t);
    }

    /// A line for the report, printed as a KTAP diagnostic.
    pub fn note(&self, s: String) {
        lock(&self.notes).push(s);
    }

    /// Runs `n` free-running threads of `f` (each gets its [`Worker`]);
    /// see [`Run::spawn`].
    pub fn workers<F>(&self, budget: &Budget, n: usize, f: F) -> TestResult
    where
        F: Fn(&mut Worker<'_>) -> TestResult + Sync,
    {
        self.spawn(budget, n, None, f)
    }

    /// Runs `n` threads of `f` (each gets its [`Worker`]), pinned to
    /// different CPUs where possible, and joins them all whatever happens.
    /// A thread that fails (or panics) stops the budget and cancels `rv`
    /// so that the others leave their loops; the failures are returned
    /// together. The threads' tallies go into the scenario's.
    pub(super) fn spawn<F>(
        &self,
        budget: &Budget,
        n: usize,
        rv: Option<&Rendezvous>,
        f: F,
    ) -> TestResult
    where
        F: Fn(&mut Worker<'_>) -> TestResult + Sync,
    {
        let cpus = sys::allowed_cpus();
        let stop_all = || {
            budget.stop();
            if let Some(rv) = rv {
                rv.cancel();
            }
        };
        let mut failures = Vec::new();
        std::thread::scope(|s| {
            let mut handles = Vec::new();
            for i in 0..n {
                let (f, cpus, stop_all) = (&f, &cpus, &stop_all);
                let spawned = std::thread::Builder::new()
                    .name(format!("race-{i}"))
                    .spawn_scoped(s, move || {
                        if !cpus.is_empty() {
                            // Pinning is best effort.
                            let _ = sys::pin_to_cpu(cpus[i % cpus.len()]);
                        }
                        let mut w = Worker::new(i, budget);
                        let r = catch(|| f(&mut w));
                        if r.is_err() {
                            stop_all();
                        }
                        (r, w.tally)
                    });
                match spawned {
                    Ok(h) => handles.push((i, h)),
                    Err(e) => {
                        failures.push(format!("spawning thread {i}: {e}"));
                        stop_all();
                        break;
                    }
                }
            }
            for (i, h) in handles {
                match h.join() {
                    Ok((r, t)) => {
                        self.add(&t);
                        if let Err(m) = r {
                            failures.push(format!("thread {i}: {m}"));
                        }
                    }
                    Err(p) => failures.push(format!("thread {i}: panic: {}", panic_message(&*p))),
                }
            }
        });
        if failures.is_empty() {
            if let Some(rv) = rv.filter(|rv| rv.timed_out()) {
                failures.push(format!(
                    "a thread did not reach the rendezvous within {:?} (stuck in a syscall?)",
                    rv.timeout
                ));
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(failures.join("\n"))
        }
    }
}

#[cfg(test)]
impl<'e> Run<'e> {
    /// A run outside the scenario frame, for unit tests of scenario parts.
    pub fn for_tests(env: &'e Env) -> Self {
        Self::new(env)
    }

    /// The notes taken so far.
    pub fn notes_for_tests(&self) -> Vec<String> {
        lock(&self.notes).clone()
    }
}

/// An environment for unit tests of the building blocks (no device).
#[cfg(test)]
pub(super) fn test_env(stress: StressCfg) -> Env {
    Env {
        device: "/nonexistent".into(),
        peers: vec![],
        timeout: Duration::from_secs(1),
        info: Default::default(),
        stress,
        fuzz: Default::default(),
        report: Default::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn budget_ops_and_stop() {
        let b = Budget::new(
            StressCfg {
                secs: 3600.0,
                ops: 10,
                kmemleak: crate::stress::Kmemleak::Off,
            },
            0.5,
        );
        assert!(!b.over());
        b.spend(4);
        assert!(!b.over());
        b.spend(1);
        assert!(b.over());
        let b = Budget::new(StressCfg::default(), 1.0);
        b.stop();
        assert!(b.over());
        let b = Budget::new(
            StressCfg {
                secs: 0.0,
                ops: 10,
                kmemleak: crate::stress::Kmemleak::Off,
            },
            1.0,
        );
        assert!(b.over());
    }

    #[test]
    fn rendezvous_rounds_and_cancel() {
        let rv = Rendezvous::new(3, Duration::from_secs(10));
        let rounds = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for i in 0..3 {
                let (rv, rounds) = (&rv, &rounds);
                s.spawn(move || {
                    for _ in 0..100 {
                        assert!(rv.wait());
                        if i == 0 {
                            rounds.fetch_add(1, Relaxed);
                        }
                    }
                });
            }
        });
        assert_eq!(rounds.load(Relaxed), 100);

        // One thread leaves: the other two are released by the cancel.
        let rv = Rendezvous::new(3, Duration::from_secs(10));
        std::thread::scope(|s| {
            for _ in 0..2 {
                let rv = &rv;
                s.spawn(move || assert!(!rv.wait()));
            }
            std::thread::sleep(Duration::from_millis(20));
            rv.cancel();
        });
        assert!(!rv.timed_out());
        assert!(!rv.wait());
    }

    #[test]
    fn rendezvous_times_out() {
        let rv = Rendezvous::new(2, Duration::from_millis(30));
        assert!(!rv.wait());
        assert!(rv.timed_out());
    }

    #[test]
    fn slot_hand_over() {
        let s = Slot::new();
        assert!(s.take("x").is_err());
        s.put(5);
        assert_eq!(s.take("x"), Ok(5));
        assert!(s.take("x").is_err());
    }

    #[test]
    fn worker_rand_in_range() {
        let b = Budget::new(StressCfg::default(), 1.0);
        let mut w = Worker::new(3, &b);
        for _ in 0..1000 {
            assert!(w.rand(7) < 7);
        }
        assert_eq!(w.rand(0), 0);
        w.op();
        assert_eq!(w.tally.ops, 1);
    }

    /// `repeat` runs nothing on a spent budget, `each_round` runs one
    /// round; both stop on the budget and on the first failure.
    #[test]
    fn worker_loops() {
        let spent = Budget::new(StressCfg::default(), 1.0);
        spent.stop();
        let mut w = Worker::new(0, &spent);
        let mut n = 0;
        let r = w.repeat(|_| {
            n += 1;
            Ok(())
        });
        assert_eq!(r, Ok(()));
        assert_eq!(n, 0);
        let mut seen = Vec::new();
        let r = w.each_round(|_, r| {
            seen.push(r);
            Ok(())
        });
        assert_eq!(r, Ok(()));
        assert_eq!(seen, [0]);

        let ops = StressCfg {
            secs: 3600.0,
            ops: 5,
            kmemleak: crate::stress::Kmemleak::Off,
        };
        let b = Budget::new(ops, 1.0);
        let mut w = Worker::new(0, &b);
        let r = w.repeat(|w| {
            w.op();
            Ok(())
        });
        assert_eq!(r, Ok(()));
        assert_eq!(w.tally.ops, 5);
        let b = Budget::new(ops, 1.0);
        let mut w = Worker::new(0, &b);
        let mut seen = Vec::new();
        let r = w.each_round(|w, r| {
            seen.push(r);
            w.op();
            if r == 2 {
                return Err("round 2".into());
            }
            Ok(())
        });
        assert_eq!(r, Err("round 2".to_string()));
        assert_eq!(seen, [0, 1, 2]);
    }

    #[test]
    fn workers_join_and_report_failures() {
        let env = test_env(StressCfg::default());
        let run = Run::new(&env);
        let b = run.budget(1.0);
        let rv = run.rendezvous(2);
        // Thread 1 fails at once; thread 0 waits on the rendezvous and must
        // be released, not stranded.
        let r = run.spawn(&b, 2, Some(&rv), |w| {
            w.op();
            if w.idx == 1 {
                return Err("boom".into());
            }
            while rv.wait() {}
            Ok(())
        });
        assert_eq!(r, Err("thread 1: boom".to_string()));
        assert_eq!(lock(&run.tally).ops, 2);
        let r = run.workers(&b, 1, |_| panic!("kaboom"));
        assert!(r.unwrap_err().contains("kaboom"));
    }
}
