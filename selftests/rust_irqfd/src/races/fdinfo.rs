// SPDX-License-Identifier: GPL-2.0
//! R13b: fdinfo read against teardown. Both modules list a context's
//! irqfds a chunk at a time under the context's lock and resume by
//! eventfd key, so a listing is consistent per chunk, not a snapshot of
//! the whole tree; this races that paging against the three ways irqfds
//! leave a tree, with threads reading `/proc/self/fdinfo/<context>` in a
//! loop:
//!
//! * A: the leader deassigns 96 of 128 irqfds in a random order, by
//!   single ioctls and `RUST_IRQFD_IRQFD_BATCH`es of 1 to 24, at random;
//! * B: the leader closes the eventfds of 96 of 128 irqfds at once (the
//!   `EPOLLHUP` mass shutdown);
//! * C: the leader closes a context with 96 irqfds by putting `/dev/null`
//!   over its descriptor number (`dup3`, so the number is never free for
//!   a reader's `open(2)` to take) while the readers read the fdinfo of
//!   that number. A reader that got the file holds it until its read ends,
//!   so the release of the irqfds runs when the last reference goes, in
//!   the leader or in that reader.
//!
//! Oracles, on every listing: it is well formed (the parser's rules, and
//! the context's fields); no irqfd is listed twice; every listed (fd, gsi,
//! resample) was bound in the round; none is listed whose teardown had
//! returned before the read began; every irqfd whose teardown had not
//! begun when the read ended is listed (those bound through the race
//! included); `irqfds:` lies between those two counts and is at least the
//! number of lines (the tree only shrinks during the race); `shutdowns:`
//! never goes back; so once every teardown had returned, the listing is
//! exactly the survivors. Both windows are exact. The leader publishes
//! each return with a release store that the reader loads with acquire
//! before its read, and deassign and the `EPOLLHUP` wakeup take the irqfd
//! out of the tree before they return (no other thread holds a reference
//! to the eventfds closed in B). The leader announces each teardown with
//! a sequentially consistent store before its call, and the reader loads
//! the count after a full fence once its read returned: a teardown it did
//! not see announced took the context's lock after the read's last chunk
//! had released it (store buffering, which the fences forbid), so its
//! irqfd was in the tree for the whole listing. In C a listing of the
//! context is complete (its release cannot have begun while the reader
//! held the file), and afterwards every eventfd binds again at once (I2).
//! Nothing may hang: a reader gives up after four timeouts. `nr_irqfds` is
//! exact after every round of A and B, and 0 with one shutdown per assign
//! at the end.

use std::collections::BTreeMap;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{
    fence, AtomicBool, AtomicU64, AtomicUsize,
    Ordering::{Acquire, Relaxed, Release, SeqCst},
};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::calls::{must, open_devnull, pause, raw};
use super::oracle::{expect_nr, final_checks, i2};
use super::G;
use crate::abi::{RustIrqfd, FLAG_DEASSIGN, RUST_IRQFD_ABI_VERSION};
use crate::batch::{batch, entry};
use crate::dev::Ctx;
use crate::harness::{ensure, eq, new_eventfd, Env, TestResult};
use crate::observe::FdInfo;
use crate::stress::{fdinfo_field, lock, Run, Worker};
use crate::sys;

/// Irqfds of a round of A and B.
const ROUND: usize = 128;
/// One in this many of them stays bound through the race.
const STABLE_EVERY: usize = 4;
/// Irqfds of the context released in a round of C.
const RELEASED: usize = 96;
/// Most entries in one batch deassign of A.
const BATCH: u64 = 24;
/// Threads reading fdinfo.
const READERS: usize = 2;

/// An irqfd a round bound, as fdinfo must list it.
#[derive(Clone, Copy, Debug)]
struct Bound {
    gsi: u32,
    resample: u32,
    /// Its place in the order of the race's teardowns; `None` for one
    /// bound through the whole race.
    teardown: Option<usize>,
}

/// What one round bound, by descriptor number: no eventfd is created while
/// the race runs, so a number names one eventfd of the round.
#[derive(Debug, Default)]
struct Plan {
    bound: BTreeMap<u32, Bound>,
    /// How many are bound through the whole race.
    stable: usize,
}

/// A round's eventfds, bound in a context.
struct Set {
    plan: Arc<Plan>,
    /// Bound through the race, with their gsi.
    stable: Vec<(OwnedFd, u32)>,
    /// Torn down in the race, in teardown order, with their gsi.
    churn: Vec<(OwnedFd, u32)>,
    /// The resamplefd every resample irqfd of the round shares.
    _rfd: OwnedFd,
}

/// Binds `n` fresh eventfds in `ctx`: on G .. G+2, every fifth a resample
/// irqfd on G+3; every `stable_every`-th stays bound through the race, the
/// others are torn down in it, in a random order (random against the
/// eventfd order the listing follows).
fn bind_set(w: &mut Worker<'_>, ctx: &Ctx, n: usize, stable_every: usize) -> Result<Set, String> {
    let rfd = new_eventfd()?;
    let mut plan = Plan::default();
    let (mut stable, mut churn) = (Vec::new(), Vec::new());
    for i in 0..n {
        let e = new_eventfd()?;
        let (gsi, resample) = if i % 5 == 4 {
            must(
                w,
                "assign(fresh eventfd, gsi 4, RESAMPLE)",
                ctx.assign_resample(&e, G + 3, &rfd),
            )?;
            (G + 3, 1)
        } else {
            let gsi = G + i as u32 % 3;
            must(w, "assign(fresh eventfd)", ctx.assign(&e, gsi))?;
            (gsi, 0)
        };
        plan.bound.insert(
            raw(&e) as u32,
            Bound {
                gsi,
                resample,
                teardown: None,
            },
        );
        if i % stable_every == 0 {
            stable.push((e, gsi));
        } else {
            churn.push((e, gsi));
        }
    }
    for i in (1..churn.len()).rev() {
        let j = w.rand(i as u64 + 1) as usize;
        churn.swap(i, j);
    }
    for (k, (e, _)) in churn.iter().enumerate() {
        if let Some(b) = plan.bound.get_mut(&(raw(e) as u32)) {
            b.teardown = Some(k);
        }
    }
    plan.stable = stable.len();
    Ok(Set {
        plan: Arc::new(plan),
        stable,
        churn,
        _rfd: rfd,
    })
}

/// An fdinfo file kept open and read again from the start: the seq_file
/// keeps the buffer it grew to, so a read of a long listing makes one
/// `show_fdinfo` call instead of one per doubling of the buffer. Each read
/// shows what the descriptor names at that time (the file is looked up by
/// number at each read).
struct FdInfoFile {
    path: String,
    file: std::fs::File,
    text: String,
}

impl FdInfoFile {
    fn open(path: &str) -> Result<Self, String> {
        Ok(FdInfoFile {
            path: path.to_string(),
            file: std::fs::File::open(path).map_err(|e| format!("open {path}: {e}"))?,
            text: String::new(),
        })
    }

    /// Reads and parses the listing.
    fn read(&mut self) -> Result<FdInfo, String> {
        use std::io::{Read, Seek, SeekFrom};
        self.text.clear();
        self.file
            .seek(SeekFrom::Start(0))
            .and_then(|_| self.file.read_to_string(&mut self.text))
            .map_err(|e| format!("read {}: {e}", self.path))?;
        FdInfo::parse(&self.path, &self.text)
    }
}

/// When a read ran against the teardowns of its round, by the leader's
/// counts: `returned` teardowns had returned before the read began, and
/// no more than `begun` had begun before it ended.
#[derive(Clone, Copy, Debug)]
struct Window {
    returned: usize,
    begun: usize,
}

impl Window {
    /// A read after every teardown of `plan` returned (or in a round
    /// without any).
    fn after(plan: &Plan) -> Self {
        let n = plan.bound.len() - plan.stable;
        Window {
            returned: n,
            begun: n,
        }
    }
}

/// Checks a listing of the round `plan` read in the window `win` (see the
/// module's oracles): an irqfd whose teardown had returned before the read
/// began is not listed; one whose teardown had not begun when it ended
/// (or that stays bound through the race) is; `irqfds:` lies between those
/// two counts and is at least the number of lines.
fn check(plan: &Plan, info: &FdInfo, win: Window) -> TestResult {
    let Window { returned, begun } = win;
    eq(
        "fdinfo rust_irqfd-abi",
        info.field("rust_irqfd-abi")?,
        u64::from(RUST_IRQFD_ABI_VERSION),
    )?;
    for f in ["nr_gsis", "max_irqfds", "shutdowns"] {
        info.field(f)?;
    }
    let churn = plan.bound.len() - plan.stable;
    let listing = || {
        format!(
            "{} lines, {returned} of the race's {churn} teardowns had returned when the read \
             began, no more than {begun} had begun when it ended; fds in listing order: {:?}",
            info.irqfds.len(),
            info.order
        )
    };
    for (fd, l) in &info.irqfds {
        let b = plan.bound.get(fd).ok_or_else(|| {
            format!(
                "fdinfo lists fd {fd} (gsi {}), to which no irqfd of the round was bound; {}",
                l.gsi,
                listing()
            )
        })?;
        ensure((l.gsi, l.resample) == (b.gsi, b.resample), || {
            format!(
                "fdinfo lists fd {fd} with gsi {} resample {}, bound with gsi {} resample {}",
                l.gsi, l.resample, b.gsi, b.resample
            )
        })?;
        if let Some(i) = b.teardown {
            ensure(i >= returned, || {
                format!(
                    "fdinfo lists the irqfd of fd {fd} (gsi {}), whose teardown (number {i} of \
                     the race) had returned before the read began; {}",
                    l.gsi,
                    listing()
                )
            })?;
        }
    }
    let missing: Vec<u32> = plan
        .bound
        .iter()
        .filter(|(fd, b)| b.teardown.is_none_or(|i| i >= begun) && !info.irqfds.contains_key(fd))
        .map(|(fd, _)| *fd)
        .collect();
    ensure(missing.is_empty(), || {
        format!(
            "fdinfo does not list {} irqfd(s) bound through the whole read (fd {missing:?}); {}",
            missing.len(),
            listing()
        )
    })?;
    let (h, lines) = (info.field("irqfds")?, info.irqfds.len() as u64);
    let least = (plan.stable + churn.saturating_sub(begun)) as u64;
    let most = (plan.bound.len() - returned) as u64;
    ensure(least <= h && h <= most && lines <= h, || {
        format!(
            "fdinfo irqfds: {h}: expected {least} ..= {most} (bound through the read ..= not \
             torn down before it), and no fewer than the lines (the tree only shrinks during \
             the race); {}",
            listing()
        )
    })
}

/// Sets the flag when dropped: the leader's race step publishes its end
/// however it ends, so that no reader waits for it.
struct SetOnDrop<'a>(&'a AtomicBool);

impl Drop for SetOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Release);
    }
}

/// What the readers of a phase share with its leader.
struct Watch {
    /// The fdinfo file of the context: `/proc/self/fdinfo/<number>`.
    path: Mutex<String>,
    /// What the current round bound.
    plan: Mutex<Arc<Plan>>,
    /// Teardowns of the round that have begun: announced with a
    /// sequentially consistent store before each call.
    begun: AtomicUsize,
    /// Teardowns of the round that have returned (release store after each).
    progress: AtomicUsize,
    /// Every teardown of the round has returned.
    done: AtomicBool,
    /// Listings read and checked.
    reads: AtomicU64,
    /// Of those, listings taken mid-teardown (some but not all of the
    /// irqfds torn down in the race listed): the race was hit.
    mid: AtomicU64,
}

impl Watch {
    fn new() -> Self {
        Watch {
            path: Mutex::new(String::new()),
            plan: Mutex::new(Arc::default()),
            begun: AtomicUsize::new(0),
            progress: AtomicUsize::new(0),
            done: AtomicBool::new(false),
            reads: AtomicU64::new(0),
            mid: AtomicU64::new(0),
        }
    }

    /// Prepares a round: the readers read the fdinfo of `ctx` and check it
    /// against `plan`.
    fn start(&self, ctx: &Ctx, plan: &Arc<Plan>) {
        *lock(&self.path) = format!("/proc/self/fdinfo/{}", raw(ctx));
        *lock(&self.plan) = plan.clone();
        self.begun.store(0, Relaxed);
        self.progress.store(0, Relaxed);
        self.done.store(false, Relaxed);
    }

    /// Runs the teardowns `k .. k + n` of the round (`f`), announcing them
    /// before and publishing their return after.
    fn teardown(&self, k: usize, n: usize, f: impl FnOnce() -> TestResult) -> TestResult {
        self.begun.store(k + n, SeqCst);
        f()?;
        self.progress.store(k + n, Release);
        Ok(())
    }

    /// A reader's step in A and B: reads and checks listings until one
    /// that began after every teardown had returned; gives up (a failure)
    /// after four timeouts.
    fn read_until_done(&self, w: &mut Worker<'_>, env: &Env) -> TestResult {
        let mut f = FdInfoFile::open(&lock(&self.path))?;
        let plan = lock(&self.plan).clone();
        let churn = plan.bound.len() - plan.stable;
        let t0 = Instant::now();
        let mut shutdowns = 0;
        loop {
            let done = self.done.load(Acquire);
            let returned = self.progress.load(Acquire);
            if done && returned < churn {
                // The leader failed (and says so): its round may be gone.
                return Ok(());
            }
            w.op();
            let info = f.read()?;
            // A teardown not announced yet took its irqfd out after the
            // read's last chunk: the full fence orders the read's last
            // unlock before this load, the announcing store is a locked
            // instruction before the teardown's lock (the store-buffering
            // pattern, which x86 and the memory model forbid).
            fence(SeqCst);
            let begun = self.begun.load(SeqCst);
            check(&plan, &info, Window { returned, begun })?;
            let s = info.field("shutdowns")?;
            ensure(s >= shutdowns, || {
                format!("fdinfo shutdowns: went back from {shutdowns} to {s}")
            })?;
            shutdowns = s;
            self.reads.fetch_add(1, Relaxed);
            let torn = info.irqfds.len() - plan.stable;
            if torn > 0 && torn < churn {
                self.mid.fetch_add(1, Relaxed);
            }
            if done {
                return Ok(());
            }
            ensure(t0.elapsed() < env.timeout * 4, || {
                format!(
                    "the race's teardowns did not return within {:?} ({} of {churn} had)",
                    env.timeout * 4,
                    self.progress.load(Acquire)
                )
            })?;
        }
    }

    /// The note of a phase.
    fn note(&self, run: &Run, what: &str) {
        run.note(format!(
            "{what}: {} fdinfo listings checked, {} of them mid-teardown",
            self.reads.load(Relaxed),
            self.mid.load(Relaxed)
        ));
    }
}

/// The end of a round of A or B: the leader's own listing is exactly the
/// irqfds bound through the race, and so is `nr_irqfds`; then those are
/// deassigned in one batch.
fn end_round(w: &mut Worker<'_>, ctx: &Ctx, set: &Set, when: &str) -> TestResult {
    let info = FdInfo::read(ctx)?;
    check(&set.plan, &info, Window::after(&set.plan)).map_err(|m| format!("{when}: {m}"))?;
    expect_nr(ctx, set.stable.len(), when)?;
    let entries: Vec<RustIrqfd> = set.stable.iter().map(|(e, g)| entry(e, *g)).collect();
    let (r, _) = batch(ctx, &entries, entries.len() as u32, FLAG_DEASSIGN, 0);
    must(
        w,
        "batch deassign of the irqfds bound through the race",
        r.map(|_| ()),
    )?;
    expect_nr(ctx, 0, "after the batch deassign of the rest")
}

/// R13b: see the module documentation.
pub(super) fn r13b(run: &Run) -> TestResult {
    let a = deassigns(run);
    let b = a.and_then(|()| hangups(run));
    b.and_then(|()| release(run))
}

/// A: fdinfo read while the leader deassigns, singly or in batches.
fn deassigns(run: &Run) -> TestResult {
    let env = run.env;
    let ctx = env.open()?;
    let b = run.budget(0.4);
    let rounds = run.rounds(&b, 1 + READERS);
    let watch = Watch::new();
    let assigned = AtomicU64::new(0);
    run.round_workers(&rounds, 1 + READERS, |w| match w.idx {
        0 => rounds.lead(w, |w, round, race| {
            let set = bind_set(w, &ctx, ROUND, STABLE_EVERY)?;
            assigned.fetch_add(ROUND as u64, Relaxed);
            watch.start(&ctx, &set.plan);
            race.join(w, |w| {
                let _done = SetOnDrop(&watch.done);
                let mut k = 0;
                while k < set.churn.len() {
                    let batched = w.rand(2) == 1;
                    let n = if batched {
                        1 + w.rand(BATCH) as usize
                    } else {
                        1
                    };
                    let part = &set.churn[k..(k + n).min(set.churn.len())];
                    watch.teardown(k, part.len(), || {
                        if batched {
                            let entries: Vec<RustIrqfd> =
                                part.iter().map(|(e, g)| entry(e, *g)).collect();
                            let (r, idx) =
                                batch(&ctx, &entries, entries.len() as u32, FLAG_DEASSIGN, 0);
                            must(w, "batch deassign during fdinfo reads", r.map(|_| ()))?;
                            eq("batch deassign: error_index", idx, entries.len() as u32)
                        } else {
                            let (e, g) = &part[0];
                            must(w, "deassign during fdinfo reads", ctx.deassign(e, *g))
                        }
                    })?;
                    k += part.len();
                }
                Ok(())
            })?;
            end_round(
                w,
                &ctx,
                &set,
                &format!("after the deassigns of round {round}"),
            )?;
            Ok(())
        }),
        _ => rounds.racer(w, |w| watch.read_until_done(w, env)),
    })?;
    watch.note(run, "A, deassigns");
    final_checks(run, &ctx, None, &[], assigned.load(Relaxed))
}

/// B: fdinfo read while the leader closes the eventfds (`EPOLLHUP`).
fn hangups(run: &Run) -> TestResult {
    let env = run.env;
    let ctx = env.open()?;
    let b = run.budget(0.3);
    let rounds = run.rounds(&b, 1 + READERS);
    let watch = Watch::new();
    let assigned = AtomicU64::new(0);
    run.round_workers(&rounds, 1 + READERS, |w| match w.idx {
        0 => rounds.lead(w, |w, round, race| {
            let mut set = bind_set(w, &ctx, ROUND, STABLE_EVERY)?;
            assigned.fetch_add(ROUND as u64, Relaxed);
            watch.start(&ctx, &set.plan);
            let churn = std::mem::take(&mut set.churn);
            race.join(w, |w| {
                let _done = SetOnDrop(&watch.done);
                for (k, (e, _)) in churn.into_iter().enumerate() {
                    watch.teardown(k, 1, || {
                        must(w, "close(bound eventfd) during fdinfo reads", sys::close(e))
                    })?;
                }
                Ok(())
            })?;
            end_round(
                w,
                &ctx,
                &set,
                &format!("after the eventfd closes of round {round}"),
            )?;
            Ok(())
        }),
        _ => rounds.racer(w, |w| watch.read_until_done(w, env)),
    })?;
    watch.note(run, "B, EPOLLHUP");
    final_checks(run, &ctx, None, &[], assigned.load(Relaxed))
}

/// C: fdinfo of a context read while the leader closes it.
fn release(run: &Run) -> TestResult {
    let env = run.env;
    let b = run.budget(0.3);
    let rounds = run.rounds(&b, 1 + READERS);
    let watch = Watch::new();
    let null = open_devnull()?;
    let null_ino = fdinfo_field(raw(&null), "ino").ok_or("no ino: in the fdinfo of /dev/null")?;
    let ctx_ino = Mutex::new(String::new());
    let gone = AtomicU64::new(0);
    run.round_workers(&rounds, 1 + READERS, |w| match w.idx {
        0 => rounds.lead(w, |w, round, race| {
            let ctx = env.open()?;
            let set = bind_set(w, &ctx, RELEASED, 1)?;
            let ino = fdinfo_field(raw(&ctx), "ino").ok_or("no ino: in a context's fdinfo")?;
            ensure(ino != null_ino, || {
                format!("internal: the context and /dev/null have one inode number, {ino}")
            })?;
            *lock(&ctx_ino) = ino;
            watch.start(&ctx, &set.plan);
            // The close lands anywhere within about two listings.
            let t0 = Instant::now();
            check(&set.plan, &FdInfo::read(&ctx)?, Window::after(&set.plan))?;
            let listing = t0.elapsed().as_micros() as u64;
            race.join(w, |w| {
                pause(Duration::from_micros(w.rand(2 * listing + 1)));
                must(
                    w,
                    "dup3(/dev/null over the context) during fdinfo reads",
                    sys::dup_over(null.as_fd(), ctx.as_fd()),
                )
            })?;
            must(w, "close(/dev/null where the context was)", ctx.close())?;
            let x = i2(w, env, set.stable.iter().map(|(e, _)| e), round)?;
            expect_nr(&x, RELEASED, "of the new context")?;
            must(w, "close(new context)", x.close())?;
            Ok(())
        }),
        _ => rounds.racer(w, |w| {
            let path = lock(&watch.path).clone();
            let mut f = FdInfoFile::open(&path)?;
            let plan = lock(&watch.plan).clone();
            let ino = lock(&ctx_ino).clone();
            let t0 = Instant::now();
            loop {
                w.op();
                let info = f.read()?;
                let now = info.fields.get("ino").map_or("", String::as_str);
                if now == null_ino {
                    ensure(
                        info.irqfds.is_empty() && !info.fields.contains_key("rust_irqfd-abi"),
                        || format!("fdinfo of /dev/null with context lines: {:?}", info.fields),
                    )?;
                    gone.fetch_add(1, Relaxed);
                    return Ok(());
                }
                ensure(now == ino, || {
                    format!(
                        "{path}: ino {now:?}, neither the context's ({ino}) nor /dev/null's \
                         ({null_ino})"
                    )
                })?;
                // The reader holds the file: its release has not begun.
                check(&plan, &info, Window::after(&plan))
                    .map_err(|m| format!("a context being closed: {m}"))?;
                watch.reads.fetch_add(1, Relaxed);
                ensure(t0.elapsed() < env.timeout * 4, || {
                    format!("the context was not closed within {:?}", env.timeout * 4)
                })?;
            }
        }),
    })?;
    run.note(format!(
        "C, release: {} listings of a context being closed checked, {} reads after it",
        watch.reads.load(Relaxed),
        gone.load(Relaxed)
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A round of fd 10 (stable, gsi 1), fd 11 (torn down first, gsi 2),
    /// fd 12 (torn down second, resample on gsi 4).
    fn plan() -> Plan {
        let b = |gsi, resample, teardown| Bound {
            gsi,
            resample,
            teardown,
        };
        Plan {
            bound: [
                (10, b(1, 0, None)),
                (11, b(2, 0, Some(0))),
                (12, b(4, 1, Some(1))),
            ]
            .into(),
            stable: 1,
        }
    }

    /// fdinfo text with `irqfds: h` and a line per (fd, gsi, resample).
    fn text(h: u64, lines: &[(u32, u32, u32)]) -> FdInfo {
        let mut t = format!(
            "pos:\t0\nflags:\t02\nrust_irqfd-abi:\t{RUST_IRQFD_ABI_VERSION}\nnr_gsis:\t8\n\
             max_irqfds:\t65536\nirqfds:\t{h}\nshutdowns:\t0\n"
        );
        for (fd, gsi, r) in lines {
            t += &format!(
                "irqfd:\tgsi={gsi} fd={fd} signals=0 fast=0 deferred=0 coalesced=0 masked=0 \
                 resample={r}\n"
            );
        }
        FdInfo::parse("test", &t).unwrap()
    }

    fn win(returned: usize, begun: usize) -> Window {
        Window { returned, begun }
    }

    #[test]
    fn listings_checked() {
        let p = plan();
        let all = [(10, 1, 0), (11, 2, 0), (12, 4, 1)];
        check(&p, &text(3, &all), win(0, 0)).unwrap();
        // 11 torn down, 12 in flight, listed or not.
        check(&p, &text(2, &[(10, 1, 0), (12, 4, 1)]), win(1, 2)).unwrap();
        check(&p, &text(1, &[(10, 1, 0)]), win(1, 2)).unwrap();
        // 11 in flight, 12 not begun: 12 must be listed.
        check(&p, &text(2, &[(10, 1, 0), (12, 4, 1)]), win(0, 1)).unwrap();
        let e = check(&p, &text(3, &[(10, 1, 0), (11, 2, 0)]), win(0, 1)).unwrap_err();
        assert!(e.contains("fd [12]"), "{e}");
        // 11's teardown had returned before the read: not listed, and
        // irqfds: at most 2.
        let e = check(&p, &text(3, &all), win(1, 1)).unwrap_err();
        assert!(e.contains("fd 11"), "{e}");
        let e = check(&p, &text(3, &[(10, 1, 0)]), win(1, 2)).unwrap_err();
        assert!(e.contains("irqfds: 3"), "{e}");
        // irqfds: counts those not begun.
        let e = check(&p, &text(1, &[(10, 1, 0), (12, 4, 1)]), win(0, 1)).unwrap_err();
        assert!(e.contains("irqfds: 1"), "{e}");
        // The stable one missing; a stranger; a wrong gsi or resample flag.
        let e = check(&p, &text(3, &[(11, 2, 0), (12, 4, 1)]), win(0, 0)).unwrap_err();
        assert!(e.contains("fd [10]"), "{e}");
        let w2 = win(2, 2);
        assert!(check(&p, &text(2, &[(10, 1, 0), (13, 1, 0)]), w2).is_err());
        assert!(check(&p, &text(1, &[(10, 3, 0)]), w2).is_err());
        assert!(check(&p, &text(1, &[(10, 1, 1)]), w2).is_err());
        // More lines than irqfds: (read before the list, which only shrinks).
        assert!(check(&p, &text(2, &all), win(1, 2)).is_err());
        // After every teardown: exactly the stable one.
        check(&p, &text(1, &[(10, 1, 0)]), Window::after(&p)).unwrap();
        assert!(check(&p, &text(2, &[(10, 1, 0), (12, 4, 1)]), Window::after(&p)).is_err());
        assert!(check(&p, &text(2, &[(10, 1, 0)]), Window::after(&p)).is_err());
        // Not a context's fdinfo at all.
        let none = FdInfo::parse("test", "pos:\t0\nino:\t5\n").unwrap();
        assert!(check(&p, &none, win(0, 0)).is_err());
    }

    #[test]
    fn listed_twice_is_malformed() {
        let t = "irqfd:\tgsi=1 fd=10 signals=0 fast=0 deferred=0 coalesced=0 masked=0 resample=0\n";
        let e = FdInfo::parse("test", &t.repeat(2)).err().unwrap();
        assert!(e.contains("listed twice"), "{e}");
        let short = "irqfd:\tgsi=1 fd=10 signals=0\n";
        assert!(FdInfo::parse("test", short).is_err());
    }
}
