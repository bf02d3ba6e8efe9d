// SPDX-License-Identifier: GPL-2.0
//! The crate against the modules' devices, each of `/dev/rust_irqfd` and
//! `/dev/c_irqfd` that can be opened (inside the project's VM; skipped, with
//! a note, elsewhere).

mod common;

use std::os::fd::AsFd;
use std::time::Duration;

use common::{module_or_skip, Kind};
use rust_irqfd_vmm::abi::module::ABI_VERSION;
use rust_irqfd_vmm::{Error, EventFd, IrqFd, IrqFdBackend, Op};

const WAIT: Duration = Duration::from_secs(5);

fn modules(test: &str) -> Vec<(Kind, rust_irqfd_vmm::ModuleBackend)> {
    [Kind::Rust, Kind::C]
        .into_iter()
        .filter_map(|k| module_or_skip(k, test).map(|m| (k, m)))
        .collect()
}

#[test]
fn info_and_name() {
    for (kind, m) in modules("info_and_name") {
        let info = m.info().unwrap();
        assert_eq!(info.version, ABI_VERSION);
        assert_eq!(info.nr_irqfds, 0);
        assert_eq!(m.nr_gsis(), info.nr_gsis);
        assert_eq!(m.name(), kind.name());
        assert_eq!(m.read_deliveries().unwrap(), []);
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
            assert!(d[0].seq > last_seq);
            last_seq = d[0].seq;
        }
        let st = ctx.gsi_stats(0).unwrap();
        assert_eq!((st.injected, st.delivered, st.pending), (3, 3, 0));
        assert_eq!(st.injected, st.coalesced + st.raised);

        drop(r);
        let info = ctx.info().unwrap();
        assert_eq!(info.nr_irqfds, 0, "{}: deassigned on drop", kind.name());
        assert_eq!(irqfd.allocator().in_use(), 0);
    }
}

#[test]
fn routing_is_unsupported_until_the_abi_lands() {
    for (kind, m) in modules("routing_is_unsupported_until_the_abi_lands") {
        let irqfd = IrqFd::new(m);
        let r = irqfd.new_route().unwrap();
        for (op, res) in [
            (Op::SetMsi, r.set_msi(0xfee0_0000, 0x41)),
            (Op::ClearMsi, r.clear_msi()),
            (Op::Mask, r.mask()),
            (Op::Unmask, r.unmask()),
        ] {
            assert_eq!(
                res,
                Err(Error::Unsupported {
                    op,
                    backend: kind.name().into()
                })
            );
        }
    }
}

#[test]
fn gsi_stats_out_of_range_is_einval() {
    for (_, m) in modules("gsi_stats_out_of_range_is_einval") {
        let n = m.nr_gsis();
        assert_eq!(
            m.gsi_stats(n).unwrap_err(),
            Error::Invalid {
                op: Op::GsiStats,
                gsi: Some(n)
            }
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
            Error::Busy {
                op: Op::Assign,
                gsi: Some(1)
            }
        );
        m.deassign(e.as_fd(), 1).unwrap();
        other.assign(e.as_fd(), 1).unwrap();
    }
}
