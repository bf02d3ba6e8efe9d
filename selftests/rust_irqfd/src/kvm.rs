// SPDX-License-Identifier: GPL-2.0
//! The KVM target: `--device /dev/kvm` runs the tests whose behaviour KVM's
//! irqfd (virt/kvm/eventfd.c) shares with the modules against VMs with the
//! in-kernel irqchip, and says for every other test why it cannot apply.
//!
//! What KVM lets userspace observe differs from the modules: a VM counts
//! neither its irqfds nor their shutdowns (`nr_irqfds`, `shutdowns`), and it
//! delivers to vCPUs, not to a reader of the context. So on a VM the checks
//! of those counts check nothing ([`crate::harness::counts_irqfds`]), the
//! delivery accounting has no records to book, and an injection is seen
//! where KVM shows one: [`Deliveries`] routes every default GSI to an MSI
//! with a vector of its own, aimed at vCPU 0, which never runs, so each
//! injection stays in that vCPU's local APIC IRR, read (and cleared) with
//! `KVM_GET_LAPIC`/`KVM_SET_LAPIC`. What stays exact: every errno, which
//! of several assigns wins, I1 and I5 (an injection, or none, since the
//! last look), I2 and I3 (an eventfd binds again at once), and every
//! splat, leak and hang the kernel's checkers report.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::sync::Mutex;

use crate::abi::kvm::{
    MsiRouting, MsiRoutingEntry, APIC_IRR, APIC_SPIV, KVM_CREATE_VCPU, KVM_GET_LAPIC,
    KVM_IRQ_ROUTING_MSI, KVM_SET_GSI_ROUTING, KVM_SET_LAPIC, LAPIC_SIZE, NR_DEFAULT_GSIS,
};
use crate::abi::{RustIrqfdDelivery, RustIrqfdInfo};
use crate::stress::lock;
use crate::sys::{self, SysResult};

/// The vector GSI `g`'s MSI carries: `VECTOR_BASE + g`, all in one IRR
/// word (0x40 ..= 0x57), above the exception vectors.
const VECTOR_BASE: u32 = 0x40;
/// The MSI address of a fixed interrupt to APIC id 0 (vCPU 0), physical
/// destination mode.
const MSI_ADDR: u32 = 0xfee0_0000;

/// What the tests see as `RUST_IRQFD_GET_INFO` of a KVM VM, which has no
/// such command: the GSIs KVM routes by default, nothing else.
pub fn info() -> RustIrqfdInfo {
    RustIrqfdInfo {
        nr_gsis: NR_DEFAULT_GSIS,
        ..Default::default()
    }
}

/// The KTAP diagnostic line that says what the KVM target is.
pub fn describe(path: &Path) -> String {
    format!(
        "{}: KVM, a VM with the in-kernel irqchip per context, KVM_IRQFD on its \
         {NR_DEFAULT_GSIS} GSIs, each routed to an MSI vector of vCPU 0's local APIC",
        path.display()
    )
}

/// The tests that run against KVM, with the oracles above.
pub const ON_KVM: &[&str] = &[
    // What KVM_IRQFD answers, and the binding rules (EBUSY across VMs and
    // the modules, deassign matching by eventfd and GSI, EPOLLHUP).
    "open_close",
    "ebusy_same_context",
    "ebusy_other_context",
    "ebusy_other_module",
    "deassign_nothing_matched",
    "deassign_wrong_gsi",
    "hup_on_last_close_only",
    "irqfd_errors",
    "socket_and_context_fd_einval",
    "efd_semaphore_accepted",
    "eventfd_over_scm_rights",
    // Every race of the catalogue whose race KVM has and whose oracle it
    // shows.
    "race_r1_hup_vs_deassign",
    "race_r2_hup_vs_running_shutdown",
    "race_r3_inject_vs_shutdown",
    "race_r4_release_vs_hup",
    "race_r5_eventfd_refcount",
    "race_r6_assign_vs_deassign",
    "race_r7_hup_mid_assign",
    "race_r8_pending_at_assign",
    "race_r9_counter_drain",
    "race_r10_duplicate_assign",
    "race_r11_deassign_recycled_fd",
    "race_r12_teardown_vs_assign",
    "race_r13_mass_release",
    "race_r14_atomic_wakeup",
    "race_r15_hardirq_signal",
    "race_r16_lock_order",
    "race_r17_flush_interplay",
    "race_r22_target_swap",
    "race_r23_assign_error_paths",
];

/// The tests that do not run against KVM, grouped by why.
pub const OFF_KVM: &[(&str, &[&str])] = &[
    (
        "reads the module's counters (RUST_IRQFD_GET_INFO, RUST_IRQFD_GSI_STATS): a VM counts \
         neither its irqfds nor their injections where userspace can read them",
        &[
            "get_info",
            "assign_deassign",
            "signal_delivers",
            "coalescing",
            "pending_at_assign",
            "several_irqfds_one_gsi",
            "no_delivery_after_deassign",
            "epollhup_deactivates",
            "close_context_releases",
            "stats_invariants",
            "release_4096_irqfds",
            "signal_storm_64_irqfds",
            "context_shared_with_forked_child",
        ],
    ),
    (
        "checks the records read(2) of the context gives, field by field and in order: \
         KVM delivers to vCPUs, and an IRR bit has no seq, count or order",
        &[
            "fifo_order",
            "read_whole_records",
            "read_small_buffer_einval",
            "read_nonblock_eagain",
            "read_fault_tail",
        ],
    ),
    (
        "blocks in read(2) of the context until a path raises a record: a VM has no \
         reader to wake",
        &[
            "blocking_read_wakes",
            "wake_on_unmask",
            "wake_on_level_assert",
            "wake_on_pending_at_assign",
            "wake_on_hardirq_signal",
        ],
    ),
    (
        "RUST_IRQFD_SET_ROUTE, SET_MASK and ACK are the module's: KVM routes with \
         KVM_SET_GSI_ROUTING (one table per VM), and masks and ACKs come from the guest",
        &[
            "route_msi_delivery",
            "route_update_in_place",
            "route_update_many_irqfds",
            "route_kept_by_raised_record",
            "masked_latch",
            "unmask_merges_pending",
            "mask_unmask_idempotent",
            "mask_loop_nothing_lost",
            "gsi_stats_errors",
            "set_route_errors",
            "set_mask_errors",
            "ack_errors",
            "race_r21_routing_update",
            "race_r21b_route_vs_deassign",
            "race_r21c_route_writers",
        ],
    ),
    (
        "a resample irqfd's line is deasserted by the guest's EOI, which a VM whose vCPU \
         never runs does not send",
        &[
            "resample_level_ack",
            "resample_shared_resampler",
            "resample_edge_ignores_asserted",
            "ack_unasserted_returns_zero",
            "resamplefd_close_keeps_irqfd",
            "resample_last_leave_deasserts",
            "resamplefd_is_fd",
            "resample_masked_latch",
            "resample_liveness",
            "resample_leave_waits_for_ack",
            "race_r19_wakeup_resignal",
            "race_r20_resampler",
        ],
    ),
    (
        "RUST_IRQFD_IRQFD_BATCH has no KVM counterpart",
        &[
            "batch_assign_deassign",
            "batch_assign_all_or_nothing",
            "batch_errors",
            "batch_entries_fault",
            "batch_error_index_unwritable",
        ],
    ),
    (
        "the commands and addresses it checks are the module's (KVM answers other ioctl \
         numbers, KVM_IRQFD among them)",
        &["unknown_ioctl_enotty", "bad_pointer_efault"],
    ),
    (
        "sweeps the module's allocations and checks nr_irqfds after each injected failure",
        &[
            "failnth_assign",
            "failnth_batch_assign",
            "failnth_batch_deassign",
            "failnth_resample_assign",
            "failnth_set_route",
            "failnth_set_mask",
            "failnth_ack",
        ],
    ),
    (
        "max_irqfds, the scope of the cleanup flush and memcg charging are the module's \
         parameters and counters",
        &[
            "limit_max_irqfds",
            "limit_thread_storm",
            "scoped_flush",
            "memcg_accounting",
        ],
    ),
    (
        "the context's fdinfo lists its irqfds; a VM's lists none",
        &[
            "fdinfo_lists_irqfds",
            "fdinfo_masked_resample",
            "fdinfo_paging",
            "race_r13b_fdinfo_vs_teardown",
        ],
    ),
    (
        "its model is the module's documented semantics: records, counters, routes, masks",
        &["fuzz_model"],
    ),
    (
        "loads and unloads the module under test; KVM is built into the kernel",
        &[
            "unload_refused_while_open",
            "load_unload_100_cycles",
            "open_close_vs_unload",
            "race_r18_module_unload",
        ],
    ),
];

/// Why the test `name` does not run against KVM, or `None` if it does.
pub fn why_not(name: &str) -> Option<&'static str> {
    if ON_KVM.contains(&name) {
        return None;
    }
    Some(
        OFF_KVM
            .iter()
            .find(|(_, names)| names.contains(&name))
            .map_or("not classified for KVM yet (see kvm.rs)", |(why, _)| why),
    )
}

/// A local APIC register page (`struct kvm_lapic_state`).
#[derive(Clone, Copy)]
#[repr(C)]
struct LapicState([u8; LAPIC_SIZE]);

impl LapicState {
    fn word(&self, off: usize) -> u32 {
        let mut b = [0u8; 4];
        b.copy_from_slice(&self.0[off..off + 4]);
        u32::from_ne_bytes(b)
    }

    fn set_word(&mut self, off: usize, v: u32) {
        self.0[off..off + 4].copy_from_slice(&v.to_ne_bytes());
    }
}

/// Where a VM's injections are seen: vCPU 0, and per GSI the injections
/// seen so far and those not read yet.
pub struct Deliveries {
    seen: Mutex<Seen>,
}

struct Seen {
    vcpu: OwnedFd,
    counts: [u64; NR_DEFAULT_GSIS as usize],
    unread: [u64; NR_DEFAULT_GSIS as usize],
    seq: u64,
}

impl Deliveries {
    /// Routes GSI `g` of the VM `vm` to vector `VECTOR_BASE + g` on APIC
    /// id 0, creates vCPU 0 and enables its local APIC in software (SPIV
    /// bit 8), without which it accepts no fixed interrupt. Done when the
    /// VM is created, before any irqfd can inject.
    pub fn set_up(vm: BorrowedFd<'_>) -> SysResult<Self> {
        let mut r = MsiRouting {
            nr: NR_DEFAULT_GSIS,
            ..Default::default()
        };
        for (g, e) in (0..).zip(r.entries.iter_mut()) {
            *e = MsiRoutingEntry {
                gsi: g,
                kind: KVM_IRQ_ROUTING_MSI,
                address_lo: MSI_ADDR,
                data: VECTOR_BASE + g,
                ..Default::default()
            };
        }
        sys::ioctl_ptr(vm, KVM_SET_GSI_ROUTING, &mut r)?;
        let vcpu = sys::ioctl_new_fd(vm, KVM_CREATE_VCPU, 0)?;
        let mut l = LapicState([0; LAPIC_SIZE]);
        sys::ioctl_ptr(vcpu.as_fd(), KVM_GET_LAPIC, &mut l)?;
        l.set_word(APIC_SPIV, l.word(APIC_SPIV) | 0x100);
        sys::ioctl_ptr(vcpu.as_fd(), KVM_SET_LAPIC, &mut l)?;
        Ok(Deliveries {
            seen: Mutex::new(Seen {
                vcpu,
                counts: [0; NR_DEFAULT_GSIS as usize],
                unread: [0; NR_DEFAULT_GSIS as usize],
                seq: 0,
            }),
        })
    }

    /// The injections into `gsi` seen so far: each look that finds the
    /// GSI's vector in the IRR counts one and clears it, so injections
    /// between two looks count once (an IRR bit is a bit). Enough for I5
    /// (more than before) and I1 (no more than before).
    pub fn injected(&self, gsi: u32) -> Result<u64, String> {
        let g = usize::try_from(gsi)
            .ok()
            .filter(|&g| g < NR_DEFAULT_GSIS as usize)
            .ok_or_else(|| format!("KVM: gsi {gsi} has no vector (0 .. {NR_DEFAULT_GSIS})"))?;
        let mut s = lock(&self.seen);
        s.look()
            .map_err(|e| format!("KVM: reading vCPU 0's IRR: {e}"))?;
        Ok(s.counts[g])
    }

    /// The injections seen so far, over all GSIs: the KVM column's
    /// deliveries in the race table.
    pub fn seen(&self) -> u64 {
        lock(&self.seen).counts.iter().sum()
    }

    /// What `read(2)` of a module context would give, from what the IRR
    /// showed: one record per GSI with injections not read yet, count 1
    /// however many looks saw it (a record raised by the first injection
    /// and merged into by the rest until read), at most `max`; `EAGAIN`
    /// for none.
    pub fn read(&self, max: usize) -> SysResult<Vec<RustIrqfdDelivery>> {
        let mut s = lock(&self.seen);
        s.look()?;
        let mut v = Vec::new();
        for g in 0..NR_DEFAULT_GSIS {
            if v.len() == max {
                break;
            }
            let n = std::mem::take(&mut s.unread[g as usize]);
            if n > 0 {
                s.seq += 1;
                v.push(RustIrqfdDelivery {
                    seq: s.seq,
                    gsi: g,
                    count: 1,
                    ..Default::default()
                });
            }
        }
        if v.is_empty() {
            return Err(sys::Errno(libc::EAGAIN));
        }
        Ok(v)
    }
}

impl Seen {
    /// Counts and clears the GSIs' vectors found in the IRR. An injection
    /// that lands between the get and the set of a look that found another
    /// is lost to the test (the set writes the IRR back whole): looks are
    /// meant for the quiet moments after a signal, as I1 and I5 make them.
    fn look(&mut self) -> SysResult<()> {
        let mut l = LapicState([0; LAPIC_SIZE]);
        sys::ioctl_ptr(self.vcpu.as_fd(), KVM_GET_LAPIC, &mut l)?;
        let mut found = false;
        for g in 0..NR_DEFAULT_GSIS {
            let v = VECTOR_BASE + g;
            let off = APIC_IRR + (v / 32) as usize * 0x10;
            let bit = 1u32 << (v % 32);
            let w = l.word(off);
            if w & bit != 0 {
                self.counts[g as usize] += 1;
                self.unread[g as usize] += 1;
                l.set_word(off, w & !bit);
                found = true;
            }
        }
        if found {
            sys::ioctl_ptr(self.vcpu.as_fd(), KVM_SET_LAPIC, &mut l)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every test is either run against KVM or off it for one stated
    /// reason, and every name in the lists is a test.
    #[test]
    fn every_test_is_classified_once() {
        let all: Vec<&str> = crate::all_tests().iter().map(|t| t.name).collect();
        for name in &all {
            let n = usize::from(ON_KVM.contains(name))
                + OFF_KVM.iter().filter(|(_, v)| v.contains(name)).count();
            assert_eq!(n, 1, "{name}: classified {n} times for KVM");
        }
        for name in ON_KVM
            .iter()
            .chain(OFF_KVM.iter().flat_map(|(_, v)| v.iter()))
        {
            assert!(all.contains(name), "{name}: no such test");
        }
    }
}
