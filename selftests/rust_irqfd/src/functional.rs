// SPDX-License-Identifier: GPL-2.0
//! Functional tests: one behaviour of Documentation/rust_irqfd.rst each,
//! single-threaded except `blocking_read_wakes` (a reader thread; the other
//! paths that raise a record have theirs in `wakeups.rs`). Every test opens its own
//! contexts and eventfds and closes them when it returns.

use std::collections::BTreeMap;
use std::os::fd::AsFd;

use crate::abi::{INFO_COUNTS_SIGNALS, INFO_DEFERRED_ONLY, RUST_IRQFD_ABI_VERSION};
use crate::harness::{
    check_injections, check_record, drain, ensure, eq, expect_full, expect_nothing,
    expect_nr_irqfds, expect_stats, fails, gsi_stats, inject, new_eventfd, ok, one_record, read_n,
    signal, signal_one, stats, test, try_read, wait_injected, wait_nr_irqfds, wait_until,
    BlockedReader, Counters, Env, Needs, Test, TestResult,
};
use crate::sys;

/// The functional tests, in run order.
pub const TESTS: &[Test] = &[
    test!(open_close, Needs::NONE),
    test!(get_info, Needs::NONE),
    test!(assign_deassign, Needs::NONE),
    test!(ebusy_same_context, Needs::gsis(2)),
    test!(ebusy_other_context, Needs::gsis(2)),
    test!(ebusy_other_module, Needs::PEER),
    test!(deassign_nothing_matched, Needs::NONE),
    test!(deassign_wrong_gsi, Needs::gsis(3)),
    test!(signal_delivers, Needs::NONE, [Inject]),
    test!(coalescing, Needs::NONE, [Inject]),
    test!(fifo_order, Needs::gsis(6)),
    test!(pending_at_assign, Needs::NONE, [Inject]),
    test!(several_irqfds_one_gsi, Needs::gsis(4)),
    test!(no_delivery_after_deassign, Needs::gsis(5), [Inject]),
    test!(epollhup_deactivates, Needs::NONE),
    test!(hup_on_last_close_only, Needs::NONE),
    test!(close_context_releases, Needs::NONE),
    test!(read_whole_records, Needs::gsis(2)),
    test!(blocking_read_wakes, Needs::NONE, [Inject]),
    test!(stats_invariants, Needs::NONE),
];

fn zero() -> Counters {
    Counters {
        injected: 0,
        raised: 0,
        coalesced: 0,
        delivered: 0,
        pending: 0,
    }
}

/// Counters after `n` signals each read before the next: n records of 1.
fn delivered(n: u64) -> Counters {
    Counters {
        injected: n,
        raised: n,
        coalesced: 0,
        delivered: n,
        pending: 0,
    }
}

/// Open and close contexts, alone and side by side.
fn open_close(env: &Env) -> TestResult {
    for i in 0..3 {
        let c = env.open()?;
        ok(&format!("close(context) #{i}"), c.close())?;
    }
    let a = env.open()?;
    let b = env.open()?;
    expect_nr_irqfds(&a, 0, "of a fresh context")?;
    expect_nr_irqfds(&b, 0, "of a second fresh context")?;
    ok("close(second context)", b.close())?;
    ok("close(first context)", a.close())
}

/// GET_INFO of a fresh context: version, nr_gsis, no unknown flags, no
/// irqfd, and every byte written (the reserved bytes come back zero).
fn get_info(env: &Env) -> TestResult {
    let c = env.open()?;
    let i = ok("RUST_IRQFD_GET_INFO", c.info())?;
    eq("version", i.version, RUST_IRQFD_ABI_VERSION)?;
    ensure((1..=65536).contains(&i.nr_gsis), || {
        format!("nr_gsis: expected 1..=65536, got {}", i.nr_gsis)
    })?;
    ensure(
        i.flags & !(INFO_DEFERRED_ONLY | INFO_COUNTS_SIGNALS) == 0,
        || format!("flags: unknown bits in {:#x}", i.flags),
    )?;
    eq("nr_irqfds", i.nr_irqfds, 0)?;
    eq("shutdowns", i.shutdowns, 0)?;
    eq("reserved (pre-filled with 0xa5)", i.reserved, [0u8; 4])?;
    ensure(i.max_irqfds >= 1 && i.max_irqfds != 0xa5a5_a5a5, || {
        format!("max_irqfds {:#x} was not filled in", i.max_irqfds)
    })?;
    // A context reads nr_gsis at open: the same for every context here.
    eq("nr_gsis of the probe context", i.nr_gsis, env.nr_gsis())
}

/// Assign -> nr_irqfds 1 -> deassign -> 0, and the eventfd can be bound
/// again afterwards; the last GSI is a valid target.
fn assign_deassign(env: &Env) -> TestResult {
    let c = env.open()?;
    let e = new_eventfd()?;
    ok("assign(gsi 0)", c.assign(&e, 0))?;
    expect_nr_irqfds(&c, 1, "after assign")?;
    ok("deassign(gsi 0)", c.deassign(&e, 0))?;
    expect_nr_irqfds(&c, 0, "after deassign")?;
    // Deassign is synchronous: the shutdown has run when it returns.
    eq(
        "shutdowns after deassign",
        ok("RUST_IRQFD_GET_INFO", c.info())?.shutdowns,
        1,
    )?;
    ok("assign(gsi 0) again after deassign", c.assign(&e, 0))?;
    expect_nr_irqfds(&c, 1, "after the second assign")?;
    ok("deassign(gsi 0) again", c.deassign(&e, 0))?;
    let last = env.nr_gsis() - 1;
    ok(
        &format!("assign(gsi {last} = nr_gsis - 1)"),
        c.assign(&e, last),
    )?;
    expect_nr_irqfds(&c, 1, "after assign to the last gsi")?;
    ok(&format!("deassign(gsi {last})"), c.deassign(&e, last))?;
    expect_nr_irqfds(&c, 0, "at the end")
}

/// One eventfd, one irqfd: a second assign in the same context is EBUSY,
/// whatever the gsi.
fn ebusy_same_context(env: &Env) -> TestResult {
    let c = env.open()?;
    let e = new_eventfd()?;
    ok("assign(gsi 0)", c.assign(&e, 0))?;
    fails(
        "assign(same eventfd, gsi 0) again",
        c.assign(&e, 0),
        libc::EBUSY,
    )?;
    fails("assign(same eventfd, gsi 1)", c.assign(&e, 1), libc::EBUSY)?;
    // The same file through another descriptor is the same eventfd.
    let dup = ok(
        "dup(eventfd)",
        e.try_clone()
            .map_err(|e| sys::Errno(e.raw_os_error().unwrap_or(0))),
    )?;
    fails(
        "assign(dup of the eventfd, gsi 1)",
        c.assign(&dup, 1),
        libc::EBUSY,
    )?;
    expect_nr_irqfds(&c, 1, "after the refused assigns")?;
    // The refused assigns did not disturb the bound one.
    signal_one(env, &c, &e, 0)?;
    ok("deassign(gsi 0)", c.deassign(&e, 0))?;
    expect_nr_irqfds(&c, 0, "after deassign")
}

/// An eventfd bound in one context is EBUSY in another context of the same
/// device, until the first deassigns it; the other context's deassign of
/// that eventfd changes nothing.
fn ebusy_other_context(env: &Env) -> TestResult {
    let a = env.open()?;
    let b = env.open()?;
    let e = new_eventfd()?;
    ok("A: assign(gsi 0)", a.assign(&e, 0))?;
    fails(
        "B: assign(same eventfd, gsi 0)",
        b.assign(&e, 0),
        libc::EBUSY,
    )?;
    fails(
        "B: assign(same eventfd, gsi 1)",
        b.assign(&e, 1),
        libc::EBUSY,
    )?;
    expect_nr_irqfds(&b, 0, "of B after the refused assigns")?;
    expect_nr_irqfds(&a, 1, "of A")?;
    // A context cannot touch another's bindings: B's deassign of A's
    // eventfd matches nothing of B's and leaves A's irqfd working.
    ok("B: deassign(A's eventfd, gsi 0)", b.deassign(&e, 0))?;
    expect_nr_irqfds(&a, 1, "of A after B's deassign of its eventfd")?;
    signal_one(env, &a, &e, 0)?;
    ok("A: deassign(gsi 0)", a.deassign(&e, 0))?;
    ok("B: assign(gsi 0) after A deassigned", b.assign(&e, 0))?;
    signal_one(env, &b, &e, 0)?;
    expect_nothing(&a, "on A (no longer bound)")
}

/// An eventfd bound by one module is EBUSY for the other, both ways.
fn ebusy_other_module(env: &Env) -> TestResult {
    for peer in env.present_peers() {
        let p = peer.display();
        let mine = env.open()?;
        let theirs = env.open_path(&peer)?;

        let e = new_eventfd()?;
        ok("assign(gsi 0) here", mine.assign(&e, 0))?;
        fails(
            &format!("{p}: assign(eventfd bound here, gsi 0)"),
            theirs.assign(&e, 0),
            libc::EBUSY,
        )?;
        expect_nr_irqfds(&theirs, 0, &format!("of the {p} context"))?;

        let f = new_eventfd()?;
        ok(&format!("{p}: assign(gsi 0)"), theirs.assign(&f, 0))?;
        fails(
            &format!("assign(eventfd bound by {p}, gsi 0) here"),
            mine.assign(&f, 0),
            libc::EBUSY,
        )?;
        expect_nr_irqfds(&mine, 1, "here")?;
        ok(&format!("{p}: deassign"), theirs.deassign(&f, 0))?;
        ok("deassign here", mine.deassign(&e, 0))?;
    }
    Ok(())
}

/// Deassign returns 0 when nothing matches, does not range-check the gsi,
/// and acts on this context only.
fn deassign_nothing_matched(env: &Env) -> TestResult {
    let c = env.open()?;
    let e = new_eventfd()?;
    ok("deassign(never assigned eventfd, gsi 0)", c.deassign(&e, 0))?;
    let n = env.nr_gsis();
    ok(&format!("deassign(gsi {n} = nr_gsis)"), c.deassign(&e, n))?;
    ok("deassign(gsi 0xffffffff)", c.deassign(&e, u32::MAX))?;
    expect_nr_irqfds(&c, 0, "after the no-op deassigns")?;

    // Bound in another context: deassign here matches nothing there.
    let other = env.open()?;
    ok("other context: assign(gsi 0)", other.assign(&e, 0))?;
    ok(
        "deassign(eventfd bound in another context, gsi 0)",
        c.deassign(&e, 0),
    )?;
    expect_nr_irqfds(&other, 1, "of the other context after our deassign")?;
    signal_one(env, &other, &e, 0)?;
    Ok(())
}

/// Deassign with the right eventfd but another gsi leaves the irqfd bound
/// and working.
fn deassign_wrong_gsi(env: &Env) -> TestResult {
    let c = env.open()?;
    let e = new_eventfd()?;
    ok("assign(gsi 1)", c.assign(&e, 1))?;
    ok("deassign(gsi 2)", c.deassign(&e, 2))?;
    expect_nr_irqfds(&c, 1, "after deassign with the wrong gsi")?;
    signal_one(env, &c, &e, 1)?;
    ok("deassign(gsi 1)", c.deassign(&e, 1))?;
    expect_nr_irqfds(&c, 0, "after deassign with the right gsi")
}

/// One signal: one record (seq 1, count 1), counters 1/1/1, the eventfd
/// counter consumed; a second signal raises seq 2.
fn signal_delivers(env: &Env) -> TestResult {
    let c = env.open()?;
    let e = new_eventfd()?;
    ok("assign(gsi 0)", c.assign(&e, 0))?;
    expect_stats(&c, 0, zero())?;
    expect_nothing(&c, "before any signal")?;

    let d = signal_one(env, &c, &e, 0)?;
    eq("seq of the first record", d.seq, 1)?;
    expect_stats(&c, 0, delivered(1))?;
    fails(
        "read(eventfd) after the injection (the irqfd consumed the counter)",
        sys::eventfd_read(e.as_fd()),
        libc::EAGAIN,
    )?;

    let d = signal_one(env, &c, &e, 0)?;
    eq("seq of the second record", d.seq, 2)?;
    expect_stats(&c, 0, delivered(2))?;
    expect_nothing(&c, "after both records were read")?;
    if env.nr_gsis() > 1 {
        expect_stats(&c, 1, zero())?;
    }
    Ok(())
}

/// Three signals before a read: one record with count 3, coalesced 2. The
/// pending latch clears when the record is read.
fn coalescing(env: &Env) -> TestResult {
    let c = env.open()?;
    let e = new_eventfd()?;
    ok("assign(gsi 0)", c.assign(&e, 0))?;
    for _ in 0..3 {
        signal(&e)?;
    }
    if env.deferred() {
        // Signals that come while the inject work is queued may merge into
        // one injection (C); the Rust module injects each. Deassign flushes
        // the work.
        ok(
            "deassign(gsi 0) (flushes the inject work)",
            c.deassign(&e, 0),
        )?;
        let s = stats(&c, 0)?;
        check_injections(env, "gsi 0, deferred_only", s.injected, 3)?;
        eq("raised", s.raised, 1)?;
        eq("pending", s.pending, 1)?;
        let d = one_record(env, &c, 0, s.injected)?;
        return eq("seq", d.seq, 1);
    }
    wait_injected(env, &c, 0, 3)?;
    expect_full(
        &c,
        0,
        gsi_stats!(0, injected: 3, raised: 1, coalesced: 2, pending: 1),
    )?;
    let d = one_record(env, &c, 0, 3)?;
    eq("seq of the coalesced record", d.seq, 1)?;
    expect_full(
        &c,
        0,
        gsi_stats!(0, injected: 3, raised: 1, coalesced: 2, delivered: 1),
    )?;

    let d = signal_one(env, &c, &e, 0)?;
    eq("seq of the record after the read", d.seq, 2)?;
    expect_full(
        &c,
        0,
        gsi_stats!(0, injected: 4, raised: 2, coalesced: 2, delivered: 2),
    )
}

/// Records come out in the order they were raised, and a coalesced
/// injection keeps its record's place.
fn fifo_order(env: &Env) -> TestResult {
    let c = env.open()?;
    let e5 = new_eventfd()?;
    let e2 = new_eventfd()?;
    ok("assign(gsi 5)", c.assign(&e5, 5))?;
    ok("assign(gsi 2)", c.assign(&e2, 2))?;

    inject(env, &c, &e5, 5, 1)?;
    inject(env, &c, &e2, 2, 1)?;
    let v = read_n(env, &c, 2)?;
    eq(
        "gsis of the records, in read order",
        v.iter().map(|d| d.gsi).collect::<Vec<_>>(),
        vec![5, 2],
    )?;
    eq(
        "seqs of the records",
        v.iter().map(|d| d.seq).collect::<Vec<_>>(),
        vec![1, 2],
    )?;

    // 5, 2, then 5 again: the second injection into 5 is coalesced and
    // its record stays ahead of 2's.
    inject(env, &c, &e5, 5, 2)?;
    inject(env, &c, &e2, 2, 2)?;
    inject(env, &c, &e5, 5, 3)?;
    let mut v = read_n(env, &c, 2)?;
    v.extend(drain(&c)?);
    let got: Vec<_> = v.iter().map(|d| (d.gsi, d.seq, d.count)).collect();
    eq(
        "(gsi, seq, count) of the records",
        got,
        vec![(5, 3, 2), (2, 4, 1)],
    )
}

/// An eventfd signalled before assign gives one injection at assign; its
/// counter is left for the next signal to consume.
fn pending_at_assign(env: &Env) -> TestResult {
    let c = env.open()?;
    let e = new_eventfd()?;
    signal(&e)?;
    ok("assign(gsi 0) with the counter at 1", c.assign(&e, 0))?;
    let d = one_record(env, &c, 0, 1)?;
    eq("seq", d.seq, 1)?;
    expect_stats(&c, 0, delivered(1))?;
    eq(
        "eventfd counter after the assign-time injection",
        ok("read(eventfd)", sys::eventfd_read(e.as_fd()))?,
        1,
    )?;
    signal_one(env, &c, &e, 0)?;
    expect_stats(&c, 0, delivered(2))
}

/// Two eventfds on one gsi: both inject into it; deassigning one leaves the
/// other working.
fn several_irqfds_one_gsi(env: &Env) -> TestResult {
    let c = env.open()?;
    let e1 = new_eventfd()?;
    let e2 = new_eventfd()?;
    ok("assign(eventfd 1, gsi 3)", c.assign(&e1, 3))?;
    ok("assign(eventfd 2, gsi 3)", c.assign(&e2, 3))?;
    expect_nr_irqfds(&c, 2, "after two assigns to gsi 3")?;
    inject(env, &c, &e1, 3, 1)?;
    inject(env, &c, &e2, 3, 2)?;
    expect_full(
        &c,
        3,
        gsi_stats!(3, injected: 2, raised: 1, coalesced: 1, pending: 1),
    )?;
    one_record(env, &c, 3, 2)?;

    ok("deassign(eventfd 1, gsi 3)", c.deassign(&e1, 3))?;
    expect_nr_irqfds(&c, 1, "after deassigning one")?;
    signal_one(env, &c, &e2, 3)?;
    signal(&e1)?;
    expect_nothing(&c, "after signalling the deassigned eventfd")?;
    expect_full(
        &c,
        3,
        gsi_stats!(3, injected: 3, raised: 2, coalesced: 1, delivered: 2),
    )
}

/// After deassign returns, a signal injects nothing and leaves the eventfd
/// counter to whoever reads it.
fn no_delivery_after_deassign(env: &Env) -> TestResult {
    let c = env.open()?;
    let e = new_eventfd()?;
    ok("assign(gsi 4)", c.assign(&e, 4))?;
    signal(&e)?;
    ok("deassign(gsi 4)", c.deassign(&e, 4))?;
    // The injection of the first signal is complete once deassign returns.
    let v = drain(&c)?;
    eq("records of the signal before deassign", v.len(), 1).map_err(|m| format!("{m}: {v:?}"))?;
    check_record(&v[0], env.nr_gsis())?;
    eq("gsi/count of that record", (v[0].gsi, v[0].count), (4, 1))?;
    let before = stats(&c, 4)?;
    eq(
        "gsi 4 stats after the drain",
        Counters::from(&before),
        delivered(1),
    )?;

    signal(&e)?;
    expect_nothing(&c, "after signalling a deassigned eventfd")?;
    eq(
        "gsi 4 stats after the late signal",
        Counters::from(&stats(&c, 4)?),
        delivered(1),
    )?;
    eq(
        "eventfd counter (nobody consumed it)",
        ok("read(eventfd)", sys::eventfd_read(e.as_fd()))?,
        1,
    )
}

/// Closing the eventfd (EPOLLHUP) drops the irqfd, asynchronously but
/// within the timeout; a new eventfd can then be bound to the same gsi.
fn epollhup_deactivates(env: &Env) -> TestResult {
    let c = env.open()?;
    let e = new_eventfd()?;
    ok("assign(gsi 0)", c.assign(&e, 0))?;
    expect_nr_irqfds(&c, 1, "after assign")?;
    ok("close(eventfd)", sys::close(e))?;
    wait_nr_irqfds(env, &c, 0, "nr_irqfds to drop to 0 after close(eventfd)")?;
    // The shutdown itself runs on the cleanup queue, after the deactivation.
    wait_until(
        env,
        "the shutdown to be counted after close(eventfd)",
        || {
            let n = ok("RUST_IRQFD_GET_INFO", c.info())?.shutdowns;
            Ok((n == 1, format!("shutdowns {n}")))
        },
    )?;
    expect_stats(&c, 0, zero())?;

    let f = new_eventfd()?;
    ok("assign(new eventfd, gsi 0)", c.assign(&f, 0))?;
    expect_nr_irqfds(&c, 1, "after binding the new eventfd")?;
    signal_one(env, &c, &f, 0)?;
    Ok(())
}

/// EPOLLHUP comes with the release of the eventfd file, not with the close
/// of one of its descriptors.
fn hup_on_last_close_only(env: &Env) -> TestResult {
    let c = env.open()?;
    let e = new_eventfd()?;
    let dup = ok(
        "dup(eventfd)",
        e.try_clone()
            .map_err(|e| sys::Errno(e.raw_os_error().unwrap_or(0))),
    )?;
    ok("assign(gsi 0)", c.assign(&e, 0))?;
    ok("close(eventfd), a dup still open", sys::close(e))?;
    // Still bound: a signal through the dup is delivered.
    signal_one(env, &c, &dup, 0)?;
    expect_nr_irqfds(&c, 1, "while a dup is open")?;
    ok("close(dup)", sys::close(dup))?;
    wait_nr_irqfds(env, &c, 0, "nr_irqfds to drop to 0 after the last close")
}

/// Release is synchronous: once close(context) returns, the eventfd it had
/// bound can be bound elsewhere at once.
fn close_context_releases(env: &Env) -> TestResult {
    let e = new_eventfd()?;
    let mut prev = env.open()?;
    ok("context 0: assign(gsi 0)", prev.assign(&e, 0))?;
    for i in 1..=3 {
        ok(&format!("close(context {})", i - 1), prev.close())?;
        let next = env.open()?;
        ok(
            &format!("context {i}: assign(eventfd of the closed context, gsi 0)"),
            next.assign(&e, 0),
        )?;
        let d = signal_one(env, &next, &e, 0)?;
        eq(&format!("context {i}: seq"), d.seq, 1)?;
        prev = next;
    }
    // A context closed with a record pending and an irqfd bound.
    inject(env, &prev, &e, 0, 2)?;
    ok("close(context 3) with a record pending", prev.close())?;
    let last = env.open()?;
    ok("context 4: assign(gsi 0)", last.assign(&e, 0))?;
    expect_nothing(&last, "on a new context")
}

/// read(2) returns as many whole records as fit, and keeps the rest.
fn read_whole_records(env: &Env) -> TestResult {
    let c = env.open()?;
    let e0 = new_eventfd()?;
    let e1 = new_eventfd()?;
    ok("assign(gsi 0)", c.assign(&e0, 0))?;
    ok("assign(gsi 1)", c.assign(&e1, 1))?;
    inject(env, &c, &e0, 0, 1)?;
    inject(env, &c, &e1, 1, 1)?;
    let sz = crate::abi::RustIrqfdDelivery::SIZE;
    eq(
        &format!(
            "bytes read with a {}-byte buffer and 2 records pending",
            2 * sz - 1
        ),
        ok("read(context)", c.read_len(2 * sz - 1))?,
        sz,
    )?;
    let v = ok("read(context) of the rest", c.read_records(4))?;
    eq(
        "records left",
        v.iter().map(|d| (d.gsi, d.seq)).collect::<Vec<_>>(),
        vec![(1, 2)],
    )?;
    expect_nothing(&c, "after both records")
}

/// A reader blocked in read(2) is woken by a signal on the eventfd (in the
/// deferred pass, by the injection work's injection).
fn blocking_read_wakes(env: &Env) -> TestResult {
    let c = env.open()?;
    let e = new_eventfd()?;
    ok("assign(gsi 0)", c.assign(&e, 0))?;
    let r = BlockedReader::start(env, &c, 4)?;
    signal(&e)?;
    let v = r.finish(env, "a signal on the bound eventfd")?;
    eq("records returned to the blocked reader", v.len(), 1).map_err(|m| format!("{m}: {v:?}"))?;
    check_record(&v[0], env.nr_gsis())?;
    eq(
        "(gsi, seq, count)",
        (v[0].gsi, v[0].seq, v[0].count),
        (0, 1, 1),
    )
}

/// A small deterministic generator (the run must be reproducible).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

/// A burst of signals over several gsis with reads in between: the
/// invariants hold at every step, and in the end the counts read add up to
/// what was injected, seqs run 1, 2, ... in read order.
fn stats_invariants(env: &Env) -> TestResult {
    const STEPS: usize = 80;
    let n = env.nr_gsis();
    let mut gsis = vec![0, 1 % n, n / 2, n - 1];
    gsis.sort_unstable();
    gsis.dedup();

    let c = env.open()?;
    let mut efds = Vec::new();
    for &g in &gsis {
        let e = new_eventfd()?;
        ok(&format!("assign(gsi {g})"), c.assign(&e, g))?;
        efds.push(e);
    }

    let mut rng = Lcg(0x5eed_1bad_cafe_f00d);
    let mut signals: BTreeMap<u32, u64> = BTreeMap::new();
    let mut counts: BTreeMap<u32, u64> = BTreeMap::new();
    let mut records: BTreeMap<u32, u64> = BTreeMap::new();
    let mut seqs = Vec::new();
    let mut take = |v: Vec<crate::abi::RustIrqfdDelivery>| -> TestResult {
        for d in v {
            check_record(&d, n)?;
            *counts.entry(d.gsi).or_default() += d.count;
            *records.entry(d.gsi).or_default() += 1;
            seqs.push(d.seq);
        }
        Ok(())
    };

    for step in 0..STEPS {
        let i = rng.next(gsis.len() as u64) as usize;
        signal(&efds[i])?;
        *signals.entry(gsis[i]).or_default() += 1;
        for &g in &gsis {
            stats(&c, g).map_err(|m| format!("step {step}: {m}"))?;
        }
        if rng.next(3) == 0 {
            let max = [1, 2, 16][rng.next(3) as usize];
            take(try_read(&c, max)?)?;
        }
    }

    // Deassign flushes any queued injection: the counters are final.
    for (e, &g) in efds.iter().zip(&gsis) {
        ok(&format!("deassign(gsi {g})"), c.deassign(e, g))?;
    }
    take(drain(&c)?)?;

    let mut raised_total = 0;
    for &g in &gsis {
        let s = stats(&c, g)?;
        let (sig, cnt, rec) = (
            signals.get(&g).copied().unwrap_or(0),
            counts.get(&g).copied().unwrap_or(0),
            records.get(&g).copied().unwrap_or(0),
        );
        eq(&format!("gsi {g}: pending after the drain"), s.pending, 0)?;
        eq(
            &format!("gsi {g}: sum of the counts read vs injected"),
            cnt,
            s.injected,
        )?;
        eq(
            &format!("gsi {g}: records read vs delivered"),
            rec,
            s.delivered,
        )?;
        check_injections(env, &format!("gsi {g}"), s.injected, sig)?;
        raised_total += s.raised;
    }
    eq(
        "seqs in read order",
        seqs,
        (1..=raised_total).collect::<Vec<_>>(),
    )
}
