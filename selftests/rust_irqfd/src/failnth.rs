// SPDX-License-Identifier: GPL-2.0
//! Fault injection over every allocation of the assign paths and of the ABI
//! v2 operations, with the kernel's fail-nth (`/proc/self/task/TID/fail-nth`,
//! FAILSLAB): for n = 1, 2, ... the n-th slab allocation of the call fails,
//! until the call needs fewer than n. Each injected failure must give a clean
//! errno and leave nothing half-assigned (for a resample assign: nothing
//! half-joined to the GSI's resampler), and the context must stay fully
//! usable; leaks show in the run's kmemleak scans. Every sweep prints the
//! number of failure points it found: 0 is a result too (the operation
//! allocates nothing, its first call succeeds).
//!
//! Each injected failure dumps its stack in the kernel log (failslab
//! `verbose` 2, when `/dev/kmsg` can be read): that is how a sweep tells the
//! call's allocations apart (see [`sweep_tagged`]). Those
//! "FAULT_INJECTION: forcing a failure" dumps on the console are expected,
//! not splats.

use std::cell::Cell;
use std::collections::BTreeSet;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::Path;

use crate::abi::{RustIrqfd, RustIrqfdDelivery, DELIVERY_MSI, FLAG_DEASSIGN};
use crate::dev::Ctx;
use crate::harness::{
    assert_line, check_record_any, drain, ensure, eq, expect_ack, expect_line, expect_nothing,
    expect_nr_irqfds, expect_signalled_when, new_eventfd, new_eventfds, ok, one_record, read_n,
    signal, signal_one, skip, stats, test, wait_until, Env, Needs, Ran, Route, Stop, Test,
    TestResult, G, RA, RB,
};
use crate::sys::{self, SysResult};

/// The fault-injection tests, in run order.
pub const TESTS: &[Test] = &[
    test!(failnth_assign, Needs::NONE),
    test!(failnth_batch_assign, Needs::gsis(4)),
    test!(failnth_batch_deassign, Needs::gsis(4)),
    test!(failnth_resample_assign, Needs::gsis(2), [Inject]),
    test!(failnth_set_route, Needs::gsis(2)),
    test!(failnth_set_mask, Needs::gsis(2), [Inject]),
    test!(failnth_ack, Needs::gsis(2)),
];

/// More failure points than any of these calls has.
const MAX_POINTS: u32 = 200;
const FAILSLAB: &str = "/sys/kernel/debug/failslab";

/// fail-nth of this thread, and failslab set up to fail sleeping
/// allocations, each injected failure with its stack in the kernel log
/// (when the log can be read); restored on drop.
///
/// The proc file cannot seek, and a read at its end gives nothing: every
/// read uses a descriptor of its own, opened up front (opening one after a
/// call could itself consume a failure still armed).
struct FailNth {
    path: String,
    file: File,
    readers: Vec<File>,
    saved: Vec<(String, String)>,
    kmsg: Option<Kmsg>,
}

impl FailNth {
    fn new() -> Result<Self, Stop> {
        let path = format!("/proc/self/task/{}/fail-nth", sys::gettid());
        let file = match OpenOptions::new().read(true).write(true).open(&path) {
            Ok(f) => f,
            Err(e) => {
                return skip(format!("{path}: {e} (needs CONFIG_FAULT_INJECTION)"));
            }
        };
        if !Path::new(FAILSLAB).exists() {
            skip(format!("no {FAILSLAB} (needs CONFIG_FAILSLAB and debugfs)"))?;
        }
        let mut me = Self {
            path,
            file,
            readers: Vec::new(),
            saved: Vec::new(),
            kmsg: Kmsg::open(),
        };
        me.refill()?;
        // GFP_KERNEL allocations may sleep: let them fail too. With the
        // kernel log at hand, each injected failure dumps its stack there
        // (see `failed_site`); without, quietly.
        me.set("ignore-gfp-wait", "N")?;
        me.set("verbose", if me.kmsg.is_some() { "2" } else { "0" })?;
        Ok(me)
    }

    fn set(&mut self, knob: &str, value: &str) -> TestResult {
        let path = format!("{FAILSLAB}/{knob}");
        let old = std::fs::read_to_string(&path).map_err(|e| format!("read {path}: {e}"))?;
        std::fs::write(&path, value).map_err(|e| format!("write {path}: {e}"))?;
        self.saved.push((path, old.trim().to_string()));
        Ok(())
    }

    /// Enough readers for a whole sweep; called only while nothing is armed.
    fn refill(&mut self) -> TestResult {
        while self.readers.len() <= MAX_POINTS as usize {
            let f = File::open(&self.path).map_err(|e| format!("open {}: {e}", self.path))?;
            self.readers.push(f);
        }
        Ok(())
    }

    /// Arms the n-th allocation of this thread's next calls to fail.
    fn arm(&mut self, n: u32) -> TestResult {
        self.file
            .write_all(n.to_string().as_bytes())
            .map_err(|e| format!("write fail-nth {n}: {e}"))
    }

    /// Forgets what the kernel log holds so far.
    fn mark(&mut self) {
        if let Some(k) = &mut self.kmsg {
            k.take();
        }
    }

    /// The allocation whose injected failure was logged since [`mark`]:
    /// `None` if none was (the failure was a quiet one, `__GFP_NOWARN`, as
    /// kmemleak's and the slab accounting's own allocations are) or the log
    /// is not at hand.
    ///
    /// [`mark`]: FailNth::mark
    fn failed_site(&mut self) -> Option<String> {
        failed_site(&self.kmsg.as_mut()?.take())
    }

    /// Whether the armed failure was injected (fail-nth reads 0), and disarms.
    fn fired(&mut self) -> Result<bool, String> {
        let mut s = String::new();
        self.readers
            .pop()
            .ok_or("out of fail-nth readers")?
            .read_to_string(&mut s)
            .map_err(|e| format!("read fail-nth: {e}"))?;
        let left: u32 = s
            .trim()
            .parse()
            .map_err(|e| format!("fail-nth {s:?}: {e}"))?;
        if left != 0 {
            self.arm(0)?;
        }
        Ok(left == 0)
    }
}

impl Drop for FailNth {
    fn drop(&mut self) {
        let _ = self.arm(0);
        for (path, value) in self.saved.drain(..).rev() {
            let _ = std::fs::write(path, value);
        }
    }
}

/// The kernel log (`/dev/kmsg`), read from where it was when opened on.
struct Kmsg {
    file: File,
}

impl Kmsg {
    fn open() -> Option<Self> {
        use std::io::{Seek, SeekFrom};
        use std::os::unix::fs::OpenOptionsExt;
        let mut file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open("/dev/kmsg")
            .ok()?;
        // /dev/kmsg seeks to its end this way: lseek(fd, 0, SEEK_END).
        file.seek(SeekFrom::End(0)).ok()?;
        Some(Self { file })
    }

    /// The messages logged since the last call (one record a read).
    fn take(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 8192];
        loop {
            match self.file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    let rec = String::from_utf8_lossy(&buf[..n]);
                    // "prio,seq,time,flags;message\n" and continuation lines.
                    if let Some((_, msg)) = rec.split_once(';') {
                        out.push(msg.lines().next().unwrap_or("").to_string());
                    }
                }
                // Records overwritten before we read them: go on.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => continue,
                Err(_) => break,
            }
        }
        out
    }
}

/// The stack of the last injected failure in `log` (failslab with `verbose`
/// 2 dumps it after "FAULT_INJECTION: forcing a failure"): its reliable
/// frames, which tell one allocation of the call from another.
fn failed_site(log: &[String]) -> Option<String> {
    let start = log
        .iter()
        .rposition(|m| m.starts_with("FAULT_INJECTION: forcing a failure"))?;
    // "func+0x1c/0x80" or "func+0x1c/0x80 [module]"; "? func+..." is a
    // stale word on the stack, not a frame.
    let is_frame = |t: &str| {
        let f = t.split(' ').next().unwrap_or("");
        matches!(f.split_once("+0x"), Some((name, off)) if !name.is_empty() && off.contains("/0x"))
    };
    let mut frames = Vec::new();
    let mut in_trace = false;
    for m in &log[start + 1..] {
        let t = m.trim();
        if t == "Call Trace:" {
            in_trace = true;
        } else if t == "</TASK>" || t.starts_with("RIP:") {
            break;
        } else if in_trace && is_frame(t) {
            frames.push(t.to_string());
        }
    }
    (!frames.is_empty()).then(|| frames.join(" < "))
}

/// Most times one n is tried again after its failure fell on a quiet
/// allocation (the call went through).
const QUIET_RETRIES: u32 = 2;

/// Most passes of one sweep before its outcome is taken as it is.
const MAX_PASSES: u32 = 4;

/// Sweeps `call` over n = 1, 2, ...: every injected failure must fail it
/// with `ENOMEM`, and `after_failure` must hold after it. A call that
/// succeeds although its n-th allocation was failed (someone inside the
/// kernel fell back gracefully: kmemleak's metadata allocation, the memcg
/// accounting vector of a fresh slab) is undone with `undo`, and the same n
/// is tried again (twice at most) before the sweep goes on. Returns the number of failure points: allocations of the call
/// whose failure fails it.
fn sweep(
    what: &str,
    fi: &mut FailNth,
    mut call: impl FnMut() -> SysResult<()>,
    undo: impl FnMut() -> TestResult,
    after_failure: impl FnMut(u32) -> TestResult,
) -> Result<u32, String> {
    sweep_tagged(what, fi, || (call(), String::new()), undo, after_failure).map(|p| p.count())
}

/// Undoes, by `how` (a deassign, an unmask, ...), a call that went through
/// although one of its allocations was failed.
fn undo(how: &str, r: SysResult<()>) -> TestResult {
    ok(&format!("{how} to undo a call that went through"), r)
}

/// [`sweep`] of a call that says where it failed (a batch: the entry), so
/// that the same allocation site failing for two entries counts twice.
///
/// The fallbacks are quiet allocations (`__GFP_NOWARN`) that come and go
/// with the slab state (a fresh slab needs a vector that later calls find in
/// place; KASAN's quarantine keeps handing out fresh objects), and fail-nth
/// counts them too: they shift the call's own allocations to other values of
/// n, so that one pass can fail the same allocation at two values of n, or
/// step over one. A failure point is therefore told by the stack that the
/// injected failure dumps in the kernel log and the call's `tag`: the points
/// are the distinct (stack, tag) pairs seen, over passes repeated (the
/// successful call undone in between) until one finds nothing new. Without
/// the kernel log, every failure counts, and the passes go on until two in a
/// row count the same.
fn sweep_tagged(
    what: &str,
    fi: &mut FailNth,
    mut call: impl FnMut() -> (SysResult<()>, String),
    mut undo: impl FnMut() -> TestResult,
    mut after_failure: impl FnMut(u32) -> TestResult,
) -> Result<Points, String> {
    let mut sites = BTreeSet::new();
    let mut counts: Vec<u32> = Vec::new();
    for pass in 1..=MAX_PASSES {
        if pass > 1 {
            undo()?;
        }
        let known = sites.len();
        let unknown = sweep_pass(
            what,
            fi,
            &mut call,
            &mut undo,
            &mut after_failure,
            &mut sites,
        )?;
        let settled = if unknown == 0 {
            pass > 1 && sites.len() == known
        } else {
            counts.last() == Some(&unknown)
        };
        counts.push(unknown);
        if settled {
            break;
        }
        if pass == MAX_PASSES {
            println!("# {what}: not settled after {MAX_PASSES} passes");
        }
    }
    Ok(Points {
        sites,
        unknown: counts.into_iter().max().unwrap_or(0),
    })
}

/// The failure points a sweep found.
struct Points {
    /// (tag, stack) of each point whose stack the kernel log showed.
    sites: BTreeSet<(String, String)>,
    /// Points whose stack it did not show: the most one pass found.
    unknown: u32,
}

impl Points {
    /// How many there are.
    fn count(&self) -> u32 {
        self.sites.len() as u32 + self.unknown
    }

    /// The stacks of the points tagged `tag`.
    fn stacks(&self, tag: &str) -> BTreeSet<&str> {
        self.sites
            .iter()
            .filter(|(t, _)| t == tag)
            .map(|(_, s)| s.as_str())
            .collect()
    }
}

/// One pass of [`sweep`], until the first call that succeeds with nothing
/// injected: the failure points go into `sites` (stack and tag); returns the
/// number of those whose stack the kernel log did not show.
fn sweep_pass(
    what: &str,
    fi: &mut FailNth,
    call: &mut impl FnMut() -> (SysResult<()>, String),
    undo: &mut impl FnMut() -> TestResult,
    after_failure: &mut impl FnMut(u32) -> TestResult,
    sites: &mut BTreeSet<(String, String)>,
) -> Result<u32, String> {
    let mut unknown = 0;
    let mut n = 1;
    let mut retried = 0;
    while n <= MAX_POINTS {
        fi.refill()?;
        fi.mark();
        fi.arm(n)?;
        let (r, tag) = call();
        let fired = fi.fired()?;
        match r {
            Ok(()) if !fired => return Ok(unknown),
            Ok(()) => {
                undo()?;
                // The failure fell on a quiet allocation, one that comes
                // and goes with the slab state. The undo changed that state:
                // the same n now likely falls on the allocation after it,
                // which going on to n + 1 would step over (in every pass
                // alike, the state cycling the same way).
                if retried < QUIET_RETRIES {
                    retried += 1;
                    continue;
                }
            }
            Err(e) => {
                ensure(fired && e.0 == libc::ENOMEM, || {
                    format!("{what}: with allocation {n} failed (injected: {fired}): {e}")
                })?;
                match fi.failed_site() {
                    Some(site) => {
                        sites.insert((tag.clone(), site));
                    }
                    None => unknown += 1,
                }
                after_failure(n)?;
            }
        }
        n += 1;
        retried = 0;
    }
    Err(format!(
        "{what}: still failing after {MAX_POINTS} injected failures"
    ))
}

/// Every allocation of assign: `ENOMEM`, nothing bound after it, and the
/// same eventfd binds and delivers once the sweep is through.
fn failnth_assign(env: &Env) -> Ran {
    let mut fi = FailNth::new()?;
    let c = env.open()?;
    let e = new_eventfd()?;
    let points = sweep(
        "assign",
        &mut fi,
        || c.assign(&e, 0),
        || undo("deassign", c.deassign(&e, 0)),
        |n| expect_nr_irqfds(&c, 0, &format!("after failing allocation {n} of assign")),
    )?;
    drop(fi);
    println!("# assign: {points} failure points");
    ensure(points >= 1, || {
        "assign allocated nothing that could fail".into()
    })?;
    expect_nr_irqfds(&c, 1, "after the assign that succeeded")?;
    signal_one(env, &c, &e, 0)?;
    ok("deassign", c.deassign(&e, 0))?;
    Ok(ok("close(context)", c.close())?)
}

/// A 4-entry batch whose `error_index` the kernel wrote back, as the tag
/// of a sweep's failure points (`entry 4` for nr: no entry at fault).
fn run_batch(
    c: &Ctx,
    entries: &[RustIrqfd],
    flags: u32,
    index: &Cell<u32>,
) -> (SysResult<()>, String) {
    let (r, i) = crate::batch::batch(c, entries, 4, flags, 0);
    index.set(i);
    (r.map(drop), format!("entry {i}"))
}

/// Every allocation of a 4-entry batch assign: `ENOMEM`, nothing bound
/// after it (the rollback ran), and the batch succeeds at the end. The
/// failure is charged to the entry whose bind failed, or to none
/// (`error_index` nr) for the allocations that are the call's own (the
/// entries' copy, the rollback list): with the kernel log at hand, every
/// entry has exactly the same failure points, those of one bind, and some
/// point reports nr.
fn failnth_batch_assign(env: &Env) -> Ran {
    let mut fi = FailNth::new()?;
    let c = env.open()?;
    let efds: [OwnedFd; 4] = new_eventfds()?;
    let entries = crate::batch::entries(&efds);
    let index = Cell::new(0);
    let what = "batch assign";
    let points = sweep_tagged(
        what,
        &mut fi,
        || run_batch(&c, &entries, 0, &index),
        || {
            for (i, e) in efds.iter().enumerate() {
                undo("deassign", c.deassign(e, i as u32))?;
            }
            Ok(())
        },
        |n| {
            let when = format!("after failing allocation {n} of a {what}");
            ensure(index.get() <= 4, || {
                format!("error_index {} {when}: past nr (4)", index.get())
            })?;
            expect_nr_irqfds(&c, 0, &when)
        },
    )?;
    drop(fi);
    println!("# batch assign of 4: {} failure points", points.count());
    ensure(points.count() >= 4, || {
        format!(
            "a batch of 4 assigns had only {} failure points",
            points.count()
        )
    })?;
    if points.sites.is_empty() {
        println!("# {what}: no stacks in the kernel log, error_index of each point not checked");
    } else {
        let own = points.stacks("entry 4");
        ensure(!own.is_empty(), || {
            format!(
                "{what}: no failure point reported error_index nr (4): {:?}",
                points.sites
            )
        })?;
        let first = points.stacks("entry 0");
        for i in 1..4 {
            ensure(points.stacks(&format!("entry {i}")) == first, || {
                format!(
                    "{what}: entries 0 and {i} have different failure points (one is charged \
                     to an entry that does not make it): {:?}",
                    points.sites
                )
            })?;
        }
    }
    expect_nr_irqfds(&c, 4, "after the batch that succeeded")?;
    for e in &efds {
        signal(e)?;
    }
    for g in 0..4 {
        eq(&format!("gsi {g} injections"), stats(&c, g)?.injected, 1)?;
    }
    Ok(ok("close(context)", c.close())?)
}

/// Every allocation of a 4-entry batch deassign: none is an entry's
/// (deassigning an irqfd allocates nothing), so each injected failure gives
/// `ENOMEM` with `error_index` nr and deassigns nothing; the batch succeeds
/// at the end and every irqfd is gone.
fn failnth_batch_deassign(env: &Env) -> Ran {
    let mut fi = FailNth::new()?;
    let c = env.open()?;
    let efds: [OwnedFd; 4] = new_eventfds()?;
    let entries = crate::batch::entries(&efds);
    let index = Cell::new(0);
    ok("batch assign", run_batch(&c, &entries, 0, &index).0)?;
    let assign = || undo("batch assign", run_batch(&c, &entries, 0, &index).0);
    let what = "batch deassign";
    let points = sweep_tagged(
        what,
        &mut fi,
        || run_batch(&c, &entries, FLAG_DEASSIGN, &index),
        assign,
        |n| {
            let when = format!("after failing allocation {n} of a {what}");
            eq(&format!("error_index {when}"), index.get(), 4)?;
            expect_nr_irqfds(&c, 4, &when)
        },
    )?;
    drop(fi);
    println!("# batch deassign of 4: {} failure points", points.count());
    ensure(points.count() >= 1, || {
        format!("a {what} allocated nothing that could fail")
    })?;
    expect_nr_irqfds(&c, 0, "after the batch deassign that succeeded")?;
    Ok(ok("close(context)", c.close())?)
}

// --- ABI v2: resample assign, SET_ROUTE, SET_MASK, ACK ---

/// Nothing is left joined to the resampler of `gsi`, which has no resample
/// irqfd (the assign of the one with resamplefd `failed` failed): a probe
/// resample irqfd asserts the line, an ACK signals the probe's resamplefd
/// alone, and once the probe is deassigned the GSI is idle again.
fn probe_resampler(env: &Env, c: &Ctx, gsi: u32, failed: &OwnedFd, when: &str) -> TestResult {
    let (p, pr) = (new_eventfd()?, new_eventfd()?);
    ok(
        &format!("assign a probe resample irqfd {when}"),
        c.assign_resample(&p, gsi, &pr),
    )?;
    assert_line(env, c, &p, gsi)?;
    expect_ack(c, gsi, 1, &format!("with only the probe joined, {when}"))?;
    expect_signalled_when(&pr, 1, "the probe's resamplefd", when)?;
    expect_signalled_when(failed, 0, "the resamplefd of the failed assign", when)?;
    ok("deassign the probe", c.deassign(&p, gsi))?;
    expect_nr_irqfds(c, 0, &format!("once the probe is gone, {when}"))?;
    expect_line(c, gsi, 0, &format!("once the probe is gone, {when}"))
}

/// Every allocation of a resample assign, twice: on a GSI without a
/// resampler (the call creates it) and joining the resampler of a GSI that
/// an earlier resample irqfd holds asserted. After each injected failure:
/// `ENOMEM`, nothing bound, the line state untouched, and the resampler
/// holds exactly the irqfds that were assigned (an ACK of the asserted line
/// signals exactly their resamplefds, never the failed one's).
fn failnth_resample_assign(env: &Env) -> Ran {
    let mut fi = FailNth::new()?;
    let c = env.open()?;
    let [e1, r1, e2, r2] = new_eventfds()?;

    let what = "resample assign (new resampler)";
    let fresh = sweep(
        what,
        &mut fi,
        || c.assign_resample(&e1, G, &r1),
        || undo("deassign", c.deassign(&e1, G)),
        |n| {
            let when = format!("after failing allocation {n} of a {what}");
            expect_nr_irqfds(&c, 0, &when)?;
            expect_line(&c, G, 0, &when)?;
            probe_resampler(env, &c, G, &r1, &when)
        },
    )?;
    println!("# {what}: {fresh} failure points");
    ensure(fresh >= 2, || {
        format!("a {what} had only {fresh} failure points (the irqfd and the resampler at least)")
    })?;
    expect_nr_irqfds(&c, 1, &format!("after the {what} that succeeded"))?;

    // The line asserted by the first resample irqfd throughout the second
    // sweep: a failed join must neither deassert it nor stay in the list.
    assert_line(env, &c, &e1, G)?;
    let what = "resample assign (join a resampler)";
    let join = sweep(
        what,
        &mut fi,
        || c.assign_resample(&e2, G, &r2),
        || undo("deassign", c.deassign(&e2, G)),
        |n| {
            let when = format!("after failing allocation {n} of a {what}");
            expect_nr_irqfds(&c, 1, &when)?;
            expect_line(&c, G, 1, &when)?;
            expect_ack(&c, G, 1, &when)?;
            expect_signalled_when(&r1, 1, "the joined irqfd's resamplefd", &when)?;
            expect_signalled_when(&r2, 0, "the resamplefd of the failed assign", &when)?;
            expect_line(&c, G, 0, &format!("after the ACK {when}"))?;
            assert_line(env, &c, &e1, G)
        },
    )?;
    println!("# {what}: {join} failure points");
    ensure(join >= 1, || {
        format!("a {what} allocated nothing that could fail")
    })?;
    drop(fi);

    // Both joined: one ACK signals both; either one asserts the line again.
    let when = "after the join that succeeded";
    expect_nr_irqfds(&c, 2, when)?;
    expect_line(&c, G, 1, when)?;
    expect_ack(&c, G, 2, when)?;
    expect_signalled_when(&r1, 1, "resamplefd 1", when)?;
    expect_signalled_when(&r2, 1, "resamplefd 2", when)?;
    assert_line(env, &c, &e2, G)?;
    ok("deassign resample irqfd 1", c.deassign(&e1, G))?;
    expect_line(&c, G, 1, "with one of two resample irqfds deassigned")?;
    expect_ack(&c, G, 1, "with one resample irqfd left")?;
    expect_signalled_when(&r1, 0, "resamplefd 1 (deassigned)", when)?;
    expect_signalled_when(&r2, 1, "resamplefd 2", when)?;
    assert_line(env, &c, &e2, G)?;
    ok("deassign resample irqfd 2", c.deassign(&e2, G))?;
    expect_line(&c, G, 0, "after the last resample irqfd left")?;
    expect_nr_irqfds(&c, 0, "after both deassigns")?;
    // And an edge irqfd delivers as always.
    ok("assign(edge)", c.assign(&e1, 0))?;
    signal_one(env, &c, &e1, 0)?;
    ok("deassign(edge)", c.deassign(&e1, 0))?;
    Ok(ok("close(context)", c.close())?)
}

/// Signals `efd`, bound to `gsi`, and reads its record: one, count 1,
/// carrying `route` (`None`: a plain line).
fn expect_route(
    env: &Env,
    c: &Ctx,
    efd: &OwnedFd,
    gsi: u32,
    route: Option<Route>,
    when: &str,
) -> TestResult {
    signal(efd)?;
    let mut v: Vec<RustIrqfdDelivery> = read_n(env, c, 1)?;
    v.extend(drain(c)?);
    eq(&format!("number of records {when}"), v.len(), 1).map_err(|e| format!("{e}: {v:?}"))?;
    let d = v[0];
    check_record_any(&d, env.nr_gsis())?;
    let want = match route {
        Some((a, m)) => (gsi, 1, DELIVERY_MSI, a, m),
        None => (gsi, 1, 0, 0, 0),
    };
    eq(
        &format!("(gsi, count, flags, msi_addr, msi_data) of the record {when}"),
        (d.gsi, d.count, d.flags, d.msi_addr, d.msi_data),
        want,
    )
}

/// SET_ROUTE swept three times on a GSI with an irqfd, a neighbour GSI with
/// another: set (plain to MSI), update (MSI to MSI) and clear (MSI to plain).
/// After an injected failure: `ENOMEM`, both GSIs keep their old routes.
/// Neither module is expected to allocate here: a sweep whose first call
/// succeeds reports 0 failure points.
fn failnth_set_route(env: &Env) -> Ran {
    let mut fi = FailNth::new()?;
    let c = env.open()?;
    let (e0, e1) = (new_eventfd()?, new_eventfd()?);
    ok(&format!("assign(gsi {G})"), c.assign(&e0, G))?;
    ok(&format!("assign(gsi {})", G + 1), c.assign(&e1, G + 1))?;
    let set = |r: Option<Route>| c.route_to(G, r);
    let steps: [(&str, Option<Route>, Option<Route>); 3] = [
        ("set route", None, Some(RA)),
        ("update route", Some(RA), Some(RB)),
        ("clear route", Some(RB), None),
    ];
    for (what, old, new) in steps {
        let points = sweep(
            what,
            &mut fi,
            || set(new),
            || undo("restore the route", set(old)),
            |n| {
                let when = format!("after failing allocation {n} of {what}");
                expect_nr_irqfds(&c, 2, &when)?;
                expect_route(env, &c, &e0, G, old, &when)?;
                expect_route(env, &c, &e1, G + 1, None, &when)
            },
        )?;
        println!("# {what}: {points} failure points");
        let when = format!("after the {what} that succeeded");
        expect_route(env, &c, &e0, G, new, &when)?;
        expect_route(env, &c, &e1, G + 1, None, &when)?;
    }
    drop(fi);
    ok("deassign", c.deassign(&e0, G))?;
    ok("deassign", c.deassign(&e1, G + 1))?;
    Ok(ok("close(context)", c.close())?)
}

/// Signals `efd`, bound to the masked `gsi`, and waits until the latch holds
/// `want` injections.
fn latch(env: &Env, c: &Ctx, efd: &OwnedFd, gsi: u32, want: u64) -> TestResult {
    signal(efd)?;
    let what = format!("{want} injection(s) latched on gsi {gsi}");
    wait_until(env, &what, || {
        let s = stats(c, gsi)?;
        Ok((s.latched >= want, format!("{s:?}")))
    })
}

/// (`masked`, `latched`) of `gsi` must be as given.
fn expect_mask(c: &Ctx, gsi: u32, masked: u32, latched: u64, when: &str) -> TestResult {
    let s = stats(c, gsi)?;
    eq(
        &format!("gsi {gsi} (masked, latched) {when}"),
        (s.masked, s.latched),
        (masked, latched),
    )
}

/// SET_MASK swept to mask an idle GSI, then to unmask it with two
/// injections latched (the unmask raises them as one record). After an
/// injected failure: `ENOMEM`, the mask and the latch as they were (an
/// unmasked GSI delivers; a masked one raised nothing and keeps its latch).
fn failnth_set_mask(env: &Env) -> Ran {
    let mut fi = FailNth::new()?;
    let c = env.open()?;
    let e = new_eventfd()?;
    ok(&format!("assign(gsi {G})"), c.assign(&e, G))?;

    let what = "mask";
    let points = sweep(
        what,
        &mut fi,
        || c.set_mask(G, true),
        || undo("unmask", c.set_mask(G, false)),
        |n| {
            let when = format!("after failing allocation {n} of {what}");
            expect_mask(&c, G, 0, 0, &when)?;
            expect_route(env, &c, &e, G, None, &when)
        },
    )?;
    println!("# {what}: {points} failure points");
    expect_mask(&c, G, 1, 0, "after the mask that succeeded")?;
    latch(env, &c, &e, G, 1)?;
    latch(env, &c, &e, G, 2)?;
    expect_nothing(&c, "with the gsi masked")?;

    let what = "unmask (latch raised)";
    let points = sweep(
        what,
        &mut fi,
        || c.set_mask(G, false),
        || {
            // The latch went out as a record: mask and latch two again.
            undo("mask again", c.set_mask(G, true))?;
            drain(&c)?;
            latch(env, &c, &e, G, 1)?;
            latch(env, &c, &e, G, 2)
        },
        |n| {
            let when = format!("after failing allocation {n} of {what}");
            expect_mask(&c, G, 1, 2, &when)?;
            expect_nothing(&c, &when)
        },
    )?;
    println!("# {what}: {points} failure points");
    drop(fi);
    expect_mask(&c, G, 0, 0, "after the unmask that succeeded")?;
    one_record(env, &c, G, 2)?;
    expect_route(env, &c, &e, G, None, "once unmasked")?;
    ok("deassign", c.deassign(&e, G))?;
    Ok(ok("close(context)", c.close())?)
}

/// (`asserted`, `acks`) of `gsi` must be as given.
fn expect_acks(c: &Ctx, gsi: u32, asserted: u32, acks: u64, when: &str) -> TestResult {
    let s = stats(c, gsi)?;
    eq(
        &format!("gsi {gsi} (asserted, acks) {when}"),
        (s.asserted, s.acks),
        (asserted, acks),
    )
}

/// ACK swept on a line that two resample irqfds share and one of them holds
/// asserted, then on the deasserted line. After an injected failure:
/// `ENOMEM`, the line still asserted, `acks` unchanged, and no resamplefd
/// signalled. The ACK that succeeds signals both resamplefds (returns 2),
/// and the one of a deasserted line returns 0.
fn failnth_ack(env: &Env) -> Ran {
    let mut fi = FailNth::new()?;
    let c = env.open()?;
    let [e1, r1, e2, r2] = new_eventfds()?;
    for (i, (e, r)) in [(&e1, &r1), (&e2, &r2)].into_iter().enumerate() {
        let what = format!("assign(eventfd {}, RESAMPLE)", i + 1);
        ok(&what, c.assign_resample(e, G, r))?;
    }
    // How many times each resamplefd was signalled since the last look.
    let signalled = |n1: u64, n2: u64, when: &str| -> TestResult {
        expect_signalled_when(&r1, n1, "resamplefd 1", when)?;
        expect_signalled_when(&r2, n2, "resamplefd 2", when)
    };
    assert_line(env, &c, &e1, G)?;
    let got = std::cell::Cell::new(None);
    // ACKs that went through before the last one (undone by the sweep).
    let acked = std::cell::Cell::new(0u64);

    let what = "ack (line asserted)";
    let points = sweep(
        what,
        &mut fi,
        || c.ack(G).map(|n| got.set(Some(n))),
        || {
            // The ACK went through: assert the line again.
            acked.set(acked.get() + 1);
            signalled(1, 1, "after an ACK that went through")?;
            assert_line(env, &c, &e1, G)
        },
        |n| {
            let when = format!("after failing allocation {n} of {what}");
            expect_acks(&c, G, 1, acked.get(), &when)?;
            signalled(0, 0, &when)
        },
    )?;
    println!("# {what}: {points} failure points");
    let when = "after the ACK that succeeded";
    eq(&format!("ACK's return {when}"), got.get(), Some(2))?;
    signalled(1, 1, when)?;
    expect_acks(&c, G, 0, acked.get() + 1, when)?;

    let what = "ack (line not asserted)";
    got.set(None);
    let points = sweep(
        what,
        &mut fi,
        || c.ack(G).map(|n| got.set(Some(n))),
        || Ok(()),
        |n| expect_line(&c, G, 0, &format!("after failing allocation {n} of {what}")),
    )?;
    println!("# {what}: {points} failure points");
    drop(fi);
    eq("ACK's return of the deasserted line", got.get(), Some(0))?;

    // Still usable: eventfd 2 asserts the line, an ACK signals both again.
    assert_line(env, &c, &e2, G)?;
    expect_ack(&c, G, 2, "of the line asserted again")?;
    signalled(1, 1, "at the end")?;
    ok("deassign(eventfd 1)", c.deassign(&e1, G))?;
    ok("deassign(eventfd 2)", c.deassign(&e2, G))?;
    expect_line(&c, G, 0, "after both deassigns")?;
    Ok(ok("close(context)", c.close())?)
}

#[cfg(test)]
mod tests {
    use super::failed_site;

    fn log(r08: &str, site: &str) -> Vec<String> {
        [
            "rust_irqfd_test: something else",
            "FAULT_INJECTION: forcing a failure.",
            "name failslab, interval 1, probability 0, space 0, times 0",
            "CPU: 1 UID: 0 PID: 50 Comm: rust_irqfd_test Tainted: G O 7.3.4 #1",
            "Call Trace:",
            " <TASK>",
            " dump_stack_lvl+0x63/0x80",
            " should_failslab+0xa1/0xf0",
            " ? stale_word+0x2a/0x3a",
            site,
            " __x64_sys_ioctl+0x93c/0xd60",
            " RIP: 0033:0x7f90681ce7a2",
            r08,
            " </TASK>",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    #[test]
    fn site_is_the_reliable_frames() {
        let a = failed_site(&log(
            " R08: 000000000000003d",
            " join+0x126/0x188 [rust_irqfd]",
        ));
        assert_eq!(
            a.as_deref(),
            Some(
                "dump_stack_lvl+0x63/0x80 < should_failslab+0xa1/0xf0 < \
                 join+0x126/0x188 [rust_irqfd] < __x64_sys_ioctl+0x93c/0xd60"
            )
        );
        // Registers and stale words do not tell sites apart; frames do.
        let b = failed_site(&log(
            " R08: 000000003fffffff",
            " join+0x126/0x188 [rust_irqfd]",
        ));
        assert_eq!(a, b);
        let c = failed_site(&log(
            " R08: 000000003fffffff",
            " join+0xe9/0x188 [rust_irqfd]",
        ));
        assert_ne!(a, c);
    }

    #[test]
    fn no_site_without_an_injected_failure() {
        assert_eq!(failed_site(&[]), None);
        assert_eq!(
            failed_site(&["Call Trace:".into(), " f+0x1/0x2".into()]),
            None
        );
    }
}
