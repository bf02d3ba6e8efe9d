// SPDX-License-Identifier: GPL-2.0
//! Building blocks of the race scenarios (`races.rs`), after the "generic
//! userspace harness building blocks" of races.md: a time-and-op budget,
//! a cancellable rendezvous (barrier), one-shot hand-over slots, per-thread
//! tallies (ops, deliveries, errors by errno), scoped worker threads pinned
//! to CPUs that are always joined, and the frame every scenario runs in:
//! `/dev/kmsg` markers, a final flush of the cleanup queues, an eventfd-id
//! leak check, a kmemleak scan, and the report the comparison table is made
//! of.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::harness::{also, catch, new_eventfd, ok, panic_message, Env, Ran, TestResult};
use crate::sys::{self, Errno};

/// `--stress-secs` default: each scenario's time budget.
pub const DEFAULT_SECS: f64 = 2.0;
/// `--stress-ops` default: each scenario's op budget.
pub const DEFAULT_OPS: u64 = 1_000_000;

/// The budget of every scenario, from the command line.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StressCfg {
    /// Time budget of one scenario, in seconds.
    pub secs: f64,
    /// Op budget of one scenario (racing syscalls, all threads together).
    pub ops: u64,
    /// Scan for leaks with kmemleak after each scenario (when available).
    pub kmemleak: bool,
}

impl Default for StressCfg {
    fn default() -> Self {
        StressCfg {
            secs: DEFAULT_SECS,
            ops: DEFAULT_OPS,
            kmemleak: true,
        }
    }
}

/// Locks `m`, ignoring poisoning (a panicking worker is reported anyway).
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

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

/// What one scenario (or one thread of it) did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Racing operations issued (syscalls).
    pub ops: u64,
    /// Injections read back from a context (sum of the records' counts).
    pub deliveries: u64,
    /// Expected errors, by errno name.
    pub errors: BTreeMap<String, u64>,
}

impl Tally {
    /// Counts one error.
    pub fn error(&mut self, e: Errno) {
        *self.errors.entry(e.name()).or_default() += 1;
    }

    /// Adds another tally to this one.
    pub fn merge(&mut self, o: &Tally) {
        self.ops += o.ops;
        self.deliveries += o.deliveries;
        for (k, v) in &o.errors {
            *self.errors.entry(k.clone()).or_default() += v;
        }
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
    tally: Mutex<Tally>,
    notes: Mutex<Vec<String>>,
}

impl<'e> Run<'e> {
    fn new(env: &'e Env) -> Self {
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
    pub fn rendezvous(&self, n: usize) -> Rendezvous {
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

    /// Runs `n` threads of `f` (each gets its [`Worker`]), pinned to
    /// different CPUs where possible, and joins them all whatever happens.
    /// A thread that fails (or panics) stops the budget and cancels `rv`
    /// so that the others leave their loops; the failures are returned
    /// together. The threads' tallies go into the scenario's.
    pub fn workers<F>(&self, budget: &Budget, n: usize, rv: Option<&Rendezvous>, f: F) -> TestResult
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

/// What a race scenario reports for the comparison table.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// The scenario's tally, all threads together.
    pub tally: Tally,
    /// Diagnostic lines (timings, what could not be exercised).
    pub notes: Vec<String>,
}

/// Writes one line to the kernel log, if `/dev/kmsg` is writable.
pub fn kmsg(line: &str) {
    if let Ok(mut f) = std::fs::OpenOptions::new().write(true).open("/dev/kmsg") {
        let _ = f.write_all(line.as_bytes());
    }
}

const KMEMLEAK: &str = "/sys/kernel/debug/kmemleak";

/// Writes a command to the kmemleak file; `false` if it is not writable.
fn kmemleak_cmd(cmd: &str) -> bool {
    std::fs::OpenOptions::new()
        .write(true)
        .open(KMEMLEAK)
        .and_then(|mut f| f.write_all(cmd.as_bytes()))
        .is_ok()
}

/// Scans for leaks: `None` if kmemleak is not usable, else the report's
/// lines about unreferenced objects (empty: clean). Clears the reported
/// objects so that the next scan starts clean.
fn kmemleak_scan() -> Option<Vec<String>> {
    if !kmemleak_cmd("scan") {
        return None;
    }
    let text = std::fs::read_to_string(KMEMLEAK).unwrap_or_default();
    kmemleak_cmd("clear");
    Some(leak_lines(&text))
}

/// The report text if it reports any unreferenced object, else nothing.
fn leak_lines(text: &str) -> Vec<String> {
    if text.contains("unreferenced object") {
        text.lines().map(str::to_string).collect()
    } else {
        Vec::new()
    }
}

static KMEMLEAK_BASELINE: AtomicBool = AtomicBool::new(false);

/// Before the first scenario of the run: a scan and a clear, so that what
/// leaked earlier (the tests before the race scenarios) is not blamed on
/// a race scenario. What it finds is reported with the scenario's notes
/// (so that the log shows it), not as its failure.
fn kmemleak_baseline(notes: &mut Vec<String>) {
    if KMEMLEAK_BASELINE.swap(true, Relaxed) {
        return;
    }
    if let Some(lines) = kmemleak_scan() {
        let n = lines
            .iter()
            .filter(|l| l.contains("unreferenced object"))
            .count();
        if n > 0 {
            notes.push(format!(
                "kmemleak: {n} unreferenced object(s) reported before the first race scenario \
                 (leaked earlier in the run, not by a race scenario); first lines:"
            ));
            notes.extend(lines.into_iter().take(20));
        }
    }
}

/// The `eventfd-id:` of an eventfd, from `/proc/self/fdinfo`.
pub fn fdinfo_field(fd: i32, field: &str) -> Option<String> {
    let text = std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}")).ok()?;
    parse_fdinfo(&text, field)
}

/// The value of `field:` in fdinfo text.
pub fn parse_fdinfo(text: &str, field: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k.trim() == field).then(|| v.trim().to_string())
    })
}

/// The id a new eventfd gets: the lowest free one (eventfd ids come from
/// an IDA and are freed when the `eventfd_ctx` is), so leaked contexts
/// make it creep up. `None` without /proc or the field.
pub fn eventfd_lowest_free_id() -> Option<u64> {
    use std::os::fd::AsRawFd;
    let e = sys::eventfd(0, libc::EFD_NONBLOCK).ok()?;
    fdinfo_field(e.as_raw_fd(), "eventfd-id")?.parse().ok()
}

/// How far the lowest free eventfd id may creep during a scenario before it
/// counts as a leak (other processes may hold a few ids meanwhile).
const EVENTFD_ID_SLACK: u64 = 32;

/// Flushes the cleanup queue of the module behind `path`: a deassign waits
/// for every shutdown queued before it, whoever queued it.
fn flush_module(path: &std::path::Path) -> TestResult {
    let c = crate::dev::Ctx::open(path).map_err(|e| format!("open({}): {e}", path.display()))?;
    let e = new_eventfd()?;
    ok(
        &format!(
            "{}: deassign(unbound eventfd) to flush the cleanup queue",
            path.display()
        ),
        c.deassign(&e, 0),
    )
}

/// The KTAP name of the device under test.
pub fn device_name(env: &Env) -> String {
    env.device
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| env.device.display().to_string())
}

/// Runs one race scenario in its frame: kmsg begin marker, the body (a
/// panic becomes a failure), a flush of the cleanup queues (the devices'
/// and the peers'), the eventfd-id leak check, a kmemleak scan (leaks fail
/// the scenario with the first 20 lines of the report), the end marker,
/// and the report for the table (left in `env` for the runner).
pub fn scenario(env: &Env, name: &str, body: fn(&Run) -> Ran) -> Ran {
    let dev = device_name(env);
    let mut notes = Vec::new();
    if env.stress.kmemleak {
        kmemleak_baseline(&mut notes);
    }
    let id_before = eventfd_lowest_free_id();
    kmsg(&format!("rust_irqfd_test: begin {name} {dev}"));

    let run = Run::new(env);
    let mut res = catch(|| body(&run));

    for path in std::iter::once(env.device.clone()).chain(env.present_peers()) {
        if let Err(m) = flush_module(&path) {
            res = also(res, m);
        }
    }
    if let (Some(a), Some(b)) = (id_before, eventfd_lowest_free_id()) {
        if b > a + EVENTFD_ID_SLACK {
            res = also(
                res,
                format!(
                    "eventfd_ctx leak: the lowest free eventfd id went from {a} to {b} during the \
                     scenario, with every eventfd of the test closed and the cleanup queues flushed"
                ),
            );
        }
    }
    let t0 = Instant::now();
    if let Some(lines) = env.stress.kmemleak.then(kmemleak_scan).flatten() {
        notes.push(format!(
            "kmemleak scan: {:.1} s",
            t0.elapsed().as_secs_f64()
        ));
        if !lines.is_empty() {
            let n = lines
                .iter()
                .filter(|l| l.contains("unreferenced object"))
                .count();
            res = also(
                res,
                format!(
                    "kmemleak: {n} unreferenced object(s) after the scenario; first lines:\n{}",
                    lines
                        .iter()
                        .take(20)
                        .cloned()
                        .collect::<Vec<_>>()
                        .join("\n")
                ),
            );
        }
    }
    kmsg(&format!("rust_irqfd_test: end {name} {dev}"));

    notes.extend(lock(&run.notes).drain(..));
    env.put_report(Report {
        tally: lock(&run.tally).clone(),
        notes,
    });
    res
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
                kmemleak: false,
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
                kmemleak: false,
            },
            1.0,
        );
        assert!(b.over());
    }

    #[test]
    fn tally_merge_and_errors() {
        let mut a = Tally {
            ops: 3,
            ..Default::default()
        };
        a.error(Errno(libc::EBUSY));
        a.error(Errno(libc::EBUSY));
        let mut b = Tally {
            deliveries: 7,
            ..Default::default()
        };
        b.error(Errno(libc::EBADF));
        b.error(Errno(libc::EBUSY));
        a.merge(&b);
        assert_eq!(a.ops, 3);
        assert_eq!(a.deliveries, 7);
        assert_eq!(a.errors.get("EBUSY"), Some(&3));
        assert_eq!(a.errors.get("EBADF"), Some(&1));
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

    /// The round structure of the scenarios (leader sets up, two
    /// rendezvous per round, followers loop until cancelled, a free-running
    /// thread until the budget stops) ends on the budget, in every thread.
    #[test]
    fn round_pattern_terminates() {
        let env = Env {
            device: "/nonexistent".into(),
            peers: vec![],
            timeout: Duration::from_secs(1),
            info: Default::default(),
            stress: StressCfg {
                secs: 0.05,
                ops: u64::MAX,
                kmemleak: false,
            },
            fuzz: Default::default(),
            report: Default::default(),
        };
        let run = Run::new(&env);
        let b = run.budget(1.0);
        let rv = run.rendezvous(3);
        let slot = Slot::new();
        let rounds = AtomicU64::new(0);
        let r = run.workers(&b, 4, Some(&rv), |w| match w.idx {
            0 => {
                let mut round = 0u64;
                while round == 0 || !w.over() {
                    slot.put(round);
                    if !rv.wait() || !rv.wait() {
                        break;
                    }
                    round += 1;
                }
                rounds.store(round, Relaxed);
                b.stop();
                rv.cancel();
                Ok(())
            }
            1 | 2 => {
                while rv.wait() {
                    w.op();
                    if w.idx == 1 {
                        slot.take("round")?;
                    }
                    if !rv.wait() {
                        break;
                    }
                }
                Ok(())
            }
            _ => {
                while !w.over() {
                    std::thread::yield_now();
                }
                Ok(())
            }
        });
        assert_eq!(r, Ok(()));
        let n = rounds.load(Relaxed);
        assert!(n >= 1);
        assert_eq!(lock(&run.tally).ops, 2 * n);
    }

    #[test]
    fn eventfd_ids_creep_with_open_eventfds() {
        let Some(a) = eventfd_lowest_free_id() else {
            eprintln!("no eventfd-id in fdinfo: check skipped");
            return;
        };
        let held: Vec<_> = (0..4).map(|_| sys::eventfd(0, 0).unwrap()).collect();
        let b = eventfd_lowest_free_id().unwrap();
        assert!(b >= a + 4, "{a} {b}");
        drop(held);
        assert!(eventfd_lowest_free_id().unwrap() <= a + 1);
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
    fn fdinfo_parsing() {
        let t = "pos:\t0\nflags:\t02004002\nmnt_id:\t15\nino:\t1057\n\
                 eventfd-count:                0\neventfd-id: 12\neventfd-semaphore: 0\n";
        assert_eq!(parse_fdinfo(t, "eventfd-id").as_deref(), Some("12"));
        assert_eq!(parse_fdinfo(t, "eventfd-count").as_deref(), Some("0"));
        assert_eq!(parse_fdinfo(t, "nope"), None);
    }

    #[test]
    fn also_combines() {
        use crate::harness::{skip, Stop};
        let fail = |m: &str| Err(Stop::Fail(m.into()));
        assert_eq!(also(Ok(()), "b".into()), fail("b"));
        assert_eq!(also(fail("a"), "b".into()), fail("a\nb"));
        assert_eq!(
            also(skip("no rmmod"), "leak".into()),
            fail("leak\n(the test itself was skipped: no rmmod)")
        );
    }

    #[test]
    fn kmemleak_text() {
        assert!(leak_lines("").is_empty());
        let t = "unreferenced object 0xffff888 (size 64):\n  comm \"x\"\n";
        assert_eq!(leak_lines(t).len(), 2);
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

    #[test]
    fn workers_join_and_report_failures() {
        let env = Env {
            device: "/nonexistent".into(),
            peers: vec![],
            timeout: Duration::from_secs(1),
            info: Default::default(),
            stress: StressCfg::default(),
            fuzz: Default::default(),
            report: Default::default(),
        };
        let run = Run::new(&env);
        let b = run.budget(1.0);
        let rv = run.rendezvous(2);
        // Thread 1 fails at once; thread 0 waits on the rendezvous and must
        // be released, not stranded.
        let r = run.workers(&b, 2, Some(&rv), |w| {
            w.op();
            if w.idx == 1 {
                return Err("boom".into());
            }
            while rv.wait() {}
            Ok(())
        });
        assert_eq!(r, Err("thread 1: boom".to_string()));
        assert_eq!(lock(&run.tally).ops, 2);
        let r = run.workers(&b, 1, None, |_| panic!("kaboom"));
        assert!(r.unwrap_err().contains("kaboom"));
    }
}
