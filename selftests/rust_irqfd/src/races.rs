// SPDX-License-Identifier: GPL-2.0
//! Race stress scenarios: one per entry of the race catalogue (races.md,
//! R1-R23) that applies to the module, each a few threads hammering one
//! interleaving for a bounded time and op count (`--stress-secs`,
//! `--stress-ops`), with the catalogue's oracles asserted where the ABI
//! makes them exact:
//!
//! * I1: once a deassign has returned, that eventfd injects nothing more;
//! * I2: once a context is closed, its eventfds bind again at once, and a
//!   fresh context has no irqfd;
//! * I3: once a deassign has returned, re-assigning the eventfd succeeds;
//! * I5: a signal on a bound eventfd is followed by an injection;
//! * exactly one of several concurrent assigns of one eventfd wins;
//! * every irqfd is shut down exactly once (`shutdowns` of GET_INFO);
//! * delivery accounting: per GSI, the counts read add up to `injected`
//!   (for a level GSI: lie between `acks` and `injected`), and the records
//!   come out with seq 1, 2, 3, ... in order, each of its GSI's kind
//!   (plain, LEVEL, or MSI with one of the GSI's routes whole: R21);
//! * every ACK signals each resample irqfd of the GSI once, and only an ACK
//!   signals a resamplefd (R19, R20);
//! * `nr_irqfds` is back to what it must be at the end of every scenario.
//!
//! Racing calls may legitimately fail (a deassign racing the close of its
//! eventfd gets `EBADF`, a second assign gets `EBUSY`): such outcomes are
//! accepted only where the semantics allow them, and counted by errno for
//! the comparison table. Each scenario runs in the frame of
//! [`crate::stress::scenario`] (kmsg markers, leak checks, report).
//!
//! Descriptor numbers: several scenarios pass a raw fd number to a thread
//! that uses it while another closes it (`EBADF` then). While such a race
//! runs, no thread opens anything, so a closed number can only be taken by
//! a file the scenario itself creates for that purpose (fd-number reuse,
//! the ABA of races.md) and never by an unrelated file.

use std::collections::BTreeMap;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::abi::{
    RustIrqfd, RustIrqfdDelivery, DELIVERY_LEVEL, DELIVERY_MSI, FLAG_DEASSIGN, FLAG_RESAMPLE,
    RUST_IRQFD_IRQFD,
};
use crate::dev::Ctx;
use crate::harness::{
    check_record, check_record_any, ensure, new_eventfd, nr_irqfds, ok, skip, stats, try_read,
    wait_until, Env, Needs, Ran, Stop, Tag, Test, TestResult,
};
use crate::stress::{device_name, fdinfo_field, lock, scenario, Run, Slot, Tally, Worker};
use crate::sys::{self, Errno, SysResult};

/// `race!(name, body, [tags])`: a race scenario, run in the stress frame;
/// the body returns [`TestResult`] or [`Ran`].
macro_rules! race {
    ($name:ident, $body:path, [$($tag:ident),* $(,)?]) => {
        Test {
            name: stringify!($name),
            run: |env| scenario(env, stringify!($name), |run| $body(run).map_err(Stop::from)),
            needs: Needs::gsis(NEED_GSIS),
            tags: &[$(Tag::$tag,)* Tag::Race],
        }
    };
}

/// The race scenarios, in catalogue order.
pub const TESTS: &[Test] = &[
    race!(race_r1_hup_vs_deassign, r1, [Core]),
    race!(race_r2_hup_vs_running_shutdown, r2, []),
    race!(race_r3_inject_vs_shutdown, r3, [Inject, Core]),
    race!(race_r4_release_vs_hup, r4, [Core]),
    race!(race_r5_eventfd_refcount, r5, []),
    race!(race_r6_assign_vs_deassign, r6, []),
    race!(race_r7_hup_mid_assign, r7, []),
    race!(race_r8_pending_at_assign, r8, [Inject]),
    race!(race_r9_counter_drain, r9, []),
    race!(race_r10_duplicate_assign, r10, []),
    race!(race_r11_deassign_recycled_fd, r11, []),
    race!(race_r12_teardown_vs_assign, r12, []),
    race!(race_r13_mass_release, r13, [Core]),
    race!(race_r14_atomic_wakeup, r14, []),
    race!(race_r15_hardirq_signal, r15, [Inject, Hooks]),
    race!(race_r16_lock_order, r16, []),
    race!(race_r17_flush_interplay, r17, []),
    race!(race_r18_module_unload, r18, [Module]),
    race!(race_r19_wakeup_resignal, r19, [Inject, Core]),
    race!(race_r20_resampler, r20, [Inject, Core]),
    race!(race_r21_routing_update, r21, [Inject, Core, Hooks]),
    race!(race_r22_target_swap, r22, [Inject]),
    race!(race_r23_assign_error_paths, r23, []),
];

/// The first GSI the scenarios use; they use `G .. G + 4`.
const G: u32 = 1;
/// GSIs a context needs for the scenarios.
const NEED_GSIS: u32 = 8;
/// How long a late injection gets to show up after a deassign (I1).
const I1_WINDOW: Duration = Duration::from_millis(20);
/// Irqfds of the context closed at once in R13.
const MASS: usize = 256;
/// Most records one read asks for.
const READ_MAX: usize = 64;

// --- Helpers ---

fn raw(fd: &impl AsFd) -> RawFd {
    fd.as_fd().as_raw_fd()
}

/// RUST_IRQFD_IRQFD on the context, naming the eventfd by a raw number.
fn irqfd_num(ctx: &Ctx, fd: RawFd, gsi: u32, flags: u32) -> SysResult<()> {
    ctx.irqfd(&RustIrqfd {
        fd: fd as u32,
        gsi,
        flags,
        ..Default::default()
    })
}

fn assign_num(ctx: &Ctx, fd: RawFd, gsi: u32) -> SysResult<()> {
    irqfd_num(ctx, fd, gsi, 0)
}

fn deassign_num(ctx: &Ctx, fd: RawFd, gsi: u32) -> SysResult<()> {
    irqfd_num(ctx, fd, gsi, FLAG_DEASSIGN)
}

/// RUST_IRQFD_IRQFD through a raw context descriptor that may be closing.
fn assign_via(ctxfd: RawFd, fd: RawFd, gsi: u32) -> SysResult<()> {
    let mut req = RustIrqfd {
        fd: fd as u32,
        gsi,
        ..Default::default()
    };
    sys::ioctl_ptr_raw(ctxfd, RUST_IRQFD_IRQFD, &mut req).map(|_| ())
}

fn errnos(v: &[i32]) -> String {
    v.iter()
        .map(|&e| Errno(e).name())
        .collect::<Vec<_>>()
        .join(" or ")
}

/// A racing call whose legitimate outcomes are success and `allowed`
/// (counted by errno): `Ok(true)` on success, `Ok(false)` on an allowed
/// error, a failure on anything else.
fn racy(w: &mut Worker<'_>, what: &str, r: SysResult<()>, allowed: &[i32]) -> Result<bool, String> {
    w.op();
    match r {
        Ok(()) => Ok(true),
        Err(e) if allowed.contains(&e.0) => {
            w.tally.error(e);
            Ok(false)
        }
        Err(e) => Err(format!(
            "{what}: expected success or {}, got {e}",
            errnos(allowed)
        )),
    }
}

/// A call the scenario makes exact: it must succeed.
fn must(w: &mut Worker<'_>, what: &str, r: SysResult<()>) -> TestResult {
    w.op();
    r.map_err(|e| format!("{what}: expected success, got {e}"))
}

/// A call the scenario makes exact: it must fail with `want` (counted).
fn must_fail(w: &mut Worker<'_>, what: &str, r: SysResult<()>, want: i32) -> TestResult {
    w.op();
    match r {
        Err(e) if e.0 == want => {
            w.tally.error(e);
            Ok(())
        }
        Err(e) => Err(format!("{what}: expected {}, got {e}", Errno(want))),
        Ok(()) => Err(format!("{what}: expected {}, got success", Errno(want))),
    }
}

fn injected(ctx: &Ctx, gsi: u32) -> Result<u64, String> {
    Ok(stats(ctx, gsi)?.injected)
}

fn shutdowns(ctx: &Ctx) -> Result<u64, String> {
    Ok(ok("RUST_IRQFD_GET_INFO", ctx.info())?.shutdowns)
}

/// `nr_irqfds` must be `want` now (no asynchronous effect is pending).
fn expect_nr(ctx: &Ctx, want: usize, when: &str) -> TestResult {
    let n = nr_irqfds(ctx)?;
    ensure(n as usize == want, || {
        format!("nr_irqfds {when}: expected {want}, got {n}")
    })
}

/// `nr_irqfds` must become `want` within the timeout (EPOLLHUP effects are
/// asynchronous to close(2)).
fn wait_nr(env: &Env, ctx: &Ctx, want: usize, when: &str) -> TestResult {
    wait_until(env, &format!("nr_irqfds == {want} {when}"), || {
        let n = nr_irqfds(ctx)?;
        Ok((n as usize == want, format!("nr_irqfds {n}")))
    })
}

/// Waits for every shutdown queued so far by the module behind `ctx`: a
/// deassign flushes the module's cleanup queue whether it matched or not.
fn flush_cleanup(ctx: &Ctx) -> TestResult {
    let e = new_eventfd()?;
    ok(
        "deassign(unbound eventfd) to flush the cleanup queue",
        ctx.deassign(&e, 0),
    )
}

/// Every irqfd of `ctx` was shut down exactly once: after a flush, the
/// completed shutdowns equal the irqfds that were ever assigned (and are
/// all gone).
fn expect_shutdowns(ctx: &Ctx, assigned: u64, what: &str) -> TestResult {
    let n = shutdowns(ctx)?;
    ensure(n == assigned, || {
        format!(
            "each irqfd must be shut down exactly once ({what}): {n} shutdowns completed for \
             {assigned} successful assigns"
        )
    })
}

/// I5: a signal on an eventfd bound to `gsi` of `ctx` is followed, within
/// the timeout, by an injection into it.
fn i5(env: &Env, ctx: &Ctx, gsi: u32, efd: BorrowedFd<'_>, when: &str) -> TestResult {
    let before = injected(ctx, gsi)?;
    ok("write(bound eventfd, 1)", sys::eventfd_signal(efd, 1))?;
    wait_until(env, &format!("an injection into gsi {gsi}"), || {
        let n = injected(ctx, gsi)?;
        Ok((n > before, format!("injected {n}")))
    })
    .map_err(|m| {
        format!(
            "I5 broken {when}: a signal on a bound eventfd was not followed by an injection \
             (gsi {gsi} injected stayed at {before}): {m}"
        )
    })
}

/// I1 over `targets`: after the deassigns returned, a signal on the
/// still-open eventfd and `window` of waiting change no `injected`.
fn i1(targets: &[(&Ctx, u32)], efd: BorrowedFd<'_>, window: Duration, when: &str) -> TestResult {
    let before = targets
        .iter()
        .map(|(c, g)| injected(c, *g))
        .collect::<Result<Vec<_>, _>>()?;
    ok("write(deassigned eventfd, 1)", sys::eventfd_signal(efd, 1))?;
    if !window.is_zero() {
        std::thread::sleep(window);
    }
    for ((c, g), b) in targets.iter().zip(before) {
        let a = injected(c, *g)?;
        ensure(a == b, || {
            format!(
                "I1 broken {when}: gsi {g} injected went {b} -> {a} after the deassign had \
                 returned (signal on the still-open eventfd, {window:?} window)"
            )
        })?;
    }
    Ok(())
}

/// Waits `d`: yielding for short waits (a sleep takes tens of
/// microseconds), so that the other threads run on a small VM.
fn pause(d: Duration) {
    if d < Duration::from_micros(50) {
        let t = Instant::now();
        while t.elapsed() < d {
            std::thread::yield_now();
        }
    } else {
        std::thread::sleep(d);
    }
}

/// What the records of one GSI must look like, where they are not plain.
#[derive(Clone, Debug, Default)]
struct Kind {
    /// The flags every record has, exactly (`DELIVERY_LEVEL`, `DELIVERY_MSI`).
    flags: u32,
    /// With `DELIVERY_MSI`: the routes a record may carry, each whole.
    routes: Vec<(u64, u32)>,
}

impl Kind {
    /// Records of resample irqfds on an unrouted GSI.
    fn level() -> Self {
        Kind {
            flags: DELIVERY_LEVEL,
            routes: Vec::new(),
        }
    }

    /// Records of edge irqfds on a GSI routed to one of `routes`.
    fn msi(routes: &[(u64, u32)]) -> Self {
        Kind {
            flags: DELIVERY_MSI,
            routes: routes.to_vec(),
        }
    }
}

/// Delivery accounting of one context, fed by one reader at a time.
struct Acct {
    nr_gsis: u32,
    last_seq: u64,
    counts: BTreeMap<u32, u64>,
    records: BTreeMap<u32, u64>,
    /// GSIs whose records are not plain.
    kinds: BTreeMap<u32, Kind>,
    /// Records seen per (gsi, index of the route in its kind).
    route_hits: BTreeMap<(u32, usize), u64>,
}

impl Acct {
    fn new(nr_gsis: u32) -> Self {
        Acct {
            nr_gsis,
            last_seq: 0,
            counts: BTreeMap::new(),
            records: BTreeMap::new(),
            kinds: BTreeMap::new(),
            route_hits: BTreeMap::new(),
        }
    }

    /// The records of `gsi` must be of `kind`.
    fn kind(mut self, gsi: u32, kind: Kind) -> Self {
        self.kinds.insert(gsi, kind);
        self
    }

    /// A record is well formed and of its GSI's kind; an MSI record
    /// carries one of the GSI's routes whole.
    fn check(&mut self, d: &RustIrqfdDelivery) -> TestResult {
        let Some(k) = self.kinds.get(&d.gsi) else {
            return check_record(d, self.nr_gsis);
        };
        check_record_any(d, self.nr_gsis)?;
        ensure(d.flags == k.flags, || {
            format!(
                "record of gsi {} with flags {:#x}, expected {:#x}: {d:?}",
                d.gsi, d.flags, k.flags
            )
        })?;
        if k.flags & DELIVERY_MSI != 0 {
            let i = k
                .routes
                .iter()
                .position(|&r| r == (d.msi_addr, d.msi_data))
                .ok_or_else(|| {
                    format!(
                        "R21 broken: a record of gsi {} carries msi_addr {:#x} / msi_data {:#x}, \
                         which is none of the routes the gsi ever had, whole ({}): a mix of \
                         two routes (a torn route read), or a route of another gsi: {d:?}",
                        d.gsi,
                        d.msi_addr,
                        d.msi_data,
                        k.routes
                            .iter()
                            .map(|(a, m)| format!("{a:#x}/{m:#x}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                })?;
            *self.route_hits.entry((d.gsi, i)).or_default() += 1;
        }
        Ok(())
    }

    /// Books records in read order: their seqs must run on from the last
    /// one without a gap (FIFO, one seq per record raised).
    fn take(&mut self, v: &[RustIrqfdDelivery], t: &mut Tally) -> TestResult {
        for d in v {
            self.check(d)?;
            ensure(d.seq == self.last_seq + 1, || {
                format!(
                    "delivery accounting: record seq {} read after seq {} (records lost, \
                     duplicated or out of order): {d:?}",
                    d.seq, self.last_seq
                )
            })?;
            self.last_seq = d.seq;
            *self.counts.entry(d.gsi).or_default() += d.count;
            *self.records.entry(d.gsi).or_default() += 1;
            t.deliveries += d.count;
        }
        Ok(())
    }

    /// One non-blocking read: the number of records it gave.
    fn read_once(&mut self, ctx: &Ctx, t: &mut Tally) -> Result<usize, String> {
        Ok(self.read_records(ctx, t)?.len())
    }

    /// One non-blocking read: the records it gave, booked.
    fn read_records(&mut self, ctx: &Ctx, t: &mut Tally) -> Result<Vec<RustIrqfdDelivery>, String> {
        let v = try_read(ctx, READ_MAX)?;
        self.take(&v, t)?;
        Ok(v)
    }

    /// After the last injection into `ctx` (everything bound to it
    /// deassigned or hung up, the cleanup queue flushed, every GSI
    /// unmasked): reads what is left and checks, for each GSI, that
    /// nothing is pending or latched, that the records read are
    /// `delivered`, and that the counts read add up to `injected` (for a
    /// level GSI, where an injection into the asserted line with no record
    /// pending shows in `coalesced` only: between `acks`, each ack having
    /// ended an assertion that some record counted, and `injected`); and
    /// that the seqs read cover every record raised.
    fn finish(&mut self, ctx: &Ctx, gsis: &[u32], t: &mut Tally) -> TestResult {
        while self.read_once(ctx, t)? > 0 {}
        let mut raised = 0;
        for &g in gsis {
            let s = stats(ctx, g)?;
            let (cnt, rec) = (
                self.counts.get(&g).copied().unwrap_or(0),
                self.records.get(&g).copied().unwrap_or(0),
            );
            ensure(s.pending == 0 && s.latched == 0 && s.masked == 0, || {
                format!(
                    "delivery accounting: gsi {g} still pending, latched or masked after the \
                     final drain: {s:?}"
                )
            })?;
            let level = self
                .kinds
                .get(&g)
                .is_some_and(|k| k.flags & DELIVERY_LEVEL != 0);
            if level {
                ensure(s.acks <= cnt && cnt <= s.injected, || {
                    format!(
                        "delivery accounting: level gsi {g}: the counts read add up to {cnt}, \
                         not within acks {} ..= injected {} ({s:?})",
                        s.acks, s.injected
                    )
                })?;
            } else {
                ensure(cnt == s.injected, || {
                    format!(
                        "delivery accounting: gsi {g}: the counts read add up to {cnt}, \
                         injected is {} ({s:?})",
                        s.injected
                    )
                })?;
            }
            ensure(rec == s.delivered, || {
                format!(
                    "delivery accounting: gsi {g}: {rec} records read, delivered is {} ({s:?})",
                    s.delivered
                )
            })?;
            raised += s.raised;
        }
        if let Some(g) = self.counts.keys().find(|g| !gsis.contains(g)) {
            return Err(format!(
                "delivery accounting: records for gsi {g}, which nothing was bound to"
            ));
        }
        ensure(self.last_seq == raised, || {
            format!(
                "delivery accounting: the last seq read is {}, but {raised} records were raised",
                self.last_seq
            )
        })
    }
}

/// A context of the other module, if its device is present and has the
/// GSIs the scenarios use: (context, its path for messages).
fn peer_ctx(env: &Env) -> Result<Option<(Ctx, String)>, String> {
    for p in env.present_peers() {
        let c = env.open_path(&p)?;
        let n = ok("RUST_IRQFD_GET_INFO of the peer", c.info())?.nr_gsis;
        if n >= NEED_GSIS {
            return Ok(Some((c, p.display().to_string())));
        }
    }
    Ok(None)
}

/// A reader thread: drains `ctx` into `acct` until the budget is over.
fn reader(w: &mut Worker<'_>, ctx: &Ctx, acct: &Mutex<Acct>) -> TestResult {
    while !w.over() {
        if lock(acct).read_once(ctx, &mut w.tally)? == 0 {
            std::thread::sleep(Duration::from_micros(300));
        }
    }
    Ok(())
}

/// A reader thread for several contexts, round robin.
fn reader_many(w: &mut Worker<'_>, ctxs: &[(&Ctx, &Mutex<Acct>)]) -> TestResult {
    while !w.over() {
        let mut n = 0;
        for (c, a) in ctxs {
            n += lock(a).read_once(c, &mut w.tally)?;
        }
        if n == 0 {
            std::thread::sleep(Duration::from_micros(300));
        }
    }
    Ok(())
}

/// The final checks of a context all of whose irqfds are gone: nothing
/// active, one shutdown per assign, the deliveries add up.
fn final_checks(
    run: &Run,
    ctx: &Ctx,
    acct: Option<&Mutex<Acct>>,
    gsis: &[u32],
    assigned: u64,
) -> TestResult {
    flush_cleanup(ctx)?;
    wait_nr(run.env, ctx, 0, "at the end of the scenario")?;
    expect_shutdowns(ctx, assigned, "at the end of the scenario")?;
    if let Some(a) = acct {
        let mut t = Tally::default();
        let r = lock(a).finish(ctx, gsis, &mut t);
        run.add(&t);
        r?;
    }
    Ok(())
}

// --- Scenarios ---

/// R1: EPOLLHUP vs deassign. Each round binds a fresh eventfd; then one
/// thread deassigns it while another closes its last reference and a third
/// writes to it and reads the context. Whoever deactivates first owns the one shutdown.
/// Asserts: deassign gives 0 or EBADF (closed first); writes succeed or
/// give EBADF; nr_irqfds back to 0 after every round; one shutdown per
/// irqfd; delivery accounting.
fn r1(run: &Run) -> TestResult {
    let env = run.env;
    let ctx = env.open()?;
    let acct = Mutex::new(Acct::new(env.nr_gsis()));
    let b = run.budget(1.0);
    let rv = run.rendezvous(4);
    let closer = Slot::new();
    let cur = AtomicI32::new(-1);
    let assigned = AtomicU64::new(0);
    run.workers(&b, 4, Some(&rv), |w| match w.idx {
        0 => {
            let mut round = 0u64;
            while round == 0 || !w.over() {
                let e = new_eventfd()?;
                must(w, "assign(fresh eventfd, gsi 1)", ctx.assign(&e, G))?;
                assigned.fetch_add(1, Relaxed);
                cur.store(raw(&e), Relaxed);
                closer.put(e);
                if !rv.wait() || !rv.wait() {
                    break;
                }
                wait_nr(
                    env,
                    &ctx,
                    0,
                    &format!("after round {round} (deassign racing the last close of the eventfd)"),
                )?;
                round += 1;
            }
            b.stop();
            rv.cancel();
            Ok(())
        }
        1 => {
            while rv.wait() {
                w.jitter(64);
                let n = cur.load(Relaxed);
                racy(
                    w,
                    "deassign(eventfd being closed)",
                    deassign_num(&ctx, n, G),
                    &[libc::EBADF],
                )?;
                if !rv.wait() {
                    break;
                }
            }
            Ok(())
        }
        2 => {
            while rv.wait() {
                let e = closer.take("eventfd to close")?;
                w.jitter(64);
                must(w, "close(eventfd), its last reference", sys::close(e))?;
                if !rv.wait() {
                    break;
                }
            }
            Ok(())
        }
        _ => {
            while rv.wait() {
                let n = cur.load(Relaxed);
                for _ in 0..4 {
                    racy(
                        w,
                        "write(eventfd being closed)",
                        sys::eventfd_signal_raw(n, 1),
                        &[libc::EBADF],
                    )?;
                }
                // Reads race the teardown too.
                lock(&acct).read_once(&ctx, &mut w.tally)?;
                if !rv.wait() {
                    break;
                }
            }
            Ok(())
        }
    })?;
    final_checks(run, &ctx, Some(&acct), &[G], assigned.load(Relaxed))
}

/// R2: EPOLLHUP while a shutdown runs. One thread assigns and deassigns
/// the same eventfd in a tight loop while another closes it after a random
/// delay sized to land inside the loop. Asserts I3 exactly (an assign right
/// after a deassign returned 0 never gives EBUSY), EBADF only once closed,
/// nr_irqfds 0 after each round, one shutdown per irqfd, accounting.
fn r2(run: &Run) -> TestResult {
    let env = run.env;
    let ctx = env.open()?;
    let acct = Mutex::new(Acct::new(env.nr_gsis()));
    let b = run.budget(1.0);
    let rv = run.rendezvous(2);
    let closer = Slot::new();
    let cur = AtomicI32::new(-1);
    let assigned = AtomicU64::new(0);
    // Mean time of one assign + deassign pair, to size the close delay.
    let pair_ns = AtomicU64::new(0);
    run.workers(&b, 3, Some(&rv), |w| match w.idx {
        0 => {
            let mut round = 0u64;
            while round == 0 || !w.over() {
                let e = new_eventfd()?;
                let n = raw(&e);
                cur.store(n, Relaxed);
                closer.put(e);
                if !rv.wait() {
                    break;
                }
                let t0 = Instant::now();
                let mut pairs = 0u64;
                for _ in 0..32 {
                    w.op();
                    match assign_num(&ctx, n, G) {
                        Ok(()) => {
                            assigned.fetch_add(1, Relaxed);
                        }
                        Err(e) if e.0 == libc::EBADF => {
                            w.tally.error(e);
                            break;
                        }
                        Err(e) if e.0 == libc::EBUSY => {
                            return Err(format!(
                                "I3 broken: assign(eventfd, gsi 1) right after the deassign of its \
                                 previous irqfd returned 0 gave EBUSY (round {round}, pair {pairs})"
                            ))
                        }
                        Err(e) => {
                            return Err(format!(
                                "assign(eventfd being closed): expected success or EBADF, got {e} \
                                 (round {round}, pair {pairs})"
                            ))
                        }
                    }
                    if !racy(
                        w,
                        "deassign(eventfd being closed)",
                        deassign_num(&ctx, n, G),
                        &[libc::EBADF],
                    )? {
                        break;
                    }
                    pairs += 1;
                }
                if let Some(ns) = (t0.elapsed().as_nanos() as u64).checked_div(pairs) {
                    pair_ns.store(ns, Relaxed);
                }
                if !rv.wait() {
                    break;
                }
                wait_nr(
                    env,
                    &ctx,
                    0,
                    &format!("after round {round} (close during assign/deassign)"),
                )?;
                round += 1;
            }
            b.stop();
            rv.cancel();
            Ok(())
        }
        1 => {
            while rv.wait() {
                let e = closer.take("eventfd to close")?;
                let max = pair_ns.load(Relaxed).max(1_000) * 24;
                pause(Duration::from_nanos(w.rand(max)));
                must(
                    w,
                    "close(eventfd) during its assign/deassign loop",
                    sys::close(e),
                )?;
                if !rv.wait() {
                    break;
                }
            }
            Ok(())
        }
        _ => reader(w, &ctx, &acct),
    })?;
    final_checks(run, &ctx, Some(&acct), &[G], assigned.load(Relaxed))
}

/// R3: injection vs shutdown ordering. Two writers flood an eventfd while
/// the leader binds and unbinds it. Asserts I5 after each assign (a signal
/// of ours is followed by an injection), I1 after each deassign (20 ms of
/// flooding the unbound eventfd inject nothing), I3 (every re-assign
/// succeeds), writes always succeed, one shutdown per irqfd, accounting.
fn r3(run: &Run) -> TestResult {
    let env = run.env;
    let ctx = env.open()?;
    let e = new_eventfd()?;
    let acct = Mutex::new(Acct::new(env.nr_gsis()));
    let b = run.budget(1.0);
    let assigned = AtomicU64::new(0);
    run.workers(&b, 4, None, |w| match w.idx {
        0 => {
            let mut round = 0u64;
            while round == 0 || !w.over() {
                must(
                    w,
                    "I3: assign(eventfd, gsi 1) after its previous deassign returned",
                    ctx.assign(&e, G),
                )?;
                assigned.fetch_add(1, Relaxed);
                i5(
                    env,
                    &ctx,
                    G,
                    e.as_fd(),
                    &format!("(round {round}, writers flooding)"),
                )?;
                w.jitter(2000);
                must(w, "deassign(eventfd, gsi 1)", ctx.deassign(&e, G))?;
                i1(
                    &[(&ctx, G)],
                    e.as_fd(),
                    I1_WINDOW,
                    &format!("(round {round}, writers flooding)"),
                )?;
                round += 1;
            }
            b.stop();
            Ok(())
        }
        1 | 2 => {
            while !w.over() {
                must(w, "write(eventfd, 1)", sys::eventfd_signal(e.as_fd(), 1))?;
            }
            Ok(())
        }
        _ => reader(w, &ctx, &acct),
    })?;
    final_checks(run, &ctx, Some(&acct), &[G], assigned.load(Relaxed))
}

/// R4: context release vs EPOLLHUP. Each round binds 1-8 fresh eventfds
/// in a new context; then one thread closes half of them, one closes the
/// context, one writes to all. Asserts I2: after the round the surviving
/// eventfds bind at once in a fresh context (whose nr_irqfds starts at 0)
/// and deliver there (I5); writes to the closed ones give only EBADF.
fn r4(run: &Run) -> TestResult {
    let env = run.env;
    let b = run.budget(1.0);
    let rv = run.rendezvous(4);
    let odd: Slot<Vec<OwnedFd>> = Slot::new();
    let cslot: Slot<Ctx> = Slot::new();
    let nums: Mutex<Vec<(RawFd, bool)>> = Mutex::new(Vec::new());
    run.workers(&b, 4, Some(&rv), |w| match w.idx {
        0 => {
            let mut round = 0u64;
            while round == 0 || !w.over() {
                let k = 1 + (round % 8) as usize;
                let c = env.open()?;
                let mut efds = (0..k)
                    .map(|_| new_eventfd())
                    .collect::<Result<Vec<_>, _>>()?;
                for (i, e) in efds.iter().enumerate() {
                    must(w, "assign(fresh eventfd)", c.assign(e, G + i as u32 % 4))?;
                }
                *lock(&nums) = efds
                    .iter()
                    .enumerate()
                    .map(|(i, e)| (raw(e), i % 2 == 1))
                    .collect();
                let mut evens = Vec::new();
                let mut odds = Vec::new();
                for (i, e) in efds.drain(..).enumerate() {
                    if i % 2 == 1 {
                        odds.push(e);
                    } else {
                        evens.push(e);
                    }
                }
                odd.put(odds);
                cslot.put(c);
                if !rv.wait() || !rv.wait() {
                    break;
                }
                let fresh = env.open()?;
                expect_nr(&fresh, 0, "I2: of a fresh context")?;
                for e in &evens {
                    must(
                        w,
                        &format!(
                            "I2: assign(eventfd of the context just closed) in a new context \
                             (round {round})"
                        ),
                        fresh.assign(e, G),
                    )?;
                }
                expect_nr(&fresh, evens.len(), "of the new context")?;
                i5(env, &fresh, G, evens[0].as_fd(), "in the new context")?;
                let v = crate::harness::drain(&fresh)?;
                w.tally.deliveries += v.iter().map(|d| d.count).sum::<u64>();
                must(w, "close(new context)", fresh.close())?;
                round += 1;
            }
            b.stop();
            rv.cancel();
            Ok(())
        }
        1 => {
            while rv.wait() {
                for e in odd.take("eventfds to close")? {
                    must(w, "close(eventfd) racing close(context)", sys::close(e))?;
                }
                if !rv.wait() {
                    break;
                }
            }
            Ok(())
        }
        2 => {
            while rv.wait() {
                let c = cslot.take("context to close")?;
                w.jitter(128);
                must(
                    w,
                    "close(context) racing eventfd closes and writes",
                    c.close(),
                )?;
                if !rv.wait() {
                    break;
                }
            }
            Ok(())
        }
        _ => {
            while rv.wait() {
                let v = lock(&nums).clone();
                for _ in 0..2 {
                    for &(n, may_close) in &v {
                        let r = sys::eventfd_signal_raw(n, 1);
                        if may_close {
                            racy(w, "write(eventfd being closed)", r, &[libc::EBADF])?;
                        } else {
                            must(w, "write(open eventfd)", r)?;
                        }
                    }
                }
                if !rv.wait() {
                    break;
                }
            }
            Ok(())
        }
    })
}

/// R5: eventfd_ctx reference counting. Rounds alternate: (a) two threads
/// deassign the same bound eventfd at once (both must return 0, then it
/// binds again at once: I3); (b) ABA: one thread closes the bound eventfd
/// and creates a new one (usually with the same number) while another
/// deassigns that number; the new eventfd then binds at once and the old
/// irqfd goes. Meanwhile the leader closes an eventfd it has just bound
/// and deassigns /dev/null (EINVAL). Asserts those, nr_irqfds, and one
/// shutdown per irqfd; leaks show in the frame's eventfd-id and kmemleak
/// checks.
fn r5(run: &Run) -> TestResult {
    let env = run.env;
    let ctx = env.open()?;
    let devnull = ok(
        "open(/dev/null)",
        sys::open(Path::new("/dev/null"), libc::O_RDWR),
    )?;
    let dn = raw(&devnull);
    let b = run.budget(1.0);
    let rv = run.rendezvous(3);
    let aba = AtomicBool::new(false);
    let cur = AtomicI32::new(-1);
    let to_close = Slot::new();
    let back = Slot::new();
    let assigned = AtomicU64::new(0);
    let reused = AtomicU64::new(0);
    run.workers(&b, 3, Some(&rv), |w| match w.idx {
        0 => {
            let mut round = 0u64;
            while round == 0 || !w.over() {
                let is_aba = round % 2 == 1;
                let e = new_eventfd()?;
                must(w, "assign(fresh eventfd, gsi 1)", ctx.assign(&e, G))?;
                let f = new_eventfd()?;
                must(w, "assign(fresh eventfd, gsi 2)", ctx.assign(&f, G + 1))?;
                assigned.fetch_add(2, Relaxed);
                cur.store(raw(&e), Relaxed);
                aba.store(is_aba, Relaxed);
                let kept = if is_aba {
                    to_close.put(e);
                    None
                } else {
                    Some(e)
                };
                if !rv.wait() {
                    break;
                }
                must(w, "close(eventfd right after its assign)", sys::close(f))?;
                must_fail(
                    w,
                    "deassign(/dev/null)",
                    deassign_num(&ctx, dn, G),
                    libc::EINVAL,
                )?;
                if !rv.wait() {
                    break;
                }
                let e = match kept {
                    Some(e) => e,
                    None => {
                        let e2 = back.take("new eventfd")?;
                        if raw(&e2) == cur.load(Relaxed) {
                            reused.fetch_add(1, Relaxed);
                        }
                        must(
                            w,
                            "assign(new eventfd, possibly on the recycled fd number)",
                            ctx.assign(&e2, G),
                        )?;
                        assigned.fetch_add(1, Relaxed);
                        wait_nr(
                            env,
                            &ctx,
                            1,
                            &format!(
                                "in round {round}: the closed eventfds' irqfds gone, the new one \
                                 bound"
                            ),
                        )?;
                        must(w, "deassign(new eventfd)", ctx.deassign(&e2, G))?;
                        e2
                    }
                };
                must(
                    w,
                    &format!(
                        "I3: assign(eventfd) after {} returned 0 (round {round})",
                        if is_aba {
                            "its deassign"
                        } else {
                            "two concurrent deassigns of it"
                        }
                    ),
                    ctx.assign(&e, G),
                )?;
                assigned.fetch_add(1, Relaxed);
                must(w, "deassign(eventfd)", ctx.deassign(&e, G))?;
                wait_nr(env, &ctx, 0, &format!("after round {round}"))?;
                round += 1;
            }
            b.stop();
            rv.cancel();
            run.note(format!(
                "fd number recycled in {} ABA round(s)",
                reused.load(Relaxed)
            ));
            Ok(())
        }
        1 => {
            while rv.wait() {
                if aba.load(Relaxed) {
                    let e = to_close.take("eventfd to close")?;
                    must(w, "close(bound eventfd)", sys::close(e))?;
                    back.put(new_eventfd()?);
                } else {
                    must(
                        w,
                        "deassign(eventfd) concurrently with another deassign of it",
                        deassign_num(&ctx, cur.load(Relaxed), G),
                    )?;
                }
                if !rv.wait() {
                    break;
                }
            }
            Ok(())
        }
        _ => {
            while rv.wait() {
                let n = cur.load(Relaxed);
                if aba.load(Relaxed) {
                    racy(
                        w,
                        "deassign(fd number being closed and recycled)",
                        deassign_num(&ctx, n, G),
                        &[libc::EBADF],
                    )?;
                } else {
                    must(
                        w,
                        "deassign(eventfd) concurrently with another deassign of it",
                        deassign_num(&ctx, n, G),
                    )?;
                }
                if !rv.wait() {
                    break;
                }
            }
            Ok(())
        }
    })?;
    final_checks(run, &ctx, None, &[], assigned.load(Relaxed))
}

/// R6: assign vs deassign of one eventfd, free-running (no barrier), with
/// a writer keeping events pending at assign time (R8b). Asserts: assign
/// succeeds or gives EBUSY, deassign always returns 0, never more than one
/// irqfd for the eventfd; at the end one deassign leaves none and a
/// re-assign succeeds at once (I3); one shutdown per irqfd; accounting.
fn r6(run: &Run) -> TestResult {
    let env = run.env;
    let ctx = env.open()?;
    let e = new_eventfd()?;
    let acct = Mutex::new(Acct::new(env.nr_gsis()));
    let b = run.budget(1.0);
    let assigned = AtomicU64::new(0);
    run.workers(&b, 4, None, |w| match w.idx {
        0 => {
            while !w.over() {
                if racy(
                    w,
                    "assign(eventfd) racing its deassign",
                    ctx.assign(&e, G),
                    &[libc::EBUSY],
                )? {
                    assigned.fetch_add(1, Relaxed);
                }
            }
            Ok(())
        }
        1 => {
            let mut i = 0u64;
            while !w.over() {
                must(
                    w,
                    "deassign(eventfd) racing its assign",
                    ctx.deassign(&e, G),
                )?;
                i += 1;
                if i.is_multiple_of(16) {
                    let n = nr_irqfds(&ctx)?;
                    ensure(n <= 1, || {
                        format!("{n} irqfds active for one eventfd (at most one may be bound)")
                    })?;
                }
            }
            Ok(())
        }
        2 => {
            while !w.over() {
                must(w, "write(eventfd, 1)", sys::eventfd_signal(e.as_fd(), 1))?;
                pause(Duration::from_micros(30));
            }
            Ok(())
        }
        _ => reader(w, &ctx, &acct),
    })?;
    let b = run.budget(1.0);
    let mut w = Worker::new(0, &b);
    let r = (|| {
        must(
            &mut w,
            "deassign(eventfd) after the race",
            ctx.deassign(&e, G),
        )?;
        expect_nr(&ctx, 0, "after the final deassign")?;
        must(
            &mut w,
            "I3: assign(eventfd) right after the final deassign returned",
            ctx.assign(&e, G),
        )?;
        assigned.fetch_add(1, Relaxed);
        expect_nr(&ctx, 1, "after the re-assign")?;
        must(&mut w, "deassign(eventfd)", ctx.deassign(&e, G))?;
        expect_nr(&ctx, 0, "after the last deassign")
    })();
    run.add(&w.tally);
    r?;
    final_checks(run, &ctx, Some(&acct), &[G], assigned.load(Relaxed))
}

/// R7: EPOLLHUP in the middle of an assign. One thread assigns a fresh
/// eventfd while another closes it (its last reference) and a third
/// writes to it. Every other round is the control: a dup keeps the file
/// open, so there is no EPOLLHUP and a successful assign must leave the
/// irqfd bound and delivering. Asserts: assign succeeds or gives EBADF;
/// nr_irqfds 0 after a HUP round; in control rounds nr_irqfds exact and I5.
fn r7(run: &Run) -> TestResult {
    let env = run.env;
    let ctx = env.open()?;
    let acct = Mutex::new(Acct::new(env.nr_gsis()));
    let b = run.budget(1.0);
    let rv = run.rendezvous(3);
    let closer = Slot::new();
    let cur = AtomicI32::new(-1);
    let assigned = AtomicU64::new(0);
    run.workers(&b, 4, Some(&rv), |w| match w.idx {
        0 => {
            let mut round = 0u64;
            while round == 0 || !w.over() {
                let control = round % 2 == 1;
                let e = new_eventfd()?;
                let d = if control {
                    Some(ok("dup(eventfd)", sys::dup(e.as_fd()))?)
                } else {
                    None
                };
                let n = raw(&e);
                cur.store(n, Relaxed);
                closer.put(e);
                if !rv.wait() {
                    break;
                }
                let bound = racy(
                    w,
                    "assign(eventfd being closed)",
                    assign_num(&ctx, n, G),
                    &[libc::EBADF],
                )?;
                if bound {
                    assigned.fetch_add(1, Relaxed);
                }
                if !rv.wait() {
                    break;
                }
                match d {
                    Some(d) if bound => {
                        expect_nr(
                            &ctx,
                            1,
                            &format!(
                                "in control round {round} (a dup keeps the eventfd open: no \
                                 EPOLLHUP, the irqfd stays)"
                            ),
                        )?;
                        i5(env, &ctx, G, d.as_fd(), "through the dup (control round)")?;
                        must(w, "deassign(dup of the eventfd)", ctx.deassign(&d, G))?;
                        expect_nr(&ctx, 0, "after the deassign (control round)")?;
                    }
                    Some(_) => expect_nr(&ctx, 0, "after an assign that lost to close")?,
                    None => wait_nr(
                        env,
                        &ctx,
                        0,
                        &format!("after round {round} (EPOLLHUP during or after the assign)"),
                    )?,
                }
                round += 1;
            }
            b.stop();
            rv.cancel();
            Ok(())
        }
        1 => {
            while rv.wait() {
                let e = closer.take("eventfd to close")?;
                w.jitter(256);
                must(w, "close(eventfd) racing its assign", sys::close(e))?;
                if !rv.wait() {
                    break;
                }
            }
            Ok(())
        }
        2 => {
            while rv.wait() {
                let n = cur.load(Relaxed);
                for _ in 0..3 {
                    racy(
                        w,
                        "write(eventfd being closed)",
                        sys::eventfd_signal_raw(n, 1),
                        &[libc::EBADF],
                    )?;
                }
                if !rv.wait() {
                    break;
                }
            }
            Ok(())
        }
        _ => reader(w, &ctx, &acct),
    })?;
    final_checks(run, &ctx, Some(&acct), &[G], assigned.load(Relaxed))
}

/// R8: events pending at assign. Each round makes an eventfd with an event
/// already pending (initval 1; EFD_SEMAPHORE with a count of 2; a write of
/// 1), then assigns it while another thread deassigns it and a third
/// writes 0-2 more times. Asserts: all those calls succeed; after a final
/// deassign the GSI got at least one injection (the pending event is not
/// lost, I5) and at most one more than the writes; accounting.
fn r8(run: &Run) -> TestResult {
    let env = run.env;
    let ctx = env.open()?;
    let acct = Mutex::new(Acct::new(env.nr_gsis()));
    let b = run.budget(1.0);
    let rv = run.rendezvous(3);
    let cur = AtomicI32::new(-1);
    let writes = AtomicU64::new(0);
    let assigned = AtomicU64::new(0);
    run.workers(&b, 4, Some(&rv), |w| match w.idx {
        0 => {
            let mut round = 0u64;
            while round == 0 || !w.over() {
                let nb = libc::EFD_NONBLOCK;
                let (e, how) = match round % 3 {
                    0 => (ok("eventfd(1)", sys::eventfd(1, nb))?, "eventfd(1)"),
                    1 => {
                        let e = ok(
                            "eventfd(0, EFD_SEMAPHORE)",
                            sys::eventfd(0, nb | libc::EFD_SEMAPHORE),
                        )?;
                        ok("write(eventfd, 2)", sys::eventfd_signal(e.as_fd(), 2))?;
                        (e, "EFD_SEMAPHORE, count 2")
                    }
                    _ => {
                        let e = new_eventfd()?;
                        ok("write(eventfd, 1)", sys::eventfd_signal(e.as_fd(), 1))?;
                        (e, "written 1 before assign")
                    }
                };
                let planned = w.rand(3);
                writes.store(planned, Relaxed);
                cur.store(raw(&e), Relaxed);
                let before = injected(&ctx, G)?;
                if !rv.wait() {
                    break;
                }
                w.jitter(64);
                must(
                    w,
                    "assign(eventfd with an event pending)",
                    ctx.assign(&e, G),
                )?;
                assigned.fetch_add(1, Relaxed);
                if !rv.wait() {
                    break;
                }
                must(w, "deassign(eventfd) after the race", ctx.deassign(&e, G))?;
                let after = injected(&ctx, G)?;
                let delta = after.checked_sub(before).ok_or_else(|| {
                    format!("gsi {G} injected went backwards: {before} -> {after}")
                })?;
                ensure(delta >= 1, || {
                    format!(
                        "I5 broken (R8a): the event pending at assign ({how}) was lost: no \
                         injection into gsi {G} (round {round}, {planned} concurrent writes)"
                    )
                })?;
                ensure(delta <= 1 + planned, || {
                    format!(
                        "{delta} injections for 1 pending event + {planned} writes ({how}, \
                         round {round})"
                    )
                })?;
                expect_nr(&ctx, 0, "after the deassigns")?;
                round += 1;
            }
            b.stop();
            rv.cancel();
            Ok(())
        }
        1 => {
            while rv.wait() {
                w.jitter(64);
                must(
                    w,
                    "deassign(eventfd) racing its assign",
                    deassign_num(&ctx, cur.load(Relaxed), G),
                )?;
                if !rv.wait() {
                    break;
                }
            }
            Ok(())
        }
        2 => {
            while rv.wait() {
                let n = cur.load(Relaxed);
                for _ in 0..writes.load(Relaxed) {
                    w.jitter(32);
                    must(
                        w,
                        "write(eventfd, 1) racing its assign",
                        sys::eventfd_signal_raw(n, 1),
                    )?;
                }
                if !rv.wait() {
                    break;
                }
            }
            Ok(())
        }
        _ => reader(w, &ctx, &acct),
    })?;
    final_checks(run, &ctx, Some(&acct), &[G], assigned.load(Relaxed))
}

/// Two below `u64::MAX`, the most an eventfd counter can take.
const BIG: u64 = 0xffff_ffff_ffff_fffe;

/// R9: the eventfd counter is drained. A writer floods an eventfd that the
/// leader binds and unbinds; while bound, the leader writes 2^64-2 and
/// then 1: the second write succeeds only if the wakeup consumed the
/// counter. An EFD_SEMAPHORE eventfd bound and unbound with a count of 0
/// keeps a count of 0 (no underflow at unhook). Asserts those, the flood's
/// writes all succeed, I3, I5, accounting.
fn r9(run: &Run) -> TestResult {
    let env = run.env;
    let ctx = env.open()?;
    let e = new_eventfd()?;
    let s = ok(
        "eventfd(0, EFD_SEMAPHORE)",
        sys::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_SEMAPHORE),
    )?;
    let acct = Mutex::new(Acct::new(env.nr_gsis()));
    let b = run.budget(1.0);
    let assigned = AtomicU64::new(0);
    // Each of our two writes is one wakeup, one injection; deferred_only
    // may merge them.
    let k = if env.deferred() { 1 } else { 2 };
    run.workers(&b, 3, None, |w| match w.idx {
        0 => {
            let mut round = 0u64;
            while round == 0 || !w.over() {
                must(
                    w,
                    "I3: assign(eventfd) after its deassign returned",
                    ctx.assign(&e, G),
                )?;
                assigned.fetch_add(1, Relaxed);
                // What was written while unbound stays in the counter at
                // assign (only injected once); consume it.
                w.op();
                match sys::eventfd_read(e.as_fd()) {
                    Ok(_) => {}
                    Err(er) if er.0 == libc::EAGAIN => w.tally.error(er),
                    Err(er) => {
                        return Err(format!(
                            "read(eventfd): expected a count or EAGAIN, got {er}"
                        ))
                    }
                }
                let before = injected(&ctx, G)?;
                must(
                    w,
                    "R9b: write(bound eventfd, 0xfffffffffffffffe)",
                    sys::eventfd_signal(e.as_fd(), BIG),
                )?;
                must(
                    w,
                    "R9b: write(bound eventfd, 1) after a write of 2^64-2 (EAGAIN: the wakeup did \
                     not drain the counter)",
                    sys::eventfd_signal(e.as_fd(), 1),
                )?;
                wait_until(env, &format!("{k} injection(s) for our two writes"), || {
                    let n = injected(&ctx, G)?;
                    Ok((n >= before + k, format!("injected {n}, was {before}")))
                })
                .map_err(|m| format!("I5 broken (round {round}): {m}"))?;
                must(w, "deassign(eventfd)", ctx.deassign(&e, G))?;

                must(w, "assign(EFD_SEMAPHORE eventfd)", ctx.assign(&s, G + 1))?;
                assigned.fetch_add(1, Relaxed);
                must(
                    w,
                    "deassign(EFD_SEMAPHORE eventfd)",
                    ctx.deassign(&s, G + 1),
                )?;
                if let Some(c) = fdinfo_field(raw(&s), "eventfd-count") {
                    ensure(u64::from_str_radix(&c, 16) == Ok(0), || {
                        format!(
                            "R9c/I4: eventfd-count of an EFD_SEMAPHORE eventfd never written, \
                             after assign and deassign, is {c} (underflow at unhook?)"
                        )
                    })?;
                }
                round += 1;
            }
            b.stop();
            Ok(())
        }
        1 => {
            while !w.over() {
                must(
                    w,
                    "write(eventfd, 1) (flood)",
                    sys::eventfd_signal(e.as_fd(), 1),
                )?;
            }
            Ok(())
        }
        _ => reader(w, &ctx, &acct),
    })?;
    final_checks(run, &ctx, Some(&acct), &[G, G + 1], assigned.load(Relaxed))
}

/// R10: duplicate assigns. Each round three threads assign one eventfd at
/// once: to gsi 1 and gsi 2 of context A, and to gsi 1 of context B (of
/// the other module when its device is present, else of this one).
/// Asserts: exactly one wins, the others get EBUSY (none winning means the
/// eventfd stayed bound after the last round's deassigns: I3); the
/// winner's context alone has one irqfd; the winner delivers (I5);
/// after deassigning all three targets nothing is bound and a signal
/// injects nowhere (I1, with a 20 ms window every 4th round); one shutdown
/// per win; accounting in both contexts.
fn r10(run: &Run) -> TestResult {
    let env = run.env;
    let a = env.open()?;
    let (bctx, bname) = match peer_ctx(env)? {
        Some(p) => p,
        None => (env.open()?, format!("another {} context", device_name(env))),
    };
    let e = new_eventfd()?;
    let acct_a = Mutex::new(Acct::new(env.nr_gsis()));
    let b_gsis = ok("RUST_IRQFD_GET_INFO", bctx.info())?.nr_gsis;
    let acct_b = Mutex::new(Acct::new(b_gsis));
    let targets: [(&Ctx, u32, &str); 3] = [
        (&a, G, "A gsi 1"),
        (&a, G + 1, "A gsi 2"),
        (&bctx, G, "B gsi 1"),
    ];
    let results: [AtomicI32; 3] = Default::default();
    let wins = [AtomicU64::new(0), AtomicU64::new(0)];
    let b = run.budget(1.0);
    let rv = run.rendezvous(3);
    run.workers(&b, 4, Some(&rv), |w| match w.idx {
        0..=2 => {
            let i = w.idx;
            let (c, g, _) = targets[i];
            let mut round = 0u64;
            loop {
                if i == 0 && round > 0 && w.over() {
                    break;
                }
                if !rv.wait() {
                    break;
                }
                w.jitter(32);
                w.op();
                let r = match c.assign(&e, g) {
                    Ok(()) => 0,
                    Err(er) if er.0 == libc::EBUSY => {
                        w.tally.error(er);
                        libc::EBUSY
                    }
                    Err(er) => {
                        return Err(format!(
                            "assign(eventfd) to {}: expected success or EBUSY, got {er}",
                            targets[i].2
                        ))
                    }
                };
                results[i].store(r, Relaxed);
                if !rv.wait() {
                    break;
                }
                if i == 0 {
                    let r: Vec<i32> = results.iter().map(|r| r.load(Relaxed)).collect();
                    let winners: Vec<usize> = (0..3).filter(|&j| r[j] == 0).collect();
                    let desc = (0..3)
                        .map(|j| {
                            format!(
                                "{}: {}",
                                targets[j].2,
                                if r[j] == 0 {
                                    "ok".into()
                                } else {
                                    Errno(r[j]).name()
                                }
                            )
                        })
                        .collect::<Vec<_>>()
                        .join(", ");
                    ensure(winners.len() == 1, || {
                        format!(
                            "{} of 3 concurrent assigns of one eventfd succeeded in round {round} \
                             ({desc}; B is {bname}); exactly one may{}",
                            winners.len(),
                            if winners.is_empty() && round > 0 {
                                " (none: I3 broken, the eventfd was still bound although every \
                                 deassign of the previous round had returned)"
                            } else {
                                ""
                            }
                        )
                    })?;
                    let j = winners[0];
                    let (wc, wg, _) = targets[j];
                    wins[usize::from(j == 2)].fetch_add(1, Relaxed);
                    expect_nr(&a, usize::from(j < 2), "of A after the concurrent assigns")?;
                    expect_nr(
                        &bctx,
                        usize::from(j == 2),
                        "of B after the concurrent assigns",
                    )?;
                    i5(
                        env,
                        wc,
                        wg,
                        e.as_fd(),
                        &format!("on the winner {}", targets[j].2),
                    )?;
                    for (c, g, name) in targets {
                        must(
                            w,
                            &format!("deassign(eventfd) from {name}"),
                            c.deassign(&e, g),
                        )?;
                    }
                    expect_nr(&a, 0, "of A after the deassigns")?;
                    expect_nr(&bctx, 0, "of B after the deassigns")?;
                    let window = if round.is_multiple_of(4) {
                        I1_WINDOW
                    } else {
                        Duration::ZERO
                    };
                    i1(
                        &targets.map(|(c, g, _)| (c, g)),
                        e.as_fd(),
                        window,
                        &format!("(round {round}, after deassigning all three targets)"),
                    )?;
                    // Our I1 signal is still in the counter: consume it.
                    ok("read(eventfd)", sys::eventfd_read(e.as_fd()))?;
                }
                round += 1;
            }
            if i == 0 {
                b.stop();
                rv.cancel();
            }
            Ok(())
        }
        _ => reader_many(w, &[(&a, &acct_a), (&bctx, &acct_b)]),
    })?;
    final_checks(run, &a, Some(&acct_a), &[G, G + 1], wins[0].load(Relaxed))?;
    final_checks(run, &bctx, Some(&acct_b), &[G], wins[1].load(Relaxed))
}

/// R11: deassign of a recycled fd number. Phase 1 (half the budget, in
/// rounds): one thread closes the bound eventfd and creates a new one,
/// which usually gets the same number, while another deassigns that
/// number; the new eventfd must then bind at once, the old irqfd must go
/// (by deassign or EPOLLHUP), and a deassign + re-assign must succeed at
/// once (I3). Phase 2 (free-running juggler, after KVM's irqfd_test.c): a
/// primary binds fresh eventfds to two gsis in two contexts (never both
/// at once), a secondary binds and unbinds whatever the number names now.
/// Asserts the errnos each call may give, deassign of /dev/null (EINVAL)
/// and -1 (EBADF), nothing left bound, one shutdown per irqfd, and no
/// injection at all (nothing is ever signalled).
fn r11(run: &Run) -> TestResult {
    let env = run.env;
    let c1 = env.open()?;
    let c2 = env.open()?;
    let devnull = ok(
        "open(/dev/null)",
        sys::open(Path::new("/dev/null"), libc::O_RDWR),
    )?;
    let dn = raw(&devnull);
    let assigned1 = AtomicU64::new(0);
    let assigned2 = AtomicU64::new(0);

    // Phase 1.
    let first = new_eventfd()?;
    ok("assign(fresh eventfd)", c1.assign(&first, G))?;
    assigned1.fetch_add(1, Relaxed);
    let holder = Mutex::new(Some(first));
    let to_close = Slot::new();
    let back = Slot::new();
    let cur = AtomicI32::new(-1);
    let reused = AtomicU64::new(0);
    let b1 = run.budget(0.5);
    let rv = run.rendezvous(3);
    let r = run.workers(&b1, 3, Some(&rv), |w| match w.idx {
        0 => {
            let mut round = 0u64;
            while round == 0 || !w.over() {
                let e = lock(&holder).take().ok_or("internal: no bound eventfd")?;
                cur.store(raw(&e), Relaxed);
                to_close.put(e);
                if !rv.wait() || !rv.wait() {
                    break;
                }
                let e2 = back.take("new eventfd")?;
                if raw(&e2) == cur.load(Relaxed) {
                    reused.fetch_add(1, Relaxed);
                }
                must(
                    w,
                    &format!(
                        "assign(new eventfd, possibly on the recycled fd number) in round {round}"
                    ),
                    c1.assign(&e2, G),
                )?;
                assigned1.fetch_add(1, Relaxed);
                wait_nr(
                    env,
                    &c1,
                    1,
                    &format!(
                        "in round {round}: the closed eventfd's irqfd gone (deassign or \
                         EPOLLHUP), the new one bound"
                    ),
                )?;
                must(w, "deassign(new eventfd)", c1.deassign(&e2, G))?;
                expect_nr(&c1, 0, "after the deassign")?;
                must(
                    w,
                    "I3: assign(eventfd) right after its deassign returned",
                    c1.assign(&e2, G),
                )?;
                assigned1.fetch_add(1, Relaxed);
                *lock(&holder) = Some(e2);
                round += 1;
            }
            b1.stop();
            rv.cancel();
            Ok(())
        }
        1 => {
            while rv.wait() {
                let e = to_close.take("eventfd to close")?;
                must(w, "close(bound eventfd)", sys::close(e))?;
                back.put(new_eventfd()?);
                if !rv.wait() {
                    break;
                }
            }
            Ok(())
        }
        _ => {
            while rv.wait() {
                w.jitter(128);
                racy(
                    w,
                    "deassign(fd number being closed and recycled)",
                    deassign_num(&c1, cur.load(Relaxed), G),
                    &[libc::EBADF],
                )?;
                if !rv.wait() {
                    break;
                }
            }
            Ok(())
        }
    });
    run.note(format!(
        "phase 1: fd number recycled in {} round(s)",
        reused.load(Relaxed)
    ));
    r?;
    if let Some(e) = lock(&holder).take() {
        ok(
            "deassign(eventfd) at the end of phase 1",
            c1.deassign(&e, G),
        )?;
    }
    expect_nr(&c1, 0, "after phase 1")?;

    // Phase 2.
    let ctxs = [(&c1, &assigned1), (&c2, &assigned2)];
    let cur = AtomicI32::new(-1);
    let b2 = run.budget(0.5);
    run.workers(&b2, 2, None, |w| match w.idx {
        0 => {
            let mut i = 0u64;
            while i == 0 || !w.over() {
                let e = new_eventfd()?;
                cur.store(raw(&e), Relaxed);
                for (c, n) in ctxs {
                    let r1 = racy(
                        w,
                        "primary: assign(eventfd, gsi 1)",
                        c.assign(&e, G),
                        &[libc::EBUSY],
                    )?;
                    let r2 = racy(
                        w,
                        "primary: assign(same eventfd, gsi 2)",
                        c.assign(&e, G + 1),
                        &[libc::EBUSY],
                    )?;
                    ensure(!(r1 && r2), || {
                        "one eventfd bound twice (gsi 1 and gsi 2 of one context)".to_string()
                    })?;
                    n.fetch_add(u64::from(r1) + u64::from(r2), Relaxed);
                    must(w, "primary: deassign(eventfd, gsi 1)", c.deassign(&e, G))?;
                    must(
                        w,
                        "primary: deassign(eventfd, gsi 2)",
                        c.deassign(&e, G + 1),
                    )?;
                }
                if i.is_multiple_of(8) {
                    must_fail(
                        w,
                        "deassign(/dev/null)",
                        deassign_num(&c1, dn, G),
                        libc::EINVAL,
                    )?;
                    must_fail(w, "deassign(fd -1)", deassign_num(&c1, -1, G), libc::EBADF)?;
                    must(
                        w,
                        "deassign(eventfd never bound to gsi 4)",
                        c2.deassign(&e, G + 3),
                    )?;
                }
                must(w, "primary: close(eventfd)", sys::close(e))?;
                i += 1;
            }
            b2.stop();
            Ok(())
        }
        _ => {
            while !w.over() {
                let n = cur.load(Relaxed);
                for (c, cnt) in ctxs {
                    for _ in 0..2 {
                        if racy(
                            w,
                            "secondary: assign(the primary's fd number, gsi 3)",
                            assign_num(c, n, G + 2),
                            &[libc::EBUSY, libc::EBADF],
                        )? {
                            cnt.fetch_add(1, Relaxed);
                        }
                        racy(
                            w,
                            "secondary: deassign(the primary's fd number, gsi 3)",
                            deassign_num(c, n, G + 2),
                            &[libc::EBADF],
                        )?;
                    }
                }
            }
            Ok(())
        }
    })?;
    for (c, n) in ctxs {
        final_checks(run, c, None, &[], n.load(Relaxed))?;
        for g in G..G + 4 {
            let i = injected(c, g)?;
            ensure(i == 0, || {
                format!("gsi {g}: {i} injection(s), but no eventfd was ever signalled")
            })?;
        }
    }
    Ok(())
}

/// R12: teardown vs assign. Rounds alternate: (a) an assign through a dup
/// of a long-lived context while another thread closes that dup (closing
/// a dup must tear nothing down: the irqfd count is exact); (b) an assign
/// through a dup of a new context while another thread closes both of
/// its descriptors (the release runs when the last one goes, possibly at
/// the end of the assign); afterwards the eventfd binds at once in a fresh
/// context (I2). A third thread writes to the eventfds all along.
fn r12(run: &Run) -> TestResult {
    let env = run.env;
    let c = env.open()?;
    let acct = Mutex::new(Acct::new(env.nr_gsis()));
    let b = run.budget(1.0);
    let rv = run.rendezvous(3);
    let flavor_b = AtomicBool::new(false);
    let dslot: Slot<OwnedFd> = Slot::new();
    let bslot: Slot<(Ctx, OwnedFd)> = Slot::new();
    let wnums: Mutex<Vec<RawFd>> = Mutex::new(Vec::new());
    let live: Mutex<Vec<OwnedFd>> = Mutex::new(Vec::new());
    let assigned = AtomicU64::new(0);
    run.workers(&b, 4, Some(&rv), |w| match w.idx {
        0 => {
            let mut round = 0u64;
            while round == 0 || !w.over() {
                let is_b = round % 2 == 1;
                flavor_b.store(is_b, Relaxed);
                let f = new_eventfd()?;
                let dnum;
                if is_b {
                    let cb = env.open()?;
                    let d = ok("dup(context)", sys::dup(cb.as_fd()))?;
                    dnum = raw(&d);
                    bslot.put((cb, d));
                    *lock(&wnums) = vec![raw(&f)];
                } else {
                    let d = ok("dup(context)", sys::dup(c.as_fd()))?;
                    dnum = raw(&d);
                    dslot.put(d);
                    let mut v: Vec<RawFd> = lock(&live).iter().map(raw).collect();
                    v.push(raw(&f));
                    *lock(&wnums) = v;
                }
                if !rv.wait() {
                    break;
                }
                let bound = racy(
                    w,
                    "assign through a context descriptor being closed",
                    assign_via(dnum, raw(&f), G),
                    &[libc::EBADF],
                )?;
                if !rv.wait() {
                    break;
                }
                if is_b {
                    let x = env.open()?;
                    expect_nr(&x, 0, "I2: of a fresh context")?;
                    must(
                        w,
                        &format!(
                            "I2: assign(eventfd) in a new context right after the last close of \
                             the context it was {} (round {round})",
                            if bound { "assigned in" } else { "offered to" }
                        ),
                        x.assign(&f, G),
                    )?;
                    must(w, "close(new context)", x.close())?;
                } else {
                    let mut l = lock(&live);
                    if bound {
                        l.push(f);
                        assigned.fetch_add(1, Relaxed);
                    }
                    expect_nr(
                        &c,
                        l.len(),
                        "after close(dup) racing an assign through it (closing a dup tears \
                         nothing down)",
                    )?;
                    if l.len() >= 16 {
                        for f in l.drain(..) {
                            must(w, "deassign(eventfd)", c.deassign(&f, G))?;
                        }
                        expect_nr(&c, 0, "after deassigning them all")?;
                    }
                }
                round += 1;
            }
            b.stop();
            rv.cancel();
            Ok(())
        }
        1 => {
            while rv.wait() {
                w.jitter(128);
                if flavor_b.load(Relaxed) {
                    let (cb, d) = bslot.take("context to close")?;
                    if w.rand(2) == 0 {
                        must(w, "close(context)", cb.close())?;
                        must(w, "close(dup of the context)", sys::close(d))?;
                    } else {
                        must(w, "close(dup of the context)", sys::close(d))?;
                        must(w, "close(context)", cb.close())?;
                    }
                } else {
                    let d = dslot.take("dup to close")?;
                    must(w, "close(dup of the context)", sys::close(d))?;
                }
                if !rv.wait() {
                    break;
                }
            }
            Ok(())
        }
        2 => {
            while rv.wait() {
                let v = lock(&wnums).clone();
                for n in v {
                    must(w, "write(eventfd)", sys::eventfd_signal_raw(n, 1))?;
                }
                if !rv.wait() {
                    break;
                }
            }
            Ok(())
        }
        _ => reader(w, &c, &acct),
    })?;
    for f in lock(&live).drain(..) {
        ok("deassign(eventfd)", c.deassign(&f, G))?;
    }
    final_checks(run, &c, Some(&acct), &[G], assigned.load(Relaxed))
}

/// R13: mass release. Each round binds 256 eventfds in a context and closes
/// it while another thread closes a third of those eventfds (EPOLLHUP
/// during the release) and a third one opens, fills and closes other
/// contexts (more work on the shared cleanup queue). Asserts: every call
/// succeeds; after the close the other two thirds bind at once in a fresh
/// context (I2). Reports the slowest close.
fn r13(run: &Run) -> TestResult {
    let env = run.env;
    let b = run.budget(1.0);
    let rv = run.rendezvous(3);
    let hup: Slot<Vec<OwnedFd>> = Slot::new();
    let max_close = AtomicU64::new(0);
    let rounds = AtomicU64::new(0);
    let r = run.workers(&b, 3, Some(&rv), |w| match w.idx {
        0 => {
            let mut round = 0u64;
            while round == 0 || !w.over() {
                let c = env.open()?;
                let efds = (0..MASS)
                    .map(|_| new_eventfd())
                    .collect::<Result<Vec<_>, _>>()?;
                for (i, e) in efds.iter().enumerate() {
                    must(w, "assign(fresh eventfd)", c.assign(e, G + i as u32 % 4))?;
                }
                expect_nr(&c, MASS, "after the assigns")?;
                let (thirds, survivors): (Vec<_>, Vec<_>) =
                    efds.into_iter().enumerate().partition(|(i, _)| i % 3 == 0);
                hup.put(thirds.into_iter().map(|(_, e)| e).collect());
                if !rv.wait() {
                    break;
                }
                let t0 = Instant::now();
                must(w, "close(context with 256 irqfds)", c.close())?;
                max_close.fetch_max(t0.elapsed().as_micros() as u64, Relaxed);
                if !rv.wait() {
                    break;
                }
                let x = env.open()?;
                expect_nr(&x, 0, "I2: of a fresh context")?;
                for (_, e) in &survivors {
                    must(
                        w,
                        &format!(
                            "I2: assign(eventfd of the context just closed) in a new context \
                             (round {round})"
                        ),
                        x.assign(e, G),
                    )?;
                }
                expect_nr(&x, survivors.len(), "of the new context")?;
                must(w, "close(new context)", x.close())?;
                round += 1;
                rounds.store(round, Relaxed);
            }
            b.stop();
            rv.cancel();
            Ok(())
        }
        1 => {
            while rv.wait() {
                for _ in 0..3 {
                    let bc = env.open()?;
                    let fs = (0..8)
                        .map(|_| new_eventfd())
                        .collect::<Result<Vec<_>, _>>()?;
                    for f in &fs {
                        must(
                            w,
                            "assign(fresh eventfd) in a short-lived context",
                            bc.assign(f, G),
                        )?;
                    }
                    for f in &fs {
                        must(w, "write(eventfd)", sys::eventfd_signal(f.as_fd(), 1))?;
                    }
                    must(w, "close(short-lived context)", bc.close())?;
                }
                if !rv.wait() {
                    break;
                }
            }
            Ok(())
        }
        _ => {
            while rv.wait() {
                for e in hup.take("eventfds to close")? {
                    must(
                        w,
                        "close(eventfd) during the release of its context",
                        sys::close(e),
                    )?;
                }
                if !rv.wait() {
                    break;
                }
            }
            Ok(())
        }
    });
    run.note(format!(
        "close(context with {MASS} irqfds): slowest {:.1} ms over {} round(s)",
        max_close.load(Relaxed) as f64 / 1000.0,
        rounds.load(Relaxed)
    ));
    r
}

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
/// signal (at least one with deferred_only); EBADF only once closing;
/// nr_irqfds 0 after each round; one shutdown per irqfd; accounting.
/// Sleeping in the callback shows as a kernel splat.
fn r14(run: &Run) -> TestResult {
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
    let rv = run.rendezvous(3);
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
    run.workers(&b, 4, Some(&rv), |w| match w.idx {
        0 => {
            let mut round = 0u64;
            while round == 0 || !w.over() {
                let e = new_eventfd()?;
                must(w, "assign(fresh eventfd)", ctx.assign(&e, G))?;
                assigned.fetch_add(1, Relaxed);
                cur.store(raw(&e), Relaxed);
                sigs.store(0, Relaxed);
                let before = injected(&ctx, G)?;
                // Phase A: signals on the bound eventfd.
                if !rv.wait() || !rv.wait() {
                    break;
                }
                let n = sigs.load(Relaxed);
                let want = before + if env.deferred() { n.min(1) } else { n };
                wait_until(env, &format!("injections for {n} signals"), || {
                    let i = injected(&ctx, G)?;
                    Ok((i >= want, format!("injected {i}, was {before}")))
                })
                .map_err(|m| format!("I5 broken (round {round}): {m}"))?;
                if !env.deferred() {
                    let i = injected(&ctx, G)?;
                    ensure(i == before + n, || {
                        format!(
                            "{} injections for {n} signals (writes and AIO completions) on a \
                             bound eventfd; one each expected without deferred_only",
                            i - before
                        )
                    })?;
                }
                // Phase B: close (EPOLLHUP) while the signals go on.
                if !rv.wait() {
                    break;
                }
                w.jitter(128);
                must(w, "close(eventfd) racing its signals", sys::close(e))?;
                if !rv.wait() {
                    break;
                }
                wait_nr(env, &ctx, 0, &format!("after round {round} (EPOLLHUP)"))?;
                round += 1;
            }
            b.stop();
            rv.cancel();
            Ok(())
        }
        1 | 2 => {
            while rv.wait() {
                signaller(w, false)?;
                if !rv.wait() || !rv.wait() {
                    break;
                }
                signaller(w, true)?;
                if !rv.wait() {
                    break;
                }
            }
            Ok(())
        }
        _ => reader(w, &ctx, &acct),
    })?;
    drop(aio);
    final_checks(run, &ctx, Some(&acct), &[G], assigned.load(Relaxed))
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
fn r16(run: &Run) -> TestResult {
    let env = run.env;
    let ctx = env.open()?;
    let e = new_eventfd()?;
    let acct = Mutex::new(Acct::new(env.nr_gsis()));
    let b = run.budget(1.0);
    let assigned = AtomicU64::new(0);
    let binder = |w: &mut Worker<'_>, g: u32| -> TestResult {
        while !w.over() {
            if racy(
                w,
                "assign(contended eventfd)",
                ctx.assign(&e, g),
                &[libc::EBUSY],
            )? {
                assigned.fetch_add(1, Relaxed);
                must(w, "deassign(contended eventfd)", ctx.deassign(&e, g))?;
            }
        }
        Ok(())
    };
    run.workers(&b, 4, None, |w| match w.idx {
        0 => binder(w, G),
        1 => binder(w, G + 2),
        2 => {
            while !w.over() {
                must(
                    w,
                    "write(contended eventfd)",
                    sys::eventfd_signal(e.as_fd(), 1),
                )?;
            }
            Ok(())
        }
        _ => {
            while !w.over() {
                let f = new_eventfd()?;
                must(w, "assign(fresh eventfd)", ctx.assign(&f, G + 1))?;
                assigned.fetch_add(1, Relaxed);
                must(w, "write(fresh eventfd)", sys::eventfd_signal(f.as_fd(), 1))?;
                must(w, "close(fresh eventfd)", sys::close(f))?;
                lock(&acct).read_once(&ctx, &mut w.tally)?;
            }
            Ok(())
        }
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
fn r17(run: &Run) -> TestResult {
    let env = run.env;
    let a = env.open()?;
    let ea = new_eventfd()?;
    let acct = Mutex::new(Acct::new(env.nr_gsis()));
    let b = run.budget(1.0);
    let assigned = AtomicU64::new(0);
    run.workers(&b, 4, None, |w| match w.idx {
        0 => {
            while !w.over() {
                must(
                    w,
                    "I3: assign(eventfd) after its deassign returned",
                    a.assign(&ea, G),
                )?;
                assigned.fetch_add(1, Relaxed);
                must(w, "deassign(eventfd)", a.deassign(&ea, G))?;
            }
            Ok(())
        }
        1 => {
            let mut round = 0u64;
            while !w.over() {
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
                let x = env.open()?;
                expect_nr(&x, 0, "I2: of a fresh context")?;
                for f in &fs {
                    must(
                        w,
                        &format!(
                            "I2: assign(eventfd of the context just closed) in a new context \
                             (round {round})"
                        ),
                        x.assign(f, G),
                    )?;
                }
                must(w, "close(new context)", x.close())?;
                round += 1;
            }
            Ok(())
        }
        2 => {
            while !w.over() {
                must(w, "write(eventfd)", sys::eventfd_signal(ea.as_fd(), 1))?;
            }
            Ok(())
        }
        _ => reader(w, &a, &acct),
    })?;
    final_checks(run, &a, Some(&acct), &[G], assigned.load(Relaxed))
}

/// R18: module unload while a context is open. A pinned context with four
/// bound eventfds stays open throughout; one thread tries `delete_module`
/// (O_NONBLOCK) every millisecond, which must fail with EAGAIN (or EBUSY)
/// and never unload the module; another opens, fills and closes contexts
/// and closes their eventfds; a third writes to the pinned irqfds.
/// Afterwards the device must still work: the pinned context has its four
/// irqfds and delivers (I5), and a new context binds and delivers.
/// Skipped when the device is not a loaded module or rmmod is not allowed.
fn r18(run: &Run) -> Ran {
    let env = run.env;
    let name = device_name(env);
    let sysdir = format!("/sys/module/{name}");
    if !Path::new(&sysdir).exists() {
        return skip(format!(
            "{sysdir} not found: {name} is not a loaded module of that name"
        ));
    }
    let refcnt = || -> Option<i64> {
        std::fs::read_to_string(format!("{sysdir}/refcnt"))
            .ok()?
            .trim()
            .parse()
            .ok()
    };
    let p = env.open()?;
    let efds = (0..4)
        .map(|_| new_eventfd())
        .collect::<Result<Vec<_>, _>>()?;
    for (i, e) in efds.iter().enumerate() {
        ok(
            "assign(fresh eventfd) in the pinned context",
            p.assign(e, G + i as u32),
        )?;
    }
    if let Some(n) = refcnt() {
        ensure(n >= 1, || {
            format!("{sysdir}/refcnt is {n} with a context open (the module is not pinned)")
        })?;
    }
    match sys::delete_module(&name, libc::O_NONBLOCK) {
        Ok(()) => {
            return Err(Stop::Fail(format!(
                "delete_module({name}) succeeded while a context was open: the module is gone \
                 under it"
            )))
        }
        Err(e) if e.0 == libc::EPERM => {
            return skip(format!(
                "delete_module({name}): EPERM (needs CAP_SYS_MODULE)"
            ))
        }
        Err(e) if e.0 == libc::ENOENT || e.0 == libc::ENOSYS => {
            return skip(format!("delete_module({name}): {e}"))
        }
        Err(e) if e.0 == libc::EAGAIN || e.0 == libc::EBUSY => {}
        Err(e) => {
            return Err(Stop::Fail(format!(
                "delete_module({name}) with a context open: expected EAGAIN or EBUSY, got {e}"
            )))
        }
    }
    let acct = Mutex::new(Acct::new(env.nr_gsis()));
    let b = run.budget(1.0);
    let opened = AtomicU64::new(0);
    run.workers(&b, 4, None, |w| match w.idx {
        0 => {
            while !w.over() {
                racy(
                    w,
                    &format!("delete_module({name}, O_NONBLOCK) with a context open"),
                    sys::delete_module(&name, libc::O_NONBLOCK),
                    &[libc::EAGAIN, libc::EBUSY],
                )
                .and_then(|unloaded| {
                    if unloaded {
                        Err(format!(
                            "delete_module({name}) succeeded while a context was open"
                        ))
                    } else {
                        Ok(())
                    }
                })?;
                std::thread::sleep(Duration::from_millis(1));
            }
            Ok(())
        }
        1 => {
            while !w.over() {
                let c = env.open()?;
                opened.fetch_add(1, Relaxed);
                let f = new_eventfd()?;
                must(w, "assign(fresh eventfd)", c.assign(&f, G))?;
                must(w, "write(eventfd)", sys::eventfd_signal(f.as_fd(), 1))?;
                must(w, "close(bound eventfd)", sys::close(f))?;
                must(w, "close(context)", c.close())?;
            }
            Ok(())
        }
        2 => {
            while !w.over() {
                for e in &efds {
                    must(
                        w,
                        "write(pinned eventfd)",
                        sys::eventfd_signal(e.as_fd(), 1),
                    )?;
                }
                pause(Duration::from_micros(100));
            }
            Ok(())
        }
        _ => reader(w, &p, &acct),
    })?;
    // Still usable.
    expect_nr(&p, 4, "of the pinned context after the rmmod attempts")?;
    i5(
        env,
        &p,
        G,
        efds[0].as_fd(),
        "in the pinned context after the rmmod attempts",
    )?;
    let x = env.open()?;
    expect_nr(&x, 0, "of a new context after the rmmod attempts")?;
    let f = new_eventfd()?;
    ok("assign(fresh eventfd) in a new context", x.assign(&f, G))?;
    crate::harness::signal(&f)?;
    crate::harness::read_n(env, &x, 1)?;
    ok("close(new context)", x.close())?;
    for (i, e) in efds.iter().enumerate() {
        ok("deassign(pinned eventfd)", p.deassign(e, G + i as u32))?;
    }
    run.note(format!(
        "{} short-lived contexts; {sysdir}/refcnt {}",
        opened.load(Relaxed),
        refcnt().map_or("unreadable".into(), |n| n.to_string())
    ));
    let gsis: Vec<u32> = (G..G + 4).collect();
    Ok(final_checks(run, &p, Some(&acct), &gsis, 4)?)
}

/// One ACK of `gsi`: it must succeed and signal at most `max()`
/// resamplefds (`max` is evaluated after the call, so that a bound that
/// only grows covers every irqfd the ACK could have seen).
fn ack_once(
    w: &mut Worker<'_>,
    ctx: &Ctx,
    gsi: u32,
    max: impl Fn() -> u64,
    what: &str,
) -> Result<u32, String> {
    w.op();
    let n = ctx
        .ack(gsi)
        .map_err(|e| format!("ACK(gsi {gsi}) {what}: expected a count, got {e}"))?;
    let max = max();
    ensure(u64::from(n) <= max, || {
        format!(
            "ACK(gsi {gsi}) {what} signalled {n} resamplefds, but at most {max} resample \
             irqfd(s) can be on the gsi"
        )
    })?;
    Ok(n)
}

/// The counter of an eventfd only this scenario reads (0 on `EAGAIN`).
fn take_count(efd: &OwnedFd, what: &str) -> Result<u64, String> {
    match sys::eventfd_read(efd.as_fd()) {
        Ok(n) => Ok(n),
        Err(e) if e.0 == libc::EAGAIN => Ok(0),
        Err(e) => Err(format!("read({what}): expected a count or EAGAIN, got {e}")),
    }
}

/// R19: a wakeup that re-signals an eventfd. Three resample irqfds:
/// A -> gsi 1 with resamplefd B and B -> gsi 2 with resamplefd A (a cross
/// pair: an ACK of either line injects into the other through the other's
/// irqfd), and C -> gsi 3 with resamplefd C itself (an ACK injects into
/// the line it deasserted). A prelude writes each eventfd twice, so that a
/// level injection meets an already asserted line, and asserts that it
/// only coalesces: nothing may signal a resamplefd but an ACK (a wakeup
/// that does recurses into an eventfd's wait-queue lock: the eventfd core
/// WARNs, or, with `deferred_only`, the ping-pong shows as injections no
/// write or ACK made). Then three writers write A, B and C in bursts (most
/// writes hit an asserted line), two threads ACK the three lines and a
/// reader drains. Asserts: every ACK signals 0 or 1 resamplefd, and `acks`
/// of each gsi is the number of ACKs that signalled; on the fast path each
/// gsi's injections are exactly its eventfd's writes plus the ACK signals
/// sent to that eventfd (at most that with `deferred_only`); `raised <=
/// acks + 1` per gsi (only a deasserted line raises); every record is
/// LEVEL; after the race an ACK still re-injects through C and through the
/// pair; the last deassign deasserts each line; one shutdown per irqfd;
/// level accounting. A hang here is the recursion deadlocking.
fn r19(run: &Run) -> TestResult {
    let env = run.env;
    let ctx = env.open()?;
    let (g1, g2, g3) = (G, G + 1, G + 2);
    let gsis = [g1, g2, g3];
    let (a, b, c) = (new_eventfd()?, new_eventfd()?, new_eventfd()?);
    ok(
        "assign(A, gsi 1, RESAMPLE, resamplefd B)",
        ctx.assign_resample(&a, g1, &b),
    )?;
    ok(
        "assign(B, gsi 2, RESAMPLE, resamplefd A)",
        ctx.assign_resample(&b, g2, &a),
    )?;
    ok(
        "assign(C, gsi 3, RESAMPLE, resamplefd C)",
        ctx.assign_resample(&c, g3, &c),
    )?;
    let acct = Mutex::new(
        Acct::new(env.nr_gsis())
            .kind(g1, Kind::level())
            .kind(g2, Kind::level())
            .kind(g3, Kind::level()),
    );
    // The eventfd each gsi's irqfd is bound to, and the gsi whose ACK
    // signals that eventfd (its resamplefd's owner).
    let efds: [&OwnedFd; 3] = [&a, &b, &c];
    let fed_by_ack_of = [1usize, 0, 2];
    let writes: [AtomicU64; 3] = Default::default();
    let signalled: [AtomicU64; 3] = Default::default();

    // Prelude: two writes each, the second into the asserted line.
    let mut t = Tally::default();
    for i in [0usize, 2, 1] {
        let g = gsis[i];
        let before: Vec<u64> = gsis
            .iter()
            .map(|&x| injected(&ctx, x))
            .collect::<Result<_, _>>()?;
        for k in 1..=2u64 {
            t.ops += 1;
            ok(
                "write(resample eventfd)",
                sys::eventfd_signal(efds[i].as_fd(), 1),
            )?;
            writes[i].fetch_add(1, Relaxed);
            wait_until(
                env,
                &format!("injection {k} of the prelude into gsi {g}"),
                || {
                    let n = injected(&ctx, g)?;
                    Ok((n >= before[i] + k, format!("injected {n}")))
                },
            )?;
        }
        std::thread::sleep(I1_WINDOW);
        for (j, &x) in gsis.iter().enumerate() {
            let want = before[j] + if j == i { 2 } else { 0 };
            let n = injected(&ctx, x)?;
            ensure(n == want, || {
                format!(
                    "R19: two writes to the eventfd of gsi {g} (the second into its asserted \
                     line), no ACK: gsi {x} injected {} -> {n}, expected {want} (something \
                     signalled a resamplefd outside an ACK: from the wakeup?)",
                    before[j]
                )
            })?;
        }
        let s = stats(&ctx, g)?;
        ensure(s.asserted == 1 && s.coalesced >= 1 && s.acks == 0, || {
            format!("R19: gsi {g} after two level injections without an ACK: {s:?}")
        })?;
    }
    run.add(&t);

    let b_ = run.budget(1.0);
    run.workers(&b_, 6, None, |w| match w.idx {
        0..=2 => {
            let i = w.idx;
            while !w.over() {
                for _ in 0..=w.rand(3) {
                    must(
                        w,
                        "write(resample eventfd)",
                        sys::eventfd_signal(efds[i].as_fd(), 1),
                    )?;
                    writes[i].fetch_add(1, Relaxed);
                }
                pause(Duration::from_micros(w.rand(50)));
            }
            Ok(())
        }
        3 | 4 => {
            let mut k = w.idx;
            while !w.over() {
                for j in 0..3 {
                    let i = (k + j) % 3;
                    let n = ack_once(w, &ctx, gsis[i], || 1, "(one resample irqfd per gsi)")?;
                    signalled[i].fetch_add(u64::from(n), Relaxed);
                }
                k += 1;
                pause(Duration::from_micros(w.rand(40)));
            }
            Ok(())
        }
        _ => reader(w, &ctx, &acct),
    })?;

    // After the race, an ACK still re-injects: through C into its own
    // line, through B into gsi 2 (A's resamplefd).
    let mut t = Tally::default();
    for (i, via) in [(2usize, "C itself"), (0, "B, the irqfd of gsi 2")] {
        let g = gsis[i];
        let target = fed_by_ack_of.iter().position(|&x| x == i).unwrap_or(i);
        let tg = gsis[target];
        if stats(&ctx, g)?.asserted == 0 {
            let before = injected(&ctx, g)?;
            t.ops += 1;
            ok(
                "write(resample eventfd)",
                sys::eventfd_signal(efds[i].as_fd(), 1),
            )?;
            writes[i].fetch_add(1, Relaxed);
            wait_until(env, &format!("gsi {g} asserted again"), || {
                let s = stats(&ctx, g)?;
                Ok((s.injected > before && s.asserted == 1, format!("{s:?}")))
            })?;
        }
        let before = injected(&ctx, tg)?;
        t.ops += 1;
        let n = ok(&format!("ACK(gsi {g}) after the race"), ctx.ack(g))?;
        ensure(n == 1, || {
            format!("ACK(gsi {g}) of the asserted line after the race signalled {n}, expected 1")
        })?;
        signalled[i].fetch_add(1, Relaxed);
        wait_until(
            env,
            &format!("the ACK of gsi {g} to inject into gsi {tg} through {via}"),
            || {
                let s = stats(&ctx, tg)?;
                Ok((s.injected > before && s.asserted == 1, format!("{s:?}")))
            },
        )?;
    }
    run.add(&t);

    // The deassigns flush queued injections; the last resample irqfd of
    // each gsi leaving deasserts it.
    for (e, g) in efds.iter().zip(gsis) {
        ok(&format!("deassign(gsi {g})"), ctx.deassign(e, g))?;
    }
    let mut coalesced = 0;
    for (i, &g) in gsis.iter().enumerate() {
        let s = stats(&ctx, g)?;
        coalesced += s.coalesced;
        let sig = signalled[i].load(Relaxed);
        ensure(s.acks == sig, || {
            format!(
                "gsi {g}: acks is {}, but {sig} ACKs signalled its one resample irqfd ({s:?})",
                s.acks
            )
        })?;
        ensure(s.raised <= s.acks + 1, || {
            format!(
                "gsi {g}: {} records raised with only {} ACKs: a level line raises once per \
                 assertion ({s:?})",
                s.raised, s.acks
            )
        })?;
        ensure(s.asserted == 0, || {
            format!("gsi {g} still asserted after its last resample irqfd was deassigned: {s:?}")
        })?;
        let want = writes[i].load(Relaxed) + signalled[fed_by_ack_of[i]].load(Relaxed);
        if env.deferred() {
            ensure(s.injected >= 1 && s.injected <= want, || {
                format!(
                    "gsi {g}: {} injections for {want} signals (writes and ACK signals; \
                     deferred_only)",
                    s.injected
                )
            })?;
        } else {
            ensure(s.injected == want, || {
                format!(
                    "gsi {g}: {} injections, expected exactly {want}: {} writes to its eventfd \
                     + {} ACK signals of it (more: a resamplefd signalled outside an ACK; \
                     fewer: a signal dropped, as the eventfd core does on recursion)",
                    s.injected,
                    writes[i].load(Relaxed),
                    signalled[fed_by_ack_of[i]].load(Relaxed)
                )
            })?;
        }
    }
    run.note(format!(
        "writes A/B/C {}/{}/{}, ACK signals of gsi 1/2/3 {}/{}/{}, {coalesced} injections \
         coalesced (into an asserted line or a pending record)",
        writes[0].load(Relaxed),
        writes[1].load(Relaxed),
        writes[2].load(Relaxed),
        signalled[0].load(Relaxed),
        signalled[1].load(Relaxed),
        signalled[2].load(Relaxed),
    ));
    final_checks(run, &ctx, Some(&acct), &gsis, 3)
}

/// R20: resampler races. gsi 1: two threads each bind a resample irqfd with
/// a fresh resamplefd, close that resamplefd at once (the irqfd then holds
/// the last reference), write the eventfd (asserting the shared line), and
/// take the irqfd down again, by deassign or by closing the eventfd (an
/// EPOLLHUP shutdown), so that the GSI's shared resampler is joined, left,
/// emptied and made again concurrently (R20b). gsi 2: a third such thread,
/// next to a resample irqfd P bound the whole time whose eventfd a writer
/// keeps asserting. Two threads ACK both lines all along: an ACK walks the
/// resampler while those shutdowns run (R20a: the resamplefds, closed by
/// userspace, live as long as the irqfds' references; one put too early
/// is a use-after-free for KASAN). Asserts: every call succeeds; an ACK
/// never signals more resamplefds than irqfds were ever bound; P's
/// resamplefd got exactly one signal per ACK of gsi 2 that signalled, and
/// `acks` of gsi 2 is that number; once every irqfd is gone both lines are
/// deasserted; a new resample irqfd on each line is then alone in its
/// resampler (an ACK signals exactly 1); one shutdown per irqfd; level
/// accounting.
fn r20(run: &Run) -> TestResult {
    let env = run.env;
    let ctx = env.open()?;
    let (g, gp) = (G, G + 1);
    let ep = new_eventfd()?;
    let rp = new_eventfd()?;
    ok(
        "assign(P, gsi 2, RESAMPLE, its resamplefd)",
        ctx.assign_resample(&ep, gp, &rp),
    )?;
    let acct = Mutex::new(
        Acct::new(env.nr_gsis())
            .kind(g, Kind::level())
            .kind(gp, Kind::level()),
    );
    // Assigns started per line (P included): a bound for what an ACK signals.
    let started = [AtomicU64::new(0), AtomicU64::new(1)];
    let assigned = AtomicU64::new(1);
    let acked_p = AtomicU64::new(0);
    let acked_g = AtomicU64::new(0);
    let acks_g_calls = AtomicU64::new(0);
    let hups = AtomicU64::new(0);
    let b = run.budget(1.0);
    run.workers(&b, 6, None, |w| match w.idx {
        0..=2 => {
            let (gsi, li) = if w.idx == 2 { (gp, 1) } else { (g, 0) };
            let mut round = w.idx as u64;
            while !w.over() {
                let e = new_eventfd()?;
                let r = new_eventfd()?;
                started[li].fetch_add(1, Relaxed);
                must(
                    w,
                    "assign(fresh eventfd, RESAMPLE, fresh resamplefd) to a shared resampler",
                    ctx.assign_resample(&e, gsi, &r),
                )?;
                assigned.fetch_add(1, Relaxed);
                must(w, "close(resamplefd) right after the assign", sys::close(r))?;
                must(
                    w,
                    "write(resample eventfd)",
                    sys::eventfd_signal(e.as_fd(), 1),
                )?;
                w.jitter(1000);
                if round.is_multiple_of(2) {
                    must(
                        w,
                        "deassign(resample irqfd) while ACKs walk its resampler",
                        ctx.deassign(&e, gsi),
                    )?;
                    must(w, "close(eventfd)", sys::close(e))?;
                } else {
                    must(
                        w,
                        "close(eventfd): an EPOLLHUP shutdown while ACKs walk its resampler",
                        sys::close(e),
                    )?;
                    hups.fetch_add(1, Relaxed);
                }
                round += 1;
            }
            Ok(())
        }
        3 | 4 => {
            while !w.over() {
                // An irqfd in the resampler had started its assign before
                // the ACK: the bound is read after the call.
                let n = ack_once(
                    w,
                    &ctx,
                    g,
                    || started[0].load(Relaxed),
                    "racing resample irqfd shutdowns",
                )?;
                acks_g_calls.fetch_add(1, Relaxed);
                if n > 0 {
                    acked_g.fetch_add(1, Relaxed);
                }
                let n = ack_once(
                    w,
                    &ctx,
                    gp,
                    || started[1].load(Relaxed),
                    "racing resample irqfd shutdowns, P bound",
                )?;
                if n > 0 {
                    acked_p.fetch_add(1, Relaxed);
                }
                pause(Duration::from_micros(w.rand(20)));
            }
            Ok(())
        }
        _ => {
            while !w.over() {
                must(w, "write(P's eventfd)", sys::eventfd_signal(ep.as_fd(), 1))?;
                lock(&acct).read_once(&ctx, &mut w.tally)?;
                pause(Duration::from_micros(w.rand(30)));
            }
            Ok(())
        }
    })?;

    // P: one signal per ACK of its line that signalled.
    let p_sig = take_count(&rp, "P's resamplefd")?;
    let want = acked_p.load(Relaxed);
    ensure(p_sig == want, || {
        format!(
            "P's resamplefd got {p_sig} signals for {want} ACKs of gsi {gp} that signalled \
             (P was bound throughout: each such ACK signals it exactly once)"
        )
    })?;
    let s = stats(&ctx, gp)?;
    ensure(s.acks == want, || {
        format!(
            "gsi {gp}: acks is {}, but {want} ACKs signalled (P bound throughout) ({s:?})",
            s.acks
        )
    })?;
    let s = stats(&ctx, g)?;
    let (ag, calls) = (acked_g.load(Relaxed), acks_g_calls.load(Relaxed));
    ensure(s.acks >= ag && s.acks <= calls, || {
        format!(
            "gsi {g}: acks is {}, expected between the {ag} ACKs that signalled and the {calls} \
             ACK calls ({s:?})",
            s.acks
        )
    })?;
    ok("deassign(P)", ctx.deassign(&ep, gp))?;
    wait_nr(env, &ctx, 0, "after the race (every resample irqfd gone)")?;
    flush_cleanup(&ctx)?;
    for x in [g, gp] {
        let s = stats(&ctx, x)?;
        ensure(s.asserted == 0, || {
            format!(
                "gsi {x} still asserted after its last resample irqfd left (deassign or \
                 EPOLLHUP): {s:?}"
            )
        })?;
    }

    // Each resampler is clean: a new resample irqfd is alone in it.
    for x in [g, gp] {
        let e = new_eventfd()?;
        let r = new_eventfd()?;
        ok(
            &format!("assign(gsi {x}, RESAMPLE) after the race"),
            ctx.assign_resample(&e, x, &r),
        )?;
        assigned.fetch_add(1, Relaxed);
        let before = injected(&ctx, x)?;
        ok("write(resample eventfd)", sys::eventfd_signal(e.as_fd(), 1))?;
        wait_until(env, &format!("gsi {x} asserted"), || {
            let s = stats(&ctx, x)?;
            Ok((s.injected > before && s.asserted == 1, format!("{s:?}")))
        })?;
        let n = ok(&format!("ACK(gsi {x}) after the race"), ctx.ack(x))?;
        ensure(n == 1, || {
            format!(
                "ACK(gsi {x}) with one resample irqfd bound, after every other one was shut \
                 down, signalled {n} resamplefds (stale resampler entries?)"
            )
        })?;
        let got = take_count(&r, "the new resamplefd")?;
        ensure(got == 1, || {
            format!("the new resamplefd of gsi {x} got {got} signals from one ACK")
        })?;
        ok(&format!("deassign(gsi {x})"), ctx.deassign(&e, x))?;
    }
    run.note(format!(
        "{} resample irqfds bound, {} of them shut down by EPOLLHUP; ACKs that signalled: gsi \
         {g} {ag} of {calls}, gsi {gp} {}",
        assigned.load(Relaxed),
        hups.load(Relaxed),
        acked_p.load(Relaxed)
    ));
    final_checks(run, &ctx, Some(&acct), &[g, gp], assigned.load(Relaxed))
}

/// R21: the routes, two of them differing in every byte of both fields.
const R21_A: (u64, u32) = (0x1111_1111_fee0_1000, 0x1111_1111);
const R21_B: (u64, u32) = (0x2222_2222_efd3_2ffc, 0x2222_2222);
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
fn r21(run: &Run) -> TestResult {
    let hook = ParamHook::set(run, ROUTE_DELAY_PARAM, ROUTE_DELAY_US);
    let r = r21_body(run);
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
        run.workers(&b, if flipper { 5 } else { 4 }, None, |w| match w.idx {
            0 => {
                let mut i = 0u64;
                while !w.over() {
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
                }
                Ok(())
            }
            1 => {
                while !w.over() {
                    write(w, 0)?;
                    w.jitter(32);
                }
                Ok(())
            }
            2 => {
                let mut i = 0u64;
                while !w.over() {
                    write(w, usize::from(i % 4 == 3))?;
                    w.jitter(32);
                    i += 1;
                }
                Ok(())
            }
            3 => {
                while !w.over() {
                    if lock(&acct).read_once(&ctx, &mut w.tally)? == 0 {
                        pause(Duration::from_micros(20));
                    }
                }
                Ok(())
            }
            _ => {
                let mut i = 0u64;
                while !w.over() {
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
                }
                Ok(())
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
        if env.deferred() {
            ensure(s.injected <= wr && (wr == 0) == (s.injected == 0), || {
                format!(
                    "gsi {x}: {} injections for {wr} writes (deferred_only)",
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
    let hits = |gsi: u32, i: usize| a.route_hits.get(&(gsi, i)).copied().unwrap_or(0);
    run.note(format!(
        "{} route updates, {} mask flips; records of gsi 1 with A {} and B {}, of gsi 2 with C {}",
        updates.load(Relaxed),
        flips.load(Relaxed),
        hits(g, 0),
        hits(g, 1),
        hits(g2, 0)
    ));
    Ok(())
}

/// R22: the callback's target changes under in-flight signals. One
/// eventfd moves round robin between targets: gsi 1 of context A, gsi 2
/// of context B, and gsi 3 of a context of the other module when its
/// device is present, by deassign + assign, while a writer floods it.
/// Asserts: every move succeeds (I3); after each move the new target
/// delivers (I5); a target gets no injection from the time its deassign
/// returned until the eventfd is bound to it again (I1, checked exactly
/// over the whole unbound period); accounting in every context.
fn r22(run: &Run) -> TestResult {
    let env = run.env;
    let a = env.open()?;
    let bc = env.open()?;
    let pc = peer_ctx(env)?.map(|(c, _)| c);
    let mut targets: Vec<(&Ctx, u32)> = vec![(&a, G), (&bc, G + 1)];
    if let Some(pc) = &pc {
        targets.push((pc, G + 2));
    }
    let accts = targets
        .iter()
        .map(|(c, _)| {
            let n = ok("RUST_IRQFD_GET_INFO", c.info())?.nr_gsis;
            Ok(Mutex::new(Acct::new(n)))
        })
        .collect::<Result<Vec<_>, String>>()?;
    let e = new_eventfd()?;
    let wins: Vec<AtomicU64> = targets.iter().map(|_| AtomicU64::new(0)).collect();
    let b = run.budget(1.0);
    run.workers(&b, 3, None, |w| match w.idx {
        0 => {
            let n = targets.len();
            let mut snap: Vec<Option<u64>> = vec![None; n];
            let mut cur = 0;
            must(
                w,
                "assign(eventfd) to the first target",
                targets[0].0.assign(&e, targets[0].1),
            )?;
            wins[0].fetch_add(1, Relaxed);
            let mut moves = 0u64;
            while moves == 0 || !w.over() {
                let (c, g) = targets[cur];
                i5(
                    env,
                    c,
                    g,
                    e.as_fd(),
                    &format!("on target {cur} after move {moves}"),
                )?;
                w.jitter(1000);
                must(w, "deassign(eventfd) from its target", c.deassign(&e, g))?;
                snap[cur] = Some(injected(c, g)?);
                let next = (cur + 1) % n;
                let (nc, ng) = targets[next];
                if let Some(s) = snap[next] {
                    let now = injected(nc, ng)?;
                    ensure(now == s, || {
                        format!(
                            "I1 broken: target {next} (gsi {ng}) got {} injection(s) while the \
                             eventfd was bound elsewhere or not at all, after its deassign from \
                             there had returned (injected {s} -> {now})",
                            now.wrapping_sub(s)
                        )
                    })?;
                }
                must(
                    w,
                    "I3: assign(eventfd) to the next target right after its deassign returned",
                    nc.assign(&e, ng),
                )?;
                wins[next].fetch_add(1, Relaxed);
                cur = next;
                moves += 1;
            }
            let (c, g) = targets[cur];
            must(w, "deassign(eventfd) at the end", c.deassign(&e, g))?;
            snap[cur] = Some(injected(c, g)?);
            std::thread::sleep(I1_WINDOW);
            for (i, (c, g)) in targets.iter().enumerate() {
                if let Some(s) = snap[i] {
                    let now = injected(c, *g)?;
                    ensure(now == s, || {
                        format!(
                            "I1 broken: target {i} (gsi {g}) injected {s} -> {now} after the \
                             final deassigns"
                        )
                    })?;
                }
            }
            b.stop();
            Ok(())
        }
        1 => {
            while !w.over() {
                must(
                    w,
                    "write(eventfd, 1) (flood)",
                    sys::eventfd_signal(e.as_fd(), 1),
                )?;
            }
            Ok(())
        }
        _ => {
            let ctxs: Vec<(&Ctx, &Mutex<Acct>)> =
                targets.iter().map(|(c, _)| *c).zip(accts.iter()).collect();
            reader_many(w, &ctxs)
        }
    })?;
    for (i, (c, g)) in targets.iter().enumerate() {
        final_checks(run, c, Some(&accts[i]), &[*g], wins[i].load(Relaxed))?;
    }
    Ok(())
}

/// R23: assign error paths under concurrency. An eventfd stays bound to
/// gsi 1 the whole time and is flooded with writes, while one thread
/// fires every kind of refused assign at it and around it (EBUSY in this
/// and another context, and with RESAMPLE and a valid resamplefd; EINVAL
/// for a gsi out of range, bad flags, non-zero pad, a pipe, /dev/null, the
/// context itself, a pipe as resamplefd; EBADF for -1 and an unused number
/// as fd or resamplefd; deassigns of a pipe and of -1), and also
/// assigns fd numbers that a third thread keeps creating and closing.
/// Asserts the exact errno of each refused call, that the bound eventfd
/// keeps delivering (I5) and stays the only irqfd once the closes are
/// done, one shutdown per irqfd, and accounting; a refused assign that
/// left something hooked shows under the writes as a splat or a leak.
fn r23(run: &Run) -> TestResult {
    let env = run.env;
    let c = env.open()?;
    let other = env.open()?;
    let e = new_eventfd()?;
    ok("assign(eventfd, gsi 1)", c.assign(&e, G))?;
    let (prd, _pwr) = ok("pipe2", sys::pipe())?;
    let devnull = ok(
        "open(/dev/null)",
        sys::open(Path::new("/dev/null"), libc::O_RDWR),
    )?;
    // A resamplefd for the refused RESAMPLE assigns (never signalled).
    let rfd = new_eventfd()?;
    let (en, pn, dn, cn, rn) = (raw(&e), raw(&prd), raw(&devnull), raw(&c), raw(&rfd));
    let nr = env.nr_gsis();
    let acct = Mutex::new(Acct::new(nr));
    let b = run.budget(1.0);
    let published = AtomicU64::new(u64::MAX);
    let f_assigned = AtomicU64::new(0);
    let pack = |fd: RawFd, gen: u64| (gen << 32) | u64::from(fd as u32);
    run.workers(&b, 4, None, |w| match w.idx {
        0 => {
            let mut i = 0u64;
            while i == 0 || !w.over() {
                i5(
                    env,
                    &c,
                    G,
                    e.as_fd(),
                    &format!("(check {i}, refused assigns around it)"),
                )?;
                lock(&acct).read_once(&c, &mut w.tally)?;
                std::thread::sleep(Duration::from_millis(1));
                i += 1;
            }
            Ok(())
        }
        1 => {
            let mut seen = u64::MAX;
            let req = |fd: RawFd, gsi: u32, flags: u32| RustIrqfd {
                fd: fd as u32,
                gsi,
                flags,
                ..Default::default()
            };
            let mut padded = req(en, G, 0);
            padded.pad[5] = 1;
            while !w.over() {
                let cases: [(&str, &Ctx, RustIrqfd, i32); 15] = [
                    (
                        "assign(bound eventfd, gsi 2)",
                        &c,
                        req(en, G + 1, 0),
                        libc::EBUSY,
                    ),
                    (
                        "assign(bound eventfd) in another context",
                        &other,
                        req(en, G, 0),
                        libc::EBUSY,
                    ),
                    (
                        "assign(eventfd, gsi nr_gsis)",
                        &c,
                        req(en, nr, 0),
                        libc::EINVAL,
                    ),
                    (
                        "assign(bound eventfd, gsi 2, RESAMPLE, a valid resamplefd)",
                        &c,
                        RustIrqfd {
                            resamplefd: rn as u32,
                            ..req(en, G + 1, FLAG_RESAMPLE)
                        },
                        libc::EBUSY,
                    ),
                    (
                        "assign(bound eventfd, RESAMPLE, resamplefd a pipe)",
                        &c,
                        RustIrqfd {
                            resamplefd: pn as u32,
                            ..req(en, G, FLAG_RESAMPLE)
                        },
                        libc::EINVAL,
                    ),
                    (
                        "assign(bound eventfd, RESAMPLE, resamplefd -1)",
                        &c,
                        RustIrqfd {
                            resamplefd: u32::MAX,
                            ..req(en, G, FLAG_RESAMPLE)
                        },
                        libc::EBADF,
                    ),
                    (
                        "assign with flag bit 2",
                        &c,
                        req(en, G, 1 << 2),
                        libc::EINVAL,
                    ),
                    ("assign with a non-zero pad", &c, padded, libc::EINVAL),
                    ("assign(fd -1)", &c, req(-1, G, 0), libc::EBADF),
                    (
                        "assign(fd 0x7fffffff)",
                        &c,
                        req(i32::MAX, G, 0),
                        libc::EBADF,
                    ),
                    ("assign(pipe)", &c, req(pn, G + 3, 0), libc::EINVAL),
                    ("assign(/dev/null)", &c, req(dn, G + 3, 0), libc::EINVAL),
                    (
                        "assign(the context itself)",
                        &c,
                        req(cn, G + 3, 0),
                        libc::EINVAL,
                    ),
                    (
                        "deassign(pipe)",
                        &c,
                        req(pn, G, FLAG_DEASSIGN),
                        libc::EINVAL,
                    ),
                    (
                        "deassign(fd -1)",
                        &c,
                        req(-1, G, FLAG_DEASSIGN),
                        libc::EBADF,
                    ),
                ];
                for (what, ctx, r, want) in cases {
                    must_fail(w, what, ctx.irqfd(&r), want)?;
                }
                let p = published.load(Relaxed);
                if p != u64::MAX && p != seen {
                    seen = p;
                    if racy(
                        w,
                        "assign(fd number being closed and recycled)",
                        assign_num(&c, (p & 0xffff_ffff) as u32 as RawFd, G + 2),
                        &[libc::EBADF, libc::EBUSY],
                    )? {
                        f_assigned.fetch_add(1, Relaxed);
                    }
                }
            }
            Ok(())
        }
        2 => {
            let mut gen = 0u64;
            while !w.over() {
                let f = new_eventfd()?;
                published.store(pack(raw(&f), gen), Relaxed);
                gen += 1;
                pause(Duration::from_micros(w.rand(200)));
                must(w, "close(eventfd)", sys::close(f))?;
            }
            Ok(())
        }
        _ => {
            while !w.over() {
                must(
                    w,
                    "write(bound eventfd) (flood)",
                    sys::eventfd_signal(e.as_fd(), 1),
                )?;
            }
            Ok(())
        }
    })?;
    wait_nr(
        env,
        &c,
        1,
        "once the racing eventfds are closed (the bound one only)",
    )?;
    expect_nr(
        &other,
        0,
        "of the other context (all its assigns were refused)",
    )?;
    ok("deassign(bound eventfd)", c.deassign(&e, G))?;
    final_checks(
        run,
        &c,
        Some(&acct),
        &[G, G + 2],
        1 + f_assigned.load(Relaxed),
    )
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

/// Has the test module signal `efd` `count` times from an hrtimer; returns
/// (sent, skipped). Blocks until the last one. Every signal must have been
/// sent from hard-IRQ context, or the scenario would not test what it says.
fn hardirq_signal(dev: &OwnedFd, efd: RawFd, count: u32) -> Result<(u64, u64), String> {
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
/// injection (with `deferred_only`, at most one). Phase B: a second thread
/// deassigns and reassigns the eventfd while the timer fires, so the
/// hard-IRQ wakeup races deactivation and shutdown; injections never exceed
/// the signals, and the counters stay consistent.
fn r15(run: &Run) -> Ran {
    let env = run.env;
    if !Path::new(HARDIRQ_DEV).exists() {
        return skip(format!(
            "no {HARDIRQ_DEV}: load irqfd_hardirq.ko from a TEST_HOOKS=1 build"
        ));
    }
    let dev = ok(
        "open(/dev/irqfd_hardirq)",
        sys::open(Path::new(HARDIRQ_DEV), libc::O_RDWR),
    )?;
    let count = ((env.stress.secs * 0.4 * 1e9 / HARDIRQ_PERIOD_NS as f64) as u32).max(50);
    let ctx = env.open()?;
    let e = new_eventfd()?;
    let mut tally = Tally::default();

    // Phase A.
    ok("assign", ctx.assign(&e, G))?;
    let (sent, skipped) = hardirq_signal(&dev, raw(&e), count)?;
    tally.ops += sent + skipped;
    let want = |n: u64| if env.deferred() { 1 } else { n };
    wait_until(env, "the hard-IRQ signals to be injected", || {
        let i = injected(&ctx, G)?;
        Ok((i >= want(sent), format!("{i} injected of {sent} sent")))
    })?;
    let a = injected(&ctx, G)?;
    ensure(a <= sent && (env.deferred() || a == sent), || {
        format!("phase A: {sent} signals from hard IRQ gave {a} injections")
    })?;
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
    let s = stats(&ctx, G)?;
    tally.deliveries += drain_count(&ctx)?;
    // A signal that lands while the eventfd is unbound stays in its counter,
    // and the next assign injects once for all of them: at most one per signal.
    ensure(s.injected <= sent + sent_b + 1, || {
        format!(
            "{} signals from hard IRQ in all gave {} injections",
            sent + sent_b,
            s.injected
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::RustIrqfdDelivery;

    fn rec(seq: u64, gsi: u32, count: u64) -> RustIrqfdDelivery {
        RustIrqfdDelivery {
            seq,
            gsi,
            count,
            ..Default::default()
        }
    }

    #[test]
    fn acct_books_in_order_and_rejects_gaps() {
        let mut a = Acct::new(8);
        let mut t = Tally::default();
        a.take(&[rec(1, 1, 2), rec(2, 3, 1)], &mut t).unwrap();
        a.take(&[rec(3, 1, 5)], &mut t).unwrap();
        assert_eq!(t.deliveries, 8);
        assert_eq!(a.counts.get(&1), Some(&7));
        assert_eq!(a.records.get(&1), Some(&2));
        assert!(a
            .take(&[rec(5, 1, 1)], &mut t)
            .unwrap_err()
            .contains("seq 5"));
        assert!(a.take(&[rec(4, 9, 1)], &mut t).is_err());
    }

    #[test]
    fn names_are_catalogue_ordered_and_prefixed() {
        let mut last = 0;
        for t in TESTS {
            let rest = t.name.strip_prefix("race_r").expect(t.name);
            let n: u32 = rest.split('_').next().unwrap().parse().unwrap();
            assert!(n > last, "{} out of order", t.name);
            last = n;
        }
        assert_eq!(TESTS.len(), 23);
    }

    fn msi(seq: u64, gsi: u32, addr: u64, data: u32) -> RustIrqfdDelivery {
        RustIrqfdDelivery {
            flags: DELIVERY_MSI,
            msi_addr: addr,
            msi_data: data,
            ..rec(seq, gsi, 1)
        }
    }

    /// Records of a GSI with a kind must have exactly its flags and, for
    /// MSI, one of its routes whole: a mix of A and B is refused.
    #[test]
    fn acct_checks_kinds_and_routes() {
        let mut a = Acct::new(8)
            .kind(1, Kind::msi(&[R21_A, R21_B]))
            .kind(2, Kind::level());
        let mut t = Tally::default();
        a.take(&[msi(1, 1, R21_A.0, R21_A.1)], &mut t).unwrap();
        a.take(&[msi(2, 1, R21_B.0, R21_B.1)], &mut t).unwrap();
        let level = RustIrqfdDelivery {
            flags: DELIVERY_LEVEL,
            ..rec(3, 2, 4)
        };
        a.take(&[level], &mut t).unwrap();
        a.take(&[rec(4, 3, 1)], &mut t).unwrap();
        assert_eq!(a.route_hits.get(&(1, 0)), Some(&1));
        assert_eq!(a.route_hits.get(&(1, 1)), Some(&1));
        assert_eq!(t.deliveries, 7);
        let torn = a.take(&[msi(5, 1, R21_A.0, R21_B.1)], &mut t).unwrap_err();
        assert!(torn.contains("R21 broken"), "{torn}");
        assert!(a.take(&[msi(5, 1, R21_B.0, R21_A.1)], &mut t).is_err());
        // Plain record on an MSI gsi, MSI record on a level gsi, a level
        // record on a plain gsi: all refused.
        assert!(a.take(&[rec(5, 1, 1)], &mut t).is_err());
        assert!(a.take(&[msi(5, 2, R21_A.0, R21_A.1)], &mut t).is_err());
        let stray = RustIrqfdDelivery {
            flags: DELIVERY_LEVEL,
            ..rec(5, 3, 1)
        };
        assert!(a.take(&[stray], &mut t).is_err());
        a.take(&[msi(5, 1, R21_B.0, R21_B.1)], &mut t).unwrap();
    }

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

    #[test]
    fn errno_lists() {
        assert_eq!(errnos(&[libc::EBUSY, libc::EBADF]), "EBUSY or EBADF");
    }
}
