// SPDX-License-Identifier: GPL-2.0
//! The oracles the race scenarios share: the invariants of races.md that
//! the ABI makes exact (I1: nothing injected after a deassign returned;
//! I5: a signal on a bound eventfd is followed by an injection), the
//! irqfd count, one shutdown per irqfd, and the delivery accounting of a
//! context ([`Acct`]): per GSI the counts read add up to `injected` (for a
//! level GSI: lie between `acks` and `injected`), and the records come out
//! with seq 1, 2, 3, ... in order, each of its GSI's kind (plain, LEVEL,
//! or MSI with one of the GSI's routes whole). [`final_checks`] is how a
//! scenario ends: nothing active, one shutdown per assign, the deliveries
//! add up.

use std::collections::BTreeMap;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::sync::Mutex;
use std::time::Duration;

use super::calls::must;
use super::G;
use crate::abi::{RustIrqfdDelivery, DELIVERY_LEVEL, DELIVERY_MSI};
use crate::dev::{Ctx, Kind as DevKind};
use crate::harness::{
    check_record, check_record_any, counts_irqfds, ensure, expect_nr_irqfds, ok, stats, try_read,
    wait_nr_irqfds, wait_until, Env, TestResult,
};
use crate::stress::{flush_cleanup, lock, Run, Tally, Worker};
use crate::sys;

/// How long a late injection gets to show up after a deassign (I1).
pub(super) const I1_WINDOW: Duration = Duration::from_millis(20);
/// Most records one read asks for.
pub(super) const READ_MAX: usize = 64;

/// `injected` of `gsi`; on KVM, the injections seen so far
/// ([`crate::kvm::Deliveries::injected`]).
pub(super) fn injected(ctx: &Ctx, gsi: u32) -> Result<u64, String> {
    match ctx.deliveries() {
        Some(d) => d.injected(gsi),
        None => Ok(stats(ctx, gsi)?.injected),
    }
}

/// Shutdowns completed in `ctx` (GET_INFO).
fn shutdowns(ctx: &Ctx) -> Result<u64, String> {
    Ok(ok("RUST_IRQFD_GET_INFO", ctx.info())?.shutdowns)
}

/// `nr_irqfds` must be `want` now (no asynchronous effect is pending).
pub(super) fn expect_nr(ctx: &Ctx, want: usize, when: &str) -> TestResult {
    expect_nr_irqfds(ctx, nr_want(want)?, when)
}

/// `want` as the `u32` that `nr_irqfds` is.
fn nr_want(want: usize) -> Result<u32, String> {
    u32::try_from(want)
        .map_err(|_| format!("internal: {want} irqfds expected, more than nr_irqfds counts"))
}

/// `nr_irqfds` must become `want` within the timeout (EPOLLHUP effects are
/// asynchronous to close(2)).
pub(super) fn wait_nr(env: &Env, ctx: &Ctx, want: usize, when: &str) -> TestResult {
    wait_nr_irqfds(
        env,
        ctx,
        nr_want(want)?,
        &format!("nr_irqfds == {want} {when}"),
    )
}

/// Waits until `n` shutdowns have completed in `ctx` (the last of them
/// `whose`). A KVM VM does not count them: there the cleanup queue is
/// flushed instead, which waits for every shutdown queued so far, as
/// KVM's deassign does.
pub(super) fn wait_shutdowns(env: &Env, ctx: &Ctx, n: u64, whose: &str) -> TestResult {
    if !counts_irqfds(ctx) {
        return flush_cleanup(ctx);
    }
    wait_until(env, &format!("the shutdown of {whose}"), || {
        let s = shutdowns(ctx)?;
        Ok((s >= n, format!("{s} shutdowns of {n} irqfds")))
    })
}

/// Every irqfd of `ctx` was shut down exactly once: after a flush, the
/// completed shutdowns equal the irqfds that were ever assigned (and are
/// all gone).
fn expect_shutdowns(ctx: &Ctx, assigned: u64, what: &str) -> TestResult {
    if !counts_irqfds(ctx) {
        return Ok(());
    }
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
pub(super) fn i5(env: &Env, ctx: &Ctx, gsi: u32, efd: BorrowedFd<'_>, when: &str) -> TestResult {
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

/// I2: once a context is closed, its eventfds bind again at once: a fresh
/// context has no irqfd, and each of `efds`, the eventfds of a context
/// just closed, binds in it (in round `round`). Returns that context.
pub(super) fn i2<'a>(
    w: &mut Worker<'_>,
    env: &Env,
    efds: impl IntoIterator<Item = &'a OwnedFd>,
    round: u64,
) -> Result<Ctx, String> {
    let x = env.open()?;
    expect_nr(&x, 0, "I2: of a fresh context")?;
    for e in efds {
        must(
            w,
            &format!(
                "I2: assign(eventfd of the context just closed) in a new context \
                 (round {round})"
            ),
            x.assign(e, G),
        )?;
    }
    Ok(x)
}

/// I1 over `targets`: after the deassigns returned, a signal on the
/// still-open eventfd and `window` of waiting change no `injected`.
pub(super) fn i1(
    targets: &[(&Ctx, u32)],
    efd: BorrowedFd<'_>,
    window: Duration,
    when: &str,
) -> TestResult {
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

/// What the records of one GSI must look like, where they are not plain.
#[derive(Clone, Debug, Default)]
pub(super) struct Kind {
    /// The flags every record has, exactly (`DELIVERY_LEVEL`, `DELIVERY_MSI`).
    flags: u32,
    /// With `DELIVERY_MSI`: the routes a record may carry, each whole.
    routes: Vec<(u64, u32)>,
}

impl Kind {
    /// Records of resample irqfds on an unrouted GSI.
    pub(super) fn level() -> Self {
        Kind {
            flags: DELIVERY_LEVEL,
            routes: Vec::new(),
        }
    }

    /// Records of edge irqfds on a GSI routed to one of `routes`.
    pub(super) fn msi(routes: &[(u64, u32)]) -> Self {
        Kind {
            flags: DELIVERY_MSI,
            routes: routes.to_vec(),
        }
    }
}

/// Delivery accounting of one context, fed by one reader at a time.
pub(super) struct Acct {
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
    pub(super) fn new(nr_gsis: u32) -> Self {
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
    pub(super) fn kind(mut self, gsi: u32, kind: Kind) -> Self {
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
    pub(super) fn read_once(&mut self, ctx: &Ctx, t: &mut Tally) -> Result<usize, String> {
        Ok(self.read_records(ctx, t)?.len())
    }

    /// One non-blocking read: the records it gave, booked.
    pub(super) fn read_records(
        &mut self,
        ctx: &Ctx,
        t: &mut Tally,
    ) -> Result<Vec<RustIrqfdDelivery>, String> {
        if ctx.kind() == DevKind::Kvm {
            // No counting on KVM: a look into vCPU 0's IRR from a reader
            // racing the scenario's own could hide an injection from it
            // (see `crate::kvm::Deliveries`). Where the scenario routes its
            // GSIs, the reader looks all the same, for the one thing a
            // record there shows: the route an injection took. (So a
            // routed scenario must not rely on `injected()` while its
            // reader runs: a look of the reader may hide an injection.)
            if !self.kinds.values().any(|k| k.flags & DELIVERY_MSI != 0) {
                return Ok(Vec::new());
            }
            let v = try_read(ctx, READ_MAX)?;
            for d in &v {
                self.check(d)?;
            }
            return Ok(v);
        }
        let v = try_read(ctx, READ_MAX)?;
        self.take(&v, t)?;
        Ok(v)
    }

    /// Records of `gsi` read so far with the route at index `i` of its kind.
    pub(super) fn route_hits(&self, gsi: u32, i: usize) -> u64 {
        self.route_hits.get(&(gsi, i)).copied().unwrap_or(0)
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
        if ctx.kind() == DevKind::Kvm {
            return Ok(());
        }
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

/// A reader thread: drains `ctx` into `acct` until the budget is over.
pub(super) fn reader(w: &mut Worker<'_>, ctx: &Ctx, acct: &Mutex<Acct>) -> TestResult {
    w.repeat(|w| {
        if lock(acct).read_once(ctx, &mut w.tally)? == 0 {
            std::thread::sleep(Duration::from_micros(300));
        }
        Ok(())
    })
}

/// A reader thread for several contexts, round robin.
pub(super) fn reader_many(w: &mut Worker<'_>, ctxs: &[(&Ctx, &Mutex<Acct>)]) -> TestResult {
    w.repeat(|w| {
        let mut n = 0;
        for (c, a) in ctxs {
            n += lock(a).read_once(c, &mut w.tally)?;
        }
        if n == 0 {
            std::thread::sleep(Duration::from_micros(300));
        }
        Ok(())
    })
}

/// The final checks of a context all of whose irqfds are gone: nothing
/// active, one shutdown per assign, the deliveries add up.
pub(super) fn final_checks(
    run: &Run,
    ctx: &Ctx,
    acct: Option<&Mutex<Acct>>,
    gsis: &[u32],
    assigned: u64,
) -> TestResult {
    flush_cleanup(ctx)?;
    if let Some(d) = ctx.deliveries() {
        // KVM: the injections the scenario's looks saw, for the table,
        // and none at a vector no route names.
        run.add(&Tally {
            deliveries: d.seen(),
            ..Default::default()
        });
        d.no_stray()?;
    }
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

#[cfg(test)]
mod tests {
    use super::super::routes::{R21_A, R21_B};
    use super::*;

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
}
