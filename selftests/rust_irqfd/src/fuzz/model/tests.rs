// SPDX-License-Identifier: GPL-2.0
//! The model's unit tests: each op's semantics, one scenario at a time.

use super::*;
use crate::abi::{DELIVERY_LEVEL, DELIVERY_MSI};
use crate::fuzz::fake::NR;
use crate::fuzz::gen::{ROUTE_A, ROUTE_B};

fn model() -> Model {
    Model::new(NR, &[0, 1, 2, 3], 3)
}

fn ok() -> Outcome {
    Outcome::Done(Ok(()))
}

fn err(e: i32) -> Outcome {
    Outcome::Done(Err(Errno(e)))
}

fn rec(
    seq: u64,
    gsi: u32,
    count: u64,
    route: Option<(u64, u32)>,
    level: bool,
) -> RustIrqfdDelivery {
    let (msi, msi_addr, msi_data) = match route {
        Some((a, d)) => (DELIVERY_MSI, a, d),
        None => (0, 0, 0),
    };
    RustIrqfdDelivery {
        seq,
        gsi,
        flags: msi | if level { DELIVERY_LEVEL } else { 0 },
        count,
        msi_addr,
        msi_data,
        pad: 0,
    }
}

fn read(m: &mut Model) -> Outcome {
    m.apply(&Op::Read { bytes: REC * 16 }).expect
}

fn records(v: Vec<RustIrqfdDelivery>) -> Outcome {
    Outcome::Records(Ok(v))
}

fn eagain() -> Outcome {
    Outcome::Records(Err(Errno(libc::EAGAIN)))
}

fn assign(slot: usize, gsi: u32, kind: AssignKind) -> Op {
    Op::Assign {
        slot,
        fd: 0,
        gsi,
        kind,
    }
}

fn deassign(slot: usize, gsi: u32) -> Op {
    Op::Deassign {
        slot,
        fd: 0,
        gsi,
        resample_flag: false,
    }
}

fn sig(slot: usize) -> Op {
    Op::Signal { slot, fd: 0 }
}

fn stats(m: &mut Model, gsi: u32) -> RustIrqfdGsiStats {
    match m.apply(&Op::Stats { gsi, pad: 0 }).expect {
        Outcome::Stats(Ok(s)) => s,
        o => panic!("{o:?}"),
    }
}

fn route(gsi: u32, r: (u64, u32)) -> Op {
    Op::Route {
        gsi,
        flags: ROUTE_MSI,
        addr: r.0,
        data: r.1,
        pad: 0,
    }
}

fn mask(gsi: u32, on: bool) -> Op {
    Op::Mask {
        gsi,
        flags: if on { MASK_MASKED } else { 0 },
    }
}

fn ack(m: &mut Model, gsi: u32) -> Outcome {
    m.apply(&Op::Ack { gsi, pad: 0 }).expect
}

/// Edge irqfd: coalescing into the pending record, FIFO order, seq.
#[test]
fn model_edge_coalescing_and_fifo() {
    let mut m = model();
    assert_eq!(m.apply(&assign(0, 2, AssignKind::Edge)).expect, ok());
    assert_eq!(m.apply(&assign(1, 1, AssignKind::Edge)).expect, ok());
    m.apply(&sig(0));
    m.apply(&sig(1));
    m.apply(&sig(0));
    assert_eq!(
        m.apply(&Op::Read { bytes: REC + 39 }).expect,
        records(vec![rec(1, 2, 2, None, false)])
    );
    m.apply(&sig(0));
    assert_eq!(
        read(&mut m),
        records(vec![rec(2, 1, 1, None, false), rec(3, 2, 1, None, false)])
    );
    assert_eq!(read(&mut m), eagain());
    assert_eq!(
        m.apply(&Op::Read { bytes: REC - 1 }).expect,
        Outcome::Records(Err(Errno(libc::EINVAL)))
    );
    let s = stats(&mut m, 2);
    assert_eq!(
        (s.injected, s.raised, s.coalesced, s.delivered, s.pending),
        (3, 2, 1, 2, 0)
    );
    assert_eq!(
        m.apply(&Op::Info).expect,
        Outcome::Info {
            nr_irqfds: 2,
            shutdowns: 0
        }
    );
    m.check_invariants().unwrap();
}

/// An event pending at assign injects once; the counter stays until
/// the next signal's wakeup, and deassign drains it.
#[test]
fn model_pending_at_assign() {
    let mut m = model();
    m.apply(&sig(0));
    m.apply(&sig(0));
    let st = m.apply(&assign(0, 3, AssignKind::Edge));
    assert_eq!(st.expect, ok());
    assert_eq!(st.wait, Wait::Injected { gsi: 3, n: 1 });
    assert_eq!(
        m.apply(&Op::ReadEventfd { slot: 0, fd: 0 }).expect,
        Outcome::Value(Ok(2))
    );
    assert_eq!(read(&mut m), records(vec![rec(1, 3, 1, None, false)]));
    // Again, and deassign drains the counter.
    m.apply(&deassign(0, 3));
    m.apply(&sig(0));
    assert_eq!(
        m.apply(&assign(0, 3, AssignKind::Edge)).wait,
        Wait::Injected { gsi: 3, n: 2 }
    );
    // The wrong gsi does not match.
    m.apply(&deassign(0, 2));
    assert_eq!(m.slots[0].counter, 1);
    m.apply(&deassign(0, 3));
    assert_eq!(
        m.apply(&Op::ReadEventfd { slot: 0, fd: 0 }).expect,
        Outcome::Value(Err(Errno(libc::EAGAIN)))
    );
    assert_eq!(m.shutdowns, 2);
}

/// Mask latch: injections held, released by unmask with the route of
/// the unmask; a record raised keeps its route.
#[test]
fn model_mask_and_routes() {
    let mut m = model();
    m.apply(&assign(0, 1, AssignKind::Edge));
    assert_eq!(m.apply(&route(1, ROUTE_A)).expect, ok());
    m.apply(&sig(0));
    m.apply(&route(1, ROUTE_B));
    m.apply(&sig(0));
    assert_eq!(
        read(&mut m),
        records(vec![rec(1, 1, 2, Some(ROUTE_A), false)])
    );
    m.apply(&mask(1, true));
    m.apply(&sig(0));
    m.apply(&sig(0));
    assert_eq!(read(&mut m), eagain());
    let s = stats(&mut m, 1);
    assert_eq!((s.latched, s.masked), (2, 1));
    m.apply(&route(1, ROUTE_A));
    m.apply(&mask(1, true));
    m.apply(&mask(1, false));
    m.apply(&mask(1, false));
    assert_eq!(
        read(&mut m),
        records(vec![rec(2, 1, 2, Some(ROUTE_A), false)])
    );
    // Clear the route: a plain line again.
    assert_eq!(
        m.apply(&Op::Route {
            gsi: 1,
            flags: 0,
            addr: 0,
            data: 0,
            pad: 0
        })
        .expect,
        ok()
    );
    m.apply(&sig(0));
    assert_eq!(read(&mut m), records(vec![rec(3, 1, 1, None, false)]));
    for bad in [
        Op::Route {
            gsi: 1,
            flags: ROUTE_MSI,
            addr: 2,
            data: 0,
            pad: 0,
        },
        Op::Route {
            gsi: 1,
            flags: 0,
            addr: 0,
            data: 1,
            pad: 0,
        },
        route(NR, ROUTE_A),
        Op::Mask { gsi: 1, flags: 2 },
        Op::Mask { gsi: NR, flags: 0 },
    ] {
        assert_eq!(m.apply(&bad).expect, err(libc::EINVAL), "{bad:?}");
    }
    let s = stats(&mut m, 1);
    assert_eq!(
        (
            s.injected,
            s.raised,
            s.coalesced,
            s.delivered,
            s.latched,
            s.masked
        ),
        (5, 3, 2, 3, 0, 0)
    );
    m.check_invariants().unwrap();
}

/// Level irqfd with a dedicated resamplefd: asserted line, coalescing
/// into it, ack.
#[test]
fn model_resample_dedicated() {
    let mut m = model();
    m.apply(&assign(0, 2, AssignKind::Dedicated));
    m.apply(&sig(0));
    m.apply(&sig(0));
    assert_eq!(read(&mut m), records(vec![rec(1, 2, 2, None, true)]));
    m.apply(&sig(0));
    assert_eq!(read(&mut m), eagain());
    assert_eq!(stats(&mut m, 2).asserted, 1);
    assert_eq!(ack(&mut m, 2), Outcome::Value(Ok(1)));
    assert_eq!(ack(&mut m, 2), Outcome::Value(Ok(0)));
    assert_eq!(
        m.apply(&Op::ReadResamplefd { slot: 0 }).expect,
        Outcome::Value(Ok(1))
    );
    // An edge irqfd on the asserted line raises records regardless.
    m.apply(&sig(0));
    m.apply(&assign(1, 2, AssignKind::Edge));
    m.apply(&sig(1));
    assert_eq!(read(&mut m), records(vec![rec(2, 2, 2, None, true)]));
    m.apply(&sig(1));
    assert_eq!(read(&mut m), records(vec![rec(3, 2, 1, None, false)]));
    let s = stats(&mut m, 2);
    assert_eq!((s.injected, s.coalesced, s.acks, s.asserted), (6, 3, 1, 1));
    // The last resample irqfd leaves: deasserted, its resamplefd read.
    assert_eq!(ack(&mut m, 2), Outcome::Value(Ok(1)));
    m.apply(&sig(0));
    let st = m.apply(&deassign(0, 2));
    assert_eq!(st.released, vec![(0, 1)]);
    assert_eq!(stats(&mut m, 2).asserted, 0);
    m.check_invariants().unwrap();
}

/// resamplefd == fd: the ack's signal injects again, synchronously.
#[test]
fn model_resample_own() {
    let mut m = model();
    m.apply(&assign(0, 3, AssignKind::Own { rfd: 0 }));
    m.apply(&sig(0));
    assert_eq!(read(&mut m), records(vec![rec(1, 3, 1, None, true)]));
    assert_eq!(ack(&mut m, 3), Outcome::Value(Ok(1)));
    assert_eq!(read(&mut m), records(vec![rec(2, 3, 1, None, true)]));
    let s = stats(&mut m, 3);
    assert_eq!((s.injected, s.acks, s.asserted), (2, 1, 1));
    // Masked: the re-injection is latched, and asserts at unmask.
    m.apply(&mask(3, true));
    assert_eq!(ack(&mut m, 3), Outcome::Value(Ok(1)));
    assert_eq!(stats(&mut m, 3).asserted, 0);
    m.apply(&route(3, ROUTE_B));
    m.apply(&mask(3, false));
    assert_eq!(
        read(&mut m),
        records(vec![rec(3, 3, 1, Some(ROUTE_B), true)])
    );
    assert_eq!(stats(&mut m, 3).asserted, 1);
    // Closing the last descriptor shuts it down asynchronously.
    let st = m.apply(&Op::Close { slot: 0, fd: 0 });
    assert_eq!(st.wait, Wait::Shutdowns(1));
    assert_eq!(stats(&mut m, 3).asserted, 0);
    assert_eq!(m.slots[0], Slot::fresh());
    m.check_invariants().unwrap();
}

/// A level injection latched while masked goes out as an edge when its
/// irqfd, the last resample irqfd of the line, is gone by the unmask: no
/// line is left asserted with no one to resample it. A resample assign
/// that fails with EBUSY joins and leaves the resampler: no trace.
#[test]
fn model_last_resampler_clears_latched_level() {
    let mut m = model();
    m.apply(&assign(0, 1, AssignKind::Dedicated));
    m.apply(&mask(1, true));
    m.apply(&sig(0));
    m.apply(&deassign(0, 1));
    m.apply(&mask(1, false));
    assert_eq!(read(&mut m), records(vec![rec(1, 1, 1, None, false)]));
    assert_eq!(stats(&mut m, 1).asserted, 0);
    m.apply(&assign(1, 2, AssignKind::Edge));
    // Edge EBUSY: nothing.
    assert_eq!(
        m.apply(&assign(1, 1, AssignKind::Edge)).expect,
        err(libc::EBUSY)
    );
    // Resample EBUSY on gsi 1, which has no resample irqfd: nothing.
    assert_eq!(
        m.apply(&assign(1, 1, AssignKind::Own { rfd: 0 })).expect,
        err(libc::EBUSY)
    );
    assert_eq!(stats(&mut m, 1).asserted, 0);
    assert_eq!(stats(&mut m, 1).acks, 0);
    // EINVAL comes before EBUSY and changes nothing.
    assert_eq!(
        m.apply(&assign(1, NR, AssignKind::Edge)).expect,
        err(libc::EINVAL)
    );
    assert_eq!(
        m.apply(&assign(1, 1, AssignKind::NotEventfd)).expect,
        err(libc::EINVAL)
    );
    assert_eq!(ack(&mut m, 1), Outcome::Value(Ok(0)));
    assert_eq!(
        m.apply(&Op::Ack { gsi: 1, pad: 1 }).expect,
        Outcome::Value(Err(Errno(libc::EINVAL)))
    );
}

/// Two resample irqfds on one GSI share the resampler: an ack signals
/// both; the own-fd one re-injects.
#[test]
fn model_shared_resampler_and_reopen() {
    let mut m = model();
    m.apply(&assign(0, 0, AssignKind::Dedicated));
    m.apply(&assign(1, 0, AssignKind::Own { rfd: 0 }));
    m.apply(&sig(0));
    m.apply(&sig(1));
    assert_eq!(read(&mut m), records(vec![rec(1, 0, 2, None, true)]));
    assert_eq!(ack(&mut m, 0), Outcome::Value(Ok(2)));
    assert_eq!(read(&mut m), records(vec![rec(2, 0, 1, None, true)]));
    m.apply(&sig(2));
    assert_eq!(ack(&mut m, 0), Outcome::Value(Ok(2)));
    let st = m.apply(&Op::Reopen);
    assert_eq!(st.released, vec![(0, 2)]);
    assert_eq!(m.slots[2].counter, 1);
    assert_eq!(m.nr_irqfds(), 0);
    assert_eq!(stats(&mut m, 0), Line::new(0).stats());
    assert_eq!(read(&mut m), eagain());
    m.apply(&assign(2, 0, AssignKind::Edge));
    m.apply(&sig(2));
    assert_eq!(read(&mut m), records(vec![rec(1, 0, 2, None, false)]));
}
