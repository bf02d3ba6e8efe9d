// SPDX-License-Identifier: GPL-2.0
//! What a test is, what it gets, and the assertion helpers tests share.
//!
//! A test is a plain `fn(&Env) -> TestResult` (or [`Ran`] where it may
//! skip); a failure is an `Err` with a message that says what was expected
//! and what was got (with errno names). Each test area adds a
//! `pub const TESTS: &[Test]`, listed in `main.rs`'s `all_tests`, and each
//! test declares with its [`Tag`]s what it exercises, so that a pass or a
//! make target selects tests by what they are (`--tag`), not by name.

use std::fmt::Debug;
use std::os::fd::{AsFd, OwnedFd};
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::abi::{
    RustIrqfdDelivery, RustIrqfdGsiStats, RustIrqfdInfo, DELIVERY_LEVEL, DELIVERY_MSI,
    INFO_DEFERRED_ONLY,
};
use crate::dev::Ctx;
use crate::fuzz::FuzzCfg;
use crate::stress::{lock, Report, StressCfg};
use crate::sys::{self, Errno, SysResult};

/// What a check returns: `Err(message)` is a failure.
pub type TestResult = Result<(), String>;

/// Why a test stopped without passing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stop {
    /// A failure: what was expected and what was got.
    Fail(String),
    /// Not meaningful here (a missing kernel feature, a setting): the reason.
    Skip(String),
}

impl From<String> for Stop {
    fn from(msg: String) -> Self {
        Stop::Fail(msg)
    }
}

/// What a test returns when it may skip.
pub type Ran = Result<(), Stop>;

/// Skips the test at run time, for a reason found only then.
pub fn skip<T>(reason: impl Into<String>) -> Result<T, Stop> {
    Err(Stop::Skip(reason.into()))
}

/// Adds a failure to what a test gave: a pass becomes that failure, a
/// failure gains a line, and a skip with a failure added is a failure.
pub fn also(r: Ran, m: String) -> Ran {
    match r {
        Ok(()) => Err(Stop::Fail(m)),
        Err(Stop::Fail(prev)) => Err(Stop::Fail(format!("{prev}\n{m}"))),
        Err(Stop::Skip(why)) => Err(Stop::Fail(format!(
            "{m}\n(the test itself was skipped: {why})"
        ))),
    }
}

/// The message of a caught panic.
pub fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into())
}

/// Runs `f`, turning a panic into a failure: the one place the suite
/// catches panics (the runner around each test, the race frame around its
/// body so that its cleanup still runs, and each racing thread so that the
/// others are stopped at once).
pub fn catch<E: From<String>>(f: impl FnOnce() -> Result<(), E>) -> Result<(), E> {
    panic::catch_unwind(AssertUnwindSafe(f))
        .unwrap_or_else(|p| Err(E::from(format!("panic: {}", panic_message(&*p)))))
}

/// What a test exercises; passes and make targets select by these.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tag {
    /// The injection path: rerun in the `deferred_only=1` pass.
    Inject,
    /// A race scenario of the catalogue: a row of the comparison table.
    Race,
    /// A race scenario of the short set (the lifecycle races R1, R3, R4,
    /// R13 and the routing and resampling ones, R19-R21): `make mutants`.
    Core,
    /// Thousands of irqfds or a hundred module loads: left out of short
    /// runs.
    Heavy,
    /// Needs a `TEST_HOOKS=1` build (a hook parameter or irqfd_hardirq.ko)
    /// to exercise all it can; skips or narrows without one.
    Hooks,
    /// Loads and unloads the module under test.
    Module,
    /// The model-checked fuzzer.
    Fuzz,
}

impl Tag {
    /// Every tag, in the order `--list` prints them.
    pub const ALL: [Tag; 7] = [
        Tag::Inject,
        Tag::Race,
        Tag::Core,
        Tag::Heavy,
        Tag::Hooks,
        Tag::Module,
        Tag::Fuzz,
    ];

    /// The name used on the command line and by `--list`.
    pub const fn name(self) -> &'static str {
        match self {
            Tag::Inject => "inject",
            Tag::Race => "race",
            Tag::Core => "core",
            Tag::Heavy => "heavy",
            Tag::Hooks => "hooks",
            Tag::Module => "module",
            Tag::Fuzz => "fuzz",
        }
    }

    /// The tag called `name`.
    pub fn parse(name: &str) -> Option<Tag> {
        Tag::ALL.into_iter().find(|t| t.name() == name)
    }
}

/// One clause of a tag selection: every term must hold (`+`-joined tags,
/// `!tag` for a tag the test must not have).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TagClause(Vec<(bool, Tag)>);

impl TagClause {
    /// Parses `inject`, `race+core`, `!heavy+!race`.
    pub fn parse(s: &str) -> Result<Self, String> {
        s.split('+')
            .map(|term| {
                let (want, name) = match term.strip_prefix('!') {
                    Some(n) => (false, n),
                    None => (true, term),
                };
                Tag::parse(name)
                    .map(|t| (want, t))
                    .ok_or_else(|| format!("unknown tag {name:?} in {s:?}"))
            })
            .collect::<Result<_, _>>()
            .map(TagClause)
    }

    /// Whether a test with `tags` satisfies every term.
    pub fn matches(&self, tags: &[Tag]) -> bool {
        self.0.iter().all(|(want, t)| tags.contains(t) == *want)
    }
}

/// Preconditions the runner checks before a test; unmet ones make it SKIP.
#[derive(Clone, Copy, Debug, Default)]
pub struct Needs {
    /// At least this many GSIs in a context.
    pub gsis: u32,
    /// Another device node (the other module) is present.
    pub peer: bool,
}

impl Needs {
    /// No precondition.
    pub const NONE: Needs = Needs {
        gsis: 0,
        peer: false,
    };

    /// At least `n` GSIs.
    pub const fn gsis(n: u32) -> Needs {
        Needs {
            gsis: n,
            peer: false,
        }
    }

    /// A second device present.
    pub const PEER: Needs = Needs {
        gsis: 0,
        peer: true,
    };
}

/// One test.
pub struct Test {
    /// KTAP name, identical for every device.
    pub name: &'static str,
    /// The body.
    pub run: fn(&Env) -> Ran,
    /// What it needs to be meaningful.
    pub needs: Needs,
    /// What it exercises.
    pub tags: &'static [Tag],
}

/// `test!(fn_name, needs)` or `test!(fn_name, needs, [Inject, ...])`:
/// a [`Test`] named after its function, so that the KTAP name and the code
/// always agree. The body returns [`TestResult`] or [`Ran`].
macro_rules! test {
    ($f:ident, $needs:expr) => {
        $crate::harness::test!($f, $needs, [])
    };
    ($f:ident, $needs:expr, [$($tag:ident),* $(,)?]) => {
        $crate::harness::Test {
            name: stringify!($f),
            run: |env| $f(env).map_err($crate::harness::Stop::from),
            needs: $needs,
            tags: &[$($crate::harness::Tag::$tag),*],
        }
    };
}
pub(crate) use test;

/// What a test gets: the device under test and the run's settings.
pub struct Env {
    /// The device node under test.
    pub device: PathBuf,
    /// The other device nodes given (present or not).
    pub peers: Vec<PathBuf>,
    /// Bound for every wait on an asynchronous effect.
    pub timeout: Duration,
    /// `RUST_IRQFD_GET_INFO` of a fresh context, taken before the tests.
    pub info: RustIrqfdInfo,
    /// Budget of each race scenario (`--stress-secs`, `--stress-ops`).
    pub stress: StressCfg,
    /// The fuzzer's settings, its seed resolved (one seed for the run, so
    /// that every device gets the same op sequences).
    pub fuzz: FuzzCfg,
    /// What a race scenario reports for the comparison table; the runner
    /// takes it after the test.
    pub report: Mutex<Option<Report>>,
}

impl Env {
    /// Opens a fresh `O_NONBLOCK` context on the device under test.
    pub fn open(&self) -> Result<Ctx, String> {
        Ctx::open(&self.device).map_err(|e| format!("open({}): {e}", self.device.display()))
    }

    /// Opens a context on `path`.
    pub fn open_path(&self, path: &Path) -> Result<Ctx, String> {
        Ctx::open(path).map_err(|e| format!("open({}): {e}", path.display()))
    }

    /// `nr_gsis` of a context of this device.
    pub fn nr_gsis(&self) -> u32 {
        self.info.nr_gsis
    }

    /// The module injects only from its work item (`deferred_only=1`): an
    /// injection is asynchronous to the eventfd write, and signals that
    /// arrive while the work is queued merge into one injection.
    pub fn deferred(&self) -> bool {
        self.info.flags & INFO_DEFERRED_ONLY != 0
    }

    /// The peers whose node exists.
    pub fn present_peers(&self) -> Vec<PathBuf> {
        self.peers.iter().filter(|p| p.exists()).cloned().collect()
    }

    /// Leaves a race scenario's report for the runner.
    pub fn put_report(&self, r: Report) {
        *lock(&self.report) = Some(r);
    }

    /// The report a race scenario left, if any.
    pub fn take_report(&self) -> Option<Report> {
        lock(&self.report).take()
    }
}

/// `what` must succeed.
pub fn ok<T>(what: &str, r: SysResult<T>) -> Result<T, String> {
    r.map_err(|e| format!("{what}: expected success, got {e}"))
}

/// `what` must fail with `want`.
pub fn fails<T: Debug>(what: &str, r: SysResult<T>, want: i32) -> TestResult {
    match r {
        Err(e) if e.0 == want => Ok(()),
        Err(e) => Err(format!("{what}: expected {}, got {e}", Errno(want))),
        Ok(v) => Err(format!(
            "{what}: expected {}, got success ({v:?})",
            Errno(want)
        )),
    }
}

/// `got == want`.
pub fn eq<T: PartialEq + Debug>(what: &str, got: T, want: T) -> TestResult {
    if got == want {
        Ok(())
    } else {
        Err(format!("{what}: expected {want:?}, got {got:?}"))
    }
}

/// `cond`, or fail with `msg`.
pub fn ensure(cond: bool, msg: impl FnOnce() -> String) -> TestResult {
    if cond {
        Ok(())
    } else {
        Err(msg())
    }
}

/// A new non-blocking eventfd.
pub fn new_eventfd() -> Result<OwnedFd, String> {
    ok(
        "eventfd(0, EFD_NONBLOCK)",
        sys::eventfd(0, libc::EFD_NONBLOCK),
    )
}

/// Signals an eventfd once.
pub fn signal(efd: impl AsFd) -> TestResult {
    ok("write(eventfd, 1)", sys::eventfd_signal(efd.as_fd(), 1))
}

/// `nr_irqfds` of `ctx`.
pub fn nr_irqfds(ctx: &Ctx) -> Result<u32, String> {
    Ok(ok("RUST_IRQFD_GET_INFO", ctx.info())?.nr_irqfds)
}

/// `nr_irqfds` of `ctx` must be `want`.
pub fn expect_nr_irqfds(ctx: &Ctx, want: u32, when: &str) -> TestResult {
    eq(&format!("nr_irqfds {when}"), nr_irqfds(ctx)?, want)
}

/// `RUST_IRQFD_GSI_STATS` for `gsi`, checked for the per-GSI invariants.
pub fn stats(ctx: &Ctx, gsi: u32) -> Result<RustIrqfdGsiStats, String> {
    let s = ok(&format!("RUST_IRQFD_GSI_STATS(gsi {gsi})"), ctx.stats(gsi))?;
    eq("gsi echoed by RUST_IRQFD_GSI_STATS", s.gsi, gsi)?;
    check_invariants(&s)?;
    Ok(s)
}

/// `injected == coalesced + raised + latched`, `raised == delivered +
/// pending`, `pending <= 1`, `masked` and `asserted` 0 or 1, nothing
/// latched on an unmasked GSI (unmask empties the latch), and the in
/// fields echoed back.
pub fn check_invariants(s: &RustIrqfdGsiStats) -> TestResult {
    let g = s.gsi;
    ensure(s.pad == 0, || {
        format!("gsi {g}: stats pad came back as {:#x}", s.pad)
    })?;
    ensure(s.pending <= 1, || {
        format!("gsi {g}: pending {} > 1 ({s:?})", s.pending)
    })?;
    ensure(s.masked <= 1 && s.asserted <= 1, || {
        format!("gsi {g}: masked/asserted not 0 or 1 ({s:?})")
    })?;
    ensure(s.masked == 1 || s.latched == 0, || {
        format!("gsi {g}: latched {} on an unmasked gsi ({s:?})", s.latched)
    })?;
    ensure(
        s.coalesced
            .checked_add(s.raised)
            .and_then(|n| n.checked_add(s.latched))
            == Some(s.injected),
        || format!("gsi {g}: injected != coalesced + raised + latched ({s:?})"),
    )?;
    ensure(s.delivered.checked_add(s.pending) == Some(s.raised), || {
        format!("gsi {g}: raised != delivered + pending ({s:?})")
    })
}

/// Expected counters of one GSI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Counters {
    pub injected: u64,
    pub raised: u64,
    pub coalesced: u64,
    pub delivered: u64,
    pub pending: u64,
}

impl From<&RustIrqfdGsiStats> for Counters {
    fn from(s: &RustIrqfdGsiStats) -> Self {
        Counters {
            injected: s.injected,
            raised: s.raised,
            coalesced: s.coalesced,
            delivered: s.delivered,
            pending: s.pending,
        }
    }
}

impl Counters {
    /// The whole stats of `gsi` with these counters on an idle line: not
    /// masked, nothing latched, never acked, not asserted.
    pub fn full(self, gsi: u32) -> RustIrqfdGsiStats {
        RustIrqfdGsiStats {
            gsi,
            injected: self.injected,
            raised: self.raised,
            coalesced: self.coalesced,
            delivered: self.delivered,
            pending: self.pending,
            ..Default::default()
        }
    }
}

/// The counters of `gsi` must be exactly `want`, and its mask, latch and
/// level state idle (none of it was used).
pub fn expect_stats(ctx: &Ctx, gsi: u32, want: Counters) -> TestResult {
    expect_full(ctx, gsi, want.full(gsi))
}

/// Every field of the stats of `gsi` must be as in `want`.
pub fn expect_full(ctx: &Ctx, gsi: u32, want: RustIrqfdGsiStats) -> TestResult {
    let s = stats(ctx, gsi)?;
    eq(&format!("gsi {gsi} stats"), s, want)
}

/// Polls `cond` until it gives `true` or the timeout expires; `what` names
/// the awaited condition in the failure message, with the last state
/// `cond` reported.
pub fn wait_until(
    env: &Env,
    what: &str,
    mut cond: impl FnMut() -> Result<(bool, String), String>,
) -> TestResult {
    let start = Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        let (done, state) = cond()?;
        if done {
            return Ok(());
        }
        if start.elapsed() >= env.timeout {
            return Err(format!(
                "timed out after {:?} waiting for {what} (last: {state})",
                env.timeout
            ));
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// Waits until `gsi` has seen at least `n` injections.
pub fn wait_injected(env: &Env, ctx: &Ctx, gsi: u32, n: u64) -> TestResult {
    wait_until(env, &format!("{n} injection(s) into gsi {gsi}"), || {
        let s = stats(ctx, gsi)?;
        Ok((s.injected >= n, format!("{s:?}")))
    })
}

/// One non-blocking read of up to `max` records: `Ok(vec![])` on `EAGAIN`.
pub fn try_read(ctx: &Ctx, max: usize) -> Result<Vec<RustIrqfdDelivery>, String> {
    match ctx.read_records(max) {
        Ok(v) if v.is_empty() => {
            Err("read(context) returned 0 bytes (EOF); expected records or EAGAIN".into())
        }
        Ok(v) => Ok(v),
        Err(e) if e.0 == libc::EAGAIN => Ok(Vec::new()),
        Err(e) if e.0 == libc::EIO => Err("read(context) returned a partial record".into()),
        Err(e) => Err(format!(
            "read(context): expected records or EAGAIN, got {e}"
        )),
    }
}

/// Reads until at least `n` records have come, within the timeout.
pub fn read_n(env: &Env, ctx: &Ctx, n: usize) -> Result<Vec<RustIrqfdDelivery>, String> {
    let mut got = Vec::new();
    wait_until(env, &format!("{n} record(s) from read(2)"), || {
        got.extend(try_read(ctx, 16)?);
        Ok((got.len() >= n, format!("{} record(s): {got:?}", got.len())))
    })?;
    Ok(got)
}

/// Reads everything pending now (until `EAGAIN`).
pub fn drain(ctx: &Ctx) -> Result<Vec<RustIrqfdDelivery>, String> {
    let mut all = Vec::new();
    loop {
        let v = try_read(ctx, 16)?;
        if v.is_empty() {
            return Ok(all);
        }
        all.extend(v);
    }
}

/// `read(2)` must give `EAGAIN`: nothing is pending.
pub fn expect_nothing(ctx: &Ctx, when: &str) -> TestResult {
    match ctx.read_records(16) {
        Err(e) if e.0 == libc::EAGAIN => Ok(()),
        Err(e) => Err(format!("read {when}: expected EAGAIN, got {e}")),
        Ok(v) => Err(format!("read {when}: expected EAGAIN, got record(s) {v:?}")),
    }
}

/// A record is well formed: seq and count >= 1, gsi in range, only known
/// flags, pad zero, and its MSI fields consistent with its flags (with
/// `DELIVERY_MSI`: a nonzero, 4-byte aligned address; without: both 0).
pub fn check_record_any(d: &RustIrqfdDelivery, nr_gsis: u32) -> TestResult {
    ensure(d.seq >= 1, || format!("record with seq 0: {d:?}"))?;
    ensure(d.count >= 1, || format!("record with count 0: {d:?}"))?;
    ensure(d.gsi < nr_gsis, || {
        format!("record gsi {} >= nr_gsis {nr_gsis}: {d:?}", d.gsi)
    })?;
    ensure(d.pad == 0, || format!("record with non-zero pad: {d:?}"))?;
    ensure(d.flags & !(DELIVERY_MSI | DELIVERY_LEVEL) == 0, || {
        format!("record with unknown flags {:#x}: {d:?}", d.flags)
    })?;
    if d.flags & DELIVERY_MSI != 0 {
        ensure(d.msi_addr != 0 && d.msi_addr & 3 == 0, || {
            format!("MSI record with an address that SET_ROUTE refuses: {d:?}")
        })
    } else {
        ensure(d.msi_addr == 0 && d.msi_data == 0, || {
            format!("record without the MSI flag but with msi_addr/msi_data: {d:?}")
        })
    }
}

/// A plain record (no route, no level): well formed and flags 0.
pub fn check_record(d: &RustIrqfdDelivery, nr_gsis: u32) -> TestResult {
    check_record_any(d, nr_gsis)?;
    ensure(d.flags == 0, || {
        format!("record with non-zero flags/msi/pad: {d:?}")
    })
}

/// Exactly one record, for `gsi` with `count`; returns it.
pub fn one_record(env: &Env, ctx: &Ctx, gsi: u32, count: u64) -> Result<RustIrqfdDelivery, String> {
    let mut v = read_n(env, ctx, 1)?;
    v.extend(drain(ctx)?);
    eq("number of records", v.len(), 1).map_err(|e| format!("{e}: {v:?}"))?;
    let d = v[0];
    check_record(&d, env.nr_gsis())?;
    eq("record gsi", d.gsi, gsi)?;
    eq("record count", d.count, count)?;
    Ok(d)
}
