// SPDX-License-Identifier: GPL-2.0
//! The crate against real KVM (skipped, with a note, where `/dev/kvm`
//! cannot be opened or a VM cannot be made).

mod common;

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::kvm_or_skip;
use rust_irqfd_vmm::abi::kvm::{default_routes, RoutingEntry, NR_DEFAULT_GSIS};
use rust_irqfd_vmm::abi::RawIrqfd;
use rust_irqfd_vmm::{Errno, Error, EventFd, GsiAllocator, IrqFd, IrqFdBackend, KvmBackend, Op};

const MSI_ADDR: u64 = 0xfee0_0000;
/// How long an injection (KVM's irqfd work item) may take to land.
const WAIT: Duration = Duration::from_secs(5);

/// Polls `line_asserted(gsi)` until it equals `want` or [`WAIT`] passes;
/// returns the last answer.
fn wait_line(kvm: &KvmBackend, gsi: u32, want: bool) -> bool {
    let start = Instant::now();
    loop {
        let now = kvm.line_asserted(gsi).unwrap();
        if now == want || start.elapsed() >= WAIT {
            return now;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn a_new_vm_has_the_default_routes() {
    let Some(kvm) = kvm_or_skip("a_new_vm_has_the_default_routes") else {
        return;
    };
    println!("KVM: {} routable GSIs", kvm.nr_gsis());
    assert_eq!(kvm.name(), "kvm");
    assert!(kvm.nr_gsis() >= NR_DEFAULT_GSIS);
    assert_eq!(kvm.reserved_gsis(), 0..NR_DEFAULT_GSIS);
    assert_eq!(kvm.routes(), default_routes());
    assert_eq!(kvm.msi_route(5), None);
}

#[test]
fn routes_are_numbered_after_the_default_gsis() {
    let Some(kvm) = kvm_or_skip("routes_are_numbered_after_the_default_gsis") else {
        return;
    };
    let irqfd = IrqFd::new(kvm);
    assert_eq!(
        irqfd.allocator().capacity(),
        GsiAllocator::DEFAULT_CAPACITY.min(irqfd.backend().nr_gsis())
    );
    assert_eq!(irqfd.allocator().in_use(), NR_DEFAULT_GSIS);
    let a = irqfd.new_route().unwrap();
    let b = irqfd.new_route().unwrap();
    assert_eq!((a.gsi(), b.gsi()), (24, 25));
    drop(a);
    let c = irqfd.new_route().unwrap();
    assert_eq!(c.gsi(), 24, "the lowest free GSI again");
    drop((b, c));
    assert_eq!(irqfd.allocator().in_use(), NR_DEFAULT_GSIS);
}

#[test]
fn set_msi_replaces_and_clear_msi_removes() {
    let Some(kvm) = kvm_or_skip("set_msi_replaces_and_clear_msi_removes") else {
        return;
    };
    let irqfd = IrqFd::new(kvm);
    let r = irqfd.new_route().unwrap();
    let kvm = irqfd.backend();
    let n = default_routes().len();

    r.set_msi(MSI_ADDR, 0x41).unwrap();
    assert_eq!(kvm.msi_route(r.gsi()), Some((MSI_ADDR, 0x41)));
    assert_eq!(r.msi(), Some((MSI_ADDR, 0x41)));
    assert_eq!(kvm.routes().len(), n + 1);

    // A 64-bit address (address_hi) and new data replace the entry.
    r.set_msi(0x1_fee0_1000, 0x42).unwrap();
    assert_eq!(kvm.msi_route(r.gsi()), Some((0x1_fee0_1000, 0x42)));
    assert_eq!(kvm.routes().len(), n + 1);

    // Signalling with a route but no vCPU is harmless.
    r.event().signal().unwrap();

    r.clear_msi().unwrap();
    assert_eq!(kvm.msi_route(r.gsi()), None);
    assert_eq!(r.msi(), None);
    assert_eq!(kvm.routes(), default_routes());
    // Clearing what is not set is a no-op.
    r.clear_msi().unwrap();
}

#[test]
fn drop_clears_the_route_and_frees_the_gsi() {
    let Some(kvm) = kvm_or_skip("drop_clears_the_route_and_frees_the_gsi") else {
        return;
    };
    let errors = Arc::new(Mutex::new(Vec::new()));
    let irqfd = IrqFd::new(kvm);
    let seen = errors.clone();
    irqfd.set_drop_error_hook(move |e| seen.lock().unwrap().push(e.clone()));
    let routes: Vec<_> = (0..8).map(|_| irqfd.new_route().unwrap()).collect();
    for (i, r) in routes.iter().enumerate() {
        r.set_msi(MSI_ADDR, 0x30 + i as u32).unwrap();
    }
    assert_eq!(irqfd.backend().routes().len(), default_routes().len() + 8);
    drop(routes);
    assert_eq!(irqfd.backend().routes(), default_routes());
    assert_eq!(irqfd.allocator().in_use(), NR_DEFAULT_GSIS);
    assert!(errors.lock().unwrap().is_empty(), "{:?}", errors.lock());
}

#[test]
fn kvm_has_no_mask_and_no_userspace_ack() {
    let Some(kvm) = kvm_or_skip("kvm_has_no_mask_and_no_userspace_ack") else {
        return;
    };
    let e = kvm.mask(30).unwrap_err();
    assert_eq!(
        e,
        Error::Unsupported {
            op: Op::Mask,
            backend: "kvm".into()
        }
    );
    assert_eq!(e.to_string(), "mask: not supported by the kvm backend");
    assert!(matches!(
        kvm.unmask(30),
        Err(Error::Unsupported { op: Op::Unmask, .. })
    ));
    assert!(matches!(
        kvm.ack(7),
        Err(Error::Unsupported { op: Op::Ack, .. })
    ));
    // Line state only where there is an IOAPIC pin.
    assert_eq!(kvm.ioapic_pin(7), Some(7));
    assert_eq!(kvm.ioapic_pin(30), None);
    assert!(!kvm.line_asserted(7).unwrap());
    assert!(matches!(
        kvm.line_asserted(30),
        Err(Error::Unsupported {
            op: Op::LineState,
            ..
        })
    ));
}

/// A route masks by unbinding its eventfd on KVM: signals stay in the
/// eventfd's counter while masked, and unmask binds it again (KVM, finding
/// the counter set at assign, injects once).
#[test]
fn a_route_masks_by_unbinding_on_kvm() {
    let (Some(kvm), Some(other)) = (
        kvm_or_skip("a_route_masks_by_unbinding_on_kvm"),
        kvm_or_skip("a_route_masks_by_unbinding_on_kvm"),
    ) else {
        return;
    };
    let irqfd = IrqFd::new(kvm);
    let r = irqfd.new_route().unwrap();
    r.set_msi(MSI_ADDR, 0x41).unwrap();
    r.event().signal().unwrap();
    assert!(!r.event().is_signalled().unwrap(), "bound: KVM consumed it");

    assert!(!r.pending().unwrap());
    r.mask().unwrap();
    assert!(r.is_masked());
    assert!(!r.pending().unwrap(), "nothing signalled yet");
    for _ in 0..3 {
        r.event().signal().unwrap();
    }
    assert!(r.pending().unwrap(), "masked: the counter holds");
    assert!(r.pending().unwrap(), "reading does not clear");
    // Unbound: another VM could take it (and give it back).
    other.assign(r.event().as_fd(), 40).unwrap();
    other.deassign(r.event().as_fd(), 40).unwrap();

    // Rerouting while masked is fine: the route current at unmask is used.
    r.set_msi(MSI_ADDR, 0x42).unwrap();
    r.unmask().unwrap();
    assert!(!r.is_masked());
    assert!(!r.pending().unwrap(), "unmasked: nothing pending");
    // Bound again: EBUSY elsewhere, and the next signal is consumed along
    // with what was latched.
    assert_eq!(
        outcome(other.assign(r.event().as_fd(), 40)),
        "EBUSY",
        "bound again after unmask"
    );
    r.event().signal().unwrap();
    let start = Instant::now();
    while r.event().is_signalled().unwrap() && start.elapsed() < WAIT {
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(!r.event().is_signalled().unwrap());

    // Read and clear: the counter is consumed by the route, so the unmask
    // finds nothing to inject, and a later signal is KVM's again.
    r.mask().unwrap();
    r.event().signal().unwrap();
    assert!(r.take_pending().unwrap());
    assert!(!r.pending().unwrap());
    assert!(!r.event().is_signalled().unwrap(), "the counter was read");
    assert!(!r.take_pending().unwrap());
    r.unmask().unwrap();
    assert_eq!(outcome(other.assign(r.event().as_fd(), 40)), "EBUSY");

    // Dropping a masked route: nothing bound, the MSI route removed.
    r.mask().unwrap();
    drop(r);
    assert_eq!(irqfd.backend().routes(), default_routes());
}

fn outcome(r: Result<(), Error>) -> String {
    match r {
        Ok(()) => "ok".into(),
        Err(e) => e.tag(),
    }
}

/// `KVM_IRQFD_FLAG_RESAMPLE` on an irqchip GSI: a signal asserts the
/// IOAPIC input and it stays asserted (no vCPU ever EOIs it); an edge irqfd
/// beside it leaves no trace; removing the resample irqfd deasserts it.
#[test]
fn a_resample_irqfd_holds_the_line() {
    let Some(kvm) = kvm_or_skip("a_resample_irqfd_holds_the_line") else {
        return;
    };
    let gsi = 7;
    let e = EventFd::new_nonblocking().unwrap();
    let rs = EventFd::new_nonblocking().unwrap();
    kvm.assign_resample(e.as_fd(), gsi, rs.as_fd()).unwrap();
    assert!(!kvm.line_asserted(gsi).unwrap());
    e.signal().unwrap();
    assert!(wait_line(&kvm, gsi, true), "the resample irqfd asserts");
    e.signal().unwrap();
    assert!(kvm.line_asserted(gsi).unwrap());
    assert_eq!(rs.try_read().unwrap(), None, "no EOI, no resample");

    // An edge irqfd on another pin: pulses, IRR clear again.
    let edge = EventFd::new_nonblocking().unwrap();
    kvm.assign(edge.as_fd(), 8).unwrap();
    edge.signal().unwrap();
    std::thread::sleep(Duration::from_millis(20));
    assert!(!kvm.line_asserted(8).unwrap(), "an edge leaves no level");
    kvm.deassign(edge.as_fd(), 8).unwrap();

    kvm.deassign(e.as_fd(), gsi).unwrap();
    assert!(!wait_line(&kvm, gsi, false), "the last one out deasserts");
    assert_eq!(rs.try_read().unwrap(), None, "without a signal");
}

/// Two level lines share GSI 10's resampler; the line stays asserted until
/// the last one goes.
#[test]
fn level_lines_share_a_gsi() {
    let Some(kvm) = kvm_or_skip("level_lines_share_a_gsi") else {
        return;
    };
    let irqfd = IrqFd::new(kvm);
    let a = irqfd.new_level_line(10).unwrap();
    let b = irqfd.new_level_line(10).unwrap();
    b.event().signal().unwrap();
    assert!(wait_line(irqfd.backend(), 10, true));
    assert!(a.is_asserted().unwrap());
    assert!(matches!(
        a.ack(),
        Err(Error::Unsupported { op: Op::Ack, .. })
    ));
    drop(a);
    assert!(b.is_asserted().unwrap(), "b's resampler remains");
    drop(b);
    assert!(!wait_line(irqfd.backend(), 10, false));
}

/// What KVM answers for bad resample requests (the modules' promises are
/// the same; `tests/parity.rs` compares them).
#[test]
fn resample_errors() {
    let Some(kvm) = kvm_or_skip("resample_errors") else {
        return;
    };
    let e = EventFd::new().unwrap();
    let devnull = File::open("/dev/null").unwrap();
    let fd = e.as_raw_fd() as u32;
    let raw = |resamplefd: u32| kvm.irqfd(&RawIrqfd::assign_resample(fd, 7, resamplefd));
    assert_eq!(
        raw(u32::MAX).unwrap_err(),
        Error::kernel(Op::AssignResample, Some(7), Errno::BADF)
    );
    assert_eq!(
        raw(devnull.as_raw_fd() as u32).unwrap_err(),
        Error::kernel(Op::AssignResample, Some(7), Errno::INVAL)
    );
    // The eventfd itself as its resamplefd.
    raw(fd).unwrap();
    assert_eq!(
        outcome(kvm.assign_resample(e.as_fd(), 7, e.as_fd())),
        "EBUSY"
    );
    kvm.deassign(e.as_fd(), 7).unwrap();
    // Closing the resamplefd after the assign does not disable the irqfd.
    let rs = EventFd::new().unwrap();
    kvm.assign_resample(e.as_fd(), 7, rs.as_fd()).unwrap();
    drop(rs);
    e.signal().unwrap();
    assert!(wait_line(&kvm, 7, true));
    kvm.deassign(e.as_fd(), 7).unwrap();
}

#[test]
fn a_route_beyond_the_table_is_einval_and_changes_nothing() {
    let Some(kvm) = kvm_or_skip("a_route_beyond_the_table_is_einval_and_changes_nothing") else {
        return;
    };
    let gsi = kvm.nr_gsis();
    let e = kvm.set_msi(gsi, MSI_ADDR, 0x41).unwrap_err();
    assert_eq!(e, Error::kernel(Op::SetMsi, Some(gsi), Errno::INVAL));
    assert_eq!(kvm.routes(), default_routes());
    // The last routable GSI is fine.
    kvm.set_msi(gsi - 1, MSI_ADDR, 0x41).unwrap();
    assert_eq!(kvm.msi_route(gsi - 1), Some((MSI_ADDR, 0x41)));
    kvm.clear_msi(gsi - 1).unwrap();
}

#[test]
fn set_msi_on_a_default_gsi_replaces_its_irqchip_routes() {
    let Some(kvm) = kvm_or_skip("set_msi_on_a_default_gsi_replaces_its_irqchip_routes") else {
        return;
    };
    // KVM rejects an MSI route beside irqchip routes of the same GSI, so
    // set_msi replaces all of the GSI's routes.
    kvm.set_msi(4, MSI_ADDR, 0x44).unwrap();
    let routes = kvm.routes();
    assert_eq!(
        routes.iter().filter(|e| e.gsi == 4).collect::<Vec<_>>(),
        [&RoutingEntry::msi(4, MSI_ADDR, 0x44)]
    );
    kvm.clear_msi(4).unwrap();
    assert!(kvm.routes().iter().all(|e| e.gsi != 4));
}

#[test]
fn a_routes_eventfd_is_busy_in_another_vm() {
    let (Some(a), Some(b)) = (
        kvm_or_skip("a_routes_eventfd_is_busy_in_another_vm"),
        kvm_or_skip("a_routes_eventfd_is_busy_in_another_vm"),
    ) else {
        return;
    };
    let irqfd = IrqFd::new(a);
    let r = irqfd.new_route().unwrap();
    assert_eq!(
        b.assign(r.event().as_fd(), r.gsi()).unwrap_err(),
        Error::kernel(Op::Assign, Some(r.gsi()), Errno::BUSY)
    );
}

#[test]
fn a_shared_vm_serves_routes_from_many_threads() {
    let Some(kvm) = kvm_or_skip("a_shared_vm_serves_routes_from_many_threads") else {
        return;
    };
    let irqfd = IrqFd::new(Arc::new(kvm));
    std::thread::scope(|s| {
        for t in 0..4u32 {
            let irqfd = &irqfd;
            s.spawn(move || {
                for i in 0..25u32 {
                    let r = irqfd.new_route().unwrap();
                    r.set_msi(MSI_ADDR, t * 100 + i).unwrap();
                    r.event().signal().unwrap();
                }
            });
        }
    });
    assert_eq!(irqfd.backend().routes(), default_routes());
    assert_eq!(irqfd.allocator().in_use(), NR_DEFAULT_GSIS);
}

#[test]
fn exhausting_the_table_is_an_error() {
    let Some(kvm) = kvm_or_skip("exhausting_the_table_is_an_error") else {
        return;
    };
    // 24 reserved + 4 usable.
    let irqfd = IrqFd::with_allocator(kvm, GsiAllocator::new(28));
    let routes: Vec<_> = (0..4).map(|_| irqfd.new_route().unwrap()).collect();
    assert_eq!(
        irqfd.new_route().unwrap_err(),
        Error::GsisExhausted { capacity: 28 }
    );
    drop(routes);
    irqfd.new_route().unwrap();
}

#[test]
fn eventfd_counter_is_consumed_only_while_bound() {
    let Some(kvm) = kvm_or_skip("eventfd_counter_is_consumed_only_while_bound") else {
        return;
    };
    let e = EventFd::new_nonblocking().unwrap();
    kvm.assign(e.as_fd(), 30).unwrap();
    e.signal().unwrap();
    assert_eq!(e.try_read().unwrap(), None, "KVM consumed the signal");
    kvm.deassign(e.as_fd(), 30).unwrap();
    e.signal().unwrap();
    assert_eq!(e.try_read().unwrap(), Some(1), "nobody consumes it now");
}

#[test]
fn routes_outlive_their_handle() {
    let Some(kvm) = kvm_or_skip("routes_outlive_their_handle") else {
        return;
    };
    let irqfd = IrqFd::new(kvm);
    let routes: Vec<_> = (0..2).map(|_| irqfd.new_route().unwrap()).collect();
    routes[0].set_msi(MSI_ADDR, 0x60).unwrap();
    let view = irqfd.clone();
    drop(irqfd);
    // Owned ('static) routes move to another thread, as a device would.
    std::thread::spawn(move || {
        for r in &routes {
            r.event().signal().unwrap();
        }
    })
    .join()
    .unwrap();
    assert_eq!(view.backend().routes(), default_routes());
    assert_eq!(view.allocator().in_use(), NR_DEFAULT_GSIS);
}
