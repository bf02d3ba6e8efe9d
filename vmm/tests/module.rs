// SPDX-License-Identifier: GPL-2.0
//! The crate against the modules' devices, each of `/dev/rust_irqfd` and
//! `/dev/c_irqfd` that can be opened (inside the project's VM; skipped, with
//! a note, elsewhere): ABI version 2, with MSI routes, masking and resample
//! (level) irqfds.
//!
//! Every test signals one eventfd at a time and waits (boundedly) for the
//! GSI's `injected` counter to move before the next, so that the outcome is
//! the same whether the module injects directly or from its work item.

mod common;

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd};
use std::time::Duration;

use common::{module_or_skip, Kind};
use rust_irqfd_vmm::abi::module::{Delivery, GsiStats, ABI_VERSION, DELIVERY_LEVEL, DELIVERY_MSI};
use rust_irqfd_vmm::abi::RawIrqfd;
use rust_irqfd_vmm::{Errno, Error, EventFd, GsiAllocator, IrqFd, IrqFdBackend, ModuleBackend, Op};

const WAIT: Duration = Duration::from_secs(5);
const A1: (u64, u32) = (0xfee0_0000, 0x41);
const A2: (u64, u32) = (0x1_fee0_1000, 0x42);
const A3: (u64, u32) = (0xfee0_2000, 0x43);

fn modules(test: &str) -> Vec<(Kind, ModuleBackend)> {
    [Kind::Rust, Kind::C]
        .into_iter()
        .filter_map(|k| module_or_skip(k, test).map(|m| (k, m)))
        .collect()
}

/// Signals `e` once and waits until `gsi`'s `injected` counter has moved;
/// returns the stats then (invariants checked).
fn fire(m: &ModuleBackend, e: &EventFd, gsi: u32) -> GsiStats {
    let before = m.gsi_stats(gsi).unwrap().injected;
    e.signal().unwrap();
    let st = m
        .wait_gsi_stats(gsi, WAIT, |st| st.injected > before)
        .unwrap();
    assert_eq!(st.injected, before + 1, "{}: GSI {gsi}: {st:?}", m.name());
    assert!(st.invariants_hold(), "{}: {st:?}", m.name());
    st
}

/// The records pending now, all for `gsi`.
fn records(m: &ModuleBackend, gsi: u32) -> Vec<Delivery> {
    let d = m.read_deliveries().unwrap();
    assert!(d.iter().all(|d| d.gsi == gsi), "{}: {d:?}", m.name());
    d
}

/// Exactly one record for `gsi`, read now (it was raised already).
fn one_record(m: &ModuleBackend, gsi: u32) -> Delivery {
    let d = records(m, gsi);
    assert_eq!(d.len(), 1, "{}: {d:?}", m.name());
    d[0]
}

fn stats_ok(m: &ModuleBackend, gsi: u32) -> GsiStats {
    let st = m.gsi_stats(gsi).unwrap();
    assert!(st.invariants_hold(), "{}: {st:?}", m.name());
    st
}

#[test]
fn info_and_name() {
    for (kind, m) in modules("info_and_name") {
        let info = m.info().unwrap();
        assert_eq!(info.version, ABI_VERSION);
        assert_eq!(ABI_VERSION, 2);
        assert_eq!(info.nr_irqfds, 0);
        assert_eq!(m.nr_gsis(), info.nr_gsis);
        assert_eq!(m.name(), kind.name());
        assert_eq!(m.read_deliveries().unwrap(), []);
        let st = m.gsi_stats(0).unwrap();
        assert_eq!(st, GsiStats::default(), "a fresh GSI: all zero");
    }
}

#[test]
fn a_route_delivers() {
    for (kind, m) in modules("a_route_delivers") {
        let irqfd = IrqFd::new(m);
        let r = irqfd.new_route().unwrap();
        let ctx = irqfd.backend();
        assert_eq!(r.gsi(), 0, "{}", kind.name());
        assert_eq!(ctx.info().unwrap().nr_irqfds, 1);

        // One signal at a time, each read before the next: one record each,
        // whatever the injection path (direct, or deferred and merged).
        let mut last_seq = 0;
        for _ in 0..3 {
            r.event().signal().unwrap();
            let d = ctx.wait_deliveries(WAIT).unwrap();
            assert_eq!(d.len(), 1, "{}: {d:?}", kind.name());
            assert_eq!((d[0].gsi, d[0].count), (0, 1), "{}", kind.name());
            assert_eq!(d[0].flags, 0, "no route: a plain line");
            assert_eq!(d[0].msi(), None);
            assert!(d[0].seq > last_seq);
            last_seq = d[0].seq;
        }
        let st = stats_ok(ctx, 0);
        assert_eq!((st.injected, st.delivered, st.pending), (3, 3, 0));
        assert_eq!((st.latched, st.acks, st.masked, st.asserted), (0, 0, 0, 0));

        drop(r);
        let info = ctx.info().unwrap();
        assert_eq!(info.nr_irqfds, 0, "{}: deassigned on drop", kind.name());
        assert_eq!(irqfd.allocator().in_use(), 0);
    }
}

/// Records carry the route read at the injection that raised them; routes
/// change in place, without reassigning.
#[test]
fn msi_routes_are_carried_by_deliveries() {
    for (kind, m) in modules("msi_routes_are_carried_by_deliveries") {
        let irqfd = IrqFd::new(m);
        let ctx = irqfd.backend();
        let r = irqfd.new_route().unwrap();
        let plain = irqfd.new_route().unwrap();
        let g = r.gsi();

        r.set_msi(A1.0, A1.1).unwrap();
        assert_eq!(r.msi(), Some(A1));
        fire(ctx, r.event(), g);
        let d = one_record(ctx, g);
        assert_eq!(d.flags, DELIVERY_MSI, "{}: {d:?}", kind.name());
        assert_eq!(d.msi(), Some(A1));
        assert!(!d.is_level());

        // In place: the same irqfd, the new route from the next injection.
        r.set_msi(A2.0, A2.1).unwrap();
        assert_eq!(ctx.info().unwrap().nr_irqfds, 2);
        fire(ctx, r.event(), g);
        assert_eq!(one_record(ctx, g).msi(), Some(A2));

        // A pending record keeps the route it was raised with.
        fire(ctx, r.event(), g);
        r.set_msi(A3.0, A3.1).unwrap();
        assert_eq!(one_record(ctx, g).msi(), Some(A2), "{}", kind.name());
        fire(ctx, r.event(), g);
        assert_eq!(one_record(ctx, g).msi(), Some(A3));

        // Another GSI is untouched.
        fire(ctx, plain.event(), plain.gsi());
        let d = one_record(ctx, plain.gsi());
        assert_eq!((d.flags, d.msi_addr, d.msi_data), (0, 0, 0));

        // Cleared: a plain line again.
        r.clear_msi().unwrap();
        assert_eq!(r.msi(), None);
        fire(ctx, r.event(), g);
        let d = one_record(ctx, g);
        assert_eq!((d.flags, d.msi_addr, d.msi_data), (0, 0, 0));
        // Clearing what is not set is fine.
        r.clear_msi().unwrap();
    }
}

#[test]
fn route_errors() {
    for (kind, m) in modules("route_errors") {
        let n = m.nr_gsis();
        let inval = |op, gsi| Error::kernel(op, Some(gsi), Errno::INVAL);
        assert_eq!(m.set_msi(1, 0, 0x41), Err(inval(Op::SetMsi, 1)));
        assert_eq!(
            m.set_msi(1, 0xfee0_0002, 0x41),
            Err(inval(Op::SetMsi, 1)),
            "{}: not 4-byte aligned",
            kind.name()
        );
        assert_eq!(m.set_msi(1, 0xfee0_0001, 0x41), Err(inval(Op::SetMsi, 1)));
        assert_eq!(m.set_msi(n, A1.0, A1.1), Err(inval(Op::SetMsi, n)));
        assert_eq!(
            m.set_msi(u32::MAX, A1.0, A1.1),
            Err(inval(Op::SetMsi, u32::MAX))
        );
        assert_eq!(m.clear_msi(n), Err(inval(Op::ClearMsi, n)));
        assert_eq!(m.mask(n), Err(inval(Op::Mask, n)));
        assert_eq!(m.unmask(n), Err(inval(Op::Unmask, n)));
        assert_eq!(m.ack(n), Err(inval(Op::Ack, n)));
        // The last GSI is fine, and a failed call changed nothing.
        m.set_msi(n - 1, A1.0, A1.1).unwrap();
        m.clear_msi(n - 1).unwrap();
        let e = EventFd::new().unwrap();
        m.assign(e.as_fd(), 1).unwrap();
        fire(&m, &e, 1);
        let d = one_record(&m, 1);
        assert_eq!(
            d.flags,
            0,
            "{}: the failed set_msi left no route",
            kind.name()
        );
        m.deassign(e.as_fd(), 1).unwrap();
    }
}

/// The modules' own MSI-X style mask (`RUST_IRQFD_SET_MASK`): injections
/// into a masked GSI are latched; unmask raises one record carrying them
/// all, with the route current at unmask.
#[test]
fn the_gsi_mask_latches_and_unmask_delivers_once() {
    for (kind, m) in modules("the_gsi_mask_latches_and_unmask_delivers_once") {
        let irqfd = IrqFd::new(m);
        let ctx = irqfd.backend();
        let r = irqfd.new_route().unwrap();
        let g = r.gsi();
        r.set_msi(A1.0, A1.1).unwrap();

        ctx.mask(g).unwrap();
        assert!(stats_ok(ctx, g).is_masked(), "{}", kind.name());
        for i in 1..=3 {
            let st = fire(ctx, r.event(), g);
            assert_eq!((st.latched, st.raised, st.pending), (i, 0, 0), "{st:?}");
        }
        assert_eq!(records(ctx, g), [], "{}: masked: no record", kind.name());

        // Rerouted while masked: the unmask uses the new route.
        r.set_msi(A2.0, A2.1).unwrap();
        ctx.unmask(g).unwrap();
        assert!(!stats_ok(ctx, g).is_masked());
        let d = one_record(ctx, g);
        assert_eq!(d.count, 3, "{}: {d:?}", kind.name());
        assert_eq!(d.msi(), Some(A2));
        let st = stats_ok(ctx, g);
        assert_eq!(
            (st.injected, st.raised, st.coalesced, st.latched, st.masked),
            (3, 1, 2, 0, 0),
            "{}: {st:?}",
            kind.name()
        );

        // Mask of masked and unmask of unmasked change nothing; an unmask
        // with nothing latched raises nothing.
        ctx.mask(g).unwrap();
        ctx.mask(g).unwrap();
        ctx.unmask(g).unwrap();
        ctx.unmask(g).unwrap();
        assert_eq!(records(ctx, g), []);
        assert_eq!(stats_ok(ctx, g), st);

        // Masking does not touch a pending record; unmask merges into it.
        fire(ctx, r.event(), g);
        ctx.mask(g).unwrap();
        fire(ctx, r.event(), g);
        fire(ctx, r.event(), g);
        let st = stats_ok(ctx, g);
        assert_eq!((st.pending, st.latched), (1, 2), "{st:?}");
        ctx.unmask(g).unwrap();
        let d = one_record(ctx, g);
        assert_eq!(d.count, 3, "{}: merged: {d:?}", kind.name());
        assert_eq!(d.msi(), Some(A2));
        let st = stats_ok(ctx, g);
        assert_eq!((st.injected, st.raised, st.latched), (6, 2, 0), "{st:?}");
    }
}

/// A route's mask unbinds its eventfd: signals wait in the counter (the
/// pending bit), nothing is injected or latched, and the unmask injects
/// once, with the route current then. `take_pending` clears the bit so that
/// the unmask injects nothing; a dropped masked route delivers nothing.
#[test]
fn a_masked_route_holds_one_pending_bit() {
    for (kind, m) in modules("a_masked_route_holds_one_pending_bit") {
        let name = kind.name();
        let irqfd = IrqFd::new(m);
        let ctx = irqfd.backend();
        let r = irqfd.new_route().unwrap();
        let g = r.gsi();
        r.set_msi(A1.0, A1.1).unwrap();
        fire(ctx, r.event(), g);
        assert_eq!(one_record(ctx, g).msi(), Some(A1));
        assert!(!r.pending().unwrap(), "{name}: unmasked, delivered");

        r.mask().unwrap();
        assert_eq!(ctx.info().unwrap().nr_irqfds, 0, "{name}: unbound");
        let st = stats_ok(ctx, g);
        for _ in 0..3 {
            r.event().signal().unwrap();
        }
        assert!(r.pending().unwrap(), "{name}");
        assert!(r.pending().unwrap(), "{name}: reading keeps it");
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(
            stats_ok(ctx, g),
            st,
            "{name}: nothing injected while masked"
        );
        assert_eq!(records(ctx, g), []);

        r.set_msi(A2.0, A2.1).unwrap();
        r.unmask().unwrap();
        assert!(!r.pending().unwrap(), "{name}");
        let st = ctx
            .wait_gsi_stats(g, WAIT, |s| s.injected > st.injected)
            .unwrap();
        assert_eq!(
            st.injected, 2,
            "{name}: one injection for the pending bit: {st:?}"
        );
        let d = one_record(ctx, g);
        assert_eq!((d.count, d.msi()), (1, Some(A2)), "{name}: {d:?}");

        // Read and clear: the unmask then injects nothing.
        r.mask().unwrap();
        r.event().signal().unwrap();
        assert!(r.take_pending().unwrap(), "{name}");
        assert!(!r.pending().unwrap(), "{name}");
        assert!(!r.take_pending().unwrap(), "{name}");
        r.unmask().unwrap();
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(stats_ok(ctx, g).injected, 2, "{name}");
        assert_eq!(ctx.info().unwrap().nr_irqfds, 1, "{name}: bound again");
        fire(ctx, r.event(), g);
        assert_eq!(one_record(ctx, g).msi(), Some(A2), "{name}");

        // Dropped while masked and pending: nothing is delivered, the GSI
        // is freed.
        r.mask().unwrap();
        r.event().signal().unwrap();
        drop(r);
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(stats_ok(ctx, g).injected, 3, "{name}");
        assert_eq!(records(ctx, g), []);
        assert_eq!(ctx.info().unwrap().nr_irqfds, 0);
        assert!(!irqfd.allocator().is_allocated(g));
    }
}

/// A resample irqfd asserts the line; further injections coalesce into
/// it until the ack, which deasserts it and signals the resamplefd.
#[test]
fn a_level_line_is_asserted_until_acked() {
    const GL: u32 = 20;
    for (kind, m) in modules("a_level_line_is_asserted_until_acked") {
        // Routes never get GL.
        let gsis = GsiAllocator::new(m.nr_gsis().min(2048));
        gsis.reserve(16..24);
        let irqfd = IrqFd::with_allocator(m, gsis);
        let ctx = irqfd.backend();
        let line = irqfd.new_level_line(GL).unwrap();
        assert_eq!(line.gsi(), GL);
        assert!(!line.is_asserted().unwrap());

        let st = fire(ctx, line.event(), GL);
        assert_eq!((st.raised, st.asserted), (1, 1), "{}: {st:?}", kind.name());
        let d = one_record(ctx, GL);
        assert_eq!((d.flags, d.count), (DELIVERY_LEVEL, 1), "{d:?}");
        assert!(d.is_level() && !d.is_msi());
        assert!(line.is_asserted().unwrap());

        // Asserted: further injections coalesce, no record, no resample.
        for i in 1..=2 {
            let st = fire(ctx, line.event(), GL);
            assert_eq!((st.raised, st.coalesced, st.pending), (1, i, 0), "{st:?}");
        }
        assert_eq!(records(ctx, GL), []);
        assert_eq!(line.resample().try_read().unwrap(), None);

        // The ack: deasserted, the resamplefd signalled once.
        assert_eq!(line.ack().unwrap(), 1, "{}", kind.name());
        assert_eq!(line.resample().try_read().unwrap(), Some(1));
        let st = stats_ok(ctx, GL);
        assert_eq!((st.asserted, st.acks), (0, 1), "{st:?}");
        // Acking a deasserted line does nothing.
        assert_eq!(line.ack().unwrap(), 0);
        assert_eq!(line.resample().try_read().unwrap(), None);
        assert_eq!(stats_ok(ctx, GL).acks, 1);

        // Fire again: a new level record.
        fire(ctx, line.event(), GL);
        assert_eq!(one_record(ctx, GL).flags, DELIVERY_LEVEL);
        assert_eq!(line.ack().unwrap(), 1);
        assert_eq!(line.resample().try_read().unwrap(), Some(1));

        // Routed: both flags.
        ctx.set_msi(GL, A1.0, A1.1).unwrap();
        fire(ctx, line.event(), GL);
        let d = one_record(ctx, GL);
        assert_eq!(d.flags, DELIVERY_LEVEL | DELIVERY_MSI, "{d:?}");
        assert_eq!(d.msi(), Some(A1));
        assert_eq!(line.ack().unwrap(), 1);
        ctx.clear_msi(GL).unwrap();
        line.resample().try_read().unwrap();

        // An edge irqfd on the same GSI ignores the asserted line.
        fire(ctx, line.event(), GL);
        one_record(ctx, GL);
        let edge = EventFd::new().unwrap();
        ctx.assign(edge.as_fd(), GL).unwrap();
        fire(ctx, &edge, GL);
        let d = one_record(ctx, GL);
        assert_eq!(d.flags, 0, "{}: an edge record: {d:?}", kind.name());
        ctx.deassign(edge.as_fd(), GL).unwrap();
        assert_eq!(line.ack().unwrap(), 1);
        line.resample().try_read().unwrap();

        // Masked: the level injection is latched; unmask asserts the line.
        ctx.mask(GL).unwrap();
        let st = fire(ctx, line.event(), GL);
        assert_eq!((st.latched, st.asserted), (1, 0), "{st:?}");
        assert_eq!(records(ctx, GL), []);
        ctx.unmask(GL).unwrap();
        let d = one_record(ctx, GL);
        assert_eq!((d.flags, d.count), (DELIVERY_LEVEL, 1), "{d:?}");
        assert!(line.is_asserted().unwrap());
        assert_eq!(line.ack().unwrap(), 1);
        assert_eq!(line.resample().try_read().unwrap(), Some(1));

        drop(line);
        assert_eq!(ctx.info().unwrap().nr_irqfds, 0);
    }
}

/// Two resample irqfds on one GSI share its resampler: an ack signals
/// both; the line is deasserted when the last one goes, without a signal.
#[test]
fn level_lines_share_a_resampler() {
    const GL: u32 = 9;
    for (kind, m) in modules("level_lines_share_a_resampler") {
        let irqfd = IrqFd::new(m);
        let ctx = irqfd.backend();
        let a = irqfd.new_level_line(GL).unwrap();
        let b = irqfd.new_level_line(GL).unwrap();
        fire(ctx, a.event(), GL);
        let st = fire(ctx, b.event(), GL);
        assert_eq!((st.raised, st.coalesced, st.asserted), (1, 1, 1), "{st:?}");
        // b's injection merged into a's pending record.
        let d = one_record(ctx, GL);
        assert_eq!((d.flags, d.count), (DELIVERY_LEVEL, 2), "{d:?}");

        assert_eq!(
            a.ack().unwrap(),
            2,
            "{}: one per resample irqfd",
            kind.name()
        );
        assert_eq!(a.resample().try_read().unwrap(), Some(1));
        assert_eq!(b.resample().try_read().unwrap(), Some(1));

        // One leaves: the other is acked alone.
        drop(a);
        fire(ctx, b.event(), GL);
        one_record(ctx, GL);
        assert_eq!(b.ack().unwrap(), 1);
        assert_eq!(b.resample().try_read().unwrap(), Some(1));

        // The last one leaves while the line is asserted: deasserted.
        fire(ctx, b.event(), GL);
        one_record(ctx, GL);
        let acks = stats_ok(ctx, GL).acks;
        drop(b);
        let st = stats_ok(ctx, GL);
        assert_eq!((st.asserted, st.acks), (0, acks), "{}: {st:?}", kind.name());
        assert_eq!(ctx.ack(GL).unwrap(), 0);
    }
}

/// Resample assign errors, as KVM's (`tests/parity.rs` compares them).
#[test]
fn resample_errors() {
    for (kind, m) in modules("resample_errors") {
        let e = EventFd::new().unwrap();
        let devnull = File::open("/dev/null").unwrap();
        let fd = e.as_raw_fd() as u32;
        let raw = |resamplefd: u32| m.irqfd(&RawIrqfd::assign_resample(fd, 3, resamplefd));
        let err = |e: Error| (e.op(), e.errno());
        assert_eq!(
            err(raw(u32::MAX).unwrap_err()),
            (Some(Op::AssignResample), Some(Errno::BADF)),
            "{}",
            kind.name()
        );
        assert_eq!(
            err(raw(devnull.as_raw_fd() as u32).unwrap_err()),
            (Some(Op::AssignResample), Some(Errno::INVAL))
        );
        // Out of range.
        let r = EventFd::new().unwrap();
        assert_eq!(
            m.assign_resample(e.as_fd(), m.nr_gsis(), r.as_fd()),
            Err(Error::kernel(
                Op::AssignResample,
                Some(m.nr_gsis()),
                Errno::INVAL
            ))
        );
        // The eventfd as its own resamplefd.
        raw(fd).unwrap();
        assert_eq!(
            m.assign_resample(e.as_fd(), 3, r.as_fd()),
            Err(Error::kernel(Op::AssignResample, Some(3), Errno::BUSY))
        );
        m.deassign(e.as_fd(), 3).unwrap();
        // Resample is not allowed in a batch, but a single one is: and
        // closing the resamplefd later does not disable the irqfd.
        m.assign_resample(e.as_fd(), 3, r.as_fd()).unwrap();
        drop(r);
        fire(&m, &e, 3);
        assert_eq!(one_record(&m, 3).flags, DELIVERY_LEVEL);
        assert_eq!(m.ack(3).unwrap(), 1, "{}: its own reference", kind.name());
        m.deassign(e.as_fd(), 3).unwrap();
        assert_eq!(m.info().unwrap().nr_irqfds, 0);
    }
}

#[test]
fn gsi_stats_out_of_range_is_einval() {
    for (_, m) in modules("gsi_stats_out_of_range_is_einval") {
        let n = m.nr_gsis();
        assert_eq!(
            m.gsi_stats(n).unwrap_err(),
            Error::kernel(Op::GsiStats, Some(n), Errno::INVAL)
        );
        assert_eq!(
            m.line_asserted(n),
            Err(Error::kernel(Op::GsiStats, Some(n), Errno::INVAL))
        );
    }
}

#[test]
fn capacity_follows_nr_gsis() {
    for (_, m) in modules("capacity_follows_nr_gsis") {
        let n = m.nr_gsis();
        let irqfd = IrqFd::new(m);
        assert_eq!(irqfd.allocator().capacity(), n.min(2048));
    }
}

#[test]
fn a_bound_eventfd_is_busy_in_another_context() {
    for (kind, m) in modules("a_bound_eventfd_is_busy_in_another_context") {
        let Some(other) = module_or_skip(kind, "second context") else {
            continue;
        };
        let e = EventFd::new().unwrap();
        m.assign(e.as_fd(), 1).unwrap();
        assert_eq!(
            other.assign(e.as_fd(), 1).unwrap_err(),
            Error::kernel(Op::Assign, Some(1), Errno::BUSY)
        );
        m.deassign(e.as_fd(), 1).unwrap();
        other.assign(e.as_fd(), 1).unwrap();
    }
}
