// SPDX-License-Identifier: GPL-2.0
//! The two kernel ABIs this crate speaks, as plain `#[repr(C)]` data.
//!
//! * [`module`]: `include/uapi/linux/rust_irqfd.h`, spoken by `/dev/rust_irqfd`
//!   and `/dev/c_irqfd`.
//! * [`kvm`]: the part of `<linux/kvm.h>` needed to create a VM with an
//!   in-kernel irqchip, bind irqfds and program GSI routing.
//!
//! Every layout and ioctl number is pinned by compile-time asserts here and
//! by unit tests (which also read the project's header, when it is there).
//! The structs are plain data: building one is safe; only handing one to the
//! kernel (in the crate's private `sys` module) is not.

use core::mem::{offset_of, size_of};

use rustix::ioctl::{opcode, Opcode};

/// `struct rust_irqfd`, which has the layout and meaning of `struct kvm_irqfd`:
/// the argument of `RUST_IRQFD_IRQFD` and of `KVM_IRQFD`.
///
/// `fd` and `resamplefd` are descriptor *numbers*, resolved by the kernel in
/// the calling process; this crate never dereferences them itself.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct RawIrqfd {
    /// The eventfd to bind (assign) or unbind (deassign).
    pub fd: u32,
    /// The interrupt line.
    pub gsi: u32,
    /// `FLAG_*` bits.
    pub flags: u32,
    /// The resample eventfd, with [`module::FLAG_RESAMPLE`].
    pub resamplefd: u32,
    /// Must be zero for the modules (`EINVAL` otherwise); KVM ignores it.
    pub pad: [u8; 16],
}

impl RawIrqfd {
    /// An assign request: bind eventfd number `fd` to `gsi`.
    pub const fn assign(fd: u32, gsi: u32) -> Self {
        Self {
            fd,
            gsi,
            flags: 0,
            resamplefd: 0,
            pad: [0; 16],
        }
    }

    /// A deassign request: unbind eventfd number `fd` from `gsi`.
    pub const fn deassign(fd: u32, gsi: u32) -> Self {
        Self {
            fd,
            gsi,
            flags: module::FLAG_DEASSIGN,
            resamplefd: 0,
            pad: [0; 16],
        }
    }

    /// A level-triggered assign request (`FLAG_RESAMPLE`): bind eventfd
    /// number `fd` to `gsi`, with eventfd number `resamplefd` signalled at
    /// each acknowledgement (end of interrupt) of the line.
    pub const fn assign_resample(fd: u32, gsi: u32, resamplefd: u32) -> Self {
        Self {
            fd,
            gsi,
            flags: module::FLAG_RESAMPLE,
            resamplefd,
            pad: [0; 16],
        }
    }

    /// Whether this request deassigns (`FLAG_DEASSIGN` set).
    pub const fn is_deassign(&self) -> bool {
        self.flags & module::FLAG_DEASSIGN != 0
    }

    /// Whether this request asks for a resample (level) irqfd
    /// (`FLAG_RESAMPLE` set; ignored on deassign).
    pub const fn is_resample(&self) -> bool {
        self.flags & module::FLAG_RESAMPLE != 0
    }
}

/// The rust_irqfd module ABI (`include/uapi/linux/rust_irqfd.h`).
pub mod module {
    use super::*;

    /// `RUST_IRQFD_MAGIC`: the ioctl type byte.
    pub const MAGIC: u8 = 0xB9;
    /// `RUST_IRQFD_ABI_VERSION`: the version `RUST_IRQFD_GET_INFO` reports.
    pub const ABI_VERSION: u32 = 2;
    /// `RUST_IRQFD_FLAG_DEASSIGN`.
    pub const FLAG_DEASSIGN: u32 = 1 << 0;
    /// `RUST_IRQFD_FLAG_RESAMPLE`: a level-triggered irqfd, as
    /// `KVM_IRQFD_FLAG_RESAMPLE`. A signal asserts the line (a record with
    /// [`DELIVERY_LEVEL`]); it stays asserted, further injections coalescing
    /// into it, until [`IOCTL_ACK`] deasserts it and signals `resamplefd`.
    /// `resamplefd` must be an eventfd (`EBADF` if not open, `EINVAL` if not
    /// an eventfd). Not allowed in batches.
    pub const FLAG_RESAMPLE: u32 = 1 << 1;
    /// `RUST_IRQFD_DELIVERY_MSI`: the record was raised while the GSI was
    /// routed to an MSI; [`Delivery::msi_addr`] and [`Delivery::msi_data`]
    /// hold that route.
    pub const DELIVERY_MSI: u32 = 1 << 0;
    /// `RUST_IRQFD_DELIVERY_LEVEL`: the record was raised by a resample
    /// (level) irqfd's injection; the line stays asserted until
    /// [`IOCTL_ACK`].
    pub const DELIVERY_LEVEL: u32 = 1 << 1;
    /// `RUST_IRQFD_ROUTE_MSI`: [`Route::flags`] for "route the GSI to this
    /// MSI"; `0` clears the route.
    pub const ROUTE_MSI: u32 = 1 << 0;
    /// `RUST_IRQFD_MASK_MASKED`: [`Mask::flags`] for "mask"; `0` unmasks.
    pub const MASK_MASKED: u32 = 1 << 0;
    /// `RUST_IRQFD_INFO_DEFERRED_ONLY`: the atomic injection path is off.
    pub const INFO_DEFERRED_ONLY: u32 = 1 << 0;

    /// `struct rust_irqfd_info`: what a context's interrupt controller looks
    /// like (`RUST_IRQFD_GET_INFO`).
    #[repr(C)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
    pub struct Info {
        /// [`ABI_VERSION`].
        pub version: u32,
        /// Valid GSIs are `0 .. nr_gsis`.
        pub nr_gsis: u32,
        /// `INFO_*` bits.
        pub flags: u32,
        /// Irqfds currently active in this context.
        pub nr_irqfds: u32,
        /// Irqfd shutdowns completed in this context.
        pub shutdowns: u64,
        /// Zero.
        /// Most irqfds one context may hold; assigning more fails with `ENOSPC`.
        pub max_irqfds: u32,
        /// Zero.
        pub reserved: [u8; 4],
    }

    impl Info {
        /// Whether the module injects only from its work item
        /// ([`INFO_DEFERRED_ONLY`]).
        pub const fn deferred_only(&self) -> bool {
            self.flags & INFO_DEFERRED_ONLY != 0
        }
    }

    /// `struct rust_irqfd_gsi_stats` (ABI v2, 72 bytes): one line's
    /// counters and state (`RUST_IRQFD_GSI_STATS`). At every moment
    /// `injected == coalesced + raised + latched` and
    /// `raised == delivered + pending` ([`GsiStats::invariants_hold`]).
    #[repr(C)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
    pub struct GsiStats {
        /// In: the line.
        pub gsi: u32,
        /// In: must be zero.
        pub pad: u32,
        /// Injections into this GSI.
        pub injected: u64,
        /// Records queued for `read(2)`.
        pub raised: u64,
        /// Injections merged into a pending record, or into a level line
        /// that was asserted already.
        pub coalesced: u64,
        /// Records handed to `read(2)`.
        pub delivered: u64,
        /// 1 if a record is waiting to be read.
        pub pending: u64,
        /// Injections held by the mask latch now (the GSI is masked).
        pub latched: u64,
        /// `RUST_IRQFD_ACK` calls that deasserted the line.
        pub acks: u64,
        /// 1 if the GSI is masked.
        pub masked: u32,
        /// 1 if a level (resample) injection holds the line asserted until
        /// `RUST_IRQFD_ACK`.
        pub asserted: u32,
    }

    impl GsiStats {
        /// Whether the GSI is masked.
        pub const fn is_masked(&self) -> bool {
            self.masked != 0
        }

        /// Whether a level injection holds the line asserted.
        pub const fn is_asserted(&self) -> bool {
            self.asserted != 0
        }

        /// The ABI's invariants: `injected == coalesced + raised + latched`
        /// and `raised == delivered + pending`, `pending <= 1` (checked
        /// without overflow).
        pub fn invariants_hold(&self) -> bool {
            let parts = self
                .coalesced
                .checked_add(self.raised)
                .and_then(|v| v.checked_add(self.latched));
            let read = self.delivered.checked_add(self.pending);
            parts == Some(self.injected) && read == Some(self.raised) && self.pending <= 1
        }
    }

    /// `struct rust_irqfd_delivery`: one record of `read(2)` on a context.
    #[repr(C)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
    pub struct Delivery {
        /// Context-wide, from 1, in the order records were raised.
        pub seq: u64,
        /// The line.
        pub gsi: u32,
        /// [`DELIVERY_MSI`], [`DELIVERY_LEVEL`].
        pub flags: u32,
        /// Injections merged into this record, at least 1.
        pub count: u64,
        /// With [`DELIVERY_MSI`]: the MSI address the GSI was routed to when
        /// the record was raised; else 0.
        pub msi_addr: u64,
        /// With [`DELIVERY_MSI`]: the MSI data; else 0.
        pub msi_data: u32,
        /// Zero.
        pub pad: u32,
    }

    impl Delivery {
        /// Size of one record on the wire.
        pub const SIZE: usize = size_of::<Self>();

        /// Whether the record was raised with the GSI routed to an MSI.
        pub const fn is_msi(&self) -> bool {
            self.flags & DELIVERY_MSI != 0
        }

        /// Whether a resample (level) irqfd raised the record.
        pub const fn is_level(&self) -> bool {
            self.flags & DELIVERY_LEVEL != 0
        }

        /// The MSI `(address, data)` the record was raised with, `None` when
        /// the GSI had no route (a plain line).
        pub const fn msi(&self) -> Option<(u64, u32)> {
            if self.is_msi() {
                Some((self.msi_addr, self.msi_data))
            } else {
                None
            }
        }

        /// Decodes one record from exactly [`Self::SIZE`] native-endian
        /// bytes; `None` for any other length.
        pub fn from_bytes(b: &[u8]) -> Option<Self> {
            if b.len() != Self::SIZE {
                return None;
            }
            let u64_at = |o: usize| -> Option<u64> {
                Some(u64::from_ne_bytes(b.get(o..o + 8)?.try_into().ok()?))
            };
            let u32_at = |o: usize| -> Option<u32> {
                Some(u32::from_ne_bytes(b.get(o..o + 4)?.try_into().ok()?))
            };
            Some(Self {
                seq: u64_at(offset_of!(Self, seq))?,
                gsi: u32_at(offset_of!(Self, gsi))?,
                flags: u32_at(offset_of!(Self, flags))?,
                count: u64_at(offset_of!(Self, count))?,
                msi_addr: u64_at(offset_of!(Self, msi_addr))?,
                msi_data: u32_at(offset_of!(Self, msi_data))?,
                pad: u32_at(offset_of!(Self, pad))?,
            })
        }
    }

    /// `struct rust_irqfd_route`: the argument of `RUST_IRQFD_SET_ROUTE`,
    /// which routes one GSI to an MSI, or clears its route, in place.
    #[repr(C)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
    pub struct Route {
        /// The line.
        pub gsi: u32,
        /// [`ROUTE_MSI`] to set, 0 to clear.
        pub flags: u32,
        /// The MSI address: nonzero and 4-byte aligned to set (`EINVAL`
        /// otherwise), 0 to clear.
        pub msi_addr: u64,
        /// The MSI data (0 to clear).
        pub msi_data: u32,
        /// Must be zero.
        pub pad: u32,
    }

    impl Route {
        /// Route `gsi` to the MSI `addr`/`data`.
        pub const fn msi(gsi: u32, addr: u64, data: u32) -> Self {
            Self {
                gsi,
                flags: ROUTE_MSI,
                msi_addr: addr,
                msi_data: data,
                pad: 0,
            }
        }

        /// Clear `gsi`'s route (a plain line again).
        pub const fn clear(gsi: u32) -> Self {
            Self {
                gsi,
                flags: 0,
                msi_addr: 0,
                msi_data: 0,
                pad: 0,
            }
        }
    }

    /// `struct rust_irqfd_mask`: the argument of `RUST_IRQFD_SET_MASK`.
    #[repr(C)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
    pub struct Mask {
        /// The line.
        pub gsi: u32,
        /// [`MASK_MASKED`] to mask, 0 to unmask.
        pub flags: u32,
    }

    /// `struct rust_irqfd_ack`: the argument of `RUST_IRQFD_ACK`.
    #[repr(C)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
    pub struct Ack {
        /// The line.
        pub gsi: u32,
        /// Must be zero.
        pub pad: u32,
    }

    /// `RUST_IRQFD_IRQFD`: `_IOW(0xB9, 0x76, struct rust_irqfd)`.
    pub const IOCTL_IRQFD: Opcode = opcode::write::<RawIrqfd>(MAGIC, 0x76);
    /// `RUST_IRQFD_GET_INFO`: `_IOR(0xB9, 0x00, struct rust_irqfd_info)`.
    pub const IOCTL_GET_INFO: Opcode = opcode::read::<Info>(MAGIC, 0x00);
    /// `RUST_IRQFD_GSI_STATS`: `_IOWR(0xB9, 0x01, struct rust_irqfd_gsi_stats)`.
    pub const IOCTL_GSI_STATS: Opcode = opcode::read_write::<GsiStats>(MAGIC, 0x01);
    /// `RUST_IRQFD_SET_ROUTE`: `_IOW(0xB9, 0x03, struct rust_irqfd_route)`.
    pub const IOCTL_SET_ROUTE: Opcode = opcode::write::<Route>(MAGIC, 0x03);
    /// `RUST_IRQFD_SET_MASK`: `_IOW(0xB9, 0x04, struct rust_irqfd_mask)`.
    pub const IOCTL_SET_MASK: Opcode = opcode::write::<Mask>(MAGIC, 0x04);
    /// `RUST_IRQFD_ACK`: `_IOW(0xB9, 0x05, struct rust_irqfd_ack)`; returns
    /// the number of resamplefds signalled.
    pub const IOCTL_ACK: Opcode = opcode::write::<Ack>(MAGIC, 0x05);

    // The header's layout on x86_64 and its ioctl numbers.
    const _: () = {
        assert!(size_of::<RawIrqfd>() == 32);
        assert!(offset_of!(RawIrqfd, fd) == 0);
        assert!(offset_of!(RawIrqfd, gsi) == 4);
        assert!(offset_of!(RawIrqfd, flags) == 8);
        assert!(offset_of!(RawIrqfd, resamplefd) == 12);
        assert!(offset_of!(RawIrqfd, pad) == 16);

        assert!(size_of::<Info>() == 32);
        assert!(offset_of!(Info, version) == 0);
        assert!(offset_of!(Info, nr_gsis) == 4);
        assert!(offset_of!(Info, flags) == 8);
        assert!(offset_of!(Info, nr_irqfds) == 12);
        assert!(offset_of!(Info, shutdowns) == 16);
        assert!(offset_of!(Info, max_irqfds) == 24);
        assert!(offset_of!(Info, reserved) == 28);

        assert!(size_of::<GsiStats>() == 72);
        assert!(offset_of!(GsiStats, gsi) == 0);
        assert!(offset_of!(GsiStats, pad) == 4);
        assert!(offset_of!(GsiStats, injected) == 8);
        assert!(offset_of!(GsiStats, raised) == 16);
        assert!(offset_of!(GsiStats, coalesced) == 24);
        assert!(offset_of!(GsiStats, delivered) == 32);
        assert!(offset_of!(GsiStats, pending) == 40);
        assert!(offset_of!(GsiStats, latched) == 48);
        assert!(offset_of!(GsiStats, acks) == 56);
        assert!(offset_of!(GsiStats, masked) == 64);
        assert!(offset_of!(GsiStats, asserted) == 68);

        assert!(size_of::<Route>() == 24);
        assert!(offset_of!(Route, gsi) == 0);
        assert!(offset_of!(Route, flags) == 4);
        assert!(offset_of!(Route, msi_addr) == 8);
        assert!(offset_of!(Route, msi_data) == 16);
        assert!(offset_of!(Route, pad) == 20);

        assert!(size_of::<Mask>() == 8);
        assert!(offset_of!(Mask, gsi) == 0);
        assert!(offset_of!(Mask, flags) == 4);

        assert!(size_of::<Ack>() == 8);
        assert!(offset_of!(Ack, gsi) == 0);
        assert!(offset_of!(Ack, pad) == 4);

        assert!(size_of::<Delivery>() == 40);
        assert!(offset_of!(Delivery, seq) == 0);
        assert!(offset_of!(Delivery, gsi) == 8);
        assert!(offset_of!(Delivery, flags) == 12);
        assert!(offset_of!(Delivery, count) == 16);
        assert!(offset_of!(Delivery, msi_addr) == 24);
        assert!(offset_of!(Delivery, msi_data) == 32);
        assert!(offset_of!(Delivery, pad) == 36);

        assert!(IOCTL_IRQFD as u64 == 0x4020_B976);
        assert!(IOCTL_GET_INFO as u64 == 0x8020_B900);
        assert!(IOCTL_GSI_STATS as u64 == 0xC048_B901);
        assert!(IOCTL_SET_ROUTE as u64 == 0x4018_B903);
        assert!(IOCTL_SET_MASK as u64 == 0x4008_B904);
        assert!(IOCTL_ACK as u64 == 0x4008_B905);

        assert!(DELIVERY_MSI == 1 && DELIVERY_LEVEL == 2);
        assert!(ROUTE_MSI == 1 && MASK_MASKED == 1);
    };
}

/// The part of the KVM ABI (`<linux/kvm.h>`, x86) this crate uses.
pub mod kvm {
    use super::*;

    /// `KVMIO`: the ioctl type byte.
    pub const KVMIO: u8 = 0xAE;
    /// `KVM_API_VERSION`: what `KVM_GET_API_VERSION` must return.
    pub const API_VERSION: i32 = 12;
    /// `KVM_CAP_IRQ_ROUTING`: `KVM_CHECK_EXTENSION` returns the routing
    /// table's maximum size (`KVM_MAX_IRQ_ROUTES`).
    pub const CAP_IRQ_ROUTING: usize = 25;
    /// `KVM_CAP_IRQFD`.
    pub const CAP_IRQFD: usize = 32;
    /// `KVM_IRQFD_FLAG_DEASSIGN` (same bit as the module's).
    pub const IRQFD_FLAG_DEASSIGN: u32 = 1 << 0;
    /// `KVM_IRQFD_FLAG_RESAMPLE` (same bit as the module's).
    pub const IRQFD_FLAG_RESAMPLE: u32 = 1 << 1;
    /// `KVM_IRQ_ROUTING_IRQCHIP`: a route to a pin of an irqchip.
    pub const IRQ_ROUTING_IRQCHIP: u32 = 1;
    /// `KVM_IRQ_ROUTING_MSI`: a route that sends an MSI.
    pub const IRQ_ROUTING_MSI: u32 = 2;
    /// `KVM_IRQCHIP_PIC_MASTER`.
    pub const IRQCHIP_PIC_MASTER: u32 = 0;
    /// `KVM_IRQCHIP_PIC_SLAVE`.
    pub const IRQCHIP_PIC_SLAVE: u32 = 1;
    /// `KVM_IRQCHIP_IOAPIC`.
    pub const IRQCHIP_IOAPIC: u32 = 2;
    /// GSIs `0 .. 24` carry the in-kernel irqchip's default routes (the
    /// IOAPIC's 24 pins, the PICs' 16) after `KVM_CREATE_IRQCHIP`.
    pub const NR_DEFAULT_GSIS: u32 = 24;

    /// `struct kvm_irq_routing_entry` (48 bytes). The union `u` is kept as
    /// eight words: `irqchip = {irqchip, pin}` in words 0-1, `msi =
    /// {address_lo, address_hi, data, pad}` in words 0-3.
    #[repr(C, align(8))]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
    pub struct RoutingEntry {
        /// The GSI this entry routes.
        pub gsi: u32,
        /// `IRQ_ROUTING_*`.
        pub kind: u32,
        /// `KVM_MSI_VALID_DEVID` (not used on x86).
        pub flags: u32,
        /// Zero.
        pub pad: u32,
        /// The union, as words.
        pub u: [u32; 8],
    }

    impl RoutingEntry {
        /// A route from `gsi` to `pin` of `irqchip`.
        pub const fn irqchip(gsi: u32, irqchip: u32, pin: u32) -> Self {
            Self {
                gsi,
                kind: IRQ_ROUTING_IRQCHIP,
                flags: 0,
                pad: 0,
                u: [irqchip, pin, 0, 0, 0, 0, 0, 0],
            }
        }

        /// A route from `gsi` to the MSI `address`/`data`.
        pub const fn msi(gsi: u32, address: u64, data: u32) -> Self {
            Self {
                gsi,
                kind: IRQ_ROUTING_MSI,
                flags: 0,
                pad: 0,
                u: [address as u32, (address >> 32) as u32, data, 0, 0, 0, 0, 0],
            }
        }

        /// The MSI `(address, data)` of an MSI route, `None` for other kinds.
        pub const fn as_msi(&self) -> Option<(u64, u32)> {
            if self.kind == IRQ_ROUTING_MSI {
                Some(((self.u[1] as u64) << 32 | self.u[0] as u64, self.u[2]))
            } else {
                None
            }
        }

        /// The entry as the kernel reads it: twelve native-endian words.
        pub const fn to_words(&self) -> [u32; 12] {
            let u = self.u;
            [
                self.gsi, self.kind, self.flags, self.pad, u[0], u[1], u[2], u[3], u[4], u[5],
                u[6], u[7],
            ]
        }
    }

    /// The routes the kernel installs with `KVM_CREATE_IRQCHIP` on x86
    /// (`default_routing` in `arch/x86/kvm/irq_comm.c`): GSI `n` to IOAPIC
    /// pin `n` for `n < 24`, and to PIC pin `n % 8` for `n < 16`.
    /// `KVM_SET_GSI_ROUTING` replaces the whole table, so a userspace table
    /// must start from these to keep the legacy lines working.
    pub fn default_routes() -> Vec<RoutingEntry> {
        let mut v = Vec::with_capacity(40);
        for gsi in 0..NR_DEFAULT_GSIS {
            v.push(RoutingEntry::irqchip(gsi, IRQCHIP_IOAPIC, gsi));
            if gsi < 16 {
                let pic = if gsi < 8 {
                    IRQCHIP_PIC_MASTER
                } else {
                    IRQCHIP_PIC_SLAVE
                };
                v.push(RoutingEntry::irqchip(gsi, pic, gsi % 8));
            }
        }
        v
    }

    /// `struct kvm_irq_routing` without its flexible array: `{nr, flags}`.
    /// Only its size (8) enters the ioctl number; the entries follow it in
    /// the same buffer.
    #[repr(C)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
    pub struct RoutingHeader {
        /// Number of entries that follow.
        pub nr: u32,
        /// Zero.
        pub flags: u32,
    }

    /// `struct kvm_irqchip` (520 bytes): the argument of `KVM_GET_IRQCHIP`,
    /// one in-kernel interrupt controller's state. The union `chip` (512
    /// bytes) is kept as words; [`ioapic_irr`](Self::ioapic_irr) decodes the
    /// one field this crate reads.
    #[repr(C, align(8))]
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct Irqchip {
        /// `KVM_IRQCHIP_*`: which controller.
        pub chip_id: u32,
        /// Zero.
        pub pad: u32,
        /// The union: `struct kvm_pic_state` or `struct kvm_ioapic_state`.
        pub chip: [u32; 128],
    }

    impl Irqchip {
        /// A request for controller `chip_id`'s state, zeroed.
        pub const fn new(chip_id: u32) -> Self {
            Self {
                chip_id,
                pad: 0,
                chip: [0; 128],
            }
        }

        /// For [`IRQCHIP_IOAPIC`]: `struct kvm_ioapic_state`'s `irr`, bit
        /// `n` set while IOAPIC pin `n`'s input is asserted (for an edge
        /// pin, until it is delivered). `None` for other chips.
        pub const fn ioapic_irr(&self) -> Option<u32> {
            // base_address (u64) at 0, ioregsel at 8, id at 12, irr at 16.
            if self.chip_id == IRQCHIP_IOAPIC {
                Some(self.chip[4])
            } else {
                None
            }
        }
    }

    impl Default for Irqchip {
        fn default() -> Self {
            Self::new(0)
        }
    }

    /// `KVM_GET_API_VERSION`: `_IO(KVMIO, 0x00)`.
    pub const IOCTL_GET_API_VERSION: Opcode = opcode::none(KVMIO, 0x00);
    /// `KVM_CREATE_VM`: `_IO(KVMIO, 0x01)`, argument the machine type; returns
    /// the VM descriptor.
    pub const IOCTL_CREATE_VM: Opcode = opcode::none(KVMIO, 0x01);
    /// `KVM_CHECK_EXTENSION`: `_IO(KVMIO, 0x03)`, argument a `KVM_CAP_*`.
    pub const IOCTL_CHECK_EXTENSION: Opcode = opcode::none(KVMIO, 0x03);
    /// `KVM_CREATE_IRQCHIP`: `_IO(KVMIO, 0x60)`.
    pub const IOCTL_CREATE_IRQCHIP: Opcode = opcode::none(KVMIO, 0x60);
    /// `KVM_SET_GSI_ROUTING`: `_IOW(KVMIO, 0x6a, struct kvm_irq_routing)`.
    pub const IOCTL_SET_GSI_ROUTING: Opcode = opcode::write::<RoutingHeader>(KVMIO, 0x6a);
    /// `KVM_IRQFD`: `_IOW(KVMIO, 0x76, struct kvm_irqfd)`.
    pub const IOCTL_IRQFD: Opcode = opcode::write::<RawIrqfd>(KVMIO, 0x76);
    /// `KVM_GET_IRQCHIP`: `_IOWR(KVMIO, 0x62, struct kvm_irqchip)`.
    pub const IOCTL_GET_IRQCHIP: Opcode = opcode::read_write::<Irqchip>(KVMIO, 0x62);

    const _: () = {
        assert!(size_of::<RoutingHeader>() == 8);
        assert!(size_of::<RoutingEntry>() == 48);
        assert!(core::mem::align_of::<RoutingEntry>() == 8);
        assert!(offset_of!(RoutingEntry, u) == 16);
        assert!(size_of::<Irqchip>() == 520);
        assert!(offset_of!(Irqchip, chip) == 8);

        assert!(IOCTL_GET_API_VERSION as u64 == 0xAE00);
        assert!(IOCTL_CREATE_VM as u64 == 0xAE01);
        assert!(IOCTL_CHECK_EXTENSION as u64 == 0xAE03);
        assert!(IOCTL_CREATE_IRQCHIP as u64 == 0xAE60);
        assert!(IOCTL_SET_GSI_ROUTING as u64 == 0x4008_AE6A);
        assert!(IOCTL_IRQFD as u64 == 0x4020_AE76);
        assert!(IOCTL_GET_IRQCHIP as u64 == 0xC208_AE62);
        // The two ABIs' irqfd commands differ only in the type byte.
        assert!(IOCTL_IRQFD as u64 & !0xff00 == module::IOCTL_IRQFD as u64 & !0xff00);
        assert!(IRQFD_FLAG_DEASSIGN == module::FLAG_DEASSIGN);
        assert!(IRQFD_FLAG_RESAMPLE == module::FLAG_RESAMPLE);
    };
}

#[cfg(test)]
mod tests {
    use super::kvm::{Irqchip, RoutingEntry};
    use super::module::{Ack, Delivery, GsiStats, Info, Mask, Route};
    use super::*;

    #[test]
    fn module_sizes_and_offsets() {
        assert_eq!(size_of::<RawIrqfd>(), 32);
        assert_eq!(size_of::<Info>(), 32);
        assert_eq!(size_of::<GsiStats>(), 72);
        assert_eq!(size_of::<Delivery>(), 40);
        assert_eq!(size_of::<Route>(), 24);
        assert_eq!(size_of::<Mask>(), 8);
        assert_eq!(size_of::<Ack>(), 8);
        assert_eq!(offset_of!(RawIrqfd, pad), 16);
        assert_eq!(offset_of!(Info, shutdowns), 16);
        assert_eq!(offset_of!(GsiStats, pending), 40);
        assert_eq!(offset_of!(GsiStats, latched), 48);
        assert_eq!(offset_of!(GsiStats, acks), 56);
        assert_eq!(offset_of!(GsiStats, masked), 64);
        assert_eq!(offset_of!(GsiStats, asserted), 68);
        assert_eq!(offset_of!(Delivery, msi_data), 32);
        assert_eq!(offset_of!(Route, msi_addr), 8);
        assert_eq!(offset_of!(Route, msi_data), 16);
        assert_eq!(offset_of!(Route, pad), 20);
    }

    #[test]
    fn request_constructors() {
        let r = RawIrqfd::assign_resample(3, 9, 4);
        assert_eq!((r.fd, r.gsi, r.resamplefd), (3, 9, 4));
        assert_eq!(r.flags, module::FLAG_RESAMPLE);
        assert!(r.is_resample() && !r.is_deassign());
        assert!(RawIrqfd::deassign(3, 9).is_deassign());
        assert!(!RawIrqfd::assign(3, 9).is_resample());
        assert_eq!(
            Route::msi(7, 0xfee0_1000, 0x41),
            Route {
                gsi: 7,
                flags: module::ROUTE_MSI,
                msi_addr: 0xfee0_1000,
                msi_data: 0x41,
                pad: 0
            }
        );
        assert_eq!(
            Route::clear(7),
            Route {
                gsi: 7,
                ..Route::default()
            }
        );
    }

    #[test]
    fn gsi_stats_invariants() {
        let ok = GsiStats {
            injected: 10,
            coalesced: 3,
            raised: 4,
            latched: 3,
            delivered: 3,
            pending: 1,
            ..GsiStats::default()
        };
        assert!(ok.invariants_hold());
        assert!(GsiStats::default().invariants_hold());
        assert!(!GsiStats { latched: 2, ..ok }.invariants_hold());
        assert!(!GsiStats { pending: 0, ..ok }.invariants_hold());
        assert!(!GsiStats {
            pending: 2,
            delivered: 2,
            ..ok
        }
        .invariants_hold());
        // No overflow panic on absurd values.
        assert!(!GsiStats {
            injected: u64::MAX,
            coalesced: u64::MAX,
            raised: u64::MAX,
            ..ok
        }
        .invariants_hold());
        let st = GsiStats {
            masked: 1,
            asserted: 0,
            ..ok
        };
        assert!(st.is_masked() && !st.is_asserted());
    }

    #[test]
    fn module_ioctl_numbers() {
        assert_eq!(module::IOCTL_IRQFD as u64, 0x4020_b976);
        assert_eq!(module::IOCTL_GET_INFO as u64, 0x8020_b900);
        assert_eq!(module::IOCTL_GSI_STATS as u64, 0xc048_b901);
        assert_eq!(module::IOCTL_SET_ROUTE as u64, 0x4018_b903);
        assert_eq!(module::IOCTL_SET_MASK as u64, 0x4008_b904);
        assert_eq!(module::IOCTL_ACK as u64, 0x4008_b905);
    }

    #[test]
    fn kvm_ioctl_numbers() {
        assert_eq!(kvm::IOCTL_GET_API_VERSION as u64, 0xae00);
        assert_eq!(kvm::IOCTL_CREATE_VM as u64, 0xae01);
        assert_eq!(kvm::IOCTL_CHECK_EXTENSION as u64, 0xae03);
        assert_eq!(kvm::IOCTL_CREATE_IRQCHIP as u64, 0xae60);
        assert_eq!(kvm::IOCTL_SET_GSI_ROUTING as u64, 0x4008_ae6a);
        assert_eq!(kvm::IOCTL_IRQFD as u64, 0x4020_ae76);
        assert_eq!(kvm::IOCTL_GET_IRQCHIP as u64, 0xc208_ae62);
        assert_eq!(size_of::<RoutingEntry>(), 48);
        assert_eq!(size_of::<Irqchip>(), 520);
    }

    #[test]
    fn irqchip_irr() {
        let mut c = Irqchip::new(kvm::IRQCHIP_IOAPIC);
        c.chip[4] = 1 << 7;
        assert_eq!(c.ioapic_irr(), Some(0x80));
        c.chip_id = kvm::IRQCHIP_PIC_MASTER;
        assert_eq!(c.ioapic_irr(), None);
        assert_eq!(Irqchip::default(), Irqchip::new(0));
    }

    #[test]
    fn delivery_decodes() {
        let mut b = Vec::new();
        b.extend_from_slice(&7u64.to_ne_bytes());
        b.extend_from_slice(&3u32.to_ne_bytes());
        b.extend_from_slice(&module::DELIVERY_MSI.to_ne_bytes());
        b.extend_from_slice(&2u64.to_ne_bytes());
        b.extend_from_slice(&0xfee0_0000u64.to_ne_bytes());
        b.extend_from_slice(&0x41u32.to_ne_bytes());
        b.extend_from_slice(&0u32.to_ne_bytes());
        let d = Delivery::from_bytes(&b).unwrap();
        assert_eq!(
            d,
            Delivery {
                seq: 7,
                gsi: 3,
                flags: module::DELIVERY_MSI,
                count: 2,
                msi_addr: 0xfee0_0000,
                msi_data: 0x41,
                pad: 0
            }
        );
        assert!(d.is_msi() && !d.is_level());
        assert_eq!(d.msi(), Some((0xfee0_0000, 0x41)));
        let level = Delivery {
            flags: module::DELIVERY_LEVEL,
            msi_addr: 0,
            msi_data: 0,
            ..d
        };
        assert!(level.is_level() && !level.is_msi());
        assert_eq!(level.msi(), None);
        assert_eq!(Delivery::from_bytes(&b[1..]), None);
        assert_eq!(Delivery::from_bytes(&[]), None);
    }

    #[test]
    fn msi_entry_words() {
        let e = RoutingEntry::msi(40, 0x1_fee0_1000, 0x4031);
        assert_eq!(e.as_msi(), Some((0x1_fee0_1000, 0x4031)));
        let w = e.to_words();
        assert_eq!(
            &w[..7],
            &[40, kvm::IRQ_ROUTING_MSI, 0, 0, 0xfee0_1000, 1, 0x4031]
        );
        assert_eq!(
            RoutingEntry::irqchip(3, kvm::IRQCHIP_IOAPIC, 3).as_msi(),
            None
        );
    }

    #[test]
    fn default_routes_match_the_kernel() {
        let r = kvm::default_routes();
        // 24 IOAPIC pins plus 16 PIC pins.
        assert_eq!(r.len(), 40);
        assert!(r.iter().all(|e| e.kind == kvm::IRQ_ROUTING_IRQCHIP));
        assert!(r.contains(&RoutingEntry::irqchip(9, kvm::IRQCHIP_PIC_SLAVE, 1)));
        assert!(r.contains(&RoutingEntry::irqchip(23, kvm::IRQCHIP_IOAPIC, 23)));
        assert!(!r.iter().any(|e| e.gsi >= kvm::NR_DEFAULT_GSIS));
    }

    /// `(type, name)` of each field of `struct NAME` in the header text.
    fn c_fields(header: &str, name: &str) -> Vec<(String, String)> {
        let start = header.find(&format!("struct {name} {{")).unwrap();
        let body = &header[start..];
        let body = &body[body.find('{').unwrap() + 1..body.find("};").unwrap()];
        body.lines()
            .map(|l| l.split("/*").next().unwrap().trim())
            // Continuation lines of a multi-line field comment.
            .filter(|l| !l.is_empty() && !l.starts_with('*'))
            .map(|l| {
                let mut it = l.trim_end_matches(';').split_whitespace();
                (
                    it.next().unwrap().to_string(),
                    it.next().unwrap().to_string(),
                )
            })
            .collect()
    }

    fn fields(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(t, n)| (t.to_string(), n.to_string()))
            .collect()
    }

    /// The mirror matches the project's header, field by field (skipped when
    /// the crate is built outside the repository).
    #[test]
    fn matches_uapi_header() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../include/uapi/linux/rust_irqfd.h");
        let Ok(h) = std::fs::read_to_string(&path) else {
            eprintln!("{} not found: header cross-check skipped", path.display());
            return;
        };
        for line in [
            "#define RUST_IRQFD_MAGIC 0xB9",
            "#define RUST_IRQFD_ABI_VERSION 2",
            "#define RUST_IRQFD_FLAG_DEASSIGN (1 << 0)",
            "#define RUST_IRQFD_FLAG_RESAMPLE (1 << 1)",
            "#define RUST_IRQFD_INFO_DEFERRED_ONLY (1 << 0)",
            "#define RUST_IRQFD_DELIVERY_MSI   (1 << 0)",
            "#define RUST_IRQFD_DELIVERY_LEVEL (1 << 1)",
            "#define RUST_IRQFD_ROUTE_MSI (1 << 0)",
            "#define RUST_IRQFD_MASK_MASKED (1 << 0)",
            "_IOW(RUST_IRQFD_MAGIC, 0x76, struct rust_irqfd)",
            "_IOR(RUST_IRQFD_MAGIC, 0x00, struct rust_irqfd_info)",
            "_IOWR(RUST_IRQFD_MAGIC, 0x01, struct rust_irqfd_gsi_stats)",
            "#define RUST_IRQFD_SET_ROUTE _IOW(RUST_IRQFD_MAGIC, 0x03, struct rust_irqfd_route)",
            "#define RUST_IRQFD_SET_MASK _IOW(RUST_IRQFD_MAGIC, 0x04, struct rust_irqfd_mask)",
            "#define RUST_IRQFD_ACK _IOW(RUST_IRQFD_MAGIC, 0x05, struct rust_irqfd_ack)",
        ] {
            assert!(h.contains(line), "header lacks {line:?}");
        }
        assert_eq!(
            c_fields(&h, "rust_irqfd"),
            fields(&[
                ("__u32", "fd"),
                ("__u32", "gsi"),
                ("__u32", "flags"),
                ("__u32", "resamplefd"),
                ("__u8", "pad[16]"),
            ])
        );
        assert_eq!(
            c_fields(&h, "rust_irqfd_info"),
            fields(&[
                ("__u32", "version"),
                ("__u32", "nr_gsis"),
                ("__u32", "flags"),
                ("__u32", "nr_irqfds"),
                ("__u64", "shutdowns"),
                ("__u32", "max_irqfds"),
                ("__u8", "reserved[4]"),
            ])
        );
        assert_eq!(
            c_fields(&h, "rust_irqfd_gsi_stats"),
            fields(&[
                ("__u32", "gsi"),
                ("__u32", "pad"),
                ("__u64", "injected"),
                ("__u64", "raised"),
                ("__u64", "coalesced"),
                ("__u64", "delivered"),
                ("__u64", "pending"),
                ("__u64", "latched"),
                ("__u64", "acks"),
                ("__u32", "masked"),
                ("__u32", "asserted"),
            ])
        );
        assert_eq!(
            c_fields(&h, "rust_irqfd_route"),
            fields(&[
                ("__u32", "gsi"),
                ("__u32", "flags"),
                ("__u64", "msi_addr"),
                ("__u32", "msi_data"),
                ("__u32", "pad"),
            ])
        );
        assert_eq!(
            c_fields(&h, "rust_irqfd_mask"),
            fields(&[("__u32", "gsi"), ("__u32", "flags")])
        );
        assert_eq!(
            c_fields(&h, "rust_irqfd_ack"),
            fields(&[("__u32", "gsi"), ("__u32", "pad")])
        );
        assert_eq!(
            c_fields(&h, "rust_irqfd_delivery"),
            fields(&[
                ("__u64", "seq"),
                ("__u32", "gsi"),
                ("__u32", "flags"),
                ("__u64", "count"),
                ("__u64", "msi_addr"),
                ("__u32", "msi_data"),
                ("__u32", "pad"),
            ])
        );
    }
}
