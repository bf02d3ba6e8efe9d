// SPDX-License-Identifier: GPL-2.0
//! The KVM target: `--device /dev/kvm` runs the tests whose behaviour KVM's
//! irqfd (virt/kvm/eventfd.c) shares with the modules against VMs with the
//! in-kernel irqchip, and says for every other test why it cannot apply.
//!
//! What KVM lets userspace observe differs from the modules: a VM counts
//! neither its irqfds nor their shutdowns (`nr_irqfds`, `shutdowns`), and it
//! delivers to vCPUs, not to a reader of the context. So on a VM the checks
//! of those counts check nothing ([`crate::harness::counts_irqfds`]), the
//! delivery accounting has no counts to book, and an injection is seen
//! where KVM shows one: [`Deliveries`] routes every default GSI, and every
//! route a test sets, to an MSI with a vector of its own, aimed at vCPU 0,
//! which never runs, so each injection stays in that vCPU's local APIC
//! IRR, read (and cleared) with `KVM_GET_LAPIC`/`KVM_SET_LAPIC`, and the
//! vector tells which route it took. What stays exact: every errno, which
//! of several assigns wins, I1 and I5 (an injection, or none, since the
//! last look), I2 and I3 (an eventfd binds again at once), the route an
//! injection took (R21's oracles: one the GSI had, never one an update
//! that returned had replaced, the last write wins), and every splat, leak
//! and hang the kernel's checkers report.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::sync::Mutex;

use crate::abi::kvm::{
    MsiRouting, MsiRoutingEntry, APIC_IRR, APIC_SPIV, KVM_CREATE_VCPU, KVM_GET_LAPIC,
    KVM_IRQ_ROUTING_MSI, KVM_SET_GSI_ROUTING, KVM_SET_LAPIC, LAPIC_SIZE, NR_DEFAULT_GSIS,
};
use crate::abi::{RustIrqfdDelivery, RustIrqfdInfo, DELIVERY_MSI};
use crate::stress::lock;
use crate::sys::{self, SysResult};

/// The vector GSI `g`'s MSI carries by default: `VECTOR_BASE + g` (0x40
/// ..= 0x57, above the exception vectors); the vectors of the routes tests
/// set follow, up to 0xff ([`Deliveries::route`]).
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
    // Delivery as KVM shows it (a record per injection seen in the IRR;
    // their counters check nothing on a VM): a signal injects and
    // consumes the counter; a counter pending at assign injects once and
    // stays for the next signal, as KVM's assign does; close of a VM
    // releases its eventfds at once.
    "signal_delivers",
    "pending_at_assign",
    "close_context_releases",
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
    // Routes: every route a test sets is a KVM_SET_GSI_ROUTING update, and
    // a record shows the route an injection took by its vector.
    "race_r21_routing_update",
    "race_r21b_route_vs_deassign",
    "race_r21c_route_writers",
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
            "coalescing",
            "several_irqfds_one_gsi",
            "no_delivery_after_deassign",
            "epollhup_deactivates",
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
        "checks the module's routing, mask and ACK ABI (its requests and errnos, its GSI \
         statistics): a VM's table is KVM_SET_GSI_ROUTING's, whole, it counts no \
         injections, and its masks and ACKs come from the guest",
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
            "load_unload_cycles",
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

/// Where a VM's injections are seen: vCPU 0, the vector each GSI's route
/// has now, and per GSI the injections seen so far and per vector those
/// not read yet.
///
/// A GSI starts routed to its default vector (`VECTOR_BASE + gsi`, a plain
/// GSI of the modules). [`Deliveries::route`] stands for
/// `RUST_IRQFD_SET_ROUTE`: the route a test gives (an MSI address and data
/// of the module's ABI, which KVM would take as a real MSI) gets a vector
/// of its own, never handed to another (gsi, route), and the GSI is routed
/// to that vector with `KVM_SET_GSI_ROUTING`. So an injection seen at a
/// vector tells which route it took, and a record made up from it carries
/// that route, whole: a stale route shows as the vector of the route it
/// was.
pub struct Deliveries {
    seen: Mutex<Seen>,
}

/// The vectors [`Deliveries`] hands out: `VECTOR_BASE ..= 0xff`.
const NR_SLOTS: usize = 0x100 - VECTOR_BASE as usize;

/// A vector handed out: the GSI and the route (`None`: the GSI's default)
/// it stands for.
#[derive(Clone, Copy, PartialEq)]
struct Slot {
    vector: u32,
    gsi: u32,
    route: Option<(u64, u32)>,
}

struct Seen {
    vcpu: OwnedFd,
    /// The vectors handed out, in order: `slots[i].vector` is
    /// `VECTOR_BASE + i`, so there are at most [`NR_SLOTS`]; slot `g` is
    /// GSI `g`'s default.
    slots: Vec<Slot>,
    /// The slot each GSI is routed to in the last table built.
    table: [usize; NR_DEFAULT_GSIS as usize],
    counts: [u64; NR_DEFAULT_GSIS as usize],
    /// Injections seen and not read yet, by slot.
    unread: Vec<u64>,
    seq: u64,
    /// Vectors a look found in the IRR that no slot stands for (sticky).
    stray: Vec<u32>,
}

impl Deliveries {
    /// Creates vCPU 0 of the VM `vm`, routes GSI `g` to vector
    /// `VECTOR_BASE + g` on APIC id 0 and enables vCPU 0's local APIC in
    /// software (SPIV bit 8), without which it accepts no fixed interrupt.
    /// Done when the VM is created, before any irqfd can inject.
    pub fn set_up(vm: BorrowedFd<'_>) -> SysResult<Self> {
        let n = NR_DEFAULT_GSIS as usize;
        let seen = Seen {
            vcpu: sys::ioctl_new_fd(vm, KVM_CREATE_VCPU, 0)?,
            slots: (0..NR_DEFAULT_GSIS)
                .map(|g| Slot {
                    vector: VECTOR_BASE + g,
                    gsi: g,
                    route: None,
                })
                .collect(),
            table: std::array::from_fn(|g| g),
            counts: [0; NR_DEFAULT_GSIS as usize],
            unread: vec![0; n],
            seq: 0,
            stray: Vec::new(),
        };
        sys::ioctl_ptr(vm, KVM_SET_GSI_ROUTING, &mut seen.routing())?;
        let mut l = LapicState([0; LAPIC_SIZE]);
        sys::ioctl_ptr(seen.vcpu.as_fd(), KVM_GET_LAPIC, &mut l)?;
        l.set_word(APIC_SPIV, l.word(APIC_SPIV) | 0x100);
        sys::ioctl_ptr(seen.vcpu.as_fd(), KVM_SET_LAPIC, &mut l)?;
        Ok(Deliveries {
            seen: Mutex::new(seen),
        })
    }

    /// `RUST_IRQFD_SET_ROUTE` on the VM `vm`: routes `gsi` to the vector
    /// of (`gsi`, `route`), `None` to its default one; `EINVAL` for a GSI
    /// the VM does not have, `ENOSPC` once every vector is handed out.
    ///
    /// The table is built under the lock and sent after it is dropped, so
    /// that updates from several threads race in `KVM_SET_GSI_ROUTING`
    /// itself, as they race in `RUST_IRQFD_SET_ROUTE`: the table the
    /// kernel installs last wins. Every table carries the other GSIs'
    /// routes as the last one built had them. So updates of different GSIs
    /// must not race, and once updates of one GSI raced, the table the
    /// kernel holds may route it as another writer's table did than the
    /// one built last: an update of another GSI would then route it anew
    /// (no scenario updates another GSI after such a race).
    pub fn route(&self, vm: BorrowedFd<'_>, gsi: u32, route: Option<(u64, u32)>) -> SysResult<()> {
        let g = usize::try_from(gsi)
            .ok()
            .filter(|&g| g < NR_DEFAULT_GSIS as usize)
            .ok_or(sys::Errno(libc::EINVAL))?;
        let mut table = {
            let mut s = lock(&self.seen);
            let slot = match s
                .slots
                .iter()
                .position(|e| (e.gsi, e.route) == (gsi, route))
            {
                Some(i) => i,
                None => {
                    let i = s.slots.len();
                    let vector = u32::try_from(i)
                        .ok()
                        .filter(|_| i < NR_SLOTS)
                        .ok_or(sys::Errno(libc::ENOSPC))?;
                    s.slots.push(Slot {
                        vector: VECTOR_BASE + vector,
                        gsi,
                        route,
                    });
                    s.unread.push(0);
                    i
                }
            };
            s.table[g] = slot;
            s.routing()
        };
        sys::ioctl_ptr(vm, KVM_SET_GSI_ROUTING, &mut table).map(|_| ())
    }

    /// The injections into `gsi` seen so far: each look that finds one of
    /// the GSI's vectors in the IRR counts one and clears it, so
    /// injections between two looks count once (an IRR bit is a bit).
    /// Enough for I5 (more than before) and I1 (no more than before).
    pub fn injected(&self, gsi: u32) -> Result<u64, String> {
        let g = usize::try_from(gsi)
            .ok()
            .filter(|&g| g < NR_DEFAULT_GSIS as usize)
            .ok_or_else(|| format!("KVM: gsi {gsi} has no vector (0 .. {NR_DEFAULT_GSIS})"))?;
        let mut s = lock(&self.seen);
        s.look()
            .map_err(|e| format!("KVM: reading vCPU 0's IRR: {e}"))?;
        s.no_stray()?;
        Ok(s.counts[g])
    }

    /// No look found a vector in the IRR that no route of the test names
    /// (a route KVM tore or made up): checked by every scenario's final
    /// checks on KVM.
    pub fn no_stray(&self) -> Result<(), String> {
        lock(&self.seen).no_stray()
    }

    /// The injections seen so far, over all GSIs: the KVM column's
    /// deliveries in the race table.
    pub fn seen(&self) -> u64 {
        lock(&self.seen).counts.iter().sum()
    }

    /// What `read(2)` of a module context would give, from what the IRR
    /// showed: one record per vector with injections not read yet, count 1
    /// however many looks saw it (a record raised by the first injection
    /// and merged into by the rest until read), carrying the route the
    /// vector stands for (`DELIVERY_MSI`) or none for a GSI's default
    /// vector, at most `max`; `EAGAIN` for none.
    /// A stray vector ([`Deliveries::no_stray`]) makes this `EPROTO`, with
    /// the vectors on stderr.
    pub fn read(&self, max: usize) -> SysResult<Vec<RustIrqfdDelivery>> {
        let mut s = lock(&self.seen);
        s.look()?;
        if let Err(m) = s.no_stray() {
            eprintln!("rust_irqfd_test: {m}");
            return Err(sys::Errno(libc::EPROTO));
        }
        let mut v = Vec::new();
        for i in 0..s.slots.len() {
            if v.len() == max {
                break;
            }
            if std::mem::take(&mut s.unread[i]) > 0 {
                s.seq += 1;
                let Slot { gsi, route, .. } = s.slots[i];
                let (flags, (msi_addr, msi_data)) = match route {
                    Some(r) => (DELIVERY_MSI, r),
                    None => (0, (0, 0)),
                };
                v.push(RustIrqfdDelivery {
                    seq: s.seq,
                    gsi,
                    count: 1,
                    flags,
                    msi_addr,
                    msi_data,
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
    /// The routing table: every GSI an MSI to APIC id 0 with the vector
    /// of its slot.
    fn routing(&self) -> MsiRouting {
        let mut r = MsiRouting {
            nr: NR_DEFAULT_GSIS,
            ..Default::default()
        };
        for ((g, e), &slot) in (0..).zip(r.entries.iter_mut()).zip(&self.table) {
            *e = MsiRoutingEntry {
                gsi: g,
                kind: KVM_IRQ_ROUTING_MSI,
                address_lo: MSI_ADDR,
                data: self.slots[slot].vector,
                ..Default::default()
            };
        }
        r
    }

    /// Counts and clears the vectors handed out that the IRR shows, and
    /// notes any other vector it shows (from 0x10, the first a fixed
    /// interrupt can carry) as stray. An injection that lands between the
    /// get and the set of a look that found another is lost to the test
    /// (the set writes the IRR back whole): the looks that count are taken
    /// in the quiet moments after a signal, as I1 and I5 make them; a look
    /// racing injections (a race reader checking routes) may miss some,
    /// never make one up.
    fn look(&mut self) -> SysResult<()> {
        let mut l = LapicState([0; LAPIC_SIZE]);
        sys::ioctl_ptr(self.vcpu.as_fd(), KVM_GET_LAPIC, &mut l)?;
        let mut found = false;
        for v in 0x10..0x100u32 {
            let off = APIC_IRR + (v / 32) as usize * 0x10;
            let bit = 1u32 << (v % 32);
            let w = l.word(off);
            if w & bit == 0 {
                continue;
            }
            match self.slots.iter().position(|s| s.vector == v) {
                Some(i) => {
                    self.counts[self.slots[i].gsi as usize] += 1;
                    self.unread[i] += 1;
                }
                None => self.stray.push(v),
            }
            l.set_word(off, w & !bit);
            found = true;
        }
        if found {
            sys::ioctl_ptr(self.vcpu.as_fd(), KVM_SET_LAPIC, &mut l)?;
        }
        Ok(())
    }

    fn no_stray(&self) -> Result<(), String> {
        if self.stray.is_empty() {
            return Ok(());
        }
        Err(format!(
            "KVM: vector(s) {} in vCPU 0's IRR, which no route of the test names (the GSIs' \
             vectors are {:#x} ..= {:#x}): an injection with a route KVM tore or made up",
            self.stray
                .iter()
                .map(|v| format!("{v:#x}"))
                .collect::<Vec<_>>()
                .join(", "),
            VECTOR_BASE,
            self.slots.last().map_or(VECTOR_BASE, |s| s.vector)
        ))
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
